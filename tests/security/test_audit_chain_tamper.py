"""Tampering with the audit logs around their guards is caught by the chain (issue 16).

The append-only triggers refuse UPDATE and DELETE from the application; a superuser can switch
triggers off (session_replication_role = replica, as a restore or a DBA does) and edit, delete
or insert rows. `manage.py audit_verify` must then name the first broken row of the chain, say
what is wrong, and exit with status 1: an edited row, a deleted row in the middle, the last row
deleted, a row inserted with a forged hash, a row inserted with a well-computed hash but no head,
the head deleted, the chain trigger disabled, and a chain rewritten whole (caught by a published
head, the anchors). Everything here runs in the test's transaction and is rolled back.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection

from portal.audit_chain import BreakKind, audit_chain_heads, audit_chain_verify
from portal.choices import AuditAction
from portal.services import audit_record
from schools.models import Subject
from tests.portal.test_audit_chain import chain_rows, heads_written, seal, seal_all
from transcripts.services import Cell, assessment_cell_save

# A row written around every trigger, with the chain columns the attacker chooses.
FORGED_ROW = (
    "INSERT INTO portal_auditentry (at, action, object_type, object_id, summary, changes, chain_seq, "
    "chain_hash) VALUES (now(), 'school_changed', 'portal.school', '1', 'forged', '{}', %s, %s)"
)


@pytest.fixture
def audit_rows(school, department_admin):
    """Four fresh audit log rows at the end of a chain sealed from scratch: their (id, seq)."""
    seal_all(school)
    for n in range(4):
        audit_record(
            actor=department_admin, action=AuditAction.SCHOOL_CHANGED, obj=school, summary=f"row {n}"
        )
    heads_written()
    return [(row_id, seq) for row_id, seq, _h, _t in chain_rows("public", "portal_auditentry")[-4:]]


def as_superuser(sql: str, params=()) -> None:
    """Around every trigger, as a DBA can (the guard, the chain trigger): then back to normal."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


def public_break():
    report = audit_chain_verify(public_only=True, table="portal_auditentry")
    assert not report.ok
    assert len(report.breaks) == 1
    return report.breaks[0]


