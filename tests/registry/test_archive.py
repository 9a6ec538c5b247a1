# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""The archive a department can keep (registry.archive, registry.archive_check): real issued records
(signed and sealed with the session's CA, PDFs rendered by WeasyPrint) exported to a ZIP and checked
offline; an edited, removed or added file is named by the check."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from django.core.management import call_command
from django.db import connection

from registry.archive import MANIFEST, MANIFEST_DIGEST, archive_write, scope_school
from registry.archive_check import archive_check
from tests.signing.test_batches import confirmed, two_factor  # noqa: F401 -- fixtures
from tests.signing_kit import issue
from transcripts.models import YearRecord
from transcripts.records.pdf import year_record_pdf_render
from transcripts.records.services import year_record_correct, year_record_correction_approve

YEAR = "2025-2026"


@pytest.fixture
def issued_year(homeroom_teacher, principal, school, records):
    """8A's two promoted students' records issued with their PDFs, and the first corrected
    (version 1 superseded, version 2 issued): three versions in the index."""
    issued = [
        issue(r, homeroom_teacher=homeroom_teacher, principal=principal, school=school) for r in records
    ]
    correction = year_record_correct(
        actor=homeroom_teacher, school=school, record=issued[0], reason="Sai điểm"
    )
    year_record_correction_approve(actor=principal, school=school, record=correction)
    correction = issue(
        YearRecord.objects.get(pk=correction.pk),
        homeroom_teacher=homeroom_teacher,
        principal=principal,
        school=school,
    )
    versions = [*issued, correction]
    for record in versions:
        year_record_pdf_render(record_id=record.pk)
    connection.set_schema_to_public()
    return versions


@pytest.fixture
def archive(issued_year, school, tmp_path):
    path = tmp_path / "luu-tru.zip"
    call_command(
        "export_archive", "--year", YEAR, "--school", school.code, "--out", str(path), stdout=io.StringIO()
    )
    return path


def rewrite(path, out, *, replace=None, drop=(), add=None):
    """Copy the ZIP at `path` to `out`, member by member: some replaced, dropped or added."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename in drop:
                continue
            data = source.read(info)
            target.writestr(info.filename, replace[info.filename](data) if info.filename in replace else data)
        for name, data in add.items():
            target.writestr(name, data)
    return out


def manifest_of(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read(MANIFEST))


def first(path, kind) -> str:
    return next(e["path"] for e in manifest_of(path)["files"] if e["kind"] == kind)


def flip_byte_in_content(data: bytes) -> bytes:
    """One byte of the record's content changed: the school's name, "Trường ..." becomes "Urường ..."."""
    at = data.index(b"tentruong>") + len(b"tentruong>")
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def verify(path, *args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("verify_archive", str(path), *args, stdout=out)
    except SystemExit as exit:
        return exit.code, out.getvalue()
    return 0, out.getvalue()


def test_the_archive_holds_every_issued_version_with_its_pdf_roots_crls_and_manifest(
    archive, issued_year, school
):
    manifest = manifest_of(archive)
    assert manifest["school_year"] == YEAR
    assert manifest["scope"]["kind"] == "school" and manifest["scope"]["code"] == school.code
    xml = [e for e in manifest["files"] if e["kind"] == "xml"]
    assert sorted((e["record_id"], e["version"], e["status"]) for e in xml) == sorted(
        [
            (issued_year[0].record_id, 1, "superseded"),
            (issued_year[1].record_id, 1, "issued"),
            (issued_year[0].record_id, 2, "issued"),
        ]
    )
    kinds = {e["kind"] for e in manifest["files"]}
    assert {"xml", "pdf", "root", "crl", "readme"} <= kinds
    assert sum(1 for e in manifest["files"] if e["kind"] == "pdf") == 3
    assert manifest["missing"] == []
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert names == {e["path"] for e in manifest["files"]} | {MANIFEST, MANIFEST_DIGEST}
        digest = hashlib.sha256(z.read(MANIFEST)).hexdigest()
        assert z.read(MANIFEST_DIGEST).decode() == f"{digest}  {MANIFEST}\n"
        for entry in manifest["files"]:
            assert hashlib.sha256(z.read(entry["path"])).hexdigest() == entry["sha256"]
        assert "CÁCH KIỂM TRA" in z.read("README.txt").decode()
        # The XML is exactly the bytes the public index says were issued.
        from portal.models import IssuedRecord

        for entry in xml:
            indexed = IssuedRecord.objects.get(record_id=entry["record_id"], version=entry["version"])
            assert hashlib.sha256(z.read(entry["path"])).hexdigest() == indexed.sha256


def test_a_clean_archive_verifies_with_no_problem_and_exit_status_0(archive):
    result = archive_check(str(archive))
    assert result.ok, [f.line() for f in result.findings]
    assert result.records_checked == 3 and result.signatures_checked == 9 and result.pdfs_checked == 3
    status, out = verify(archive)
    assert status == 0
    assert "không có vấn đề" in out or "no problem" in out


def test_the_check_uses_only_the_archives_trust_not_the_settings(archive, settings, tmp_path):
    """With the portal's trust store pointed at nothing, the archive still verifies (its own
    roots and CRLs); without its roots, every record's signatures fail."""
    settings.HOCBA_TRUST_ROOTS, settings.HOCBA_TRUST_CRLS = [], []
    assert archive_check(str(archive)).ok
    roots = [e["path"] for e in manifest_of(archive)["files"] if e["kind"] == "root"]
    stripped = rewrite(archive, tmp_path / "sans-roots.zip", drop=roots)
    result = archive_check(str(stripped))
    assert not result.ok
    assert {e["path"] for e in manifest_of(archive)["files"] if e["kind"] == "xml"} <= result.paths()


