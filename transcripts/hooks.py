"""What an upper app plugs into transcripts, so that transcripts never imports it (design.md §2).

The chain is portal <- schools <- transcripts <- signing <- registry: transcripts may not import
signing, yet two of its pages need signing's answers. Signing registers them when Django starts
(signing.apps.SigningConfig.ready):

- the signatures offered on a class's records page (signing.selectors.signing_offers);
- the signatures of a year record, checked (signing.selectors.signatures_for), for attaching an
  earlier school's record to a student's book (transcripts.book).

Registry registers two more (registry.apps.RegistryConfig.ready), called inside the transaction
that issues or revokes a version, so the message to the Ministry is written with it:

- a version was issued (RECORD_ISSUED): a submit, or a replace for a correction;
- a version was revoked (RECORD_REVOKED): a cancel.

The record's own status follows the message later, as the relay sends it and the Ministry
answers (issued → queued → acknowledged or rejected), through transcripts' services.

Unregistered (signing not installed), no signature is offered and no record can be attached;
(registry not installed) nothing is forwarded and issued records stay "issued".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_hooks: dict[str, Callable[..., Any]] = {}

SIGNING_OFFERS = "signing_offers"
SIGNATURES_FOR = "signatures_for"
RECORD_ISSUED = "record_issued"
RECORD_REVOKED = "record_revoked"
NAMES = (SIGNING_OFFERS, SIGNATURES_FOR, RECORD_ISSUED, RECORD_REVOKED)


def register(name: str, function: Callable[..., Any]) -> None:
    """Register `function` as the hook `name` (one of NAMES); the last one wins."""
    if name not in NAMES:
        raise ValueError(f"unknown transcripts hook {name!r}")
    _hooks[name] = function


def signing_offers(**kwargs: Any) -> list:
    """The signatures the user may make now on the records shown (none without signing)."""
    hook = _hooks.get(SIGNING_OFFERS)
    return hook(**kwargs) if hook is not None else []


def signatures_for(xml: bytes) -> list:
    """The signatures of a year record, each with `ok` and `messages`; refuses without signing."""
    hook = _hooks.get(SIGNATURES_FOR)
    if hook is None:
        raise RuntimeError("no signature checker registered (signing.apps registers it)")
    return hook(xml)


def record_issued(**kwargs: Any) -> None:
    """A version was issued: school, record_id, version, replaces_version, document (the sealed
    bytes), personal_id (from the document, or None), student_code."""
    hook = _hooks.get(RECORD_ISSUED)
    if hook is not None:
        hook(**kwargs)


def record_revoked(**kwargs: Any) -> None:
    """A version was revoked: school, record_id, version, reason."""
    hook = _hooks.get(RECORD_REVOKED)
    if hook is not None:
        hook(**kwargs)
