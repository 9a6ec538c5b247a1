"""HTTP for the reference timestamping service: stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive.

- POST / with `Content-Type: application/timestamp-query` and a DER TimeStampReq of at most
  MAX_BODY bytes: 200 `application/timestamp-reply` (RFC 3161 section 3.4), granted or rejected
  inside the reply; a wrong content type is 415, an oversized body 413.
- GET /ca/root.pem, /ca/issuing.pem, /ca/tsa.pem: the certificates; /ca/crl.der: the issuing
  CA's CRL, made on each request (the TSA certificate, once revoked, is listed there).
- `delay_ms` is added to every timestamp (tests, benchmarks); an unexpected exception is logged
  and answered 500 without the traceback.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.serialization import Encoding

from .authority import Authority

log = logging.getLogger("reference.tsa")

MAX_BODY = 16 * 1024


class TsaHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], authority: Authority, *, delay_ms: int = 0):
        self.authority = authority
        self.delay_ms = delay_ms
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        assert isinstance(host, str)  # an AF_INET socket's name (typeshed allows bytes for others)
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hocba-tsa-reference/1"
    timeout = 60  # an idle keep-alive connection gives its thread back after a minute
    # Headers and body go out in two writes: without this the body waits for the client's delayed
    # ACK (40 ms on Linux), as the reference CSC service found.
    disable_nagle_algorithm = True
    server: TsaHTTPServer

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        authority = self.server.authority
        publications = {
            "/ca/root.pem": lambda: (
                authority.ca.root_cert.public_bytes(Encoding.PEM),
                "application/x-pem-file",
            ),
            "/ca/issuing.pem": lambda: (
                authority.ca.issuing_cert.public_bytes(Encoding.PEM),
                "application/x-pem-file",
            ),
            "/ca/tsa.pem": lambda: (authority.cert.public_bytes(Encoding.PEM), "application/x-pem-file"),
            "/ca/crl.der": lambda: (authority.crl().public_bytes(Encoding.DER), "application/pkix-crl"),
        }
        if self.path not in publications:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        body, content_type = publications[self.path]()
        self._send(HTTPStatus.OK, body, content_type)

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"request too large\n", "text/plain")
            return
        body = self.rfile.read(length)
        if self.path not in ("/", "/tsa"):
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/timestamp-query":
            self._send(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"application/timestamp-query expected\n", "text/plain"
            )
            return
        if self.server.delay_ms:
            time.sleep(self.server.delay_ms / 1000)
        try:
            reply = self.server.authority.respond(body)
        except Exception:
            log.exception("timestamp request failed")
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"server error\n", "text/plain")
            return
        self._send(HTTPStatus.OK, reply, "application/timestamp-reply")
