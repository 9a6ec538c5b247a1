"""The public index of issued records: the personal-ID digest and the verification code.

The index (portal.IssuedRecord) is the province's list of every issued version: written by
transcripts through portal.services (issued_record_add, issued_record_status_set) inside the
transaction that issues or supersedes a version, read by transcripts' book (a transferred
student's earlier years) and by registry (the public verification page). So it lives at the
bottom of the chain (design.md §2). Private to portal: other apps reach these helpers through
portal.selectors (personal_id_digest, verification_code_matches) and portal.services.

A verification code is 80 random bits (Crockford's base32), made here once per indexed version,
never derived from the record id; the student's personal ID is kept only as a keyed hash.
"""

from __future__ import annotations

import hmac
import re
import secrets

from django.utils.crypto import salted_hmac

from .choices import VERIFICATION_CODE_ALPHABET, VERIFICATION_CODE_LENGTH

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
