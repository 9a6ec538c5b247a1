"""PKCS#11 tokens and HSMs: the school seal's private key never leaves the device.

    loaded = pkcs11_load(library=None, token_label="08100501", pin=pin, key_label="seal")
    sign_year_record(xml, key=loaded.key, cert=loaded.cert, chain=loaded.chain, role="seal")

What the token must hold, under one label (`key_label`):

- a private key, ECDSA P-256 or RSA of at least 2048 bits, allowed to sign (CKA_SIGN), sensitive
  and not extractable: a key that could be exported from the token is refused, since the point of
  the token is that the seal cannot be copied;
- its X.509 certificate, as a certificate object (CKO_CERTIFICATE) with the same label.

The chain is read from the token too: the other certificate objects (any label) that issued the
seal's certificate, walked up issuer by issuer (signature checked) and stopping before a
self-signed root, which a verifier pins rather than receives. A token with no intermediates gives
an empty chain; the verifier then needs them from elsewhere. So a token provisioned with its CA
chain is self-contained, as `signing.softhsm` provisions it.

How this module uses the library, and why:

- Loaded once per process: `pkcs11_load` caches the LoadedKey by (library, token, key label, PIN
  digest), so a Celery task may call it for every record at no cost. A refused PIN is never
  cached as loaded; it is remembered as refused, so that a worker retrying in a loop does not
  use up the token's few PIN tries (smart cards lock after three).
- One login per token per process. PKCS#11 keeps the login state per application and token, not
  per session: logging in on one session logs in every session of the process on that token, a
  second C_Login is refused with CKR_USER_ALREADY_LOGGED_IN (without the token looking at the
  PIN), and logging out (python-pkcs11 does on closing a session that logged in) logs them all
  out. Each token therefore has one SessionPool, shared by every key on it: its first session
  logs in with the user PIN, the later ones share that login. For the same reason a second,
  different PIN for a token this process is logged in to cannot be checked, and is refused.
- Calls into one library are serialised. python-pkcs11 calls C_Initialize with no arguments,
  which tells the library that the application will not call it from several threads at once
  (SoftHSM2 then switches its own locking off). Threads may sign at the same time: each takes its
  own session from the pool and they queue for the library. Parallel signing comes from worker
  processes, each with its own library state.
- Fork: PKCS#11 state must not cross a fork (the parent's sessions are the parent's). In the
  child the caches are emptied (os.register_at_fork), and the library is initialised again in
  the child before its first use there. Best is never to load a key in the Celery parent at all:
  keys load lazily, on the first signature in each worker process.

Only the registered loader, `pkcs11_key`, reads a Django setting (HOCBA_PKCS11_LIBRARY, lazily);
everything else takes the library path, labels and PIN from its caller. The module imports no
Django model: scripts/devenv.py loads it (via signing.softhsm) without Django.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import queue
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pkcs11
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from django.conf import settings
from pkcs11 import Attribute, CertificateType, KeyType, Mechanism, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11

from . import DigestSigner, KeyLoadError, LoadedKey, public_key_algorithm, register

if TYPE_CHECKING:
    import datetime as dt

    from ..models import SigningCertificate

# Where Debian puts SoftHSM2 (the package's own path, then the multiarch one of older releases).
DEFAULT_LIBRARIES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
)
DEFAULT_POOL_SIZE = 4
# How long a signature waits for a free session before it is reported as a device error.
BORROW_TIMEOUT = 30.0

# DER of DigestInfo{sha256, NULL} without the digest (RFC 8017 §9.2, note 1): CKM_RSA_PKCS pads
# what it is given, so the DigestInfo is prefixed here.
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
P256_COORDINATE_BYTES = 32

ObjectAttributes = dict[Any, Any]


class Pkcs11Error(KeyLoadError):
    """codes: no_library, no_token, wrong_pin, locked_pin, no_key, no_certificate, key_mismatch,
    unsupported_key, device_error.

    Only device_error is worth retrying (`retryable`): the others need a person (a PIN, a label, a
    certificate), and retrying wrong_pin would lock the token."""

    @property
    def retryable(self) -> bool:
        return self.code == "device_error"


def default_library() -> str | None:
    """The SoftHSM2 library of this machine, or None: the first of DEFAULT_LIBRARIES that exists."""
    return next((path for path in DEFAULT_LIBRARIES if Path(path).is_file()), None)


# --- The library ---------------------------------------------------------------------------------


@dataclass(eq=False)
class _Library:
    """A PKCS#11 library initialised in this process, and the lock that serialises calls into it."""

    path: str
    lib: Any  # pkcs11.lib (a Cython class)
    lock: threading.Lock = field(default_factory=threading.Lock)


