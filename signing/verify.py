"""Verifying a signed year record: every signature, its signer, its certificate and its place in line.

The signer's certificate path and revocation are judged in signing.certpath, the timestamps' proof
in signing.proofs; this module checks the document and each signature and puts the verdicts together.

`verify_year_record(xml, trust_roots=..., crls=..., tsa_roots=..., now=None)` returns one
SignatureReport per signature, in document order. It never raises on a bad document: every
failure is a `Problem` in the report's `problems`: a code (signing.choices.ProblemCode, whose label
is what it means to a reader) and the technical detail in English. A problem with the document as a
whole (not a year record, a duplicated Id, a second content element: the shapes of a wrapping
attack) comes first, as a report at position 0. Facts that leave a signature valid (a certificate
expired or revoked after the time its timestamp proves) are the report's `notes`.

For the signature at position k, it checks:

- the profile: Id "<content Id>-sig-<k>-<role>" with the k-th role of ROLES; exclusive C14N,
  RSA/ECDSA with SHA-256; references exactly: the content element (the one child <thongtinhocba>
  of the root), the SignatureValues of the signatures at positions 1..k-1 in order, its own
  SignedProperties and its own KeyInfo, each with the one exc-c14n transform and nothing else
  (no XPath, no XSLT);
- cryptography (signxml): every digest and the signature value, SigningCertificateV2;
- its timestamp, when it has one (XAdES-T): an RFC 3161 token over the exclusive C14N of its
  SignatureValue, by a TSA whose certificate (extended key usage timeStamping) chains to one of the
  pinned `tsa_roots` and was valid and unrevoked at the token's time; then its archive timestamps
  (XAdES-LTA, signing.longterm), each over everything before it and made while the previous
  proof still held; the newest must still hold `now`, or the proof has lapsed (TIMESTAMP_EXPIRED);
- the signer (`certificate_judgement`): ours: key usage digitalSignature or nonRepudiation, no CA
  certificate as a signer, at most MAX_CHAIN certificates below the root; pyhanko-certvalidator's
  (RFC 5280): a path up to one of the PINNED `trust_roots` (never the system store, nothing
  fetched, never a root the document carries), signatures, names, CA constraints and path lengths
  of the issuers, and each certificate below the root not revoked per a CRL signed by its issuer
  (a missing CRL is a problem for the signer's own certificate only). The CRLs are the configured
  ones plus those the signature carries (XAdES-LT RevocationValues, validation data of archive
  timestamps); its embedded certificates serve as intermediates.

When the timestamp holds, the signer is judged at the time it proves: valid then, not revoked
before then; a certificate that expired since or was revoked after that time leaves the signature
valid, with a note. Without a (valid) timestamp the signing time is the signer's claim (baseline
B): validity is judged at it and a revocation at any date is refused, since a claimed time cannot
tell a signature made before the revocation from one back-dated after it. The report's `level`
says which: B, T, LT (with validation data) or LTA (with archive timestamps). Freshness of the
CRLs is logged by signing.trust, not enforced here.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput
from signxml.exceptions import InvalidSignature as XMLInvalidSignature
from signxml.util import add_pem_header
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from transcripts.document import NAMESPACE, DocumentError, year_record_load

from .certpath import MAX_CHAIN, _subject, certificate_judgement, certificate_problems
from .choices import Problem, ProblemCode
from .profile import (
    DS,
    EXC_C14N,
    ROLES,
    SIGNATURE_ID,
    SIGNED_PROPERTIES_TYPE,
    XADES,
    existing_signatures,
)
from .proofs import MAX_ARCHIVE_TIMESTAMPS, _timestamp_proof

__all__ = [
    "MAX_ARCHIVE_TIMESTAMPS",
    "MAX_CHAIN",
    "SignatureReport",
    "all_valid",
    "certificate_judgement",
    "certificate_problems",
    "verify_year_record",
]

SIGNATURE_METHODS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
}
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
NS = {"ds": DS, "xades": XADES}
# What one signature's unsigned properties may carry before they are refused unread: a record has a
# dozen certificates and CRLs (the archive timestamps' bound is signing.proofs').
MAX_EMBEDDED_CERTIFICATES = 40
MAX_EMBEDDED_CRLS = 40


@dataclass(frozen=True)
class SignatureReport:
    """What one signature says and whether it holds. `ok` when `problems` is empty."""

    position: int  # 1-based; 0 for the document as a whole
    signature_id: str = ""
    role: str = ""  # the XAdES ClaimedRole: homeroom_teacher, principal, seal
    signer: str = ""  # the certificate subject's CN
    title: str = ""  # the subject's title (T), e.g. "Phó Hiệu trưởng"; empty for a seal
    organisation: str = ""
    signing_time: dt.datetime | None = None
    certificate_serial: int | None = None
    covers: tuple[str, ...] = ()  # Ids of the earlier signatures this one covers (verified)
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    # The time its timestamp proves (XAdES-T) and who stamped it; None: no valid timestamp.
    timestamp: dt.datetime | None = None
    timestamp_authority: str = ""
    level: str = "B"  # B, T (timestamp), LT (+ validation data), LTA (+ archive timestamps)
    archive_timestamps: int = 0
    # Facts that do not invalidate the signature (expired or revoked after the proven time).
    notes: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def codes(self) -> tuple[ProblemCode, ...]:
        """The codes of the problems, in order, each once."""
        return tuple(dict.fromkeys(p.code for p in self.problems))


def all_valid(reports: Sequence[SignatureReport], *, expected: int = len(ROLES)) -> bool:
    """True when the document is sound and carries `expected` valid signatures."""
    return all(r.ok for r in reports) and sum(1 for r in reports if r.position) == expected


class _PositionVerifier(XAdESVerifier):
    """signxml's XAdES verifier, pointed at the k-th signature of <chuky> instead of the first."""

    def __init__(self, position: int):
        super().__init__()
        self._position = position

    def _get_signature(self, root):
        signatures = root.findall(f"{{{NAMESPACE}}}chuky/{{{DS}}}Signature")
        return signatures[self._position - 1]


