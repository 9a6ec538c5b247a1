"""Remote signing (CSC v2) end to end: the portal's client against the reference service.

No mocks, no database: `python -m reference.csc serve` runs in a subprocess and the client talks
to it over HTTP. The homeroom teacher (RSA-2048) and the principal (ECDSA P-256) sign through
the service, each after approving with an OTP; the school seal signs with a PKCS#12 key from the
development CA. The record is then checked by our verifier and by xmlsec1, trusting both CAs'
roots: the service's and the development CA's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from signing import ca
from signing.backends import LoadedKey
from signing.backends.csc import (
    CscClient,
    CscError,
    CscKey,
    Sad,
    csc_loaded_key,
    ecdsa_der,
)
from signing.backends.pkcs12 import pkcs12_load
from signing.choices import ProblemCode
from signing.profile import sign_year_record, sign_year_records
from signing.verify import all_valid, verify_year_record
from tests.reference.service import CscService
from tests.signing.xmlsec import pem, xmlsec1_command
from tests.transcripts.test_document import primary_record
from transcripts.document import year_record_xml
from transcripts.schema import NAMESPACE

PIN = "135790"
ROLES = ("homeroom_teacher", "principal", "seal")


@pytest.fixture(scope="module")
def csc_service() -> Iterator[CscService]:
    service = CscService()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def csc_client(csc_service) -> Iterator[CscClient]:
    """The portal's client; named so as not to hide pytest-django's `client`."""
    with CscClient(csc_service.url, csc_service.client_secret) as client:
        yield client


@pytest.fixture(scope="module")
def dev():
    return ca.dev_ca()


def approve(client: CscClient, service: CscService, credential_id: str, count: int = 1) -> Sad:
    """What the signer does on the phone: receive the OTP and confirm `count` signatures."""
    client.send_otp(credential_id)
    return client.authorize(credential_id, num_signatures=count, otp=service.otp_for(credential_id))


def remote_key(client: CscClient, service: CscService, credential_id: str, count: int = 1) -> LoadedKey:
    credential = client.credentials_info(credential_id)
    return csc_loaded_key(client, credential, approve(client, service, credential_id, count))


@pytest.fixture(scope="module")
def credentials(csc_service) -> dict[str, str]:
    teacher, _ = csc_service.enrol("gv.duyen", "Lê Thị Mỹ Duyên", "Giáo viên chủ nhiệm", algorithm="rsa")
    principal, _ = csc_service.enrol("ht.nam", "Bùi Văn Nam", "Hiệu trưởng", algorithm="ec")
    return {"homeroom_teacher": teacher, "principal": principal}


@pytest.fixture(scope="module")
def seal(dev) -> LoadedKey:
    issued = ca.issue_organisation(dev, name="Trường Tiểu học Kim Đồng", province="Lào Cai")
    return pkcs12_load(ca.pkcs12_export(issued, PIN), PIN)


@pytest.fixture(scope="module")
def unsigned() -> bytes:
    return year_record_xml(primary_record())


def sign(xml: bytes, role: str, key: LoadedKey) -> bytes:
    return sign_year_record(xml, key=key.key, cert=key.cert, chain=key.chain, role=role)


@pytest.fixture(scope="module")
def signed(unsigned, csc_client, csc_service, credentials, seal) -> bytes:
    xml = sign(
        unsigned, "homeroom_teacher", remote_key(csc_client, csc_service, credentials["homeroom_teacher"])
    )
    xml = sign(xml, "principal", remote_key(csc_client, csc_service, credentials["principal"]))
    return sign(xml, "seal", seal)


@pytest.fixture(scope="module")
def trust(csc_service, dev):
    """Trust roots and CRLs of both CAs, as the portal's verification page would hold them."""
    return {
        "trust_roots": [csc_service.root_cert(), dev.root_cert],
        "crls": [csc_service.crl(), ca.issue_crl(dev)],
    }


def changed_byte(xml: bytes) -> bytes:
    assert b"<diemktdk>9</diemktdk>" in xml
    return xml.replace(b"<diemktdk>9</diemktdk>", b"<diemktdk>8</diemktdk>", 1)


# xmlsec1, trusting two roots -------------------------------------------------------------------
# tests/signing/xmlsec.py writes one root.pem; xmlsec1 reads only the first certificate of a PEM
# file, so the second CA's root is passed as a second --trusted-pem.


