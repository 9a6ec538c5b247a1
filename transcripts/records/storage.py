"""Where the year records' documents live: PDFs and issued XML copies, outside PostgreSQL.

A province issues ~2.5 M year records a year at ~43 KiB of PDF each (issue 15): kept in the
database they were ~100 GiB a year of table, WAL and dumps. They go through Django's storage API
instead (settings.STORAGES["documents"]): the filesystem by default (`make run`), S3-compatible
object storage in production (django-storages' S3Storage). The database keeps each document's
name, size and SHA-256 (transcripts.YearRecordPdf, transcripts.YearRecordXml), and every read
checks the bytes against that SHA-256: a document changed or lost in the store is refused
(DocumentUnavailable), never served.

Objects are write-once. A name says whose document it is and carries its hash,
`<school schema>/<record id>/v<version>/<sha256>.<pdf|xml>`, so two documents never share a name
and a name never points at other bytes: writing a name that exists is accepted only when the
stored bytes are the same ones (a retry), and never overwrites them.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

log = logging.getLogger(__name__)

STORAGE_ALIAS = "documents"
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
KINDS = ("pdf", "xml")


class DocumentUnavailable(Exception):
    """A stored document that cannot be served: missing, changed, or the store unreachable."""

    reason = "unavailable"

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(f"Document {name}: {self.reason}{f' ({detail})' if detail else ''}")
        self.name = name


class DocumentMissing(DocumentUnavailable):
    """No object under the name the database records."""

    reason = "missing"


class DocumentTampered(DocumentUnavailable):
    """The object's bytes do not hash to the SHA-256 the database records."""

    reason = "tampered"


@dataclass(frozen=True)
class StoredDocument:
    """What the database keeps of a stored document."""

    name: str
    sha256: str
    size: int


def documents_storage() -> Storage:
    """The storage of settings.STORAGES["documents"] (the filesystem unless S3 is configured)."""
    return storages[STORAGE_ALIAS]


def document_name(*, schema: str, record_id: str, version: int, sha256: str, kind: str) -> str:
    """The object name of a record version's document: `<schema>/<record id>/v<version>/<sha>.<kind>`."""
    for part in (schema, record_id):
        if not _NAME_PART.fullmatch(part) or ".." in part:
            raise ValueError(f"Not usable in a document name: {part!r}")
    if not _SHA256.fullmatch(sha256) or kind not in KINDS or not 0 < version < 2**31:
        raise ValueError(f"Not a document name: {sha256!r} {kind!r} v{version}")
    return f"{schema}/{record_id}/v{version}/{sha256}.{kind}"


def _read(storage: Storage, name: str) -> bytes:
    try:
        with storage.open(name, "rb") as handle:
            return handle.read()
    except FileNotFoundError as error:
        raise DocumentMissing(name) from error
    except Exception as error:
        # S3Storage answers a missing key with botocore's ClientError (404 / NoSuchKey).
        code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            raise DocumentMissing(name) from error
        log.exception("Document %s: the storage could not be read", name)
        raise DocumentUnavailable(name, type(error).__name__) from error


def document_put(name: str, data: bytes) -> StoredDocument:
    """Store `data` under `name`, once; return its name, SHA-256 and size.

    The name must carry the SHA-256 of `data` (document_name). An object already under that name
    with the same bytes is kept as it is (a retry, two renderings of one record); one with other
    bytes is never overwritten: DocumentTampered is raised and the caller stores nothing.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    if not name.rsplit("/", 1)[-1].startswith(sha256 + "."):
        raise ValueError(f"Document name {name!r} does not carry the SHA-256 of its bytes")
    storage = documents_storage()
    if storage.exists(name):
        document_get(name, sha256)  # the same bytes, or DocumentTampered/DocumentMissing
        return StoredDocument(name=name, sha256=sha256, size=len(data))
    saved = storage.save(name, ContentFile(data, name=name))
    if saved != name:
        # Written by someone else between exists() and save(): the storage kept theirs and gave
        # ours another name. Drop ours; theirs must be these very bytes.
        storage.delete(saved)
        document_get(name, sha256)
    return StoredDocument(name=name, sha256=sha256, size=len(data))


def document_get(name: str, sha256: str) -> bytes:
    """The bytes stored under `name`, only if they hash to `sha256`.

    Raises DocumentMissing (no such object), DocumentTampered (other bytes: logged as an error) or
    DocumentUnavailable (the storage failed); never returns bytes that were not checked.
    """
    data = _read(documents_storage(), name)
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        log.error("Document %s: its bytes hash to %s, the database records %s", name, actual, sha256)
        raise DocumentTampered(name, f"sha256 {actual}")
    return data
