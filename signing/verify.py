"""Verifying a signed year record: every signature, its signer, its certificate and its place in line.

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

import asyncio
import base64
import concurrent.futures
import datetime as dt
import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator._state import ValProcState
from pyhanko_certvalidator.errors import (
    CRLValidationError,
    ExpiredError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
)
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    FreshnessReqType,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.revinfo.validate_crl import verify_crl
from pyhanko_certvalidator.util import ConsList
from pyhanko_certvalidator.validate import async_validate_path
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput
from signxml.exceptions import InvalidSignature as XMLInvalidSignature
from signxml.util import add_pem_header
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from transcripts.document import NAMESPACE, DocumentError, year_record_load

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

SIGNATURE_METHODS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
}
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
NS = {"ds": DS, "xades": XADES}
MAX_CHAIN = 5
# What one signature's unsigned properties may carry before it is refused unread: a record has a
# dozen certificates and CRLs and an archive timestamp every few years; the archive timestamps'
# inputs grow with every one before them (quadratic), so their number is bounded.
MAX_EMBEDDED_CERTIFICATES = 40
MAX_EMBEDDED_CRLS = 40
MAX_ARCHIVE_TIMESTAMPS = 40


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


def _subject(cert: x509.Certificate, oid) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def _describe(cert: x509.Certificate) -> str:
    name = _subject(cert, NameOID.COMMON_NAME) or cert.subject.rfc4514_string()
    return f"{name} (serial {cert.serial_number:x})"


@functools.lru_cache(maxsize=1024)
def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    # Kept per certificate: asn1crypto caches the prepared names (RFC 5280 string prep) on the
    # object, which is most of pyhanko's cost on the roots and issuers every page view meets again.
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


@functools.lru_cache(maxsize=64)
def _asn1_crl(der: bytes) -> asn1_crl.CertificateList:
    return asn1_crl.CertificateList.load(der)


# Revocation is not judged inside path validation but certificate by certificate
# (_revocation_problems, with pyhanko's verify_crl): the signer's status must be known, an issuer's
# need not, and an unknown signer status must not hide a revoked issuer. CRL freshness is logged by
# signing.trust, not enforced (a stale CRL is still its issuer's last word): a CRL is usable for a
# century after its thisUpdate.
def _revocation_policy(*, retroactive: bool) -> CertRevTrustPolicy:
    return CertRevTrustPolicy(
        RevocationCheckingPolicy(
            ee_certificate_rule=RevocationCheckingRule.NO_CHECK,
            intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
        ),
        freshness=dt.timedelta(days=36500),
        freshness_req_type=FreshnessReqType.MAX_DIFF_REVOCATION_VALIDATION,
        retroactive_revinfo=retroactive,
    )


_POLICY = _revocation_policy(retroactive=False)
# At a proven time (a timestamp's): the same, and a CRL issued after that time still speaks of it.
_POLICY_AT = _revocation_policy(retroactive=True)
# Validity not judged (structure only): a tolerance wider than any certificate's life.
_ANY_TIME = dt.timedelta(days=365 * 500)


def _context(
    roots: Sequence[asn1_x509.Certificate],
    intermediates: Sequence[asn1_x509.Certificate],
    crls: Sequence[asn1_crl.CertificateList],
    *,
    moment: dt.datetime | None,
    policy: CertRevTrustPolicy,
    tolerance: dt.timedelta = dt.timedelta(0),  # a certificate signs up to its last second, not after
) -> ValidationContext:
    # Pinned roots only (never the system store), nothing fetched from the network.
    return ValidationContext(
        trust_roots=list(roots),
        other_certs=list(intermediates),
        crls=list(crls),
        moment=moment,
        allow_fetching=False,
        revinfo_policy=policy,
        time_tolerance=tolerance,
    )


def _top_issuer(cert: x509.Certificate, intermediates: Sequence[x509.Certificate]) -> x509.Name:
    """For the message only: the issuer named by the last certificate reachable by name from `cert`."""
    current, seen = cert, [cert]
    while True:
        above = next((c for c in intermediates if c.subject == current.issuer and c not in seen), None)
        if above is None:
            return current.issuer
        current = above
        seen.append(above)


def _not_ca_in(path: ValidationPath, by_der: dict[bytes, x509.Certificate]) -> x509.Certificate | None:
    """The issuer nearest the signer that is no CA (no cA flag, or a key usage without keyCertSign)."""
    for cert in reversed(list(path.iter_certs(include_root=False))[:-1]):
        usage = cert.key_usage_value
        if not cert.ca or (usage is not None and "key_cert_sign" not in usage.native):
            return by_der[cert.dump()]
    return None


async def _validated_path(
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: dt.datetime,
) -> tuple[ValidationPath | None, list[x509.Certificate], list[Problem]]:
    """pyhanko-certvalidator's path from `cert` to a pinned root: built, then validated at `at`
    (signatures, names, CA constraints, validity), and no longer than MAX_CHAIN (ours).

    (path, its links signer first, the validity problems of its links at `at`) when the path holds
    but for validity; (None, [], [why not]) when there is none."""
    by_der = {c.public_bytes(Encoding.DER): c for c in (cert, *intermediates, *roots)}
    asn1_roots = [_asn1(c) for c in roots]
    asn1_intermediates = [_asn1(c) for c in intermediates]
    context = _context(asn1_roots, asn1_intermediates, (), moment=at, policy=_POLICY)
    try:
        paths = await context.path_builder.async_build_paths(_asn1(cert))
    except PathBuildingError:
        paths = []
    if not paths:
        return None, [], [_no_chain(cert, intermediates)]
    refusal: Problem | None = None
    for path in sorted(paths, key=lambda p: p.pkix_len):
        if path.pkix_len > MAX_CHAIN:
            refusal = refusal or Problem(ProblemCode.CHAIN_TOO_LONG, "Certificate chain too long")
            continue
        links = [by_der[c.dump()] for c in reversed(list(path.iter_certs(include_root=True)))]
        try:
            await async_validate_path(context, path)
            return path, links, []
        except (ExpiredError, NotYetValidError):
            # A link outside its validity at `at`: said link by link, if the path holds otherwise.
            structure = _context(
                asn1_roots, asn1_intermediates, (), moment=at, policy=_POLICY, tolerance=_ANY_TIME
            )
            try:
                await async_validate_path(structure, path)
                return path, links, _validity_problems(links, at)
            except PathValidationError:
                refusal = refusal or _broken(path, cert, intermediates, by_der)
        except PathValidationError:
            refusal = refusal or _broken(path, cert, intermediates, by_der)
    assert refusal is not None
    return None, [], [refusal]


def _no_chain(cert: x509.Certificate, intermediates: Sequence[x509.Certificate]) -> Problem:
    return Problem(
        ProblemCode.UNTRUSTED_ISSUER,
        f"No chain from {_describe(cert)} to a trusted root "
        f"(issuer {_top_issuer(cert, intermediates).rfc4514_string()})",
    )


def _broken(
    path: ValidationPath,
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    by_der: dict[bytes, x509.Certificate],
) -> Problem:
    """Why pyhanko refused a path it built: an issuer that is no CA, or else no chain (a signature
    that does not hold: a look-alike issuer with other keys)."""
    not_ca = _not_ca_in(path, by_der)
    if not_ca is not None:
        return Problem(ProblemCode.ISSUER_NOT_CA, f"{_describe(not_ca)} is not a certification authority")
    limited = _path_length_exceeded(path, by_der)
    if limited is not None:
        ca, allowed = limited
        return Problem(
            ProblemCode.CHAIN_TOO_LONG,
            f"Certificate chain too long: {_describe(ca)} allows {allowed} CA(s) below it "
            "(pathLenConstraint)",
        )
    return _no_chain(cert, intermediates)


def _path_length_exceeded(
    path: ValidationPath, by_der: dict[bytes, x509.Certificate]
) -> tuple[x509.Certificate, int] | None:
    """For the message only: the CA whose pathLenConstraint the path goes beyond (RFC 5280 4.2.1.9;
    self-issued CAs do not count), with the number it allows."""
    certs = list(path.iter_certs(include_root=True))  # root first, the signer last
    for i in reversed(range(len(certs) - 1)):  # the nearest the signer first
        issuer = certs[i]
        allowed = issuer.max_path_length
        below = [c for c in certs[i + 1 : -1] if not c.self_issued]
        if allowed is not None and len(below) > allowed:
            return by_der[issuer.dump()], allowed
    return None


def _validity_problems(links: Sequence[x509.Certificate], at: dt.datetime) -> list[Problem]:
    """Which links pyhanko found outside their validity at `at`, each said (signer first)."""
    problems = []
    for link in links:
        if at < link.not_valid_before_utc:
            problems.append(
                Problem(ProblemCode.NOT_YET_VALID, f"{_describe(link)} was not yet valid at {at.isoformat()}")
            )
        elif at > link.not_valid_after_utc:
            problems.append(
                Problem(ProblemCode.EXPIRED, f"{_describe(link)} had expired at {at.isoformat()}")
            )
    return problems


async def _revocation_problems(
    path: ValidationPath,
    links: Sequence[x509.Certificate],
    crls: Sequence[asn1_crl.CertificateList],
    roots: Sequence[asn1_x509.Certificate],
    intermediates: Sequence[asn1_x509.Certificate],
    *,
    proven: dt.datetime | None = None,
) -> tuple[list[Problem], list[Problem]]:
    """Each certificate below the root against the CRLs (pyhanko's verify_crl: the CRL must be
    signed by that certificate's issuer). Only the signer's own status must be known.

    Without a proven time (no timestamp): a revocation at any date is refused, as a claimed
    signing time proves nothing (the check's moment is now). With `proven` (the time a timestamp
    proves): the check is at that moment, so a revocation before it is refused and one after it is
    a note (REVOKED_SINCE), from a CRL whose signature its issuer's key confirms.
    (problems, notes)."""
    context = _context(
        roots, intermediates, crls, moment=proven, policy=_POLICY if proven is None else _POLICY_AT
    )
    problems, notes = [], []
    certs = list(path.iter_certs(include_root=False))  # root side first
    for depth, link in enumerate(links[:-1]):
        index = len(certs) - depth
        state = ValProcState(cert_path_stack=ConsList.sing(path), init_index=index)
        try:
            await verify_crl(certs[index - 1], path, context, proc_state=state)
        except RevokedError as error:
            when = error.revocation_dt.isoformat()
            problems.append(Problem(ProblemCode.REVOKED, f"{_describe(link)} was revoked on {when}"))
            continue
        except CRLValidationError:  # no CRL from its issuer, or none that holds
            if depth == 0:  # the signer's own certificate must have a known status
                problems.append(
                    Problem(
                        ProblemCode.REVOCATION_UNKNOWN,
                        f"No CRL from {_describe(links[1])}: revocation status of {_describe(link)} unknown",
                    )
                )
            continue
        if proven is not None:
            later = _revoked_later(link, links[depth + 1], crls)
            if later is not None:
                notes.append(
                    Problem(
                        ProblemCode.REVOKED_SINCE,
                        f"{_describe(link)} was revoked on {later.isoformat()}, after the proven "
                        f"signing time {proven.isoformat()}",
                    )
                )
    return problems, notes


def _revoked_later(
    cert: x509.Certificate, issuer: x509.Certificate, crls: Sequence[asn1_crl.CertificateList]
) -> dt.datetime | None:
    """The revocation date of `cert` in a CRL its issuer signed (the earliest), if any."""
    found = None
    for asn1 in crls:
        crl = _crl_from_asn1(asn1)
        if crl.issuer != issuer.subject:
            continue
        try:
            if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                continue
        except (TypeError, ValueError):
            continue
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None and (found is None or entry.revocation_date_utc < found):
            found = entry.revocation_date_utc
    return found


@functools.lru_cache(maxsize=64)
def _crl_from_asn1(asn1: asn1_crl.CertificateList) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(asn1.dump())


def _run_to_completion(coroutine):
    """Run pyhanko-certvalidator's coroutine from synchronous code. asyncio.run refuses when this
    thread already runs an event loop (Playwright's sync API leaves one in the main thread, and an
    async caller would have one): then the coroutine runs on a short-lived thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def certificate_problems(
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    *,
    trust_roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    at: dt.datetime,
) -> list[Problem]:
    """Why this certificate cannot sign at `at` (empty: it can). Also used before signing."""
    problems, _notes = certificate_judgement(cert, chain, trust_roots=trust_roots, crls=crls, at=at)
    return problems


def certificate_judgement(
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    *,
    trust_roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    at: dt.datetime,
    proven: bool = False,
    now: dt.datetime | None = None,
) -> tuple[list[Problem], list[Problem]]:
    """(problems, notes) of a signer's certificate at `at`. With `proven` (`at` is the time a
    timestamp proves), revocations after `at` and expiry since are notes, not problems."""
    problems = []
    if not trust_roots:
        return [Problem(ProblemCode.NO_TRUST_ROOTS, "No trust roots configured")], []
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            problems.append(
                Problem(ProblemCode.CA_AS_SIGNER, f"{_describe(cert)} is a CA certificate, not a signer's")
            )
    except x509.ExtensionNotFound:
        pass
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (usage.digital_signature or usage.content_commitment):
            problems.append(
                Problem(
                    ProblemCode.KEY_USAGE,
                    f"{_describe(cert)} is not for signing (key usage lacks digitalSignature/nonRepudiation)",
                )
            )
    except x509.ExtensionNotFound:
        problems.append(
            Problem(
                ProblemCode.NO_KEY_USAGE, f"{_describe(cert)} has no key usage: not a signing certificate"
            )
        )
    path_problems, notes = _run_to_completion(
        _path_problems(cert, chain, trust_roots, crls, at, proven=at if proven else None)
    )
    if proven and not path_problems:
        current = now or dt.datetime.now(dt.UTC)
        if current > cert.not_valid_after_utc:
            notes.append(
                Problem(
                    ProblemCode.EXPIRED_SINCE,
                    f"{_describe(cert)} expired on {cert.not_valid_after_utc.isoformat()}, after the "
                    f"proven signing time {at.isoformat()}",
                )
            )
    return [*problems, *path_problems], notes


async def _path_problems(
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    trust_roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    at: dt.datetime,
    *,
    proven: dt.datetime | None = None,
) -> tuple[list[Problem], list[Problem]]:
    """The path (valid at `at`), then the revocation of each of its certificates, in one event loop."""
    path, links, why = await _validated_path(cert, chain, trust_roots, at)
    if path is None:
        return why, []
    revocation, notes = await _revocation_problems(
        path,
        links,
        [_asn1_crl(crl.public_bytes(Encoding.DER)) for crl in crls],
        [_asn1(c) for c in trust_roots],
        [_asn1(c) for c in chain],
        proven=proven,
    )
    return [*why, *revocation], notes


@dataclass
class _Proof:
    """What a signature's timestamps prove: the time (None when no valid timestamp), by whom, and
    how many archive timestamps carry the proof to now."""

    time: dt.datetime | None = None
    authority: str = ""
    archived: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)


