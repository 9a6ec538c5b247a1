"""The year record's lifecycle (domain.md §5): creation, each step, corrections, revocation.

Every service checks the actor's permission, locks the rows it changes, and writes the record's
history (YearRecordEvent) and a public audit row (portal.services.audit_record) in the same
transaction. The database has the last word on a signed record (migration 0005): these services
never try to change its content, and a bug that did would be refused by the trigger.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.models import CopyLog, School, User
from portal.progress.services import progress_batch, progress_changed
from portal.services import audit_record, audit_records, issued_record_add, issued_record_status_set
from schools.models import SchoolClass, SchoolYear
from transcripts import hooks
from transcripts.choices import SignatureStep, signature_position
from transcripts.document import DocumentError, Supersedes, year_record_id, year_record_parse, year_record_xml
from transcripts.models import (
    StudentYear,
    YearRecord,
    YearRecordEvent,
    YearRecordRenewal,
    YearRecordSignature,
    YearRecordStatus,
)
from transcripts.permissions import (
    HOMEROOM,
    SYSTEM,
    can_create_year_records,
    can_decide_on_records,
    can_make_step,
    can_sign,
)
from transcripts.selectors import active_enrolments

from .snapshot import class_snapshots, results_are_final, year_record_snapshot

S = YearRecordStatus
# The progress parts a record's change moves (portal.progress.services): its status, and the
# rejections by reason counted for the versions in force (registry's part).
RECORD_PARTS = ("records", "registry")

# The steps year_record_transition makes, and who makes each. Superseding, revoking and
# approving a correction (draft → data complete) have their own services; the database trigger
# keeps its own list of the moves allowed once a record is signed, which this table respects.
# The three signed states are reached only by year_record_sign, with the signature (the
# database refuses them without it, migration 0009).
TRANSITIONS: dict[tuple[str, str], str] = {
    (S.DATA_COMPLETE, S.CONFIRMED): HOMEROOM,
    (S.ISSUED, S.QUEUED): SYSTEM,
    (S.QUEUED, S.ACKNOWLEDGED): SYSTEM,
    (S.QUEUED, S.REJECTED): SYSTEM,
    (S.REJECTED, S.QUEUED): SYSTEM,  # sent again once what the Ministry refused is resolved
}
CORRECTABLE = frozenset(
    {
        S.DATA_COMPLETE,
        S.CONFIRMED,
        S.SIGNED_HOMEROOM,
        S.SIGNED_PRINCIPAL,
        S.ISSUED,
        S.QUEUED,
        S.ACKNOWLEDGED,
        S.REJECTED,
    }
)


@dataclass
class YearRecordsCreated:
    """What year_records_create did for a class."""

    created: list[YearRecord] = field(default_factory=list)
    existing: int = 0  # students who already had a record for the year: left alone
    waiting: list[str] = field(default_factory=list)  # names: results decided only in August


def _bytes_of(snapshot) -> tuple[bytes, str]:
    try:
        xml = year_record_xml(snapshot)
    except DocumentError as error:
        # The book holds something the document cannot carry; say which record, keep the detail.
        raise ValidationError(
            _("The year record of %(name)s cannot be built: %(error)s")
            % {"name": snapshot.student.full_name, "error": str(error)}
        ) from error
    return xml, hashlib.sha256(xml).hexdigest()


def _label(status: str) -> str:
    return str(YearRecordStatus(status).label)


def _lock(record: YearRecord) -> YearRecord:
    return (
        YearRecord.objects.select_for_update(no_key=True, of=("self",))
        .select_related("enrolment__school_class__school_year", "enrolment__student")
        .get(pk=record.pk)
    )


def _year_of(record: YearRecord) -> str:
    """The school year's code of a record (no query when _lock loaded it)."""
    school_class = record.enrolment.school_class
    if "school_year" in school_class._state.fields_cache:
        return school_class.school_year.code
    return SchoolYear.objects.values_list("code", flat=True).get(classes__pk=school_class.pk)


