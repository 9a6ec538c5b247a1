"""Reads for the signing pages and for the pages that offer to sign (style.md: selectors)."""

from __future__ import annotations

from dataclasses import dataclass, field

from portal.models import School, User

from .models import SigningCertificate, SigningStep


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
    from transcripts.records.permissions import can_sign
    from transcripts.records.services import SIGNING_STEPS

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