def _deadline(
    cert: x509.Certificate, chain: Sequence[x509.Certificate], crls: Sequence[x509.CertificateRevocationList]
) -> dt.datetime:
    """Until when a TSA's token can be relied on by itself: the earliest end of validity on its
    certificate's path (as far as `chain` gives it) and its certificate's revocation, if any."""
    links = [cert, *(c for c in chain if c.issuer != c.subject or c.subject == cert.issuer)]
    until = min(c.not_valid_after_utc for c in links)
    issuer = next((c for c in chain if c.subject == cert.issuer), None)
    if issuer is not None:
        revoked = _revoked_later(cert, issuer, [_asn1_crl(c.public_bytes(Encoding.DER)) for c in crls])
        if revoked is not None:
            until = min(until, revoked)
    return until


def _token_problems(
    info, tsa_roots: Sequence[x509.Certificate], extra: Sequence[x509.Certificate], crls
) -> tuple[list[str], list[x509.Certificate]]:
    """Why a read token's TSA cannot be relied on at the token's time (English details), and
    the chain used."""
    if info.problems:
        return list(info.problems), []
    chain = [c for c in (*info.certificates, *extra) if c != info.tsa_cert]
    if not tsa_roots:
        return ["no timestamping authority roots configured"], chain
    problems, _notes = _run_to_completion(
        _path_problems(info.tsa_cert, chain, tsa_roots, crls, info.time, proven=info.time)
    )
    return [p.detail for p in problems], chain