def command_fails(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exited:
        call_command("audit_verify", *args)
    assert exited.value.code == 1
    return capsys.readouterr().out


def test_an_edited_row_is_named(audit_rows, capsys):
    row_id, seq = audit_rows[1]
    as_superuser("UPDATE portal_auditentry SET summary = 'nothing happened' WHERE id = %s", [row_id])
    broken = public_break()
    assert (broken.kind, broken.seq, broken.row_id, broken.schema) == (
        BreakKind.EDITED,
        seq,
        row_id,
        "public",
    )
    out = command_fails(capsys, "--public-only")
    assert f"portal_auditentry [public] dòng #{seq} (id {row_id})" in out
    assert "không khớp với mã băm" in out


def test_an_edited_timestamp_or_actor_is_named_too(audit_rows, other_school_admin):
    row_id, seq = audit_rows[0]
    as_superuser("UPDATE portal_auditentry SET at = at - interval '1 day' WHERE id = %s", [row_id])
    assert (public_break().kind, public_break().seq) == (BreakKind.EDITED, seq)
    seal("public", "portal_auditentry")
    row_id, seq = audit_rows[2]
    as_superuser("UPDATE portal_auditentry SET actor_id = %s WHERE id = %s", [other_school_admin.pk, row_id])
    assert (public_break().kind, public_break().seq) == (BreakKind.EDITED, seq)


def test_a_deleted_row_in_the_middle_is_named(audit_rows, capsys):
    row_id, seq = audit_rows[1]
    next_id, next_seq = audit_rows[2]
    as_superuser("DELETE FROM portal_auditentry WHERE id = %s", [row_id])
    broken = public_break()
    assert (broken.kind, broken.seq, broken.row_id) == (BreakKind.MISSING, next_seq, next_id)
    assert f"#{seq}" in broken.message
    assert "bị xoá" in command_fails(capsys, "--public-only", "--table", "portal_auditentry")


def test_the_last_row_deleted_is_named(audit_rows, capsys):
    last_id, last_seq = audit_rows[-1]
    as_superuser("DELETE FROM portal_auditentry WHERE id = %s", [last_id])
    broken = public_break()
    assert (broken.kind, broken.seq) == (BreakKind.TAIL_DELETED, last_seq - 1)
    assert f"#{last_seq}" in broken.message
    assert "dòng cuối" in command_fails(capsys, "--public-only")


def test_every_row_deleted_is_named(audit_rows):
    as_superuser("DELETE FROM portal_auditentry")
    assert public_break().kind == BreakKind.TAIL_DELETED


def test_a_row_inserted_with_a_forged_hash_is_named(audit_rows):
    _last_id, last_seq = audit_rows[-1]
    as_superuser(
        FORGED_ROW,
        [last_seq + 1, b"\x01" * 32],
    )
    broken = public_break()
    assert (broken.kind, broken.seq) == (BreakKind.EDITED, last_seq + 1)


def test_a_row_inserted_with_a_well_computed_hash_but_no_head_is_named(audit_rows):
    """The attacker knows the functions: the row's hash follows, but the head did not move."""
    _last_id, last_seq = audit_rows[-1]
    as_superuser(
        FORGED_ROW,
        [last_seq + 1, b""],
    )
    as_superuser(
        "UPDATE portal_auditentry AS t SET chain_hash = public.hocba_audit_chain_step("
        "  (SELECT p.chain_hash FROM portal_auditentry p WHERE p.chain_seq = t.chain_seq - 1),"
        "  t.chain_seq, public.hocba_audit_chain_text(t)) WHERE t.chain_seq = %s",
        [last_seq + 1],
    )
    broken = public_break()
    assert (broken.kind, broken.seq) == (BreakKind.HEAD_MISMATCH, last_seq + 1)


def test_the_head_deleted_is_named(audit_rows):
    as_superuser(
        "DELETE FROM public.hocba_audit_chain_head "
        "WHERE schema_name = 'public' AND table_name = 'portal_auditentry'"
    )
    assert public_break().kind == BreakKind.NO_HEAD


def test_the_chain_trigger_disabled_is_named(school, capsys):
    seal_all(school)  # no row written in this transaction: ALTER TABLE is allowed
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE portal_auditentry DISABLE TRIGGER zz_audit_chain")
    assert public_break().kind == BreakKind.TRIGGER_OFF
    assert "đã bị tắt" in command_fails(capsys, "--public-only")


def test_an_edited_row_in_a_school_is_named_with_the_school(school, subject_teacher, secondary_class, capsys):
    seal_all(school)
    connection.set_tenant(school)
    toan = Subject.objects.get(code="toan").pk
    for enrolment in secondary_class.enrolments.order_by("number")[:3]:
        assessment_cell_save(
            actor=subject_teacher,
            school=school,
            school_class=secondary_class,
            cell=Cell(enrolment_id=enrolment.pk, field="end", subject_id=toan, term=1),
            raw="4",
        )
    heads_written()
    row_id, seq, _h, _t = chain_rows(school.schema_name, "transcripts_assessmentchange")[-2]
    as_superuser("UPDATE transcripts_assessmentchange SET new = '9,0' WHERE id = %s", [row_id])
    connection.set_schema_to_public()
    report = audit_chain_verify(school_code=school.code)
    assert [(b.kind, b.table, b.school, b.seq, b.row_id) for b in report.breaks] == [
        (BreakKind.EDITED, "transcripts_assessmentchange", school.code, seq, row_id)
    ]
    out = command_fails(capsys, "--school", school.code)
    assert f"trường {school.code} ({school.schema_name})" in out
    assert audit_chain_verify(public_only=True).ok  # the other chains hold


def test_a_chain_rewritten_whole_is_caught_by_its_published_head(audit_rows, tmp_path, capsys):
    heads = tmp_path / "heads.json"
    call_command("audit_verify", "--public-only", "--heads", str(heads))
    published = json.loads(heads.read_text())
    assert {"schema": "public", "table": "portal_auditentry"}.items() <= published[0].items() or any(
        h["table"] == "portal_auditentry" for h in published
    )
    row_id, _seq = audit_rows[1]
    as_superuser("UPDATE portal_auditentry SET summary = 'rewritten' WHERE id = %s", [row_id])
    seal("public", "portal_auditentry")  # the attacker recomputes every hash and the head
    assert audit_chain_verify(public_only=True).ok
    out = command_fails(capsys, "--public-only", "--anchors", str(heads))
    assert "không còn trong chuỗi" in out
    assert {h["table"] for h in audit_chain_heads()} >= {"portal_auditentry"}
