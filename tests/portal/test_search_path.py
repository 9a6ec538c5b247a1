"""`SET search_path` is issued only when it changes, and never skipped when PostgreSQL undid it.

portal.postgresql_backend remembers the search_path it set and skips the next SET while that path
is provably in effect (docs/architecture.md, "search_path: one SET when it changes"). The danger
is a SET that PostgreSQL undoes while the backend believes it holds: a SET inside a transaction
that rolls back (or a savepoint), a COMMIT of a failed transaction (which PostgreSQL turns into a
ROLLBACK), a new connection. Then the next request or task on that connection would read another
school's rows.

The proof uses a table of the same name in two schools and in public, one row each naming its
schema, committed (these tests run outside the per-test transaction, in autocommit, as the
portal's requests and Celery tasks do): whatever the backend believes, the row read says which
schema PostgreSQL actually used. `SHOW search_path` on the raw connection (not through Django's
cursor, so not through the backend) says what PostgreSQL holds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from config.celery import app
from portal.middleware import SchoolRouteMiddleware
from portal.models import School, User
from tests.conftest import SCHOOLS
from tests.transcripts.test_gradebook import book_url, first_enrolment, post_cell

PROBE = "tenancy_probe"  # a name without "search_path", which the backend watches for


class Boom(Exception):
    pass


def probe() -> str:
    """The label of the probe table that the connection's search_path finds first."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT label FROM {PROBE}")  # noqa: S608 - a constant
        return cursor.fetchone()[0]


def first_in_path() -> str:
    """The first schema of what PostgreSQL holds, asked on the raw connection (the backend neither
    sees nor counts it)."""
    shown = connection.connection.execute("SHOW search_path").fetchone()[0]
    return shown.split(",")[0].strip().strip('"')


def sets() -> int:
    return connection.search_path_sets


@pytest.fixture(scope="module")
def schools(django_db_setup, django_db_blocker) -> Iterator[dict[str, School]]:
    """The two test schools, each with a committed probe table (and public one), dropped after."""
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        found = {key: School.objects.get(code=SCHOOLS[key][0]) for key in ("school", "other_school")}
        labels = {"public": "public", **{s.schema_name: key for key, s in found.items()}}
        with connection.cursor() as cursor:
            for schema, label in labels.items():
                cursor.execute(f'DROP TABLE IF EXISTS "{schema}".{PROBE}')  # left by an interrupted run
                cursor.execute(f'CREATE TABLE "{schema}".{PROBE} (label text NOT NULL)')
                cursor.execute(f'INSERT INTO "{schema}".{PROBE} VALUES (%s)', [label])  # noqa: S608 - ours
        try:
            yield found
        finally:
            connection.set_schema_to_public()
            with connection.cursor() as cursor:
                for schema in labels:
                    cursor.execute(f'DROP TABLE IF EXISTS "{schema}".{PROBE}')


@pytest.fixture
def autocommit(schools, django_db_blocker) -> Iterator[dict[str, School]]:
    """Database access outside any test transaction, as a request or a task has it."""
    with django_db_blocker.unblock():
        assert connection.get_autocommit() and not connection.in_atomic_block
        connection.set_schema_to_public()
        try:
            yield schools
        finally:
            connection.set_schema_to_public()


def serve(school: School) -> str:
    """A request to one of the school's pages through the real routing middleware, answering with
    the probe's label (the view a page would be; nothing is written, so nothing to clean up)."""
    middleware = SchoolRouteMiddleware(lambda request: HttpResponse(probe()))
    response = middleware(RequestFactory().get(f"/truong/{school.code}/"))
    return response.content.decode()


# --- (a) a rollback inside a school, then another school and the same one -----------------------


