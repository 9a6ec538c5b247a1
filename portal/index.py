"""The public index of issued records: what the year record lifecycle writes when a version is issued.

Written by transcripts (transcripts.records.services) inside the transaction that issues or
supersedes a version, so it lives at the bottom of the chain (design.md §2): this module imports
nothing of schools, transcripts, signing or registry. The tables (IssuedRecord, VerificationLog,
CopyLog) stay in portal for now; moving them to registry is a later step (a table move with its
migration). Reading the index, verifying and the public pages are registry's (registry/verification.py).

A verification code is 80 random bits (Crockford's base32), made here once per indexed version,
never derived from the record id; the student's personal ID is kept only as a keyed hash.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets

from django.db import IntegrityError, transaction
from django.utils.crypto import salted_hmac

from .models import School
from .models_verification import (
    VERIFICATION_CODE_ALPHABET,
    VERIFICATION_CODE_LENGTH,
    IssuedRecord,
    IssuedRecordStatus,
)

PERSONAL_ID_SALT = "hocba.personal-id"


def personal_id_digest(personal_id: str | None) -> str:
    """The keyed hash (HMAC-SHA256, key derived from SECRET_KEY) the index keeps of a personal ID.

    A receiving school that knows the student's number finds the student's records by it; the
    number itself is never stored, and without the key the hash cannot be tested against the
    million candidate numbers of a birth year.
    """
    if not personal_id:
        return ""
    return salted_hmac(PERSONAL_ID_SALT, personal_id, algorithm="sha256").hexdigest()


# --- Verification codes ----------------------------------------------------------------------


def verification_code_new() -> str:
    """A fresh verification code: 16 symbols of Crockford's base32 from the OS's CSPRNG (80 bits).

    Random, never derived from the record id (which is sequential and guessable): knowing one
    record's id and code tells nothing about another's.
    """
    return "".join(secrets.choice(VERIFICATION_CODE_ALPHABET) for _ in range(VERIFICATION_CODE_LENGTH))


# Crockford's decoding: the letters a person may read for a digit are that digit.
_CODE_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_CODE_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]+")


def verification_code_normalise(typed: str) -> str:
    """The code as stored, from what a person typed: upper case, no dashes or spaces, O read as 0.

    Returns "" for anything that cannot be a code (wrong length, other symbols), which matches no
    record.
    """
    code = _CODE_SEPARATORS.sub("", (typed or "")[:64]).upper().translate(_CODE_LOOKALIKES)
    if len(code) != VERIFICATION_CODE_LENGTH or any(c not in VERIFICATION_CODE_ALPHABET for c in code):
        return ""
    return code


def verification_code_matches(expected: str, typed: str) -> bool:
    """Whether `typed` is the code `expected`, compared in constant time (hmac.compare_digest)."""
    code = verification_code_normalise(typed)
    # Compared even when the input is no code at all, so the time taken says nothing.
    same = hmac.compare_digest(expected.encode("ascii"), (code or "-" * VERIFICATION_CODE_LENGTH).encode())
    return same and bool(code)


# --- The index, written by the year record lifecycle (transcripts.records.services) ----------


def issued_record_add(
    *,
    school: School,
    record_id: str,
    version: int,
    sha256: str,
    school_year: str,
    student_code: str,
    personal_id: str | None,
    at: dt.datetime,
) -> IssuedRecord:
    """Index a version that has just been issued. Call it in the transaction that issues it.

    The one place a verification code is made: a fresh random one for each indexed version. A
    collision (one in 2**80 per pair of records) is refused by the unique constraint and the
    code drawn again.
    """
    for attempt in range(3):
        try:
            with transaction.atomic():  # a savepoint: the issuing transaction survives a retry
                return IssuedRecord.objects.create(
                    school=school,
                    record_id=record_id,
                    version=version,
                    sha256=sha256,
                    school_year=school_year,
                    student_code=student_code,
                    personal_id_digest=personal_id_digest(personal_id),
                    status=IssuedRecordStatus.ISSUED,
                    issued_at=at,
                    status_changed_at=at,
                    verification_code=verification_code_new(),
                )
        except IntegrityError as error:
            if "issued_record_verification_code_unique" not in str(error) or attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover -- the loop returns or raises


def issued_record_status_set(*, record_id: str, version: int, status: str, at: dt.datetime) -> int:
    """Mirror a superseded or revoked version; a version never issued has no row (0 returned)."""
    return IssuedRecord.objects.filter(record_id=record_id, version=version).update(
        status=status, status_changed_at=at
    )
