"""Server time of the grade book: the page of a 45-student class and a cell save, in-process
and under concurrent clients on gunicorn.

    make bench-gradebook                 # this, then bench/evaluate.py (rules throughput)
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/gradebook.py \
        [--requests N] [--clients 1,4,8] [--duration S] [--warmup S]

Runs in a throwaway database (bench/support.py). A school is provisioned and seeded with the
demo data (a 45-student class with a full year of scores).

In-process: the requests go through Django's whole stack (middleware, sessions, the school
route, templates), without a network, so the figure is server time. Printed: median and p95
over N requests, the statements each request issued, and the ratio of each to its budget and to
a peer page measured in the same run (the school's home page).

Concurrent clients (`--clients`, default 1,4,8; `--clients ''` skips it): the portal served as
in production, gunicorn with 2 sync workers on config.wsgi over loopback, DEBUG off, a secret
key of its own, static files collected (WhiteNoise). The subject teacher signs in through the
login form (a real session cookie); then for each client count N, N client processes fetch the
grade book page (term I, Toán) back to back for --duration seconds after --warmup seconds
unmeasured, asking for gzip as a browser does. Printed per N: requests, throughput, p50/p95/p99
of the latency each client saw (time in gunicorn's listen queue included: 2 workers serve N
clients), p95 ÷ the 50 ms target, gunicorn's own time per request (its access log, %(D)s:
from the worker taking the request to the response sent; no queue), the CPU the load
generator itself used, and the CPU a request takes (/proc: gunicorn's workers, their PostgreSQL
backends, the clients) with the capacity of the cores that gives: on a shared machine the
latencies swing with the other load, that figure much less. The client is the standard
library's http.client, one process per client (no GIL shared between clients, and lighter than
httpx); it runs on the same cores as the server, and its CPU is printed so the reader can
discount it. Sync workers close each connection after the response, so every request is a new
loopback connection, as for gunicorn behind a proxy that does not keep connections to it.

The script needs nothing of the code it measures beyond the URLs, the demo seed and the login
form: it runs unchanged on earlier revisions (the before figures of issue 15).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import multiprocessing
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import ROOT, children, cpu_seconds, percentile, summary_ms, throwaway_django

# Budgets: what a teacher on a school connection should not notice (server side only).
PAGE_BUDGET_P95 = 0.200
SAVE_BUDGET_P95 = 0.050
# Issue 15: the page's p95 with 8 concurrent clients on 2 sync workers.
CONCURRENT_TARGET_P95 = 0.050
WORKERS = 2
PASSWORD = "bench-only-password-2026"  # noqa: S105 - a throwaway database's teacher
# Without the admin's, the API docs' and the PDF fonts' files, which the page does not use.
COLLECT_IGNORE = ["-i", "admin", "-i", "rest_framework", "-i", "drf_spectacular_sidecar", "-i", "fonts"]


def timed(client, method: str, url: str, n: int, data_for=None) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        response = client.get(url) if method == "get" else client.post(url, data_for(i))
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    return times


def statements(client, method: str, url: str, data=None) -> tuple[int, int]:
    """(all statements, without django-tenants' SET search_path) of one request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        getattr(client, method)(url, data) if data else getattr(client, method)(url)
    real = [q for q in queries if not q["sql"].startswith("SET search_path")]
    return len(queries), len(real)


# --- Concurrent clients on gunicorn ----------------------------------------------------------


@dataclass
class Load:
    """What N clients saw in the measured window."""

    clients: int
    duration: float
    latencies: list[float]
    errors: int
    client_cpu: float  # seconds of CPU the client processes used in the window
    server_times: list[float]  # gunicorn's own time per request (access log), seconds
    server_cpu: float  # seconds of CPU gunicorn's workers used in the window (/proc)
    db_cpu: float  # seconds of CPU the workers' PostgreSQL backends used in the window (/proc)


def _client(port: int, path: str, cookie: str, start_at: float, measure_at: float, stop_at: float):
    """One client process: GET `path` back to back; the latencies from `measure_at` to `stop_at`.

    Runs in a spawned process, so it imports nothing of Django: the standard library only.
    """
    headers = {"Cookie": cookie, "Accept-Encoding": "gzip", "Accept-Language": "vi", "Connection": "close"}
    latencies: list[float] = []
    errors = 0
    cpu_start = None
    while time.time() < start_at:
        time.sleep(0.005)
    while True:
        now = time.time()
        if now >= stop_at:
            break
        if cpu_start is None and now >= measure_at:
            cpu_start = time.process_time()
        begin = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            ok = response.status == 200
        except OSError:
            ok = False
        finally:
            connection.close()
        elapsed = time.perf_counter() - begin
        if now >= measure_at:
            if ok:
                latencies.append(elapsed)
            else:
                errors += 1
    cpu = time.process_time() - cpu_start if cpu_start is not None else 0.0
    return latencies, errors, cpu


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited:\\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise SystemExit("gunicorn did not start within 60 s")


def _sign_in(port: int, username: str) -> str:
    """Sign in through the login form; the Cookie header of the session."""
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=120) as client:
        form = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        if token is None:
            raise SystemExit(f"no CSRF token on the login page ({form.status_code})")
        answer = client.post(
            "/accounts/login/",
            data={"login": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": f"http://127.0.0.1:{port}/accounts/login/"},
        )
        if answer.status_code != 302 or "sessionid" not in client.cookies:
            raise SystemExit(f"sign-in failed: {answer.status_code} {answer.text[:500]}")
        return f"sessionid={client.cookies['sessionid']}"


def _server_times(log: Path, start: int, end: int) -> list[float]:
    """gunicorn's request times (µs in the access log) of the grade book between two offsets."""
    with log.open("rb") as f:
        f.seek(start)
        lines = f.read(end - start).decode(errors="replace").splitlines()
    return [int(line.split()[-1]) / 1e6 for line in lines if "/so-diem/" in line and " 200 " in line]


def _database_backends() -> list[int]:
    """The PostgreSQL backends on the bench's database (the workers' persistent connections)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    connection.close()
    return pids


def _load(
    port: int, path: str, cookie: str, clients: int, warmup: float, duration: float, log: Path, server: int
) -> Load:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(clients, mp_context=context) as pool:
        # Spawned processes take a moment to start: the clock starts once they all can.
        list(pool.map(time.sleep, [0.0] * clients))
        start_at = time.time() + 1.0
        measure_at, stop_at = start_at + warmup, start_at + warmup + duration
        futures = [
            pool.submit(_client, port, path, cookie, start_at, measure_at, stop_at) for _i in range(clients)
        ]
        time.sleep(max(0.0, measure_at - time.time() - 0.5))
        workers, backends = children(server), _database_backends()
        time.sleep(max(0.0, measure_at - time.time()))
        log_start = log.stat().st_size
        cpu_start = cpu_seconds(workers), cpu_seconds(backends)
        time.sleep(max(0.0, stop_at - time.time()))
        cpu_end = cpu_seconds(workers), cpu_seconds(backends)
        time.sleep(0.2)  # the last responses' lines
        results = [f.result() for f in futures]
        log_end = log.stat().st_size
    return Load(
        clients=clients,
        duration=duration,
        latencies=[t for r in results for t in r[0]],
        errors=sum(r[1] for r in results),
        client_cpu=sum(r[2] for r in results),
        server_times=_server_times(log, log_start, log_end),
        server_cpu=cpu_end[0] - cpu_start[0],
        db_cpu=cpu_end[1] - cpu_start[1],
    )


def concurrent_clients(
    *, school_code: str, class_id: int, counts: list[int], warmup: float, duration: float
) -> list[Load]:
    """The grade book under 1, 4, 8… clients on gunicorn (2 sync workers, loopback)."""
    from cryptography.fernet import Fernet

    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    tmp = Path(tempfile.mkdtemp(prefix="hocba-bench-gradebook-"))
    access_log, server_log = tmp / "access.log", tmp / "gunicorn.log"
    env = {k: v for k, v in os.environ.items() if k not in ("HOCBA_TESTING", "DJANGO_DEBUG")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-" + Fernet.generate_key().decode(),
        HOCBA_DEPLOYMENT_KEY=Fernet.generate_key().decode(),
        DJANGO_SECURE_COOKIES="0",  # plain http on 127.0.0.1
        DJANGO_SECURE_SSL_REDIRECT="0",
        HOCBA_STATIC_ROOT=str(tmp / "static"),
        PYTHONPATH=str(ROOT),  # the revision measured, whatever the virtualenv was installed from
        PYTHONUNBUFFERED="1",
    )
    try:
        say("collectstatic (the pages name hashed files when DEBUG is off)")
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0", *COLLECT_IGNORE],
            cwd=ROOT,
            env=env,
            check=True,
        )
        port = _free_port()
        say(f"gunicorn ({WORKERS} sync workers) on 127.0.0.1:{port}")
        with server_log.open("w") as out:
            server = subprocess.Popen(
                [
                    *(sys.executable, "-m", "gunicorn", "config.wsgi:application"),
                    *("--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS)),
                    *("--access-logfile", str(access_log), "--access-logformat", "%(r)s %(s)s %(D)s"),
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_port(port, server, server_log)
            cookie = _sign_in(port, "thcs.gvbm")
            path = f"/truong/{school_code}/so-diem/{class_id}/toan/?hk=1"
            loads = []
            for clients in counts:
                say(f"{clients} client(s): {warmup:.0f} s warm-up, {duration:.0f} s measured")
                load = _load(port, path, cookie, clients, warmup, duration, access_log, server.pid)
                if not load.latencies:
                    raise RuntimeError(f"no page answered 200 with {clients} clients")
                loads.append(load)
            return loads
        except BaseException:
            print(server_log.read_text()[-6000:], file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(15)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def loads_print(loads: list[Load], statements: tuple[int, int]) -> None:
    print(
        f"\nconcurrent clients on gunicorn ({WORKERS} sync workers, loopback, DEBUG off, gzip asked): "
        f"the page, {statements[0]} statements a request ({statements[1]} without SET)"
    )
    print(
        "  clients  requests   req/s    p50 ms   p95 ms   p99 ms   p95÷50ms   server p50/p95 ms   client CPU"
    )
    for load in loads:
        p95 = percentile(load.latencies, 0.95)
        server = "     ?"
        if load.server_times:
            median, high = statistics.median(load.server_times), percentile(load.server_times, 0.95)
            server = f"{median * 1000:6.1f} /{high * 1000:6.1f}"
        cpu_share = load.client_cpu / (load.duration * (os.cpu_count() or 1))
        print(
            f"  {load.clients:7d}  {len(load.latencies):8d}  {len(load.latencies) / load.duration:6.1f}"
            f"  {statistics.median(load.latencies) * 1000:7.1f}  {p95 * 1000:7.1f}"
            f"  {percentile(load.latencies, 0.99) * 1000:7.1f}   {p95 / CONCURRENT_TARGET_P95:6.2f}"
            f" {'PASS' if p95 < CONCURRENT_TARGET_P95 else 'FAIL'}   {server}"
            f"     {cpu_share:5.1%} of the machine" + (f"   {load.errors} errors" if load.errors else "")
        )
    print(
        "  latency: as each client saw it, the listen queue included; server: gunicorn's time per"
        " request (access log), no queue; client CPU: the load generator's own share"
    )
    print(
        "\n  CPU a request (/proc; what the cores must give whatever else runs):"
        "\n  clients   gunicorn   PostgreSQL   client     total   → the cores' capacity"
        "   8 clients' mean wait"
    )
    cores = os.cpu_count() or 1
    for load in loads:
        n = len(load.latencies) or 1
        per = [load.server_cpu / n, load.db_cpu / n, load.client_cpu / n]
        total = sum(per)
        capacity = cores / total if total else 0.0
        print(
            f"  {load.clients:7d}  {per[0] * 1000:6.2f} ms  {per[1] * 1000:6.2f} ms  {per[2] * 1000:6.2f} ms"
            f"  {total * 1000:6.2f} ms   {capacity:7.0f} req/s"
            f"   {8 / capacity * 1000 if capacity else 0:7.1f} ms"
        )
    print(
        "  capacity: the cores divided by the CPU a request takes (server, database and client all on"
        " them); the mean wait of 8 clients in a closed loop at that capacity is 8 ÷ capacity: on a"
        " quiet machine the p95 lies somewhat above it"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement (default 300)")
    parser.add_argument(
        "--clients",
        default="1,4,8",
        help="concurrent client counts on gunicorn, comma-separated (default 1,4,8; '' skips them)",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per client count")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds unmeasured before each")
    args = parser.parse_args()
    n = args.requests
    counts = [int(c) for c in args.clients.split(",") if c.strip()]

    with throwaway_django() as server_version:
        from django.db import connection
        from django.test import Client

        from portal.choices import Role, SchoolLevel
        from portal.models import RoleAssignment, User
        from portal.provisioning import SchoolSpec, school_provision
        from schools.models import Enrolment, SchoolClass
        from transcripts.demo import school_demo_seed

        teacher = User.objects.create_user(
            username="thcs.gvbm", password="bench-only", full_name="Giáo Viên Toán"
        )
        homeroom = User.objects.create_user(
            username="thcs.gvcn", password="bench-only", full_name="Giáo Viên Chủ Nhiệm"
        )
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(
                code="bench-thcs", name="Trường THCS Bench", levels=(SchoolLevel.LOWER_SECONDARY,)
            ),
            division=None,
        )
        for user, role in ((teacher, Role.SUBJECT_TEACHER), (homeroom, Role.HOMEROOM_TEACHER)):
            RoleAssignment.objects.create(user=user, role=role, school=school)
        with school:
            school_demo_seed(school, {"thcs.gvbm": teacher, "thcs.gvcn": homeroom})
            big = max(
                SchoolClass.objects.all(), key=lambda c: Enrolment.objects.filter(school_class=c).count()
            )
            students = Enrolment.objects.filter(school_class=big).count()
            enrolments = list(Enrolment.objects.filter(school_class=big).values_list("pk", flat=True))
        connection.set_schema_to_public()

        client = Client()
        client.force_login(teacher)
        base = f"/truong/{school.code}"
        book = f"{base}/so-diem/{big.pk}/toan/?hk=1"
        save = f"{base}/so-diem/{big.pk}/toan/o/"
        home = f"{base}/"
        for url in (home, book):
            client.get(url)  # warm the route cache, templates and connection

        def cell(i: int) -> dict:
            return {
                "enrolment": enrolments[i % len(enrolments)],
                "field": "regular_1",
                "term": "1",
                "value": f"{5 + (i % 50) / 10:.1f}".replace(".", ","),
            }

        home_times = timed(client, "get", home, n)
        book_times = timed(client, "get", book, n)
        save_times = timed(client, "post", save, n, cell)
        book_sql = statements(client, "get", book)
        save_sql = statements(client, "post", save, cell(n + 1))
        home_sql = statements(client, "get", home)

        book_p95, save_p95 = percentile(book_times, 0.95), percentile(save_times, 0.95)
        print(
            f"Grade book benchmark · {platform.node()} · {os.cpu_count()} cores · PostgreSQL {server_version}"
        )
        line = "  {:<26}{}   statements {:3d} ({} without SET)"
        book_median = sorted(book_times)[n // 2] / sorted(home_times)[n // 2]
        print(f"class of {students} students, Toán (4 regular scores, mid, end), {n} requests each\n")
        print(line.format("school home page (peer)", summary_ms(home_times), *home_sql))
        print(line.format("grade book page", summary_ms(book_times), *book_sql))
        print(line.format("cell save", summary_ms(save_times), *save_sql))
        print()
        print(f"  grade book ÷ home page (median)  {book_median:5.2f}×")
        print(
            f"  grade book p95 ÷ budget {PAGE_BUDGET_P95 * 1000:.0f} ms   {book_p95 / PAGE_BUDGET_P95:5.2f}"
        )
        print(
            f"  cell save  p95 ÷ budget {SAVE_BUDGET_P95 * 1000:.0f} ms    {save_p95 / SAVE_BUDGET_P95:5.2f}"
        )
        sys.stdout.flush()
        if counts:
            # Hashed as the server (DEBUG off, not testing) checks it: this process hashes with MD5.
            from django.contrib.auth.hashers import PBKDF2PasswordHasher

            teacher.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
            teacher.save(update_fields=["password"])
            connection.close()
            loads = concurrent_clients(
                school_code=school.code,
                class_id=big.pk,
                counts=counts,
                warmup=args.warmup,
                duration=args.duration,
            )
            loads_print(loads, book_sql)
    return 0


if __name__ == "__main__":
    sys.exit(main())
