"""The audit chain: each audit row chained to the previous one by the database (portal 0021).

Rows written by the real services (the audit log, a grade-book cell) get consecutive positions and
hashes computed here independently (sha256(previous hash || "<seq> <canonical text>")); the
canonical text does not depend on the session's settings; the seal of existing rows (the
migration's) gives the same hashes as the trigger; two connections inserting at once make one
linear chain; a clean chain passes `manage.py audit_verify` (exit status 0).
"""

# ruff: noqa: S608 -- table names made here, never from input

from __future__ import annotations

import hashlib
import threading
import time
import uuid

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from portal.audit_chain import PUBLIC_CHAINS, SCHOOL_CHAINS, Chain, audit_chain_verify, chain_check
from portal.choices import AuditAction
from portal.models import AuditEntry, School
from portal.services import audit_record
from schools.models import Subject
from transcripts.models import AssessmentChange
from transcripts.services import Cell, assessment_cell_save


def seal(schema: str, table: str) -> int:
    """Chain the table's rows again from scratch (the migration's seal), in the test's transaction.

    Around the guard as the superuser the tests are: the migration disables it by ALTER TABLE,
    which PostgreSQL refuses in a transaction that has written rows with checks still pending."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SELECT public.hocba_audit_chain_seal(%s::regclass)", [f"{schema}.{table}"])
        sealed = cursor.fetchone()[0]
        cursor.execute("SET LOCAL session_replication_role = origin")
        return sealed


def seal_all(*schools: School) -> None:
    """A known-good start whatever earlier tests did (a transactional test's flush empties public
    tables, not their heads): every chain of public and of these schools sealed again."""
    connection.set_schema_to_public()
    for table in PUBLIC_CHAINS:
        seal("public", table)
    for school in schools:
        for table in SCHOOL_CHAINS:
            seal(school.schema_name, table)


@pytest.fixture
def sealed(school):
    seal_all(school)
    return school


def chain_rows(schema: str, table: str) -> list[tuple[int, int, bytes, str]]:
    """(id, chain_seq, chain_hash, canonical text) in chain order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, chain_seq, chain_hash, public.hocba_audit_chain_text(t) FROM {schema}.{table} AS t "
            "ORDER BY chain_seq"
        )
        return [(i, s, bytes(h), text) for i, s, h, text in cursor.fetchall()]