def _document_problems(root: etree._Element) -> list[Problem]:
    problems = []
    ids = Counter(root.xpath("//@Id"))
    duplicated = sorted(i for i, count in ids.items() if count > 1)
    if duplicated:
        problems.append(
            Problem(
                ProblemCode.DUPLICATE_ID,
                f"Id used more than once (a wrapping attack?): {', '.join(duplicated)}",
            )
        )
    contents = list(root.iter(f"{{{NAMESPACE}}}thongtinhocba"))
    if len(contents) != 1:
        problems.append(
            Problem(
                ProblemCode.CONTENT_COUNT,
                f"{len(contents)} content elements <thongtinhocba> in the document, not one",
            )
        )
    return problems


def _profile_problems(
    signature: etree._Element, k: int, content_id: str, earlier_ids: list[str]
) -> list[Problem]:
    problems = []
    sig_id = signature.get("Id") or ""
    match = SIGNATURE_ID.match(sig_id)
    expected_role = ROLES[k - 1] if k <= len(ROLES) else None
    if expected_role is None:
        problems.append(
            Problem(
                ProblemCode.TOO_MANY_SIGNATURES,
                f"Signature {k}: the profile has only {len(ROLES)} signatures",
            )
        )
    if not match or match["content"] != content_id:
        problems.append(
            Problem(
                ProblemCode.ID_OUTSIDE_PROFILE, f"Signature {k} has an Id outside the profile: {sig_id!r}"
            )
        )
    else:
        if int(match["n"]) != k:
            problems.append(
                Problem(
                    ProblemCode.ORDER_CHANGED,
                    f"Signature {match['n']} stands at position {k}: the signatures were reordered",
                )
            )
        if expected_role and match["role"] != expected_role:
            problems.append(
                Problem(
                    ProblemCode.WRONG_ROLE,
                    f"Signature {k} is the {match['role']}'s; the {expected_role}'s is expected there",
                )
            )
    signed_info = signature.find("ds:SignedInfo", NS)
    if signed_info is None:
        return [*problems, Problem(ProblemCode.NO_SIGNED_INFO, f"Signature {k} has no SignedInfo")]
    c14n = signed_info.find("ds:CanonicalizationMethod", NS)
    if c14n is None or c14n.get("Algorithm") != EXC_C14N or len(c14n):
        problems.append(
            Problem(ProblemCode.WRONG_CANONICALIZATION, f"Signature {k}: SignedInfo must use exclusive C14N")
        )
    method = signed_info.find("ds:SignatureMethod", NS)
    if method is None or method.get("Algorithm") not in SIGNATURE_METHODS:
        problems.append(
            Problem(
                ProblemCode.WRONG_SIGNATURE_METHOD,
                f"Signature {k}: signature method must be RSA or ECDSA with SHA-256",
            )
        )
    references = signed_info.findall("ds:Reference", NS)
    expected = [f"#{content_id}", *(f"#{i}-value" for i in earlier_ids)]
    uris = [r.get("URI") for r in references]
    if uris[: len(expected)] != expected or len(references) != len(expected) + 2:
        problems.append(
            Problem(
                ProblemCode.WRONG_REFERENCES,
                f"Signature {k} must cover the content and the {k - 1} earlier signature(s) in order, "
                f"then its own properties; it covers {uris}",
            )
        )
    else:
        props, key_info = references[-2:]
        target = signature.xpath(".//xades:SignedProperties[@Id=$i]", namespaces=NS, i=props.get("URI")[1:])
        if props.get("Type") != SIGNED_PROPERTIES_TYPE or len(target) != 1:
            problems.append(
                Problem(
                    ProblemCode.FOREIGN_SIGNED_PROPERTIES,
                    f"Signature {k}: its XAdES SignedProperties are not its own",
                )
            )
        own_key_info = signature.find("ds:KeyInfo", NS)
        if own_key_info is None or key_info.get("URI") != f"#{own_key_info.get('Id')}":
            problems.append(
                Problem(
                    ProblemCode.FOREIGN_KEY_INFO,
                    f"Signature {k}: its certificate reference is not to its own KeyInfo",
                )
            )
    for reference in references:
        transforms = reference.findall("ds:Transforms/ds:Transform", NS)
        if [t.get("Algorithm") for t in transforms] != [EXC_C14N] or any(len(t) for t in transforms):
            problems.append(
                Problem(
                    ProblemCode.WRONG_TRANSFORM,
                    f"Signature {k}: reference {reference.get('URI')} has transforms outside the profile",
                )
            )
        digest = reference.find("ds:DigestMethod", NS)
        if digest is None or digest.get("Algorithm") != SHA256:
            problems.append(
                Problem(
                    ProblemCode.WRONG_DIGEST_METHOD,
                    f"Signature {k}: reference {reference.get('URI')} is not digested with SHA-256",
                )
            )
    return problems


