"""A certificate's path and revocation, judged at a moment (signing.verify's signer checks, and the
check before a certificate signs: `certificate_problems`).

pyhanko-certvalidator builds and validates the path up to a PINNED root (never the system store,
nothing fetched); our policy adds: a signing key usage, no CA as a signer, at most MAX_CHAIN
certificates below the root. Revocation is judged certificate by certificate (pyhanko's
verify_crl): at a claimed time any revocation counts; at a time a timestamp proves
(`proven`), one after it is a note (REVOKED_SINCE), and expiry since is a note (EXPIRED_SINCE).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import functools
from collections.abc import Sequence

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
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

from .choices import Problem, ProblemCode

MAX_CHAIN = 5


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
