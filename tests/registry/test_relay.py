"""The relay against the reference repository, a real separate process over mutual TLS.

Each test issues records through the lifecycle (the outbox rows are written by it), runs the
relay (registry.forwarding.relay_run) until nothing is left to do, and counts on the
repository's side: every message received once, each version accepted at most once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import connection
from django.utils.html import escape
from django.utils.translation import override

from registry import ministry
from registry.choices import MessageKind, OutboxState, RejectionCode
from registry.forwarding import rejection_text, relay_run
from registry.models import OutboxMessage
from signing import ca
from tests.reference.ministry_service import MinistryService
from tests.signing_kit import issue
from transcripts.models import YearRecord, YearRecordEvent, YearRecordStatus
from transcripts.records.services import (
    year_record_correct,
    year_record_correction_approve,
    year_record_revoke,
)

pytestmark = pytest.mark.slow

S = OutboxState
FINAL = {S.ACKNOWLEDGED, S.REJECTED, S.VOID, S.DEAD}


@pytest.fixture
def repository(signing_trust, tmp_path_factory) -> Iterator[MinistryService]:
    """A fresh repository per test: the database is rolled back between tests, so the same record
    ids come back with other bytes, which a repository that remembered them would refuse (409)."""
    folder = tmp_path_factory.mktemp("repository-trust")
    roots, issuing = folder / "roots.pem", folder / "issuing.pem"
    roots.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in signing_trust.ca.roots))
    issuing.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in signing_trust.ca.chain))
    service = MinistryService(trust_roots=[roots], untrusted=[issuing])
    try:
        yield service
    finally:
        service.stop()


def point_at(repository: MinistryService, settings) -> None:
    """The portal's settings pointed at `repository` (its URL, CA, the Department's certificate)."""
    settings.HOCBA_MINISTRY_URL = repository.url + "/"
    settings.HOCBA_MINISTRY_TOKEN = repository.token
    settings.HOCBA_MINISTRY_CA = str(repository.ca_path)
    settings.HOCBA_MINISTRY_CLIENT_CERT = str(repository.client_cert_path)
    settings.HOCBA_MINISTRY_CLIENT_KEY = str(repository.client_key_path)
    settings.HOCBA_FORWARD_BACKOFF_BASE = 0  # retries at once: the tests count, they do not wait
    ministry.http_client_reset()


@pytest.fixture
def forwarding(repository, settings, school) -> Iterator[MinistryService]:
    """The portal pointed at the repository; the test school registered; no faults."""
    point_at(repository, settings)
    repository.faults(
        error_rate=0, latency_ms=0, drop_rate=0, throttle_next=0, retry_after=0, crash_after_store_next=0
    )
    repository.schools_add(school.code)
    try:
        yield repository
    finally:
        ministry.http_client_reset()


def relay_until_done(timeout: float = 60) -> dict[str, int]:
    """Run the relay until every message is final; the outcomes counted over the runs."""
    connection.set_schema_to_public()
    totals: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = relay_run(worker="test-relay", seconds=10)
        for outcome, n in report.as_dict().items():
            totals[outcome] = totals.get(outcome, 0) + n
        if not OutboxMessage.objects.exclude(state__in=FINAL).exists():
            return totals
        time.sleep(0.2)
    states = list(OutboxMessage.objects.values_list("record_id", "kind", "state"))
    raise AssertionError(f"The relay did not finish in {timeout} s: {states}")


def on_the_repository(repository: MinistryService, record_ids: set[str]) -> dict[tuple[str, str, int], dict]:
    held = {
        (m["kind"], m["record_id"], m["version"]): m
        for m in repository.state()["messages"]
        if m["record_id"] in record_ids
    }
    assert all(m["accepted_count"] <= 1 for m in held.values()), "a version was accepted twice"
    return held


def test_issued_records_reach_the_repository_and_are_acknowledged(
    forwarding, homeroom_teacher, principal, school, records
):
    issued = [
        issue(r, homeroom_teacher=homeroom_teacher, principal=principal, school=school) for r in records
    ]
    outcomes = relay_until_done()
    assert outcomes.get("received") == 2 and outcomes.get("acknowledged") == 2
    assert set(OutboxMessage.objects.values_list("state", flat=True)) == {S.ACKNOWLEDGED}
    assert not OutboxMessage.objects.filter(document__isnull=False).exists()  # dropped once acknowledged

    connection.set_tenant(school)
    for record in issued:
        record.refresh_from_db()
        assert record.status == YearRecordStatus.ACKNOWLEDGED
        steps = list(record.events.order_by("pk").values_list("to_status", flat=True))
        assert steps[-3:] == ["issued", "queued", "acknowledged"]
    held = on_the_repository(forwarding, {r.record_id for r in issued})
    assert {(k, m["status"], m["accepted_count"]) for k, m in held.items()} == {
        (("submit", r.record_id, 1), "accepted", 1) for r in issued
    }


def test_a_correction_replaces_and_a_revocation_cancels_in_order(
    forwarding, homeroom_teacher, principal, school, records
):
    record = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    draft = year_record_correct(actor=homeroom_teacher, school=school, record=record, reason="Sai điểm")
    draft = year_record_correction_approve(actor=principal, school=school, record=draft)
    v2 = issue(draft, homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    connection.set_tenant(school)
    year_record_revoke(
        actor=principal, school=school, record=YearRecord.objects.get(pk=v2.pk), reason="Cấp nhầm"
    )

    relay_until_done()
    messages = list(OutboxMessage.objects.filter(record_id=record.record_id).order_by("pk"))
    assert [(m.kind, m.version, m.state) for m in messages] == [
        (MessageKind.SUBMIT, 1, S.ACKNOWLEDGED),
        (MessageKind.REPLACE, 2, S.ACKNOWLEDGED),
        (MessageKind.CANCEL, 2, S.ACKNOWLEDGED),
    ]
    held = on_the_repository(forwarding, {record.record_id})
    assert [
        held[k]["status"] for k in (("submit", record.record_id, 1), ("replace", record.record_id, 2))
    ] == [
        "accepted",
        "accepted",
    ]
    assert held["cancel", record.record_id, 2]["status"] == "accepted"
    # The repository received them in the order they were issued.
    order = [m["kind"] for m in forwarding.state()["messages"] if m["record_id"] == record.record_id]
    assert order == ["submit", "replace", "cancel"]


@pytest.fixture
def distrusting_repository(tmp_path_factory) -> Iterator[MinistryService]:
    """A repository whose trust store holds another CA: our signatures are not trusted there."""
    stranger = ca.dev_ca("Một CA khác")
    roots = tmp_path_factory.mktemp("stranger-trust") / "roots.pem"
    roots.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in stranger.roots))
    service = MinistryService(trust_roots=[roots])
    try:
        yield service
    finally:
        service.stop()


def test_a_rejection_reaches_the_record_with_the_ministrys_coded_reason(
    distrusting_repository, settings, homeroom_teacher, principal, school, records
):
    point_at(distrusting_repository, settings)
    distrusting_repository.schools_add(school.code)
    try:
        issued = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
        outcomes = relay_until_done()
    finally:
        ministry.http_client_reset()
    assert outcomes.get("rejected") == 1
    message = OutboxMessage.objects.get(record_id=issued.record_id)
    assert message.state == S.REJECTED
    assert [r["code"] for r in message.reasons] == ["signature"] * 3  # each of the three signatures
    assert message.document is not None  # kept: only an acknowledged message drops it

    connection.set_tenant(school)
    issued.refresh_from_db()
    assert issued.status == YearRecordStatus.REJECTED
    note = YearRecordEvent.objects.get(record=issued, to_status="rejected").note
    with override("en"):
        assert str(RejectionCode.SIGNATURE.label) in rejection_text(message.reasons)
    assert note == rejection_text(message.reasons)
    held = on_the_repository(distrusting_repository, {issued.record_id})
    assert held["submit", issued.record_id, 1]["status"] == "rejected"


def test_the_school_reads_the_rejection_on_the_class_page_and_its_leaders_on_the_front_page(
    distrusting_repository, settings, homeroom_teacher, principal, school, records, client_as
):
    point_at(distrusting_repository, settings)
    distrusting_repository.schools_add(school.code)
    try:
        issued = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
        relay_until_done()
    finally:
        ministry.http_client_reset()
    reason = rejection_text(OutboxMessage.objects.get(record_id=issued.record_id).reasons)  # in Vietnamese
    class_page = f"/truong/{school.code}/so-diem/ho-so/lop/{issued.enrolment.school_class_id}/"
    front_page = f"/truong/{school.code}/"

    page = client_as(homeroom_teacher).get(class_page).content.decode()
    assert "Lý do của Bộ:" in page and escape(reason) in page
    assert "Bị Bộ từ chối" in page or "từ chối" in page
    assert "Bộ từ chối các học bạ sau" not in client_as(homeroom_teacher).get(front_page).content.decode()

    front = client_as(principal).get(front_page).content.decode()
    assert "Bộ từ chối các học bạ sau" in front
    assert escape(reason) in front and issued.record_id in front
    assert escape(issued.enrolment.student.full_name) in front
