"""A real schema migration over several schools: replayed from the template, resumable, and
per school when it runs Python.

The migrations are real: a copy of the schools app's migrations in a temporary package
(MIGRATION_MODULES), with two more that add a column and an index to the student table (or a
column and a RunPython). The data is committed (migrate_schemas commits per school) and five
schools are cloned for the test; everything is taken away again afterwards, the province's
schools and the template put back as they were.
"""

from __future__ import annotations

import importlib
import shutil
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.test.utils import override_settings
from django_tenants.signals import schema_migrated

from portal.clone import schema_clone
from portal.migrate_fast import plan_refusal
from portal.models import School
from portal.provisioning import migration_state_current

COLUMN = "migfast_note"
INDEX = "schools_stu_migfast_idx"
CODES = [f"t-migfast-{i}" for i in range(1, 6)]

ADD_COLUMN = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("schools", "{leaf}")]
    operations = [
        migrations.AddField(
            model_name="student",
            name="migfast_note",
            field=models.CharField(max_length=40, null=True, blank=True),
        ),
    ]
"""
ADD_INDEX = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("schools", "0098_migfast_note")]
    operations = [
        migrations.AddIndex(
            model_name="student",
            index=models.Index(fields=["migfast_note"], name="schools_stu_migfast_idx"),
        ),
    ]
"""
PUBLIC_PYTHON = """
from django.db import migrations


def touch(apps, schema_editor):
    schema_editor.execute("SELECT 1")


class Migration(migrations.Migration):
    dependencies = [("portal", "{leaf}")]
    operations = [migrations.RunPython(touch, migrations.RunPython.noop)]
"""
FILL_IN_PYTHON = """
from django.db import migrations


def fill(apps, schema_editor):
    Student = apps.get_model("schools", "Student")
    Student.objects.update(migfast_note="filled in Python")


class Migration(migrations.Migration):
    dependencies = [("schools", "0098_migfast_note")]
    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
"""


def copied_migrations(tmp_path: Path, app: str, new: dict[str, str], monkeypatch) -> str:
    """An app's migrations and new ones ({name: text with {leaf}}), as an importable package."""
    leaf = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes(app)[0][1]
    name = f"migfast_{app}_{uuid.uuid4().hex[:8]}"
    package = tmp_path / name
    package.mkdir()
    source = Path(importlib.import_module(f"{app}.migrations").__file__).parent
    for module in source.glob("*.py"):
        shutil.copy(module, package / module.name)
    for migration, text in new.items():
        (package / f"{migration}.py").write_text(text.replace("{leaf}", leaf))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def migrations_package(tmp_path: Path, second: str, monkeypatch) -> str:
    """The schools app's migrations and two new ones, as an importable package; its name."""
    return copied_migrations(
        tmp_path, "schools", {"0098_migfast_note": ADD_COLUMN, "0099_migfast_second": second}, monkeypatch
    )


def migrate(**options) -> str:
    # One process: the schools left to migrate one by one go to django-tenants' standard executor,
    # not its multiprocessing one, which forks this (by now multi-threaded) pytest process with
    # its connections; a run of the whole suite once read another statement's result there. The
    # command forks in its own process in production; what is tested here does not depend on it.
    options.setdefault("executor", "standard")
    out = StringIO()
    call_command("migrate_schemas", interactive=False, verbosity=1, stdout=out, **options)
    connection.set_schema_to_public()
    return out.getvalue()


def schemas_by_pk() -> list[str]:
    return list(School.objects.order_by("pk").values_list("schema_name", flat=True))


def catalogue(schema: str) -> dict[str, set]:
    """The student table's columns, the schema's constraints and indexes, its migrations."""
    queries = {
        "columns": """SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
                      FROM information_schema.columns WHERE table_schema = %s""",
        "constraints": """SELECT conrelid::regclass::text, conname, contype,
                                 CASE WHEN contype = 'c' THEN '' ELSE pg_get_constraintdef(oid) END
                          FROM pg_constraint WHERE connamespace = %s::regnamespace""",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
        "migrations": "SELECT app, name FROM {schema}.django_migrations",
    }
    found = {}
    with connection.cursor() as cursor:
        for name, sql in queries.items():
            if "{schema}" in sql:
                cursor.execute(sql.format(schema=schema))
            else:
                cursor.execute(sql, [schema])
            found[name] = {
                tuple(str(v).replace(schema, "<schema>") for v in row) for row in cursor.fetchall()
            }
    return found


def has_column(schema: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'schools_student' AND column_name = %s",
            [schema, COLUMN],
        )
        return cursor.fetchone() is not None


def new_rows(schema: str) -> list[str]:
    with connection.cursor() as cursor:
        sql = (
            f"SELECT name FROM {schema}.django_migrations WHERE app = 'schools' AND name LIKE %s ORDER BY id"  # noqa: S608
        )
        cursor.execute(sql, ["009%_migfast%"])
        return [name for (name,) in cursor.fetchall()]