def _load_certificates(signature: etree._Element) -> list[x509.Certificate]:
    certs = []
    for element in signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
        certs.append(x509.load_pem_x509_certificate(add_pem_header(element.text or "")))
    return certs


def _signing_time(signature: etree._Element) -> dt.datetime | None:
    text = signature.findtext(
        "ds:Object/xades:QualifyingProperties/xades:SignedProperties//xades:SigningTime", None, NS
    )
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when if when.tzinfo else None


def _verify_signature(
    xml: bytes,
    signature: etree._Element,
    k: int,
    content_id: str,
    earlier_ids: list[str],
    trust_roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    tsa_roots: Sequence[x509.Certificate] = (),
    now: dt.datetime | None = None,
) -> SignatureReport:
    problems = _profile_problems(signature, k, content_id, earlier_ids)
    role = signature.findtext(".//xades:SignerRole/xades:ClaimedRoles/xades:ClaimedRole", "", NS)
    sig_id = signature.get("Id") or ""
    signing_time = _signing_time(signature)
    if signing_time is None:
        problems.append(Problem(ProblemCode.NO_SIGNING_TIME, f"Signature {k} has no valid xades:SigningTime"))
    try:
        certs = _load_certificates(signature)
    except ValueError as error:
        certs = []
        problems.append(
            Problem(ProblemCode.UNREADABLE_CERTIFICATE, f"Signature {k}: unreadable certificate ({error})")
        )
    if not certs:
        problems.append(
            Problem(ProblemCode.MISSING_CERTIFICATE, f"Signature {k} carries no signer certificate")
        )
        return SignatureReport(k, sig_id, role, signing_time=signing_time, problems=tuple(problems))
    leaf = certs[0]
    covers: tuple[str, ...] = ()
    if not problems and signing_time is not None:  # no signing time is a problem already
        # Only the cryptography here: signxml's own validity check is given a time inside the
        # certificate's period, as validity at the signing time is judged below with the chain.
        inside = min(max(signing_time, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
        config = XAdESSignatureConfiguration(expect_references=k + 2, verification_time=inside)
        try:
            _PositionVerifier(k).verify(xml, x509_cert=leaf, expect_config=config)
            covers = tuple(earlier_ids)
        except (
            InvalidSignature,
            XMLInvalidSignature,
            InvalidDigest,
            InvalidInput,
            InvalidCertificate,
        ) as error:
            problems.append(Problem(ProblemCode.ALTERED, f"Signature {k} is not valid: {error}"))
        except (ValueError, etree.LxmlError) as error:
            problems.append(Problem(ProblemCode.MALFORMED, f"Signature {k} cannot be checked: {error}"))
    from .longterm import embedded_values

    try:
        embedded_certs, embedded_crls = embedded_values(signature)
        if len(embedded_certs) > MAX_EMBEDDED_CERTIFICATES or len(embedded_crls) > MAX_EMBEDDED_CRLS:
            counts = f"{len(embedded_certs)} certificates and {len(embedded_crls)} CRLs"
            raise ValueError(f"{counts}, more than a record carries")
    except ValueError as error:
        embedded_certs, embedded_crls = [], []
        problems.append(
            Problem(ProblemCode.MALFORMED, f"Signature {k}: unreadable validation data ({error})")
        )
    all_crls = [*crls, *embedded_crls]
    intermediates = [*certs[1:], *(c for c in embedded_certs if c not in certs)]
    current = now or dt.datetime.now(dt.UTC)
    proof = _timestamp_proof(
        signature, k, tsa_roots=tsa_roots, crls=all_crls, extra=embedded_certs, now=current
    )
    problems += proof.problems
    notes: list[Problem] = []
    if proof.time is not None and not proof.problems:
        # Judged at the time the timestamp proves: later expiry and revocation are notes.
        found, notes = certificate_judgement(
            leaf,
            intermediates,
            trust_roots=trust_roots,
            crls=all_crls,
            at=proof.time,
            proven=True,
            now=current,
        )
        problems += found
    elif signing_time is not None:
        problems += certificate_problems(
            leaf, intermediates, trust_roots=trust_roots, crls=all_crls, at=signing_time
        )
    level = "B"
    if proof.time is not None and not proof.problems:
        level = "T"
        if embedded_certs or embedded_crls:
            level = "LTA" if proof.archived else "LT"
    if role and k <= len(ROLES) and role != ROLES[k - 1]:
        problems.append(
            Problem(
                ProblemCode.WRONG_CLAIMED_ROLE,
                f"Signature {k} claims the role {role!r}; {ROLES[k - 1]!r} is expected",
            )
        )
    return SignatureReport(
        position=k,
        signature_id=sig_id,
        role=role,
        signer=_subject(leaf, NameOID.COMMON_NAME),
        title=_subject(leaf, NameOID.TITLE),
        organisation=_subject(leaf, NameOID.ORGANIZATION_NAME),
        signing_time=signing_time,
        certificate_serial=leaf.serial_number,
        covers=covers,
        problems=tuple(problems),
        timestamp=proof.time,
        timestamp_authority=proof.authority,
        level=level,
        archive_timestamps=proof.archived,
        notes=tuple(notes),
    )


def verify_year_record(
    xml: bytes,
    *,
    trust_roots: Iterable[x509.Certificate],
    crls: Iterable[x509.CertificateRevocationList],
    tsa_roots: Iterable[x509.Certificate] = (),
    now: dt.datetime | None = None,
) -> list[SignatureReport]:
    """One report per signature in document order, preceded by a position-0 report if the
    document itself is unsound. An unsigned record gives an empty list.

    `tsa_roots`: the pinned roots of timestamping authorities (signing.trust.tsa_roots()); `now`:
    the moment of the verification (default: the clock), against which expiry since signing and
    the lapse of a timestamp's proof are judged."""
    roots, revocation, tsa = list(trust_roots), list(crls), list(tsa_roots)
    try:
        root = year_record_load(xml)
    except (DocumentError, TypeError) as error:
        return [
            SignatureReport(
                0, problems=(Problem(ProblemCode.NOT_A_YEAR_RECORD, f"Not a year record: {error}"),)
            )
        ]
    reports = []
    document = _document_problems(root)
    if document:
        reports.append(SignatureReport(0, problems=tuple(document)))
    content_id = root.find(f"{{{NAMESPACE}}}thongtinhocba").get("Id")
    signatures = existing_signatures(root)
    for k, signature in enumerate(signatures, start=1):
        earlier_ids = [s.get("Id") or "" for s in signatures[: k - 1]]
        try:
            reports.append(
                _verify_signature(xml, signature, k, content_id, earlier_ids, roots, revocation, tsa, now)
            )
        except Exception as error:  # a hostile document must give a reason, not a 500
            reports.append(
                SignatureReport(
                    k,
                    signature.get("Id") or "",
                    problems=(Problem(ProblemCode.UNCHECKABLE, f"Cannot be checked: {error}"),),
                )
            )
    return reports
