"""Two devices save one cell at once, each over the value it saw: on two real database connections,
the second waits for the first's row and then meets its value, so it is refused as a conflict;
the cell is written once (the offline grade book's compare-and-set, issue 14)."""

from __future__ import annotations

import threading
import time

from django.db import connection, transaction

from tests.security.races import _waiting_on_a_lock
from tests.security.test_closed_book import _sql, committed_class  # noqa: F401 -- a fixture
from transcripts.models import AssessmentChange, StudentYear
from transcripts.services import Cell, CellConflict, assessment_cell_save


def test_two_devices_saving_one_cell_at_once_write_it_once_and_the_second_meets_a_conflict(
    django_db_setup,  # the test database exists before the committed class is made (no `db`: it commits)
    committed_class,  # noqa: F811 -- the fixture imported above
    django_db_blocker,
):
    school, teacher, school_class, enrolment = committed_class
    cell = Cell(enrolment_id=enrolment.pk, field="conduct_term1")
    holding, release = threading.Event(), threading.Event()
    pid: list[int] = []
    second: dict[str, object] = {}

    def first_device() -> None:
        try:
            with school, transaction.atomic():
                assessment_cell_save(
                    actor=teacher, school=school, school_class=school_class, cell=cell, raw="K", expected=""
                )
                holding.set()
                release.wait(30)
        except Exception as exc:
            second["first_error"] = exc
            raise
        finally:
            connection.close()

    def second_device() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid.append(cursor.fetchone()[0])
            with school:
                second["saved"] = assessment_cell_save(
                    actor=teacher, school=school, school_class=school_class, cell=cell, raw="T", expected=""
                )
        except Exception as exc:  # what the save raised is what the test checks
            second["error"] = exc
        finally:
            connection.close()

    with django_db_blocker.unblock():
        try:
            one = threading.Thread(target=first_device)
            one.start()
            assert holding.wait(20), f"the first device did not save: {second}"
            two = threading.Thread(target=second_device)
            two.start()
            waited = False
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and two.is_alive():
                if pid and _waiting_on_a_lock(pid[0]):
                    waited = True
                    break
                time.sleep(0.02)
            release.set()
            one.join(30)
            two.join(30)

            assert waited, "the second save did not wait for the first one's row"
            error = second.get("error")
            assert isinstance(error, CellConflict), second
            assert (error.current, error.yours) == ("K", "T")
            with school:
                assert StudentYear.objects.get(enrolment_id=enrolment.pk).conduct_term1 == "K"
                assert AssessmentChange.objects.filter(enrolment_id=enrolment.pk).count() == 1
        finally:
            with school, transaction.atomic():
                _sql("SET LOCAL session_replication_role = replica")  # the audit trail is append-only
                AssessmentChange.objects.filter(enrolment_id=enrolment.pk).delete()
            connection.set_schema_to_public()