def _years_of(record_pks: list[int]) -> list[str]:
    return sorted(
        set(
            SchoolYear.objects.filter(classes__enrolments__year_records__pk__in=record_pks).values_list(
                "code", flat=True
            )
        )
    )


def _move(
    *,
    actor: User | None,
    school: School,
    record: YearRecord,
    to_status: str,
    note: str = "",
    action: str = AuditAction.YEAR_RECORD_STATUS_CHANGED,
    summary: str = "",
    extra: dict | None = None,
) -> YearRecord:
    """Set the locked record's status, and write its event and audit row."""
    old = record.status
    record.status, record.status_changed_at = to_status, timezone.now()
    record.save(update_fields=["status", "status_changed_at"])
    YearRecordEvent.objects.create(
        record=record,
        from_status=old,
        to_status=to_status,
        actor=actor,
        at=record.status_changed_at,
        note=note,
    )
    _outside_the_school(school=school, record=record, note=note)
    progress_changed(school_year=_year_of(record), school=school, parts=RECORD_PARTS)
    audit_record(
        actor=actor,
        action=action,
        obj=record,
        summary=summary
        or _("Year record %(record)s v%(version)d: %(old)s → %(new)s")
        % {
            "record": record.record_id,
            "version": record.version,
            "old": _label(old),
            "new": _label(to_status),
        },
        changes={
            "status": [old, to_status],
            "record_id": record.record_id,
            "version": record.version,
            **(extra or {}),
        },
        school=school,
    )
    return record


def _outside_the_school(*, school: School, record: YearRecord, note: str) -> None:
    """Mirror an issue, a supersession or a revocation in the public index (portal.IssuedRecord),
    and tell registry (transcripts.hooks) so that the Ministry hears of an issue or a revocation.

    Runs inside the transition's transaction, so neither the index nor the outbox ever says what
    the school does not. A version superseded or revoked before it was issued was never indexed:
    nothing to update (and registry sends no cancel for a version the Ministry never held).
    """
    if record.status == S.ISSUED:
        sealed = record.signatures.order_by("-position").first()  # the document as issued
        assert sealed is not None  # an issued version carries at least the school's seal
        document = year_record_parse(bytes(record.xml))  # the snapshot
        issued_record_add(
            school=school,
            record_id=record.record_id,
            version=record.version,
            sha256=sealed.sha256,
            school_year=document.school_year,
            student_code=document.student.student_code,
            personal_id=document.student.personal_id,
            at=record.status_changed_at,
        )
        replaced = (
            YearRecord.objects.filter(pk=record.supersedes_id).values_list("version", flat=True).first()
            if record.supersedes_id
            else None
        )
        hooks.record_issued(
            school=school,
            record_id=record.record_id,
            version=record.version,
            replaces_version=replaced,
            document=bytes(sealed.signed_xml),
            personal_id=document.student.personal_id,
            student_code=document.student.student_code,
        )
    elif record.status in (S.SUPERSEDED, S.REVOKED):
        issued_record_status_set(
            record_id=record.record_id,
            version=record.version,
            status=record.status,
            at=record.status_changed_at,
        )
        if record.status == S.REVOKED:
            hooks.record_revoked(
                school=school, record_id=record.record_id, version=record.version, reason=note
            )


