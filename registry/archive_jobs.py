"""Who may take an archive of issued records, the Department's export jobs, and their audit.

- A school's archive of one school year (registry.archive, scope: the school) is streamed to its
  leaders (principal, vice-principals, the school administrator) from the school's page; each
  download is audited with the manifest's SHA-256.
- A division's or the province's archive is a job (registry.ArchiveExport): asked for on the
  Department's page (audited), built by a Celery task into settings.HOCBA_ARCHIVE_DIR, downloaded
  from that page (audited) once ready.

An archive holds named students' records: taking one needs the data of every school in it. A
division's: department staff with a data grant, or the division's own officers with a data
grant there. The province's: department staff with a data grant. Someone who does not supervise
the scope at all (another division's officer) gets 404, as for every object out of scope;
someone who supervises it without a data grant gets 403.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction, IssuedRecordStatus
from portal.models import Division, IssuedRecord, School, User
from portal.permissions import access_for
from portal.services import audit_record
from transcripts.permissions import LEADERS

from .archive import (
    ArchiveSummary,
    archive_write,
    safe_name,
    school_year_valid,
    scope_division,
    scope_province,
)
from .models_archive import ArchiveExport, ArchiveScopeKind, ArchiveState

log = logging.getLogger(__name__)

# A running job whose worker died is taken up again after this long (a province's archive takes
# minutes; a redelivered message for a job still running finds it running and leaves it).
STALE_AFTER = dt.timedelta(hours=6)


# --- Who may --------------------------------------------------------------------------------


def can_download_school_archive(user: User, school: School) -> bool:
    """The school's leaders and its administrator (who keep its records)."""
    return bool(access_for(user).roles_in_school(school.pk) & LEADERS)


def archive_scope_visible(user: User, division: Division | None) -> bool:
    """Does the user supervise this scope at all (division None: the province)? If not: 404."""
    access = access_for(user)
    if access.is_department_staff:
        return True
    return division is not None and division.pk in access.division_ids


def can_export_archive(user: User, division: Division | None) -> bool:
    """May the user take the archive of this scope (its schools' named records)?"""
    access = access_for(user)
    if access.department_data:
        return True
    return division is not None and division.pk in access.data_division_ids


def archive_exports_for(user: User) -> QuerySet[ArchiveExport]:
    """The exports the user may see: all for department staff, their divisions' for division staff."""
    access = access_for(user)
    exports = ArchiveExport.objects.select_related("division", "requested_by")
    if access.is_department_staff:
        return exports
    return exports.filter(scope=ArchiveScopeKind.DIVISION, division_id__in=access.division_ids)


def archive_divisions_for(user: User) -> QuerySet[Division]:
    access = access_for(user)
    divisions = Division.objects.order_by("name")
    return divisions if access.is_department_staff else divisions.filter(pk__in=access.division_ids)


# --- Reads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class YearCount:
    school_year: str
    versions: int
    current: int


def school_archive_years(school: School) -> list[YearCount]:
    """The school years the school issued records in, newest first, with their versions (one query)."""
    rows = (
        IssuedRecord.objects.filter(school=school)
        .values("school_year")
        .annotate(versions=Count("pk"), current=Count("pk", filter=Q(status=IssuedRecordStatus.ISSUED)))
        .order_by("-school_year")
    )
    return [YearCount(r["school_year"], r["versions"], r["current"]) for r in rows]


def issued_years() -> list[str]:
    """Every school year with an issued record in the province, newest first."""
    return list(
        IssuedRecord.objects.values_list("school_year", flat=True).distinct().order_by("-school_year")
    )


def archive_dir() -> Path:
    return Path(settings.HOCBA_ARCHIVE_DIR)


def archive_export_path(export: ArchiveExport) -> Path | None:
    """The finished archive's file, or None (not ready, or gone from the disk)."""
    if export.state != ArchiveState.DONE or not export.file_name:
        return None
    path = archive_dir() / export.file_name
    return path if path.is_file() else None


# --- Writes ---------------------------------------------------------------------------------


def school_archive_downloaded(*, actor: User, school: School, summary: ArchiveSummary) -> None:
    """The audit row of a school's archive handed to one of its leaders."""
    audit_record(
        actor=actor,
        action=AuditAction.ARCHIVE_DOWNLOADED,
        obj=school,
        summary=_("Archive of issued records %(year)s of %(school)s downloaded (%(records)d records)")
        % {"year": summary.school_year, "school": school.name, "records": summary.records},
        changes={
            "school_year": summary.school_year,
            "records": summary.records,
            "manifest_sha256": summary.manifest_sha256,
        },
        school=school,
        division=school.division,
    )