def test_one_byte_edited_in_one_xml_is_named_for_its_hash_and_its_signatures(archive, tmp_path):
    target = first(archive, "xml")
    edited = rewrite(archive, tmp_path / "edited.zip", replace={target: flip_byte_in_content})
    result = archive_check(str(edited))
    assert not result.ok and not result.refused
    codes = {f.code for f in result.findings if f.path == target}
    assert "sha256_mismatch" in codes
    assert any(code.startswith("signature:") for code in codes), codes
    # Its PDF no longer embeds the XML the archive holds? It does embed the issued one: the PDF
    # itself is intact; only the edited file (and nothing else) is named.
    assert result.paths() == {target}
    status, out = verify(edited)
    assert status == 1
    assert f"{target}: " in out


def test_a_removed_file_an_unlisted_file_and_an_edited_manifest_are_each_named(archive, tmp_path):
    pdf = first(archive, "pdf")
    removed = archive_check(str(rewrite(archive, tmp_path / "removed.zip", drop=[pdf])))
    assert [(f.path, f.code) for f in removed.findings] == [(pdf, "missing")]

    added = archive_check(str(rewrite(archive, tmp_path / "added.zip", add={"records/extra.xml": b"<x/>"})))
    assert [(f.path, f.code) for f in added.findings] == [("records/extra.xml", "not_listed")]

    def drop_an_entry(data: bytes) -> bytes:
        manifest = json.loads(data)
        manifest["files"] = [e for e in manifest["files"] if e["path"] != pdf]
        return json.dumps(manifest).encode()

    edited = archive_check(
        str(rewrite(archive, tmp_path / "manifest.zip", replace={MANIFEST: drop_an_entry}))
    )
    assert ("manifest.json", "sha256_mismatch") in [(f.path, f.code) for f in edited.findings]
    assert (pdf, "not_listed") in [(f.path, f.code) for f in edited.findings]


