"""The Content-Security-Policy in a real browser, on the production stack: every kind of page opens
with zero violations, and its JavaScript still works (nothing inline is left to be blocked).

Debian's chromium through Playwright (as tests/e2e), trusting the stack's throwaway CA.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value

from portal.choices import Role
from portal.models import RoleAssignment, School, User
from tests.conftest import PASSWORD, SCHOOLS

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
SCHOOL = SCHOOLS["school"][0]


@pytest.fixture(scope="module")
def browser(stack, tmp_path_factory, playwright_driver):
    """Chromium trusting the stack's throwaway CA (and only for this browser): an NSS database in
    a HOME of its own, as Chromium on Linux reads trust anchors from ~/.pki/nssdb. Real TLS
    trust, not ignored errors: Chromium registers no service worker (the grade book's) from a
    certificate it does not trust, whatever the flags."""
    import os
    import shutil
    import subprocess

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make sysdeps` (as root)"
    home = tmp_path_factory.mktemp("chromium-home")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    certutil = shutil.which("certutil")
    assert certutil, "certutil (libnss3-tools) is missing: run `make sysdeps` (as root)"
    subprocess.run([certutil, "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True)
    subprocess.run(
        [certutil, "-A", "-d", f"sql:{nssdb}", "-n", "stack-ca", "-t", "C,,", "-i", str(stack.ca_file)],
        check=True,
    )
    instance = playwright_driver.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        env={**os.environ, "HOME": str(home)},
    )
    yield instance
    instance.close()


class Watched:
    """A page whose CSP violations, script errors and failed sub-resources are recorded."""

    WATCH = """
        window.__violations = [];
        document.addEventListener("securitypolicyviolation", (e) => {
            window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " "
                + (e.sourceFile || "") + ":" + e.lineNumber);
        });
    """

    def __init__(self, browser, base_url: str):
        self.context = browser.new_context(
            locale="vi-VN",
            base_url=base_url,
            viewport={"width": 1280, "height": 900},
        )
        self.context.add_init_script(self.WATCH)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        self.page.on("console", self._console)
        self.page.on(
            "response",
            lambda response: (
                self.problems.append(f"{response.status} {response.url}")
                if response.status >= 400 and response.request.resource_type != "document"
                else None
            ),
        )
        self.page.on("requestfailed", self._failed)

    def _failed(self, request) -> None:
        # The page's view of a service worker's script is an aborted request even when the worker
        # fetched and installed it (the test checks the registration instead).
        if request.url.endswith("/sw.js") and request.failure == "net::ERR_ABORTED":
            return
        self.problems.append(f"failed: {request.url} {request.failure}")

    def _console(self, message) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused" in text):
            self.problems.append(f"console: {text}")

    def open(self, path: str):
        response = self.page.goto(path)
        self.page.wait_for_load_state("networkidle")
        return response

    def assert_clean(self, what: str) -> None:
        violations = self.page.evaluate("window.__violations || []")
        assert violations == [], f"{what}: CSP violations {violations}"
        assert self.problems == [], f"{what}: {self.problems}"

    def log_in(self, username: str, secret: str | None = None) -> None:
        self.open("/accounts/login/")
        self.page.fill("input[name=login]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()
        if secret is not None:
            self.page.wait_for_url("**/accounts/2fa/authenticate/")
            if time.time() % 30 > 25:  # never a code about to expire
                time.sleep(30 - time.time() % 30 + 0.5)
            self.page.fill("input[name=code]", format_hotp_value(hotp_value(secret, int(time.time()) // 30)))
            self.page.click("button[type=submit]")
        self.page.wait_for_url(lambda url: "/accounts/" not in url)
        self.assert_clean(f"signing in as {username}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser, stack):
    opened: list[Watched] = []

    def make() -> Watched:
        opened.append(Watched(browser, stack.url))
        return opened[-1]

    yield make
    for item in opened:
        item.close()


@pytest.fixture
def principal_with_code(django_db_blocker):
    """A principal of the test school with an authenticator app (committed, for the server)."""
    tag = uuid.uuid4().hex[:6]
    with django_db_blocker.unblock():
        user = User.objects.create_user(
            username=f"t-csp-{tag}",
            password=PASSWORD,
            full_name="Phan Hiệu Trưởng",
            email=f"csp-{tag}@test.local",
        )
        RoleAssignment.objects.create(user=user, role=Role.PRINCIPAL, school=School.objects.get(code=SCHOOL))
        secret = generate_totp_secret()
        TOTP.activate(user, secret)
    return user.username, secret


def test_the_public_pages_open_without_a_violation_and_their_script_works(watched):
    visitor = watched()

    response = visitor.open("/accounts/login/")
    assert response.status == 200
    visitor.assert_clean("the login page")
    # The language chooser's script (static/js/portal.js, no inline handler): English at once.
    with visitor.page.expect_navigation():
        visitor.page.select_option("select[name=language]", "en")
    assert visitor.page.locator("html").get_attribute("lang") == "en"
    visitor.assert_clean("the language switch")

    for path, status in (("/tra-cuu/", 200), ("/khong-co-trang-nay/", 404), ("/huong-dan/chu-ky-so/", 200)):
        response = visitor.open(path)
        assert response.status == status, path
        visitor.assert_clean(path)


def test_the_api_docs_page_runs_swagger_ui_without_a_violation(watched):
    visitor = watched()
    response = visitor.open("/api/docs/")
    assert response.status == 200
    # Swagger UI ran (its start-up script is a file now, not inline) and read the schema.
    visitor.page.wait_for_selector("#swagger-ui .info .title")
    assert "Học bạ số" in visitor.page.locator("#swagger-ui .info .title").inner_text()
    visitor.assert_clean("the API docs page")


@pytest.fixture(scope="module")
def own_class(django_db_blocker):
    """A class of the test school for these tests only (committed, for the server): the cell saved
    below must not change the session's shared book."""
    import datetime as dt

    from django.db import connection

    from schools.models import SchoolClass, SchoolYear, Subject
    from schools.services import class_create, student_enrol, teaching_assignment_set
    from tests.conftest import student_make

    with django_db_blocker.unblock():
        school = School.objects.get(code=SCHOOL)
        with school:
            year = SchoolYear.objects.get(is_current=True)
            name = f"8P{SchoolClass.objects.filter(name__startswith='8P').count() + 1}"
            school_class = class_create(school_year=year, name=name, grade=8, levels=school.levels)
            teaching_assignment_set(
                school_class=school_class,
                subject=Subject.objects.get(code="toan"),
                teacher=User.objects.get(username="subject_teacher"),
            )
            student = student_make(f"{name}-1", "Lạc Văn Phúc", 1, dt.date(2012, 6, 1))
            student_enrol(student=student, school_class=school_class, enrolled_on=year.starts_on, number=1)
        connection.set_schema_to_public()
    return school_class.pk


