"""A student's book: every year, from whichever school issued it (issue 4, "the record follows
the student").

A school that receives a student finds the records other schools issued for them in the public
index (portal.IssuedRecord), by the keyed hash of the personal ID, the same hash the index keeps
(portal.selectors.personal_id_digest); the number itself is never sent anywhere. Attaching a
record verifies it first: the issuing school's bytes must hash to the index's SHA-256, parse and
validate as a year record, and name the same personal ID; only then is a copy kept
(transcripts.AttachedRecord) and the attachment audited. The book page lists the school's own
year records (the current version of each) and the attached ones, year by year.

Call these with the receiving school's schema active.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction, IssuedRecordStatus, Role
from portal.models import IssuedRecord, School, User
from portal.permissions import access_for
from portal.selectors import personal_id_digest
from portal.services import audit_record
from schools.models import Student
from transcripts import hooks
from transcripts.document import DocumentError, year_record_from_tree, year_record_load
from transcripts.models import AttachedRecord, YearRecord, YearRecordStatus

log = logging.getLogger(__name__)

# The audit action of an attachment (portal.AuditEntry.action). Not yet one of
# portal.choices.AuditAction: add it there (with its label) when that file is next changed.

ATTACHERS = frozenset({Role.SCHOOL_ADMIN, Role.PRINCIPAL})


def can_attach_records(user: User, school: School) -> bool:
    """Finding and attaching a student's earlier records: the school administrator or the principal."""
    return bool(access_for(user).roles_in_school(school.pk) & ATTACHERS)


# --- Finding ---------------------------------------------------------------------------------


@dataclass
class Candidate:
    """An issued record of another school that names the student's personal ID."""

    entry: IssuedRecord
    attached: bool


def prior_records_find(*, school: School, student: Student) -> list[Candidate]:
    """The records other schools issued for this student and still hold in force, oldest first.

    Matched by the keyed hash of the student's personal ID; a student with only a temporary code
    has no hash, so nothing is found (the page says why). Superseded and revoked versions are
    left out: only the version in force is attached.
    """
    digest = personal_id_digest(student.personal_id)
    if not digest:
        return []
    entries = list(
        IssuedRecord.objects.select_related("school")
        .filter(personal_id_digest=digest, status=IssuedRecordStatus.ISSUED)
        .exclude(school=school)
        .order_by("school_year", "record_id", "version")
    )
    attached = set(AttachedRecord.objects.filter(student=student).values_list("record_id", "version"))
    return [Candidate(entry=e, attached=(e.record_id, e.version) in attached) for e in entries]


# --- Attaching -------------------------------------------------------------------------------


def _refuse(entry: IssuedRecord, reason: str, message: str) -> ValidationError:
    log.warning("Attaching %s v%s refused: %s", entry.record_id, entry.version, reason)
    return ValidationError(message, code=reason)


def _issuing_school_copy(entry: IssuedRecord) -> bytes | None:
    """The issued (sealed) document the issuing school holds for this version, or None."""
    from transcripts.records.services import year_record_document

    with entry.school:
        row = YearRecord.objects.filter(record_id=entry.record_id, version=entry.version).only("xml").first()
        return year_record_document(row) if row is not None else None


@transaction.atomic
def prior_record_attach(
    *, actor: User, school: School, student: Student, issued_record: IssuedRecord
) -> AttachedRecord:
    """Verify an earlier record of another school and attach it to the student's book.

    Refused (ValidationError, with the reason as its code) when the student has no personal ID,
    when the record is this school's own, no longer in force, of another student, already
    attached, or when the issuing school's copy is missing, differs from the index's SHA-256,
    is not a valid year record, or names another personal ID.
    """
    if not can_attach_records(actor, school):
        raise PermissionDenied(
            _("Only the school administrator or the principal attaches a student's earlier records.")
        )
    entry = IssuedRecord.objects.select_related("school").get(pk=issued_record.pk)
    digest = personal_id_digest(student.personal_id)
    if not digest:
        raise ValidationError(
            _(
                "%(name)s has no verified personal ID number: earlier records are found only by it. "
                "Enter the number first."
            )
            % {"name": student.full_name},
            code="no_personal_id",
        )
    if entry.school_id == school.pk:
        raise _refuse(entry, "own", _("This record was issued by this school: it is already in the book."))
    if entry.personal_id_digest != digest:
        raise _refuse(entry, "other_student", _("This record belongs to another student."))
    if entry.status != IssuedRecordStatus.ISSUED:
        raise _refuse(
            entry, "not_in_force", _("This version is no longer in force: it was superseded or revoked.")
        )
    # Serialise two attachments of the same record to the same student (a double click).
    Student.objects.select_for_update(no_key=True).filter(pk=student.pk).first()
    if AttachedRecord.objects.filter(
        student=student, record_id=entry.record_id, version=entry.version
    ).exists():
        raise _refuse(entry, "attached", _("This record is already attached to the student's book."))

    xml = _issuing_school_copy(entry)
    if xml is None:
        raise _refuse(
            entry, "missing", _("The issuing school no longer holds this record; it cannot be verified.")
        )
    sha256 = hashlib.sha256(xml).hexdigest()
    if sha256 != entry.sha256:
        raise _refuse(
            entry,
            "mismatch",
            _(
                "The issuing school's copy of %(record)s version %(version)d does not match the "
                "public index: it cannot be verified, and is not attached."
            )
            % {"record": entry.record_id, "version": entry.version},
        )
    try:
        document = year_record_from_tree(year_record_load(xml))
    except (DocumentError, ValueError) as error:
        log.error("Issued record %s v%s does not parse: %r", entry.record_id, entry.version, error)
        raise _refuse(entry, "invalid", _("The issuing school's copy is not a valid year record.")) from error
    if (document.record_id, document.version) != (entry.record_id, entry.version):
        raise _refuse(entry, "invalid", _("The issuing school's copy is not a valid year record."))
    signatures = hooks.signatures_for(xml)
    if len(signatures) != 3 or not all(line.ok for line in signatures):
        problems = "; ".join(dict.fromkeys(r for line in signatures for r in line.messages)) or _(
            "not all signatures are there"
        )
        raise _refuse(
            entry,
            "signature",
            _("The signatures of this record do not verify (%(problems)s): it is not attached.")
            % {"problems": problems},
        )
    if not document.student.personal_id or document.student.personal_id != student.personal_id:
        raise _refuse(
            entry,
            "personal_id",
            _("The record names another personal ID number than this student's: it is not attached."),
        )

    attached = AttachedRecord.objects.create(
        student=student,
        source_school_code=document.issuer.school_code,
        source_school_name=document.issuer.school_name,
        school_year=document.school_year,
        grade=document.grade,
        class_name=document.class_name,
        record_id=entry.record_id,
        version=entry.version,
        sha256=sha256,
        xml=xml,
        attached_at=timezone.now(),
        attached_by=actor,
    )
    audit_record(
        actor=actor,
        action=AuditAction.YEAR_RECORD_ATTACHED,
        obj=attached,
        summary=_("Year record %(record)s v%(version)d of %(school)s attached to the book of %(name)s")
        % {
            "record": entry.record_id,
            "version": entry.version,
            "school": document.issuer.school_name,
            "name": student.full_name,
        },
        changes={
            "record_id": entry.record_id,
            "version": entry.version,
            "sha256": sha256,
            "source_school": entry.school.code,
            "student_code": student.student_code,
        },
        school=school,
    )
    return attached