def test_after_a_rollback_in_one_school_the_next_request_for_another_reads_that_other_school(autocommit):
    school, other = autocommit["school"], autocommit["other_school"]
    # Both schools' routes cached first: a route looked up in the public schema costs a SET of its
    # own, which a test earlier in the run may have left to do (a cleared cache).
    assert serve(school) == "school"
    assert serve(other) == "other_school"  # the SET for the other school committed (autocommit)
    assert serve(other) == "other_school"

    connection.set_tenant(school)
    with pytest.raises(Boom), transaction.atomic():
        assert probe() == "school"  # SET to the school, inside the transaction
        raise Boom
    # ROLLBACK undid that SET: PostgreSQL is back on the other school, and the backend knows it.
    assert first_in_path() == other.schema_name

    before = sets()
    assert serve(other) == "other_school"
    assert sets() == before  # provably in effect: no SET needed

    assert serve(school) == "school"
    assert sets() == before + 1


def test_after_a_rollback_in_a_school_the_next_request_for_the_same_school_sets_it_again(autocommit):
    school, other = autocommit["school"], autocommit["other_school"]
    assert serve(other) == "other_school"

    connection.set_tenant(school)
    with pytest.raises(Boom), transaction.atomic():
        assert probe() == "school"
        raise Boom

    # The wanted path is the one set inside the rolled-back transaction: trusting that SET would
    # read the other school here.
    before = sets()
    assert serve(school) == "school"
    assert sets() == before + 1
    connection.set_tenant(school)
    assert probe() == "school"  # then kept (autocommit): no SET for the next statement
    assert sets() == before + 1


def test_a_committed_transaction_keeps_its_set_and_a_failed_one_committed_does_not(autocommit):
    school, other = autocommit["school"], autocommit["other_school"]
    assert serve(other) == "other_school"

    connection.set_tenant(school)
    with transaction.atomic():
        assert probe() == "school"
    before = sets()
    assert probe() == "school"
    assert sets() == before  # COMMIT kept the SET

    connection.set_tenant(other)
    with transaction.atomic():
        assert probe() == "other_school"
        with pytest.raises(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")  # caught inside the block: Django still commits...
    # ...and PostgreSQL answers COMMIT of a failed transaction with a ROLLBACK: the SET is undone.
    assert first_in_path() == school.schema_name
    assert probe() == "other_school"
    assert serve(school) == "school"


# --- (b) savepoints -------------------------------------------------------------------------------


def test_a_set_undone_by_a_savepoint_rollback_is_set_again(autocommit):
    school, other = autocommit["school"], autocommit["other_school"]
    assert serve(other) == "other_school"

    connection.set_tenant(other)
    with transaction.atomic():
        assert probe() == "other_school"  # still set from the request: no SET
        sid = transaction.savepoint()
        connection.set_tenant(school)
        assert probe() == "school"  # SET after the savepoint
        transaction.savepoint_rollback(sid)
        # ROLLBACK TO SAVEPOINT undid the SET: back on the other school inside the transaction.
        assert first_in_path() == other.schema_name
        assert probe() == "school"  # set again

        with pytest.raises(Boom), transaction.atomic():  # the same through atomic
            assert probe() == "school"  # SET before the savepoint: kept
            connection.set_tenant(other)
            assert probe() == "other_school"  # SET after it: undone
            connection.set_tenant(school)
            raise Boom
        # Django releases the savepoint after rolling back to it: a statement that needs the
        # school's path, set again just before (a stale belief would release it on the other).
        assert first_in_path() == school.schema_name
        assert probe() == "school"

        connection.set_tenant(other)
        with pytest.raises(Boom), transaction.atomic():  # a SET made before the savepoint stays
            assert probe() == "other_school"
            raise Boom
        assert first_in_path() == other.schema_name
        assert probe() == "other_school"
    assert probe() == "other_school"  # committed
    assert first_in_path() == other.schema_name
    assert serve(school) == "school"


def test_a_savepoint_that_failed_on_the_server_is_rolled_back_without_a_set(autocommit):
    school, other = autocommit["school"], autocommit["other_school"]
    assert serve(school) == "school"

    connection.set_tenant(school)
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert probe() == "school"
        with pytest.raises(DatabaseError), transaction.atomic():
            connection.set_tenant(other)
            assert probe() == "other_school"
            connection.set_tenant(school)  # as a `with other_school:` block leaving on the error
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")  # the transaction is now in error
        # The rollback to the savepoint went through without a SET before it (it would fail).
        statements = [q["sql"] for q in queries]
        failed_at = statements.index("SELECT 1 / 0")
        assert statements[failed_at + 1].startswith("ROLLBACK TO SAVEPOINT"), statements
        assert probe() == "school"  # set again (the SET made in the savepoint was undone)
        assert first_in_path() == school.schema_name
    assert serve(other) == "other_school"
    assert serve(school) == "school"


# --- (c) Celery tasks switching schools on one connection ----------------------------------------


@app.task(name="tests.portal.search_path_probe")
def probe_task(fail: bool = False) -> str:
    """Reads the probe in the task's school (tenant-schemas-celery switches it before the task)."""
    if fail:
        with transaction.atomic():
            probe()
            raise Boom
    return probe()


def run(task_schema: str, *, fail: bool = False):
    return probe_task.apply(kwargs={"fail": fail}, headers={"_schema_name": task_schema})


def test_tasks_for_different_schools_each_read_their_own_after_one_fails(autocommit):
    school, other = autocommit["school"], autocommit["other_school"]

    assert run(other.schema_name).get() == "other_school"
    failed = run(school.schema_name, fail=True)
    assert failed.failed() and isinstance(failed.result, Boom)
    assert run(other.schema_name).get() == "other_school"
    assert run(school.schema_name).get() == "school"
    assert run("public").get() == "public"
    assert run(school.schema_name).get() == "school"


# --- A new connection, and statements changing the path behind the backend -----------------------


def test_a_new_connection_gets_its_path_set(autocommit):
    school = autocommit["school"]
    assert serve(school) == "school"
    connection.set_tenant(school)
    connection.close()
    before = sets()
    assert probe() == "school"
    assert sets() == before + 1


def test_a_statement_that_changes_the_path_makes_it_unknown(autocommit):
    school = autocommit["school"]
    connection.set_tenant(school)
    assert probe() == "school"
    with connection.cursor() as cursor:
        cursor.execute("SET search_path = public")  # as django-tenants' introspection does
    assert probe() == "school"

    connection.set_tenant(school)
    with connection.cursor() as cursor:
        cursor.execute("RESET ALL")
    assert probe() == "school"


def test_a_transaction_ended_behind_django_is_not_trusted(autocommit):
    school, other = autocommit["school"], autocommit["other_school"]
    assert serve(other) == "other_school"

    connection.set_tenant(school)
    transaction.set_autocommit(False)
    try:
        assert probe() == "school"  # SET inside the transaction psycopg began
        connection.connection.execute("ROLLBACK")  # not through Django: the backend did not see it
        assert probe() == "school"
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)
    assert probe() == "school"


