"""The school's progress row follows its records to the Ministry and back: queued, acknowledged,
rejected with the Ministry's coded reasons, and a rejection leaves the count once its version is
corrected. The reference repository is a real separate process (mutual TLS); the relay runs here.
"""

from __future__ import annotations

import pytest
from django.db import connection

from portal.models import SchoolProgress
from portal.progress.services import progress_reconcile
from registry import ministry
from tests.registry.test_relay import point_at, relay_until_done, repository  # noqa: F401 -- fixtures
from tests.signing_kit import issue
from tests.transcripts.test_year_close import complete_class  # noqa: F401
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.models import YearRecord
from transcripts.records.services import year_record_correct, year_record_correction_approve

pytestmark = pytest.mark.slow

YEAR = "2025-2026"


def row(school) -> SchoolProgress:
    connection.set_schema_to_public()
    return SchoolProgress.objects.get(school=school, school_year=YEAR)


def no_drift(school) -> None:
    drifts = progress_reconcile(schools=[school])
    assert drifts == [], [d.changes for d in drifts]


def test_rejections_by_reason_and_acknowledgements_reach_the_row(
    repository,  # noqa: F811
    settings,
    homeroom_teacher,
    principal,
    school,
    records,  # noqa: F811
):
    progress_reconcile(schools=[school])  # the fixtures wrote scores past the services
    before = row(school)
    point_at(repository, settings)  # the repository does not know the school yet: unknown_school
    try:
        issued = [
            issue(r, homeroom_teacher=homeroom_teacher, principal=principal, school=school) for r in records
        ]
        assert row(school).records_issued == before.records_issued + 2
        relay_until_done()
        rejected = row(school)
        assert rejected.records_rejected == before.records_rejected + 2
        assert rejected.rejections == {"unknown_school": 2}
        no_drift(school)

        # The school is registered; one rejected record is corrected: its rejection is no longer
        # counted, its new version is acknowledged.
        repository.schools_add(school.code)
        connection.set_tenant(school)
        record = YearRecord.objects.get(pk=issued[0].pk)
        draft = year_record_correct(actor=homeroom_teacher, school=school, record=record, reason="Gửi lại")
        draft = year_record_correction_approve(actor=principal, school=school, record=draft)
        assert row(school).rejections == {"unknown_school": 1}
        issue(draft, homeroom_teacher=homeroom_teacher, principal=principal, school=school)
        relay_until_done()
    finally:
        ministry.http_client_reset()
    current = row(school)
    assert (current.records_rejected, current.records_acknowledged) == (
        before.records_rejected + 1,
        before.records_acknowledged + 1,
    )
    assert current.rejections == {"unknown_school": 1}
    no_drift(school)