@transaction.atomic
def archive_export_request(*, actor: User, school_year: str, division: Division | None) -> ArchiveExport:
    """Ask for the archive of a division (or, None, the province): a row, its audit, and the job
    queued after the commit. The caller has checked `can_export_archive`."""
    if not school_year_valid(school_year):
        raise ValueError(f"Not a school year: {school_year!r}")
    export = ArchiveExport.objects.create(
        requested_by=actor,
        scope=ArchiveScopeKind.DIVISION if division is not None else ArchiveScopeKind.PROVINCE,
        division=division,
        school_year=school_year,
    )
    audit_record(
        actor=actor,
        action=AuditAction.ARCHIVE_EXPORT_REQUESTED,
        obj=export,
        summary=_("Archive of issued records %(year)s requested for %(scope)s")
        % {"year": school_year, "scope": division.name if division else _("the province")},
        changes={"school_year": school_year, "division": division.code if division else None},
        division=division,
    )
    # By name, in the public schema (tenant-schemas-celery's header), as the relay's wake-up:
    # registry.tasks imports this module. On the default queue, not registry's (the relay's):
    # minutes of archive writing must not hold the relay back where its queue has its own worker.
    transaction.on_commit(
        lambda: current_app.send_task(
            "registry.tasks.archive_export_run",
            args=[export.pk],
            headers={"_schema_name": "public"},
            queue="celery",
        )
    )
    return export


def archive_export_downloaded(*, actor: User, export: ArchiveExport) -> None:
    audit_record(
        actor=actor,
        action=AuditAction.ARCHIVE_DOWNLOADED,
        obj=export,
        summary=_("Archive of issued records %(year)s of %(scope)s downloaded")
        % {
            "year": export.school_year,
            "scope": export.division.name if export.division else _("the province"),
        },
        changes={
            "school_year": export.school_year,
            "manifest_sha256": export.manifest_sha256,
            "sha256": export.sha256,
        },
        division=export.division,
    )


def _claim(export_pk: int) -> bool:
    """Take the job (pending, or running under a worker that died): one conditional UPDATE."""
    now = timezone.now()
    return bool(
        ArchiveExport.objects.filter(pk=export_pk)
        .filter(
            Q(state=ArchiveState.PENDING) | Q(state=ArchiveState.RUNNING, started_at__lt=now - STALE_AFTER)
        )
        .update(state=ArchiveState.RUNNING, started_at=now, error="")
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def archive_export_run(*, export_pk: int) -> ArchiveExport:
    """Build the archive of one export into HOCBA_ARCHIVE_DIR; mark it done or failed.

    Runs in the Celery task (registry.tasks.archive_export_run). A job already taken (running) or
    finished is left as it is, so a duplicated message builds nothing twice. The file is written
    as <name>.part and renamed once whole: a file under its final name is always complete.
    """
    if not _claim(export_pk):
        return ArchiveExport.objects.get(pk=export_pk)
    export = ArchiveExport.objects.select_related("division").get(pk=export_pk)
    folder = archive_dir()
    where = export.division.code if export.division is not None else "toan-tinh"
    name = safe_name(f"luu-tru-hoc-ba-{export.school_year}-{where}-{export.pk}.zip")
    part = folder / f"{name}.part"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        scope = scope_division(export.division) if export.division is not None else scope_province()
        with open(part, "wb") as file:
            summary = archive_write(file, school_year=export.school_year, scope=scope)
        os.replace(part, folder / name)
        sha256 = _file_sha256(folder / name)
    except Exception as error:  # recorded on the job for the page; the traceback goes to the log
        log.exception("Archive export %s failed", export_pk)
        with contextlib.suppress(OSError):  # the folder itself may be what failed
            part.unlink(missing_ok=True)
        ArchiveExport.objects.filter(pk=export_pk).update(
            state=ArchiveState.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            finished_at=timezone.now(),
        )
        return ArchiveExport.objects.get(pk=export_pk)
    ArchiveExport.objects.filter(pk=export_pk).update(
        state=ArchiveState.DONE,
        file_name=name,
        size=(folder / name).stat().st_size,
        sha256=sha256,
        manifest_sha256=summary.manifest_sha256,
        records=summary.records,
        missing=len(summary.missing),
        finished_at=timezone.now(),
    )
    return ArchiveExport.objects.get(pk=export_pk)