def _timestamp_proof(
    signature: etree._Element,
    k: int,
    *,
    tsa_roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    extra: Sequence[x509.Certificate],
    now: dt.datetime,
) -> _Proof:
    """The signature's SignatureTimeStamp checked (token, imprint over its SignatureValue, the
    TSA's certificate path at the token's time against the pinned TSA roots), then its archive
    timestamps in order: each must hold, be over everything before it, and be made while the
    previous token's TSA could still be relied on (before its certificate path expired or it was
    revoked). The last one's TSA must still be reliable now, or the proof has lapsed."""
    from .longterm import XADES141, archive_timestamp_input, timestamp_tokens
    from .profile import timestamp_input, unsigned_signature_properties
    from .timestamps import token_read

    tokens = timestamp_tokens(signature)
    if not tokens:
        return _Proof()
    info = token_read(tokens[0], timestamp_input(signature), extra_certs=extra)
    why, chain = _token_problems(info, tsa_roots, extra, crls)
    if why:
        code = ProblemCode.TIMESTAMP_INVALID if info.problems else ProblemCode.TIMESTAMP_UNTRUSTED
        return _Proof(problems=[Problem(code, f"Signature {k}: timestamp: {'; '.join(why)}")])
    assert info.tsa_cert is not None and info.time is not None  # a token without problems has both
    proof = _Proof(time=info.time, authority=info.tsa_name)
    deadline = _deadline(info.tsa_cert, chain, crls)
    properties = unsigned_signature_properties(signature)
    archives = properties.findall(f"{{{XADES141}}}ArchiveTimeStamp")
    if len(archives) > MAX_ARCHIVE_TIMESTAMPS:
        proof.problems.append(
            Problem(
                ProblemCode.ARCHIVE_TIMESTAMP_INVALID,
                f"Signature {k}: {len(archives)} archive timestamps, more than {MAX_ARCHIVE_TIMESTAMPS}",
            )
        )
        return proof
    for element in archives:
        encapsulated = element.findtext(f"{{{XADES}}}EncapsulatedTimeStamp") or ""
        try:
            token = base64.b64decode("".join(encapsulated.split()), validate=True)
        except ValueError:
            token = b""
        archive = token_read(token, archive_timestamp_input(signature, before=element), extra_certs=extra)
        why, archive_chain = _token_problems(archive, tsa_roots, extra, crls)
        made = archive.time
        if not why and made is not None and made >= deadline:
            why = [f"made on {made.isoformat()}, after the earlier proof lapsed on {deadline.isoformat()}"]
        if why:
            proof.problems.append(
                Problem(
                    ProblemCode.ARCHIVE_TIMESTAMP_INVALID,
                    f"Signature {k}: archive timestamp {proof.archived + 1}: {'; '.join(why)}",
                )
            )
            return proof
        proof.archived += 1
        assert archive.tsa_cert is not None
        deadline = _deadline(archive.tsa_cert, archive_chain, crls)
    if now >= deadline:
        proof.problems.append(
            Problem(
                ProblemCode.TIMESTAMP_EXPIRED,
                f"Signature {k}: the newest timestamp can be relied on until {deadline.isoformat()} "
                "and no later archive timestamp renews it",
            )
        )
    return proof


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
