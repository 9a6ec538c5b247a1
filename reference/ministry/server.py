"""HTTP for the reference Ministry repository: stdlib ThreadingHTTPServer, JSON in and out.

- HTTP/1.1 with keep-alive (the portal keeps one pooled client per worker); every answer has a
  Content-Length. With `--tls-cert`/`--tls-key` the server speaks TLS (1.2 or later); with
  `--client-ca` too, a client certificate issued by that CA is required: the handshake of a
  client without one fails and nothing is answered. The handshake runs in the connection's
  thread, so a slow client never holds up the accept loop.
- Every route needs `Authorization: Bearer <token>` (compared in constant time): 401 otherwise.
- Routes: POST /v1/messages, GET /v1/receipts/<id> (docs/ministry-contract.md);
  GET|POST /_reference/faults, GET /_reference/state, POST /_reference/schools (tests, demo).
- Faults (the `Faults` knobs) apply to /v1/ requests only, so a test can always reach
  /_reference/: latency first, then a dropped connection, then an injected 503, then (message
  POSTs only) a 429; all of them before anything is stored. `crash_after_store_next` ends the
  process (exit status 3) right after a new message is committed, before its answer.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import os
import random
import re
import socket
import ssl
import threading
import time
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .store import Envelope, MessageStore
from .validate import Validator

log = logging.getLogger("reference.ministry")

MAX_DOCUMENT = 8 * 1024 * 1024  # decoded bytes (the contract)
MAX_BODY = MAX_DOCUMENT * 4 // 3 + 64 * 1024  # its base64 and the envelope
DRAIN_LIMIT = 64 * 1024 * 1024
MAX_ADMIN_BODY = 64 * 1024
CHUNK = 64 * 1024
HANDSHAKE_TIMEOUT = 10
KINDS = ("submit", "replace", "cancel")
KEY = re.compile(r"[0-9a-f]{64}")
RECEIPT_PATH = re.compile(r"/v1/receipts/([A-Za-z0-9_-]{1,100})")


class ApiError(Exception):
    """An answer other than success: HTTP status, contract error code, message."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def idempotency_key(kind: str, record_id: str, version: int, document: bytes | None) -> str:
    """The contract's key: SHA-256 of the document, or of `cancel\\n<record_id>\\n<version>`."""
    if kind == "cancel":
        return hashlib.sha256(f"cancel\n{record_id}\n{version}".encode()).hexdigest()
    return hashlib.sha256(document or b"").hexdigest()


@dataclass
class Faults:
    """The fault knobs, set at start (flags) and at run time (POST /_reference/faults)."""

    error_rate: float = 0.0
    latency_ms: int = 0
    drop_rate: float = 0.0
    throttle_next: int = 0
    retry_after: int = 1
    crash_after_store_next: int = 0
    # 1: the validator decides nothing (messages stay `received`) until set back to 0: a slow
    # Ministry, and a benchmark's way to keep the validator off the machine's cores while it times
    # the path to a receipt.
    hold_verdicts: int = 0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply changes (all or nothing); ValueError names the first bad one."""
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in self.__dataclass_fields__:
                raise ValueError(f"Unknown fault {name!r}; known: {', '.join(self.__dataclass_fields__)}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            if name.endswith("_rate"):
                if not 0 <= value <= 1:
                    raise ValueError(f"{name} must be between 0 and 1")
                checked[name] = float(value)
            else:
                if value != int(value) or value < 0:
                    raise ValueError(f"{name} must be a whole number, 0 or more")
                checked[name] = int(value)
        for name, value in checked.items():
            setattr(self, name, value)


class MinistryHTTPServer(ThreadingHTTPServer):
    """The repository: its store, its validator, its token, its faults; a thread per connection."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        store: MessageStore,
        validator: Validator,
        token: str,
        faults: Faults,
        seed: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        if not token:
            raise ValueError("The repository needs a token")
        super().__init__(address, MinistryRequestHandler)
        self.store = store
        self.validator = validator
        self.token = token.encode()
        self.faults = faults
        self.ssl_context = ssl_context
        self.lock = threading.Lock()  # the faults and the RNG
        self.rng = random.Random(seed)  # noqa: S311 -- fault injection, not a secret

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        assert isinstance(host, str)
        return f"{'https' if self.ssl_context else 'http'}://{host}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            log.warning("%s TLS handshake refused: %s", client_address[0], error)
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]  # typeshed's Self
        finally:
            with contextlib.suppress(OSError):
                tls.shutdown(socket.SHUT_RDWR)
            tls.close()

    # --- Fault decisions (under the lock: one RNG, counters read and decremented once) -----

    def roll(self, rate: float) -> bool:
        with self.lock:
            return rate > 0 and self.rng.random() < rate

    def take(self, name: str) -> bool:
        """Use one of the next-N knob's remaining occurrences; False when none remain."""
        with self.lock:
            left = getattr(self.faults, name)
            if left <= 0:
                return False
            setattr(self.faults, name, left - 1)
            return True


class MinistryRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "hocba-ministry-reference/1"
    timeout = 60
    disable_nagle_algorithm = True  # see reference/csc/server.py: two writes, delayed ACKs
    server: MinistryHTTPServer
    _status: int | None

    # --- Responses ------------------------------------------------------------------------

    def _json(
        self,
        status: int,
        payload: dict[str, Any],
        *,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", 'Bearer realm="ministry"')
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _error(self, error: ApiError, *, close: bool = False) -> None:
        self._json(error.status, error.body(), close=close, headers=error.headers)

    # --- Requests -------------------------------------------------------------------------

    def _authorised(self) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.server.token)

    def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None after answering (no length, too large)."""
        if self.headers.get("Transfer-Encoding"):
            self._error(ApiError(400, "bad_request", "Send the body with a Content-Length"), close=True)
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self._error(ApiError(400, "bad_request", "Malformed Content-Length"), close=True)
            return None
        if length > limit:
            left = length if length <= DRAIN_LIMIT else 0  # read it (bounded): the client sees the answer
            while left > 0:
                chunk = self.rfile.read(min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
            self._error(ApiError(400, "too_large", f"Request body over {limit} bytes"), close=True)
            return None
        return self.rfile.read(length)

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        limit = MAX_BODY if path == "/v1/messages" else MAX_ADMIN_BODY
        body = self._read_body(limit) if self.command == "POST" else b""
        if body is None:
            return
        if not self._authorised():
            self._error(ApiError(401, "unauthorized", "Missing or wrong token (Authorization: Bearer)"))
            return
        if self.command == "POST" and path == "/v1/messages":
            self.server.store.count("received")
        try:
            if path.startswith("/v1/") and self._faulted(path):
                return
            self._json(*self._route(path, body))
        except ApiError as error:
            self._error(error)
        except Exception:
            log.exception("%s %s failed", self.command, self.path)
            self._error(ApiError(500, "server_error", "The repository failed; see its log"), close=True)

    def _faulted(self, path: str) -> bool:
        """Apply the fault knobs; True when the request was answered (or dropped) by one."""
        server = self.server
        if server.faults.latency_ms:
            time.sleep(server.faults.latency_ms / 1000)
        if server.roll(server.faults.drop_rate):
            server.store.count("dropped")
            log.info("%s %s dropped (fault)", self.command, self.path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if server.roll(server.faults.error_rate):
            server.store.count("errors_injected")
            raise ApiError(503, "unavailable", "Injected fault: the repository is unavailable")
        if self.command == "POST" and path == "/v1/messages" and server.take("throttle_next"):
            server.store.count("throttled")
            retry_after = str(server.faults.retry_after)
            raise ApiError(
                429,
                "too_many_requests",
                f"Slow down; retry in {retry_after} s",
                headers={"Retry-After": retry_after},
            )
        return False

    def _route(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        method = self.command
        if path == "/v1/messages":
            self._allow("POST")
            return self._message(body)
        found = RECEIPT_PATH.fullmatch(path)
        if found:
            self._allow("GET")
            message = self.server.store.by_receipt(found[1])
            if message is None:
                raise ApiError(404, "not_found", f"No receipt {found[1]}")
            return 200, message.receipt()
        if path == "/_reference/faults":
            self._allow("GET", "POST")
            if method == "POST":
                changes = self._json_object(body)
                with self.server.lock:
                    try:
                        self.server.faults.update(changes)
                    except ValueError as error:
                        raise ApiError(400, "bad_request", str(error)) from error
                log.info("faults now %s", asdict(self.server.faults))
            with self.server.lock:
                return 200, asdict(self.server.faults)
        if path == "/_reference/state":
            self._allow("GET")
            return 200, self.server.store.state()
        if path == "/_reference/schools":
            self._allow("POST")
            codes = self._json_object(body).get("codes")
            if not isinstance(codes, list) or not all(isinstance(c, str) and c.strip() for c in codes):
                raise ApiError(400, "bad_request", '"codes" must be a list of school codes')
            schools = self.server.store.schools_add([c.strip() for c in codes])
            log.info("schools registered: %s", ", ".join(c.strip() for c in codes))
            return 200, {"schools": schools}
        raise ApiError(404, "not_found", f"No such resource: {path}")

    def _allow(self, *methods: str) -> None:
        if self.command not in methods:
            raise ApiError(405, "method_not_allowed", f"{self.command} is not allowed here")

    @staticmethod
    def _json_object(body: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        if not isinstance(payload, dict):
            raise ApiError(400, "bad_request", "The body must be a JSON object")
        return payload

    # --- POST /v1/messages ----------------------------------------------------------------

    def _message(self, body: bytes) -> tuple[int, dict[str, Any]]:
        envelope = self._envelope(self._json_object(body))
        outcome = self.server.store.put(envelope)
        if outcome.result == "conflict":
            raise ApiError(409, "conflict", outcome.detail)
        assert outcome.message is not None
        first = {"receipt_id": outcome.message.receipt_id, "status": "received"}
        if outcome.result == "replayed":
            log.info("%s replayed for key %s", first["receipt_id"], envelope.key[:12])
            return 200, first
        log.info(
            "%s stored: %s %s v%d (key %s)",
            first["receipt_id"],
            envelope.kind,
            envelope.record_id,
            envelope.version,
            envelope.key[:12],
        )
        if self.server.take("crash_after_store_next"):
            log.warning("crash after store (fault): exiting before the answer")
            logging.shutdown()
            os._exit(3)
        self.server.validator.wake()
        return 202, first

    def _envelope(self, payload: dict[str, Any]) -> Envelope:
        """The message checked against the contract's envelope (400 otherwise), key included."""

        def bad(message: str, code: str = "bad_request") -> ApiError:
            return ApiError(400, code, message)

        kind = payload.get("kind")
        if kind not in KINDS:
            raise bad(f'"kind" must be one of {", ".join(KINDS)}')
        school_code, record_id = payload.get("school_code"), payload.get("record_id")
        for name, value in (("school_code", school_code), ("record_id", record_id)):
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise bad(f'"{name}" must be a non-empty string')
        assert isinstance(school_code, str) and isinstance(record_id, str)  # checked just above
        version = payload.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise bad('"version" must be a whole number, 1 or more')
        if kind == "submit" and version != 1:
            raise bad("A submit carries version 1 (a later version is a replace)")
        replaces = payload.get("replaces_version")
        if kind == "replace":
            if isinstance(replaces, bool) or replaces != version - 1 or version < 2:
                raise bad('A replace carries "replaces_version": "version" - 1 (and "version" 2 or more)')
        elif replaces is not None:
            raise bad(f'A {kind} carries "replaces_version": null')
        personal_id = payload.get("personal_id")
        if personal_id is not None and not isinstance(personal_id, str):
            raise bad('"personal_id" must be a string or null')
        reason = payload.get("reason", "")
        if reason is None:
            reason = ""
        if not isinstance(reason, str):
            raise bad('"reason" must be a string')
        encoded = payload.get("document")
        document: bytes | None = None
        if kind == "cancel":
            if encoded not in (None, ""):
                raise bad("A cancel carries no document")
        else:
            if not isinstance(encoded, str) or not encoded:
                raise bad(f'A {kind} carries the sealed XML in "document" (base64)')
            if len(encoded) > (MAX_DOCUMENT + 2) // 3 * 4:
                raise bad(f"The document is over {MAX_DOCUMENT} bytes", "too_large")
            try:
                document = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as error:
                raise bad(f'"document" is not base64 (standard alphabet, padded): {error}') from error
            if len(document) > MAX_DOCUMENT:
                raise bad(f"The document is over {MAX_DOCUMENT} bytes", "too_large")
        given = self.headers.get("Idempotency-Key", "")
        if not KEY.fullmatch(given):
            raise bad("The Idempotency-Key header must be 64 lower-case hex digits (SHA-256)", "bad_key")
        expected = idempotency_key(kind, record_id, version, document)
        if not hmac.compare_digest(given, expected):
            what = "cancel\\n<record_id>\\n<version>" if kind == "cancel" else "the decoded document"
            raise bad(f"The Idempotency-Key is not the SHA-256 of {what}", "key_mismatch")
        return Envelope(
            key=given,
            kind=kind,
            school_code=school_code.strip(),
            record_id=record_id.strip(),
            version=version,
            replaces_version=replaces if kind == "replace" else None,
            personal_id=personal_id,
            document=document,
            reason=reason,
        )

    # --- Dispatch and logging -------------------------------------------------------------

    def do_GET(self) -> None:
        self._started = time.perf_counter()
        self._handle()

    def do_POST(self) -> None:
        self._started = time.perf_counter()
        self._handle()

    def _not_allowed(self) -> None:
        self._started = time.perf_counter()
        self._read_body(MAX_ADMIN_BODY)
        if self._status is None:
            self._error(ApiError(405, "method_not_allowed", f"{self.command} is not allowed"), close=True)

    do_PUT = do_DELETE = do_PATCH = _not_allowed

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per answer, written in handle_one_request

    def log_message(self, format: str, *args: Any) -> None:
        log.warning("%s %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        self._status = None
        super().handle_one_request()
        if self._status is not None:
            elapsed = (time.perf_counter() - getattr(self, "_started", time.perf_counter())) * 1000
            log.info("%s %s %d %.1f ms", self.command, self.path, self._status, elapsed)
