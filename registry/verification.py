"""Verifying a year record in public: lookups in the index of issued records, uploads, the log.

Anyone may verify a record without logging in (domain.md §1): by its id, version and verification
code (typed in, or the QR code printed on the PDF), or by uploading the XML or the PDF. Record ids
are sequential, so the id alone is no secret: without the right code (80 random bits, made with the
index row, compared in constant time) the answer is the same whether the id exists or not, and shows
nothing of the record; wrong codes are counted per client address and refused past a ceiling
(issue 9, finding 7). An upload that matches no issued record gets one answer too, whether or not
its id exists. The public index
(portal.IssuedRecord) says which school holds the record and what its status is; the content shown
is read from the school's own copy (its schema), never from the upload. An upload counts only if
its bytes are exactly the issued ones (the SHA-256 in the index).

The index itself is written by transcripts when a version is issued, through portal.services (the
bottom of the chain, design.md §2); its tables (IssuedRecord, VerificationLog, CopyLog) stay in
portal for now, moving them here is a later step.

Uploads come from anyone: they are size-capped before they are read (VerifyUploadLimit, installed
by the view before the body is parsed), parsed by the hardened parser (transcripts.document: no
DTD, no entities, no network), and a PDF is read by qpdf (pikepdf) only as far as its embedded
files, under qpdf's limits, with decompression capped at the parser's size limit. Every
verification, whatever its outcome, writes one VerificationLog row; the client's address is kept
only as a keyed hash. A signature's problems are codes (signing.choices.ProblemCode); the message
shown for each is its code's label, the one mapping.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pikepdf
import pikepdf.settings
from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from portal.choices import (
    VERIFICATION_CODE_LENGTH,
    IssuedRecordStatus,
    VerificationMethod,
    VerificationOutcome,
)
from portal.models import IssuedRecord, VerificationLog
from portal.selectors import verification_code_matches
from signing.selectors import signatures_for
from transcripts.document import MAX_DOCUMENT_BYTES, DocumentError, year_record_parse
from transcripts.models import YearRecord, YearRecordRenewal
from transcripts.records.services import (
    content_bytes_of,
    year_record_archived_document,
    year_record_document,
)

from .selectors import issued_record_for, newest_later_version

log = logging.getLogger(__name__)

# Limits (a project setting overrides each; read at call time so tests can change them).
# An upload larger than this is refused before it is read: a signed PDF is well under 1 MB.
DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# Verifications per client address per window; beyond that, 429 until the window ends.
DEFAULT_RATE_LIMIT = 30
DEFAULT_RATE_WINDOW_SECONDS = 60
# Wrong verification codes per client address per window; beyond that, no lookup by code from it
# until the window ends (uploads still work: they prove possession of the document). Generous for a
# school's shared address, and at 20 an hour 2**80 codes take longer than anyone waits.
DEFAULT_WRONG_CODE_LIMIT = 20
DEFAULT_WRONG_CODE_WINDOW_SECONDS = 3600
# A PDF with more embedded files than this is not ours: only the first ones are tried.
MAX_PDF_ATTACHMENTS = 4

CLIENT_SALT = "hocba.verification-client"


def max_upload_bytes() -> int:
    return int(getattr(settings, "HOCBA_VERIFY_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES))


def rate_limit() -> tuple[int, int]:
    """(verifications allowed, per this many seconds) for one client address."""
    return (
        int(getattr(settings, "HOCBA_VERIFY_RATE_LIMIT", DEFAULT_RATE_LIMIT)),
        int(getattr(settings, "HOCBA_VERIFY_RATE_WINDOW_SECONDS", DEFAULT_RATE_WINDOW_SECONDS)),
    )


def wrong_code_limit() -> tuple[int, int]:
    """(wrong verification codes allowed, per this many seconds) for one client address."""
    return (
        int(getattr(settings, "HOCBA_VERIFY_WRONG_CODE_LIMIT", DEFAULT_WRONG_CODE_LIMIT)),
        int(getattr(settings, "HOCBA_VERIFY_WRONG_CODE_WINDOW_SECONDS", DEFAULT_WRONG_CODE_WINDOW_SECONDS)),
    )


def client_digest(address: str) -> str:
    return salted_hmac(CLIENT_SALT, address or "-", algorithm="sha256").hexdigest()


@dataclass
class Verification:
    """The answer of one verification, for the page and the log."""

    method: str
    outcome: str
    reason: str = ""
    message: str = ""
    record_id: str = ""
    version: int | None = None
    entry: IssuedRecord | None = None
    document: Any = None  # transcripts.document.YearRecord, read from the school's copy
    newer: IssuedRecord | None = None
    signatures: list = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.outcome == VerificationOutcome.FOUND


def _refused(method: str, reason: str, message: str, **kwargs: Any) -> Verification:
    return Verification(
        method=method, outcome=VerificationOutcome.REFUSED, reason=reason, message=message, **kwargs
    )


_UPLOADS = (VerificationMethod.UPLOAD_XML, VerificationMethod.UPLOAD_PDF)


def _not_found(method: str, record_id: str, version: int | None, reason: str = "not_found") -> Verification:
    """The one answer for every record not shown: unknown id, wrong code, changed file.

    The same message (and so the same page and status) whatever `reason` says: the reason goes to
    the log only, so that nobody learns from the page whether an id they guessed exists.
    """
    if method in _UPLOADS:
        message = _(
            "This file is not an issued year record: no record was issued with exactly these contents "
            "(it may have been changed since it was issued)."
        )
    else:
        message = _("No issued year record has this id, version and verification code.")
    return Verification(
        method=method,
        outcome=VerificationOutcome.NOT_FOUND,
        reason=reason,
        message=message,
        record_id=record_id[:64],
        version=version,
    )


def code_required(method: str, record_id: str, version: int | None) -> Verification:
    """A lookup by id without a code: ask for it, without looking the id up at all."""
    return _refused(
        method,
        "code_required",
        _("Enter the verification code printed on the transcript, under its QR code, to see this record."),
        record_id=record_id[:64],
        version=version,
    )


# Compared against when the id is unknown, so both cases do the same work; never a valid code.
_NO_CODE = "!" * VERIFICATION_CODE_LENGTH


def verify_by_id(*, method: str, record_id: str, version: int, code: str) -> Verification:
    """Look a record up by id, version and verification code (typed in, or the QR code's link).

    A wrong code and an unknown id give the same answer (only the log tells them apart).
    """
    record_id = record_id.strip()
    entry = (
        issued_record_for(record_id=record_id, version=version)
        if record_id and "\x00" not in record_id and len(record_id) <= 64 and 0 < version < 2**31
        else None
    )
    matches = verification_code_matches(entry.verification_code if entry else _NO_CODE, code)
    if entry is None or not matches:
        return _not_found(method, record_id, version, reason="not_found" if entry is None else "wrong_code")
    return _found(method, entry)


def issued_xml(entry: IssuedRecord) -> bytes | None:
    """An indexed version's sealed XML from its school's schema, only if it is exactly the bytes
    the index says were issued; None (and a loud log line) when the school's copy is missing or
    differs. The public page and the partner API both read a record's document through it."""
    with entry.school:
        row = YearRecord.objects.filter(record_id=entry.record_id, version=entry.version).only("xml").first()
        xml = year_record_document(row) if row is not None else None  # the issued (sealed) document
    if xml is None or hashlib.sha256(xml).hexdigest() != entry.sha256:
        log.error(
            "Issued record %s v%s: the school's copy is missing or differs", entry.record_id, entry.version
        )
        return None
    return xml


def archived_xml(entry: IssuedRecord, issued: bytes) -> bytes:
    """What the signatures of an issued version are judged on: its latest renewal (archive
    timestamps added, transcripts.YearRecordRenewal), which carries the issued content byte for byte
    (the database checks it on insert, and so does this), else the issued document itself."""
    with entry.school:
        row = YearRecord.objects.filter(record_id=entry.record_id, version=entry.version).only("xml").first()
        archived = year_record_archived_document(row) if row is not None else issued
    if archived != issued and content_bytes_of(archived) != content_bytes_of(issued):
        log.error(
            "Issued record %s v%s: a renewal does not carry the issued content",
            entry.record_id,
            entry.version,
        )
        return issued
    return archived


def _found(method: str, entry: IssuedRecord) -> Verification:
    xml = issued_xml(entry)
    if xml is None:
        # The index and the school disagree: say nothing about the content.
        return _not_found(method, entry.record_id, entry.version)
    try:
        document = year_record_parse(xml)
    except ValueError as error:  # DocumentError: changed with its hash, so only someone with the database
        log.error(
            "Issued record %s v%s: the school's copy is not a year record (%s)",
            entry.record_id,
            entry.version,
            error,
        )
        return _not_found(method, entry.record_id, entry.version)
    newer = None
    if entry.status != IssuedRecordStatus.ISSUED:
        newer = newest_later_version(entry)
    return Verification(
        method=method,
        outcome=VerificationOutcome.FOUND,
        record_id=entry.record_id,
        version=entry.version,
        entry=entry,
        document=document,
        newer=newer,
        signatures=signatures_for(archived_xml(entry, xml)),
    )


_DOCUMENT_MESSAGES = {
    "not_xml": lambda: _("The file is not an XML year record, nor a PDF with one attached."),
    "dtd": lambda: _("The file declares a DTD or entities; year records never do, so it is refused unread."),
    "too_large": lambda: _("The file is too large to be a year record."),
    "not_a_year_record": lambda: _("The file is XML but not a year record of this format."),
    "invalid": lambda: _("The file is not a valid year record."),
}


def verify_upload(*, data: bytes) -> Verification:
    """Verify an uploaded file: the XML itself, or a PDF carrying it as an attachment."""
    if data.lstrip()[:5] == b"%PDF-":
        method = VerificationMethod.UPLOAD_PDF
        try:
            candidates = pdf_attachments(data)
        except PdfBomb:
            return _refused(method, "too_large", _DOCUMENT_MESSAGES["too_large"]())
        if not candidates:
            return _refused(method, "no_attachment", _("This PDF has no year record attached."))
    else:
        method = VerificationMethod.UPLOAD_XML
        candidates = [data]
    first_error = None
    for xml in candidates:
        try:
            document = _parse(xml)
        except ValueError as error:  # DocumentError, or a value the schema let through
            first_error = first_error or error
            continue
        return _match(method, xml, document)
    code = getattr(first_error, "code", "invalid")
    if code not in _DOCUMENT_MESSAGES:
        code = "invalid"
    return _refused(method, code, _DOCUMENT_MESSAGES[code]())


def _parse(xml: bytes):

    try:
        return year_record_parse(xml)
    except DocumentError:
        raise
    except Exception as error:  # never a 500 for a file from outside
        log.warning("Unexpected error parsing an uploaded year record: %r", error)
        raise DocumentError("invalid", "Unreadable") from error


def _match(method: str, xml: bytes, document) -> Verification:
    entry = issued_record_for(record_id=document.record_id, version=document.version)
    if entry is None:
        return _not_found(method, document.record_id, document.version)
    digest = hashlib.sha256(xml).hexdigest()
    if digest != entry.sha256 and not _is_renewal(entry, digest):
        # Said as for an unknown id: a file made up around a guessed id must not confirm it.
        return _not_found(method, entry.record_id, entry.version, reason="mismatch")
    return _found(method, entry)


def _is_renewal(entry: IssuedRecord, digest: str) -> bool:
    """The uploaded bytes are one of the version's renewals (the issued document with archive
    timestamps added, kept by its school, transcripts.YearRecordRenewal): a holder of a renewed copy
    verifies it as the issued one."""
    with entry.school:
        return YearRecordRenewal.objects.filter(
            record__record_id=entry.record_id, record__version=entry.version, sha256=digest
        ).exists()


# --- PDF attachments -------------------------------------------------------------------------


class PdfBomb(ValueError):
    """An attachment that inflates past the parser's size limit: refused as too large."""


# Filters an attachment may be stored with: none, or Flate (what WeasyPrint writes). Flate is
# decoded by qpdf under flate_max_memory; any other filter (LZW, chains of filters) is not tried.
_ATTACHMENT_FILTERS = (None, pikepdf.Name.FlateDecode, pikepdf.Name("/Fl"))


@functools.cache  # once per process: the limits are global to qpdf
def _pdf_limits() -> None:
    """qpdf's limits for reading untrusted PDFs, process-wide (pikepdf.settings), set before opening.

    Flate output is capped at the parser's own size limit, so a compression bomb stops there; the
    other limits bound the work of parsing (nesting, errors, a damaged file's containers, warnings).
    Nothing else in the portal reads PDFs with pikepdf, so process-wide limits are ours alone.
    """

    pikepdf.settings.set_qpdf_limits(
        doc_max_warnings=200,
        parser_max_nesting=64,
        parser_max_errors=15,
        parser_max_container_size_damaged=5000,
        max_stream_filters=4,
        flate_max_memory=MAX_DOCUMENT_BYTES + 1,
        run_length_max_memory=MAX_DOCUMENT_BYTES + 1,
    )


def _attachment_bytes(stream: Any) -> bytes | None:
    """The decoded bytes of one embedded file, at most MAX_DOCUMENT_BYTES + 1; None if not ours."""

    if not isinstance(stream, pikepdf.Stream):
        return None
    filters = stream.get("/Filter")
    if isinstance(filters, pikepdf.Array):
        filters = filters[0] if len(filters) == 1 else pikepdf.Name("/Chained")
    if filters not in _ATTACHMENT_FILTERS:
        return None
    if filters is None:
        raw = stream.read_raw_bytes()  # no filter: as long as the upload allows, already capped
        return raw[: MAX_DOCUMENT_BYTES + 1]
    try:
        return stream.read_bytes()  # inflated by qpdf, stopped at flate_max_memory
    except pikepdf.DataDecodingError as error:
        # qpdf says why in words only: its memory limit is a bomb (too large), anything else is a
        # damaged stream, which is simply not an attachment of ours.
        if "memory limit" in str(error):
            raise PdfBomb(str(error)) from error
        return None


def pdf_attachments(data: bytes) -> list[bytes]:
    """The embedded files of a PDF (at most MAX_PDF_ATTACHMENTS), decoded; [] when there is none.

    Read with pikepdf (qpdf) under `_pdf_limits()`: the document's EmbeddedFiles name tree, each
    file specification's embedded stream (/EF /F, else /UF), decoded with Flate output capped at the
    parser's own size limit. The upload's size was checked before (VerifyUploadLimit). What comes
    out is untrusted bytes like any upload: the hardened parser and the hash decide. A file qpdf
    cannot read has no attachment that can be read ([]); a compression bomb raises PdfBomb.
    """
    _pdf_limits()
    found: list[bytes] = []
    try:
        with pikepdf.open(io.BytesIO(data), suppress_warnings=True, inherit_page_attributes=False) as pdf:
            for spec in list(pdf.attachments.values())[:MAX_PDF_ATTACHMENTS]:
                files = spec.obj.get("/EF")
                if not isinstance(files, pikepdf.Dictionary):
                    continue
                stream = files.get("/F", files.get("/UF"))
                content = _attachment_bytes(stream)
                if content is not None:
                    found.append(content)
    except PdfBomb:
        raise
    except (pikepdf.PdfError, ValueError, TypeError, KeyError, RecursionError) as error:
        log.info("Uploaded PDF unreadable, so without an attachment: %s", error)
        return []
    return found


# --- Rate limit, upload size, log -----------------------------------------------------------


def _count(key: str, window: int) -> int:
    cache.add(key, 0, timeout=window + 5)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 5)
        return 1


