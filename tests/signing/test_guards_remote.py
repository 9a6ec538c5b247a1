# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""The refusals of remote signing (the reference CSC service), each alone with its reason
(issue 9, finding 14): a credential that is someone else's, a batch confirmed without its OTP or
with a wrong one, a new OTP asked for a batch that is not waiting.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import override

from signing.models import BatchState, SigningBatch
from signing.services import (
    certificate_register_csc,
    certificate_register_pkcs11,
    csc_credentials,
    signing_batch_confirm,
    signing_batch_otp_resend,
    signing_batch_start,
)
from tests.signing.test_batch_backends import csc, principal_remote, remote_signing, seal_token  # noqa: F401
from tests.signing.test_batches import confirmed, teacher_signs, totp_code, two_factor  # noqa: F401
from tests.transcripts.test_year_close import complete_class  # noqa: F401
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401


def refused(error_type, call) -> str:
    with override("en"), pytest.raises(error_type) as caught:
        call()
    error = caught.value
    return " ".join(error.messages) if isinstance(error, ValidationError) else str(error)


@pytest.fixture
def remote_batch(
    homeroom_teacher, principal, school, confirmed, certificates, approved_class, principal_remote
):
    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    return signing_batch_start(actor=principal, school=school, step="principal", certificate=principal_remote)


def test_a_credential_of_someone_else_at_the_service_is_refused(
    csc, principal, vice_principal, remote_signing
):
    theirs, _ = csc.enrol(
        vice_principal.username, vice_principal.full_name, "Phó Hiệu trưởng", algorithm="rsa"
    )
    reason = refused(ValidationError, lambda: certificate_register_csc(actor=principal, credential_id=theirs))
    assert reason == "This credential is not yours at the remote signing service."


def test_a_signer_lists_their_own_credentials(csc, principal, principal_remote):
    listed = csc_credentials(user=principal)
    assert principal_remote.csc_credential_id in [c.credential_id for c in listed]


def test_a_remote_batch_needs_its_otp(remote_batch, principal, school, two_factor):
    reason = refused(
        ValidationError,
        lambda: signing_batch_confirm(
            actor=principal, school=school, batch=remote_batch, otp="  ", totp=totp_code(principal)
        ),
    )
    assert reason == "Enter the confirmation code (OTP) sent by the signing service."
    assert SigningBatch.objects.get(pk=remote_batch.pk).state == BatchState.AWAITING_CONFIRMATION


def test_a_wrong_otp_is_said_and_nothing_is_queued(remote_batch, principal, school, two_factor):
    reason = refused(
        ValidationError,
        lambda: signing_batch_confirm(
            actor=principal, school=school, batch=remote_batch, otp="000000", totp=totp_code(principal)
        ),
    )
    assert reason == "Wrong confirmation code (OTP)."
    assert SigningBatch.objects.get(pk=remote_batch.pk).state == BatchState.AWAITING_CONFIRMATION


def test_the_signer_asks_for_a_new_otp_while_the_batch_waits(remote_batch, principal, csc):
    signing_batch_otp_resend(actor=principal, batch=remote_batch)
    assert csc.otp_for(remote_batch.certificate.csc_credential_id)


def test_a_new_otp_is_refused_to_someone_else(remote_batch, vice_principal):
    reason = refused(
        PermissionDenied, lambda: signing_batch_otp_resend(actor=vice_principal, batch=remote_batch)
    )
    assert reason == "This batch is not waiting for your confirmation."


def test_a_remote_batch_is_authorised_for_its_records_and_spares(
    remote_batch, principal, school, csc, two_factor
):
    otp = csc.otp_for(remote_batch.certificate.csc_credential_id)
    done = signing_batch_confirm(
        actor=principal, school=school, batch=remote_batch, otp=otp, totp=totp_code(principal)
    )
    assert done.state == BatchState.QUEUED and done.secret_expires_at is not None


def test_a_remote_batch_cannot_start_when_the_service_is_not_configured(
    homeroom_teacher, principal, school, confirmed, certificates, approved_class, principal_remote, settings
):
    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    settings.HOCBA_CSC_URL = ""
    reason = refused(
        ValidationError,
        lambda: signing_batch_start(
            actor=principal, school=school, step="principal", certificate=principal_remote
        ),
    )
    assert reason == "No remote signing service is configured."


def test_a_new_otp_cannot_be_sent_when_the_service_is_not_configured(remote_batch, principal, settings):
    settings.HOCBA_CSC_URL = ""
    reason = refused(ValidationError, lambda: signing_batch_otp_resend(actor=principal, batch=remote_batch))
    assert reason == "No remote signing service is configured."


def test_a_seal_token_opened_with_a_wrong_pin_is_refused_at_registration(school_admin, school, seal_token):
    reason = refused(
        ValidationError,
        lambda: certificate_register_pkcs11(
            actor=school_admin,
            school=school,
            token_label=seal_token.token_label,
            key_label=seal_token.key_label,
            pin="000000",
        ),
    )
    assert reason == "Wrong PIN."


def test_the_credentials_cannot_be_listed_when_the_service_is_not_configured(principal, settings):
    from signing.services import csc_credentials

    settings.HOCBA_CSC_URL = ""
    reason = refused(ValidationError, lambda: csc_credentials(user=principal))
    assert reason == "No remote signing service is configured."