@pytest.fixture
def five_schools(django_db_setup, django_db_blocker):
    """Five more schools, cloned from the template; all schemas put back afterwards."""
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        state = migration_state_current()
        for index, code in enumerate(CODES, start=1):
            school = School(
                code=code,
                name=f"Trường Thử Di Trú {index}",
                levels=["lower_secondary"],
                schema_name=School.schema_name_for(code),
                migration_state=state,
            )
            with transaction.atomic():
                school.save()
                schema_clone(template=settings.TENANT_BASE_SCHEMA, new_schema=school.schema_name, state=state)
        try:
            yield [School.schema_name_for(code) for code in CODES]
        finally:
            connection.set_schema_to_public()
            with connection.cursor() as cursor:
                for code in CODES:
                    cursor.execute(f'DROP SCHEMA IF EXISTS "{School.schema_name_for(code)}" CASCADE')
                School.objects.filter(code__in=CODES).delete()
                for schema in ["public", settings.TENANT_BASE_SCHEMA, *schemas_by_pk()]:
                    cursor.execute(
                        f'ALTER TABLE IF EXISTS "{schema}".schools_student DROP COLUMN IF EXISTS {COLUMN}'
                    )
                    cursor.execute(
                        f"""DELETE FROM "{schema}".django_migrations WHERE name LIKE '%%migfast%%'"""  # noqa: S608 - our schemas
                    )
            School.objects.update(migration_state=migration_state_current())


def test_a_structure_only_migration_is_replayed_and_leaves_each_school_as_django_would(
    five_schools, tmp_path, monkeypatch
):
    package = migrations_package(tmp_path, ADD_INDEX, monkeypatch)
    reference = five_schools[0]
    with override_settings(MIGRATION_MODULES={"schools": package}):
        # One school migrated the way django-tenants does it: the reference.
        migrate(schema_name=reference, tenant=True)
        current = migration_state_current()
        total = School.objects.count()

        output = migrate()

        assert "Template school_template migrated; 2 statements captured" in output
        assert f"{total - 1} of {total} school schemas to migrate" in output
        assert f"{total - 1} school schemas migrated by replaying captured SQL, 0 by Django" in output
        assert "0 left to migrate one by one" in output
        expected = catalogue(reference)
        assert (COLUMN in str(expected["columns"])) and (INDEX in str(expected["indexes"]))
        assert catalogue(settings.TENANT_BASE_SCHEMA) == expected
        for schema in schemas_by_pk():
            assert catalogue(schema) == expected, schema
            assert new_rows(schema) == ["0098_migfast_note", "0099_migfast_second"]
        assert set(School.objects.values_list("migration_state", flat=True)) == {current}

        assert f"0 of {total} school schemas to migrate" in migrate()


def test_a_run_stopped_after_some_schools_resumes_at_the_next(five_schools, tmp_path, monkeypatch):
    package = migrations_package(tmp_path, ADD_INDEX, monkeypatch)
    with override_settings(MIGRATION_MODULES={"schools": package}):
        schemas = schemas_by_pk()
        done: list[str] = []

        def stop_after_two(sender, schema_name, **kwargs):
            if schema_name not in schemas:  # the public schema
                return
            done.append(schema_name)
            if len(done) == 2:
                raise KeyboardInterrupt("the operator pressed Ctrl-C")

        schema_migrated.connect(stop_after_two, dispatch_uid="test-stop-after-two")
        try:
            with pytest.raises(KeyboardInterrupt):
                migrate()
        finally:
            schema_migrated.disconnect(dispatch_uid="test-stop-after-two")
        connection.set_schema_to_public()

        assert done == schemas[:2]
        assert has_column(settings.TENANT_BASE_SCHEMA)
        assert [has_column(s) for s in schemas] == [True, True] + [False] * (len(schemas) - 2)
        assert [bool(new_rows(s)) for s in schemas] == [True, True] + [False] * (len(schemas) - 2)
        current = migration_state_current()
        states = dict(School.objects.values_list("schema_name", "migration_state"))
        assert [states[s] == current for s in schemas] == [True, True] + [False] * (len(schemas) - 2)

        output = migrate()

        # The template is current: the first school left is migrated by Django, its SQL
        # captured and replayed in the others.
        left = len(schemas) - 2
        assert f"{left} of {len(schemas)} school schemas to migrate" in output
        assert (
            f"{left - 1} school schemas migrated by replaying captured SQL, 1 by Django while capturing"
            in output
        )
        expected = catalogue(settings.TENANT_BASE_SCHEMA)
        for schema in schemas:
            assert catalogue(schema) == expected, schema
        assert set(School.objects.values_list("migration_state", flat=True)) == {current}