@pytest.fixture(scope="module")
def pems(csc_service, dev, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("pems")
    files = {
        "root.pem": pem(csc_service.root_cert()),
        "issuing.pem": pem(csc_service.issuing_cert()),
        "dev-root.pem": pem(dev.root_cert),
        "dev-issuing.pem": pem(dev.issuing_cert),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder, folder / "dev-root.pem", folder / "dev-issuing.pem"]


def xmlsec1_verdicts(xml: bytes, pems: Sequence[Path], tmp_path: Path) -> list[bool]:
    """xmlsec1's verdict on signatures 1..3, by node Id, trusting both roots."""
    from lxml import etree

    folder, other_root, other_issuing = pems
    document = tmp_path / "record.xml"
    document.write_bytes(xml)
    content_id = etree.fromstring(xml).find(f"{{{NAMESPACE}}}thongtinhocba").get("Id")
    verdicts = []
    for n, role in enumerate(ROLES, start=1):
        command = xmlsec1_command(document, f"{content_id}-sig-{n}-{role}", folder)
        command[-1:-1] = ["--trusted-pem", str(other_root), "--untrusted-pem", str(other_issuing)]
        verdicts.append(subprocess.run(command, capture_output=True).returncode == 0)
    return verdicts


# A record signed remotely ------------------------------------------------------------------------


def test_a_record_signed_through_the_service_verifies(signed, trust, csc_service):
    reports = verify_year_record(signed, **trust)
    assert [r.problems for r in reports] == [(), (), ()]
    assert all_valid(reports)
    assert [(r.role, r.signer, r.title) for r in reports] == [
        ("homeroom_teacher", "Lê Thị Mỹ Duyên", "Giáo viên chủ nhiệm"),
        ("principal", "Bùi Văn Nam", "Hiệu trưởng"),
        ("seal", "Trường Tiểu học Kim Đồng", ""),
    ]
    assert b"#rsa-sha256" in signed and b"#ecdsa-sha256" in signed


def test_xmlsec1_verifies_each_signature(signed, pems, tmp_path):
    assert xmlsec1_verdicts(signed, pems, tmp_path) == [True, True, True]


def test_a_changed_content_byte_fails_our_verifier(signed, trust):
    reports = verify_year_record(changed_byte(signed), **trust)
    assert not all_valid(reports)
    assert all(r.problems for r in reports)


def test_a_changed_content_byte_fails_xmlsec1(signed, pems, tmp_path):
    assert xmlsec1_verdicts(changed_byte(signed), pems, tmp_path) == [False, False, False]


def test_the_remote_key_is_trusted_only_through_the_service_root(signed, dev):
    reports = verify_year_record(signed, trust_roots=[dev.root_cert], crls=[ca.issue_crl(dev)])
    assert [r.ok for r in reports] == [False, False, True]
    assert all(ProblemCode.UNTRUSTED_ISSUER in r.codes for r in reports[:2])


def test_the_credential_is_described_from_its_certificate(csc_client, credentials, csc_service):
    assert csc_client.credentials_list("gv.duyen") == [credentials["homeroom_teacher"]]
    teacher = csc_client.credentials_info(credentials["homeroom_teacher"])
    principal = csc_client.credentials_info(credentials["principal"])
    assert (teacher.algorithm, teacher.key_size) == ("rsa", 2048)
    assert (principal.algorithm, principal.key_size) == ("ec", 256)
    assert teacher.status == "valid" and teacher.key_status == "enabled"
    assert teacher.chain == (csc_service.issuing_cert(),)
    assert teacher.not_before < dt.datetime.now(dt.UTC) < teacher.not_after
    assert teacher.serial == teacher.cert.serial_number
    assert teacher.multisign >= 40


# Approval ----------------------------------------------------------------------------------------


def test_a_wrong_otp_is_refused(csc_client, csc_service, credentials):
    credential_id = credentials["principal"]
    csc_client.send_otp(credential_id)
    right = csc_service.otp_for(credential_id)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    with pytest.raises(CscError) as error:
        csc_client.authorize(credential_id, num_signatures=1, otp=wrong)
    assert error.value.code == "wrong_otp"
    assert not error.value.retryable
    assert csc_client.authorize(credential_id, num_signatures=1, otp=right).num_signatures == 1
    with pytest.raises(CscError) as error:  # once only
        csc_client.authorize(credential_id, num_signatures=1, otp=right)
    assert error.value.code == "wrong_otp"


def test_five_wrong_otps_lock_until_a_new_one_is_sent(csc_client, csc_service):
    credential_id, _ = csc_service.enrol("gv.khoa", "Trần Văn Khoa", "Giáo viên chủ nhiệm")
    csc_client.send_otp(credential_id)
    right = csc_service.otp_for(credential_id)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    codes = []
    for _ in range(5):
        with pytest.raises(CscError) as error:
            csc_client.authorize(credential_id, num_signatures=1, otp=wrong)
        codes.append(error.value.code)
    assert codes == ["wrong_otp"] * 4 + ["otp_locked"]
    with pytest.raises(CscError) as error:
        csc_client.authorize(credential_id, num_signatures=1, otp=right)
    assert error.value.code == "otp_locked"
    assert approve(csc_client, csc_service, credential_id).num_signatures == 1


def test_one_approval_signs_a_batch_and_no_more(csc_client, csc_service, credentials, unsigned):
    loaded = remote_key(csc_client, csc_service, credentials["homeroom_teacher"], count=3)
    for _ in range(3):
        sign(unsigned, "homeroom_teacher", loaded)
    with pytest.raises(CscError) as error:
        sign(unsigned, "homeroom_teacher", loaded)
    assert error.value.code == "sad_exhausted"


def test_an_approval_is_bound_to_its_credential(csc_client, csc_service, credentials):
    teachers_sad = approve(csc_client, csc_service, credentials["homeroom_teacher"])
    with pytest.raises(CscError) as error:
        csc_client.sign_hashes(credentials["principal"], teachers_sad.token, [b"\0" * 32], algorithm="ec")
    assert error.value.code == "sad_invalid"
    principal = csc_client.credentials_info(credentials["principal"])
    with pytest.raises(ValueError):  # and the key object refuses to pair them at all
        CscKey(csc_client, principal, teachers_sad)


def test_an_approval_expires(unsigned):
    with CscService(sad_lifetime=1) as short, CscClient(short.url, short.client_secret) as client:
        credential_id, _ = short.enrol("gv.lan", "Phạm Thị Lan", "Giáo viên chủ nhiệm")
        loaded = remote_key(client, short, credential_id, count=2)
        assert loaded.key.sad.expires_at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        sign(unsigned, "homeroom_teacher", loaded)
        time.sleep(1.2)
        with pytest.raises(CscError) as error:
            sign(unsigned, "homeroom_teacher", loaded)
        assert error.value.code == "sad_expired"


# Revocation ---------------------------------------------------------------------------------------


def test_a_revoked_credentials_signature_is_refused(
    csc_client, csc_service, credentials, seal, unsigned, dev
):
    credential_id, cert = csc_service.enrol("gv.minh", "Đỗ Văn Minh", "Giáo viên chủ nhiệm", algorithm="ec")
    xml = sign(unsigned, "homeroom_teacher", remote_key(csc_client, csc_service, credential_id))
    xml = sign(xml, "principal", remote_key(csc_client, csc_service, credentials["principal"]))
    xml = sign(xml, "seal", seal)
    roots = [csc_service.root_cert(), dev.root_cert]
    before = verify_year_record(xml, trust_roots=roots, crls=[csc_service.crl(), ca.issue_crl(dev)])
    assert all_valid(before)

    csc_service.revoke(credential_id)
    crl = csc_service.crl()
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    after = verify_year_record(xml, trust_roots=roots, crls=[crl, ca.issue_crl(dev)])
    assert ProblemCode.REVOKED in after[0].codes
    assert after[1].ok and after[2].ok

    described = csc_client.credentials_info(credential_id)
    assert (described.status, described.key_status) == ("revoked", "disabled")
    with pytest.raises(CscError) as error:
        csc_client.send_otp(credential_id)
    assert error.value.code == "certificate_revoked"
    with pytest.raises(CscError) as error:
        csc_loaded_key(csc_client, described, Sad("x", credential_id, 1, dt.datetime.now(dt.UTC)))
    assert error.value.code == "certificate_revoked"


def test_an_approval_given_before_revocation_no_longer_signs(csc_client, csc_service, unsigned):
    credential_id, _ = csc_service.enrol("gv.hoa", "Vũ Thị Hoa", "Giáo viên chủ nhiệm")
    loaded = remote_key(csc_client, csc_service, credential_id, count=5)
    csc_service.revoke(credential_id)
    with pytest.raises(CscError) as error:
        sign(unsigned, "homeroom_teacher", loaded)
    assert error.value.code == "certificate_revoked"


def test_an_expired_certificate_cannot_be_approved(csc_client, csc_service):
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    credential_id, _ = csc_service.enrol(
        "gv.cu", "Giáo viên cũ", "Giáo viên chủ nhiệm", not_before=start, not_after=start.replace(year=2021)
    )
    assert csc_client.credentials_info(credential_id).status == "expired"
    with pytest.raises(CscError) as error:
        csc_client.send_otp(credential_id)
    assert error.value.code == "certificate_expired"


# The client's other errors --------------------------------------------------------------------------


def test_a_wrong_client_secret_is_unauthorised(csc_service):
    with CscClient(csc_service.url, "not-the-secret") as client, pytest.raises(CscError) as error:
        client.info()
    assert error.value.code == "unauthorised_client"
    assert "not-the-secret" not in str(error.value) and "not-the-secret" not in repr(client)


def test_an_unknown_credential_is_named(csc_client):
    with pytest.raises(CscError) as error:
        csc_client.credentials_info("no-such-credential")
    assert error.value.code == "unknown_credential"


def test_a_service_that_is_down_is_unreachable_and_retryable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = CscClient(f"http://127.0.0.1:{port}", "secret", timeout=2)
    with pytest.raises(CscError) as error:
        client.info()
    assert error.value.code == "unreachable"
    assert error.value.retryable


def test_the_client_reconnects_after_the_service_restarts_and_the_approval_survives(tmp_path):
    """The kept-alive connection dies with the process; the next call opens a new one. The
    credential survives the restart, and so does the signer's approval (the SAD is kept in the
    service's data directory): a batch interrupted by a restart goes on without a new OTP."""
    with CscService(tmp_path / "csc") as service, CscClient(service.url, service.client_secret) as client:
        credential_id, cert = service.enrol("ht.an", "Ngô Văn An", "Hiệu trưởng")
        sad = approve(client, service, credential_id, count=2)
        assert len(client.sign_hashes(credential_id, sad, [b"\1" * 32], algorithm="ec")) == 1
        service.restart()
        assert client.credentials_info(credential_id).cert == cert
        assert len(client.sign_hashes(credential_id, sad, [b"\1" * 32], algorithm="ec")) == 1
        with pytest.raises(CscError) as error:  # and it still counts: two were approved
            client.sign_hashes(credential_id, sad, [b"\1" * 32], algorithm="ec")
        assert error.value.code == "sad_exhausted"
        assert not error.value.retryable
        assert sad.token not in (service.data_dir / "sads.json").read_text()  # only its hash


def test_a_service_that_stops_in_the_middle_is_unreachable_and_retryable_then_answers_again(tmp_path):
    with CscService(tmp_path / "csc") as service, CscClient(service.url, service.client_secret) as client:
        credential_id, _cert = service.enrol("gv.binh", "Lý Văn Bình", "Giáo viên chủ nhiệm")
        sad = approve(client, service, credential_id, count=3)
        client.sign_hashes(credential_id, sad, [b"\4" * 32], algorithm="ec")
        port = service.port
        service.stop(keep_data=True)
        with pytest.raises(CscError) as error:
            client.sign_hashes(credential_id, sad, [b"\4" * 32], algorithm="ec")
        assert (error.value.code, error.value.retryable) == ("unreachable", True)
        service._start(port=port)
        assert len(client.sign_hashes(credential_id, sad, [b"\4" * 32], algorithm="ec")) == 1


def test_a_kept_alive_connection_does_not_stall_on_delayed_acks(csc_client, csc_service, credentials):
    """With Nagle's algorithm on the service's socket, each answer on a kept-alive connection
    waited for the client's delayed ACK (~40 ms): 25 signHash calls took a second, not 30 ms."""
    credential_id = credentials["principal"]
    sad = approve(csc_client, csc_service, credential_id, count=25)
    started = time.perf_counter()
    for _ in range(25):
        csc_client.sign_hashes(credential_id, sad, [b"\3" * 32], algorithm="ec")
    assert time.perf_counter() - started < 0.5


def test_an_ecdsa_signature_given_as_r_s_is_made_der():
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.sign(b"record", ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert ecdsa_der(raw) == der
    assert ecdsa_der(der) == der
    with pytest.raises(CscError) as error:
        ecdsa_der(b"\1" * 10)
    assert error.value.code == "protocol"


def test_a_signature_that_does_not_match_the_certificate_is_caught(csc_client, csc_service, credentials):
    """A provider answering with another key's signature fails at once, not in a verifier later."""
    _, someone_elses = csc_service.enrol("gv.khac", "Người khác", "Giáo viên", algorithm="ec")
    principal = csc_client.credentials_info(credentials["principal"])
    impostor = dataclasses.replace(principal, cert=someone_elses)
    key = CscKey(csc_client, impostor, approve(csc_client, csc_service, credentials["principal"]))
    with pytest.raises(CscError) as error:
        key.sign_digest(b"\2" * 32)
    assert error.value.code == "protocol"


# Many hashes per signHash (issue 13) ------------------------------------------------------------


def _logged(service: CscService, path: str) -> int:
    return service.log().count(f"POST {path} ")


def signhash_calls(service: CscService, client: CscClient, action) -> int:
    """signHash calls the service logged while `action()` ran. The service writes a request's log
    line once its answer is sent, so an `info` call on the same kept-alive connection afterwards,
    once logged, says every earlier line is there."""
    before, infos = _logged(service, "/csc/v2/signatures/signHash"), _logged(service, "/csc/v2/info")
    action()
    client.info()
    deadline = time.monotonic() + 5
    while _logged(service, "/csc/v2/info") <= infos and time.monotonic() < deadline:
        time.sleep(0.01)
    return _logged(service, "/csc/v2/signatures/signHash") - before


def test_a_class_is_signed_with_one_signhash_call(csc_client, csc_service, credentials, trust, unsigned):
    documents = [unsigned] * 40
    loaded = remote_key(csc_client, csc_service, credentials["homeroom_teacher"], count=40)
    signed: list = []

    def sign_all():
        signed.extend(
            sign_year_records(
                documents, key=loaded.key, cert=loaded.cert, chain=loaded.chain, role="homeroom_teacher"
            )
        )

    assert signhash_calls(csc_service, csc_client, sign_all) == 1
    assert len(signed) == 40 and not [s for s in signed if isinstance(s, Exception)]
    for document in signed[::13]:
        assert [r.problems for r in verify_year_record(document, **trust)] == [()]
    with pytest.raises(CscError) as error:  # the 40 came out of the SAD: it covers no more
        loaded.key.sign_digest(b"\5" * 32)
    assert error.value.code == "sad_exhausted"


def test_more_hashes_than_a_call_carries_go_in_calls_of_the_limit(
    csc_client, csc_service, credentials, settings
):
    settings.HOCBA_CSC_MAX_HASHES = 16
    loaded = remote_key(csc_client, csc_service, credentials["principal"], count=40)
    digests = [bytes([n]) * 32 for n in range(40)]
    answers: list[bytes] = []
    assert loaded.key.max_hashes() == 16
    assert (
        signhash_calls(csc_service, csc_client, lambda: answers.extend(loaded.key.sign_digests(digests))) == 3
    )
    public_key = loaded.cert.public_key()
    for digest, signature in zip(digests, answers, strict=True):  # in order: each its own digest's
        public_key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def test_a_batch_larger_than_the_approval_is_refused_whole(csc_client, csc_service, credentials):
    """The service takes all of a call's signatures from the SAD or none: 3 hashes against an
    approval of 2 are refused, and the 2 can still be used."""
    loaded = remote_key(csc_client, csc_service, credentials["principal"], count=2)
    with pytest.raises(CscError) as error:
        loaded.key.sign_digests([b"\6" * 32] * 3)
    assert error.value.code == "sad_exhausted"
    assert len(loaded.key.sign_digests([b"\7" * 32] * 2)) == 2
