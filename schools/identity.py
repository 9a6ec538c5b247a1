"""The 12-digit personal identification number (số định danh cá nhân): PPP G YY NNNNNN.

PPP is the province (or country) of birth registration, G the century and sex, YY the last two
digits of the birth year, then six random digits. There is no check digit. Sources and the
63 legacy province codes (still valid after the 2025 merger): shared/forms.md §3.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from .choices import Sex

PROVINCE_CODES = frozenset(
    [
        "001",
        "002",
        "004",
        "006",
        "008",
        "010",
        "011",
        "012",
        "014",
        "015",
        "017",
        "019",
        "020",
        "022",
        "024",
        "025",
        "026",
        "027",
        "030",
        "031",
        "033",
        "034",
        "035",
        "036",
        "037",
        "038",
        "040",
        "042",
        "044",
        "045",
        "046",
        "048",
        "049",
        "051",
        "052",
        "054",
        "056",
        "058",
        "060",
        "062",
        "064",
        "066",
        "067",
        "068",
        "070",
        "072",
        "074",
        "075",
        "077",
        "079",
        "080",
        "082",
        "083",
        "084",
        "086",
        "087",
        "089",
        "091",
        "092",
        "093",
        "094",
        "095",
        "096",
    ]
)
assert len(PROVINCE_CODES) == 63


@dataclass(frozen=True)
class PersonalId:
    province: str
    birth_year: int
    sex: int  # Sex.MALE or Sex.FEMALE


class PersonalIdError(ValueError):
    pass


def personal_id_parse(value: str) -> PersonalId:
    """Decode a personal ID number; raise PersonalIdError with a message saying what is wrong."""
    digits = re.sub(r"\s+", "", value or "")
    # ASCII digits only: `\d` also matches other scripts' digits (٠١٢, ０１２), which int() reads.
    if not re.fullmatch(r"[0-9]{12}", digits):
        raise PersonalIdError(_("A personal ID number has exactly 12 digits."))
    province, century_sex, yy = digits[:3], int(digits[3]), int(digits[4:6])
    if province[0] == "0" and province not in PROVINCE_CODES:
        raise PersonalIdError(
            _("%(code)s is not a province code of birth registration.") % {"code": province}
        )
    year = 1900 + 100 * (century_sex // 2) + yy
    if year > dt.date.today().year:
        raise PersonalIdError(_("The birth year it encodes (%(year)d) is in the future.") % {"year": year})
    sex = Sex.FEMALE if century_sex % 2 else Sex.MALE
    return PersonalId(province=province, birth_year=year, sex=sex)


def personal_id_check(value: str, *, date_of_birth: dt.date | None, sex: int | None) -> str:
    """Validate a student's number against their birth year and sex; return it normalised."""
    parsed = personal_id_parse(value)
    if date_of_birth is not None and parsed.birth_year != date_of_birth.year:
        raise PersonalIdError(
            _("It encodes birth year %(id_year)d, but the student was born in %(year)d.")
            % {"id_year": parsed.birth_year, "year": date_of_birth.year}
        )
    if sex in (Sex.MALE, Sex.FEMALE) and parsed.sex != sex:
        raise PersonalIdError(_("It encodes the other sex than the student's."))
    return re.sub(r"\s+", "", value)
