"""What an upper app plugs into transcripts, so that transcripts never imports it (design.md §2).

The chain is portal <- schools <- transcripts <- signing <- registry: transcripts may not import
signing, yet two of its pages need signing's answers. Signing registers them when Django starts
(signing.apps.SigningConfig.ready):

- the signatures offered on a class's records page (signing.selectors.signing_offers);
- the signatures of a year record, checked (signing.selectors.signatures_for), for attaching an
  earlier school's record to a student's book (transcripts.book).

Unregistered (signing not installed), no signature is offered and no record can be attached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_hooks: dict[str, Callable[..., Any]] = {}

SIGNING_OFFERS = "signing_offers"
SIGNATURES_FOR = "signatures_for"


def register(name: str, function: Callable[..., Any]) -> None:
    """Register `function` as the hook `name` (SIGNING_OFFERS or SIGNATURES_FOR); the last one wins."""
    if name not in (SIGNING_OFFERS, SIGNATURES_FOR):
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