def test_a_pdf_that_embeds_another_xml_is_named(archive, tmp_path):
    """Swap two records' PDFs and fix the manifest's hashes: each PDF is intact but embeds the
    other record's XML."""
    manifest = manifest_of(archive)
    pdfs = [e for e in manifest["files"] if e["kind"] == "pdf"][:2]
    with zipfile.ZipFile(archive) as z:
        a, b = z.read(pdfs[0]["path"]), z.read(pdfs[1]["path"])
    for entry, data in ((pdfs[0], b), (pdfs[1], a)):
        entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    new_manifest = json.dumps(manifest).encode()
    swapped = rewrite(
        archive,
        tmp_path / "swapped.zip",
        replace={
            pdfs[0]["path"]: lambda _d: b,
            pdfs[1]["path"]: lambda _d: a,
            MANIFEST: lambda _d: new_manifest,
            MANIFEST_DIGEST: lambda _d: f"{hashlib.sha256(new_manifest).hexdigest()}  {MANIFEST}\n".encode(),
        },
    )
    result = archive_check(str(swapped))
    assert {(f.path, f.code) for f in result.findings} == {
        (pdfs[0]["path"], "pdf_without_xml"),
        (pdfs[1]["path"], "pdf_without_xml"),
    }
    # The keeper's recorded SHA-256 of the original manifest catches the rewrite as a whole.
    pinned = hashlib.sha256(json.dumps(manifest_of(archive)).encode()).hexdigest()
    with zipfile.ZipFile(archive) as z:
        pinned = hashlib.sha256(z.read(MANIFEST)).hexdigest()
    status, out = verify(swapped, "--manifest-sha256", pinned)
    assert status == 1 and "manifest.json: " in out


def test_worker_processes_find_the_same_as_one(archive, tmp_path):
    target = first(archive, "xml")
    pdf = first(archive, "pdf")
    edited = rewrite(archive, tmp_path / "edited.zip", replace={target: flip_byte_in_content}, drop=[pdf])
    alone, side_by_side = archive_check(str(edited)), archive_check(str(edited), jobs=3)
    assert alone.findings and alone.as_dict() == side_by_side.as_dict()
    status, out = verify(edited, "--jobs", "2")
    assert status == 1 and f"{target}: " in out and f"{pdf}: " in out


def test_the_json_output_lists_findings(archive, tmp_path):
    target = first(archive, "xml")
    edited = rewrite(archive, tmp_path / "edited.zip", replace={target: flip_byte_in_content})
    status, out = verify(edited, "--json")
    assert status == 1
    report = json.loads(out)
    assert report["ok"] is False and {f["path"] for f in report["findings"]} == {target}


def test_a_division_archive_covers_its_schools_only(issued_year, school, division_a, tmp_path):
    path = tmp_path / "division.zip"
    call_command(
        "export_archive",
        "--year",
        YEAR,
        "--division",
        division_a.code,
        "--out",
        str(path),
        stdout=io.StringIO(),
    )
    manifest = manifest_of(path)
    assert manifest["scope"]["kind"] == "division"
    assert {e["school"] for e in manifest["files"] if e["kind"] == "xml"} == {school.code}
    assert archive_check(str(path)).ok


def test_an_archive_is_written_to_a_file_object_that_cannot_seek(issued_year, school, tmp_path):
    """Streamed: zipfile writes each member as it comes, to a pipe-like object."""

    class Pipe(io.RawIOBase):
        def __init__(self):
            self.chunks: list[bytes] = []

        def writable(self):
            return True

        def write(self, data):
            self.chunks.append(bytes(data))
            return len(data)

    pipe = Pipe()
    summary = archive_write(pipe, school_year=YEAR, scope=scope_school(school))
    assert summary.records == 3 and len(pipe.chunks) > 3
    path = tmp_path / "piped.zip"
    path.write_bytes(b"".join(pipe.chunks))
    assert archive_check(str(path)).ok


# --- The school's page and download --------------------------------------------------------------


