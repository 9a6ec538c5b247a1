"""Archives of issued records (registry.archive): the school's page and the Department's.

- /truong/<code>/luu-tru/ (config.urls_school): the school years the school issued records in;
  its leaders download one year's archive, streamed as it is written (a school's year is a few
  thousand records: built in the request, record by record, never held in memory). Let in by the school's
  access middleware (404 outside the school, 403 without its data); a teacher gets 403 here.
- /so/luu-tru/ (config.urls): the Department's (and divisions') archive jobs: ask for the
  province's or a division's archive (a Celery job writes it), list them with their state,
  download one once ready. Out of scope: 404; in scope without a data grant: 403.
Thin views (style.md): the rules are in registry.archive_jobs.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from portal.choices import AuditAction
from portal.models import AuditEntry, Division, School, User

from .archive import archive_stream, school_year_valid, scope_school
from .archive_jobs import (
    archive_divisions_for,
    archive_export_downloaded,
    archive_export_path,
    archive_export_request,
    archive_exports_for,
    archive_scope_visible,
    can_download_school_archive,
    can_export_archive,
    issued_years,
    school_archive_downloaded,
    school_archive_years,
)

if TYPE_CHECKING:
    from portal.http import AuthenticatedRequest, SchoolRequest


# --- The school's archive --------------------------------------------------------------------


@require_GET
def school_archive(request: SchoolRequest) -> HttpResponse:
    """The school years this school issued records in, each with its archive to download."""
    school = request.school
    if not can_download_school_archive(request.user, school):
        raise PermissionDenied
    downloads = (
        AuditEntry.objects.filter(school=school, action=AuditAction.ARCHIVE_DOWNLOADED)
        .select_related("actor")
        .order_by("-at")[:10]
    )
    return render(
        request,
        "registry/archive_school.html",
        {"school": school, "years": school_archive_years(school), "downloads": downloads},
    )


class _Sink(io.RawIOBase):
    """A write-only file for zipfile, whose bytes the response takes as they come (not seekable:
    zipfile then writes each member's sizes after its data)."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]  # bytes-like in, as RawIOBase
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def _school_archive_chunks(user: User, school: School, school_year: str) -> Iterator[bytes]:
    """The ZIP's bytes as the archive is written, record by record: the first bytes leave at
    once, so a school's thousand records do not hold a silent request open (proxies' timeouts),
    and nothing but one record is held in memory. The download is audited (with the manifest's
    SHA-256) once the archive is whole, before its last bytes leave."""
    sink = _Sink()
    # zipfile needs write() and nothing else of a file here (typeshed names only typing.IO).
    steps = archive_stream(cast(IO[bytes], sink), school_year=school_year, scope=scope_school(school))
    while True:
        try:
            next(steps)
        except StopIteration as done:
            summary = done.value
            break
        if sink.chunks:
            yield sink.take()
    school_archive_downloaded(actor=user, school=school, summary=summary)
    yield sink.take()


@require_GET
def school_archive_download(request: SchoolRequest, school_year: str) -> StreamingHttpResponse:
    """One school year's archive of this school, streamed as a ZIP download (audited)."""
    school = request.school
    if not can_download_school_archive(request.user, school):
        raise PermissionDenied
    if not school_year_valid(school_year) or school_year not in {
        y.school_year for y in school_archive_years(school)
    }:
        raise Http404
    response = StreamingHttpResponse(
        _school_archive_chunks(request.user, school, school_year), content_type="application/zip"
    )
    response["Content-Disposition"] = f'attachment; filename="luu-tru-hoc-ba-{school.code}-{school_year}.zip"'
    return response


# --- The Department's archives ---------------------------------------------------------------


def _scope_from(request: AuthenticatedRequest, code: str) -> Division | None:
    """The division named by the form ("" or "province": the province), or 404 when out of scope."""
    division = None
    if code and code != "province":
        division = Division.objects.filter(code=code[:50]).first()
        if division is None:
            raise Http404
    if not archive_scope_visible(request.user, division):
        raise Http404
    return division


@login_required
@require_http_methods(["GET", "POST"])
def archives(request: AuthenticatedRequest) -> HttpResponse:
    """Ask for an archive (POST: school_year, scope), and the list of archives asked for."""
    divisions = archive_divisions_for(request.user)
    if not archive_scope_visible(request.user, None) and not divisions.exists():
        raise Http404
    years = issued_years()
    if request.method == "POST":
        division = _scope_from(request, request.POST.get("scope", ""))
        if not can_export_archive(request.user, division):
            raise PermissionDenied
        school_year = request.POST.get("school_year", "")
        if school_year not in years:
            messages.error(request, _("Choose a school year in which records were issued."))
            return redirect("registry_archive:archives")
        archive_export_request(actor=request.user, school_year=school_year, division=division)
        messages.success(
            request,
            _("The archive is being written in the background; it appears below once ready."),
        )
        return redirect("registry_archive:archives")
    return render(
        request,
        "registry/archive_exports.html",
        {
            "exports": archive_exports_for(request.user)[:50],
            "years": years,
            "divisions": divisions,
            "province": archive_scope_visible(request.user, None),
            "can_export_province": can_export_archive(request.user, None),
        },
    )


@login_required
@require_GET
def archive_download(request: AuthenticatedRequest, export_pk: int) -> FileResponse:
    """A finished archive's file (audited)."""
    export = archive_exports_for(request.user).filter(pk=export_pk).first()
    if export is None:
        raise Http404
    if not can_export_archive(request.user, export.division):
        raise PermissionDenied
    path = archive_export_path(export)
    if path is None:
        raise Http404
    archive_export_downloaded(actor=request.user, export=export)
    file = open(path, "rb")  # noqa: SIM115 -- FileResponse closes it once sent
    response = FileResponse(file, as_attachment=True, filename=path.name, content_type="application/zip")
    response["X-Manifest-SHA256"] = export.manifest_sha256
    return response
