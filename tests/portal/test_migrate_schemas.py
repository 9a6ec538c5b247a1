"""migrate_schemas skips the schools already current, and resumes where an interrupted run stopped."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command
from django.db import connection

from portal.models import School
from portal.provisioning import migration_state_current, migration_state_of


def run_migrate() -> str:
    out = StringIO()
    call_command("migrate_schemas", interactive=False, verbosity=1, stdout=out)
    connection.set_schema_to_public()
    return out.getvalue()


def test_a_run_with_nothing_to_do_visits_no_school(db):
    total = School.objects.count()
    assert f"0 of {total} school schemas to migrate" in run_migrate()


def test_a_school_left_behind_is_migrated_and_recorded(db, school):
    School.objects.filter(pk=school.pk).update(migration_state="interrupted")
    total = School.objects.count()

    output = run_migrate()

    assert f"1 of {total} school schemas to migrate" in output
    school.refresh_from_db()
    assert school.migration_state == migration_state_current()
    assert f"0 of {total} school schemas to migrate" in run_migrate()


def test_the_digest_is_what_the_template_schema_has_applied(db):
    from django.db.migrations.loader import MigrationLoader

    on_disk = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM school_template.django_migrations")
        applied = set(cursor.fetchall())
    assert applied == on_disk
    assert migration_state_of(applied) == migration_state_current()
    assert migration_state_of(applied | {("schools", "9999_new")}) != migration_state_current()


def test_migrating_one_school_by_name_records_it_as_current(db, school):
    School.objects.filter(pk=school.pk).update(migration_state="behind")
    call_command(
        "migrate_schemas", schema_name=school.schema_name, tenant=True, interactive=False, verbosity=0
    )
    connection.set_schema_to_public()
    school.refresh_from_db()
    assert school.migration_state == migration_state_current()
