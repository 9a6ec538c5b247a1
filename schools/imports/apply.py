"""Applying a checked workbook: who may import, the writes in one transaction, the report, the audit.

school_data_import is the service: it reads the file, checks it under a lock on the school and,
when nothing is wrong, writes the plan and one audit row, all in one transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction, Role
from portal.models import School, User
from portal.permissions import access_for
from portal.progress.services import progress_batch, progress_changed
from portal.services import audit_record

from ..models import Enrolment, SchoolClass, SchoolYear, Student, TeachingAssignment
from ..services import (
    ENROLMENT_PARTS,
    class_create,
    class_update,
    enrolment_number_set,
    students_enrol,
    teaching_assignment_set,
)
from .checks import _changed_class_ids, _class_key, _closed_class_problems, _Plan, _plan
from .workbook import (
    ASSIGNMENT_SHEET,
    CLASS_SHEET,
    STUDENT_SHEET,
    ImportProblem,
    SchoolImportError,
    _workbook_read,
)

IMPORTERS = frozenset({Role.SCHOOL_ADMIN, Role.PRINCIPAL})


def can_import_school_data(user: User, school: School) -> bool:
    """Imports create classes and students: the school administrator and the principal."""
    return bool(access_for(user).roles_in_school(school.pk) & IMPORTERS)


# --- The report ------------------------------------------------------------------------------


@dataclass
class SheetCounts:
    sheet: str
    label: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    """What an import did, per sheet present in the file."""

    filename: str
    sheets: list[SheetCounts] = field(default_factory=list)

    def counts(self, sheet: str) -> SheetCounts | None:
        return next((s for s in self.sheets if s.sheet == sheet), None)


# --- Writing ---------------------------------------------------------------------------------


def _enrolment_day(year: SchoolYear) -> dt.date:
    """Today, within the school year: an import before the year starts enrols from its first day."""
    return min(max(timezone.localdate(), year.starts_on), year.ends_on)


def _apply(plan: _Plan, filename: str) -> ImportReport:
    assert plan.year is not None
    report = ImportReport(filename=filename)
    labels = {
        CLASS_SHEET: SchoolClass._meta.verbose_name_plural,
        STUDENT_SHEET: Student._meta.verbose_name_plural,
        ASSIGNMENT_SHEET: TeachingAssignment._meta.verbose_name_plural,
    }
    counts = {name: SheetCounts(sheet=name, label=str(labels[name])) for name in plan.sheets}
    report.sheets = list(counts.values())

    classes = dict(plan.existing_classes)
    for class_item in plan.classes:
        if class_item.existing is None:
            assert class_item.grade is not None  # a bad grade is a problem: no plan with one is applied
            classes[_class_key(class_item.name)] = class_create(
                school_year=plan.year,
                name=class_item.name,
                grade=class_item.grade,
                levels=list(plan.school.levels),
                homeroom_teacher=class_item.homeroom,
            )
            counts[CLASS_SHEET].created += 1
        elif (
            class_item.homeroom is not None
            and class_item.homeroom.pk != class_item.existing.homeroom_teacher_id
        ):
            # An empty gvcn cell leaves the homeroom teacher as it is (it never clears it).
            class_update(school_class=class_item.existing, homeroom_teacher=class_item.homeroom)
            counts[CLASS_SHEET].updated += 1
        else:
            counts[CLASS_SHEET].unchanged += 1

    Student.objects.bulk_create([item.student for item in plan.students if item.is_new])
    day = _enrolment_day(plan.year)
    new_enrolments = []
    for item in plan.students:
        changed = bool(item.changed)
        if item.changed:
            item.student.save(update_fields=item.changed)
        if item.enrolment is None:
            new_enrolments.append(
                Enrolment(
                    student=item.student,
                    school_class=classes[item.class_key],
                    enrolled_on=day,
                    number=item.number or 0,
                )
            )
            changed = True
        elif item.number is not None and item.enrolment.number != item.number:
            enrolment_number_set(enrolment=item.enrolment, number=item.number)
            changed = True
        if item.is_new:
            counts[STUDENT_SHEET].created += 1
        elif changed:
            counts[STUDENT_SHEET].updated += 1
        else:
            counts[STUDENT_SHEET].unchanged += 1
    if new_enrolments:
        students_enrol(enrolments=new_enrolments)

    for assignment in plan.assignments:
        if assignment.current_teacher_id == assignment.teacher.pk:
            counts[ASSIGNMENT_SHEET].unchanged += 1
            continue
        teaching_assignment_set(
            school_class=classes[assignment.class_key], subject=assignment.subject, teacher=assignment.teacher
        )
        if assignment.current_teacher_id is None:
            counts[ASSIGNMENT_SHEET].created += 1
        else:
            counts[ASSIGNMENT_SHEET].updated += 1
    return report


def _import_audit(*, actor: User, school: School, report: ImportReport) -> None:
    """One row in the province's audit log per import that changed something (who, what file, counts)."""
    from dataclasses import asdict

    if not any(s.created or s.updated for s in report.sheets):
        return  # a re-import that changed nothing writes nothing, not even a log row
    counts = {
        s.sheet: {k: v for k, v in asdict(s).items() if k not in ("sheet", "label")} for s in report.sheets
    }
    audit_record(
        actor=actor,
        action=AuditAction.SCHOOL_DATA_IMPORTED,
        obj=school,
        summary=_("%(file)s imported") % {"file": report.filename},
        changes=counts,
        school=school,
        division=None,
    )