# --- The book --------------------------------------------------------------------------------


@dataclass
class BookYear:
    """One year of a student's book, from this school or another."""

    school_code: str
    school_name: str
    school_year: str
    grade: int
    class_name: str
    record_id: str
    version: int
    status: str  # a YearRecordStatus or IssuedRecordStatus value
    status_label: str
    own: bool
    verifiable: bool  # issued at least once: the public verification page knows it
    # The public page with the verification code (issue 9, finding 7); "" when not indexed.
    verify_url: str = ""
    verification_code: str = ""


# Own statuses under which a version has been in the public index.
_INDEXED = frozenset(
    {
        YearRecordStatus.ISSUED,
        YearRecordStatus.QUEUED,
        YearRecordStatus.ACKNOWLEDGED,
        YearRecordStatus.REJECTED,
    }
)


def _verification(entry: IssuedRecord | None) -> tuple[str, str]:
    """(the public page's link with the code, the code as printed); empty for a version not indexed."""
    if entry is None:
        return "", ""
    return entry.get_absolute_url(), entry.verification_code_display


def student_book(*, school: School, student: Student) -> list[BookYear]:
    """Every year of the student, in order: this school's records (the newest version of each,
    pending corrections aside) and the records attached from other schools, with their status
    as the public index has it now."""
    years: list[BookYear] = []
    newest: dict[str, YearRecord] = {}
    for record in (
        YearRecord.objects.filter(enrolment__student=student)
        .exclude(status=YearRecordStatus.DRAFT)
        .select_related("enrolment__school_class__school_year")
        .defer("xml")
        .order_by("record_id", "version")
    ):
        newest[record.record_id] = record
    indexed = {
        (e.record_id, e.version): e
        for e in IssuedRecord.objects.filter(record_id__in=list(newest)).only(
            "record_id", "version", "verification_code"
        )
    }
    for record in newest.values():
        school_class = record.enrolment.school_class
        verify_url, code = _verification(indexed.get((record.record_id, record.version)))
        years.append(
            BookYear(
                school_code=school.code,
                school_name=school.name,
                school_year=school_class.school_year.code,
                grade=school_class.grade,
                class_name=school_class.name,
                record_id=record.record_id,
                version=record.version,
                status=record.status,
                status_label=str(YearRecordStatus(record.status).label),
                own=True,
                verifiable=(record.record_id, record.version) in indexed or record.status in _INDEXED,
                verify_url=verify_url,
                verification_code=code,
            )
        )
    attached = list(AttachedRecord.objects.filter(student=student).defer("xml"))
    entries = {
        (e.record_id, e.version): e
        for e in IssuedRecord.objects.filter(record_id__in=[a.record_id for a in attached]).only(
            "record_id", "version", "status", "verification_code"
        )
    }
    for a in attached:
        entry = entries.get((a.record_id, a.version))
        status = entry.status if entry is not None else ""
        verify_url, code = _verification(entry)
        years.append(
            BookYear(
                school_code=a.source_school_code,
                school_name=a.source_school_name,
                school_year=a.school_year,
                grade=a.grade,
                class_name=a.class_name,
                record_id=a.record_id,
                version=a.version,
                status=status,
                status_label=str(IssuedRecordStatus(status).label) if status else _("No longer in the index"),
                own=False,
                verifiable=bool(status),
                verify_url=verify_url,
                verification_code=code,
            )
        )
    years.sort(key=lambda y: (y.school_year, y.grade, not y.own, y.record_id, y.version))
    return years
