"""Creating schools: one PostgreSQL schema each, cloned from a template schema.

Cloning copies a migrated, seeded schema in one statement instead of replaying every migration
for every school (design.md §3). The template is kept at the current migrations by
`migrate_schemas` and by `template_schema_ensure()` before each provisioning run.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.db.migrations.loader import MigrationLoader
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from django_tenants.utils import schema_exists

from .choices import AuditAction, SchoolLevel
from .clone import schema_clone
from .db import connection
from .models import CODE_PATTERN, Division, School, User
from .selectors import school_route_forget
from .services import audit_record, school_update

# --- Migration state -------------------------------------------------------------------------


def migration_state_of(migrations) -> str:
    """A digest of a set of (app, name) migration keys, independent of their order."""
    names = sorted(f"{app}.{name}" for app, name in migrations)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def migration_state_current() -> str:
    """The digest of every migration on disk. A school whose recorded digest equals it is current."""
    return migration_state_of(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)


def _schema_migration_state(schema: str) -> str:
    """The digest of what a schema's django_migrations table says is applied."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations')  # noqa: S608 - our own schema name
        return migration_state_of(cursor.fetchall())


def template_schema_ensure(*, verbosity: int = 0) -> str:
    """Create or migrate the template schema when it is missing or behind; return its digest."""
    template = settings.TENANT_BASE_SCHEMA
    current = migration_state_current()
    connection.set_schema_to_public()
    if schema_exists(template) and _schema_migration_state(template) == current:
        return current
    if not schema_exists(template):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{template}"')
    call_command("migrate_schemas", schema_name=template, tenant=True, interactive=False, verbosity=verbosity)
    connection.set_schema_to_public()
    return current


# --- One school ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchoolSpec:
    """One school as an operator describes it (one CSV row)."""

    code: str
    name: str
    levels: tuple[str, ...]
    division_code: str = ""
    address: str = ""


def school_provision(
    *, actor: User | None, spec: SchoolSpec, division: Division | None, state: str | None = None
) -> tuple[School, str]:
    """Create the school and its schema, or update its public data if it exists.

    Returns the school and what happened: "created", "updated" or "unchanged". The row, the
    schema and the audit entry are created in one transaction: a failure leaves nothing.
    """
    # lower(code), as the unique index school_code_unique_ci has it, so that the index answers
    # (code__iexact compiles to upper(code) and reads every school: a cost that grows with them).
    existing = School.objects.alias(code_lower=Lower("code")).filter(code_lower=spec.code.lower()).first()
    if existing is not None:
        before = (existing.name, list(existing.levels), existing.division_id, existing.address)
        after = (spec.name, list(spec.levels), division.pk if division else None, spec.address)
        if before == after:
            return existing, "unchanged"
        school = school_update(
            actor=actor,
            school=existing,
            name=spec.name,
            levels=list(spec.levels),
            division=division,
            address=spec.address,
        )
        return school, "updated"

    state = state or template_schema_ensure()
    with transaction.atomic():
        school = School(
            code=spec.code,
            name=spec.name,
            levels=list(spec.levels),
            division=division,
            address=spec.address,
            schema_name=School.schema_name_for(spec.code),
            migration_state=state,
        )
        school.full_clean()
        school.save()
        schema_clone(template=settings.TENANT_BASE_SCHEMA, new_schema=school.schema_name, state=state)
        audit_record(
            actor=actor,
            action=AuditAction.SCHOOL_PROVISIONED,
            obj=school,
            summary=_("School %(code)s (%(name)s) provisioned") % {"code": school.code, "name": school.name},
            changes={"new": {"code": school.code, "name": school.name, "levels": school.levels}},
            school=school,
            division=division,
        )
        transaction.on_commit(lambda: school_route_forget(school.code))
    return school, "created"


# --- A CSV of schools ------------------------------------------------------------------------

CSV_COLUMNS = ("ma_truong", "ten_truong", "cap_hoc", "ma_don_vi", "dia_chi")
REQUIRED_COLUMNS = ("ma_truong", "ten_truong", "cap_hoc")
LEVEL_CODES = {
    "tieu_hoc": SchoolLevel.PRIMARY,
    "thcs": SchoolLevel.LOWER_SECONDARY,
    "thpt": SchoolLevel.UPPER_SECONDARY,
    "gdtx": SchoolLevel.CONTINUING,
}


@dataclass(frozen=True)
class CsvProblem:
    row: int  # as a spreadsheet shows it: the header is row 1
    column: str
    message: str

    def __str__(self) -> str:
        return _("Row %(row)d, column %(column)s: %(message)s") % {
            "row": self.row,
            "column": self.column,
            "message": self.message,
        }


class SchoolCsvError(Exception):
    """The file is refused; nothing was written. Carries every problem found, not just the first."""

    def __init__(self, filename: str, problems: list[CsvProblem]):
        self.filename = filename
        self.problems = problems
        super().__init__("\n".join(f"{filename}: {p}" for p in problems))


