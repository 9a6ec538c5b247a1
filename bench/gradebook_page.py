"""The grade book page on a phone and a slow link: transfer size, first paint, time to interactive.

    make bench-gradebook-page
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/gradebook_page.py [--runs N] [--screenshot PATH]

Runs in a throwaway database (bench/support.py). A lower-secondary school is provisioned and
seeded with the demo data at 40 students a class (a full year of scores); the class measured is
the subject teacher's first one, in Toán (4 regular scores, mid-term, end-term, comment: every
cell filled).

The portal is served the way production serves it: gunicorn (2 sync workers) on config.wsgi with
DEBUG off, a secret key and a deployment key of its own, and static files as the settings serve
them. When the settings have no static-file serving of their own (no WhiteNoise middleware), the
bench wraps the application in Django's StaticFilesHandler (what `runserver` does) and says so:
with DEBUG off Django serves no static file, so there is no other path to measure.

Debian's /usr/bin/chromium, driven by Playwright, signs the teacher in through the login form (on
an unthrottled link), then loads the grade book at a 390x844 phone viewport with Chromium's
network emulation (CDP `Network.emulateNetworkConditions`: 400 ms latency, 400 kbit/s = 50,000
bytes/s down and up):

- first visit (cold): the cache disabled (`Network.setCacheDisabled`), median of --runs visits;
- repeat visit (warm): the cache on, the page visited once unmeasured, then --runs visits measured.
- the measured visits show the first-time guide (its style sheet is one more request); then the
  teacher dismisses it and one more first visit is measured: the everyday page on a new device.

Figures, each from the browser: requests and bytes on the wire (the sum of CDP
`Network.loadingFinished.encodedDataLength`: compressed bodies plus headers), the HTML document's
bytes on the wire and decoded, first contentful paint (the `paint` entry), and time to interactive,
defined here as the navigation's `domContentLoadedEventEnd`: deferred scripts (the grade book's
gradebook.js) run before DOMContentLoaded fires, so at that moment every cell is wired up. The
`load` event's end is printed too, and, as a check on that definition, the moment the script
marks the table ready (`data-ready`, set once every cell is wired; seen by a MutationObserver the
bench adds before the page loads). The server's own access log counts the requests and body bytes
it sent in the same window (it sees what the page's CDP session does not, e.g. a service worker's
fetches). Each figure is printed with the ratio to its budget and PASS/FAIL:

- transferred, first visit: 100 KB (102,400 bytes); interactive, first visit: 5 s;
- interactive, repeat visit: 3 s.

`--screenshot` (default docs/images/gradebook-phone.png; `--screenshot ''` for none) keeps a
picture of the phone-width grade book after the repeat visit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import ROOT, throwaway_django

if TYPE_CHECKING:  # gunicorn imports this module: no browser library at run time outside _browse
    from playwright.sync_api import ViewportSize

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-only-password-2026"  # noqa: S105 - a throwaway database's teacher
LATENCY_MS = 400
THROUGHPUT = 50_000  # bytes/s: 400 kbit/s
VIEWPORT: ViewportSize = {"width": 390, "height": 844}
UNTHROTTLED = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
# When the grade book's script marks the table ready (`data-ready`, set once every cell is wired):
# a check on the definition of interactive (it must not come after DOMContentLoaded's end).
READY_PROBE = """
new MutationObserver((changes, observer) => {
  if (document.querySelector("#gradebook[data-ready]")) {
    window.__gradebookReady = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ["data-ready"]});
"""
BUDGET_BYTES = 100 * 1024
BUDGET_INTERACTIVE_COLD = 5.0
BUDGET_INTERACTIVE_WARM = 3.0
WHITENOISE = "whitenoise.middleware.WhiteNoiseMiddleware"
COLLECT_IGNORE = ["-i", "admin", "-i", "rest_framework", "-i", "drf_spectacular_sidecar", "-i", "fonts"]


# --- The WSGI application gunicorn serves (imported by gunicorn as bench.gradebook_page:application)
_app = None


def application(environ, start_response):
    """config.wsgi's application; wrapped in StaticFilesHandler when the settings serve no static."""
    global _app
    if _app is None:
        from django.conf import settings
        from django.core.wsgi import get_wsgi_application

        app = get_wsgi_application()
        if WHITENOISE not in settings.MIDDLEWARE:
            from django.contrib.staticfiles.handlers import StaticFilesHandler

            app = StaticFilesHandler(app)
        _app = app
    return _app(environ, start_response)


@dataclass
class Visit:
    requests: int = 0
    wire_bytes: int = 0
    html_wire: int = 0
    html_decoded: int = 0
    fcp: float = 0.0
    interactive: float = 0.0
    load: float = 0.0
    server_requests: int = 0
    server_paths: list[str] = field(default_factory=list)
    status: int = 0
    ready: float = 0.0
    encodings: dict[str, str] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise SystemExit("gunicorn did not start within 60 s")


def _access_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _visit(page, cdp, url: str, *, cache: bool, access_log: Path) -> Visit:
    """One throttled navigation to `url`; its figures."""
    seen: dict[str, dict] = {}

    def sent(event):
        seen.setdefault(event["requestId"], {})["url"] = event["request"]["url"]

    def response(event):
        entry = seen.setdefault(event["requestId"], {})
        entry["type"] = event.get("type")
        entry["status"] = event["response"]["status"]
        headers = {k.lower(): v for k, v in event["response"].get("headers", {}).items()}
        entry["encoding"] = headers.get("content-encoding", "identity")
        entry["cached"] = event["response"].get("fromDiskCache") or event["response"].get("fromMemoryCache")

    def data(event):
        entry = seen.setdefault(event["requestId"], {})
        entry["decoded"] = entry.get("decoded", 0) + event["dataLength"]

    def finished(event):
        seen.setdefault(event["requestId"], {})["wire"] = event["encodedDataLength"]

    handlers = {
        "Network.requestWillBeSent": sent,
        "Network.responseReceived": response,
        "Network.dataReceived": data,
        "Network.loadingFinished": finished,
    }
    for name, handler in handlers.items():
        cdp.on(name, handler)
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": not cache})
    before = len(_access_lines(access_log))
    page.goto(url, wait_until="load", timeout=120_000)
    page.wait_for_load_state("networkidle", timeout=120_000)
    timing = page.evaluate(
        """() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const fcp = performance.getEntriesByName('first-contentful-paint')[0];
            return {dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, fcp: fcp ? fcp.startTime : 0,
                    ready: window.__gradebookReady || 0};
        }"""
    )
    time.sleep(0.5)  # the access log is written after the response
    for name, handler in handlers.items():
        cdp.remove_listener(name, handler)
    visit = Visit(
        fcp=timing["fcp"] / 1000,
        interactive=timing["dcl"] / 1000,
        load=timing["load"] / 1000,
        ready=timing["ready"] / 1000,
    )
    for entry in seen.values():
        if "wire" not in entry:
            continue
        visit.requests += 1
        visit.wire_bytes += entry["wire"]
        name = entry.get("url", "?").split("?")[0].rsplit("/", 1)[-1] or "the page"
        how = "cache" if entry.get("cached") else f"{entry['wire']} B"
        visit.encodings[name] = f"{entry.get('encoding', '?')} {how}"
        if entry.get("type") == "Document":
            visit.status = entry.get("status", 0)
            visit.html_wire += entry["wire"]
            visit.html_decoded += entry.get("decoded", 0)
    _count_server(visit, _access_lines(access_log)[before:])
    return visit


def _count_server(visit: Visit, lines: list[str]) -> None:
    """The requests the server's access log shows ("GET /path HTTP/1.1 200 size")."""
    visit.server_requests = len(lines)
    visit.server_paths = [line.split(" ")[1].split("?")[0] for line in lines if " " in line]


def _judge(value: float, budget: float) -> str:
    return f"{value / budget:5.2f} of budget  {'PASS' if value <= budget else 'FAIL'}"


def _report(label: str, visits: list[Visit], *, budget_interactive: float, bytes_budget: bool) -> None:
    def med(attr: str) -> float:
        return statistics.median(getattr(v, attr) for v in visits)

    wire = med("wire_bytes")
    interactive = med("interactive")
    print(f"{label} (median of {len(visits)})")
    print(f"  requests                  {med('requests'):8.0f}      server saw {med('server_requests'):.0f}")
    line = f"  transferred (on the wire) {wire:8.0f} B"
    if bytes_budget:
        line += f"   {_judge(wire, BUDGET_BYTES)} ({BUDGET_BYTES} B)"
    print(line)
    print(f"  HTML on the wire          {med('html_wire'):8.0f} B    decoded {med('html_decoded'):.0f} B")
    print(f"  first contentful paint    {med('fcp'):8.2f} s")
    print(
        f"  interactive (DCL end)     {interactive:8.2f} s    {_judge(interactive, budget_interactive)}"
        f" ({budget_interactive:.0f} s)"
    )
    print(f"  grade book wired          {med('ready'):8.2f} s    (its script's data-ready; 0: never)")
    print(f"  load event end            {med('load'):8.2f} s")
    print("  per run: " + "; ".join(f"{v.wire_bytes} B, {v.fcp:.2f} / {v.interactive:.2f} s" for v in visits))
    print("  last run: " + ", ".join(f"{k}: {v}" for k, v in sorted(visits[-1].encodings.items())))
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="first visits measured (default 3)")
    parser.add_argument(
        "--screenshot",
        default=str(ROOT / "docs" / "images" / "gradebook-phone.png"),
        help="where the phone-width screenshot goes ('' for none)",
    )
    parser.add_argument("--desktop", default="", help="also a screenshot at 1280x900 here (a check)")
    parser.add_argument("--html", default="", help="keep the grade book's HTML here (as the server sent it)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit("Debian's chromium is missing (/usr/bin/chromium): run `make sysdeps` as root")

    with throwaway_django() as server_version:
        from django.conf import settings
        from django.db import connection

        from portal.choices import Role, SchoolLevel
        from portal.models import RoleAssignment, User
        from portal.provisioning import SchoolSpec, school_provision
        from schools.models import Enrolment, TeachingAssignment
        from transcripts.demo import school_demo_seed

        say = lambda line: print(line, file=sys.stderr)  # noqa: E731
        say("seeding a school (40 students a class)")
        teacher = User.objects.create_user(
            username="thcs.gvbm", password=PASSWORD, full_name="Nguyễn Thị Thu Hương"
        )
        homeroom = User.objects.create_user(
            username="thcs.gvcn", password=PASSWORD, full_name="Trần Văn Minh"
        )
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(
                code="bench-thcs", name="Trường THCS Lê Quý Đôn", levels=(SchoolLevel.LOWER_SECONDARY,)
            ),
            division=None,
        )
        # Hashed as the server (DEBUG off, not testing) checks it: the bench process hashes with MD5.
        from django.contrib.auth.hashers import PBKDF2PasswordHasher

        teacher.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
        teacher.save(update_fields=["password"])
        for user, role in ((teacher, Role.SUBJECT_TEACHER), (homeroom, Role.HOMEROOM_TEACHER)):
            RoleAssignment.objects.create(user=user, role=role, school=school)
        with school:
            school_demo_seed(school, {"thcs.gvbm": teacher, "thcs.gvcn": homeroom}, students_per_class=40)
            assignment = (
                TeachingAssignment.objects.filter(teacher=teacher, subject__code="toan")
                .select_related("school_class")
                .order_by("school_class__name")
                .first()
            )
            if assignment is None:
                raise SystemExit("the demo gave the subject teacher no class in Toán")
            school_class = assignment.school_class
            students = Enrolment.objects.filter(school_class=school_class).count()
        connection.set_schema_to_public()
        connections_close()

        tmp = Path(tempfile.mkdtemp(prefix="hocba-bench-page-"))
        static_root = tmp / "static"
        access_log = tmp / "access.log"
        server_log = tmp / "gunicorn.log"
        from cryptography.fernet import Fernet

        env = {k: v for k, v in os.environ.items() if k not in ("HOCBA_TESTING", "DJANGO_DEBUG")}
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY="bench-" + Fernet.generate_key().decode(),
            HOCBA_DEPLOYMENT_KEY=Fernet.generate_key().decode(),
            DJANGO_SECURE_COOKIES="0",  # plain http on 127.0.0.1
            DJANGO_SECURE_SSL_REDIRECT="0",
            HOCBA_STATIC_ROOT=str(static_root),
            PYTHONUNBUFFERED="1",
        )
        served_by = "WhiteNoise (settings)" if WHITENOISE in settings.MIDDLEWARE else "StaticFilesHandler"
        if WHITENOISE in settings.MIDDLEWARE:
            say("collectstatic")
            subprocess.run(
                # Without the admin's, the API docs' and the PDF fonts' files, which these pages
                # do not use: 4 s instead of 2 minutes (brotli at its highest level over 46 MB).
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0", *COLLECT_IGNORE],
                cwd=ROOT,
                env=env,
                check=True,
            )
        port = _free_port()
        say(f"gunicorn on 127.0.0.1:{port}")
        with server_log.open("w") as log:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "bench.gradebook_page:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--access-logfile",
                    str(access_log),
                    "--access-logformat",
                    "%(r)s %(s)s %(B)s",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_port(port, server, server_log)
            base = f"http://127.0.0.1:{port}"
            book = f"{base}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1"
            try:
                cold, warm, with_worker, everyday = _browse(
                    base, book, args.runs, access_log, args.screenshot, args.html, args.desktop
                )
                failed = [v.status for v in [*cold, *warm, with_worker, everyday] if v.status != 200]
                if failed:
                    raise RuntimeError(f"the grade book answered {failed} in measured visits")
            except Exception:
                print(server_log.read_text()[-6000:], file=sys.stderr)
                raise
        finally:
            server.terminate()
            server.wait(15)
            shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"Grade book page on a slow link · {platform.node()} · {os.cpu_count()} cores · "
        f"PostgreSQL {server_version} · chromium {_chromium_version()}"
    )
    print(
        f"class {school_class.name}, {students} students, Toán (4 regular, mid, end, comment), term I; "
        f"viewport {VIEWPORT['width']}x{VIEWPORT['height']}; latency {LATENCY_MS} ms, "
        f"{THROUGHPUT * 8 // 1000} kbit/s down and up"
    )
    print(f"served by gunicorn (2 sync workers), DEBUG off; static files: {served_by}\n")
    _report(
        "first visit, cache disabled", cold, budget_interactive=BUDGET_INTERACTIVE_COLD, bytes_budget=True
    )
    _report("repeat visit, cache on", warm, budget_interactive=BUDGET_INTERACTIVE_WARM, bytes_budget=False)
    _report(
        "first visit once the guide is dismissed (every later device of the teacher)",
        [everyday],
        budget_interactive=BUDGET_INTERACTIVE_COLD,
        bytes_budget=True,
    )
    extra = list(with_worker.server_paths)
    for path in cold[-1].server_paths:
        if path in extra:
            extra.remove(path)
    print("first visit with service workers allowed (what the page's worker adds, from the server's log)")
    print(
        f"  the page: {with_worker.requests} requests, {with_worker.wire_bytes} B on the wire; "
        f"the server answered {with_worker.server_requests}: {len(extra)} more than a first visit"
        + (f" ({', '.join(extra)})" if extra else "")
    )
    print()
    if args.screenshot:
        print(f"screenshot: {args.screenshot}")
    return 0


