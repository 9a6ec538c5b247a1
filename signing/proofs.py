"""What a signature's timestamps prove (XAdES-T and LTA): the time, by whom, and whether archive
timestamps carry the proof to now. Used by signing.verify; the TSA's certificate path is judged
with signing.certpath at the token's time against the pinned TSA roots."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from .certpath import _asn1_crl, _path_problems, _revoked_later, _run_to_completion
from .choices import Problem, ProblemCode
from .profile import (
    XADES,
)

# The archive timestamps' inputs grow with every one before them (quadratic): their number is bounded.
MAX_ARCHIVE_TIMESTAMPS = 40


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