def test_a_teachers_grade_book_and_an_officers_dashboard(watched, own_class):
    teacher = watched()
    teacher.log_in("subject_teacher")
    teacher.open(f"/truong/{SCHOOL}/so-diem/")
    teacher.assert_clean("the grade book index")
    teacher.open(f"/truong/{SCHOOL}/so-diem/{own_class}/toan/?hk=1")
    teacher.page.wait_for_selector("#gradebook tbody tr")
    teacher.page.wait_for_load_state("networkidle")
    teacher.assert_clean("the grade book")
    # Its script runs: a cell typed in is saved (the status says so).
    row = teacher.page.locator("#gradebook tbody tr").first
    row.locator("input[name=regular_1]").fill("7")
    teacher.page.keyboard.press("Tab")
    # (A locator, not wait_for_function: Playwright's polling evaluates a string, which the CSP
    # refuses as 'unsafe-eval'.)
    row.locator("td.regular_1.saved").wait_for(timeout=30_000)
    teacher.assert_clean("saving a cell")
    # The grade book's service worker is allowed (worker-src 'self') and installed.
    worker = teacher.page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.scriptURL)")
    assert worker.endswith(f"/truong/{SCHOOL}/so-diem/sw.js")
    teacher.assert_clean("the service worker")

    officer = watched()
    officer.log_in("division_officer")
    response = officer.open("/don-vi/t-div-a/")
    assert response.status == 200
    officer.assert_clean("the division dashboard")


def test_a_principal_with_two_factors_the_homeroom_view_and_the_admin(watched, principal_with_code):
    username, secret = principal_with_code
    principal = watched()
    principal.log_in(username, secret)

    principal.open(f"/truong/{SCHOOL}/so-diem/")
    principal.page.click("a[href*='/so-diem/lop/']")
    principal.page.wait_for_load_state("networkidle")
    assert "/so-diem/lop/" in principal.page.url
    principal.assert_clean("the homeroom view")

    principal.open("/admin/")
    principal.assert_clean("the admin index")
    principal.page.click("#content-main th[scope=row] a")
    principal.page.wait_for_load_state("networkidle")
    assert principal.page.locator("#changelist").count() == 1
    principal.assert_clean("an admin changelist")
    principal.page.click("#result_list tbody tr a")
    principal.page.wait_for_load_state("networkidle")
    assert principal.page.locator("#content-main form").count() == 1
    principal.assert_clean("an admin change form")


@pytest.fixture(scope="module")
def principal_without_code(django_db_blocker):
    """A principal who has not set up two factors yet (committed, for the server)."""
    tag = uuid.uuid4().hex[:6]
    with django_db_blocker.unblock():
        user = User.objects.create_user(
            username=f"t-csp-new-{tag}",
            password=PASSWORD,
            full_name="Kiều Hiệu Trưởng",
            email=f"csp-new-{tag}@test.local",
        )
        RoleAssignment.objects.create(user=user, role=Role.PRINCIPAL, school=School.objects.get(code=SCHOOL))
    return user.username


def test_the_two_factor_pages_set_up_and_overview(watched, principal_without_code, principal_with_code):
    """allauth's MFA pages: setting up TOTP (its QR code, a data: image) and the overview."""
    newcomer = watched()
    newcomer.open("/accounts/login/")
    newcomer.page.fill("input[name=login]", principal_without_code)
    newcomer.page.fill("input[name=password]", PASSWORD)
    newcomer.page.click("button[type=submit]")
    newcomer.page.wait_for_url("**/accounts/2fa/totp/activate/**")
    newcomer.page.wait_for_load_state("networkidle")
    assert newcomer.page.locator("img[src^='data:']").count() >= 1  # the QR code
    newcomer.assert_clean("setting up TOTP")

    username, secret = principal_with_code
    principal = watched()
    principal.log_in(username, secret)
    principal.open("/accounts/2fa/")
    principal.assert_clean("the two-factor overview")