@transaction.atomic
def year_records_create(*, actor: User, school: School, school_class: SchoolClass) -> YearRecordsCreated:
    """Create version 1 of the year record of every active student of an approved class.

    Idempotent: a student who already has a record for the year (any version, any status) is
    left alone. Students whose outcome is decided in August (re-assessment, summer re-training)
    wait for the August close. One audit row for the class, one event per record.
    """
    if not can_create_year_records(actor, school, school_class):
        raise PermissionDenied(
            _("Only the class's homeroom teacher or the school's leaders create its records.")
        )
    # The class row lock serialises two creations of the same class (a double click).
    school_class = (
        SchoolClass.objects.select_for_update().select_related("school_year").get(pk=school_class.pk)
    )
    if school_class.closed_at is None:
        raise ValidationError(_("Year records are created once the principal has approved the class's year."))
    outcome = YearRecordsCreated()
    enrolments = active_enrolments(school_class)
    ids = {
        e.pk: year_record_id(
            school_code=school.code,
            student_code=e.student.student_code,
            school_year=school_class.school_year.code,
        )
        for e in enrolments
    }
    existing = set(YearRecord.objects.filter(record_id__in=ids.values()).values_list("record_id", flat=True))
    years = {y.enrolment_id: y for y in StudentYear.objects.filter(enrolment__in=enrolments)}
    todo = []
    for enrolment in enrolments:
        if ids[enrolment.pk] in existing:
            outcome.existing += 1
        elif not results_are_final(years.get(enrolment.pk), school_class):
            outcome.waiting.append(enrolment.student.full_name)
        else:
            todo.append(enrolment)
    if not todo:
        return outcome
    snapshots = class_snapshots(school=school, school_class=school_class, enrolments=todo)
    now = timezone.now()
    records = []
    for enrolment in todo:
        xml, digest = _bytes_of(snapshots[enrolment.pk])
        records.append(
            YearRecord(
                enrolment=enrolment,
                record_id=ids[enrolment.pk],
                version=1,
                status=S.DATA_COMPLETE,
                xml=xml,
                sha256=digest,
                created_at=now,
                created_by=actor,
                status_changed_at=now,
            )
        )
    outcome.created = YearRecord.objects.bulk_create(records)
    progress_changed(school_year=school_class.school_year.code, school=school, parts=RECORD_PARTS)
    YearRecordEvent.objects.bulk_create(
        YearRecordEvent(record=r, from_status="", to_status=S.DATA_COMPLETE, actor=actor, at=now)
        for r in outcome.created
    )
    audit_record(
        actor=actor,
        action=AuditAction.YEAR_RECORDS_CREATED,
        obj=school_class,
        summary=_("Year records of class %(name)s created (%(count)d students)")
        % {"name": school_class.name, "count": len(outcome.created)},
        changes={"records": [[r.record_id, r.version, r.sha256] for r in outcome.created]},
        school=school,
    )
    return outcome


@transaction.atomic
def year_record_transition(
    *, actor: User | None, school: School, record: YearRecord, to_status: str, note: str = ""
) -> YearRecord:
    """Make one step of TRANSITIONS (actor None: the system, for the system's steps)."""
    record = _lock(record)
    who = TRANSITIONS.get((record.status, to_status))
    if who is None:
        raise ValidationError(
            _("A year record cannot move from “%(old)s” to “%(new)s”.")
            % {"old": _label(record.status), "new": _label(to_status)}
        )
    if not can_make_step(actor, school, record.enrolment.school_class, who):
        raise PermissionDenied(_("You may not make this step of the year record."))
    return _move(actor=actor, school=school, record=record, to_status=to_status, note=note)


@transaction.atomic
def year_record_forwarding_note(
    *, school: School, record_id: str, version: int, to_status: str, note: str = ""
) -> bool:
    """One version's side at the Ministry (year_records_forwarding_notes for one)."""
    return bool(year_records_forwarding_notes(school=school, notes=[(record_id, version, to_status, note)]))


