"""The reference Ministry repository in a subprocess, for tests: real process, real HTTPS, mutual TLS.

    service = MinistryService(trust_roots=[roots_pem], untrusted=[issuing_pem])
    service.schools_add("79000701")
    with service.client() as client:            # httpx, the Department's client certificate
        client.post("/v1/messages", ...)
    service.faults(error_rate=1.0)               # POST /_reference/faults
    service.state()                              # GET /_reference/state
    service.stop()

Self-contained (stdlib, cryptography and httpx; no Django, no portal code) so any test folder
can import it. A throwaway CA issues the server's certificate (127.0.0.1, localhost) and the
Department's client certificate; their PEM paths are `ca_path`, `client_cert_path`,
`client_key_path`. The token reaches the process through $MINISTRY_TOKEN, not the command
line. The log (stderr) goes to `log_path`, where the startup finds the URL.
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Any

import httpx

from reference.ministry.tls import make_tls  # the same certificates make run uses (no Django)
from tests.reference.process import ReferenceProcess, ReferenceProcessError


class MinistryServiceError(ReferenceProcessError):
    """The repository did not start, or a reference call failed."""


class MinistryService(ReferenceProcess):
    """`python -m reference.ministry serve` over mutual TLS on a free port; `stop()` (or `with`) ends it."""

    module = "reference.ministry"
    what = "The repository"
    error = MinistryServiceError

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        trust_roots: list[Path] | tuple[Path, ...] = (),
        untrusted: list[Path] | tuple[Path, ...] = (),
        token: str | None = None,
        seed: int = 2026,
        options: list[str] | None = None,
        startup_timeout: float = 20,
    ):
        extra_options = options
        self.tls_dir = Path(tempfile.mkdtemp(prefix="ministry-tls-"))
        make_tls(self.tls_dir)
        self.ca_path = self.tls_dir / "ca.pem"
        self.client_cert_path = self.tls_dir / "client.pem"
        self.client_key_path = self.tls_dir / "client.key"
        self.token = token or secrets.token_urlsafe(24)
        options = [
            "--tls-cert", str(self.tls_dir / "server.pem"),
            "--tls-key", str(self.tls_dir / "server.key"),
            "--client-ca", str(self.ca_path),
            "--seed", str(seed),
        ]  # fmt: skip
        if trust_roots:
            options += ["--trust-roots", *map(str, trust_roots)]
        if untrusted:
            options += ["--untrusted-pem", *map(str, untrusted)]
        options += extra_options or []
        super().__init__(
            data_dir, prefix="ministry-service-", options=options, startup_timeout=startup_timeout
        )
        self._admin: httpx.Client | None = None
        self._start(port=0)

    def secret_env(self) -> dict[str, str]:
        return {"MINISTRY_TOKEN": self.token}

    def stop(self, *, keep_data: bool = False) -> None:
        """End the process; remove the temp data (and the TLS files) unless kept."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        super().stop(keep_data=keep_data)
        if not keep_data:
            shutil.rmtree(self.tls_dir, ignore_errors=True)

    # --- Clients --------------------------------------------------------------------------

    def ssl_context(self, *, client_cert: bool = True, stranger: bool = False) -> ssl.SSLContext:
        """Trusts the repository's CA; presents the Department's certificate (or a stranger's, or none)."""
        context = ssl.create_default_context(cafile=str(self.ca_path))
        if stranger:
            context.load_cert_chain(self.tls_dir / "stranger.pem", self.tls_dir / "stranger.key")
        elif client_cert:
            context.load_cert_chain(self.client_cert_path, self.client_key_path)
        return context

    def client(
        self, *, token: str | None = None, client_cert: bool = True, stranger: bool = False, **kwargs: Any
    ) -> httpx.Client:
        """An httpx client on the repository: its CA trusted, the Department's certificate and token."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=self.url,
            verify=self.ssl_context(client_cert=client_cert, stranger=stranger),
            headers=headers,
            timeout=kwargs.pop("timeout", httpx.Timeout(30, connect=5)),
            **kwargs,
        )

    def _reference(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._admin is None:
            self._admin = self.client()
        try:
            response = self._admin.request(method, path, json=body)
        except httpx.TransportError:
            self._admin.close()  # a connection the old process held: try once on a new one
            self._admin = self.client()
            response = self._admin.request(method, path, json=body)
        if response.status_code != 200:
            raise MinistryServiceError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json()

    # --- Conveniences for tests -----------------------------------------------------------

    def faults(self, **knobs: float | int) -> dict[str, Any]:
        """Set fault knobs (error_rate, latency_ms, drop_rate, throttle_next, retry_after,
        crash_after_store_next); the knobs now. Without arguments: read them."""
        if not knobs:
            return self._reference("GET", "/_reference/faults")
        return self._reference("POST", "/_reference/faults", knobs)

    def state(self) -> dict[str, Any]:
        return self._reference("GET", "/_reference/state")

    def schools_add(self, *codes: str) -> list[str]:
        return self._reference("POST", "/_reference/schools", {"codes": list(codes)})["schools"]
