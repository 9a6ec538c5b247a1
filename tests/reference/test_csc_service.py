"""The reference CSC v2 service as a server: its protocol over raw HTTP, its state on disk.

The portal's client is tested against it in tests/signing/test_csc.py; here the requests are
written by hand, so what is checked is what goes over the wire: statuses, CSC error names and
descriptions, and the rules of OTPs and SADs.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import stat
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from tests.reference.process import PROJECT_ROOT
from tests.reference.service import CscService

SHA256 = "2.16.840.1.101.3.4.2.1"
RSA = "1.2.840.113549.1.1.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
SIGN_ALGO = {"ec": ECDSA_SHA256, "rsa": RSA}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def digest(n: int) -> bytes:
    return hashlib.sha256(f"record {n}".encode()).digest()


def otp(service: CscService, credential_id: str) -> str:
    status, _ = service.post("/csc/v2/credentials/sendOTP", {"credentialID": credential_id})
    assert status == 204
    return service.otp_for(credential_id)


def authorize(service: CscService, credential_id: str, count: int = 1, code: str | None = None):
    body = {"credentialID": credential_id, "numSignatures": count, "OTP": code or otp(service, credential_id)}
    return service.post("/csc/v2/credentials/authorize", body)


def sad_for(service: CscService, credential_id: str, count: int = 1) -> str:
    status, answer = authorize(service, credential_id, count)
    assert status == 200, answer
    return answer["SAD"]


def sign_hash(service: CscService, credential_id: str, sad: str, digests, algorithm: str = "ec"):
    body = {
        "credentialID": credential_id,
        "SAD": sad,
        "hashes": [b64(d) for d in digests],
        "hashAlgorithmOID": SHA256,
        "signAlgo": SIGN_ALGO[algorithm],
    }
    return service.post("/csc/v2/signatures/signHash", body)


def refused(answer: dict, error: str, description: str | None = None) -> bool:
    """The answer is the CSC error `error` (with exactly `description`, if given)."""
    if answer.get("error") != error:
        return False
    return description is None or answer["error_description"] == description


@pytest.fixture(scope="module")
def teacher(csc_service):
    return csc_service.enrol("gv.duyen", "Lê Thị Mỹ Duyên", "Giáo viên chủ nhiệm", algorithm="rsa")


@pytest.fixture(scope="module")
def principal(csc_service):
    return csc_service.enrol("ht.nam", "Bùi Văn Nam", "Hiệu trưởng", organisation="Trường TH Kim Đồng")


# Service authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "wrong-secret"])
def test_it_refuses_calls_without_the_client_secret(csc_service, secret):
    for path in ("/csc/v2/info", "/csc/v2/credentials/list", "/admin/credentials"):
        status, data, response = csc_service.request("POST", path, b"{}", secret=secret)
        assert status == 401
        assert json.loads(data)["error"] == "invalid_token"
        assert response.getheader("WWW-Authenticate", "").startswith("Bearer")


def test_the_ca_is_public(csc_service):
    root, issuing = csc_service.root_cert(), csc_service.issuing_cert()
    issuing.verify_directly_issued_by(root)
    crl = csc_service.crl()
    assert crl.issuer == issuing.subject and crl.is_signature_valid(issuing.public_key())


def test_info_describes_the_service(csc_service):
    status, answer = csc_service.post("/csc/v2/info", {})
    assert status == 200
    assert {"credentials/authorize", "signatures/signHash"} <= set(answer["methods"])
    assert ECDSA_SHA256 in answer["signAlgorithms"]["algos"]


# Credentials ---------------------------------------------------------------------------------------


def test_a_user_lists_their_credentials(csc_service, teacher):
    status, answer = csc_service.post("/csc/v2/credentials/list", {"userID": "gv.duyen"})
    assert (status, answer) == (200, {"credentialIDs": [teacher[0]]})
    assert csc_service.post("/csc/v2/credentials/list", {"userID": "nobody"}) == (200, {"credentialIDs": []})


def test_info_gives_the_key_and_the_chain(csc_service, teacher, principal):
    body = {"credentialID": teacher[0], "certificates": "chain", "certInfo": True}
    status, answer = csc_service.post("/csc/v2/credentials/info", body)
    assert status == 200
    assert answer["key"] == {"status": "enabled", "algo": [RSA, "1.2.840.113549.1.1.11"], "len": 2048}
    assert (answer["authMode"], answer["SCAL"]) == ("explicit", "1")
    assert answer["multisign"] >= 40
    cert = answer["cert"]
    leaf, issuing = (x509.load_der_x509_certificate(base64.b64decode(c)) for c in cert["certificates"])
    assert leaf == teacher[1] and issuing == csc_service.issuing_cert()
    assert cert["status"] == "valid"
    assert cert["serialNumber"] == format(leaf.serial_number, "X")
    assert "CN=Lê Thị Mỹ Duyên" in cert["subjectDN"]
    assert len(cert["validFrom"]) == 15 and cert["validTo"].endswith("Z")
    _, ec_answer = csc_service.post("/csc/v2/credentials/info", {"credentialID": principal[0]})
    assert ec_answer["key"]["algo"] == [ECDSA_SHA256] and ec_answer["key"]["len"] == 256
    assert len(ec_answer["cert"]["certificates"]) == 1  # "single" by default


# OTP and SAD -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ec", "rsa"])
def test_an_approved_credential_signs_hashes(csc_service, algorithm):
    credential_id, cert = csc_service.enrol(f"u.{algorithm}", "Người Ký", "Giáo viên", algorithm=algorithm)
    status, answer = authorize(csc_service, credential_id, 2)
    assert status == 200 and answer["expiresIn"] == 900
    status, answer = sign_hash(csc_service, credential_id, answer["SAD"], [digest(1), digest(2)], algorithm)
    assert status == 200 and len(answer["signatures"]) == 2
    for n, signature in enumerate(answer["signatures"], start=1):
        raw = base64.b64decode(signature)
        if algorithm == "rsa":
            cert.public_key().verify(raw, digest(n), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        else:
            assert raw[0] == 0x30  # DER (r, s)
            cert.public_key().verify(raw, digest(n), ec.ECDSA(Prehashed(hashes.SHA256())))


def test_a_wrong_otp_is_refused_and_five_lock_the_credential(csc_service, principal):
    credential_id = principal[0]
    right = otp(csc_service, credential_id)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    answers = [authorize(csc_service, credential_id, code=wrong) for _ in range(5)]
    assert [s for s, _ in answers] == [400] * 5
    assert all(refused(a, "invalid_otp") for _, a in answers[:4])
    assert "1 attempt(s) left" in answers[3][1]["error_description"]
    assert refused(answers[4][1], "otp_locked")
    assert refused(authorize(csc_service, credential_id, code=right)[1], "otp_locked")
    assert authorize(csc_service, credential_id)[0] == 200  # a new OTP lifts the lock


def test_an_otp_is_used_once(csc_service, principal):
    code = otp(csc_service, principal[0])
    assert authorize(csc_service, principal[0], code=code)[0] == 200
    status, answer = authorize(csc_service, principal[0], code=code)
    assert status == 400 and refused(answer, "invalid_otp")


def test_a_sad_signs_num_signatures_hashes_and_no_more(csc_service, principal):
    credential_id = principal[0]
    sad = sad_for(csc_service, credential_id, 3)
    assert sign_hash(csc_service, credential_id, sad, [digest(1), digest(2)])[0] == 200
    status, answer = sign_hash(csc_service, credential_id, sad, [digest(3), digest(4)])
    assert status == 400 and refused(answer, "sad_exhausted")  # two asked, one left: none taken
    assert sign_hash(csc_service, credential_id, sad, [digest(3)])[0] == 200
    status, answer = sign_hash(csc_service, credential_id, sad, [digest(4)])
    assert status == 400 and refused(answer, "sad_exhausted")


def test_a_sad_expires():
    with CscService(sad_lifetime=1) as short:
        credential_id, _ = short.enrol("gv.lan", "Phạm Thị Lan", "Giáo viên chủ nhiệm")
        status, answer = authorize(short, credential_id, 5)
        assert answer["expiresIn"] == 1
        assert sign_hash(short, credential_id, answer["SAD"], [digest(1)])[0] == 200
        time.sleep(1.2)
        status, answer = sign_hash(short, credential_id, answer["SAD"], [digest(2)])
        assert status == 400 and refused(answer, "invalid_request", "SAD expired")


def test_a_sad_of_one_credential_is_refused_for_another(csc_service, teacher, principal):
    teachers_sad = sad_for(csc_service, teacher[0], 5)
    status, answer = sign_hash(csc_service, principal[0], teachers_sad, [digest(1)])
    assert status == 400 and refused(answer, "invalid_request", "Invalid parameter SAD")
    status, answer = sign_hash(csc_service, principal[0], "made-up", [digest(1)])
    assert status == 400 and refused(answer, "invalid_request", "Invalid parameter SAD")
    assert sign_hash(csc_service, teacher[0], teachers_sad, [digest(1)], "rsa")[0] == 200  # untouched


# Revocation ------------------------------------------------------------------------------------------


def test_a_revoked_credential_cannot_be_authorised_and_is_in_the_crl(csc_service):
    credential_id, cert = csc_service.enrol("gv.minh", "Đỗ Văn Minh", "Giáo viên chủ nhiệm")
    sad = sad_for(csc_service, credential_id, 5)
    code = otp(csc_service, credential_id)
    assert csc_service.crl().get_revoked_certificate_by_serial_number(cert.serial_number) is None

    csc_service.revoke(credential_id)
    status, answer = authorize(csc_service, credential_id, code=code)
    assert status == 400 and refused(answer, "certificate_revoked")
    status, answer = csc_service.post("/csc/v2/credentials/sendOTP", {"credentialID": credential_id})
    assert status == 400 and refused(answer, "certificate_revoked")
    status, answer = sign_hash(csc_service, credential_id, sad, [digest(1)])  # the SAD died with it
    assert status == 400 and refused(answer, "certificate_revoked")
    _, info = csc_service.post("/csc/v2/credentials/info", {"credentialID": credential_id})
    assert (info["cert"]["status"], info["key"]["status"]) == ("revoked", "disabled")

    crl = csc_service.crl()
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    assert crl.is_signature_valid(csc_service.issuing_cert().public_key())
    csc_service.revoke(credential_id)  # twice: the first date stays
    again = csc_service.crl().get_revoked_certificate_by_serial_number(cert.serial_number)
    assert again.revocation_date_utc == entry.revocation_date_utc


def test_an_expired_certificate_cannot_be_authorised(csc_service):
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    credential_id, _ = csc_service.enrol(
        "gv.cu", "Giáo viên cũ", "Giáo viên", not_before=start, not_after=start.replace(year=2021)
    )
    status, answer = csc_service.post("/csc/v2/credentials/sendOTP", {"credentialID": credential_id})
    assert status == 400 and refused(answer, "invalid_request", "Signing certificate is expired")


# State and limits ------------------------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path):
    with CscService(tmp_path / "csc") as service:
        credential_id, cert = service.enrol("ht.an", "Ngô Văn An", "Hiệu trưởng", algorithm="rsa")
        root = service.root_cert()
        service.revoke(service.enrol("gv.cu", "Cũ", "Giáo viên")[0])
        service.restart()
        assert service.root_cert() == root  # the same CA, not a new one
        _, answer = service.post("/csc/v2/credentials/list", {"userID": "ht.an"})
        assert answer["credentialIDs"] == [credential_id]
        assert len(list(service.crl())) == 1
        sad = sad_for(service, credential_id)  # the key survived too
        _, answer = sign_hash(service, credential_id, sad, [digest(1)], "rsa")
        signature = base64.b64decode(answer["signatures"][0])
        cert.public_key().verify(signature, digest(1), padding.PKCS1v15(), Prehashed(hashes.SHA256()))


def test_keys_and_state_are_private(csc_service, teacher):
    data = csc_service.data_dir
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data / "keys").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data / "keys" / f"{teacher[0]}.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(data / "credentials.json").st_mode) == 0o600
    assert not list(data.glob("**/*.tmp"))  # no leftovers of the atomic writes


def test_a_credential_enrolled_offline_is_seen_by_the_running_service(csc_service):
    run = subprocess.run(
        [
            *(sys.executable, "-m", "reference.csc", "enrol", "--data", str(csc_service.data_dir)),
            *("--user", "gv.offline", "--name", "Hồ Thị Thu", "--title", "Giáo viên chủ nhiệm"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    credential_id = json.loads(run.stdout)["credentialID"]
    _, answer = csc_service.post("/csc/v2/credentials/list", {"userID": "gv.offline"})
    assert answer["credentialIDs"] == [credential_id]
    assert sign_hash(csc_service, credential_id, sad_for(csc_service, credential_id), [digest(1)])[0] == 200


def test_a_body_over_1_mb_is_refused(csc_service):
    body = json.dumps({"userID": "x" * (2 * 1024 * 1024)}).encode()
    status, data, _ = csc_service.request("POST", "/csc/v2/credentials/list", body)
    assert status == 413 and json.loads(data)["error"] == "invalid_request"
    assert csc_service.post("/csc/v2/info", {})[0] == 200  # and it carries on


BAD_REQUESTS = {
    "not JSON": (b"{nope", "The body must be a JSON object"),
    "not an object": (b"[1, 2]", "The body must be a JSON object"),
    "no credential": (b"{}", "Missing (or invalid type) string parameter credentialID"),
    "unknown credential": (b'{"credentialID": "nope"}', "Invalid parameter credentialID"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_a_malformed_request_gets_a_csc_error_not_a_traceback(csc_service, case):
    body, description = BAD_REQUESTS[case]
    status, data, response = csc_service.request("POST", "/csc/v2/credentials/info", body)
    assert status == 400
    assert response.getheader("Content-Type").startswith("application/json")
    assert json.loads(data) == {"error": "invalid_request", "error_description": description}


def test_a_hash_is_checked_before_the_sad_is_spent(csc_service, principal):
    sad = sad_for(csc_service, principal[0], 1)
    cases = [
        ({"hashes": ["not base64!"]}, "Invalid Base64 hash string parameter"),
        ({"hashes": [b64(b"short")]}, "Invalid digest value length"),
        ({"hashes": []}, "Empty hash array"),
        ({"signAlgo": RSA}, "Invalid parameter signAlgo"),  # an EC key
        ({"hashAlgorithmOID": "1.3.14.3.2.26"}, "Invalid parameter hashAlgorithmOID"),  # SHA-1
    ]
    for change, description in cases:
        body = {
            "credentialID": principal[0],
            "SAD": sad,
            "hashes": [b64(digest(1))],
            "signAlgo": ECDSA_SHA256,
            **change,
        }
        status, answer = csc_service.post("/csc/v2/signatures/signHash", body)
        assert status == 400 and refused(answer, "invalid_request", description), change
    assert sign_hash(csc_service, principal[0], sad, [digest(1)])[0] == 200


def test_unknown_paths_and_methods(csc_service):
    status, data, _ = csc_service.request("POST", "/csc/v2/signatures/signDoc", b"{}")
    assert status == 404 and json.loads(data)["error"] == "not_found"
    status, data, _ = csc_service.request("DELETE", "/admin/credentials", b"")
    assert status == 405 and json.loads(data)["error"] == "invalid_request"