@transaction.atomic
def year_records_forwarding_notes(*, school: School, notes: list[tuple[str, int, str, str]]) -> int:
    """The Ministry's side of versions, told by registry's relay (the system, no actor), as
    (record id, version, to status, note): sent (issued or rejected → queued), acknowledged or
    rejected (queued → ...), with the Ministry's words as the note. A version that has moved on
    meanwhile (superseded, revoked) keeps its status. Each move gets its event and audit row, as
    any transition; a batch costs a fixed number of statements (lock, one update per target
    status, the events, the audit rows). Returns how many moved. The connection must be on the
    school's schema."""
    wanted = {(record_id, version): (to_status, note) for record_id, version, to_status, note in notes}
    if not wanted:
        return 0
    records = (
        YearRecord.objects.select_for_update(no_key=True, of=("self",))
        .filter(record_id__in={record_id for record_id, _version in wanted})
        .only("pk", "record_id", "version", "status")
        .order_by("pk")
    )
    moves = []
    for record in records:
        to_status, note = wanted.get((record.record_id, record.version), ("", ""))
        if to_status and TRANSITIONS.get((record.status, to_status)) == SYSTEM:
            moves.append((record, record.status, to_status, note))
    if not moves:
        return 0
    now = timezone.now()
    for to_status in {to for _r, _old, to, _n in moves}:
        YearRecord.objects.filter(pk__in=[r.pk for r, _old, to, _n in moves if to == to_status]).update(
            status=to_status, status_changed_at=now
        )
    YearRecordEvent.objects.bulk_create(
        YearRecordEvent(record_id=r.pk, from_status=old, to_status=to, actor=None, at=now, note=note)
        for r, old, to, note in moves
    )
    for code in _years_of([r.pk for r, _old, _to, _n in moves]):
        progress_changed(school_year=code, school=school, parts=RECORD_PARTS)
    audit_records(
        [
            {
                "action": AuditAction.YEAR_RECORD_STATUS_CHANGED,
                "obj": r,
                "summary": _("Year record %(record)s v%(version)d: %(old)s → %(new)s")
                % {"record": r.record_id, "version": r.version, "old": _label(old), "new": _label(to)},
                "changes": {"status": [old, to], "record_id": r.record_id, "version": r.version},
                "school": school,
            }
            for r, old, to, _note in moves
        ]
    )
    return len(moves)


def year_record_confirm(*, actor: User, school: School, record: YearRecord) -> YearRecord:
    """The homeroom teacher confirms the record's content (data complete → confirmed)."""
    return year_record_transition(actor=actor, school=school, record=record, to_status=S.CONFIRMED)


@transaction.atomic
@progress_batch()
def year_records_confirm_all(*, actor: User, school: School, school_class: SchoolClass) -> int:
    """The homeroom teacher confirms every record of the class that is data complete, at once
    (all of them, or none); returns how many."""
    if not can_make_step(actor, school, school_class, HOMEROOM):
        raise PermissionDenied(_("You may not make this step of the year record."))
    records = list(
        YearRecord.objects.filter(enrolment__school_class=school_class, status=S.DATA_COMPLETE)
        .defer("xml")
        .order_by("pk")
    )
    if not records:
        raise ValidationError(_("No year record of this class is waiting for confirmation."))
    for record in records:
        year_record_confirm(actor=actor, school=school, record=record)
    return len(records)


@transaction.atomic
def year_record_correct(*, actor: User, school: School, record: YearRecord, reason: str) -> YearRecord:
    """Ask for a correction: a new version (a draft) from the book as it is now, with a reason.

    The version it corrects stays in force until the principal approves the correction
    (year_record_correction_approve); the new version then goes through signing again.
    """
    reason = reason.strip()
    record = _lock(record)
    if not can_create_year_records(actor, school, record.enrolment.school_class):
        raise PermissionDenied(
            _("Only the class's homeroom teacher or the school's leaders ask for a correction.")
        )
    if not reason:
        raise ValidationError(_("A correction needs a reason."))
    if record.status not in CORRECTABLE:
        raise ValidationError(
            _("This version cannot be corrected: it is “%(status)s”.") % {"status": _label(record.status)}
        )
    if YearRecord.objects.filter(record_id=record.record_id, status=S.DRAFT).exists():
        raise ValidationError(_("A correction of this record is already waiting for approval."))
    snapshot = year_record_snapshot(
        school=school,
        enrolment=record.enrolment,
        version=record.version + 1,
        supersedes=Supersedes(record.record_id, record.version),
    )
    # The record id is stable across versions even if a code it was made from has changed since.
    snapshot = dataclasses.replace(snapshot, record_id=record.record_id)
    xml, digest = _bytes_of(snapshot)
    now = timezone.now()
    correction = YearRecord.objects.create(
        enrolment=record.enrolment,
        record_id=record.record_id,
        version=record.version + 1,
        supersedes=record,
        status=S.DRAFT,
        xml=xml,
        sha256=digest,
        correction_reason=reason,
        created_at=now,
        created_by=actor,
        status_changed_at=now,
    )
    YearRecordEvent.objects.create(
        record=correction, from_status="", to_status=S.DRAFT, actor=actor, at=now, note=reason
    )
    audit_record(
        actor=actor,
        action=AuditAction.YEAR_RECORD_CORRECTION,
        obj=correction,
        summary=_("Correction of year record %(record)s asked for as version %(version)d")
        % {"record": correction.record_id, "version": correction.version},
        changes={"record_id": correction.record_id, "version": correction.version, "reason": reason},
        school=school,
    )
    return correction


