"""Provisioning schools from a CSV file: cloned schemas, all-or-nothing refusals, re-runs."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import translation
from django_tenants.utils import schema_exists

from portal.choices import AuditAction, SchoolLevel
from portal.models import AuditEntry, School
from portal.provisioning import SchoolCsvError, migration_state_current, schools_provision_from_csv

HEADER = "ma_truong,ten_truong,cap_hoc,ma_don_vi,dia_chi\n"
GOOD = (
    HEADER
    + "p-th-01,Trường Tiểu học Hoa Ban,tieu_hoc,t-div-a,Xã Hoa Ban\n"
    + "p-ts-02,Trường Tiểu học và THCS Sơn Hà,tieu_hoc;thcs,t-div-b,\n"
    + "p-gdtx-03,Trung tâm GDTX Bắc Hà,gdtx,,Thị trấn Bắc Hà\n"
)


def provision(text: str, filename: str = "truong.csv"):
    return schools_provision_from_csv(actor=None, data=text.encode("utf-8"), filename=filename)


def table_names(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def test_it_creates_each_school_with_a_schema_cloned_from_the_template(db):
    report = provision(GOOD)

    assert report.created == ["p-th-01", "p-ts-02", "p-gdtx-03"]
    multi = School.objects.get(code="p-ts-02")
    assert multi.levels == [SchoolLevel.PRIMARY, SchoolLevel.LOWER_SECONDARY]
    assert multi.division.code == "t-div-b"
    assert School.objects.get(code="p-gdtx-03").division is None
    for school in School.objects.filter(code__startswith="p-"):
        assert schema_exists(school.schema_name)
        assert table_names(school.schema_name) == table_names("school_template")
        assert "schools_schoolyear" in table_names(school.schema_name)
        assert school.migration_state == migration_state_current()
    assert AuditEntry.objects.filter(action=AuditAction.SCHOOL_PROVISIONED, object_id=str(multi.pk)).exists()


def test_a_cloned_school_has_every_migration_recorded(db):
    provision(GOOD)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sch_p_th_01.django_migrations")
        cloned = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM school_template.django_migrations")
        template = cursor.fetchone()[0]
    assert cloned == template > 0


def test_running_the_same_file_again_changes_nothing(db):
    provision(GOOD)
    audit_rows = AuditEntry.objects.count()

    report = provision(GOOD)

    assert report.created == [] and report.updated == []
    assert report.unchanged == ["p-th-01", "p-ts-02", "p-gdtx-03"]
    assert AuditEntry.objects.count() == audit_rows


def test_an_updated_file_updates_the_school_and_audits_it(db):
    provision(GOOD)
    report = provision(GOOD.replace("Trường Tiểu học Hoa Ban", "Trường Tiểu học Hoa Ban số 1"))

    assert report.updated == ["p-th-01"]
    assert School.objects.get(code="p-th-01").name == "Trường Tiểu học Hoa Ban số 1"
    entry = AuditEntry.objects.filter(action=AuditAction.SCHOOL_CHANGED).latest("id")
    assert entry.changes["name"] == {"old": "Trường Tiểu học Hoa Ban", "new": "Trường Tiểu học Hoa Ban số 1"}


BAD_FILES = {
    "unknown division": (
        GOOD + "p-th-04,Trường Tiểu học Lạ,tieu_hoc,khong-co,\n",
        5,
        "ma_don_vi",
        "Không có đơn vị quản lý nào có mã 'khong-co'.",
    ),
    "duplicate code in the file": (
        GOOD + "P-TH-01,Trường trùng mã,tieu_hoc,,\n",
        5,
        "ma_truong",
        "Mã trường 'P-TH-01' đã có ở dòng 2.",
    ),
    "missing column": (
        "ma_truong,ten_truong,ma_don_vi\np-x,Trường X,\n",
        1,
        "cap_hoc",
        "Thiếu cột bắt buộc.",
    ),
    "malformed row": (
        GOOD + "p-th-05,Trường thiếu ô\n",
        5,
        "-",
        "Dòng có 2 ô; dòng tiêu đề có 5 ô.",
    ),
    "unknown level": (
        GOOD + "p-th-06,Trường Sai Cấp,tieu-hoc,,\n",
        5,
        "cap_hoc",
        "Cấp học 'tieu-hoc' không hợp lệ",
    ),
    "empty name": (
        GOOD + "p-th-07,,tieu_hoc,,\n",
        5,
        "ten_truong",
        "Tên trường đang để trống.",
    ),
    "bad code": (
        GOOD + "p th 08,Trường Mã Có Dấu Cách,tieu_hoc,,\n",
        5,
        "ma_truong",
        "không phải là mã hợp lệ",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_a_bad_file_is_refused_naming_row_and_column_and_nothing_is_created(db, case):
    text, row, column, message = BAD_FILES[case]
    schools_before = School.objects.count()

    with translation.override("vi"), pytest.raises(SchoolCsvError) as refused:
        provision(text)

    with translation.override("vi"):
        lines = [str(problem) for problem in refused.value.problems]
    assert any(line.startswith(f"Dòng {row}, cột {column}: ") and message in line for line in lines), lines
    assert School.objects.count() == schools_before
    assert not schema_exists("sch_p_th_01")


def test_a_file_that_is_not_utf8_is_refused(db):
    with translation.override("vi"), pytest.raises(SchoolCsvError) as refused:
        # "Trường" in a legacy 8-bit Vietnamese encoding (TCVN3 / Windows-1258 style bytes).
        legacy = HEADER.encode() + b"p-x,Tr\xad\xeang Ti\xd6u h\xe4c,tieu_hoc,,\n"
        schools_provision_from_csv(actor=None, data=legacy, filename="truong.csv")
    with translation.override("vi"):
        assert "không phải văn bản UTF-8" in str(refused.value.problems[0])


def test_every_problem_of_a_file_is_reported_at_once(db):
    text = GOOD + "p-th-04,Trường Lạ,tieu_hoc,khong-co,\n" + "p-th-05,,thcs,,\n"
    with pytest.raises(SchoolCsvError) as refused:
        provision(text)
    assert [(p.row, p.column) for p in refused.value.problems] == [(5, "ma_don_vi"), (6, "ten_truong")]


def test_the_command_provisions_a_file_and_reports_counts(db, tmp_path, capsys):
    path = tmp_path / "truong.csv"
    path.write_text(GOOD, encoding="utf-8")

    with translation.override("vi"):
        call_command("provision_schools", str(path))

    assert "3 trường được tạo, 0 được cập nhật, 0 không đổi." in capsys.readouterr().out
    assert School.objects.filter(code__startswith="p-").count() == 3


def test_the_command_refuses_a_bad_file_with_vietnamese_messages(db, tmp_path):
    path = tmp_path / "truong.csv"
    path.write_text(GOOD + "p-th-04,Trường Lạ,tieu_hoc,khong-co,\n", encoding="utf-8")

    with translation.override("vi"), pytest.raises(CommandError) as refused:
        call_command("provision_schools", str(path))

    message = str(refused.value)
    assert "truong.csv bị từ chối; không trường nào được tạo:" in message
    assert "Dòng 5, cột ma_don_vi:" in message
    assert not School.objects.filter(code__startswith="p-").exists()


def test_codes_that_would_share_a_schema_are_refused(db):
    with pytest.raises(SchoolCsvError) as refused:
        provision(HEADER + "p-x-1,Trường A,thcs,,\np_x_1,Trường B,thcs,,\n")
    assert [(p.row, p.column) for p in refused.value.problems] == [(3, "ma_truong")]


def catalogue(schema: str) -> dict[str, set]:
    """What a schema is made of, with the schema's own name taken out."""
    queries = {
        "columns": """SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
                      FROM information_schema.columns WHERE table_schema = %s""",
        # A CHECK's text is normalised differently once re-parsed (ARRAY casts), so CHECKs are
        # compared by name; keys and foreign keys by their definition.
        "constraints": """SELECT conrelid::regclass::text, conname, contype,
                                 CASE WHEN contype = 'c' THEN '' ELSE pg_get_constraintdef(oid) END
                          FROM pg_constraint WHERE connamespace = %s::regnamespace""",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
        "triggers": """SELECT tgname, pg_get_triggerdef(t.oid)
                       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                       WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal""",
        "functions": "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = %s::regnamespace",
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


def test_a_cloned_schema_is_the_template_to_the_last_constraint_trigger_and_row(db):
    provision(GOOD)
    clone, template = catalogue("sch_p_th_01"), catalogue("school_template")
    assert clone == template
    assert clone["triggers"] and clone["functions"] and clone["constraints"]


def test_a_cloned_schools_sequences_start_where_the_templates_are(db):
    provision(GOOD)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO sch_p_th_01.schools_subject (code, name) VALUES ('x', 'X') RETURNING id")
        assert cursor.fetchone()[0] == 1
