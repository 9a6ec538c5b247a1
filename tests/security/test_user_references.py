"""A school row that names a user names one that exists, checked by the database (issue 15).

The school tables' user columns have no foreign key to public.portal_user (each key added two
triggers to that one shared table per school, and provisioning slowed with every school). A
deferred constraint trigger per table, in the school's schema, checks them at commit instead
(portal 0020, schools 0006, transcripts 0016), and portal_user refuses to lose a row or change
an id. Raw SQL throughout: the database refuses by itself, whatever path writes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import uuid

import pytest
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.utils import timezone

from portal.models import School, User
from portal.provisioning import SchoolSpec, school_provision
from schools.models import SchoolClass, TeachingAssignment, Term
from tests.conftest import SCHOOLS
from transcripts.models import (
    AssessmentChange,
    AttachedRecord,
    YearRecord,
    YearRecordEvent,
    YearRecordSignature,
)

# Every user column of the school (tenant) apps: a column missing here fails the next test.
USER_COLUMNS = [
    (Term, "locked_by"),
    (SchoolClass, "homeroom_teacher"),
    (SchoolClass, "closed_by"),
    (TeachingAssignment, "teacher"),
    (AssessmentChange, "actor"),
    (AttachedRecord, "attached_by"),
    (YearRecord, "created_by"),
    (YearRecordEvent, "actor"),
    (YearRecordSignature, "signer"),
]
COLUMN_IDS = [f"{model._meta.db_table}.{name}" for model, name in USER_COLUMNS]
APPEND_ONLY = {AssessmentChange, AttachedRecord, YearRecordEvent, YearRecordSignature}
FOREIGN_VIOLATION = "23503"
_fake_ids = itertools.count(2_000_000_000)


def _nonexistent_user_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) + 1000 FROM public.portal_user")
        return cursor.fetchone()[0]


def _trigger_name(model) -> str:
    return f"{model._meta.db_table}_user_check"


def _placeholder(field: models.Field):
    """A value the column accepts (its other references are deferred keys, never checked here)."""
    if field.choices:
        return field.choices[0][0]
    if field.name == "sha256":  # of the placeholder document, b"x" (checked by the tables)
        return hashlib.sha256(b"x").hexdigest()
    if isinstance(field, models.ForeignKey):
        return next(_fake_ids)
    kind = field.get_internal_type()
    if kind in ("CharField", "TextField", "SlugField", "EmailField"):
        return "x"
    if kind == "BinaryField":
        return b"x"
    if kind == "JSONField":
        return {}
    if kind == "BooleanField":
        return False
    if kind == "DateTimeField":
        return timezone.now()
    if kind == "DateField":
        return dt.date(2026, 1, 1)
    if kind == "UUIDField":
        return uuid.uuid4()
    return 1


def _row_insert(model, user_field: str, user_id: int | None) -> None:
    """INSERT one row with `user_field` = user_id, every other required column a placeholder."""
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.name == user_field:
            value = user_id
        elif isinstance(field, models.ForeignKey) and field.related_model is User:
            value = None if field.null else _existing_user_id()
        elif field.null:
            value = None
        elif field.has_default():
            value = field.get_default()
        else:
            value = _placeholder(field)
        columns.append(connection.ops.quote_name(field.column))
        values.append(field.get_db_prep_save(value, connection))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608 - our tables
            f"VALUES ({', '.join(['%s'] * len(values))})",
            values,
        )


def _existing_user_id() -> int:
    return User.objects.order_by("pk").values_list("pk", flat=True).first()


def _check_now(model) -> None:
    """What the commit does: run this table's pending user checks (then defer the next ones again)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET CONSTRAINTS {_trigger_name(model)} IMMEDIATE")
        cursor.execute(f"SET CONSTRAINTS {_trigger_name(model)} DEFERRED")


def test_every_user_column_of_the_school_apps_is_listed_and_has_no_foreign_key():
    found = {
        (model, field.name)
        for app in settings.TENANT_APPS
        for model in apps.get_app_config(app).get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.ForeignKey) and field.related_model is User
    }
    assert found == set(USER_COLUMNS)
    assert all(not model._meta.get_field(name).db_constraint for model, name in USER_COLUMNS)


