"""The reference CSC signing service in a subprocess, for tests: real process, real HTTP.

    service = CscService()                      # a temp data dir, a random client secret
    credential_id, cert = service.enrol("gv.duyen", "Lê Thị Mỹ Duyên", "Giáo viên chủ nhiệm")
    ...                                         # the code under test calls service.url
    otp = service.otp_for(credential_id)        # what the signer would read on the phone
    service.stop()

Self-contained (stdlib and cryptography only, no Django, no portal code) so any test folder can
import it. The client secret reaches the service through the environment, not the command line.
The service's log (stderr) goes to `log_path`, where `otp_for` finds the OTPs and the startup
finds the port.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from cryptography import x509

from tests.reference.process import ReferenceProcess, ReferenceProcessError


class CscServiceError(ReferenceProcessError):
    """The service did not start, or an admin call failed."""


class CscService(ReferenceProcess):
    """`python -m reference.csc serve` on a free port; `stop()` (or `with`) ends it."""

    module = "reference.csc"
    what = "The CSC service"
    error = CscServiceError

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        sad_lifetime: int | None = None,
        otp_lifetime: int | None = None,
        delay_ms: int | None = None,
        client_secret: str | None = None,
        startup_timeout: float = 20,
    ):
        options: list[str] = []
        for flag, value in (
            ("--sad-lifetime", sad_lifetime),
            ("--otp-lifetime", otp_lifetime),
            ("--delay-ms", delay_ms),
        ):
            if value is not None:
                options += [flag, str(value)]
        super().__init__(data_dir, prefix="csc-service-", options=options, startup_timeout=startup_timeout)
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self._start(port=0)

    def secret_env(self) -> dict[str, str]:
        return {"CSC_CLIENT_SECRET": self.client_secret}

    # --- HTTP -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        """One raw request on a new connection: (status, body, response). `secret=""`: none."""
        secret = self.client_secret if secret is None else secret
        sent = {"Content-Type": "application/json", **(headers or {})}
        if secret:
            sent["Authorization"] = f"Bearer {secret}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, response.read(), response
        finally:
            connection.close()

    def post(self, path: str, body: dict[str, Any], *, secret: str | None = None) -> tuple[int, dict]:
        """POST a JSON body: (status, JSON answer or {} when empty)."""
        status, data, _ = self.request("POST", path, json.dumps(body).encode(), secret=secret)
        return status, (json.loads(data) if data else {})

    def _admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.post(path, body)
        if status != 200:
            raise CscServiceError(f"{path}: HTTP {status} {answer}")
        return answer

    # --- Conveniences for tests -----------------------------------------------------------

    def enrol(
        self,
        user_id: str,
        name: str,
        title: str,
        algorithm: str = "ec",
        *,
        organisation: str = "",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> tuple[str, x509.Certificate]:
        """A new credential for the user: (credential id, its certificate)."""
        body: dict[str, Any] = {
            "userID": user_id,
            "name": name,
            "title": title,
            "organisation": organisation,
            "algorithm": algorithm,
        }
        if not_before is not None:
            body["notBefore"] = not_before.isoformat()
        if not_after is not None:
            body["notAfter"] = not_after.isoformat()
        answer = self._admin("/admin/credentials", body)
        cert = x509.load_der_x509_certificate(base64.b64decode(answer["certificates"][0]))
        return answer["credentialID"], cert

    def revoke(self, credential_id: str) -> None:
        self._admin("/admin/credentials/revoke", {"credentialID": credential_id})

    def otp_for(self, credential_id: str, *, timeout: float = 2) -> str:
        """The newest OTP the service logged for the credential, waiting up to `timeout` for one."""
        pattern = re.compile(rf"OTP for credential {re.escape(credential_id)} \(user .*?\): (\d{{6}})$", re.M)
        deadline = time.monotonic() + timeout
        while True:
            found = pattern.findall(self.log())
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise CscServiceError(f"No OTP logged for credential {credential_id}")
            time.sleep(0.02)

    def _get(self, path: str) -> bytes:
        status, data, _ = self.request("GET", path, secret="")
        if status != 200:
            raise CscServiceError(f"GET {path}: HTTP {status}")
        return data

    def root_cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self._get("/ca/root.pem"))

    def issuing_cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self._get("/ca/issuing.pem"))

    def crl(self) -> x509.CertificateRevocationList:
        return x509.load_der_x509_crl(self._get("/ca/crl.der"))