@transaction.atomic
@progress_batch()
def year_record_correction_approve(*, actor: User, school: School, record: YearRecord) -> YearRecord:
    """The principal approves a correction: the old version is superseded, the new one goes on.

    Both versions stay readable (and the old one verifiable, marked superseded); the new one
    moves to "data complete", to be confirmed and signed again.
    """
    if not can_decide_on_records(actor, school):
        raise PermissionDenied(_("Only the principal or a vice-principal approves a correction."))
    record = _lock(record)
    if record.status != S.DRAFT or record.supersedes_id is None:
        raise ValidationError(_("This version is not a correction waiting for approval."))
    assert record.supersedes is not None  # supersedes_id checked just above
    old = _lock(record.supersedes)
    if old.status not in CORRECTABLE:
        raise ValidationError(_("The version this correction replaces is no longer in force."))
    summary = _("Correction of year record %(record)s approved: version %(new)d replaces version %(old)d") % {
        "record": record.record_id,
        "new": record.version,
        "old": old.version,
    }
    # Old first: at most one version is in force at any moment (a partial unique constraint).
    _move(actor=actor, school=school, record=old, to_status=S.SUPERSEDED, note=record.correction_reason)
    return _move(
        actor=actor,
        school=school,
        record=record,
        to_status=S.DATA_COMPLETE,
        note=record.correction_reason,
        action=AuditAction.YEAR_RECORD_CORRECTION_APPROVED,
        summary=summary,
    )


@transaction.atomic
def year_record_revoke(*, actor: User, school: School, record: YearRecord, reason: str) -> YearRecord:
    """The principal withdraws a version (a pending correction included), with a reason."""
    reason = reason.strip()
    if not can_decide_on_records(actor, school):
        raise PermissionDenied(_("Only the principal or a vice-principal revokes a year record."))
    if not reason:
        raise ValidationError(_("A revocation needs a reason."))
    record = _lock(record)
    if record.status == S.REVOKED:
        raise ValidationError(_("This year record is already revoked."))
    return _move(
        actor=actor,
        school=school,
        record=record,
        to_status=S.REVOKED,
        note=reason,
        action=AuditAction.YEAR_RECORD_REVOKED,
        summary=_("Year record %(record)s v%(version)d revoked")
        % {"record": record.record_id, "version": record.version},
    )


# --- Signatures ----------------------------------------------------------------------------------

# The signature each step adds, the status the record must be in, and the status it moves to.
SIGNING_STEPS: dict[str, tuple[int, str, str]] = {
    step: (signature_position(step), before, after)
    for step, before, after in (
        (SignatureStep.HOMEROOM_TEACHER, S.CONFIRMED, S.SIGNED_HOMEROOM),
        (SignatureStep.PRINCIPAL, S.SIGNED_HOMEROOM, S.SIGNED_PRINCIPAL),
        (SignatureStep.SEAL, S.SIGNED_PRINCIPAL, S.ISSUED),
    )
}


