"""Screenshots of the department's and a division's dashboards with the demo data, in a real browser.

The test province of the suite cannot hold the demo province (the department is a singleton), so
this test builds a database of its own: `migrate_schemas`, then the demo (registry.demo.demo_seed:
the province, its users and each school's 2025-2026 year, about 5 s; the progress rows are
written by the apps as they seed). The demo stops before signing and forwarding (those need the
CSC service, SoftHSM2 and the Ministry's repository), so the closing season is written on top of
the schools' real figures by `closing_season_write` below: classes approved, records signed,
queued, acknowledged and rejected, and the weeks they moved in. A server on that database and
Chromium do the rest: so.chuyenvien (department officer, second factor) and phong.chuyenvien
(officer of the Lào Cai city division) log in through the login form.

Saved: docs/images/dashboard-department.png, docs/images/dashboard-division.png and
docs/images/dashboard-school.png (a school's supervision page, seen with the data-access grant).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest
from django.db import connection

from tests.e2e.conftest import ROOT, _free_port

pytestmark = pytest.mark.slow

IMAGES = ROOT / "docs" / "images"
YEAR = "2025-2026"
FIRST_WEEK = dt.date(2026, 5, 18)  # a Monday: the closing season's first week
WEEKS = 7

# code: (share of classes approved, of records signed, acknowledged, queued, {reason: rejected})
SEASON = {
    "th-kimdong": (1.0, 0.97, 0.84, 0.06, {"personal_id_missing": 2, "schema": 1}),
    "thcs-lqd": (1.0, 0.9, 0.62, 0.15, {"personal_id_missing": 3}),
    "thpt-so1": (1.0, 0.8, 0.47, 0.2, {"signature": 2, "personal_id_missing": 1}),
    "gdtx-lc": (0.5, 0.45, 0.18, 0.1, {}),
}
# How much of each figure moved in each week (shares of the final figure; each list adds up to 1).
MOVES = {
    "classes_approved": (0.35, 0.4, 0.15, 0.1, 0, 0, 0),
    "records_signed": (0, 0.15, 0.3, 0.25, 0.15, 0.1, 0.05),
    "records_acknowledged": (0, 0, 0.1, 0.2, 0.25, 0.25, 0.2),
}


def _spread(total: int, shares: tuple[float, ...]) -> list[int]:
    """Whole numbers in proportion to the shares, adding up to the total exactly."""
    running, moved = 0.0, []
    for share in shares:
        before = round(running * total)
        running += share
        moved.append(round(running * total) - before)
    moved[-1] += total - sum(moved)
    return moved


def closing_season_write() -> None:
    """Run in the demo database (manage.py shell): the season's figures on top of the demo's."""
    from django.db import transaction

    from portal.models_progress import ProgressWeek, SchoolProgress

    with transaction.atomic():
        for row in SchoolProgress.objects.select_related("school").filter(school_year=YEAR):
            approved, signed, acknowledged, queued, rejections = SEASON[row.school.code]
            students = row.students
            rejected = sum(rejections.values())
            row.classes_books_complete = row.classes
            row.classes_approved = round(row.classes * approved)
            row.records_acknowledged = round(students * acknowledged)
            row.records_queued = round(students * queued)
            row.records_rejected = rejected
            in_signing = round(students * signed) - row.records_acknowledged - row.records_queued - rejected
            row.records_issued = max(in_signing // 3, 0)
            row.records_signed_principal = max(in_signing - row.records_issued, 0)
            row.records_signed_homeroom = round((students - round(students * signed)) * 0.6)
            row.records_confirmed = students - round(students * signed) - row.records_signed_homeroom
            row.records_draft = 0
            row.students_waiting_summer = 2 if row.school.code != "gdtx-lc" else 4
            row.rejections = rejections
            row.save()
            moves = {
                name: _spread(total, MOVES[name])
                for name, total in (
                    ("classes_approved", row.classes_approved),
                    ("records_signed", row.records_signed),
                    ("records_acknowledged", row.records_acknowledged),
                )
            }
            ProgressWeek.objects.filter(school=row.school, school_year=YEAR).delete()
            ProgressWeek.objects.bulk_create(
                ProgressWeek(
                    school=row.school,
                    school_year=YEAR,
                    week=FIRST_WEEK + dt.timedelta(weeks=n),
                    **{name: moves[name][n] for name in moves},
                )
                for n in range(WEEKS)
            )


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
    _manage(env, "shell", "-c", "from registry.demo import demo_seed; demo_seed()")
    _manage(
        env,
        "shell",
        "-c",
        "from tests.e2e.test_dashboard_screenshots import closing_season_write; closing_season_write()",
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
    from portal.demo import DEMO_PASSWORD

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
