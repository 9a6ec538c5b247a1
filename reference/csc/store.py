"""The reference signing service's state on disk: its CA, the credentials, their keys, revocations.

Layout of the data directory (created 0700)::

    ca/                  the service's own CA (signing.ca.dev_ca_ensure): root + issuing CA
    credentials.json     every credential: owner, names, certificate (PEM), revocation date
    keys/<id>.pem        each credential's private key, PKCS#8 PEM in clear, mode 0600
    state.lock           taken (flock) around every change
    sads.json            the live approvals (SADs) by token hash: reference.csc.service keeps it

Why this shape:

- Every write is atomic (a temporary file in the same directory, fsync, rename, fsync of the
  directory): a crash leaves the old state or the new one, never half a JSON file.
- Changes take a process-wide lock *and* an flock on `state.lock`, because two processes may
  share the directory: the running server and `python -m reference.csc enrol` run beside it.
  Readers reload `credentials.json` whenever its inode changes (every write replaces it), so the
  server sees credentials enrolled offline without a restart.
- A key is written before the credential that names it: a crash in between leaves an unused key
  file, never a credential without its key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from signing import ca

CA_NAME = "Dịch vụ ký số từ xa (tham chiếu)"
STATE_VERSION = 1


class StoreError(Exception):
    """A change the store refuses; `code` says why (unknown_credential, invalid)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Credential:
    """One signing credential: a key held by the service and the certificate the CA issued for it."""

    credential_id: str
    user_id: str
    name: str
    title: str
    organisation: str
    algorithm: str  # "ec" (ECDSA P-256) or "rsa" (RSA-2048)
    cert: x509.Certificate
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, at: dt.datetime) -> bool:
        return at > self.cert.not_valid_after_utc

    def not_yet_valid(self, at: dt.datetime) -> bool:
        return at < self.cert.not_valid_before_utc

    def status(self, at: dt.datetime) -> str:
        """The CSC certificate status: "revoked", "expired" or "valid"."""
        if self.revoked:
            return "revoked"
        return "expired" if self.expired(at) else "valid"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once; the file is created 0600 (mkstemp's mode)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    # The rename is durable only once the directory entry is on disk too.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def _credential_from_json(credential_id: str, entry: dict) -> Credential:
    revoked = entry.get("revoked")
    return Credential(
        credential_id=credential_id,
        user_id=entry["userID"],
        name=entry["name"],
        title=entry.get("title", ""),
        organisation=entry.get("organisation", ""),
        algorithm=entry["algorithm"],
        cert=x509.load_pem_x509_certificate(entry["certificate"].encode()),
        created_at=dt.datetime.fromisoformat(entry["created"]),
        revoked_at=dt.datetime.fromisoformat(revoked) if revoked else None,
    )


def _credential_to_json(credential: Credential) -> dict:
    return {
        "userID": credential.user_id,
        "name": credential.name,
        "title": credential.title,
        "organisation": credential.organisation,
        "algorithm": credential.algorithm,
        "certificate": _pem(credential.cert),
        "created": credential.created_at.isoformat(),
        "revoked": credential.revoked_at.isoformat() if credential.revoked_at else None,
    }


class CredentialStore:
    """The credentials of one data directory. Thread-safe; safe to share with other processes."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.directory / "keys").mkdir(exist_ok=True, mode=0o700)
        self._state_path = self.directory / "credentials.json"
        self._lock_path = self.directory / "state.lock"
        self._thread_lock = threading.RLock()
        self._credentials: dict[str, Credential] = {}
        self._seen: tuple[int, int] | None = None  # (inode, mtime_ns) of the file last read
        self._keys: dict[str, ca.PrivateKey] = {}
        with self._locked():  # two processes starting at once must not make two CAs
            self.ca = ca.dev_ca_ensure(self.directory / "ca", CA_NAME)

    # --- Locking and reloading -------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock, open(self._lock_path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _refresh(self) -> None:
        """Reload credentials.json if another writer replaced it since we last read it."""
        try:
            stat = self._state_path.stat()
        except FileNotFoundError:
            self._credentials, self._seen = {}, None
            return
        seen = (stat.st_ino, stat.st_mtime_ns)
        if seen == self._seen:
            return
        state = json.loads(self._state_path.read_text(encoding="utf-8"))
        if state.get("version") != STATE_VERSION:
            raise RuntimeError(f"{self._state_path}: unknown state version {state.get('version')!r}")
        self._credentials = {
            credential_id: _credential_from_json(credential_id, entry)
            for credential_id, entry in state["credentials"].items()
        }
        self._seen = seen

    def _save(self) -> None:
        state = {
            "version": STATE_VERSION,
            "credentials": {i: _credential_to_json(c) for i, c in sorted(self._credentials.items())},
        }
        data = json.dumps(state, ensure_ascii=False, indent=2).encode()
        write_atomic(self._state_path, data)
        stat = self._state_path.stat()
        self._seen = (stat.st_ino, stat.st_mtime_ns)

    # --- Reads ----------------------------------------------------------------------------

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The intermediates a signer's certificate travels with (the issuing CA)."""
        return self.ca.chain

    def get(self, credential_id: str) -> Credential | None:
        with self._thread_lock:
            self._refresh()
            return self._credentials.get(credential_id)

    def for_user(self, user_id: str) -> list[Credential]:
        """The user's credentials, oldest first."""
        with self._thread_lock:
            self._refresh()
            found = [c for c in self._credentials.values() if c.user_id == user_id]
        return sorted(found, key=lambda c: (c.created_at, c.credential_id))

    def private_key(self, credential_id: str) -> ca.PrivateKey:
        """The credential's key, read from disk once and then kept in memory."""
        with self._thread_lock:
            key = self._keys.get(credential_id)
            if key is None:
                data = (self.directory / "keys" / f"{credential_id}.pem").read_bytes()
                loaded = load_pem_private_key(data, password=None)
                if not isinstance(loaded, ca.PrivateKey):
                    raise RuntimeError(f"Key of {credential_id} is neither RSA nor EC")
                key = self._keys[credential_id] = loaded
            return key

    def crl(self) -> x509.CertificateRevocationList:
        """A CRL from the issuing CA naming every revoked credential's certificate, made now."""
        with self._thread_lock:
            self._refresh()
            revoked = [
                (c.cert.serial_number, c.revoked_at)
                for c in self._credentials.values()
                if c.revoked_at is not None
            ]
        return ca.issue_crl(self.ca, revoked)

    # --- Changes --------------------------------------------------------------------------

    def enrol(
        self,
        *,
        user_id: str,
        name: str,
        title: str,
        organisation: str = "",
        algorithm: str = "ec",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> Credential:
        """A new key for the user and a certificate for it from the service's CA."""
        if algorithm not in ca.ALGORITHMS:
            raise StoreError("invalid", f"Unknown algorithm {algorithm!r}; use one of {ca.ALGORITHMS}")
        if not_before and not_after and not_after <= not_before:
            raise StoreError("invalid", "notAfter must be later than notBefore")
        key = ca.new_key(algorithm)
        issued = ca.issue_person(
            self.ca,
            common_name=name,
            title=title,
            organisation=organisation,
            not_before=not_before,
            not_after=not_after,
            public_key=key.public_key(),
        )
        key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        with self._locked():
            self._refresh()
            credential_id = secrets.token_hex(8)
            while credential_id in self._credentials:  # 64 random bits: never, but cheap to be sure
                credential_id = secrets.token_hex(8)
            write_atomic(self.directory / "keys" / f"{credential_id}.pem", key_pem)
            credential = Credential(
                credential_id=credential_id,
                user_id=user_id,
                name=name,
                title=title,
                organisation=organisation,
                algorithm=algorithm,
                cert=issued.cert,
                created_at=_now().replace(microsecond=0),
            )
            self._credentials[credential_id] = credential
            self._save()
            self._keys[credential_id] = key
        return credential

    def revoke(self, credential_id: str) -> Credential:
        """Revoke the credential's certificate. Revoking twice keeps the first date."""
        with self._locked():
            self._refresh()
            credential = self._credentials.get(credential_id)
            if credential is None:
                raise StoreError("unknown_credential", f"No credential {credential_id!r}")
            if credential.revoked_at is None:
                credential = dataclasses.replace(credential, revoked_at=_now().replace(microsecond=0))
                self._credentials[credential_id] = credential
                self._save()
        return credential
