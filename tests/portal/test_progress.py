"""Progress per school (portal.SchoolProgress): kept by the schools' services in their own
transactions, equal to a recount after every change, rebuilt by the reconciliation.

The fixtures write some rows past the services (scores, conduct): each test starts from a
reconciled row, then changes the school only through services and checks, after each change,
that the row holds what a recount finds (the reconciliation reports no drift) and the figure the
change should have moved.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum

from portal.choices import AuditAction
from portal.models import AuditEntry, ProgressWeek, SchoolProgress
from portal.progress.services import progress_reconcile
from schools.choices import EnrolmentStatus
from schools.services import enrolment_close, student_enrol
from tests.conftest import student_make
from tests.signing_kit import issue
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures used below
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.models import YearRecordStatus
from transcripts.records.services import (
    year_record_confirm,
    year_record_forwarding_note,
    year_record_revoke,
    year_records_create,
)

YEAR = "2025-2026"
S = YearRecordStatus


def row(school) -> SchoolProgress:
    return SchoolProgress.objects.get(school=school, school_year=YEAR)


def no_drift(school) -> None:
    """The row equals a recount of the school (what the reconciliation would correct: nothing)."""
    schema = connection.schema_name
    drifts = progress_reconcile(schools=[school])
    assert drifts == [], [d.changes for d in drifts]
    if schema != connection.schema_name and schema != "public":
        connection.set_tenant(school)


def weeks_add_up(school) -> None:
    """The weeks of the year add up to the row's weekly figures."""
    current = row(school)
    sums = ProgressWeek.objects.filter(school=school, school_year=YEAR).aggregate(
        classes_approved=Sum("classes_approved"),
        records_signed=Sum("records_signed"),
        records_acknowledged=Sum("records_acknowledged"),
    )
    assert {name: total or 0 for name, total in sums.items()} == {
        "classes_approved": current.classes_approved,
        "records_signed": current.records_signed,
        "records_acknowledged": current.records_acknowledged,
    }


@pytest.fixture
def reconciled(school, in_school):
    """The school's row as the services left it, corrected once for what the fixtures wrote past
    them; the connection back on the school's schema."""
    progress_reconcile(schools=[school])
    connection.set_tenant(school)
    return row(school)


def test_the_row_follows_enrolments_and_personal_ids(school, reconciled, primary_class):
    before = row(school)
    newcomer = student_make("PG-NEW", "Hà Văn Mới", 1, dt.date(2015, 6, 1), personal_id=False)
    enrolment = student_enrol(
        student=newcomer, school_class=primary_class, enrolled_on=dt.date(2025, 10, 1), number=9
    )
    after = row(school)
    assert (after.students, after.students_without_personal_id) == (
        before.students + 1,
        before.students_without_personal_id + 1,
    )
    no_drift(school)

    connection.set_tenant(school)
    enrolment_close(
        actor=_admin(),
        school=school,
        enrolment=enrolment,
        on=dt.date(2025, 11, 1),
        status=EnrolmentStatus.LEFT,
    )
    after = row(school)
    assert (after.students, after.students_without_personal_id) == (
        before.students,
        before.students_without_personal_id,
    )
    no_drift(school)


def _admin():
    from portal.models import User

    return User.objects.get(username="school_admin")


def test_the_row_follows_a_class_from_approval_to_the_ministry(
    school,
    principal,
    homeroom_teacher,
    reconciled,
    approved_class,  # noqa: F811
):
    """Approval, records created, confirmed, signed and issued, queued and acknowledged, revoked:
    after each step the row equals a recount and moved as the step should."""
    school_class, _ = approved_class
    approved = row(school)
    assert approved.classes_approved == reconciled.classes_approved + 1
    assert approved.students_waiting_summer == 2  # the two sent to re-assessment / re-training
    no_drift(school)

    connection.set_tenant(school)
    created = year_records_create(actor=homeroom_teacher, school=school, school_class=school_class).created
    assert row(school).records_draft == approved.records_draft + 2
    no_drift(school)

    connection.set_tenant(school)
    first, second = sorted(created, key=lambda r: r.enrolment.number)
    year_record_confirm(actor=homeroom_teacher, school=school, record=first)
    assert row(school).records_confirmed == approved.records_confirmed + 1
    no_drift(school)

    issued = issue(second, homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    current = row(school)
    assert current.records_issued == approved.records_issued + 1
    assert current.records_draft == approved.records_draft  # both moved on
    no_drift(school)

    connection.set_tenant(school)
    year_record_forwarding_note(school=school, record_id=issued.record_id, version=1, to_status=S.QUEUED)
    year_record_forwarding_note(
        school=school, record_id=issued.record_id, version=1, to_status=S.ACKNOWLEDGED
    )
    current = row(school)
    assert (current.records_queued, current.records_acknowledged) == (
        approved.records_queued,
        approved.records_acknowledged + 1,
    )
    no_drift(school)
    weeks_add_up(school)

    connection.set_tenant(school)
    issued.refresh_from_db()
    year_record_revoke(actor=principal, school=school, record=issued, reason="Cấp nhầm")
    assert row(school).records_acknowledged == approved.records_acknowledged
    no_drift(school)
    weeks_add_up(school)


def test_reconciliation_finds_fixes_reports_and_audits_injected_drift(school, reconciled):
    connection.set_schema_to_public()
    SchoolProgress.objects.filter(pk=reconciled.pk).update(
        students=reconciled.students + 7, records_acknowledged=5, rejections={"schema": 3}
    )
    out = io.StringIO()
    call_command("progress_reconcile", "--school", school.code, stdout=out)
    report = out.getvalue()
    assert f"{school.code} {YEAR}:" in report
    assert f"students {reconciled.students + 7} → {reconciled.students}" in report
    assert "records_acknowledged 5 → " in report and "rejections" in report

    fixed = row(school)
    assert (fixed.students, fixed.records_acknowledged, fixed.rejections) == (
        reconciled.students,
        reconciled.records_acknowledged,
        reconciled.rejections,
    )
    entry = AuditEntry.objects.filter(action=AuditAction.PROGRESS_RECONCILED, school=school).latest("pk")
    assert entry.changes["students"] == [reconciled.students + 7, reconciled.students]
    # The fix of the weekly figure is a move of this week: the weeks still add up.
    weeks_add_up(school)

    out = io.StringIO()
    call_command("progress_reconcile", "--school", school.code, stdout=out)
    assert "No drift" in out.getvalue() or "Không" in out.getvalue()


def test_reconciliation_refuses_an_unknown_school_code(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no-such-school"):
        call_command("progress_reconcile", "--school", "no-such-school", stdout=io.StringIO())
