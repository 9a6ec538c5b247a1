"""The PKCS#11 backend against a real SoftHSM2 token, no mocks.

The school seal is a key generated on the token (ECDSA P-256, then RSA-2048) and certified by the
development CA; the homeroom teacher and the principal sign with PKCS#12 keys, as in
test_profile.py. Each sealed record is checked by our verifier and by xmlsec1.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11

from signing import ca
from signing.backends.pkcs11 import Pkcs11Error, Pkcs11Key, default_library, pkcs11_load
from signing.backends.pkcs12 import pkcs12_load
from signing.profile import sign_year_record
from signing.softhsm import certificate_store, key_generate, seal_token_provision, token_session
from signing.verify import all_valid, verify_year_record
from tests.signing.test_profile import changed_byte
from tests.signing.xmlsec import write_pems, xmlsec1_results
from tests.transcripts.test_document import primary_record
from transcripts.document import year_record_xml

USER_PIN = "135790"
SO_PIN = "97531086"
P12_PIN = "246810"
SCHOOL = "Trường Tiểu học Kim Đồng"
TOKEN = "pkcs11-test-{}"  # this module's tokens; other modules use labels of their own


@pytest.fixture(scope="module")
def dev():
    return ca.dev_ca()


@pytest.fixture(scope="module")
def crl(dev):
    return ca.issue_crl(dev, [])


@pytest.fixture(scope="module")
def pems(dev, tmp_path_factory):
    return write_pems(dev, tmp_path_factory.mktemp("pems"))


@pytest.fixture(scope="module")
def countersigned(dev):
    """A record signed by the homeroom teacher and the principal, waiting for the seal."""
    teacher = ca.issue_person(
        dev, common_name="Lê Thị Mỹ Duyên", title="Giáo viên chủ nhiệm", algorithm="rsa"
    )
    principal = ca.issue_person(dev, common_name="Bùi Văn Nam", title="Hiệu trưởng")
    xml = year_record_xml(primary_record())
    for role, issued in (("homeroom_teacher", teacher), ("principal", principal)):
        k = pkcs12_load(ca.pkcs12_export(issued, P12_PIN), P12_PIN)
        xml = sign_year_record(xml, key=k.key, cert=k.cert, chain=k.chain, role=role)
    return xml


def provision(softhsm_dir, dev, algorithm: str, *, token: str | None = None) -> tuple[str, str, str]:
    library, token_label, key_label, _ = seal_token_provision(
        directory=softhsm_dir,
        ca=dev,
        school_name=SCHOOL,
        token_label=token or TOKEN.format(algorithm),
        user_pin=USER_PIN,
        so_pin=SO_PIN,
        algorithm=algorithm,
    )
    return library, token_label, key_label


@pytest.fixture(scope="module", params=["ec", "rsa"])
def seal(request, softhsm_dir, dev):
    """The seal key on a SoftHSM2 token, loaded as the portal loads it."""
    library, token_label, key_label = provision(softhsm_dir, dev, request.param)
    return pkcs11_load(library=library, token_label=token_label, pin=USER_PIN, key_label=key_label)


def sealed_with(seal, xml: bytes) -> bytes:
    return sign_year_record(xml, key=seal.key, cert=seal.cert, chain=seal.chain, role="seal")


@pytest.fixture(scope="module")
def sealed(seal, countersigned):
    return sealed_with(seal, countersigned)


# Signing with the token -------------------------------------------------------------------------


def test_the_seal_key_lives_on_the_token(seal, dev):
    assert isinstance(seal.key, Pkcs11Key)
    assert (seal.key.algorithm, seal.key.key_size) in {("ec", 256), ("rsa", 2048)}
    assert seal.chain == (dev.issuing_cert,)  # the intermediate is read from the token


def test_sealed_record_verifies(sealed, dev, crl):
    reports = verify_year_record(sealed, trust_roots=dev.roots, crls=[crl])
    assert [r.problems for r in reports] == [(), (), ()]
    assert all_valid(reports)
    assert reports[2].role == "seal" and reports[2].organisation == SCHOOL


def test_xmlsec1_verifies_the_sealed_record(sealed, pems, tmp_path):
    assert xmlsec1_results(sealed, pems, tmp_path) == [True, True, True]


def test_a_changed_byte_after_sealing_is_refused(sealed, dev, crl, pems, tmp_path):
    tampered = changed_byte(sealed)
    reports = verify_year_record(tampered, trust_roots=dev.roots, crls=[crl])
    assert not all_valid(reports) and reports[2].problems
    assert xmlsec1_results(tampered, pems, tmp_path) == [False, False, False]


def test_sign_digest_gives_what_cryptography_verifies(seal):
    digest = os.urandom(32)
    signature = seal.key.sign_digest(digest)
    public_key = seal.cert.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        utils.decode_dss_signature(signature)  # DER, not the token's raw r||s
        public_key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    else:
        assert isinstance(public_key, rsa.RSAPublicKey)
        public_key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


# Loaded once, sessions reused -------------------------------------------------------------------


def test_it_is_loaded_once_per_process(seal):
    token = seal.key.pool.token_label
    again = pkcs11_load(library=None, token_label=token, pin=USER_PIN, key_label="seal")
    explicit = pkcs11_load(library=default_library(), token_label=token, pin=USER_PIN, key_label="seal")
    assert again is seal and explicit is seal


def test_twenty_records_reuse_the_pool_sessions(seal, countersigned):
    pool = seal.key.pool
    before = pool.sessions_opened
    assert 1 <= before <= pool.size
    for _ in range(20):
        sealed_with(seal, countersigned)
    assert pool.sessions_opened == before  # one thread: the warm session every time


def test_four_threads_seal_at_once(seal, countersigned, dev, crl):
    start = threading.Barrier(4)

    def seal_three(_: int) -> list[bytes]:
        start.wait()
        return [sealed_with(seal, countersigned) for _ in range(3)]

    with ThreadPoolExecutor(max_workers=4) as executor:
        records = [xml for batch in executor.map(seal_three, range(4)) for xml in batch]
    assert len(records) == 12
    assert all(all_valid(verify_year_record(xml, trust_roots=dev.roots, crls=[crl])) for xml in records)
    assert seal.key.pool.sessions_opened <= seal.key.pool.size


def test_a_dead_session_is_replaced_without_failing_a_signature(softhsm_dir, dev):
    library, token, key_label = provision(softhsm_dir, dev, "ec", token=TOKEN.format("restart"))
    loaded = pkcs11_load(library=library, token_label=token, pin=USER_PIN, key_label=key_label)
    pool = loaded.key.pool
    with pool.lease() as lease, pool.library.lock:
        lease.session.close()  # the session ends behind the pool's back, as when an HSM restarts
    digest = os.urandom(32)
    signature = loaded.key.sign_digest(digest)
    loaded.cert.public_key().verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    assert pool.sessions_opened == 2  # the dead session was discarded, a new one logged in


# The key stays on the token ---------------------------------------------------------------------


def test_the_private_key_cannot_be_read(seal):
    secret = {"ec": Attribute.VALUE, "rsa": Attribute.PRIVATE_EXPONENT}[seal.key.algorithm]
    with token_session(token_label=seal.key.pool.token_label, user_pin=USER_PIN) as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="seal")
        assert key[Attribute.SENSITIVE] is True and key[Attribute.ALWAYS_SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False and key[Attribute.NEVER_EXTRACTABLE] is True
        with pytest.raises(p11.AttributeSensitive):
            key[secret]


# Refusals ---------------------------------------------------------------------------------------


def refused(**arguments) -> Pkcs11Error:
    with pytest.raises(Pkcs11Error) as error:
        pkcs11_load(**{"library": None, "pin": USER_PIN, "key_label": "seal", **arguments})
    assert not error.value.retryable
    return error.value


def test_a_wrong_pin_is_refused_and_not_tried_twice(softhsm_dir, dev):
    _, token, _ = provision(softhsm_dir, dev, "ec", token=TOKEN.format("pin"))
    assert refused(token_label=token, pin="000000").code == "wrong_pin"
    again = refused(token_label=token, pin="000000")
    assert again.code == "wrong_pin" and "not tried again" in str(again)
    loaded = pkcs11_load(library=None, token_label=token, pin=USER_PIN, key_label="seal")
    assert loaded.key.pool.sessions_opened == 1
    # Logged in now: another PIN cannot be checked by the token, so it is refused here.
    assert refused(token_label=token, pin="999999").code == "wrong_pin"


def test_an_unknown_token_is_refused(softhsm_dir):
    assert refused(token_label="no-such-token").code == "no_token"


def test_an_unknown_key_label_is_refused(seal):
    assert refused(token_label=seal.key.pool.token_label, key_label="no-such-key").code == "no_key"


def test_a_missing_library_is_refused(softhsm_dir):
    error = refused(library="/nonexistent/libpkcs11.so", token_label=TOKEN.format("ec"))
    assert error.code == "no_library"


def test_a_key_without_certificate_is_refused(softhsm_dir, dev):
    _, token, _ = provision(softhsm_dir, dev, "ec")
    key_generate(token_label=token, user_pin=USER_PIN, key_label="bare")
    assert refused(token_label=token, key_label="bare").code == "no_certificate"


def test_a_certificate_of_another_key_is_refused(softhsm_dir, dev):
    _, token, _ = provision(softhsm_dir, dev, "ec")
    other = key_generate(token_label=token, user_pin=USER_PIN, key_label="other")
    key_generate(token_label=token, user_pin=USER_PIN, key_label="stray")
    issued = ca.issue_organisation(dev, name=SCHOOL, public_key=other)
    certificate_store(token_label=token, user_pin=USER_PIN, label="stray", cert=issued.cert)
    assert refused(token_label=token, key_label="stray").code == "key_mismatch"


# Fork (Celery prefork workers) -------------------------------------------------------------------


def test_a_forked_child_loads_the_key_afresh(seal):
    """The child must not use the parent's sessions: it loads the key again and signs with it."""
    token = seal.key.pool.token_label
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status, never return into pytest
        status = 1
        try:
            with pytest.raises(Pkcs11Error):
                seal.key.sign_digest(bytes(32))  # the parent's pool refuses to cross the fork
            mine = pkcs11_load(library=None, token_label=token, pin=USER_PIN, key_label="seal")
            assert mine is not seal
            digest = os.urandom(32)
            signature = mine.key.sign_digest(digest)
            public_key = mine.cert.public_key()
            if isinstance(public_key, ec.EllipticCurvePublicKey):
                public_key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            else:
                public_key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(seal.key.sign_digest(bytes(32))) > 0  # and the parent still signs
