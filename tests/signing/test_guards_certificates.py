"""Every refusal of a signing certificate, triggered alone, with its reason (issue 9, finding 14):
registering one (whose, whose seal, twice, for whom it was issued, when it is valid) and removing one.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.translation import override

import signing.backends
from portal.models import AuditEntry
from signing import ca
from signing.backends import KeyLoadError, csc
from signing.backends.pkcs12 import pkcs12_load
from signing.services import (
    certificate_refusal,
    certificate_register,
    certificate_register_pkcs12,
    certificate_remove,
    key_error_message,
)
from tests.conftest import SIGNING_PIN


def refused(error_type, call) -> str:
    """The reason of a refusal, in English (the msgid), and that it was this kind of refusal."""
    with override("en"), pytest.raises(error_type) as caught:
        call()
    error = caught.value
    return " ".join(error.messages) if isinstance(error, ValidationError) else str(error)


def day(when: dt.datetime) -> str:
    return timezone.localtime(when).strftime("%d/%m/%Y")


def test_a_certificate_is_registered_with_a_person_or_a_school_never_both(school_admin, school, signing_keys):
    loaded = pkcs12_load(signing_keys["seal"], SIGNING_PIN)
    with pytest.raises(
        ValueError, match="A certificate is registered with a person or with a school, not both"
    ):
        certificate_register(
            actor=school_admin, loaded=loaded, user=school_admin, school=school, backend="pkcs12"
        )
    with pytest.raises(
        ValueError, match="A certificate is registered with a person or with a school, not both"
    ):
        certificate_register(actor=school_admin, loaded=loaded, backend="pkcs12")


def test_nobody_registers_a_certificate_for_someone_else(principal, homeroom_teacher, signing_keys):
    reason = refused(
        PermissionDenied,
        lambda: certificate_register_pkcs12(
            actor=principal, user=homeroom_teacher, data=signing_keys["homeroom_teacher"], pin=SIGNING_PIN
        ),
    )
    assert reason == "You can only register your own certificate."


def test_a_teacher_cannot_register_the_schools_seal(homeroom_teacher, school, signing_keys):
    reason = refused(
        PermissionDenied,
        lambda: certificate_register_pkcs12(
            actor=homeroom_teacher, school=school, data=signing_keys["seal"], pin=SIGNING_PIN
        ),
    )
    assert reason == "Only the school's administrator or principal registers its seal."


@pytest.mark.parametrize("holder", ["school_admin", "principal"])
def test_the_school_office_and_its_leaders_register_the_seal(holder, request, school, signing_keys):
    actor = request.getfixturevalue(holder)
    registered = certificate_register_pkcs12(
        actor=actor, school=school, data=signing_keys["seal"], pin=SIGNING_PIN
    )
    assert (registered.school_id, registered.user_id, registered.registered_by_id) == (
        school.pk,
        None,
        actor.pk,
    )


def test_another_schools_administrator_cannot_register_this_schools_seal(
    other_school_admin, school, signing_keys
):
    reason = refused(
        PermissionDenied,
        lambda: certificate_register_pkcs12(
            actor=other_school_admin, school=school, data=signing_keys["seal"], pin=SIGNING_PIN
        ),
    )
    assert reason == "Only the school's administrator or principal registers its seal."


def test_registering_ones_certificate_twice_says_it_is_already_registered(homeroom_teacher, signing_keys):
    data = signing_keys["homeroom_teacher"]
    certificate_register_pkcs12(actor=homeroom_teacher, user=homeroom_teacher, data=data, pin=SIGNING_PIN)
    reason = refused(
        ValidationError,
        lambda: certificate_register_pkcs12(
            actor=homeroom_teacher, user=homeroom_teacher, data=data, pin=SIGNING_PIN
        ),
    )
    assert reason == "This certificate is already registered."


def test_a_removed_certificate_can_be_registered_again(homeroom_teacher, signing_keys):
    data = signing_keys["homeroom_teacher"]
    first = certificate_register_pkcs12(
        actor=homeroom_teacher, user=homeroom_teacher, data=data, pin=SIGNING_PIN
    )
    certificate_remove(actor=homeroom_teacher, certificate=first)
    again = certificate_register_pkcs12(
        actor=homeroom_teacher, user=homeroom_teacher, data=data, pin=SIGNING_PIN
    )
    assert again.pk != first.pk and again.removed_at is None


def test_the_seal_registered_for_one_school_is_refused_for_another(
    school_admin, principal, school, signing_trust
):
    """The same seal file, registered once, then by the same office as a person's: someone else's."""
    seal = signing_trust.seal(school.name)
    certificate_register_pkcs12(actor=school_admin, school=school, data=seal, pin=SIGNING_PIN)
    principal.full_name = school.name  # so that only the holder guard can refuse it
    principal.save(update_fields=["full_name"])
    reason = refused(
        ValidationError,
        lambda: certificate_register_pkcs12(actor=principal, user=principal, data=seal, pin=SIGNING_PIN),
    )
    assert reason == "This certificate is registered with another account."


def test_a_certificate_issued_to_someone_else_is_refused_by_name(homeroom_teacher, principal, signing_keys):
    reason = refused(
        ValidationError,
        lambda: certificate_register_pkcs12(
            actor=homeroom_teacher, user=homeroom_teacher, data=signing_keys["principal"], pin=SIGNING_PIN
        ),
    )
    assert reason == (
        f"This certificate was issued to {principal.full_name}, not to you ({homeroom_teacher.full_name})."
    )


def test_a_name_differing_only_in_case_spacing_and_unicode_form_is_the_same_person(
    homeroom_teacher, signing_trust
):
    import unicodedata

    name = unicodedata.normalize("NFD", "  " + homeroom_teacher.full_name.upper().replace(" ", "  ") + " ")
    data = ca.pkcs12_export(
        ca.issue_person(signing_trust.ca, common_name=name, title="Giáo viên"), SIGNING_PIN
    )
    registered = certificate_register_pkcs12(
        actor=homeroom_teacher, user=homeroom_teacher, data=data, pin=SIGNING_PIN
    )
    assert registered.user_id == homeroom_teacher.pk


def test_the_seal_of_another_school_is_refused_by_name(school_admin, school, other_school, signing_trust):
    reason = refused(
        ValidationError,
        lambda: certificate_register_pkcs12(
            actor=school_admin, school=school, data=signing_trust.seal(other_school.name), pin=SIGNING_PIN
        ),
    )
    assert reason == f"This certificate was issued to {other_school.name}, not to {school.name}."


def test_a_seal_naming_the_school_in_its_common_name_only_is_accepted(school_admin, school, signing_trust):
    issued = ca.issue_person(signing_trust.ca, common_name=school.name, title="", organisation="Khác")
    registered = certificate_register_pkcs12(
        actor=school_admin, school=school, data=ca.pkcs12_export(issued, SIGNING_PIN), pin=SIGNING_PIN
    )
    assert registered.school_id == school.pk


def test_an_expired_certificate_is_refused_with_its_end_date(homeroom_teacher, signing_trust):
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    issued = ca.issue_person(
        signing_trust.ca,
        common_name=homeroom_teacher.full_name,
        title="Giáo viên",
        not_before=past,
        not_after=past + dt.timedelta(days=365),
    )
    reason = refused(
        ValidationError,
        lambda: certificate_register_pkcs12(
            actor=homeroom_teacher,
            user=homeroom_teacher,
            data=ca.pkcs12_export(issued, SIGNING_PIN),
            pin=SIGNING_PIN,
        ),
    )
    assert reason == f"The certificate expired on {day(issued.cert.not_valid_after_utc)}."


def test_a_certificate_not_yet_valid_is_refused_with_its_start_date(homeroom_teacher, signing_trust):
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    issued = ca.issue_person(
        signing_trust.ca,
        common_name=homeroom_teacher.full_name,
        title="Giáo viên",
        not_before=future,
        not_after=future + dt.timedelta(days=365),
    )
    with override("en"):
        assert certificate_refusal(issued.cert, issued.chain) == (
            f"The certificate is not valid before {day(issued.cert.not_valid_before_utc)}."
        )


def test_a_certificate_is_judged_at_the_time_asked(signing_trust, homeroom_teacher):
    issued = ca.issue_person(signing_trust.ca, common_name=homeroom_teacher.full_name, title="Giáo viên")
    with override("en"):
        assert certificate_refusal(issued.cert, issued.chain) == ""
        later = issued.cert.not_valid_after_utc + dt.timedelta(seconds=1)
        assert certificate_refusal(issued.cert, issued.chain, at=later).startswith(
            "The certificate expired on "
        )


def test_a_ca_certificate_cannot_be_registered_to_sign(signing_trust):
    dev = signing_trust.ca
    with override("en"):
        reason = certificate_refusal(dev.issuing_cert, (), at=dt.datetime.now(dt.UTC))
    assert reason.startswith("The certificate cannot be used for signing: ")
    assert "is a CA certificate, not a signer's" in reason


def test_a_certificate_from_an_unknown_authority_is_refused(homeroom_teacher):
    stranger = ca.dev_ca("Một CA lạ")
    issued = ca.issue_person(stranger, common_name=homeroom_teacher.full_name, title="Giáo viên")
    with override("en"):
        assert certificate_refusal(issued.cert, issued.chain) == (
            "The certificate was not issued by a certification authority this portal trusts."
        )


def test_a_certificate_whose_revocation_status_is_unknown_is_refused(
    homeroom_teacher, settings, signing_trust
):
    from signing import trust

    issued = ca.issue_person(signing_trust.ca, common_name=homeroom_teacher.full_name, title="Giáo viên")
    settings.HOCBA_TRUST_CRLS = []
    trust.trust_reset()
    try:
        with override("en"):
            reason = certificate_refusal(issued.cert, issued.chain)
    finally:
        trust.trust_reset()
    assert reason.startswith("The certificate cannot be used for signing: No CRL from ")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("wrong_pin", "Wrong PIN."),
        ("locked_pin", "The PIN is locked on the token; ask the school's administrator."),
        ("key_mismatch", "The key does not belong to the registered certificate."),
        ("wrong_otp", "Wrong confirmation code (OTP)."),
        ("sad_expired", "The remote signing authorisation has expired: sign the remaining records again."),
        ("unreachable", "The remote signing service cannot be reached; try again later."),
        ("something_new", "The key cannot be used: the detail"),
    ],
)
def test_a_key_failure_is_said_by_its_code(code, message):
    with override("en"):
        assert key_error_message(KeyLoadError(code, "the detail")) == message


# --- Removing ---------------------------------------------------------------------------------


def test_nobody_removes_someone_elses_certificate(homeroom_teacher, principal, certificates):
    reason = refused(
        PermissionDenied,
        lambda: certificate_remove(actor=principal, certificate=certificates["homeroom_teacher"]),
    )
    assert reason == "You can only remove your own certificate."


def test_a_teacher_cannot_remove_the_schools_seal(homeroom_teacher, certificates):
    reason = refused(
        PermissionDenied, lambda: certificate_remove(actor=homeroom_teacher, certificate=certificates["seal"])
    )
    assert reason == "Only the school's administrator or principal removes its seal."


def test_the_principal_removes_the_seal_the_office_registered(principal, certificates):
    removed = certificate_remove(actor=principal, certificate=certificates["seal"])
    assert removed.removed_at is not None and removed.removed_by_id == principal.pk


def test_removing_a_certificate_twice_records_one_removal(homeroom_teacher, certificates):
    certificate = certificates["homeroom_teacher"]
    first = certificate_remove(actor=homeroom_teacher, certificate=certificate)
    again = certificate_remove(actor=homeroom_teacher, certificate=certificate)
    assert again.removed_at == first.removed_at
    assert AuditEntry.objects.filter(action="certificate_removed", object_id=str(certificate.pk)).count() == 1


def test_a_certificate_signs_from_its_first_to_its_last_second(signing_trust, homeroom_teacher):
    issued = ca.issue_person(signing_trust.ca, common_name=homeroom_teacher.full_name, title="Giáo viên")
    with override("en"):
        assert certificate_refusal(issued.cert, issued.chain, at=issued.cert.not_valid_before_utc) == ""
        assert certificate_refusal(issued.cert, issued.chain, at=issued.cert.not_valid_after_utc) == ""


def test_a_chain_too_long_to_reach_the_trusted_root_is_called_untrusted(signing_trust):
    from tests.signing.verify_kit import SIGNER_USAGE, _cert

    dev = signing_trust.ca
    issuer, issuer_key = dev.issuing_cert, dev.issuing_key
    chain = []
    for n in range(6):
        issuer, issuer_key = _cert(
            issuer, issuer_key, name=f"CA {n}", is_ca=True, usage={"key_cert_sign": True, "crl_sign": True}
        )
        chain.insert(0, issuer)
    cert, _ = _cert(issuer, issuer_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    with override("en"):
        assert certificate_refusal(cert, (*chain, *dev.chain)) == (
            "The certificate was not issued by a certification authority this portal trusts."
        )


def _backend_codes() -> set[str]:
    """Every failure code the key backends raise, read from their source (a code added there
    without a message here fails this test)."""
    folder = Path(signing.backends.__file__).parent
    codes: set[str] = set(csc.MESSAGES)
    for path in folder.glob("*.py"):
        codes |= set(re.findall(r'(?:Error|error)\(\s*"([a-z_]+)"', path.read_text()))
    return codes


def test_every_key_backend_failure_code_has_its_own_message_in_both_languages():
    codes = _backend_codes()
    assert {"wrong_pin", "device_error", "server_error", "busy", "protocol", "no_library"} <= codes
    for code in sorted(codes):
        with override("en"):
            english = key_error_message(KeyLoadError(code, "the detail"))
        with override("vi"):
            vietnamese = key_error_message(KeyLoadError(code, "the detail"))
        assert "the detail" not in english, f"{code} has no message of its own"
        assert english != vietnamese, f"{code}'s message is not translated"