def connections_close() -> None:
    from django.db import connections

    connections.close_all()


def _chromium_version() -> str:
    out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False).stdout
    words = out.split()
    return words[1] if len(words) > 1 else "?"


def _throttled_page(browser, cookies, *, workers: str = "block"):
    context = browser.new_context(
        locale="vi-VN",
        viewport=VIEWPORT,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        service_workers=workers,
    )
    context.add_cookies(cookies)
    context.add_init_script(READY_PROBE)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": LATENCY_MS,
            "downloadThroughput": THROUGHPUT,
            "uploadThroughput": THROUGHPUT,
        },
    )
    return context, page, cdp


def _browse(
    base: str, book: str, runs: int, access_log: Path, screenshot: str, html: str, desktop: str
) -> tuple[list[Visit], list[Visit], Visit, Visit]:
    """The first visits (a new browser context each), the repeat visit, and the service worker's
    first visit (unthrottled: its own fetches are counted by the server only)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(locale="vi-VN", viewport=VIEWPORT, service_workers="block")
        page = context.new_page()
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=login]", "thcs.gvbm")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        try:
            page.wait_for_url(f"{base}/", timeout=15_000)
        except Exception:
            raise SystemExit(f"sign-in failed at {page.url}: {page.inner_text('body')[:800]}") from None
        response = page.goto(book)  # warms the server (route cache, templates, connections), not measured
        if response is None or response.status != 200:
            raise RuntimeError(f"the grade book answered {response and response.status}")
        if html:
            Path(html).write_text(response.text())
        cookies = context.cookies()
        context.close()

        # Service workers are blocked in the timed visits: a worker's own fetches go through its
        # own DevTools target, which the page's network emulation does not throttle.
        cold = []
        for _i in range(runs):
            context, page, cdp = _throttled_page(browser, cookies)
            cold.append(_visit(page, cdp, book, cache=False, access_log=access_log))
            context.close()
        context, page, cdp = _throttled_page(browser, cookies)
        _visit(page, cdp, book, cache=True, access_log=access_log)  # fills the cache
        page.goto("about:blank")
        warm = []
        for _i in range(runs):
            page.goto("about:blank")
            warm.append(_visit(page, cdp, book, cache=True, access_log=access_log))
        context.close()

        # What the grade book's service worker (if the page registers one) adds to a first visit.
        context, page, cdp = _throttled_page(browser, cookies, workers="allow")
        before = len(_access_lines(access_log))
        with_worker = _visit(page, cdp, book, cache=True, access_log=access_log)
        page.evaluate(
            "() => navigator.serviceWorker && navigator.serviceWorker.getRegistration()"
            ".then((r) => r && navigator.serviceWorker.ready)"
        )
        time.sleep(3)  # the worker's install and its copy of the page
        _count_server(with_worker, _access_lines(access_log)[before:])
        context.close()
        # The everyday grade book: the first-time guide dismissed (last: the dismissal is the
        # teacher's, for every later visit), then a first visit (a new device) and the pictures.
        context, page, cdp = _throttled_page(browser, cookies)
        cdp.send("Network.emulateNetworkConditions", {**UNTHROTTLED})
        page.goto(book)
        hide = page.locator("section.guide form button[type=submit]")
        if hide.count():
            hide.first.click()
            page.wait_for_load_state("load")
        context.close()
        context, page, cdp = _throttled_page(browser, cookies)
        everyday = _visit(page, cdp, book, cache=False, access_log=access_log)
        context.close()
        if screenshot:
            context, page, cdp = _throttled_page(browser, cookies)
            cdp.send("Network.emulateNetworkConditions", {**UNTHROTTLED})
            page.goto(book)
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=screenshot)
            # Scrolled inside the table: the header row and the names stay in view.
            page.eval_on_selector("#gradebook", "t => { t.scrollLeft = 260; t.scrollTop = 400; }")
            scrolled = Path(screenshot)
            page.screenshot(path=scrolled.with_name(f"{scrolled.stem}-scrolled{scrolled.suffix}"))
            context.close()
        if desktop:
            context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900})
            context.add_cookies(cookies)  # type: ignore[arg-type] # the Cookie dicts it gave
            page = context.new_page()
            page.goto(book)
            page.screenshot(path=desktop)
            context.close()
        browser.close()
    return cold, warm, with_worker, everyday


if __name__ == "__main__":
    sys.exit(main())
