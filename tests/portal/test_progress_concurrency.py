"""Two schools at once, and two writers in one school: the progress rows still equal a recount.

Committed data on real connections (one per thread): each school opens a school year of its own
for the test (2030-2031, not current), three writers enrol students into its classes at the same
time (two in school A, one in school B), each enrolment its own transaction. The recount of a
row is made after taking the row's lock, so a writer that waited counts what the other committed;
a recount made before the lock would lose a writer's change here. Everything the test made is
removed afterwards.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection, transaction

from portal.models import ProgressWeek, School, SchoolProgress
from portal.progress.services import progress_reconcile
from schools.models import CurriculumEntry, Enrolment, SchoolClass, SchoolYear, Student, Term
from schools.services import class_create, school_year_open, student_enrol
from tests.conftest import SCHOOLS, student_make

YEAR = "2030-2031"
PER_WRITER = 12
STARTS = dt.date(2030, 9, 5)


def _open(school: School, classes: list[str]) -> list[int]:
    with school, transaction.atomic():
        year = school_year_open(
            code=YEAR,
            starts_on=STARTS,
            ends_on=dt.date(2031, 5, 31),
            levels=list(school.levels),
            make_current=False,
        )
        return [
            class_create(school_year=year, name=name, grade=8, levels=list(school.levels)).pk
            for name in classes
        ]


def _remove(school: School) -> None:
    with school, transaction.atomic():
        Enrolment.objects.filter(school_class__school_year__code=YEAR).delete()
        Student.objects.filter(student_code__startswith="PGC-").delete()
        SchoolClass.objects.filter(school_year__code=YEAR).delete()
        CurriculumEntry.objects.filter(school_year__code=YEAR).delete()
        Term.objects.filter(school_year__code=YEAR).delete()
        SchoolYear.objects.filter(code=YEAR).delete()
    connection.set_schema_to_public()
    ProgressWeek.objects.filter(school=school, school_year=YEAR).delete()
    SchoolProgress.objects.filter(school=school, school_year=YEAR).delete()


def _enrol(school_class: SchoolClass, tag: str, n: int) -> None:
    # Every third student has no verified personal ID yet.
    student = student_make(
        f"PGC-{tag}-{n:02d}", f"Học Sinh {tag} {n}", 1, dt.date(2016, 1, 1 + n), personal_id=n % 3 != 0
    )
    student_enrol(student=student, school_class=school_class, enrolled_on=STARTS, number=n + 1)


class LastWords:
    """The two writers of school A end with overlapping transactions: the first has enrolled its
    last student (its row recounted and locked) and holds its transaction open until the second
    has enrolled its own last student and waits; a recount made before taking the lock would
    then miss the first's student for good."""

    def __init__(self) -> None:
        self.ready = threading.Barrier(2)  # both have made every other enrolment
        self.first_holds = threading.Event()
        self.second_started = threading.Event()


def _writer(
    school: School,
    class_id: int,
    tag: str,
    start: threading.Barrier,
    errors: list,
    role: str,
    last: LastWords,
) -> None:
    try:
        start.wait(20)
        with school:
            school_class = SchoolClass.objects.get(pk=class_id)
            for n in range(PER_WRITER - 1):
                with transaction.atomic():
                    _enrol(school_class, tag, n)
            if role:
                last.ready.wait(20)
            if role == "first":
                with transaction.atomic():
                    _enrol(school_class, tag, PER_WRITER - 1)
                    last.first_holds.set()
                    last.second_started.wait(20)
                    time.sleep(0.3)  # the second is now counting, or waiting for this row's lock
            elif role == "second":
                last.first_holds.wait(20)
                last.second_started.set()
                with transaction.atomic():
                    _enrol(school_class, tag, PER_WRITER - 1)
            else:
                with transaction.atomic():
                    _enrol(school_class, tag, PER_WRITER - 1)
    except BaseException as exc:  # reported by the test
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.slow
def test_concurrent_changes_in_two_schools_leave_rows_equal_to_a_recount(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        a = School.objects.get(code=SCHOOLS["school"][0])
        b = School.objects.get(code=SCHOOLS["other_school"][0])
        try:
            a_classes = _open(a, ["8X", "8Y"])
            (b_class,) = _open(b, ["8Z"])
            start = threading.Barrier(3)
            errors: list[BaseException] = []
            last = LastWords()
            threads = [
                threading.Thread(target=_writer, args=(a, a_classes[0], "A1", start, errors, "first", last)),
                threading.Thread(target=_writer, args=(a, a_classes[1], "A2", start, errors, "second", last)),
                threading.Thread(target=_writer, args=(b, b_class, "B1", start, errors, "", last)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            assert not errors, errors
            connection.set_schema_to_public()

            rows = {
                p.school_id: p for p in SchoolProgress.objects.filter(school__in=[a, b], school_year=YEAR)
            }
            missing = len([n for n in range(PER_WRITER) if n % 3 == 0])
            assert (rows[a.pk].students, rows[a.pk].students_without_personal_id, rows[a.pk].classes) == (
                2 * PER_WRITER,
                2 * missing,
                2,
            )
            assert (rows[b.pk].students, rows[b.pk].students_without_personal_id, rows[b.pk].classes) == (
                PER_WRITER,
                missing,
                1,
            )
            drifts = [d for d in progress_reconcile(schools=[a, b]) if d.school_year == YEAR]
            assert drifts == [], [(d.school.code, d.changes) for d in drifts]
        finally:
            _remove(a)
            _remove(b)
            connection.set_schema_to_public()
