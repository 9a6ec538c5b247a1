"""Reads of a class's year records, in a fixed number of queries whatever the class size."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import Count, F, Q

from schools.choices import EnrolmentStatus
from schools.models import Enrolment, SchoolClass
from transcripts.document import year_record_parse
from transcripts.models import (
    StudentYear,
    YearRecord,
    YearRecordEvent,
    YearRecordPdf,
    YearRecordStatus,
    YearRecordXml,
)
from transcripts.rules.codec import SUMMER_OUTCOMES
from transcripts.selectors import active_enrolments

from .snapshot import results_are_final
from .storage import DocumentMissing as DocumentMissing  # the storage's refusals, re-exported
from .storage import DocumentTampered as DocumentTampered  # for the apps above (the public face)
from .storage import DocumentUnavailable as DocumentUnavailable
from .storage import document_get as document_get  # the checked read, for archives above

S = YearRecordStatus


@dataclass
class RecordRow:
    """One student on the class's records page: the version in force, a pending correction, history."""

    enrolment: Enrolment
    current: YearRecord | None = None  # the version in force, or the newest closed one
    pending: YearRecord | None = None  # a correction waiting for the principal's approval
    older: list[YearRecord] = field(default_factory=list)  # superseded or revoked versions
    waiting: bool = False  # no record yet: results decided only in August
    rejection: str = ""  # the Ministry's reason, when the version in force was rejected


def class_record_rows(school_class: SchoolClass) -> list[RecordRow]:
    """Every student of the class with their record versions: four queries whatever the size (a
    fifth when the Ministry rejected some: its reasons)."""
    enrolments = active_enrolments(school_class)
    rows = {e.pk: RecordRow(enrolment=e) for e in enrolments}
    records = (
        YearRecord.objects.filter(enrolment__school_class=school_class)
        .select_related("enrolment__student")
        .defer("xml")
        .order_by("enrolment_id", "version")
    )
    for record in records:
        row = rows.get(record.enrolment_id)
        if row is None:  # a student who has left the class keeps their records on the page
            row = rows[record.enrolment_id] = RecordRow(enrolment=record.enrolment)
        if record.status == S.DRAFT:
            row.pending = record
        elif row.current is None or row.current.status in (S.SUPERSEDED, S.REVOKED):
            if row.current is not None:
                row.older.append(row.current)
            row.current = record
        else:
            row.older.append(record)
    rejected = {
        row.current.pk: row for row in rows.values() if row.current and row.current.status == S.REJECTED
    }
    if rejected:
        events = YearRecordEvent.objects.filter(record_id__in=list(rejected), to_status=S.REJECTED).order_by(
            "at", "id"
        )
        for record_pk, note in events.values_list("record_id", "note"):
            rejected[record_pk].rejection = note  # the latest rejection's reason wins
    years = {y.enrolment_id: y for y in StudentYear.objects.filter(enrolment__school_class=school_class)}
    for row in rows.values():
        if row.current is None and row.pending is None:
            row.waiting = not results_are_final(years.get(row.enrolment.pk), school_class)
    return list(rows.values())


def rendered_pdf_ids(rows: list[RecordRow]) -> set[int]:
    """The record versions on the page whose PDF is rendered and stored (one query)."""
    pks = [r.pk for row in rows for r in (row.current, row.pending, *row.older) if r is not None]
    return set(YearRecordPdf.objects.filter(record_id__in=pks).values_list("record_id", flat=True))


def year_record_pdf_bytes(record: YearRecord) -> bytes | None:
    """The record version's stored PDF/A-3b, or None before it is rendered.

    Read from the documents storage and checked against the SHA-256 its row records: raises
    DocumentUnavailable (DocumentMissing, DocumentTampered) rather than return other bytes.
    """
    stored = YearRecordPdf.objects.filter(record=record).only("name", "sha256").first()
    return document_get(stored.name, stored.sha256) if stored is not None else None


def year_record_xml_copy_bytes(record: YearRecord) -> bytes | None:
    """The issued version's XML as handed out for download: its stored copy (YearRecordXml, made
    with its PDF), checked against the SHA-256 its row records; None when the version has no copy
    (not issued yet, or issued and not yet rendered: the caller serves the database's document).
    Raises DocumentUnavailable as year_record_pdf_bytes does."""
    stored = YearRecordXml.objects.filter(record=record).only("name", "sha256").first()
    return document_get(stored.name, stored.sha256) if stored is not None else None


