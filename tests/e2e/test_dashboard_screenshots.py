"""Screenshots of the department's and a division's dashboards with the demo data, in a real browser.

The test province of the suite cannot hold the demo province (the department is a singleton), so
this test builds a database of its own: `migrate_schemas`, then `manage.py seed_demo` (the
province, its users, each school's 2025-2026 year, and the signing set-up this machine allows, as
`make run` seeds it), then `closing_season_advance` below takes the closing season further through
the schools' own services (results computed, years approved, records made and confirmed in every
class). Every figure on the pages is counted from that data by the apps: nothing is signed beyond
what the demo signs, nothing reaches the Ministry (no repository here), and the weeks chart has
the one week the test ran in. A server on that database and
Chromium do the rest: so.chuyenvien (department officer, second factor) and phong.chuyenvien
(officer of the Lào Cai city division) log in through the login form.

Saved: docs/images/dashboard-department.png, docs/images/dashboard-division.png and
docs/images/dashboard-school.png (a school's supervision page, seen with the data-access grant).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from portal.choices import Role
from portal.demo import DEMO_PASSWORD, demo_schools
from portal.models import RoleAssignment
from schools.models import SchoolClass
from tests.e2e.conftest import ROOT, _free_port
from transcripts.records.services import year_records_confirm_all, year_records_create
from transcripts.results import class_results_compute
from transcripts.yearclose import class_year_close

pytestmark = pytest.mark.slow

IMAGES = ROOT / "docs" / "images"
YEAR = "2025-2026"


def closing_season_advance() -> None:
    """Run in the demo database (manage.py shell): the closing season taken further than the demo
    leaves it, through the schools' own services, as their staff would: in every class of every
    demo school the homeroom teacher computes the results, the principal approves the year, the
    homeroom teacher makes the records and confirms them. A class the demo gives no homeroom
    teacher is approved by the principal, and its records wait (the service refuses them: nobody
    would sign them). The progress rows (and this week's) are written by those services; no figure
    is written by hand."""
    for school in demo_schools():
        principal = RoleAssignment.objects.current().get(school=school, role=Role.PRINCIPAL).user
        with school:
            for school_class in SchoolClass.objects.filter(school_year__code=YEAR).select_related(
                "homeroom_teacher"
            ):
                teacher = school_class.homeroom_teacher
                try:
                    if school_class.closed_at is None:
                        if teacher is not None:
                            class_results_compute(actor=teacher, school=school, school_class=school_class)
                        class_year_close(actor=principal, school=school, school_class=school_class)
                    year_records_create(actor=teacher or principal, school=school, school_class=school_class)
                    if teacher is not None:  # only the homeroom teacher confirms
                        year_records_confirm_all(actor=teacher, school=school, school_class=school_class)
                except ValidationError as refused:
                    print(f"{school.code} {school_class.name}: {' '.join(refused.messages)}")


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def demo_server(django_db_setup, django_db_blocker):
    """A database with the demo province and its closing season, and a server on it."""
    settings = connection.settings_dict
    name = f"{settings['NAME']}_demo"
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    env = dict(
        os.environ,
        DATABASE_URL=f"postgresql://{settings['USER']}@{host}:{port}/{name}",
        HOCBA_CACHE_PREFIX=f"hocba-demo-{uuid.uuid4().hex[:8]}",
        HOCBA_TESTING="1",
        DJANGO_DEBUG="1",  # runserver serves the static files
        PYTHONUNBUFFERED="1",
    )
    _manage(env, "migrate_schemas", "--noinput", "-v", "0")
    print(_manage(env, "seed_demo", "--quiet"))  # what `make run` seeds (signing: what this machine allows)
    print(
        _manage(
            env,
            "shell",
            "-c",
            "from tests.e2e.test_dashboard_screenshots import closing_season_advance as advance; advance()",
        )
    )
    server_port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{server_port}", "--noreload", "--skip-checks"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", server_port), timeout=0.5):
                break
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(server.stdout.read().decode()) from None  # type: ignore[union-attr]
            time.sleep(0.2)
    yield f"http://127.0.0.1:{server_port}", env
    server.terminate()
    server.wait(10)
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _log_in(page, url: str, env: dict, username: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if "/accounts/2fa/authenticate/" in page.url:
        # A code is good for its 30 s window: never fetch one about to expire.
        if time.time() % 30 > 24:
            time.sleep(30 - time.time() % 30 + 0.5)
        page.fill("input[name=code]", _manage(env, "demo_totp", username).strip())
        page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_screenshots_of_the_department_and_division_dashboards(demo_server, page):
    url, env = demo_server
    IMAGES.mkdir(parents=True, exist_ok=True)

    _log_in(page, url, env, "so.chuyenvien")
    page.click("text=Tiến độ các trường trong tỉnh")
    page.wait_for_url(f"{url}/so/")
    table = page.locator("table.progress-table")
    assert "Phòng Giáo dục và Đào tạo thành phố Lào Cai" in table.inner_text()
    assert "Trực thuộc Sở" in table.inner_text()
    assert page.locator("svg polyline").count() == 3
    page.screenshot(path=str(IMAGES / "dashboard-department.png"), full_page=True)

    # Sorting by completion, descending, from the header: the state shows on the column.
    page.click("table.progress-table th >> text=Hoàn thành")
    page.click("table.progress-table th >> text=Hoàn thành")
    assert page.locator("th[aria-sort=descending]").inner_text().startswith("Hoàn thành")

    # A school's supervision page; this officer holds the data-access grant: the way in is there.
    page.goto(f"{url}/giam-sat/truong/thpt-so1/")
    assert page.locator('a[href="/truong/thpt-so1/so-diem/"]').count() == 1
    page.screenshot(path=str(IMAGES / "dashboard-school.png"), full_page=True)

    page.context.clear_cookies()
    _log_in(page, url, env, "phong.chuyenvien")
    page.click("text=Tiến độ các trường của đơn vị")
    page.wait_for_url(f"{url}/don-vi/pgd-lc/")
    assert "Trường Tiểu học Kim Đồng" in page.locator("table.progress-table").inner_text()
    page.screenshot(path=str(IMAGES / "dashboard-division.png"), full_page=True)

    # The school's supervision page, one click away; without a grant it offers no way in.
    page.click("table.progress-table >> text=Trường Tiểu học Kim Đồng")
    page.wait_for_url(f"{url}/giam-sat/truong/th-kimdong/?year={YEAR}")
    assert "quyền xem dữ liệu" in page.inner_text("main")