def _classes_lock(plan: _Plan) -> None:
    """Lock the rows of the existing classes the plan changes and read their state again.

    The principal's approval locks the class row too: an approval that came after the plan read
    the classes is seen here (or waits until this import commits), never slips in between.
    """
    ids = _changed_class_ids(plan)
    if not ids:
        return
    locked = {
        c.pk: c for c in SchoolClass.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
    }
    for key, school_class in list(plan.existing_classes.items()):
        if school_class.pk in locked:
            plan.existing_classes[key] = locked[school_class.pk]
    for item in plan.classes:
        if item.existing is not None and item.existing.pk in locked:
            item.existing = locked[item.existing.pk]


def school_data_import(*, actor: User, school: School, data: bytes, filename: str) -> ImportReport:
    """Import a workbook of classes, students and teaching assignments into the school.

    Call with the school's schema active. The whole file is checked first; any problem raises
    SchoolImportError listing all of them, and nothing is written. Otherwise everything is
    applied in one transaction. Imports of one school are serialised (an advisory lock), so the
    checks still hold when the rows are written.
    """
    if not can_import_school_data(actor, school):
        raise PermissionDenied(_("Only the school administrator or the principal may import data."))
    sheets = _workbook_read(data, filename)
    try:
        with transaction.atomic(), progress_batch():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"schools.import:{school.schema_name}"]
                )
            plan = _plan(school, sheets)
            if plan.problems:
                raise SchoolImportError(filename, plan.problems)
            _classes_lock(plan)
            if problems := _closed_class_problems(plan):
                raise SchoolImportError(filename, problems)
            report = _apply(plan, filename)
            _import_audit(actor=actor, school=school, report=report)
            # The year's row is recounted once when anything changed; a personal ID verified
            # counts in every year of the student's (older years' rows too).
            years = set()
            if plan.year is not None and any(sheet.created or sheet.updated for sheet in report.sheets):
                years.add(plan.year.code)
            if any("personal_id" in item.changed for item in plan.students if not item.is_new):
                years |= set(SchoolYear.objects.values_list("code", flat=True))
            for code in sorted(years):
                progress_changed(school_year=code, school=school, parts=ENROLMENT_PARTS)
            return report
    except ValidationError as exc:
        # A service refused (a class approved meanwhile, say): the file is refused as a whole.
        raise SchoolImportError(filename, [ImportProblem("", 0, "", m) for m in exc.messages]) from None
    except IntegrityError:
        # Another writer (the admin site, say) changed the same rows between check and write.
        raise SchoolImportError(
            filename,
            [
                ImportProblem(
                    "", 0, "", _("The school's data changed during the import; import the file again.")
                )
            ],
        ) from None