def test_a_replay_that_fails_leaves_that_school_untouched_and_goes_to_django(
    five_schools, tmp_path, monkeypatch
):
    package = migrations_package(tmp_path, ADD_INDEX, monkeypatch)
    drifted = five_schools[2]
    with connection.cursor() as cursor:
        # An object of the index's name in one school: its CREATE INDEX fails after the column was added.
        cursor.execute(f"CREATE INDEX {INDEX} ON {drifted}.schools_subject (code)")
    with override_settings(MIGRATION_MODULES={"schools": package}):
        out = StringIO()
        with pytest.raises(Exception, match=INDEX):  # Django fails there too, and says so
            call_command("migrate_schemas", interactive=False, verbosity=1, stdout=out, executor="standard")
        connection.set_schema_to_public()
        output = out.getvalue()
        assert "1 left to migrate one by one" in output
        assert f'1 one by one: the replay failed: relation "{INDEX}" already exists' in output
        # The replay was one transaction: the column it had added before the failing index was
        # taken away again, so Django's own attempt could add it (0098) before failing (0099).
        assert new_rows(drifted) == ["0098_migfast_note"]
        assert School.objects.get(schema_name=drifted).migration_state != migration_state_current()
        for schema in five_schools[3:]:
            # The schools after it were replayed before Django was handed the failed one.
            assert new_rows(schema) == ["0098_migfast_note", "0099_migfast_second"]


def test_a_migration_with_runpython_is_run_per_school(five_schools, tmp_path, monkeypatch):
    package = migrations_package(tmp_path, FILL_IN_PYTHON, monkeypatch)
    with override_settings(MIGRATION_MODULES={"schools": package}):
        total = School.objects.count()

        output = migrate()

        assert "Schools will be migrated one by one: RunPython in schools.0099_migfast_second" in output
        assert (
            f"0 school schemas migrated by replaying captured SQL, 0 by Django while capturing, {total} left"
            in output
        )
        for schema in schemas_by_pk():
            assert new_rows(schema) == ["0098_migfast_note", "0099_migfast_second"]
        # The Python ran in each school: the test school's students were filled in.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*), count({COLUMN}) FROM sch_t_th_a.schools_student")  # noqa: S608
            students, filled = cursor.fetchone()
        assert students and filled == students
        assert set(School.objects.values_list("migration_state", flat=True)) == {migration_state_current()}


def test_a_public_apps_runpython_in_the_same_release_does_not_stop_the_replay(
    five_schools, tmp_path, monkeypatch
):
    # The router runs a public app's operations in the public schema only: in a school such a
    # migration is a django_migrations row, whatever it holds.
    schools_package = migrations_package(tmp_path, ADD_INDEX, monkeypatch)
    portal_package = copied_migrations(
        tmp_path, "portal", {"0999_migfast_public": PUBLIC_PYTHON}, monkeypatch
    )
    with override_settings(MIGRATION_MODULES={"schools": schools_package, "portal": portal_package}):
        total = School.objects.count()

        output = migrate()

        assert f"{total} school schemas migrated by replaying captured SQL, 0 by Django" in output
        expected = catalogue(settings.TENANT_BASE_SCHEMA)
        assert ("portal", "0999_migfast_public") in expected["migrations"]
        for schema in schemas_by_pk():
            assert catalogue(schema) == expected, schema
        assert set(School.objects.values_list("migration_state", flat=True)) == {migration_state_current()}


def _refusal(*operations, app: str = "schools", atomic: bool = True) -> str | None:
    from django.db import migrations

    attributes = {"operations": list(operations), "atomic": atomic}
    migration = type("Migration", (migrations.Migration,), attributes)("0999_x", app)
    connection.set_schema("sch_t_th_a")
    try:
        return plan_refusal([(migration, False)])
    finally:
        connection.set_schema_to_public()


def test_what_can_be_replayed_and_what_cannot(db):
    import uuid as uuid_module

    from django.db import migrations, models

    note = models.CharField(max_length=40, null=True)
    assert _refusal(migrations.AddField("student", "note", note)) is None
    assert (
        _refusal(migrations.AddField("student", "note", models.CharField(max_length=4, default="x"))) is None
    )
    assert _refusal(migrations.RunSQL("CREATE INDEX x ON schools_student (full_name)")) is None
    assert _refusal(migrations.RunPython(migrations.RunPython.noop)) == "RunPython in schools.0999_x"
    assert _refusal(migrations.RunSQL("UPDATE public.portal_school SET name = name")) == (
        "RunSQL naming a schema in schools.0999_x"
    )
    assert (
        _refusal(migrations.RunSQL("SET search_path = sch_x")) == "RunSQL naming a schema in schools.0999_x"
    )
    assert "default computed in Python" in _refusal(
        migrations.AddField("student", "token", models.UUIDField(default=uuid_module.uuid4))
    )
    assert (
        _refusal(migrations.AddField("student", "note", note), atomic=False) == "schools.0999_x is not atomic"
    )
    hidden = migrations.SeparateDatabaseAndState(database_operations=[migrations.RunPython(print)])
    assert _refusal(hidden) == "RunPython in schools.0999_x"
    # A public app's migration does nothing in a school schema: nothing to refuse there.
    assert _refusal(migrations.RunPython(print), app="portal") is None
