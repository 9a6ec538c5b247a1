"""Reads for the signing pages and for the pages that offer to sign (style.md: selectors).

Also the signatures of a year record as people read them (signatures_for), for the public
verification page (registry) and for attaching an earlier school's record (transcripts.book,
through the hook signing registers in transcripts.hooks: transcripts does not import signing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.models import School, User
from transcripts.models import YearRecord
from transcripts.permissions import can_sign
from transcripts.records.services import SIGNING_STEPS

from . import trust
from .choices import Problem, ProblemCode
from .models import BatchState, ItemState, SigningBatch, SigningCertificate, SigningStep
from .verify import verify_year_record


@dataclass
class SigningOffer:
    """One signature the user may make now on some records, and the certificates to make it with."""

    step: str
    label: str
    waiting: int
    certificates: list[SigningCertificate] = field(default_factory=list)


def signing_certificates_for(*, user: User, school: School, step: str):
    """The certificates that can sign `step` for `user` in `school` (the seal's are the school's)."""
    if step == SigningStep.SEAL:
        return SigningCertificate.objects.filter(school=school, removed_at=None)
    return SigningCertificate.objects.filter(user=user, removed_at=None)


def signing_offers(
    *,
    user: User,
    school: School,
    school_class,
    status_counts: dict[str, int],
    include_empty: bool = False,
) -> list[SigningOffer]:
    """The steps `user` may sign on the records of `school_class` that wait for them.

    `school_class` None: the whole school (the principal's and the seal's steps; a homeroom
    teacher signs class by class). `status_counts`: the records in force by status.
    `include_empty`: also the steps the user may sign that nothing waits for. One query for the
    certificates of each step offered.
    """
    offers = []
    for step, (_position, before, _after) in SIGNING_STEPS.items():
        waiting = status_counts.get(before, 0)
        if (waiting or include_empty) and can_sign(user, school, school_class, step):
            offers.append(
                SigningOffer(
                    step=step,
                    label=str(SigningStep(step).label),
                    waiting=waiting,
                    certificates=list(signing_certificates_for(user=user, school=school, step=step)),
                )
            )
    return offers


# What each level of a signature means to a reader (signing.verify.SignatureReport.level).
SIGNATURE_LEVELS = {
    "B": gettext_lazy("Basic signature: verifiable while its certificates are valid"),
    "T": gettext_lazy("Signature with a timestamp: its time is proven"),
    "LT": gettext_lazy("Long-term signature: timestamp and validation data, verifiable offline"),
    "LTA": gettext_lazy("Archived signature: renewed by archive timestamps"),
}


@dataclass(frozen=True)
class SignatureLine:
    """One signature as the verification page shows it."""

    position: int
    role: str  # "Giáo viên chủ nhiệm", ... (translated); "" for a problem of the whole document
    signer: str
    title: str
    organisation: str
    signed_at: dt.datetime | None
    serial: str
    ok: bool
    problems: tuple[Problem, ...]  # each a code and the verifier's technical detail (English)
    # The time its timestamp proves and the authority that stamped it (None: no valid timestamp).
    timestamp: dt.datetime | None = None
    timestamp_authority: str = ""
    level: str = "B"  # B, T, LT, LTA (signing.verify.SignatureReport.level)
    notes: tuple[Problem, ...] = ()  # facts that leave it valid (expired or revoked since)

    @property
    def level_label(self) -> str:
        return str(SIGNATURE_LEVELS.get(self.level, self.level))

    @property
    def note_reasons(self) -> tuple[tuple[ProblemCode, str], ...]:
        return tuple((code, str(code.label)) for code in dict.fromkeys(n.code for n in self.notes))

    @property
    def codes(self) -> tuple[ProblemCode, ...]:
        return tuple(dict.fromkeys(p.code for p in self.problems))

    @property
    def reasons(self) -> tuple[tuple[ProblemCode, str], ...]:
        """Each code once, with what it means in the reader's language (its label)."""
        return tuple((code, str(code.label)) for code in self.codes)

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(message for _code, message in self.reasons)


def signatures_for(xml: bytes) -> list[SignatureLine]:
    """The signatures in the record's <chuky>, each with signer, title, time and validity.

    Checked by signing.verify against the portal's pinned trust roots and current CRLs: the
    signature value and digests, the order (each covers the earlier ones), the certificate's
    chain, validity at the signing time, key usage and revocation. A problem of the document as
    a whole (a wrapping attack, a duplicated Id) comes first, as position 0.
    """
    reports = verify_year_record(
        xml, trust_roots=trust.trust_roots(), crls=trust.crls(), tsa_roots=trust.tsa_roots()
    )
    labels = {step.value: str(step.label) for step in SigningStep}
    return [
        SignatureLine(
            position=r.position,
            role=labels.get(r.role, r.role),
            signer=r.signer,
            title=r.title,
            organisation=r.organisation,
            signed_at=r.signing_time,
            serial=format(r.certificate_serial, "x") if r.certificate_serial is not None else "",
            ok=r.ok,
            problems=tuple(r.problems),
            timestamp=r.timestamp,
            timestamp_authority=r.timestamp_authority,
            level=r.level,
            notes=tuple(r.notes),
        )
        for r in reports
    ]


# --- Batches (signing.views) -----------------------------------------------------------------------


def records_waiting_counts() -> dict[str, int]:
    """The school's records in force that wait for some signature, by status (one query; the
    connection is on the school's schema)."""
    return dict(
        YearRecord.objects.filter(status__in=[before for _p, before, _a in SIGNING_STEPS.values()])
        .values_list("status")
        .annotate(n=Count("pk"))
    )


def signing_batches_recent(*, user: User, school: School, limit: int = 20) -> QuerySet[SigningBatch]:
    """The user's latest batches in the school, each with its counts of items, done and failed."""
    return (
        SigningBatch.objects.filter(school=school, signer=user)
        .annotate(
            total=Count("items"),
            done=Count("items", filter=Q(items__state=ItemState.DONE)),
            failed=Count("items", filter=Q(items__state=ItemState.FAILED)),
        )
        .order_by("-created_at")[:limit]
    )


def signing_batch_progress(batch: SigningBatch) -> dict:
    """A batch's progress as its page and its JSON poll show it: counts, failures, a pause."""
    counts = batch.items.aggregate(
        total=Count("pk"),
        done=Count("pk", filter=Q(state=ItemState.DONE)),
        failed=Count("pk", filter=Q(state=ItemState.FAILED)),
    )
    counts["remaining"] = counts["total"] - counts["done"] - counts["failed"]
    failures = [
        {"student": i.student_name, "record_id": i.record_id, "version": i.version, "reason": i.reason}
        for i in batch.items.filter(state=ItemState.FAILED).order_by("position")
    ]
    paused = batch.state == BatchState.QUEUED and batch.next_attempt_at is not None
    state_label = str(batch.get_state_display())
    if paused:
        assert batch.next_attempt_at is not None
        # The signing service is down: the batch waits and tries again by itself (runner._pause).
        state_label = _("Paused, retrying at %(time)s") % {
            "time": timezone.localtime(batch.next_attempt_at).strftime("%H:%M:%S")
        }
    return {
        "state": batch.state,
        "state_label": state_label,
        "paused": paused,
        "next_attempt_at": batch.next_attempt_at.isoformat() if paused and batch.next_attempt_at else None,
        "retry_reason": batch.retry_reason if paused else "",
        "finished": batch.state in (BatchState.DONE, BatchState.CANCELLED),
        **counts,
        "failures": failures,
    }