def rate_limit_exceeded(address: str) -> bool:
    """Count this verification against the client's window; True once the window is full."""
    allowed, window = rate_limit()
    return _count(f"verify-rate:{client_digest(address)}:{int(time.time()) // window}", window) > allowed


def _wrong_code_key(address: str) -> tuple[str, int]:
    _allowed, window = wrong_code_limit()
    return f"verify-wrong-code:{client_digest(address)}:{int(time.time()) // window}", window


def wrong_codes_exceeded(address: str) -> bool:
    """True once this client has given as many wrong codes as its window allows."""
    allowed, _window = wrong_code_limit()
    key, _window = _wrong_code_key(address)
    return int(cache.get(key) or 0) >= allowed


def wrong_code_count(address: str) -> None:
    """Count one lookup by code that found nothing (wrong code or unknown id: the same to us)."""
    key, window = _wrong_code_key(address)
    _count(key, window)


def wrong_codes(method: str) -> Verification:
    return _refused(
        method,
        "wrong_codes",
        _("Too many wrong verification codes from your address. Please try again later."),
    )


def rate_limited(method: str) -> Verification:
    return _refused(
        method, "rate_limited", _("Too many verifications from your address. Please try again in a minute.")
    )


def too_large(method: str) -> Verification:
    return _refused(
        method,
        "too_large",
        _("The file is larger than %(size)d MB: a year record is much smaller.")
        % {"size": max_upload_bytes() // (1024 * 1024)},
    )


class VerifyUploadLimit(FileUploadHandler):
    """Stops reading an uploaded file past max_upload_bytes() (the rest of the body is discarded).

    Installed by the view before the request body is parsed; `exceeded` tells the view why the
    file is missing from request.FILES.
    """

    def __init__(self, request=None):
        super().__init__(request)
        self.exceeded = False
        self.limit = max_upload_bytes()

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # The whole body says it is too large: the file will be skipped on its first chunk.
        if content_length and content_length > self.limit + 64 * 1024:
            self.exceeded = True

    def receive_data_chunk(self, raw_data, start):
        if self.exceeded or start + len(raw_data) > self.limit:
            self.exceeded = True
            raise SkipFile
        return raw_data

    def file_complete(self, file_size):
        return None


def verification_log(result: Verification, *, address: str) -> VerificationLog:
    """Write the log row of one verification (domain.md §1)."""
    return VerificationLog.objects.create(
        method=result.method,
        record_id=(result.record_id or "")[:64],
        version=result.version if result.version and 0 < result.version < 2**31 else None,
        outcome=result.outcome,
        reason=result.reason[:32],
        issued_record=result.entry,
        client_digest=client_digest(address),
    )