_cache_lock = threading.Lock()
_libraries: dict[str, _Library] = {}
# Libraries initialised before this process forked: initialised again before their first use here.
_forked_libraries: set[str] = set()


def _library_path(library: str | None) -> str:
    path = library or default_library()
    if path is None:
        raise Pkcs11Error(
            "no_library", f"No PKCS#11 library given, and none of {', '.join(DEFAULT_LIBRARIES)} exists"
        )
    return path


def _library(library: str | None) -> _Library:
    """The library, initialised once per process. Called with _cache_lock held."""
    path = _library_path(library)
    if path in _libraries:
        return _libraries[path]
    if not Path(path).is_file():
        raise Pkcs11Error("no_library", f"The PKCS#11 library {path} does not exist")
    try:
        lib = pkcs11.lib(path)
        if path in _forked_libraries:
            _initialise_in_child(lib)
            _forked_libraries.discard(path)
    except p11.PKCS11Error as error:
        raise Pkcs11Error(
            "no_library", f"The PKCS#11 library {path} cannot be loaded or initialised ({_name(error)})"
        ) from error
    _libraries[path] = _Library(path, lib)
    return _libraries[path]


def _initialise_in_child(lib: Any) -> None:
    """C_Initialize in a forked child, as PKCS#11 asks, on the library object the parent made.

    The child's copy of the library still believes itself initialised. Libraries that notice the
    fork (SoftHSM2 with reset_on_fork, OpenSC) answer C_Finalize with "not initialised"; the
    others drop the parent's state that was copied into the child. Either way C_Initialize then
    starts afresh. The parent's python-pkcs11 object is kept, never freed: freeing it would call
    C_Finalize and dlclose behind our back.
    """
    with suppress(p11.PKCS11Error):  # nothing to finalise: the library started afresh on its own
        lib.finalize()
    lib.initialize()


def pkcs11_library(library: str | None = None) -> Any:
    """The python-pkcs11 library object for `library` (default: SoftHSM2), initialised for this
    process. For tooling (signing.softhsm); signatures go through pkcs11_load."""
    with _cache_lock:
        return _library(library).lib