# --- (d) one SET per request ------------------------------------------------------------------------


def _search_path_sets(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("SET search_path")]


def test_a_grade_book_page_issues_one_set_and_none_when_the_connection_is_there_already(
    client_as, subject_teacher, school, secondary_class
):
    client = client_as(subject_teacher)
    url = book_url(school, secondary_class)
    client.get(url)  # warm: the school's route, the session
    connection.set_schema_to_public()
    User.objects.count()  # the connection on public, as after a public page

    with CaptureQueriesContext(connection) as first:
        assert client.get(url).status_code == 200
    assert len(_search_path_sets(first)) == 1, [q["sql"][:80] for q in first]
    assert first[0]["sql"].startswith("SET search_path")
    assert len(first) > 5  # the page's own statements ran after it, without one each

    with CaptureQueriesContext(connection) as again:  # the same school on the same connection
        assert client.get(url).status_code == 200
    assert _search_path_sets(again) == []
    assert len(again) == len(first) - 1


def test_a_cell_save_issues_one_set(client_as, subject_teacher, school, secondary_class):
    client = client_as(subject_teacher)
    enrolment = first_enrolment(secondary_class).pk
    post_cell(client, school, secondary_class, enrolment=enrolment, field="regular_1", value="5")
    connection.set_schema_to_public()
    User.objects.count()

    with CaptureQueriesContext(connection) as queries:
        response = post_cell(
            client, school, secondary_class, enrolment=enrolment, field="regular_2", value="6"
        )
    assert response.status_code == 200, response.content
    assert len(_search_path_sets(queries)) == 1, [q["sql"][:80] for q in queries]
