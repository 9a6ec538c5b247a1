"""The adapter that speaks the Ministry's protocol (docs/ministry-contract.md), and nothing else does.

The outbox, the relay and the operators' pages deal in `Message`, `Answer` and `Verdict`; this
module turns them into HTTPS requests and back. A real adapter, once the Department is given the
Ministry's specification, replaces this module and keeps those three shapes.

Transport: one `httpx.Client` per process (pooled keep-alive connections, made on first use,
forgotten in a forked child), with the Department's client certificate (mutual TLS), the CA that
vouches for the repository, and its bearer token. Settings: HOCBA_MINISTRY_URL (empty: nothing is
sent, messages wait), HOCBA_MINISTRY_TOKEN, HOCBA_MINISTRY_CA, HOCBA_MINISTRY_CLIENT_CERT,
HOCBA_MINISTRY_CLIENT_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
from django.conf import settings

from .choices import MessageKind

CONNECT_TIMEOUT = 5.0
# A receipt id is put in a URL path: letters, digits and a few separators only.
RECEIPT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
# At most this many reasons of a rejection are kept (each cut to 500 characters).
MAX_REASONS = 20
READ_TIMEOUT = 30.0
KEEPALIVE_EXPIRY = 30.0
# 429 without a usable Retry-After: wait this long.
DEFAULT_RETRY_AFTER = 5.0


def message_key(*, kind: str, record_id: str, version: int, document: bytes | None) -> str:
    """The Idempotency-Key: the SHA-256 of the signed payload (the document), or for a cancel of
    `cancel\\n<record_id>\\n<version>`."""
    if kind == MessageKind.CANCEL:
        return hashlib.sha256(f"cancel\n{record_id}\n{version}".encode()).hexdigest()
    assert document is not None
    return hashlib.sha256(document).hexdigest()


@dataclass(frozen=True)
class Message:
    """One message, as the relay hands it over."""

    key: str
    kind: str
    school_code: str
    record_id: str
    version: int
    replaces_version: int | None
    personal_id: str
    document: bytes | None = None
    reason: str = ""


@dataclass(frozen=True)
class Answer:
    """What became of a send.

    outcome: "received" (stored by the repository, `receipt_id` to poll), "throttled" (429: not
    before `retry_after` seconds), "retry" (a failure worth trying again: 5xx, 401/403, no answer),
    "refused" (the repository will never take this message as it is: 400, 409).
    """

    outcome: str
    status: int | None = None
    receipt_id: str = ""
    retry_after: float | None = None
    error: str = ""


@dataclass(frozen=True)
class Verdict:
    """What the repository says of a receipt.

    outcome: "received" (not decided yet), "accepted", "rejected" (`reasons`: [{"code", "message"}]),
    "unknown" (404: the repository lost the receipt; the message is sent again, same key), "retry"
    (no usable answer now).
    """

    outcome: str
    status: int | None = None
    reasons: list[dict[str, str]] = field(default_factory=list)
    error: str = ""


_http: httpx.Client | None = None
_http_lock = threading.Lock()


def http_client() -> httpx.Client:
    """The process's one client to the repository, made on first use from the settings."""
    global _http
    with _http_lock:
        if _http is None:
            context = ssl.create_default_context(cafile=settings.HOCBA_MINISTRY_CA or None)
            if settings.HOCBA_MINISTRY_CLIENT_CERT:
                context.load_cert_chain(
                    settings.HOCBA_MINISTRY_CLIENT_CERT, settings.HOCBA_MINISTRY_CLIENT_KEY or None
                )
            _http = httpx.Client(
                base_url=settings.HOCBA_MINISTRY_URL,
                timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                limits=httpx.Limits(
                    max_connections=16, max_keepalive_connections=8, keepalive_expiry=KEEPALIVE_EXPIRY
                ),
                verify=context,
                trust_env=False,
                follow_redirects=False,
                # No token configured: no header (an empty "Bearer " is not even valid HTTP).
                headers={"Authorization": f"Bearer {token}"}
                if (token := settings.HOCBA_MINISTRY_TOKEN)
                else {},
            )
        return _http


def http_client_reset() -> None:
    """Close and forget the client (settings changed: tests, a reconfigured process)."""
    global _http
    with _http_lock:
        if _http is not None:
            _http.close()
        _http = None


def _forget_after_fork() -> None:
    # A forked worker must not share its parent's sockets: it makes its own pool on first use.
    global _http
    _http = None


os.register_at_fork(after_in_child=_forget_after_fork)


def configured() -> bool:
    """Whether a repository is configured (HOCBA_MINISTRY_URL); without one nothing is sent."""
    return bool(settings.HOCBA_MINISTRY_URL)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, min(float(response.headers.get("Retry-After", "")), 3600.0))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _error_of(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")[:500]
    except (ValueError, AttributeError):
        return response.text[:200]


def send(message: Message) -> Answer:
    """POST the message (docs/ministry-contract.md, Messages)."""
    body: dict[str, Any] = {
        "kind": message.kind,
        "school_code": message.school_code,
        "record_id": message.record_id,
        "version": message.version,
        "replaces_version": message.replaces_version,
        "personal_id": message.personal_id,
        "reason": message.reason,
    }
    if message.document is not None:
        body["document"] = base64.b64encode(message.document).decode("ascii")
    try:
        response = http_client().post("v1/messages", json=body, headers={"Idempotency-Key": message.key})
    except httpx.HTTPError as error:
        return Answer("retry", error=f"{type(error).__name__}: {error}"[:500])
    status = response.status_code
    if status in (200, 202):
        try:
            receipt = str(response.json()["receipt_id"])
        except (ValueError, KeyError, TypeError):
            return Answer("retry", status, error="No receipt in the answer")
        if not RECEIPT_ID.fullmatch(receipt):
            return Answer("retry", status, error="A receipt id the portal does not accept")
        return Answer("received", status, receipt_id=receipt)
    if status == 429:
        return Answer("throttled", status, retry_after=_retry_after(response), error="429 Too Many Requests")
    if status in (400, 409, 413, 422):
        return Answer("refused", status, error=_error_of(response))
    return Answer("retry", status, error=f"HTTP {status} {_error_of(response)}".strip())


def verdict(receipt_id: str) -> Verdict:
    """GET the receipt (docs/ministry-contract.md, Verdicts)."""
    try:
        response = http_client().get(f"v1/receipts/{receipt_id}")
    except httpx.HTTPError as error:
        return Verdict("retry", error=f"{type(error).__name__}: {error}"[:500])
    status = response.status_code
    if status == 404:
        return Verdict("unknown", status, error="The repository does not know this receipt")
    if status != 200:
        return Verdict("retry", status, error=f"HTTP {status} {_error_of(response)}".strip())
    try:
        answer = response.json()
        outcome = answer["status"]
        reasons = [
            {"code": str(r.get("code", ""))[:50], "message": str(r.get("message", ""))[:500]}
            for r in (answer.get("reasons") or [])[:MAX_REASONS]
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        return Verdict("retry", status, error="An answer the portal does not understand")
    if outcome not in ("received", "accepted", "rejected"):
        return Verdict("retry", status, error=f"Unknown receipt status {outcome!r}")
    return Verdict(outcome, status, reasons=reasons)
