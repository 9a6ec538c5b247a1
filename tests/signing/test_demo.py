"""The demo's signing set-up (signing/demo.py): every signer can sign, 6A1 waits for its principal.

A small thcs-lqd (4 students a class) stands in for the demo school; the development CA lives in
a temporary folder, the seal tokens in the session's SoftHSM2 directory, and the principals'
credentials at a reference CSC service started for this module (tests/reference/service.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from django.db import connection

from portal.choices import Role, SchoolLevel
from portal.models import AuditEntry, RoleAssignment, User
from portal.provisioning import SchoolSpec, school_provision
from schools.models import SchoolClass
from signing import ca, trust
from signing.demo import DEMO_PIN, demo_signing_seed, seal_token_label
from signing.models import BatchState, CertificateBackend, ItemState, SigningBatch, SigningCertificate
from signing.verify import verify_year_record
from tests.reference.service import CscService
from transcripts.demo import school_demo_seed
from transcripts.models import YearRecord, YearRecordSignature, YearRecordStatus

SCHOOL_NAME = "Trường THCS Lê Quý Đôn"
PEOPLE = {
    # username: (full name, role)
    "thcs.giaovu": ("Lý Thị Hồng", Role.SCHOOL_ADMIN),
    "thcs.hieutruong": ("Trịnh Văn Long", Role.PRINCIPAL),
    "thcs.phohieutruong": ("Mai Thị Ngọc", Role.VICE_PRINCIPAL),
    "thcs.gvcn": ("Phan Thị Thu Hà", Role.HOMEROOM_TEACHER),
    "thcs.gvbm": ("Hồ Minh Tuấn", Role.SUBJECT_TEACHER),
}


@pytest.fixture(scope="module")
def csc_service() -> Iterator[CscService]:
    service = CscService()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory) -> Path:
    """The development CA, as `make run` keeps it in .data/ca, with its CRL."""
    folder = tmp_path_factory.mktemp("ca")
    dev = ca.dev_ca_ensure(folder)
    (folder / "crl.pem").write_bytes(ca.issue_crl(dev).public_bytes(Encoding.PEM))
    return folder


@pytest.fixture
def signing_settings(settings, ca_dir, csc_service, tmp_path):
    """What devenv.py gives the processes: both CAs trusted, their CRLs, the service's URL."""
    roots = tmp_path / "roots.pem"
    roots.write_bytes((ca_dir / "root.pem").read_bytes() + csc_service.root_cert().public_bytes(Encoding.PEM))
    settings.HOCBA_TRUST_ROOTS = [str(roots)]
    settings.HOCBA_TRUST_CRLS = [str(ca_dir / "crl.pem"), f"{csc_service.url}/ca/crl.der"]
    settings.HOCBA_CSC_URL, settings.HOCBA_CSC_CLIENT_SECRET = csc_service.url, csc_service.client_secret
    trust.trust_reset()
    yield settings
    trust.trust_reset()


@pytest.fixture
def demo_school(db):
    """thcs-lqd with its people and a small 2025-2026 year (classes 6A1 and 9A1)."""
    school, _ = school_provision(
        actor=None,
        spec=SchoolSpec(code="thcs-lqd", name=SCHOOL_NAME, levels=(SchoolLevel.LOWER_SECONDARY,)),
        division=None,
    )
    users = {}
    for username, (full_name, role) in PEOPLE.items():
        users[username] = User.objects.create_user(
            username=username, password=None, full_name=full_name, email=f"{username}@demo.test"
        )
        RoleAssignment.objects.create(user=users[username], role=role, school=school)
    school_demo_seed(school, users, students_per_class=4)
    connection.set_schema_to_public()
    return school, users


@pytest.fixture
def seeded(demo_school, signing_settings, ca_dir, softhsm_dir):
    outcome = demo_signing_seed(ca_dir=ca_dir, softhsm_dir=softhsm_dir)
    assert outcome.skipped == []
    return outcome


def active(**filters):
    return SigningCertificate.objects.filter(removed_at=None, **filters)


def test_the_homeroom_teacher_gets_a_key_file_from_the_development_ca(demo_school, seeded, ca_dir):
    _school, users = demo_school
    teacher = users["thcs.gvcn"]

    (certificate,) = active(user=teacher)
    assert certificate.backend == CertificateBackend.PKCS12
    assert (certificate.subject_name, certificate.subject_title) == (teacher.full_name, "Giáo viên chủ nhiệm")
    # The same key file is on disk (for the upload page), opened by the demo PIN.
    _key, cert, _chain = pkcs12.load_key_and_certificates(
        (ca_dir / "keys" / "thcs.gvcn.p12").read_bytes(), DEMO_PIN.encode()
    )
    assert trust.fingerprint(cert) == certificate.fingerprint
    assert oct((ca_dir / "keys" / "thcs.gvcn.p12").stat().st_mode & 0o777) == "0o600"
    assert seeded.key_files == 1


def test_principals_get_a_remote_signing_credential_in_their_name(demo_school, seeded, csc_service):
    _school, users = demo_school
    for username, title in (("thcs.hieutruong", "Hiệu trưởng"), ("thcs.phohieutruong", "Phó Hiệu trưởng")):
        (certificate,) = active(user=users[username])
        assert certificate.backend == CertificateBackend.CSC
        assert (certificate.subject_name, certificate.subject_title) == (users[username].full_name, title)
        assert certificate.csc_user_id == username
        status, answer = csc_service.post("/csc/v2/credentials/list", {"userID": username})
        assert status == 200 and certificate.csc_credential_id in answer["credentialIDs"]
    assert seeded.credentials == 2


