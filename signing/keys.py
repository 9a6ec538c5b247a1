"""Signing keys for registered certificates, loaded once per worker process.

`loaded_key(certificate, secret)` unlocks the key of a registered certificate with what the signer
gave when confirming a batch: the PIN of a PKCS#12 file or of a PKCS#11 token, or the SAD (the
signature activation data) a CSC remote-signing service returned for the batch. The result is
cached per process by (certificate, secret): a batch of 1,500 records unlocks its key once. The
PKCS#11 backend keeps its own per-process session pool (signing.backends.pkcs11).

The key loaded must be the registered certificate's: a key file or token that now holds another
certificate is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from collections import OrderedDict

from django.conf import settings

from . import trust
from .backends import KeyLoadError, LoadedKey, backend_for
from .backends.csc import CscClient, configured_client
from .models import SigningCertificate

MAX_CACHED = 32
_cache: OrderedDict[tuple[int, str], LoadedKey] = OrderedDict()
_lock = threading.Lock()


def _forget_after_fork() -> None:
    _cache.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def csc_client() -> CscClient:
    """The client of the configured CSC remote-signing service (HOCBA_CSC_URL)."""
    return configured_client()


def pkcs11_library() -> str | None:
    return getattr(settings, "HOCBA_PKCS11_LIBRARY", "") or None


def _load(certificate: SigningCertificate, secret: str, expires_at: dt.datetime | None) -> LoadedKey:
    """The registered backend's loader (signing.backends.backend_for), no choosing here."""
    return backend_for(certificate.backend)(certificate, secret, expires_at)


def loaded_key(
    certificate: SigningCertificate, secret: str, *, expires_at: dt.datetime | None = None
) -> LoadedKey:
    """The certificate's key, unlocked by `secret`; BackendError if it cannot be (retryable when
    the service or device is down for a while), KeyLoadError("key_mismatch") if it is another's.

    For a CSC credential `secret` is the SAD and `expires_at` its expiry."""
    cache_key = (certificate.pk, hashlib.sha256(secret.encode()).hexdigest())
    with _lock:
        if cache_key in _cache:
            _cache.move_to_end(cache_key)
            return _cache[cache_key]
    key = _load(certificate, secret, expires_at)
    if trust.fingerprint(key.cert) != certificate.fingerprint:
        raise KeyLoadError(
            "key_mismatch", "The key found belongs to another certificate than the one registered"
        )
    with _lock:
        _cache[cache_key] = key
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
    return key