def test_the_principal_downloads_the_school_years_archive_and_it_is_audited(
    client_as, principal, archive, school
):
    from portal.choices import AuditAction
    from portal.models import AuditEntry

    client = client_as(principal)
    page = client.get(f"/truong/{school.code}/luu-tru/")
    assert page.status_code == 200 and YEAR in page.content.decode()
    response = client.get(f"/truong/{school.code}/luu-tru/{YEAR}/tai-ve/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response.streaming  # sent as it is written, record by record
    chunks = list(response.streaming_content)
    assert len(chunks) > 3
    data = b"".join(chunks)
    result = archive_check(io.BytesIO(data))
    assert result.ok and result.records_checked == 3
    entry = AuditEntry.objects.get(action=AuditAction.ARCHIVE_DOWNLOADED, school=school)
    assert entry.actor == principal and entry.changes["records"] == 3
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert hashlib.sha256(z.read(MANIFEST)).hexdigest() == entry.changes["manifest_sha256"]
    assert entry.changes["manifest_sha256"] in client.get(f"/truong/{school.code}/luu-tru/").content.decode()
    # The front page links the archive for its leaders.
    assert f"/truong/{school.code}/luu-tru/" in client.get(f"/truong/{school.code}/").content.decode()


@pytest.mark.parametrize(
    ("persona_name", "status"),
    [
        ("school_admin", 200),
        ("vice_principal", 200),
        ("subject_teacher", 403),
        ("homeroom_teacher", 403),
        ("teacher_of_another_school", 404),
        ("other_school_admin", 404),
        ("other_division_officer", 404),
    ],
)
def test_who_may_download_a_schools_archive(client_as, persona, issued_year, school, persona_name, status):
    client = client_as(persona(persona_name))
    assert client.get(f"/truong/{school.code}/luu-tru/").status_code == status
    assert client.get(f"/truong/{school.code}/luu-tru/{YEAR}/tai-ve/").status_code == status


def test_a_year_without_records_or_not_a_year_is_404(client_as, principal, issued_year, school):
    client = client_as(principal)
    for year in ("2024-2025", "2025-2027", "../../etc", "1"):
        assert client.get(f"/truong/{school.code}/luu-tru/{year}/tai-ve/").status_code == 404


# --- The Department's archive jobs ---------------------------------------------------------------


@pytest.fixture
def archive_dir(settings, tmp_path):
    settings.HOCBA_ARCHIVE_DIR = str(tmp_path / "archives")
    return tmp_path / "archives"


def _request(client, scope, django_capture_on_commit_callbacks):
    from registry.models import ArchiveExport

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/so/luu-tru/", {"school_year": YEAR, "scope": scope})
    assert response.status_code == 302, response.status_code
    assert len(callbacks) == 1  # the job, queued once the request commits
    return ArchiveExport.objects.latest("pk")


def test_the_department_asks_for_the_provinces_archive_and_downloads_it_once_written(
    client_as, department_officer, issued_year, archive_dir, django_capture_on_commit_callbacks
):
    from portal.choices import AuditAction
    from portal.models import AuditEntry
    from registry.archive_jobs import archive_export_run
    from registry.models import ArchiveExport, ArchiveState

    client = client_as(department_officer)
    export = _request(client, "province", django_capture_on_commit_callbacks)
    assert export.state == ArchiveState.PENDING and export.division is None
    assert (
        AuditEntry.objects.filter(
            action=AuditAction.ARCHIVE_EXPORT_REQUESTED, actor=department_officer
        ).count()
        == 1
    )
    assert client.get(f"/so/luu-tru/{export.pk}/tai-ve/").status_code == 404  # not written yet

    from registry.tasks import archive_export_run as task

    assert task(export.pk) == ArchiveState.DONE  # the Celery task, run here
    done = ArchiveExport.objects.get(pk=export.pk)
    assert done.records == 3 and done.missing == 0
    assert archive_export_run(export_pk=export.pk).finished_at == done.finished_at  # a duplicate: nothing
    path = archive_dir / done.file_name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == done.sha256
    assert not list(archive_dir.glob("*.part"))

    page = client.get("/so/luu-tru/").content.decode()
    assert done.manifest_sha256 in page and f"/so/luu-tru/{export.pk}/tai-ve/" in page
    response = client.get(f"/so/luu-tru/{export.pk}/tai-ve/")
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert archive_check(io.BytesIO(data), manifest_sha256=done.manifest_sha256).ok
    assert (
        AuditEntry.objects.filter(action=AuditAction.ARCHIVE_DOWNLOADED, actor=department_officer).count()
        == 1
    )


def test_a_divisions_archive_is_for_its_officers_with_a_grant_and_the_department_only(
    client_as,
    persona,
    department_officer,
    issued_year,
    division_a,
    archive_dir,
    django_capture_on_commit_callbacks,
):
    from registry.archive_jobs import archive_export_run

    export = _request(client_as(department_officer), division_a.code, django_capture_on_commit_callbacks)
    archive_export_run(export_pk=export.pk)
    url = f"/so/luu-tru/{export.pk}/tai-ve/"
    assert client_as(persona("other_division_officer")).get(url).status_code == 404  # another division
    assert client_as(persona("teacher_of_another_school")).get(url).status_code == 404
    assert client_as(persona("principal")).get(url).status_code == 404
    assert client_as(persona("division_officer")).get(url).status_code == 403  # its division, no grant
    assert client_as(persona("department_admin")).get(url).status_code == 403  # no data grant
    assert client_as(department_officer).get(url).status_code == 200


def test_asking_for_an_archive_out_of_scope_or_without_a_grant_is_refused_and_writes_nothing(
    client_as, persona, issued_year, division_a, division_b, archive_dir
):
    from registry.models import ArchiveExport

    cases = [
        ("principal", "province", 404),
        ("other_division_officer", division_a.code, 404),  # another division's officer
        ("other_division_officer", "province", 404),
        ("division_officer", division_a.code, 403),  # its own division, no data grant
        ("department_admin", "province", 403),  # no data grant
        ("department_officer", "no-such-division", 404),
    ]
    for name, scope, status in cases:
        response = client_as(persona(name)).post("/so/luu-tru/", {"school_year": YEAR, "scope": scope})
        assert response.status_code == status, (name, scope)
    assert not ArchiveExport.objects.exists()
    assert client_as(persona("principal")).get("/so/luu-tru/").status_code == 404
    assert client_as(persona("other_division_officer")).get("/so/luu-tru/").status_code == 200


# --- Timestamped (XAdES-T/LT) records and sealed (PAdES) PDFs, through the real batches ----------


@pytest.fixture
def sealed_year(
    timestamping,
    homeroom_teacher,
    principal,
    school_admin,
    school,
    confirmed,
    certificates,
    two_factor,
    approved_class,
):
    """8A's two records issued through the three real batches with the reference TSA: every
    signature timestamped, the chains and CRLs embedded at the seal, the PDFs sealed as PDFs."""
    from tests.signing.test_batches import start_and_run, teacher_signs, totp_code

    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    start_and_run(
        actor=principal,
        school=school,
        step="principal",
        certificate=certificates["principal"],
        totp=totp_code(principal),
    )
    start_and_run(actor=school_admin, school=school, step="seal", certificate=certificates["seal"])
    connection.set_schema_to_public()
    return timestamping


def _fix_manifest(path, out, changes: dict[str, bytes]):
    """Replace members and rewrite the manifest's hashes and sizes to match (a careful forger)."""
    manifest = manifest_of(path)
    for entry in manifest["files"]:
        if entry["path"] in changes:
            entry["sha256"] = hashlib.sha256(changes[entry["path"]]).hexdigest()
            entry["size"] = len(changes[entry["path"]])
    data = json.dumps(manifest).encode()
    replace = {name: (lambda _d, new=new: new) for name, new in changes.items()}
    replace[MANIFEST] = lambda _d: data
    replace[MANIFEST_DIGEST] = lambda _d: f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n".encode()
    return rewrite(path, out, replace=replace)


def test_timestamps_tsa_roots_and_sealed_pdfs_are_archived_and_verify_offline(
    sealed_year, school, tmp_path, settings
):
    path = tmp_path / "sealed.zip"
    call_command(
        "export_archive", "--year", YEAR, "--school", school.code, "--out", str(path), stdout=io.StringIO()
    )
    manifest = manifest_of(path)
    kinds = [e["kind"] for e in manifest["files"]]
    assert kinds.count("xml") == 2 and kinds.count("pdf") == 2
    assert kinds.count("tsa_root") >= 1
    assert kinds.count("timestamp") >= 6  # each of the three signatures of each record
    # Checked with nothing of the portal's trust: no roots, no CRL sources, no TSA configured.
    settings.HOCBA_TRUST_ROOTS = settings.HOCBA_TRUST_CRLS = settings.HOCBA_TSA_TRUST_ROOTS = []
    settings.HOCBA_TSA_URL = ""
    result = archive_check(str(path))
    assert result.ok, [f.line() for f in result.findings]
    assert result.signatures_checked == 6 and result.pdf_signatures_checked == 2

    # A sealed PDF changed after sealing (the forger fixing the manifest too): named for its seal.
    pdf_path = first(path, "pdf")
    with zipfile.ZipFile(path) as z:
        pdf = z.read(pdf_path)
    at = pdf.index(b"/MediaBox")
    digit = next(i for i in range(at, at + 40) if pdf[i : i + 1].isdigit() and pdf[i : i + 1] != b"0")
    altered = pdf[:digit] + b"0" + pdf[digit + 1 :]
    result = archive_check(str(_fix_manifest(path, tmp_path / "altered.zip", {pdf_path: altered})))
    assert {(f.path, f.code) for f in result.findings} == {(pdf_path, "pdf_signature")}

    # A timestamp file swapped for another signature's token: not the one its signature carries.
    tokens = [e["path"] for e in manifest["files"] if e["kind"] == "timestamp"]
    with zipfile.ZipFile(path) as z:
        other = z.read(tokens[1])
    result = archive_check(str(_fix_manifest(path, tmp_path / "token.zip", {tokens[0]: other})))
    assert {(f.path, f.code) for f in result.findings} == {(tokens[0], "timestamp_not_in_record")}

    # Without the TSA's root, the timestamps cannot be trusted: every record is named.
    tsa = [e["path"] for e in manifest["files"] if e["kind"] == "tsa_root"]
    result = archive_check(str(rewrite(path, tmp_path / "no-tsa.zip", drop=tsa)))
    xml_paths = {e["path"] for e in manifest["files"] if e["kind"] == "xml"}
    assert xml_paths <= result.paths()


def test_a_job_that_cannot_write_its_file_fails_with_the_reason_and_leaves_nothing(
    client_as, department_officer, issued_year, tmp_path, settings, django_capture_on_commit_callbacks
):
    from registry.archive_jobs import archive_export_run
    from registry.models import ArchiveState

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    settings.HOCBA_ARCHIVE_DIR = str(blocker / "archives")
    client = client_as(department_officer)
    export = _request(client, "province", django_capture_on_commit_callbacks)
    failed = archive_export_run(export_pk=export.pk)
    assert failed.state == ArchiveState.FAILED and failed.error.startswith("NotADirectoryError")
    assert client.get(f"/so/luu-tru/{export.pk}/tai-ve/").status_code == 404
    assert "Lỗi" in client.get("/so/luu-tru/", HTTP_ACCEPT_LANGUAGE="vi").content.decode()


# --- Renewed records (XAdES-LTA archive timestamps) ---------------------------------------------


def test_a_renewed_record_is_archived_with_its_renewal_and_a_tampered_renewal_is_named(
    timestamping, homeroom_teacher, principal, school, records, tmp_path, settings
):
    record = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    connection.set_schema_to_public()
    call_command(
        "archive_timestamp", "--school", school.code, "--all", stdout=io.StringIO(), stderr=io.StringIO()
    )
    path = tmp_path / "renewed.zip"
    call_command(
        "export_archive", "--year", YEAR, "--school", school.code, "--out", str(path), stdout=io.StringIO()
    )
    manifest = manifest_of(path)
    renewal = next(e for e in manifest["files"] if e["kind"] == "renewal")
    assert renewal["record_id"] == record.record_id and renewal["path"].endswith("-v1.renewed.xml")
    # Three signature timestamps and three archive timestamps.
    assert sum(1 for e in manifest["files"] if e["kind"] == "timestamp") == 6
    settings.HOCBA_TRUST_ROOTS = settings.HOCBA_TRUST_CRLS = settings.HOCBA_TSA_TRUST_ROOTS = []
    result = archive_check(str(path))
    assert result.ok, [f.line() for f in result.findings]
    assert result.records_checked == 1 and result.signatures_checked == 6

    def other_content(data: bytes) -> bytes:  # a renewal that says something else
        return flip_byte_in_content(data)

    forged = archive_check(
        str(
            _fix_manifest(
                path,
                tmp_path / "forged.zip",
                {renewal["path"]: other_content(zipfile.ZipFile(path).read(renewal["path"]))},
            )
        )
    )
    codes = {f.code for f in forged.findings if f.path == renewal["path"]}
    assert "renewal_content" in codes and any(c.startswith("signature:") for c in codes)
    assert forged.paths() == {renewal["path"]}