def test_the_school_seal_is_a_softhsm_token_registered_by_the_school_administrator(demo_school, seeded):
    school, users = demo_school
    (certificate,) = active(school=school)
    assert certificate.backend == CertificateBackend.PKCS11
    assert (certificate.token_label, certificate.key_label) == (seal_token_label(school), "seal")
    assert certificate.token_label == "seal-thcs-lqd"
    assert certificate.subject_name == SCHOOL_NAME
    assert certificate.registered_by == users["thcs.giaovu"]
    assert seeded.seals == 1


def test_6a1_is_signed_by_its_homeroom_teacher_and_waits_for_the_principal(
    demo_school, seeded, signing_settings
):
    school, users = demo_school
    teacher = users["thcs.gvcn"]
    batch = SigningBatch.objects.get(school=school, signer=teacher)
    assert batch.state == BatchState.DONE and batch.step == "homeroom_teacher"
    assert set(batch.items.values_list("state", flat=True)) == {ItemState.DONE}
    with school:
        six, nine = SchoolClass.objects.get(name="6A1"), SchoolClass.objects.get(name="9A1")
        assert six.closed_at is not None and nine.closed_at is None
        records = list(YearRecord.objects.filter(enrolment__school_class=six))
        assert records and len(records) == batch.items.count() == seeded.signed
        assert {r.status for r in records} == {YearRecordStatus.SIGNED_HOMEROOM}
        signatures = list(YearRecordSignature.objects.filter(record__in=records).order_by("record_id"))
        assert {(s.role, s.signer_id) for s in signatures} == {("homeroom_teacher", teacher.pk)}
        assert len(signatures) == len(records)
        reports = verify_year_record(
            bytes(signatures[0].signed_xml), trust_roots=trust.trust_roots(), crls=trust.crls()
        )
        assert [r.ok for r in reports] == [True]
        assert not YearRecord.objects.filter(enrolment__school_class=nine).exists()


def test_seeding_again_changes_nothing(demo_school, seeded, ca_dir, softhsm_dir, csc_service):
    school, _users = demo_school

    def snapshot():
        with school:
            signatures = YearRecordSignature.objects.count()
            records = sorted(YearRecord.objects.values_list("record_id", "version", "status"))
        _status, listed = csc_service.post("/csc/v2/credentials/list", {"userID": "thcs.hieutruong"})
        return (
            sorted(SigningCertificate.objects.values_list("pk", "fingerprint", "removed_at")),
            SigningBatch.objects.count(),
            AuditEntry.objects.count(),
            signatures,
            records,
            sorted(listed["credentialIDs"]),
            (ca_dir / "keys" / "thcs.gvcn.p12").read_bytes(),
        )

    before = snapshot()
    again = demo_signing_seed(ca_dir=ca_dir, softhsm_dir=softhsm_dir)
    assert not again.changed and again.skipped == []
    assert again.lines() == ["Signing demo already set up."]
    assert snapshot() == before


def test_a_certificate_that_can_no_longer_sign_is_replaced(demo_school, seeded, ca_dir, softhsm_dir):
    _school, users = demo_school
    teacher = users["thcs.gvcn"]
    old = active(user=teacher).get()
    stranger = ca.dev_ca("Một CA cũ")  # as if .data/ca had been made again since
    issued = ca.issue_person(stranger, common_name=teacher.full_name, title="Giáo viên chủ nhiệm")
    SigningCertificate.objects.filter(pk=old.pk).update(certificate=issued.cert.public_bytes(Encoding.DER))

    again = demo_signing_seed(ca_dir=ca_dir, softhsm_dir=softhsm_dir)

    assert again.key_files == 1 and again.skipped == []
    assert SigningCertificate.objects.get(pk=old.pk).removed_at is not None
    assert active(user=teacher).get().fingerprint == old.fingerprint  # the key file on disk, again


def test_without_a_trusted_development_ca_nothing_is_done_and_it_says_why(demo_school, ca_dir, softhsm_dir):
    # The session's trust store (tests/conftest.py) does not hold this development CA.
    outcome = demo_signing_seed(ca_dir=ca_dir, softhsm_dir=softhsm_dir)

    assert not outcome.changed
    assert "not in HOCBA_TRUST_ROOTS" in outcome.lines()[-1]
    school, users = demo_school
    assert not SigningCertificate.objects.filter(user__in=users.values()).exists()
    assert not SigningCertificate.objects.filter(school=school).exists()


def test_without_a_remote_signing_service_the_principals_are_skipped_and_the_rest_is_done(
    demo_school, signing_settings, ca_dir, softhsm_dir
):
    school, users = demo_school
    signing_settings.HOCBA_CSC_URL = ""

    outcome = demo_signing_seed(ca_dir=ca_dir, softhsm_dir=softhsm_dir)

    assert outcome.skipped == ["HOCBA_CSC_URL is not set: principals get no remote-signing credential."]
    assert not active(user=users["thcs.hieutruong"]).exists()
    assert active(user=users["thcs.gvcn"]).exists() and active(school=school).exists()
    assert outcome.signed > 0
