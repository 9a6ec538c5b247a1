"""One vocabulary per concept: the signing steps are written once (transcripts.choices), and the
models, the database constraint, the signing profile and the services all take them from there."""

from django.db.models import Q

from signing import profile
from signing.models import SigningBatch, SigningStep
from transcripts.choices import OUTCOME_LABELS, SIGNING_ORDER, SignatureStep, signature_position
from transcripts.models import YearRecordSignature
from transcripts.records.services import SIGNING_STEPS
from transcripts.rules.tt22 import Outcome


def test_the_signing_order_is_homeroom_teacher_principal_seal_everywhere():
    assert [s.value for s in SIGNING_ORDER] == ["homeroom_teacher", "principal", "seal"]
    assert profile.ROLES == ("homeroom_teacher", "principal", "seal")
    assert SigningStep is SignatureStep
    assert [signature_position(step) for step in profile.ROLES] == [1, 2, 3]
    assert {step: position for step, (position, _before, _after) in SIGNING_STEPS.items()} == {
        "homeroom_teacher": 1,
        "principal": 2,
        "seal": 3,
    }


def test_the_signature_check_is_generated_from_the_steps_and_is_the_one_written_before():
    constraint = next(
        c for c in YearRecordSignature._meta.constraints if c.name == "year_record_signature_role_in_order"
    )
    assert constraint.condition == (
        Q(position=1, role="homeroom_teacher") | Q(position=2, role="principal") | Q(position=3, role="seal")
    )


def test_the_models_offer_the_steps_as_their_choices():
    assert YearRecordSignature._meta.get_field("role").choices == SignatureStep.choices
    assert SigningBatch._meta.get_field("step").choices == SignatureStep.choices


def test_every_outcome_the_rules_decide_has_a_label():
    assert set(OUTCOME_LABELS) == set(Outcome)