def year_record_copy_log(
    *, actor: User, school: School, record: YearRecord, data: bytes, fmt: str
) -> CopyLog:
    """Log a copy of a record version handed out (domain.md §1), before its bytes leave."""
    return CopyLog.objects.create(
        actor=actor,
        school=school,
        record_id=record.record_id,
        version=record.version,
        format=fmt,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def year_record_document(record: YearRecord) -> bytes:
    """The record's current document: as last signed, or the unsigned canonical XML."""
    latest = record.signatures.order_by("-position").only("signed_xml").first()
    return bytes(latest.signed_xml if latest is not None else record.xml)


def year_record_sign_check(*, actor: User, school: School, record: YearRecord, step: str) -> None:
    """Raise why `actor` cannot make signature `step` on `record` now (nothing if they can)."""
    if step not in SIGNING_STEPS:
        raise ValidationError(_("Unknown signing step."))
    before = SIGNING_STEPS[step][1]
    if not can_sign(actor, school, record.enrolment.school_class, step):
        raise PermissionDenied(_("You may not sign this step of the year record."))
    if record.status != before:
        raise ValidationError(
            _("This record is “%(status)s”; it must be “%(needed)s” to be signed at this step.")
            % {"status": _label(record.status), "needed": _label(before)}
        )


@transaction.atomic
def year_record_sign(
    *,
    actor: User,
    school: School,
    record: YearRecord,
    step: str,
    sign,
    signer_name: str,
    signer_title: str,
    certificate_fingerprint: str,
    certificate_serial: str,
    batch_item_pk: int | None = None,
) -> YearRecord:
    """Add signature `step` to the record: store the signed document and move the status on.

    `sign(document_bytes) -> signed_bytes` makes the signature (signing.services); it is called
    with the record's row locked and its state and the signer's role checked again, so two
    attempts on one step sign once: the second finds the step done and is refused. The signature
    row, the status change, the record's event and the audit row commit together.
    """
    record = _lock(record)
    year_record_sign_check(actor=actor, school=school, record=record, step=step)
    position, _before, after = SIGNING_STEPS[step]
    signed = sign(year_record_document(record))
    from transcripts.models import YearRecordSignature

    YearRecordSignature.objects.create(
        record=record,
        position=position,
        role=step,
        signed_xml=signed,
        sha256=hashlib.sha256(signed).hexdigest(),
        signer=actor,
        signer_name=signer_name,
        signer_title=signer_title,
        certificate_fingerprint=certificate_fingerprint,
        certificate_serial=certificate_serial,
        batch_item_pk=batch_item_pk,
    )
    if after == S.ISSUED:
        # The official PDF embeds the issued (sealed) document: rendered once, after the commit.
        from .pdf import year_record_pdfs_render

        year_record_pdfs_render([record.pk])
    return _move(
        actor=actor,
        school=school,
        record=record,
        to_status=after,
        note=signer_name,
        action=AuditAction.YEAR_RECORD_SIGNED,
        summary=_("Year record %(record)s v%(version)d signed (%(step)s) by %(signer)s")
        % {
            "record": record.record_id,
            "version": record.version,
            "step": _label(after),
            "signer": signer_name,
        },
        extra={"certificate": certificate_fingerprint, "serial": certificate_serial, "position": position},
    )


@dataclass
class RecordsSigned:
    """What year_records_sign did, record by record (by primary key)."""

    signed: dict[int, YearRecord] = field(default_factory=dict)  # moved on, signature stored
    failed: dict[int, Exception] = field(default_factory=dict)  # why not: nothing written for it


def _documents(records: list[YearRecord]) -> list[bytes]:
    """Each record's current document (year_record_document for many): one query."""
    latest = {
        record_pk: bytes(xml)
        for record_pk, xml in YearRecordSignature.objects.filter(record_id__in=[r.pk for r in records])
        .order_by("record_id", "-position")
        .distinct("record_id")
        .values_list("record_id", "signed_xml")
    }
    return [latest.get(r.pk) or bytes(r.xml) for r in records]


def _signatures_store(
    *,
    actor: User,
    school: School,
    step: str,
    signed: list[tuple[YearRecord, bytes]],
    facts: dict[str, str],
    batch_item_pks: dict[int, int],
    render_pdf: bool,
) -> None:
    """Store the signatures of `signed` and move each record on (what year_record_sign writes for
    one, in a fixed number of statements for all): the signature rows, the status change, the
    events, the issue outside the school (the seal), the recount and the audit rows."""
    position, before, after = SIGNING_STEPS[step]
    now = timezone.now()
    YearRecordSignature.objects.bulk_create(
        YearRecordSignature(
            record=record,
            position=position,
            role=step,
            signed_xml=xml,
            sha256=hashlib.sha256(xml).hexdigest(),
            signer=actor,
            signer_name=facts["signer_name"],
            signer_title=facts["signer_title"],
            certificate_fingerprint=facts["certificate_fingerprint"],
            certificate_serial=facts["certificate_serial"],
            batch_item_pk=batch_item_pks.get(record.pk),
            signed_at=now,
        )
        for record, xml in signed
    )
    records = [record for record, _xml in signed]
    YearRecord.objects.filter(pk__in=[r.pk for r in records]).update(status=after, status_changed_at=now)
    for record in records:
        record.status, record.status_changed_at = after, now
    note = facts["signer_name"]
    YearRecordEvent.objects.bulk_create(
        YearRecordEvent(record=r, from_status=before, to_status=after, actor=actor, at=now, note=note)
        for r in records
    )
    if after == S.ISSUED:
        if render_pdf:
            # The official PDF embeds the issued (sealed) document: rendered once, after the commit.
            from .pdf import year_record_pdfs_render

            year_record_pdfs_render([r.pk for r in records])
        for record in records:
            _outside_the_school(school=school, record=record, note=note)
    for code in sorted({_year_of(r) for r in records}):
        progress_changed(school_year=code, school=school, parts=RECORD_PARTS)
    audit_records(
        [
            {
                "actor": actor,
                "action": AuditAction.YEAR_RECORD_SIGNED,
                "obj": r,
                "summary": _("Year record %(record)s v%(version)d signed (%(step)s) by %(signer)s")
                % {"record": r.record_id, "version": r.version, "step": _label(after), "signer": note},
                "changes": {
                    "status": [before, after],
                    "record_id": r.record_id,
                    "version": r.version,
                    "certificate": facts["certificate_fingerprint"],
                    "serial": facts["certificate_serial"],
                    "position": position,
                },
                "school": school,
            }
            for r in records
        ]
    )


@transaction.atomic
@progress_batch()
def year_records_sign(
    *,
    actor: User,
    school: School,
    record_pks: Sequence[int],
    step: str,
    sign_many: Callable[[list[bytes]], Sequence[bytes | Exception]],
    signer_name: str,
    signer_title: str,
    certificate_fingerprint: str,
    certificate_serial: str,
    batch_item_pks: dict[int, int] | None = None,
    render_pdf: bool = True,
) -> RecordsSigned:
    """Add signature `step` to many records at once (year_record_sign for many; a signing batch's
    chunk): lock them, check each as year_record_sign does (year_record_sign_check: the state and
    the signer's role), sign the documents of those that pass with ONE call of
    `sign_many(documents) -> [signed bytes or the exception saying why not, in order]`, then store
    every signature and move every record on, in a fixed number of statements.

    Each record's outcome is its own: one that fails its checks, its signature or its writes is in
    `failed` with the reason and nothing is written for it; the others go on (the writes are tried
    for all at once in a savepoint, and on a refusal again record by record, each in its own).
    What `sign_many` raises (a key or TSA failure, signing.backends.BackendError: it concerns
    every record alike) is raised, and nothing is written. The database's triggers (migration
    0009) hold as for one: a signature per step, in order, on the record's own content.
    """
    if step not in SIGNING_STEPS:
        raise ValidationError(_("Unknown signing step."))
    before = SIGNING_STEPS[step][1]
    outcome = RecordsSigned()
    locked = YearRecord.objects.select_for_update(no_key=True, of=("self",)).select_related(
        "enrolment__school_class__school_year", "enrolment__student"
    )
    found = {r.pk: r for r in locked.filter(pk__in=list(record_pks)).order_by("pk")}
    ready: list[YearRecord] = []
    for pk in record_pks:
        record = found.get(pk)
        try:
            if record is None:
                raise ValidationError(_("This year record does not exist."))
            year_record_sign_check(actor=actor, school=school, record=record, step=step)
        except (ValidationError, PermissionDenied) as error:
            outcome.failed[pk] = error
            continue
        ready.append(record)
    if not ready:
        return outcome
    results = list(sign_many(_documents(ready)))
    if len(results) != len(ready):
        raise ValueError(f"{len(ready)} signed documents expected, {len(results)} given")
    signed: list[tuple[YearRecord, bytes]] = []
    for record, result in zip(ready, results, strict=True):
        if isinstance(result, Exception):
            outcome.failed[record.pk] = result
        else:
            signed.append((record, result))
    facts = {
        "signer_name": signer_name,
        "signer_title": signer_title,
        "certificate_fingerprint": certificate_fingerprint,
        "certificate_serial": certificate_serial,
    }
    store = functools.partial(
        _signatures_store,
        actor=actor,
        school=school,
        step=step,
        facts=facts,
        batch_item_pks=batch_item_pks or {},
        render_pdf=render_pdf,
    )
    if not signed:
        return outcome
    try:
        with transaction.atomic():
            store(signed=signed)
    except Exception as error:
        if len(signed) == 1:
            record = signed[0][0]
            record.status = before
            outcome.failed[record.pk] = error
            return outcome
        # One record's writes were refused (a trigger, a constraint): each alone, so it fails alone.
        for record, xml in signed:
            record.status = before
            try:
                with transaction.atomic():
                    store(signed=[(record, xml)])
            except Exception as error:  # the record's own failure, reported with it
                record.status = before
                outcome.failed[record.pk] = error
            else:
                outcome.signed[record.pk] = record
        return outcome
    outcome.signed.update((record.pk, record) for record, _xml in signed)
    return outcome


# --- Renewals (XAdES-LTA): the issued document with archive timestamps -------------------------


def content_bytes_of(xml: bytes) -> bytes:
    """The bytes of the <thongtinhocba> element as they appear in the document."""
    start = xml.index(b"<thongtinhocba")
    return xml[start : xml.index(b"</thongtinhocba>", start) + len(b"</thongtinhocba>")]


def year_record_archived_document(record: YearRecord) -> bytes:
    """The record's document as it verifies in the long run: its latest renewal (archive
    timestamps added), else the issued document (year_record_document)."""
    latest = YearRecordRenewal.objects.filter(record=record).order_by("-sequence").only("renewed_xml").first()
    return bytes(latest.renewed_xml) if latest is not None else year_record_document(record)


@transaction.atomic
def year_record_renew(
    *, school: School, record: YearRecord, renew, actor: User | None = None
) -> YearRecordRenewal:
    """Store a renewal of an issued record: `renew(document) -> (document, proof until)` adds the
    archive timestamps (signing.longterm) to its latest document, with the record's row locked, so two
    runs renew it once each in turn, never from the same copy. The renewal row and the audit row
    commit together; the database refuses a renewal of a record that is not issued, one that
    changes the content, and any change to a stored renewal (migration 0014)."""
    record = _lock(record)
    if not record.signatures.filter(position=3).exists():
        raise ValidationError(_("Only an issued record can be renewed."))
    current = year_record_archived_document(record)
    renewed, proof_until = renew(current)
    if content_bytes_of(renewed) != content_bytes_of(current):
        raise ValidationError(_("A renewal must not change the record's content."))
    sequence = (YearRecordRenewal.objects.filter(record=record).aggregate(n=Max("sequence"))["n"] or 0) + 1
    row = YearRecordRenewal.objects.create(
        record=record,
        sequence=sequence,
        renewed_xml=renewed,
        sha256=hashlib.sha256(renewed).hexdigest(),
        proof_until=proof_until,
    )
    audit_record(
        actor=actor,
        action=AuditAction.YEAR_RECORD_RENEWED,
        obj=record,
        summary=_("Year record %(record)s v%(version)d renewed with archive timestamps (renewal %(n)d)")
        % {"record": record.record_id, "version": record.version, "n": sequence},
        changes={
            "sequence": sequence,
            "sha256": row.sha256,
            "proof_until": proof_until.isoformat() if proof_until else None,
        },
        school=school,
    )
    return row
