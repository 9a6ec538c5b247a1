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

import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from reference.ministry.tls import make_tls  # the same certificates make run uses (no Django)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (https?://\S+)")


class MinistryServiceError(RuntimeError):
    """The repository did not start, or a reference call failed."""


class MinistryService:
    """`python -m reference.ministry serve` over mutual TLS on a free port; `stop()` (or `with`) ends it."""

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
        self._owns_data = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="ministry-service-"))
        self.tls_dir = Path(tempfile.mkdtemp(prefix="ministry-tls-"))
        make_tls(self.tls_dir)
        self.ca_path = self.tls_dir / "ca.pem"
        self.client_cert_path = self.tls_dir / "client.pem"
        self.client_key_path = self.tls_dir / "client.key"
        self.token = token or secrets.token_urlsafe(24)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.options = [
            "--tls-cert", str(self.tls_dir / "server.pem"),
            "--tls-key", str(self.tls_dir / "server.key"),
            "--client-ca", str(self.ca_path),
            "--seed", str(seed),
        ]  # fmt: skip
        if trust_roots:
            self.options += ["--trust-roots", *map(str, trust_roots)]
        if untrusted:
            self.options += ["--untrusted-pem", *map(str, untrusted)]
        self.options += options or []
        self.startup_timeout = startup_timeout
        self.url = ""
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log_start = 0
        self._admin: httpx.Client | None = None
        self._start(port=0)

    def __enter__(self) -> MinistryService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- Process --------------------------------------------------------------------------

    def _start(self, *, port: int) -> None:
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = {
            **os.environ,
            "MINISTRY_TOKEN": self.token,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        }
        command = [sys.executable, "-m", "reference.ministry", "serve", "--data", str(self.data_dir)]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [*command, "--port", str(port), *self.options],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log())
            if found:
                self.url = found[1]
                self.port = urlsplit(self.url).port or 0
                return
            if self._process.poll() is not None:
                raise MinistryServiceError(
                    f"The repository exited ({self._process.returncode}):\n{self.log()}"
                )
            time.sleep(0.02)
        self.stop(keep_data=True)
        raise MinistryServiceError(
            f"The repository did not listen within {self.startup_timeout} s:\n{self.log()}"
        )

    def restart(self) -> None:
        """Stop (if still running) and start again on the same data directory and port."""
        port = self.port
        self.stop(keep_data=True)
        self._start(port=port)

    def stop(self, *, keep_data: bool = False) -> None:
        """End the process (SIGTERM, then SIGKILL after 5 s); remove the temp data unless kept."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if not keep_data:
            shutil.rmtree(self.tls_dir, ignore_errors=True)
            if self._owns_data:
                shutil.rmtree(self.data_dir, ignore_errors=True)
                self.log_path.unlink(missing_ok=True)

    def wait_exit(self, timeout: float = 10) -> int:
        """Wait for the process to end on its own (a crash fault); its exit status."""
        assert self._process is not None
        return self._process.wait(timeout=timeout)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        """What the current process has logged so far."""
        with open(self.log_path, "rb") as handle:
            handle.seek(self._log_start)
            return handle.read().decode("utf-8", "replace")

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
