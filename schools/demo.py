"""A demo school's 2025-2026 year at its close: classes, students, teachers.

`make run` seeds the four demo schools through registry/demo.py, which calls
transcripts.demo.school_demo_seed: this module makes the roster and the students' hidden traits,
transcripts/demo.py fills the year's assessments from them with the same random generator. So
every page has something realistic to show: class lists of 30-45 students with Vietnamese names
(a few of Lào Cai's ethnic minorities among them), personal ID numbers that agree with birth year
and sex (a few students still on a temporary code), a few weak students, one student over the
45-absence limit.

Deterministic (one random.Random seeded by the school code) and idempotent (nothing happens once
the year has classes). Everything is bulk-inserted; a whole school takes well under a second.
The names and places are data, not interface text: they are not translated.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass, field

from portal.models import School, User

from .choices import Sex
from .demo_data import (
    KINH_FAMILY,
    KINH_GIVEN,
    KINH_MIDDLE,
    KINH_PLACES,
    MINORITIES,
    STREETS,
    WARDS,
)
from .models import CurriculumEntry, Enrolment, SchoolClass, SchoolYear, Student, Subject
from .services import (
    CONTINUING,
    LOWER,
    PRIMARY,
    UPPER,
    class_create,
    school_year_open,
    teaching_assignment_set,
)

YEAR_CODE = "2025-2026"
YEAR_STARTS = dt.date(2025, 9, 5)
YEAR_ENDS = dt.date(2026, 5, 31)

# Classes per level, (name, grade); the first class of the school gets its demo homeroom teacher.
LEVEL_CLASSES = {
    PRIMARY: [("1A", 1), ("3A", 3), ("5A", 5), ("5B", 5)],
    LOWER: [("6A1", 6), ("9A1", 9)],
    UPPER: [("10A1", 10), ("12A1", 12)],
    CONTINUING: [("10B", 10), ("12B", 12)],
}
# Demo usernames are "<prefix>.gvcn" / "<prefix>.gvbm" (portal/demo.py).
LEVEL_PREFIX = {PRIMARY: "th", LOWER: "thcs", UPPER: "thpt", CONTINUING: "gdtx"}
# The centre has no subject teacher of its own: the visiting teacher (also at thpt-so1) teaches there.
SUBJECT_TEACHER = {"gdtx": "gv.thinhgiang"}
# Class sizes: primary at most 35 pupils a class, secondary at most 45 (one class is that full).
PRIMARY_SIZE = (30, 35)
SECONDARY_SIZE = (33, 40)
FULL_CLASS = 45
MISSING_IDS = 3  # students per school still waiting for a verified personal ID number
PROVINCE = "010"  # Lào Cai, the province of birth registration in every demo personal ID


@dataclass
class Learner:
    """One generated student, with the hidden traits the assessments are drawn from."""

    student: Student
    ability: float  # the student's usual score level (0-10)
    manner: float  # conduct/qualities: probability of the best level
    aptitude: dict[str, float] = field(default_factory=dict)  # per subject code
    weak: bool = False
    absent: bool = False  # the one student over the 45-absence limit


@dataclass
class Roster:
    """A newly seeded year's classes, learners (by class, in class-list order) and enrolments.

    `rng` is the school's generator as the students left it: transcripts.demo draws the
    assessments from it, so the demo comes out the same as when one module made both.
    """

    rng: random.Random
    classes: list[SchoolClass]
    learners: list[list[Learner]]
    enrolments: list[list[Enrolment]]
    curriculum: dict[int, list[CurriculumEntry]]


def school_roster_seed(
    school: School, users_by_username: dict[str, User], *, students_per_class: int | None = None
) -> Roster | None:
    """Seed the school's 2025-2026 classes, teachers and students; None if the year already has classes.

    Call it inside the school's schema and a transaction (transcripts.demo.school_demo_seed does).
    users_by_username holds the demo users (portal/demo.py) by username; the homeroom and subject
    teachers are looked up in it and left out when missing. students_per_class overrides the
    realistic class sizes (primary 30-35, secondary 33-40 and one class of 45), to keep tests small.
    """
    users = users_by_username
    levels = list(school.levels)
    year = SchoolYear.objects.filter(code=YEAR_CODE).first()
    if year is not None and year.classes.exists():
        return None
    if year is None:
        year = school_year_open(code=YEAR_CODE, starts_on=YEAR_STARTS, ends_on=YEAR_ENDS, levels=levels)
    rng = random.Random(school.code)  # noqa: S311 - demo data, not secrets: reproducible on purpose
    prefix = LEVEL_PREFIX[levels[0]]
    homeroom = users.get(f"{prefix}.gvcn")
    subject_teacher = users.get(SUBJECT_TEACHER.get(prefix, f"{prefix}.gvbm"))

    plan = [(name, grade) for level in levels for name, grade in LEVEL_CLASSES.get(level, [])]
    classes = [
        class_create(
            school_year=year,
            name=name,
            grade=grade,
            levels=levels,
            homeroom_teacher=homeroom if index == 0 else None,
        )
        for index, (name, grade) in enumerate(plan)
    ]
    subjects = {s.code: s for s in Subject.objects.all()}
    _assignments(classes, subjects, homeroom=homeroom, subject_teacher=subject_teacher)

    curriculum: dict[int, list[CurriculumEntry]] = {}
    for entry in CurriculumEntry.objects.filter(school_year=year).select_related("subject"):
        curriculum.setdefault(entry.grade, []).append(entry)

    sizes = _class_sizes(rng, classes, students_per_class)
    learners = _students(rng, school, classes, sizes)
    enrolments = _enrol(classes, learners)
    return Roster(rng=rng, classes=classes, learners=learners, enrolments=enrolments, curriculum=curriculum)


def _assignments(
    classes: list[SchoolClass], subjects: dict[str, Subject], *, homeroom, subject_teacher
) -> None:
    """Secondary: the subject teacher teaches Toán everywhere, the homeroom teacher Ngữ văn in
    their class. Primary: the subject teacher teaches Ngoại ngữ 1 from grade 3; the homeroom
    teacher enters the rest of their own class."""
    for school_class in classes:
        if school_class.grade <= 5:
            if subject_teacher is not None and school_class.grade >= 3:
                teaching_assignment_set(
                    school_class=school_class, subject=subjects["ngoai_ngu_1"], teacher=subject_teacher
                )
            continue
        if subject_teacher is not None:
            teaching_assignment_set(
                school_class=school_class, subject=subjects["toan"], teacher=subject_teacher
            )
        if homeroom is not None and school_class.homeroom_teacher_id == homeroom.pk:
            teaching_assignment_set(school_class=school_class, subject=subjects["ngu_van"], teacher=homeroom)


def _class_sizes(rng: random.Random, classes: list[SchoolClass], override: int | None) -> list[int]:
    if override is not None:
        return [override] * len(classes)
    sizes = []
    full_done = False
    for school_class in classes:
        if school_class.grade <= 5:
            sizes.append(rng.randint(*PRIMARY_SIZE))
        elif not full_done:
            sizes.append(FULL_CLASS)  # the grade book at the size a full secondary class has
            full_done = True
        else:
            sizes.append(rng.randint(*SECONDARY_SIZE))
    return sizes


def _students(
    rng: random.Random, school: School, classes: list[SchoolClass], sizes: list[int]
) -> list[list[Learner]]:
    """Per class, its learners (saved), ordered as Vietnamese class lists are: by given name."""
    continuing = CONTINUING in school.levels
    minority_share = 0.22 if continuing else 0.12
    total = sum(sizes)
    missing = set(rng.sample(range(total), min(MISSING_IDS, total)))
    used_ids: set[str] = set()
    per_class: list[list[Learner]] = []
    serial = 0
    very_weak_done = False
    for school_class, size in zip(classes, sizes, strict=True):
        learners = []
        for _i in range(size):
            learners.append(
                _learner(
                    rng,
                    grade=school_class.grade,
                    continuing=continuing,
                    minority=rng.random() < minority_share,
                    missing_id=serial in missing,
                    used_ids=used_ids,
                )
            )
            serial += 1
        learners.sort(key=lambda learner: _name_key(learner.student.full_name))
        primary = school_class.grade <= 5
        _traits(
            rng,
            learners,
            primary=primary,
            continuing=continuing,
            very_weak=not primary and not very_weak_done,
        )
        very_weak_done = very_weak_done or not primary
        for number, learner in enumerate(learners, start=1):
            learner.student.student_code = _student_code(school.code, school_class.name, number)
        per_class.append(learners)
    # The one learner over the 45-absence limit, in a secondary class (TT22/TT43 only count it).
    secondary = [learners for learners, c in zip(per_class, classes, strict=True) if c.grade >= 6]
    if secondary:
        candidates = [learner for learner in secondary[-1] if not learner.weak]
        rng.choice(candidates or secondary[-1]).absent = True
    Student.objects.bulk_create(
        [learner.student for learners in per_class for learner in learners], batch_size=1000
    )
    return per_class


def _learner(
    rng: random.Random, *, grade: int, continuing: bool, minority: bool, missing_id: bool, used_ids: set[str]
) -> Learner:
    sex = rng.choice([Sex.MALE, Sex.FEMALE])
    if minority:
        community = rng.choice(MINORITIES)
        family = rng.choice(community.family)
        full_name = f"{family} {rng.choice(community.middle[sex])} {rng.choice(community.given[sex])}"
        father = f"{family} {rng.choice(community.middle[Sex.MALE])} {rng.choice(community.given[Sex.MALE])}"
        mother_family = rng.choice(community.family)
        mother = f"{mother_family} Thị {rng.choice(community.given[Sex.FEMALE])}"
        ethnicity, places = community.ethnicity, list(community.places)
    else:
        family = rng.choice(KINH_FAMILY)
        full_name = f"{family} {rng.choice(KINH_MIDDLE[sex])} {rng.choice(KINH_GIVEN[sex])}"
        father = f"{family} {rng.choice(KINH_MIDDLE[Sex.MALE])} {rng.choice(KINH_GIVEN[Sex.MALE])}"
        mother = f"{rng.choice(KINH_FAMILY)} Thị {rng.choice(KINH_GIVEN[Sex.FEMALE])}"
        ethnicity, places = "Kinh", KINH_PLACES
    # Grade g in 2025-2026 is born in 2020 - g; some continuing-education learners are older.
    birth_year = 2020 - grade
    if continuing and rng.random() < 0.15:
        birth_year -= rng.choice([1, 1, 2])
    born = dt.date(birth_year, 1, 1) + dt.timedelta(days=rng.randrange(365))
    place = rng.choice(places)
    home_town = place if rng.random() < 0.7 else rng.choice(places)
    address = (
        f"Số {rng.randint(1, 200)}, đường {rng.choice(STREETS)}, phường {rng.choice(WARDS)}, tỉnh Lào Cai"
        if rng.random() < 0.6
        else f"Tổ {rng.randint(1, 30)}, phường {rng.choice(WARDS)}, tỉnh Lào Cai"
    )
    no_father = rng.random() < 0.03
    student = Student(
        personal_id=None if missing_id else _personal_id(rng, born, sex, used_ids),
        temporary_code=f"TAM-{PROVINCE}-{rng.randrange(10**8):08d}" if missing_id else "",
        full_name=full_name,
        sex=sex,
        date_of_birth=born,
        place_of_birth=place,
        ethnicity=ethnicity,
        home_town=home_town,
        current_address=address,
        father_name="" if no_father else father,
        mother_name=mother,
        policy_category="Con hộ nghèo" if minority and rng.random() < 0.25 else "",
    )
    return Learner(student=student, ability=0.0, manner=0.0)


def _personal_id(rng: random.Random, born: dt.date, sex: int, used: set[str]) -> str:
    """PPP G YY NNNNNN (schools/identity.py): G is 0/1 for the 1900s, 2/3 for the 2000s (male/female)."""
    century_sex = (born.year // 100 - 19) * 2 + (1 if sex == Sex.FEMALE else 0)
    while True:
        value = f"{PROVINCE}{century_sex}{born.year % 100:02d}{rng.randrange(10**6):06d}"
        if value not in used:
            used.add(value)
            return value


def _student_code(school_code: str, class_name: str, number: int) -> str:
    """<SCHOOL>-<class>-<nn>, the school code shortened if the whole would not fit 20 characters."""
    tail = f"-{class_name}-{number:02d}"
    return school_code.upper()[: 20 - len(tail)] + tail


def _traits(
    rng: random.Random, learners: list[Learner], *, primary: bool, continuing: bool, very_weak: bool
) -> None:
    """Hidden abilities, so that results come out as a school's usually do.

    Primary: about a quarter excellent, a quarter good, most of the rest "Hoàn thành", one pupil a
    class who struggles (a few C). Secondary: ~15 % strong, two weak students a class (averages
    below 5, re-assessment) and, when very_weak, one of them weaker still (a subject below 3.5).
    Continuing-education learners score a little lower on average.
    """
    weak = rng.sample(range(len(learners)), min(len(learners), 1 if primary else 2))
    for index, learner in enumerate(learners):
        roll = rng.random()
        if index in weak:
            learner.weak = True
            learner.ability = rng.gauss(5.6 if primary else 4.8, 0.25)
            learner.manner = 0.4
        elif primary and roll < 0.25:
            learner.ability, learner.manner = rng.gauss(9.3, 0.2), 0.995
        elif primary and roll < 0.5:
            learner.ability, learner.manner = rng.gauss(8.6, 0.25), 0.97
        elif primary:
            learner.ability, learner.manner = min(max(rng.gauss(7.4, 0.6), 6.2), 8.6), rng.uniform(0.5, 0.85)
        elif roll < 0.15:
            learner.ability, learner.manner = rng.gauss(8.7, 0.3), 0.95
        else:
            learner.ability = min(max(rng.gauss(6.5 if continuing else 7.0, 0.8), 5.4), 9.0)
            learner.manner = rng.uniform(0.6, 0.9)
    if very_weak and weak:
        learners[weak[0]].ability = 4.0


# --- Enrolments ---------------------------------------------------------------------------------------


def _enrol(classes: list[SchoolClass], learners: list[list[Learner]]) -> list[list[Enrolment]]:
    objs = [
        [
            Enrolment(
                student=learner.student, school_class=school_class, number=number, enrolled_on=YEAR_STARTS
            )
            for number, learner in enumerate(class_learners, start=1)
        ]
        for school_class, class_learners in zip(classes, learners, strict=True)
    ]
    Enrolment.objects.bulk_create([e for row in objs for e in row], batch_size=1000)
    return objs


_ALPHABET = "aăâbcdđeêfghijklmnoôơpqrstuưvwxyz"
# Dictionary order of the tones: ngang, huyền, hỏi, ngã, sắc, nặng.
_TONES = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}


def _word_key(word: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    letters, tones = [], []
    for char in word.lower():
        parts = unicodedata.normalize("NFD", char)
        tone = next((_TONES[p] for p in parts if p in _TONES), 0)
        base = unicodedata.normalize("NFC", "".join(p for p in parts if p not in _TONES))
        letters.append(_ALPHABET.index(base) if base in _ALPHABET else 100 + ord(base))
        tones.append(tone)
    return tuple(letters), tuple(tones)


def _name_key(full_name: str):
    """Class lists sort by the given name (the last word), then the family and middle names."""
    words = full_name.split()
    return (_word_key(words[-1]), [_word_key(w) for w in words[:-1]])