@pytest.mark.parametrize(("model", "field"), USER_COLUMNS, ids=COLUMN_IDS)
def test_an_unknown_user_is_refused_at_commit(in_school, model, field):
    missing = _nonexistent_user_id()
    with transaction.atomic():
        _row_insert(model, field, missing)  # deferred: the statement itself passes
        with pytest.raises(IntegrityError) as refused:
            _check_now(model)
        transaction.set_rollback(True)
    assert refused.value.__cause__.sqlstate == FOREIGN_VIOLATION
    assert f"no user {missing}" in str(refused.value)
    assert model._meta.get_field(field).column in str(refused.value)


@pytest.mark.parametrize(("model", "field"), USER_COLUMNS, ids=COLUMN_IDS)
def test_a_known_user_passes_and_null_where_the_column_allows_it(in_school, model, field):
    for user_id in [_existing_user_id()] + ([None] if model._meta.get_field(field).null else []):
        with transaction.atomic():
            _row_insert(model, field, user_id)
            _check_now(model)
            transaction.set_rollback(True)


@pytest.mark.parametrize(("model", "field"), USER_COLUMNS, ids=COLUMN_IDS)
def test_an_update_to_an_unknown_user_is_refused(in_school, model, field):
    column = connection.ops.quote_name(model._meta.get_field(field).column)
    table = connection.ops.quote_name(model._meta.db_table)
    missing = _nonexistent_user_id()
    with transaction.atomic():
        _row_insert(model, field, _existing_user_id())
        _check_now(model)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET {column} = %s WHERE id = (SELECT max(id) FROM {table})",  # noqa: S608
                    [missing],
                )
        except DatabaseError as guard:
            # Append-only tables refuse any update first, with their own error.
            assert model in APPEND_ONLY
            assert "append-only" in str(guard)
            transaction.set_rollback(True)
            return
        assert model not in APPEND_ONLY
        with pytest.raises(IntegrityError) as refused:
            _check_now(model)
        transaction.set_rollback(True)
    assert refused.value.__cause__.sqlstate == FOREIGN_VIOLATION


def test_the_check_runs_at_commit_outside_tests_transactions(django_db_setup, django_db_blocker):
    """A real commit (no test transaction): refused when the transaction commits, not before."""
    with django_db_blocker.unblock():
        school = School.objects.get(code=SCHOOLS["school"][0])
        missing = _nonexistent_user_id()
        with school:
            assignment = TeachingAssignment.objects.order_by("pk").first()
            before = assignment.teacher_id
            with pytest.raises(IntegrityError, match=f"no user {missing}"), transaction.atomic():
                TeachingAssignment.objects.filter(pk=assignment.pk).update(teacher_id=missing)
                assert TeachingAssignment.objects.get(pk=assignment.pk).teacher_id == missing
            assert TeachingAssignment.objects.get(pk=assignment.pk).teacher_id == before
        connection.set_schema_to_public()


def test_a_user_is_never_deleted_and_keeps_its_id(db):
    user = User.objects.create_user(username="never.deleted", password=None)
    with (
        pytest.raises(IntegrityError, match="never deleted"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM public.portal_user WHERE id = %s", [user.pk])
    with pytest.raises(IntegrityError, match="never changes"), transaction.atomic():
        User.objects.filter(pk=user.pk).update(id=user.pk + 1_000_000)
    User.objects.filter(pk=user.pk).update(is_active=False)  # deactivating is how a user goes
    assert User.objects.filter(pk=user.pk, is_active=False).exists()


def _portal_user_triggers() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.portal_user'::regclass")
        return cursor.fetchone()[0]


def test_provisioning_a_school_adds_no_trigger_to_portal_user(db):
    before = _portal_user_triggers()
    for code in ("userfk-a", "userfk-b"):
        school, _ = school_provision(
            actor=None, spec=SchoolSpec(code=code, name=f"Trường {code}", levels=("primary",)), division=None
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND t.tgname LIKE %s",
                [school.schema_name, "%\\_user\\_check"],
            )
            assert cursor.fetchone()[0] == len({model for model, _ in USER_COLUMNS})
    assert _portal_user_triggers() == before
