"""Two users at once: a write racing the principal's approval of a class's year, on two real
database connections (each thread has its own), with the write caught waiting on the class lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, connections, transaction
from django.utils import timezone

from portal.models import School
from schools.models import SchoolClass


@dataclass
class RaceOutcome:
    waited: bool  # the write was seen waiting on a lock while the approval held the class
    result: object = None
    error: BaseException | None = None


def _waiting_on_a_lock(pid: int) -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


def race_the_approval(school: School, class_id: int, write: Callable[[], object]) -> RaceOutcome:
    """Hold the class row as the approval does (FOR UPDATE, closed_at set, not yet committed),
    start `write` in the school on another connection, wait until it waits on a lock (10 s at
    most), then commit the approval and return what the write did. Data must be committed: call
    inside django_db_blocker.unblock()."""
    approving, release = threading.Event(), threading.Event()
    pid: list[int] = []
    outcome = RaceOutcome(waited=False)

    def principal() -> None:
        try:
            with school, transaction.atomic():
                locked = SchoolClass.objects.select_for_update().get(pk=class_id)
                locked.closed_at = timezone.now()
                locked.save(update_fields=["closed_at"])
                approving.set()
                release.wait(30)
        finally:
            connection.close()

    def writer() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid.append(cursor.fetchone()[0])
            with school:
                outcome.result = write()
        except Exception as exc:  # what the write raised is what the test checks
            outcome.error = exc
        finally:
            connection.close()

    first = threading.Thread(target=principal)
    first.start()
    try:
        assert approving.wait(20), "the approval did not take the class lock"
        second = threading.Thread(target=writer)
        second.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and second.is_alive():
            if pid and _waiting_on_a_lock(pid[0]):
                outcome.waited = True
                break
            time.sleep(0.02)
    finally:
        release.set()
        first.join(30)
    second.join(30)
    return outcome