def _name(error: BaseException) -> str:
    """python-pkcs11 errors mostly carry no message: their class name is the PKCS#11 return code."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# --- The session pool ----------------------------------------------------------------------------


@dataclass(eq=False)
class _Lease:
    """A session of the pool, and the private keys already found on it (by label)."""

    session: Any  # pkcs11.Session
    keys: dict[str, Any] = field(default_factory=dict)
    reused: bool = False  # it has been back in the pool once, so it may have gone stale there

    def private_key(self, label: str) -> Any:
        key = self.keys.get(label)
        if key is None:
            try:
                key = self.session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            except p11.NoSuchKey:
                raise Pkcs11Error("no_key", f"The token holds no private key labelled {label!r}") from None
            except p11.MultipleObjectsReturned:
                raise Pkcs11Error(
                    "no_key", f"The token holds several private keys labelled {label!r}; keep one"
                ) from None
            self.keys[label] = key
        return key


def _close_quietly(session: Any) -> None:
    """Close a session that may already be dead; there is nothing useful to do if closing fails."""
    with suppress(p11.PKCS11Error):
        session.close()


class SessionPool:
    """Sessions on one token, opened lazily up to `size`, reused, safe to share between threads.

    A signature borrows a session and gives it back; a session that raised any PKCS#11 error is
    closed and replaced by a new one on a later borrow (a dead session cannot be told from a live
    one after an error, and a new one costs a millisecond). The first session logs in with the
    user PIN; the others share its login (see the module docstring). If the session that logged in
    is the one replaced, the next new session logs in again.

    `sessions_opened` counts the sessions opened over the pool's life, so a test can prove reuse.
    A pool belongs to the process that made it: after a fork it refuses to lend sessions.
    """

    def __init__(
        self,
        library: _Library,
        token_label: str,
        pin: str,
        *,
        size: int = DEFAULT_POOL_SIZE,
        timeout: float = BORROW_TIMEOUT,
    ):
        if size < 1:
            raise ValueError("A session pool needs at least one session")
        self.library = library
        self.token_label = token_label
        self.size = size
        self.pin_digest = _pin_digest(pin)
        self.sessions_opened = 0
        self._pin = pin
        self._timeout = timeout
        self._pid = os.getpid()
        self._token: Any = None
        self._login_session: Any = None
        self._closed = False
        # A None in the queue is the right to open one more session; LIFO so that a warm session
        # is preferred to opening a new one.
        self._free: queue.LifoQueue[_Lease | None] = queue.LifoQueue()
        for _ in range(size):
            self._free.put(None)

    def __repr__(self) -> str:
        return f"<SessionPool token={self.token_label!r} size={self.size} opened={self.sessions_opened}>"

    @contextmanager
    def lease(self) -> Iterator[_Lease]:
        """A session for the duration of the block. Calls on it must hold `self.library.lock`."""
        lease = self._borrow()
        try:
            yield lease
        except p11.PKCS11Error as error:
            self._discard(lease)
            raise Pkcs11Error(
                "device_error",
                f"The token {self.token_label!r} failed ({_name(error)}); "
                "its session was closed and will be replaced, try again",
            ) from error
        except BaseException:
            self._give_back(lease)
            raise
        self._give_back(lease)

    def sign(self, key_label: str, data: bytes, mechanism: Mechanism) -> bytes:
        """`data` signed on the token by the private key `key_label` with `mechanism`.

        A session that fails after waiting in the pool (an HSM that restarted overnight has
        forgotten every session) is replaced and the signature tried again on a new one, so a
        restart costs no failed signature; a new session that fails is a device error.
        """
        while True:
            leased: _Lease | None = None
            try:
                with self.lease() as lease, self.library.lock:
                    leased = lease
                    return bytes(lease.private_key(key_label).sign(data, mechanism=mechanism))
            except Pkcs11Error as error:
                if error.code != "device_error" or leased is None or not leased.reused:
                    raise

    def close(self) -> None:
        """Close the idle sessions (the one that logged in last, which logs the token out); the
        sessions lent out are closed when they come back."""
        self._closed = True
        idle: list[_Lease] = []
        while True:
            try:
                lease = self._free.get_nowait()
            except queue.Empty:
                break
            if lease is not None:
                idle.append(lease)
        idle.sort(key=lambda lease: lease.session is self._login_session)
        with self.library.lock:
            for lease in idle:
                _close_quietly(lease.session)
                if lease.session is self._login_session:
                    self._login_session = None

    def _borrow(self) -> _Lease:
        if self._pid != os.getpid():
            raise Pkcs11Error(
                "device_error",
                f"This key on token {self.token_label!r} was loaded before the process forked; "
                "PKCS#11 sessions do not cross a fork: load it again (pkcs11_load) in this process",
            )
        if self._closed:
            raise Pkcs11Error("device_error", f"The sessions on token {self.token_label!r} were closed")
        try:
            lease = self._free.get(timeout=self._timeout)
        except queue.Empty:
            raise Pkcs11Error(
                "device_error",
                f"All {self.size} sessions on token {self.token_label!r} stayed busy "
                f"for {self._timeout:g} seconds",
            ) from None
        if lease is not None:
            return lease
        try:
            return self._open()
        except BaseException:
            self._free.put(None)
            raise

    def _give_back(self, lease: _Lease) -> None:
        if self._closed:
            with self.library.lock:
                _close_quietly(lease.session)
            return
        lease.reused = True
        self._free.put(lease)

    def _discard(self, lease: _Lease) -> None:
        with self.library.lock:
            if lease.session is self._login_session:
                # Closing it logs the token out for every session; the next one opened logs in.
                self._login_session = None
            _close_quietly(lease.session)
            self._token = None  # found again: a token that was unplugged may come back elsewhere
        self._free.put(None)

    def _open(self) -> _Lease:
        with self.library.lock:
            token = self._find_token()
            if self._login_session is None:
                self._login_session = session = self._log_in(token)
            else:
                try:
                    session = token.open()  # shares the login of self._login_session
                except p11.PKCS11Error as error:
                    self._token = None
                    raise Pkcs11Error(
                        "device_error",
                        f"Cannot open a session on token {self.token_label!r} ({_name(error)})",
                    ) from error
            self.sessions_opened += 1
        return _Lease(session)

    def _find_token(self) -> Any:
        if self._token is None:
            try:
                self._token = self.library.lib.get_token(token_label=self.token_label)
            except p11.NoSuchToken:
                raise Pkcs11Error(
                    "no_token", f"No token labelled {self.token_label!r} in {self.library.path}"
                ) from None
            except p11.MultipleTokensReturned:
                raise Pkcs11Error(
                    "no_token", f"Several tokens are labelled {self.token_label!r}; labels must be unique"
                ) from None
            except p11.PKCS11Error as error:
                raise Pkcs11Error(
                    "device_error", f"The token list cannot be read ({_name(error)})"
                ) from error
        return self._token

    def _log_in(self, token: Any) -> Any:
        label = self.token_label
        if token.flags & TokenFlag.USER_PIN_LOCKED:
            raise Pkcs11Error(
                "locked_pin", f"The user PIN of token {label!r} is locked; unlock it with the SO PIN"
            )
        if not token.flags & TokenFlag.USER_PIN_INITIALIZED:
            raise Pkcs11Error("no_token", f"Token {label!r} has no user PIN yet; initialise it first")
        try:
            return token.open(user_pin=self._pin)
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange) as error:
            raise Pkcs11Error("wrong_pin", f"Wrong PIN for token {label!r}{self._tries_left()}") from error
        except p11.PinLocked as error:
            raise Pkcs11Error(
                "locked_pin", f"The user PIN of token {label!r} is locked; unlock it with the SO PIN"
            ) from error
        except p11.PinExpired as error:
            raise Pkcs11Error(
                "locked_pin", f"The user PIN of token {label!r} has expired; change it on the token"
            ) from error
        except (p11.UserAlreadyLoggedIn, p11.AnotherUserAlreadyLoggedIn) as error:
            raise Pkcs11Error(
                "device_error",
                f"Other code in this process is logged in to token {label!r}, so this PIN cannot be "
                "checked; close its sessions first",
            ) from error
        except p11.PKCS11Error as error:
            self._token = None
            raise Pkcs11Error("device_error", f"Cannot log in to token {label!r} ({_name(error)})") from error

    def _tries_left(self) -> str:
        try:
            flags = self.library.lib.get_token(token_label=self.token_label).flags
        except p11.PKCS11Error:
            return ""
        if flags & TokenFlag.USER_PIN_FINAL_TRY:
            return " (one try left before the PIN locks)"
        if flags & TokenFlag.USER_PIN_COUNT_LOW:
            return " (few tries left before the PIN locks)"
        return ""


# --- The key -------------------------------------------------------------------------------------


class Pkcs11Key(DigestSigner):
    """A private key on a token that signs SHA-256 digests there. Made by pkcs11_load.

    ECDSA uses CKM_ECDSA over the digest, and the token's raw r||s is turned into the DER that
    `sign_digest` promises; RSA uses CKM_RSA_PKCS (PKCS#1 v1.5) over DigestInfo || digest.
    """

    def __init__(self, *, pool: SessionPool, label: str, algorithm: str, key_size: int):
        self.pool = pool
        self.label = label
        self.algorithm = algorithm
        self.key_size = key_size

    def __repr__(self) -> str:
        token = self.pool.token_label
        return f"<Pkcs11Key {self.label!r} on token {token!r} ({self.algorithm} {self.key_size})>"

    def sign_digest(self, digest: bytes) -> bytes:
        if len(digest) != hashes.SHA256.digest_size:
            raise ValueError("sign_digest takes a SHA-256 digest (32 bytes)")
        if self.algorithm == "rsa":
            return self.pool.sign(self.label, SHA256_DIGEST_INFO + digest, Mechanism.RSA_PKCS)
        raw = self.pool.sign(self.label, digest, Mechanism.ECDSA)
        if len(raw) != 2 * P256_COORDINATE_BYTES:
            raise Pkcs11Error(
                "device_error", f"The token returned a {len(raw)}-byte ECDSA signature; P-256 gives 64"
            )
        r = int.from_bytes(raw[:P256_COORDINATE_BYTES], "big")
        s = int.from_bytes(raw[P256_COORDINATE_BYTES:], "big")
        return utils.encode_dss_signature(r, s)


# --- Loading -------------------------------------------------------------------------------------

# A random key for this process, so that the cache holds no plain hash of a short PIN.
_PIN_KEY = secrets.token_bytes(32)

CacheKey = tuple[str, str, str, bytes]
_loaded: dict[CacheKey, LoadedKey] = {}
_pools: dict[tuple[str, str], SessionPool] = {}
_refused: set[tuple[str, str, bytes]] = set()


def _pin_digest(pin: str) -> bytes:
    return hmac.new(_PIN_KEY, pin.encode(), hashlib.sha256).digest()


def pkcs11_load(*, library: str | None, token_label: str, pin: str, key_label: str) -> LoadedKey:
    """The key labelled `key_label` on the token, its certificate and chain, loaded once per process.

    `library`: the vendor's PKCS#11 module; None means SoftHSM2 (default_library()). Raises
    Pkcs11Error (see its codes). Later calls with the same arguments return the same LoadedKey,
    whose key shares one session pool per token.
    """
    path = _library_path(library)  # None and the explicit default share one cache entry
    if not pin:
        raise Pkcs11Error("wrong_pin", "No PIN given for the token")
    digest = _pin_digest(pin)
    with _cache_lock:
        loaded = _loaded.get((path, token_label, key_label, digest))
        if loaded is not None:
            return loaded
        if (path, token_label, digest) in _refused:
            raise Pkcs11Error(
                "wrong_pin",
                f"Token {token_label!r} refused this PIN earlier in this process; it is not tried "
                "again, so that the token does not lock",
            )
        pool = _pools.get((path, token_label))
        new_pool = pool is None
        if pool is None:
            pool = SessionPool(_library(path), token_label, pin)
        elif not hmac.compare_digest(pool.pin_digest, digest):
            raise Pkcs11Error(
                "wrong_pin",
                f"This process is logged in to token {token_label!r} with another PIN, and a token "
                "has one login per process: this PIN cannot be checked",
            )
        try:
            loaded = _load(pool, key_label)
        except Pkcs11Error as error:
            if error.code == "wrong_pin":
                _refused.add((path, token_label, digest))
            if new_pool:
                pool.close()
            raise
        _pools[(path, token_label)] = pool
        _loaded[(path, token_label, key_label, digest)] = loaded
        return loaded


@register("pkcs11")  # CertificateBackend.PKCS11: see signing.backends.register
def pkcs11_key(certificate: SigningCertificate, secret: str, expires_at: dt.datetime | None) -> LoadedKey:
    """The registered certificate's key on its token, logged in with the PIN (`secret`)."""
    return pkcs11_load(
        library=getattr(settings, "HOCBA_PKCS11_LIBRARY", "") or None,
        token_label=certificate.token_label,
        pin=secret,
        key_label=certificate.key_label,
    )


def pkcs11_cache_clear() -> None:
    """Forget every loaded key and close every session (logging the tokens out).

    For tests and for an operator's "reload" after a token was re-provisioned; no signature may
    be in flight. Keys loaded before keep failing with device_error: load them again.
    """
    with _cache_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
        _loaded.clear()
        _refused.clear()


def _attribute(obj: Any, attribute: Attribute, default: Any) -> Any:
    """An attribute of a token object, or `default` if the token does not have or show it."""
    try:
        return obj[attribute]
    except (p11.AttributeTypeInvalid, p11.AttributeSensitive):
        return default


def _load(pool: SessionPool, key_label: str) -> LoadedKey:
    label = f"{key_label!r} on token {pool.token_label!r}"
    with pool.lease() as lease, pool.library.lock:
        key = lease.private_key(key_label)
        key_type = key[Attribute.KEY_TYPE]
        may_sign = _attribute(key, Attribute.SIGN, False)
        sensitive = _attribute(key, Attribute.SENSITIVE, False)
        extractable = _attribute(key, Attribute.EXTRACTABLE, True)
        certificates = [
            (_attribute(obj, Attribute.LABEL, ""), _attribute(obj, Attribute.VALUE, b""))
            for obj in lease.session.get_objects(
                {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.CERTIFICATE_TYPE: CertificateType.X_509}
            )
        ]
    token_algorithm = {KeyType.EC: "ec", KeyType.RSA: "rsa"}.get(key_type)
    if token_algorithm is None:
        raise Pkcs11Error("unsupported_key", f"The key {label} is neither ECDSA nor RSA")
    if not may_sign:
        raise Pkcs11Error("unsupported_key", f"The key {label} is not allowed to sign (CKA_SIGN)")
    if extractable or not sensitive:
        raise Pkcs11Error(
            "unsupported_key",
            f"The key {label} can be exported from the token (CKA_EXTRACTABLE, or not CKA_SENSITIVE); "
            "a seal key must stay on the device",
        )

    mine = [der for name, der in certificates if name == key_label]
    if len(mine) != 1:
        found = "no certificate" if not mine else f"{len(mine)} certificates"
        raise Pkcs11Error("no_certificate", f"The token holds {found} labelled {key_label!r}; it needs one")
    try:
        cert = x509.load_der_x509_certificate(mine[0])
    except ValueError as error:
        raise Pkcs11Error("no_certificate", f"The certificate {label} cannot be read") from error
    try:
        algorithm, key_size = public_key_algorithm(cert.public_key())
    except ValueError as error:
        raise Pkcs11Error(
            "unsupported_key", f"The certificate {label} is for a key that cannot sign year records: {error}"
        ) from error
    if algorithm == "rsa" and key_size < 2048:
        raise Pkcs11Error("unsupported_key", f"The key {label} has {key_size} bits; RSA keys need 2048")
    if algorithm != token_algorithm:
        raise Pkcs11Error(
            "key_mismatch",
            f"The key {label} is {token_algorithm.upper()}, its certificate {algorithm.upper()}",
        )

    signer = Pkcs11Key(pool=pool, label=key_label, algorithm=algorithm, key_size=key_size)
    _prove_possession(signer, cert, label)
    others = []
    for _, der in certificates:
        try:
            others.append(x509.load_der_x509_certificate(der))
        except ValueError:
            continue  # an unreadable certificate object is no intermediate of ours
    return LoadedKey(key=signer, cert=cert, chain=_chain(cert, others))


def _prove_possession(signer: Pkcs11Key, cert: x509.Certificate, label: str) -> None:
    """Sign a random digest on the token and check it with the certificate's public key: the
    only check that holds on every token (an EC private key object carries no public point)."""
    digest = secrets.token_bytes(hashes.SHA256.digest_size)
    signature = signer.sign_digest(digest)
    public_key = cert.public_key()
    prehashed = utils.Prehashed(hashes.SHA256())
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, digest, ec.ECDSA(prehashed))
    except InvalidSignature:
        raise Pkcs11Error(
            "key_mismatch", f"The key {label} does not belong to the certificate stored with it"
        ) from None


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject and _issued_by(cert, cert)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _chain(cert: x509.Certificate, candidates: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """The issuers of `cert` among `candidates`, nearest first, stopping before a self-signed root."""
    chain: list[x509.Certificate] = []
    current = cert
    while len(chain) < len(candidates):
        issuer = next(
            (
                candidate
                for candidate in candidates
                if candidate.subject == current.issuer
                and candidate != current
                and candidate not in chain
                and _issued_by(current, candidate)
            ),
            None,
        )
        if issuer is None or _self_signed(issuer):
            break
        chain.append(issuer)
        current = issuer
    return tuple(chain)


# --- Fork ----------------------------------------------------------------------------------------


def _after_fork_in_child() -> None:
    """Forget the parent's keys, pools and sessions; initialise the libraries again on first use.

    Nothing is closed: the sessions are the parent's, and closing or logging them out from here
    could end them for the parent too (network HSM clients share the connection).
    """
    global _cache_lock
    _cache_lock = threading.Lock()  # another thread may have held it at the fork
    _forked_libraries.update(_libraries)
    _libraries.clear()
    _loaded.clear()
    _pools.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