@dataclass
class ProvisionReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def school_csv_parse(data: bytes, *, filename: str) -> list[tuple[SchoolSpec, Division | None]]:
    """Validate a whole file before anything is written; raise SchoolCsvError listing every problem."""
    import re

    problems: list[CsvProblem] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SchoolCsvError(
            filename, [CsvProblem(1, "-", _("The file is not UTF-8 text. Save it as CSV UTF-8."))]
        ) from None
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else csv.excel
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows = list(reader)
    if not rows:
        raise SchoolCsvError(filename, [CsvProblem(1, "-", _("The file is empty."))])
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [h for h in header if h and h not in CSV_COLUMNS]
    for column in missing:
        problems.append(CsvProblem(1, column, _("Required column is missing.")))
    for column in unknown:
        problems.append(
            CsvProblem(
                1,
                column,
                _("Unknown column; the columns are: %(columns)s") % {"columns": ", ".join(CSV_COLUMNS)},
            )
        )
    if problems:
        raise SchoolCsvError(filename, problems)

    divisions = {d.code.lower(): d for d in Division.objects.all()}
    # Codes that differ only by '-' and '_' would share a schema name.
    taken_schemas = dict(School.objects.values_list("schema_name", "code"))
    seen: dict[str, int] = {}
    parsed: list[tuple[SchoolSpec, Division | None]] = []
    for number, raw in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in raw):
            continue
        if len(raw) != len(header):
            problems.append(
                CsvProblem(
                    number,
                    "-",
                    _("The row has %(found)d cells; the header has %(expected)d.")
                    % {"found": len(raw), "expected": len(header)},
                )
            )
            continue
        row = {h: cell.strip() for h, cell in zip(header, raw, strict=True)}
        code = row["ma_truong"]
        name = row["ten_truong"]
        if not code:
            problems.append(CsvProblem(number, "ma_truong", _("The school code is empty.")))
        elif not re.match(CODE_PATTERN, code):
            problems.append(
                CsvProblem(
                    number,
                    "ma_truong",
                    _("'%(code)s' is not a valid code: use letters, digits, '-' or '_' (at most 31).")
                    % {"code": code},
                )
            )
        elif code.lower() in seen:
            problems.append(
                CsvProblem(
                    number,
                    "ma_truong",
                    _("School code '%(code)s' already appears on row %(row)d.")
                    % {"code": code, "row": seen[code.lower()]},
                )
            )
        elif (
            taken_schemas.get(School.schema_name_for(code), code).lower() != code.lower()
            or School.schema_name_for(code) in seen
        ):
            problems.append(
                CsvProblem(
                    number,
                    "ma_truong",
                    _(
                        "School code '%(code)s' is too close to an existing code "
                        "('-' and '_' count as the same)."
                    )
                    % {"code": code},
                )
            )
        else:
            seen[code.lower()] = number
            seen[School.schema_name_for(code)] = number
        if not name:
            problems.append(CsvProblem(number, "ten_truong", _("The school name is empty.")))
        elif len(name) > 200:
            problems.append(
                CsvProblem(number, "ten_truong", _("The school name is longer than 200 characters."))
            )
        levels: list[str] = []
        for token in re.split(r"[;+|]", row["cap_hoc"]):
            token = token.strip().lower()
            if not token:
                continue
            if token not in LEVEL_CODES:
                problems.append(
                    CsvProblem(
                        number,
                        "cap_hoc",
                        _("Unknown level '%(level)s'; use %(levels)s, joined by ';'.")
                        % {"level": token, "levels": ", ".join(LEVEL_CODES)},
                    )
                )
            elif LEVEL_CODES[token] not in levels:
                levels.append(LEVEL_CODES[token])
        if not levels and row["cap_hoc"].strip() == "":
            problems.append(CsvProblem(number, "cap_hoc", _("The school must teach at least one level.")))
        division_code = row.get("ma_don_vi", "")
        division = None
        if division_code:
            division = divisions.get(division_code.lower())
            if division is None:
                problems.append(
                    CsvProblem(
                        number,
                        "ma_don_vi",
                        _("There is no division with code '%(code)s'.") % {"code": division_code},
                    )
                )
        address = row.get("dia_chi", "")
        if len(address) > 300:
            problems.append(CsvProblem(number, "dia_chi", _("The address is longer than 300 characters.")))
        parsed.append(
            (
                SchoolSpec(
                    code=code, name=name, levels=tuple(levels), division_code=division_code, address=address
                ),
                division,
            )
        )
    if not parsed and not problems:
        problems.append(CsvProblem(2, "-", _("The file has no school rows.")))
    if problems:
        raise SchoolCsvError(filename, problems)
    return parsed


def schools_provision_from_csv(
    *, actor: User | None, data: bytes, filename: str, progress=None
) -> ProvisionReport:
    """Provision every school of a CSV file.

    The whole file is validated first: a file with any bad row is refused and nothing is
    created. Each school is then created in its own transaction (one transaction for thousands
    of schemas would exhaust PostgreSQL's lock table); if the run is interrupted, running the
    same file again creates the rest and leaves the others unchanged.
    """
    rows = school_csv_parse(data, filename=filename)
    state = template_schema_ensure()
    report = ProvisionReport()
    for index, (spec, division) in enumerate(rows, start=1):
        school, outcome = school_provision(actor=actor, spec=spec, division=division, state=state)
        getattr(report, outcome).append(school.code)
        if progress is not None:
            progress(index, len(rows), school, outcome)
    return report
