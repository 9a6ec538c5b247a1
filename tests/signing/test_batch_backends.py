# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""Batches through the other two key backends: the principal's remote-signing credential (the
reference CSC service over HTTP: OTP, authorisation for the batch) and the seal on a SoftHSM2 token.

A record signed this way carries the homeroom teacher's (PKCS#12), the principal's (CSC) and the
seal's (PKCS#11) signatures, and verifies with our verifier and with xmlsec1.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.translation import override

from signing import trust
from signing.models import BatchState, CertificateBackend, ItemState, SigningBatch
from signing.services import (
    certificate_register_csc,
    certificate_register_pkcs11,
    signing_batch_confirm,
    signing_batch_start,
)
from signing.softhsm import seal_token_provision
from signing.verify import all_valid, verify_year_record
from tests.reference.service import CscService
from tests.signing.test_batches import (  # noqa: F401
    confirmed,
    run,
    start_and_run,
    states,
    teacher_signs,
    totp_code,
    two_factor,
)
from tests.signing.xmlsec import pem, write_pems, xmlsec1_command
from tests.transcripts.test_year_close import complete_class  # noqa: F401
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.models import YearRecord
from transcripts.records.services import year_record_document

TOKEN_PIN = "246813"


@pytest.fixture(scope="module")
def csc(tmp_path_factory):
    service = CscService(tmp_path_factory.mktemp("csc"))
    yield service
    service.stop()


@pytest.fixture
def remote_signing(csc, settings, signing_trust, tmp_path):
    """The portal pointed at the reference service, whose CA joins the trust store and CRLs."""
    roots = tmp_path / "roots.pem"
    roots.write_bytes(signing_trust.roots_file.read_bytes() + csc.root_cert().public_bytes(Encoding.PEM))
    settings.HOCBA_TRUST_ROOTS = [str(roots)]
    settings.HOCBA_TRUST_CRLS = [str(signing_trust.crl_file), f"{csc.url}/ca/crl.der"]
    settings.HOCBA_CSC_URL, settings.HOCBA_CSC_CLIENT_SECRET = csc.url, csc.client_secret
    trust.trust_reset()
    yield roots
    trust.trust_reset()


@pytest.fixture
def principal_remote(csc, principal, remote_signing):
    credential_id, _ = csc.enrol(principal.username, principal.full_name, "Hiệu trưởng", algorithm="rsa")
    return certificate_register_csc(actor=principal, credential_id=credential_id)


@pytest.fixture
def seal_token(softhsm_dir, signing_trust, school, school_admin):
    _library, token, key, _cert = seal_token_provision(
        directory=softhsm_dir,
        ca=signing_trust.ca,
        school_name=school.name,
        token_label="seal-batch-test",
        user_pin=TOKEN_PIN,
        so_pin="97531",
    )
    return certificate_register_pkcs11(
        actor=school_admin, school=school, token_label=token, key_label=key, pin=TOKEN_PIN
    )


def test_the_principal_signs_through_the_remote_service_and_the_seal_is_on_the_token(
    homeroom_teacher,
    principal,
    school_admin,
    school,
    confirmed,
    certificates,
    two_factor,
    approved_class,
    csc,
    principal_remote,
    seal_token,
    remote_signing,
    signing_trust,
    tmp_path,
):
    school_class, _ = approved_class
    assert principal_remote.backend == CertificateBackend.CSC
    assert seal_token.backend == CertificateBackend.PKCS11
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    batch = signing_batch_start(
        actor=principal, school=school, step="principal", certificate=principal_remote
    )
    # The service sent an OTP when the batch started; a wrong one is refused, nothing is queued.
    with override("en"), pytest.raises(ValidationError, match=r"Wrong confirmation code \(OTP\)"):
        signing_batch_confirm(
            actor=principal, school=school, batch=batch, otp="000000", totp=totp_code(principal)
        )
    assert SigningBatch.objects.get(pk=batch.pk).state == BatchState.AWAITING_CONFIRMATION
    otp = csc.otp_for(principal_remote.csc_credential_id)
    signing_batch_confirm(actor=principal, school=school, batch=batch, otp=otp, totp=totp_code(principal))
    run(batch)
    assert states(batch) == [ItemState.DONE, ItemState.DONE]

    # The token's PIN is checked at confirmation.
    with override("en"), pytest.raises(ValidationError, match=r"Wrong PIN"):
        start_and_run(actor=school_admin, school=school, step="seal", certificate=seal_token, pin="000000")
    connection.set_tenant(school)
    SigningBatch.objects.filter(step="seal").delete()
    sealed = start_and_run(
        actor=school_admin, school=school, step="seal", certificate=seal_token, pin=TOKEN_PIN
    )
    assert states(sealed) == [ItemState.DONE, ItemState.DONE]

    connection.set_tenant(school)
    document = year_record_document(YearRecord.objects.get(pk=confirmed[0].pk))
    reports = verify_year_record(document, trust_roots=trust.trust_roots(), crls=trust.crls())
    assert all_valid(reports), [r.problems for r in reports]
    assert [r.signer for r in reports] == [homeroom_teacher.full_name, principal.full_name, school.name]
    assert _xmlsec1_verdicts(document, signing_trust, csc, tmp_path) == [True, True, True]
    # A changed content byte: both verifiers refuse every signature.
    changed = document.replace(b"<hovaten>", b"<hovaten>X", 1)
    assert changed != document
    assert not any(
        r.ok for r in verify_year_record(changed, trust_roots=trust.trust_roots(), crls=trust.crls())
    )
    assert _xmlsec1_verdicts(changed, signing_trust, csc, tmp_path / "changed") == [False, False, False]


def _xmlsec1_verdicts(document: bytes, signing_trust, csc, tmp_path) -> list[bool]:
    """xmlsec1 on each of the three signatures by its node, trusting the test CA and the service's
    (xmlsec1 reads one certificate per --trusted-pem file: one file per root)."""
    import subprocess

    from lxml import etree

    from signing.profile import ROLES
    from transcripts.schema import NAMESPACE

    folder = write_pems(signing_trust.ca, tmp_path / "xmlsec")
    (folder / "csc-root.pem").write_bytes(pem(csc.root_cert()))
    (folder / "csc-issuing.pem").write_bytes(pem(csc.issuing_cert()))
    path = folder / "record.xml"
    path.write_bytes(document)
    content_id = etree.fromstring(document).find(f"{{{NAMESPACE}}}thongtinhocba").get("Id")
    verdicts = []
    for n, role in enumerate(ROLES, start=1):
        command = xmlsec1_command(path, f"{content_id}-sig-{n}-{role}", folder)
        command[-1:-1] = [
            "--trusted-pem", str(folder / "csc-root.pem"), "--untrusted-pem", str(folder / "csc-issuing.pem")
        ]  # fmt: skip
        verdicts.append(subprocess.run(command, capture_output=True).returncode == 0)
    return verdicts