def record_versions_where(pairs: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, str]]:
    """Where each (record id, version) of this school lives: its class's id and the student's
    name (one query; for pages that list records found elsewhere, e.g. the Ministry's verdicts)."""
    if not pairs:
        return {}
    wanted = set(pairs)
    records = YearRecord.objects.filter(record_id__in={r for r, _v in pairs}).values_list(
        "record_id", "version", "enrolment__school_class_id", "enrolment__student__full_name"
    )
    return {(r, v): (c, name) for r, v, c, name in records if (r, v) in wanted}


@dataclass(frozen=True)
class IssuedVersion:
    """An issued version as it left (or should have left) the school: for forwarding it."""

    record_id: str
    version: int
    replaces_version: int | None
    document: bytes  # the sealed document
    personal_id: str | None
    student_code: str


def issued_versions(*, statuses: tuple[str, ...] = (S.ISSUED,), batch: int = 200) -> Iterator[IssuedVersion]:
    """The school's versions in these statuses (default: issued, not yet handed to the Ministry),
    each with its sealed document; read `batch` at a time (the connection is on the school's
    schema)."""
    records = (
        YearRecord.objects.filter(status__in=statuses)
        .select_related("supersedes")
        .only("pk", "record_id", "version", "xml", "supersedes__version")
        .order_by("pk")
    )
    for record in records.iterator(chunk_size=batch):
        sealed = record.signatures.order_by("-position").only("signed_xml").first()
        if sealed is None:  # pragma: no cover -- the database refuses an issued version without its seal
            continue
        snapshot = year_record_parse(bytes(record.xml))
        yield IssuedVersion(
            record_id=record.record_id,
            version=record.version,
            replaces_version=record.supersedes.version if record.supersedes is not None else None,
            document=bytes(sealed.signed_xml),
            personal_id=snapshot.student.personal_id,
            student_code=snapshot.student.student_code,
        )


# --- Progress (portal.SchoolProgress): this app's part -----------------------------------------

# The progress row's record counters, by the statuses they count (a correction waiting for the
# principal, a draft with an earlier version in force, is not counted: its record counts once,
# by the version in force).
RECORD_COUNTERS = {
    "records_draft": (S.DRAFT, S.DATA_COMPLETE),
    "records_confirmed": (S.CONFIRMED,),
    "records_signed_homeroom": (S.SIGNED_HOMEROOM,),
    "records_signed_principal": (S.SIGNED_PRINCIPAL,),
    "records_issued": (S.ISSUED,),
    "records_queued": (S.QUEUED,),
    "records_acknowledged": (S.ACKNOWLEDGED,),
    "records_rejected": (S.REJECTED,),
}
BOOK_FIELDS = ("classes_books_complete", "classes_approved", "students_waiting_summer")
RECORD_FIELDS = tuple(RECORD_COUNTERS)


def progress_books(school: object, school_year: str) -> dict[str, int]:
    """The "books" part of the school's progress row for one school year (two queries; the
    connection is on the school's schema):

    - classes approved by the principal, and classes whose grade book is complete: approved, or
      with every studying student's year results computed by the homeroom teacher;
    - students waiting for the August close: in an approved class not closed again in August,
      sent by the June results to re-assessment or summer re-training.
    """
    studying = Q(enrolments__status=EnrolmentStatus.ACTIVE)
    classes = SchoolClass.objects.filter(school_year__code=school_year).annotate(
        studying=Count("enrolments", filter=studying),
        computed=Count("enrolments", filter=studying & Q(enrolments__year__computed_at__isnull=False)),
    )
    books = classes.aggregate(
        approved=Count("pk", filter=Q(closed_at__isnull=False)),
        complete=Count("pk", filter=Q(closed_at__isnull=False) | Q(studying__gt=0, computed=F("studying"))),
    )
    waiting = StudentYear.objects.filter(
        enrolment__school_class__school_year__code=school_year,
        enrolment__status=EnrolmentStatus.ACTIVE,
        enrolment__school_class__closed_at__isnull=False,
        enrolment__school_class__summer_closed_at__isnull=True,
        results__outcome__in=[str(o) for o in SUMMER_OUTCOMES],
    ).count()
    return {
        "classes_books_complete": books["complete"],
        "classes_approved": books["approved"],
        "students_waiting_summer": waiting,
    }


def progress_records(school: object, school_year: str) -> dict[str, int]:
    """The "records" part of the school's progress row for one school year (one query): the
    year's records by the status of the version that counts (RECORD_COUNTERS)."""
    by_status = dict(
        YearRecord.objects.filter(enrolment__school_class__school_year__code=school_year)
        .exclude(status=S.DRAFT, supersedes__isnull=False)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("status", "n")
    )
    return {
        name: sum(by_status.get(status, 0) for status in statuses)
        for name, statuses in RECORD_COUNTERS.items()
    }
