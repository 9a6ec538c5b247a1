"""The timestamping authority: its certificates on disk and the tokens it signs (RFC 3161).

On disk (`--data DIR`, created 0700): `ca/` a two-level CA (signing.ca's DevCA files), `tsa.pem`
and `tsa-key.pem` the timestamping certificate and its key (ECDSA P-256, or RSA-2048), and
`revoked.json` the serial numbers its CA revoked (for the tests of a TSA certificate revoked
later). A token is a CMS SignedData over a TSTInfo (RFC 3161 section 2.4.2): version 1, the
authority's policy, the request's message imprint, a random 128-bit serial, genTime with
milliseconds and an accuracy of one second, the request's nonce; signed attributes content type,
message digest, signing time and signingCertificateV2 (ESS, RFC 5035) naming the TSA certificate;
the TSA certificate and its issuing CA in the token when the request asks (certReq).

Requests are refused (status rejection, failInfo) when they are not DER TimeStampReq, use a hash
other than SHA-256/384/512, carry an imprint of the wrong length, or ask for another policy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from pathlib import Path

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing import ca as dev

# The reference authority's policy: an OID under 2.25 (a UUID as an integer, ITU-T X.667),
# which needs no registration. A real TSA's policy OID is in its certificate practice statement.
POLICY = "2.25.179368453271046981373614766298386620411"
DIGESTS = {"sha256": 32, "sha384": 48, "sha512": 64}
TSA_LIFETIME = dt.timedelta(days=5 * 365)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RequestRefused(Exception):
    """A request the authority answers with status rejection and this failInfo."""

    def __init__(self, fail_info: str, text: str):
        super().__init__(text)
        self.fail_info = fail_info


def issue_tsa(ca: dev.DevCA, *, name: str, algorithm: str = "ec", not_before=None, not_after=None):
    """A timestamping certificate under `ca`: EKU timeStamping (critical, alone, RFC 3161 2.3)."""
    key = dev.new_key(algorithm)
    start = not_before or (_now().replace(microsecond=0) - dt.timedelta(hours=1))
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"{name} TSA"),
                ]
            )
        )
        .issuer_name(ca.issuing_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or (start + TSA_LIFETIME))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.issuing_key.public_key()), critical=False
        )
        .sign(ca.issuing_key, hashes.SHA256())
    )
    return key, cert


class Authority:
    """The TSA of one data directory (created on first use)."""

    def __init__(
        self,
        data: Path | str,
        *,
        name: str = "Học bạ số (phát triển) Dấu thời gian",
        algorithm: str = "ec",
        lifetime: dt.timedelta = TSA_LIFETIME,
    ):
        self.data = Path(data)
        self.data.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ca = dev.dev_ca_ensure(self.data / "ca", name)
        cert_file, key_file = self.data / "tsa.pem", self.data / "tsa-key.pem"
        if not cert_file.exists() or not key_file.exists():
            start = _now().replace(microsecond=0) - dt.timedelta(hours=1)
            key, cert = issue_tsa(
                self.ca, name=name, algorithm=algorithm, not_before=start, not_after=start + lifetime
            )
            key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
            key_file.chmod(0o600)
            cert_file.write_bytes(cert.public_bytes(Encoding.PEM))
        loaded = load_pem_private_key(key_file.read_bytes(), None)
        if not isinstance(loaded, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise ValueError(f"{key_file} holds a {type(loaded).__name__}, not an RSA or EC key")
        self.key = loaded
        self.cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        self._asn1_cert = asn1_x509.Certificate.load(self.cert.public_bytes(Encoding.DER))
        self._asn1_chain = [asn1_x509.Certificate.load(self.ca.issuing_cert.public_bytes(Encoding.DER))]
        self._ess = tsp.SigningCertificateV2(
            {
                "certs": [
                    {
                        "hash_algorithm": {"algorithm": "sha256"},
                        "cert_hash": hashlib.sha256(self._asn1_cert.dump()).digest(),
                        "issuer_serial": {
                            "issuer": [asn1_x509.GeneralName({"directory_name": self._asn1_cert.issuer})],
                            "serial_number": self._asn1_cert.serial_number,
                        },
                    }
                ]
            }
        )
        # Built once and kept as DER: asn1crypto re-encodes a parsed value every time it is put
        # into a new structure (13 ms a token when these were rebuilt), a freshly loaded one not.
        self._cert_ders = [self._asn1_cert.dump(), *(c.dump() for c in self._asn1_chain)]
        self._ess_attr = cms.CMSAttribute({"type": "signing_certificate_v2", "values": [self._ess]}).dump()
        self._tsa_name = asn1_x509.GeneralName({"directory_name": self._asn1_cert.subject}).dump()
        self._sid = cms.SignerIdentifier(
            {
                "issuer_and_serial_number": {
                    "issuer": self._asn1_cert.issuer,
                    "serial_number": self._asn1_cert.serial_number,
                }
            }
        ).dump()
        self._lock = threading.Lock()

    # --- The CA's publications -----------------------------------------------------------------

    def revoked(self) -> list[tuple[int, dt.datetime]]:
        path = self.data / "revoked.json"
        if not path.exists():
            return []
        return [(int(s), dt.datetime.fromisoformat(w)) for s, w in json.loads(path.read_text())]

    def revoke_tsa(self, when: dt.datetime | None = None) -> None:
        """Revoke the TSA certificate (as its CA would after a key compromise)."""
        with self._lock:
            entries = [(s, w.isoformat()) for s, w in self.revoked()]
            entries.append((self.cert.serial_number, (when or _now()).replace(microsecond=0).isoformat()))
            (self.data / "revoked.json").write_text(json.dumps(entries))

    def crl(self) -> x509.CertificateRevocationList:
        """The issuing CA's CRL as of now (made on each request from revoked.json)."""
        return dev.issue_crl(self.ca, self.revoked(), next_update=_now() + dt.timedelta(days=7))

    # --- Tokens --------------------------------------------------------------------------------

    def respond(self, request_der: bytes, *, at: dt.datetime | None = None) -> bytes:
        """The DER TimeStampResp for a DER TimeStampReq: granted with a token, or rejection."""
        try:
            request = self._request(request_der)
        except RequestRefused as refused:
            status = tsp.PKIStatusInfo(
                {
                    "status": "rejection",
                    "status_string": [str(refused)],
                    "fail_info": tsp.PKIFailureInfo({refused.fail_info}),
                }
            )
            return tsp.TimeStampResp({"status": status}).dump()
        token = self.token(request, at=at or _now())
        return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()

    def _request(self, data: bytes) -> tsp.TimeStampReq:
        try:
            request = tsp.TimeStampReq.load(data, strict=True)
            imprint = request["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            digest = imprint["hashed_message"].native
            policy = request["req_policy"].native
            request["nonce"].native  # noqa: B018 - parse it now, not while answering
            request["cert_req"].native  # noqa: B018
        except (ValueError, TypeError, KeyError) as error:
            raise RequestRefused("bad_data_format", f"Not a TimeStampReq: {error}") from error
        if request["version"].native != "v1":
            raise RequestRefused("bad_request", "Only version 1 requests")
        if algorithm not in DIGESTS:
            raise RequestRefused("bad_alg", f"Hash algorithm {algorithm} not accepted")
        if len(digest) != DIGESTS[algorithm]:
            raise RequestRefused("bad_data_format", "The imprint's length does not match its algorithm")
        if policy is not None and policy != POLICY:
            raise RequestRefused("unaccepted_policy", f"Policy {policy} not offered")
        return request

    def token(self, request: tsp.TimeStampReq, *, at: dt.datetime) -> cms.ContentInfo:
        info = {
            "version": "v1",
            "policy": POLICY,
            "message_imprint": request["message_imprint"],
            "serial_number": int.from_bytes(secrets.token_bytes(16), "big"),
            "gen_time": core.GeneralizedTime(
                at.astimezone(dt.UTC).replace(microsecond=at.microsecond // 1000 * 1000)
            ),
            "accuracy": {"seconds": 1},
            "ordering": False,
            "tsa": asn1_x509.GeneralName.load(self._tsa_name),
        }
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"]
        tst_info = tsp.TSTInfo(info).dump()
        signed_attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute(
                    {
                        "type": "signing_time",
                        "values": [
                            cms.Time({"utc_time": core.UTCTime(at.astimezone(dt.UTC).replace(microsecond=0))})
                        ],
                    }
                ),
                cms.CMSAttribute.load(self._ess_attr),
                cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_info).digest()]}),
            ]
        )
        to_sign = signed_attrs.dump()
        if isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(to_sign, PKCS1v15(), hashes.SHA256())
            signature_algorithm = "sha256_rsa"
        else:
            signature = self.key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
            signature_algorithm = "sha256_ecdsa"
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier.load(self._sid),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": signature_algorithm}),
                "signed_attrs": signed_attrs,
                "signature": signature,
            }
        )
        signed_data = {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(tst_info)},
            "signer_infos": [signer],
        }
        if request["cert_req"].native:
            signed_data["certificates"] = [cms.CertificateChoices.load(der) for der in self._cert_ders]
        return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})
