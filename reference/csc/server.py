"""HTTP for the reference signing service: stdlib ThreadingHTTPServer, JSON in and out.

- HTTP/1.1 with keep-alive, as the portal's client keeps one connection open for a batch.
- Every route but /ca/* needs `Authorization: Bearer <client secret>` (the portal is the one
  client); a wrong or missing secret gets 401 invalid_token, compared in constant time.
- Bodies are JSON objects of at most 1 MB (MAX_BODY); a larger one is read and thrown away
  (up to DRAIN_LIMIT, so the client sees the 413 instead of a reset connection), then refused.
- Errors are always CSC-style JSON `{"error", "error_description"}`; an unexpected exception is
  logged with its traceback and answered 500 server_error, never with the traceback.
- Public, without the secret: GET /ca/root.pem, /ca/issuing.pem, /ca/crl.der (a CRL made on
  each request from the current revocations), as a CA publishes them for relying parties.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from .service import ApiError, CscService

log = logging.getLogger("reference.csc")

MAX_BODY = 1024 * 1024
DRAIN_LIMIT = 16 * 1024 * 1024
CHUNK = 64 * 1024


class CscHTTPServer(ThreadingHTTPServer):
    """One service, one client secret; a thread per connection."""

    daemon_threads = True  # a stuck client must not keep the process alive at shutdown

    def __init__(self, address: tuple[str, int], service: CscService, client_secret: str):
        if not client_secret:
            raise ValueError("The service needs a client secret")
        super().__init__(address, CscRequestHandler)
        self.service = service
        self.client_secret = client_secret.encode()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        assert isinstance(host, str)  # an AF_INET socket's name (typeshed allows bytes for others)
        return f"http://{host}:{port}"


class CscRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "hocba-csc-reference/1"
    timeout = 60  # an idle or trickling connection gives its thread back after a minute
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers (40 ms on Linux) and a keep-alive client gets ~22 answers/s.
    disable_nagle_algorithm = True
    server: CscHTTPServer
    _status: int | None  # of the answer sent, for the log line; None until one is

    # --- Responses ------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, *, close: bool = False) -> None:
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", 'Bearer realm="csc"')
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any] | None, *, close: bool = False) -> None:
        if payload is None:  # 204: CSC's answer to sendOTP
            self._status = status
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(payload, ensure_ascii=False).encode()
        self._send(status, body, "application/json; charset=utf-8", close=close)

    def _error(self, error: ApiError, *, close: bool = False) -> None:
        self._json(error.status, error.body(), close=close)

    # --- Requests -------------------------------------------------------------------------

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.server.client_secret
        )

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering (too large, no length)."""
        if self.headers.get("Transfer-Encoding"):
            self._error(ApiError(411, "invalid_request", "Send the body with a Content-Length"), close=True)
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self._error(ApiError(400, "invalid_request", "Malformed Content-Length"), close=True)
            return None
        if length > MAX_BODY:
            # Read and drop it (bounded), so the answer arrives rather than a reset connection.
            left = length if length <= DRAIN_LIMIT else 0
            while left > 0:
                chunk = self.rfile.read(min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
            self._error(ApiError(413, "invalid_request", f"Request body over {MAX_BODY} bytes"), close=True)
            return None
        return self.rfile.read(length)

    def do_GET(self) -> None:
        self._started = time.perf_counter()
        store = self.server.service.store
        try:
            if self.path == "/ca/root.pem":
                self._send(200, store.ca.root_cert.public_bytes(Encoding.PEM), "application/x-pem-file")
            elif self.path == "/ca/issuing.pem":
                self._send(200, store.ca.issuing_cert.public_bytes(Encoding.PEM), "application/x-pem-file")
            elif self.path == "/ca/crl.der":
                self._send(200, store.crl().public_bytes(Encoding.DER), "application/pkix-crl")
            else:
                self._error(ApiError(404, "not_found", f"No such resource: {self.path}"))
        except Exception:
            log.exception("GET %s failed", self.path)
            self._error(ApiError(500, "server_error", "The service failed; see its log"), close=True)

    def do_POST(self) -> None:
        self._started = time.perf_counter()
        body = self._read_body()
        if body is None:
            return
        if not self._authorised():
            self._error(ApiError(401, "invalid_token", "Missing or wrong client secret (Bearer)"))
            return
        operation = self.server.service.routes.get(self.path)
        if operation is None:
            self._error(ApiError(404, "not_found", f"No such method: {self.path}"))
            return
        try:
            payload = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        if not isinstance(payload, dict):
            self._error(ApiError(400, "invalid_request", "The body must be a JSON object"))
            return
        try:
            answer = operation(payload)
        except ApiError as error:
            self._error(error)
            return
        except Exception:
            log.exception("POST %s failed", self.path)
            self._error(ApiError(500, "server_error", "The service failed; see its log"), close=True)
            return
        self._json(200 if answer is not None else 204, answer)

    def _not_allowed(self) -> None:
        self._started = time.perf_counter()
        self._read_body()
        self._error(ApiError(405, "invalid_request", f"{self.command} is not allowed here"), close=True)

    do_PUT = do_DELETE = do_PATCH = _not_allowed

    # --- Logging --------------------------------------------------------------------------

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Called by send_response; the line is written once the answer is complete (see below).
        pass

    def log_message(self, format: str, *args: Any) -> None:
        log.warning("%s %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        self._status = None
        super().handle_one_request()
        if self._status is not None:
            elapsed = (time.perf_counter() - getattr(self, "_started", time.perf_counter())) * 1000
            log.info("%s %s %d %.1f ms", self.command, self.path, self._status, elapsed)