def heads_written() -> None:
    """What the commit does: the deferred triggers write the chains' heads (the test's transaction
    is rolled back, never committed)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def head(schema: str, table: str) -> tuple[int, bytes] | None:
    heads_written()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq, hash FROM public.hocba_audit_chain_head WHERE schema_name = %s AND table_name = %s",
            [schema, table],
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], bytes(row[1]))


def expected_hash(previous: bytes, seq: int, text: str) -> bytes:
    return hashlib.sha256(previous + f"{seq} {text}".encode()).digest()


def assert_linear(rows: list[tuple[int, int, bytes, str]]) -> None:
    previous = b""
    for position, (_id, seq, digest, text) in enumerate(rows, start=1):
        assert seq == position
        assert digest == expected_hash(previous, seq, text)
        previous = digest


def test_audit_rows_are_chained_as_they_are_written_in_public_and_in_a_school(
    sealed, department_admin, subject_teacher, secondary_class
):
    school = sealed
    connection.set_schema_to_public()
    before = head("public", "portal_auditentry")
    for n in range(2):
        audit_record(
            actor=department_admin,
            action=AuditAction.SCHOOL_CHANGED,
            obj=school,
            summary=f"chain test {n}",
            changes={"note": [None, f"v{n}"]},
            school=school,
        )
    # Whatever the client sends for the chain columns, the database sets them.
    forged = AuditEntry.objects.create(
        action=AuditAction.SCHOOL_CHANGED,
        object_type="portal.school",
        object_id="1",
        summary="forged position",
        chain_seq=10**9,
        chain_hash=b"\x00" * 32,
    )
    rows = chain_rows("public", "portal_auditentry")
    assert_linear(rows)
    assert rows[-1][0] == forged.pk and rows[-1][1] == (before[0] if before else 0) + 3
    assert head("public", "portal_auditentry") == (rows[-1][1], rows[-1][2])

    connection.set_tenant(school)
    enrolment = secondary_class.enrolments.order_by("number").first()
    toan = Subject.objects.get(code="toan").pk
    for raw in ("7", "8.5"):
        assessment_cell_save(
            actor=subject_teacher,
            school=school,
            school_class=secondary_class,
            cell=Cell(enrolment_id=enrolment.pk, field="end", subject_id=toan, term=1),
            raw=raw,
        )
    assert AssessmentChange.objects.filter(enrolment=enrolment, field="end").count() == 2
    rows = chain_rows(school.schema_name, "transcripts_assessmentchange")
    assert_linear(rows)
    assert '"new": "8,5"' in rows[-1][3] and f'"actor_id": {subject_teacher.pk}' in rows[-1][3]
    assert head(school.schema_name, "transcripts_assessmentchange") == (rows[-1][1], rows[-1][2])


def test_the_canonical_text_does_not_depend_on_the_session_settings(sealed, department_admin):
    entry = audit_record(
        actor=department_admin, action=AuditAction.SCHOOL_CHANGED, obj=sealed, summary="settings"
    )

    def text() -> str:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT public.hocba_audit_chain_text(a) FROM portal_auditentry a WHERE id = %s", [entry.pk]
            )
            return cursor.fetchone()[0]

    plain = text()
    with connection.cursor() as cursor:
        cursor.execute(
            "SET LOCAL TimeZone = 'Asia/Ho_Chi_Minh'; SET LOCAL DateStyle = 'SQL, DMY'; "
            "SET LOCAL extra_float_digits = 0; SET LOCAL IntervalStyle = 'sql_standard'"
        )
    assert text() == plain
    assert "+00:00" in plain and '"chain_seq"' not in plain and '"chain_hash"' not in plain
    heads_written()
    assert chain_check(Chain("public", "portal_auditentry"), cursor=connection.cursor())[1] is None


def test_the_seal_of_existing_rows_gives_the_hashes_the_trigger_gave(
    sealed, subject_teacher, secondary_class
):
    school = sealed
    connection.set_tenant(school)
    toan = Subject.objects.get(code="toan").pk
    for enrolment in secondary_class.enrolments.order_by("number")[:3]:
        assessment_cell_save(
            actor=subject_teacher,
            school=school,
            school_class=secondary_class,
            cell=Cell(enrolment_id=enrolment.pk, field="mid", subject_id=toan, term=1),
            raw="6",
        )
    by_trigger = chain_rows(school.schema_name, "transcripts_assessmentchange")
    assert len(by_trigger) >= 3
    connection.set_schema_to_public()
    assert seal(school.schema_name, "transcripts_assessmentchange") == len(by_trigger)
    assert chain_rows(school.schema_name, "transcripts_assessmentchange") == by_trigger


def test_a_clean_chain_passes_the_command(sealed, department_admin, capsys):
    audit_record(actor=department_admin, action=AuditAction.SCHOOL_CHANGED, obj=sealed, summary="clean")
    heads_written()
    call_command("audit_verify", "--school", sealed.code)
    call_command("audit_verify", "--public-only")
    out = capsys.readouterr().out
    assert out.count("Chuỗi nhật ký nguyên vẹn") == 2  # Vietnamese first
    report = audit_chain_verify(school_code=sealed.code)
    assert report.ok and report.chains == len(SCHOOL_CHAINS) and report.rows >= 0


def test_an_unknown_school_or_table_is_refused_with_status_2(db):
    for args in (["--school", "khong-co"], ["--table", "portal_user"]):
        with pytest.raises(CommandError) as refused:
            call_command("audit_verify", *args)
        assert refused.value.returncode == 2
        assert "Không" in str(refused.value)


# --- Two connections at once ---------------------------------------------------------------------

PROBE = "audit_chain_probe_" + uuid.uuid4().hex[:8]


def _dsn() -> str:
    settings = connection.settings_dict
    return (
        f"host={settings['HOST']} port={settings['PORT']} dbname={settings['NAME']} user={settings['USER']}"
    )


def test_two_connections_inserting_at_once_make_one_linear_chain(db, django_db_blocker):
    """The second insert waits for the first transaction's head row lock, then follows it."""
    with django_db_blocker.unblock(), psycopg.connect(_dsn(), autocommit=True) as setup:
        setup.execute(
            f"CREATE TABLE public.{PROBE} (id bigserial PRIMARY KEY, note text NOT NULL, "
            "chain_seq bigint NOT NULL, chain_hash bytea NOT NULL); "
            f"CREATE TRIGGER zz_audit_chain BEFORE INSERT ON public.{PROBE} "
            "FOR EACH ROW EXECUTE FUNCTION public.hocba_audit_chain(); "
            f"CREATE CONSTRAINT TRIGGER zz_audit_chain_head AFTER INSERT ON public.{PROBE} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.hocba_audit_chain_flush()"
        )
        try:
            first = psycopg.connect(_dsn())
            second = psycopg.connect(_dsn())
            first.execute(f"INSERT INTO public.{PROBE} (note) VALUES ('first')")
            second_pid = second.execute("SELECT pg_backend_pid()").fetchone()[0]
            second.commit()
            done = threading.Event()

            def insert_second() -> None:
                second.execute(f"INSERT INTO public.{PROBE} (note) VALUES ('second')")
                second.commit()
                done.set()

            thread = threading.Thread(target=insert_second)
            thread.start()
            waited = False
            for _attempt in range(200):  # until the second insert waits on the head row (10 s at most)
                state = setup.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [second_pid]
                ).fetchone()
                if state and state[0] == "Lock":
                    waited = True
                    break
                time.sleep(0.05)
            assert waited and not done.is_set()
            first.commit()
            thread.join(10)
            assert done.is_set()
            first.close()
            second.close()
            rows = setup.execute(
                f"SELECT note, chain_seq, chain_hash, public.hocba_audit_chain_text(t) FROM public.{PROBE} t "
                "ORDER BY chain_seq"
            ).fetchall()
            assert [(note, seq) for note, seq, _h, _t in rows] == [("first", 1), ("second", 2)]
            assert bytes(rows[1][2]) == expected_hash(bytes(rows[0][2]), 2, rows[1][3])
            rows_checked, broken, trigger = chain_check(Chain("public", PROBE), cursor=setup.cursor())
            assert (rows_checked, broken, trigger) == (2, None, None)
        finally:
            setup.execute(f"DROP TABLE IF EXISTS public.{PROBE}")
            setup.execute("DELETE FROM public.hocba_audit_chain_head WHERE table_name = %s", [PROBE])


def test_a_savepoint_rolled_back_takes_its_rows_out_of_the_chain(sealed, department_admin):
    def write(summary: str) -> None:
        audit_record(actor=department_admin, action=AuditAction.SCHOOL_CHANGED, obj=sealed, summary=summary)

    write("kept 1")
    with pytest.raises(RuntimeError), transaction.atomic():
        write("rolled back")
        raise RuntimeError
    write("kept 2")
    rows = chain_rows("public", "portal_auditentry")
    assert_linear(rows)
    assert ['"kept 1"' in rows[-2][3], '"kept 2"' in rows[-1][3]] == [True, True]
    assert head("public", "portal_auditentry") == (rows[-1][1], rows[-1][2])
