"""gunicorn's worker model, measured: sync and gthread workers under the season's request mix.

    make bench-web-workers
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/web_workers.py \
        [--requests N] [--clients 8,16,32] [--schools S] [--models sync:2,gthread:2x4,...] [--keep-alive]

Runs in a throwaway database (bench/support.py): S lower-secondary schools (default 3) seeded with
the demo's year (transcripts.demo: a class of 45 in Toán, every score filled), a subject teacher
and a homeroom teacher each (the homeroom teacher signs, so logs in with TOTP), and a department
officer. Static files are collected (WhiteNoise, hashed names, as a release does).

For each worker model (default: sync with 2, 3, 4, 5 workers; gthread 2 workers × 4 threads and 3 ×
2; sync 4 with --preload) gunicorn is started on config.wsgi, bound to 127.0.0.1, DEBUG off, plain
HTTP (DJANGO_SECURE_SSL_REDIRECT=0, DJANGO_SECURE_COOKIES=0), the database's CONN_MAX_AGE as the
settings have it, the production configuration (config/gunicorn.py; gunicorn's defaults in a
revision without it) with the worker class, workers, threads, --preload, the address and an access
log of the bench's own on the command line. The accounts sign in
once through the login form (sessions live in the database and the cache, so they outlive each
gunicorn); then, per model, a warm-up (unmeasured), and for each client count (default 8, 16, 32)
a fixed number of requests (--requests, default 300) shared among that many concurrent clients, in
one separate process (asyncio + httpx; its CPU time is measured and printed). The mix, in a fixed
rotation: 4 in 10 a cell save (POST with the CSRF cookie's value in X-CSRFToken, as
static/js/gradebook.js sends it, each client saving its own cells with the value it last saw as
`expected`), 2 the grade book page, 1 the homeroom teacher's class page, 1 the department's
dashboard (/so/), 2 a static file (the portal's stylesheet, gzip asked). Every client sends
`Connection: close` (a proxy that does not keep connections to gunicorn, nginx's default), unless
--keep-alive.

Printed per model and client count: requests per second, p50/p95/p99 of the latency each client saw
(queueing in gunicorn's listen backlog included), errors; per model: the RSS and PSS of each worker
(/proc, at the end; PSS counts shared pages once, what forked workers really add), the PostgreSQL
connections open on the database (sampled every 0.2 s, the highest), the CPU a request takes
(gunicorn's processes and their PostgreSQL backends, /proc: steadier than latency on a shared
machine), and each model's throughput (geometric mean over the client counts) as a ratio to the
best's. Then the recommendation for this machine and as a rule per core, and what threads cost.
The exit status is 1 if any response was an error (anything but the 200 each request expects).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import math
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import (
    BENCH_PASSWORD,
    ROOT,
    SeededSchool,
    children,
    collectstatic,
    cpu_seconds,
    free_port,
    memory_kib,
    percentile,
    production_env,
    schools_seeded,
    sign_in,
    throwaway_django,
    wait_for_port,
)

# The season's mix, one rotation (4 saves, 2 grade books, 1 homeroom, 1 dashboard, 2 static).
MIX = ["save", "book", "save", "static", "homeroom", "save", "book", "dashboard", "save", "static"]
KINDS = ["book", "save", "homeroom", "dashboard", "static"]
DEFAULT_MODELS = "sync:2,sync:3,sync:4,sync:5,gthread:2x4,gthread:3x2,sync:4:preload"
OFFICER = "bench.so"
ACCESS_FORMAT = "%(m)s %(U)s %(s)s %(D)s"
# Near the best (within this share of its throughput) the model with fewer connections wins.
TIE = 0.05


@dataclass(frozen=True)
class Model:
    worker_class: str
    workers: int
    threads: int = 1
    preload: bool = False

    @property
    def label(self) -> str:
        threads = f" --threads {self.threads}" if self.worker_class == "gthread" else ""
        return f"{self.worker_class} -w {self.workers}{threads}{' --preload' if self.preload else ''}"

    @property
    def concurrency(self) -> int:
        return self.workers * self.threads

    def rule(self, cores: int) -> str:
        per_core = self.workers / cores
        per = f"{per_core:g} × cores" if per_core != 1 else "cores"
        if self.worker_class == "gthread":
            return f"gthread, workers = {per}, {self.threads} threads each"
        return f"sync, workers = {per}" + (", --preload" if self.preload else "")

    def args(self) -> list[str]:
        out = ["--worker-class", self.worker_class, "--workers", str(self.workers)]
        if self.worker_class == "gthread":
            out += ["--threads", str(self.threads)]
        return out + (["--preload"] if self.preload else [])


def model_parse(text: str) -> Model:
    """sync:4, gthread:2x4, sync:4:preload."""
    parts = text.strip().split(":")
    kind, size = parts[0], parts[1]
    workers, _x, threads = size.partition("x")
    if kind not in ("sync", "gthread"):
        raise argparse.ArgumentTypeError(f"unknown worker class {kind!r}")
    return Model(kind, int(workers), int(threads or 1), "preload" in parts[2:])


# --- The load generator: one process, asyncio + httpx ----------------------------------------


@dataclass
class Drive:
    """What the parent asks of the client process for one measurement."""

    port: int
    clients: int
    requests: int
    keep_alive: bool
    schools: list[dict]  # per school: book, save, homeroom paths; teacher and homeroom cookies; csrf
    dashboard: str
    officer_cookie: str
    static: str
    cells: dict[tuple[int, int, str], str]  # (school index, enrolment, field) -> the value shown


@dataclass
class Outcome:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    cells: dict[tuple[int, int, str], str] = field(default_factory=dict)


def _next_value(shown: str, n: int) -> str:
    value = f"{5 + (n % 50) / 10:.1f}".replace(".", ",")
    return value if value != shown else f"{5 + ((n + 1) % 50) / 10:.1f}".replace(".", ",")


def drive(spec: Drive) -> Outcome:
    """Run `spec.requests` requests over `spec.clients` concurrent clients; in the client process."""
    cpu_start = time.process_time()
    outcome = asyncio.run(_drive(spec))
    outcome.cpu = time.process_time() - cpu_start
    return outcome


async def _drive(spec: Drive) -> Outcome:
    import httpx

    outcome = Outcome(latencies={k: [] for k in KINDS}, cells=dict(spec.cells))
    base = f"http://127.0.0.1:{spec.port}"
    counter = iter(range(spec.requests))
    n_schools = len(spec.schools)
    # Each client saves only its own cells: no two clients write one cell (no conflict by design).
    mine: dict[int, list[tuple[int, int, str]]] = {c: [] for c in range(spec.clients)}
    for s in range(n_schools):
        at_school = [c for c in range(spec.clients) if c % n_schools == s]
        keys = sorted(k for k in spec.cells if k[0] == s)
        for i, key in enumerate(keys):
            if at_school:
                mine[at_school[i % len(at_school)]].append(key)
    common = {"Accept-Language": "vi", "Accept-Encoding": "gzip"}
    if not spec.keep_alive:
        common["Connection"] = "close"

    async def client(c: int) -> None:
        school = spec.schools[c % n_schools]
        cells = mine[c]
        saves = 0
        async with httpx.AsyncClient(base_url=base, timeout=120, headers=common) as http:
            for i in counter:
                kind = MIX[i % len(MIX)]
                if kind == "save" and not cells:
                    kind = "book"
                data = None
                if kind == "book":
                    method, path, cookie = "GET", school["book"], school["teacher_cookie"]
                    headers = {"Cookie": cookie}
                elif kind == "save":
                    key = cells[saves % len(cells)]
                    saves += 1
                    shown = outcome.cells[key]
                    data = {
                        "enrolment": str(key[1]),
                        "field": key[2],
                        "value": _next_value(shown, i),
                        "expected": shown,
                        "term": "1",
                        "period": "",
                    }
                    method, path = "POST", school["save"]
                    headers = {
                        "Cookie": school["teacher_cookie"],
                        "X-CSRFToken": school["csrf"],
                        "Accept": "application/json",
                        "Origin": base,
                        "Referer": base + school["book"],
                    }
                elif kind == "homeroom":
                    method, path = "GET", school["homeroom"]
                    headers = {"Cookie": school["homeroom_cookie"]}
                elif kind == "dashboard":
                    method, path, headers = "GET", spec.dashboard, {"Cookie": spec.officer_cookie}
                else:
                    method, path, headers = "GET", spec.static, {"Cookie": school["teacher_cookie"]}
                begin = time.perf_counter()
                try:
                    response = await http.request(method, path, headers=headers, data=data)
                    body = response.content
                    status = response.status_code
                except httpx.HTTPError as exc:
                    status, body = 0, repr(exc).encode()
                elapsed = time.perf_counter() - begin
                http.cookies.clear()  # the personas' cookies go in the header, never the jar's
                if status == 200 and kind == "save":
                    outcome.cells[key] = response.json()["value"]
                if status == 200:
                    outcome.latencies[kind].append(elapsed)
                else:
                    outcome.error_count += 1
                    if len(outcome.errors) < 5:
                        outcome.errors.append(f"{kind} {method} {path}: {status} {body[:300]!r}")

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(spec.clients)))
    outcome.wall = time.perf_counter() - start
    return outcome


# --- The server side: gunicorn, its processes, its database connections -----------------------


class ConnectionSampler(threading.Thread):
    """The PostgreSQL backends on the bench's database, sampled every 0.2 s: the most at once, and
    the CPU each one has used, last seen (/proc): a backend that ends (CONN_MAX_AGE) keeps its
    last figure, so a window's CPU is the sum of the growth of every backend seen in it."""

    def __init__(self, conninfo: dict) -> None:
        super().__init__(daemon=True)
        import psycopg

        self.conn = psycopg.connect(autocommit=True, **conninfo)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.most = 0
        self.cpu: dict[int, float] = {}

    def now(self) -> list[int]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            ).fetchall()
            pids = [row[0] for row in rows]
            self.most = max(self.most, len(pids))
            for pid in pids:
                self.cpu[pid] = max(self.cpu.get(pid, 0.0), cpu_seconds([pid]))
            return pids

    def snapshot(self) -> dict[int, float]:
        self.now()
        with self.lock:
            return dict(self.cpu)

    def run(self) -> None:
        while not self.stop.is_set():
            self.now()
            self.stop.wait(0.2)

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.conn.close()


@dataclass
class Level:
    clients: int
    outcome: Outcome
    server_cpu: float  # gunicorn's workers and master
    db_cpu: float  # their PostgreSQL backends
    served: dict[str, list[float]]  # gunicorn's own time per request (access log, no queue), by kind

    @property
    def ok(self) -> int:
        return sum(len(v) for v in self.outcome.latencies.values())

    @property
    def rate(self) -> float:
        return self.ok / self.outcome.wall if self.outcome.wall else 0.0

    def all_latencies(self) -> list[float]:
        return [t for v in self.outcome.latencies.values() for t in v]


@dataclass
class Run:
    model: Model
    boot: float
    levels: list[Level]
    workers_memory: list[tuple[int, int]]  # (RSS, PSS) KiB per worker
    master_memory: tuple[int, int]
    connections: int  # the most PostgreSQL connections open at once
    backends_memory: list[tuple[int, int]]  # (RSS, PSS) KiB per PostgreSQL backend, at the end

    @property
    def score(self) -> float:
        rates = [lv.rate for lv in self.levels]
        return math.exp(statistics.fmean(math.log(r) for r in rates)) if all(rates) else 0.0

    @property
    def errors(self) -> int:
        return sum(lv.outcome.error_count for lv in self.levels)

    def cpu_per_request(self) -> tuple[float, float, float]:
        n = sum(lv.ok for lv in self.levels) or 1
        return (
            sum(lv.server_cpu for lv in self.levels) / n,
            sum(lv.db_cpu for lv in self.levels) / n,
            sum(lv.outcome.cpu for lv in self.levels) / n,
        )


def first_answer(port: int, path: str) -> None:
    """Until a worker answers `path` (the application loaded): the boot time a deploy waits."""
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=60).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"no worker answered {path} within 120 s")


def gunicorn_config(tmp: Path) -> str:
    """The production configuration (config/gunicorn.py) when the revision has one; otherwise an
    empty file (gunicorn's defaults). The command line overrides what the bench varies."""
    production = ROOT / "config" / "gunicorn.py"
    if production.exists():
        return str(production)
    empty = tmp / "gunicorn.conf.py"
    empty.write_text("# gunicorn's defaults: the revision has no config/gunicorn.py\n")
    return str(empty)


def kind_of(path: str) -> str:
    if path.startswith("/static/"):
        return "static"
    if path.startswith("/so/"):
        return "dashboard"
    if path.endswith("/o/"):
        return "save"
    if "/so-diem/lop/" in path:
        return "homeroom"
    return "book"


def server_times(access: Path, start: int) -> dict[str, list[float]]:
    """gunicorn's time per request (µs in the access log) by kind, from byte `start` on."""
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    if not access.exists():
        return times
    with access.open("rb") as f:
        f.seek(start)
        for line in f.read().decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[2] == "200":
                times[kind_of(parts[1])].append(int(parts[3]) / 1e6)
    return times


def measure(
    model: Model,
    *,
    env: dict[str, str],
    tmp: Path,
    pool: concurrent.futures.Executor,
    make_drive,
    counts: list[int],
    requests: int,
    conninfo: dict,
    cells: dict,
    static: str,
    say,
) -> Run:
    port = free_port()
    log, access = tmp / f"gunicorn-{port}.log", tmp / f"access-{port}.log"
    say(f"{model.label}: starting on 127.0.0.1:{port}")
    started = time.perf_counter()
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                *(
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi:application",
                    "--config",
                    gunicorn_config(tmp),
                ),
                *("--bind", f"127.0.0.1:{port}", *model.args()),
                *("--access-logfile", str(access), "--access-logformat", ACCESS_FORMAT),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    sampler = None
    try:
        wait_for_port(port, server, log)
        first_answer(port, static)
        boot = time.perf_counter() - started
        # Warm-up: every worker loads its templates, routes and connection (unmeasured).
        warm = pool.submit(drive, make_drive(port, 8, max(60, 10 * model.concurrency), cells)).result()
        cells.update(warm.cells)
        if warm.error_count:
            raise RuntimeError(f"{model.label}: errors in the warm-up: {warm.errors}")
        sampler = ConnectionSampler(conninfo)
        sampler.start()
        levels = []
        for clients in counts:
            workers = [*children(server.pid), server.pid]
            before_server, before_db = cpu_seconds(workers), sampler.snapshot()
            log_start = access.stat().st_size if access.exists() else 0
            outcome = pool.submit(drive, make_drive(port, clients, requests, cells)).result()
            cells.update(outcome.cells)
            time.sleep(0.2)  # the last responses' lines
            served = server_times(access, log_start)
            after_db = sampler.snapshot()
            levels.append(
                Level(
                    clients=clients,
                    outcome=outcome,
                    server_cpu=cpu_seconds(workers) - before_server,
                    db_cpu=sum(cpu - before_db.get(pid, 0.0) for pid, cpu in after_db.items()),
                    served=served,
                )
            )
            say(
                f"  {clients:3d} clients: {levels[-1].rate:6.1f} req/s"
                + (f", {outcome.error_count} errors" if outcome.error_count else "")
            )
        workers = children(server.pid)
        backend_memory = [memory_kib(pid) for pid in sampler.now()]
        return Run(
            model=model,
            boot=boot,
            levels=levels,
            workers_memory=[memory_kib(pid) for pid in workers],
            master_memory=memory_kib(server.pid),
            connections=sampler.most,
            backends_memory=backend_memory,
        )
    except BaseException:
        print(log.read_text()[-6000:], file=sys.stderr)
        raise
    finally:
        if sampler is not None:
            sampler.close()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        # The workers' connections end with them; wait until the server has let them go, so the
        # next model's count starts from zero.
        _backends_gone(conninfo)


def _backends_gone(conninfo: dict) -> None:
    import psycopg

    with psycopg.connect(autocommit=True, **conninfo) as conn:
        for _i in range(100):
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            ).fetchone()
            if not left or not left[0]:
                return
            time.sleep(0.1)


# --- Report ----------------------------------------------------------------------------------


def report(runs: list[Run], *, counts: list[int], requests: int, keep_alive: bool) -> None:
    cores = os.cpu_count() or 1
    best = max(runs, key=lambda r: r.score)
    print(
        f"\n{requests} requests per client count; the mix per 10: 4 cell saves, 2 grade books, 1 homeroom"
        f" page, 1 dashboard, 2 static; {'keep-alive' if keep_alive else 'Connection: close'};"
        " latency as the client saw it (listen queue included)"
    )
    print("  model                          clients   req/s    p50 ms   p95 ms   p99 ms  errors")
    for run in runs:
        for i, lv in enumerate(run.levels):
            lat = lv.all_latencies() or [0.0]
            print(
                f"  {run.model.label if i == 0 else '':<30} {lv.clients:7d}  {lv.rate:6.1f}"
                f"  {statistics.median(lat) * 1000:7.1f}  {percentile(lat, 0.95) * 1000:7.1f}"
                f"  {percentile(lat, 0.99) * 1000:7.1f}  {lv.outcome.error_count:6d}"
            )
    print("\np95 ms per request kind (all client counts together)")
    print("  model                          " + "".join(f"{k:>11}" for k in KINDS))
    for run in runs:
        cells = []
        for kind in KINDS:
            values = [t for lv in run.levels for t in lv.outcome.latencies[kind]]
            cells.append(f"{percentile(values, 0.95) * 1000:11.1f}" if values else f"{'-':>11}")
        print(f"  {run.model.label:<30} " + "".join(cells))
    print("\ngunicorn's own median ms per request kind (its access log: no queue)")
    print("  model                          " + "".join(f"{k:>11}" for k in KINDS))
    for run in runs:
        cells = []
        for kind in KINDS:
            values = [t for lv in run.levels for t in lv.served[kind]]
            cells.append(f"{statistics.median(values) * 1000:11.1f}" if values else f"{'-':>11}")
        print(f"  {run.model.label:<30} " + "".join(cells))
    print(
        "\nper model: throughput (geometric mean over the client counts) and its ratio to the best;"
        " memory at the end; connections; CPU a request"
    )
    print(
        "  model                           req/s  ÷best   RSS/worker  PSS/worker  PSS all"
        "  PG conns  boot s   CPU/req ms: gunicorn + PostgreSQL (+ client)   cores ÷ CPU"
    )
    for run in runs:
        rss = statistics.fmean(m[0] for m in run.workers_memory) / 1024 if run.workers_memory else 0
        pss = statistics.fmean(m[1] for m in run.workers_memory) / 1024 if run.workers_memory else 0
        pss_all = (sum(m[1] for m in run.workers_memory) + run.master_memory[1]) / 1024
        server, db, client = run.cpu_per_request()
        capacity = cores / (server + db + client) if server + db + client > 0 else 0.0
        print(
            f"  {run.model.label:<30} {run.score:6.1f}  {run.score / best.score:5.2f}"
            f"   {rss:7.1f} MB  {pss:7.1f} MB  {pss_all:6.0f} MB"
            f"  {run.connections:5d}/{run.model.concurrency:<3d}"
            f" {run.boot:6.1f}   {server * 1000:5.2f} + {db * 1000:5.2f} = {(server + db) * 1000:5.2f}"
            f"  (+ {client * 1000:4.2f})   {capacity:6.0f} req/s"
        )
    print(
        "  PG conns: the most open at once / the model's concurrency (a persistent connection per"
        " worker thread, CONN_MAX_AGE); PSS: shared pages counted once (what a worker really adds);"
        " boot: from the start to the first answer; cores ÷ CPU: the throughput the cores would give"
        " if nothing else ran (server, database and client on them), steadier than req/s when"
        " the machine is shared"
    )

    # The recommendation: the best, or near it (within TIE) the one holding fewer connections,
    # then less memory.
    near = [r for r in runs if r.score >= best.score * (1 - TIE)]
    pick = min(
        near,
        key=lambda r: (r.model.concurrency, sum(m[1] for m in r.workers_memory), -r.score),
    )
    print(f"\nrecommendation for this machine ({cores} cores): {pick.model.label}")
    print(
        f"  {pick.score:.1f} req/s, {pick.score / best.score:.2f} of the best ({best.model.label});"
        f" among those within {TIE:.0%} of the best, the fewest connections, then the least memory"
    )
    print(f"  as a rule per core: {pick.model.rule(cores)}")
    gthread = [r for r in runs if r.model.worker_class == "gthread"]
    sync = {r.model.workers: r for r in runs if r.model.worker_class == "sync" and not r.model.preload}
    for run in gthread:
        peer = sync.get(run.model.workers) or max(sync.values(), key=lambda r: r.score, default=None)
        if peer is None:
            continue
        print(
            f"  threads' cost: {run.model.label} holds up to {run.model.concurrency} connections"
            f" (measured {run.connections}) for {run.score / peer.score:.2f}× the throughput of"
            f" {peer.model.label} ({peer.connections} connections)"
        )
    backends = [m[1] for r in runs for m in r.backends_memory if m[1]]
    if backends:
        print(
            f"  a PostgreSQL connection held by a worker or a thread: "
            f"{statistics.fmean(backends) / 1024:.1f} MB"
            f" (PSS of its backend, mean of {len(backends)}), one per thread for CONN_MAX_AGE"
        )
    preload = [r for r in runs if r.model.preload]
    for run in preload:
        peer = sync.get(run.model.workers)
        if peer is None or not peer.workers_memory or not run.workers_memory:
            continue
        mine = sum(m[1] for m in run.workers_memory) + run.master_memory[1]
        theirs = sum(m[1] for m in peer.workers_memory) + peer.master_memory[1]
        print(
            f"  --preload: {mine / 1024:.0f} MB (PSS, master and workers) against {theirs / 1024:.0f} MB"
            f" without, {run.score / peer.score:.2f}× the throughput; boot {run.boot:.1f} s against"
            f" {peer.boot:.1f} s"
        )


# --- Main ------------------------------------------------------------------------------------


def officer_seeded() -> str:
    """A department officer (the dashboards), password hashed as the server checks it."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from portal.choices import Role
    from portal.models import Department, RoleAssignment, User

    hasher = PBKDF2PasswordHasher()
    officer = User.objects.create(
        username=OFFICER, full_name="Chuyên Viên Sở", password=hasher.encode(BENCH_PASSWORD, hasher.salt())
    )
    RoleAssignment.objects.create(user=officer, role=Role.DEPARTMENT_OFFICER)
    if not Department.objects.exists():
        Department.objects.create(code="99", name="Sở Giáo dục và Đào tạo Bench", place_name="Bench")
    return officer.username


def _cells_from(html: str, school: int) -> dict[tuple[int, int, str], str]:
    """The regular-score cells of a grade book page and the values they show."""
    cells = {}
    for row in re.finditer(r'<tr data-enrolment="(\d+)">(.*?)</tr>', html, re.S):
        for name, value in re.findall(
            r'<input name="(regular_\d+)" data-field="\1" value="([^"]*)"', row.group(2)
        ):
            cells[(school, int(row.group(1)), name)] = value
    return cells


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per client count (default 300)")
    parser.add_argument("--clients", default="8,16,32", help="concurrent client counts (default 8,16,32)")
    parser.add_argument("--schools", type=int, default=3, help="schools seeded (default 3)")
    parser.add_argument(
        "--models",
        default=DEFAULT_MODELS,
        help=f"worker models, comma-separated: sync:N, gthread:NxT, :preload (default {DEFAULT_MODELS})",
    )
    parser.add_argument("--keep-alive", action="store_true", help="keep connections (default: close each)")
    args = parser.parse_args()
    models = [model_parse(m) for m in args.models.split(",") if m.strip()]
    counts = [int(c) for c in args.clients.split(",") if c.strip()]
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    began = time.perf_counter()

    with throwaway_django() as server_version:
        from django.db import connection

        say(f"seeding {args.schools} schools")
        schools: list[SeededSchool] = schools_seeded(args.schools)
        officer = officer_seeded()
        conninfo = {
            k: v
            for k, v in {
                "host": connection.settings_dict["HOST"] or None,
                "port": connection.settings_dict["PORT"] or None,
                "user": connection.settings_dict["USER"] or None,
                "password": connection.settings_dict["PASSWORD"] or None,
                "dbname": connection.settings_dict["NAME"],
            }.items()
            if v is not None
        }
        conn_max_age = connection.settings_dict["CONN_MAX_AGE"]
        connection.close()

        tmp = Path(tempfile.mkdtemp(prefix="hocba-bench-web-workers-"))
        env = production_env(tmp / "static")
        try:
            say("collectstatic")
            collectstatic(env)
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
                shared, cells, static = _sign_everyone_in(env, tmp, schools, officer, say)
                base_schools, officer_cookie = shared

                def make_drive(port: int, clients: int, requests: int, cells: dict) -> Drive:
                    return Drive(
                        port=port,
                        clients=clients,
                        requests=requests,
                        keep_alive=args.keep_alive,
                        schools=base_schools,
                        dashboard="/so/",
                        officer_cookie=officer_cookie,
                        static=static,
                        cells=dict(cells),
                    )

                runs = []
                for model in models:
                    runs.append(
                        measure(
                            model,
                            env=env,
                            tmp=tmp,
                            pool=pool,
                            make_drive=make_drive,
                            counts=counts,
                            requests=args.requests,
                            conninfo=conninfo,
                            cells=cells,
                            static=static,
                            say=say,
                        )
                    )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"gunicorn worker models · {platform.node()} · {os.cpu_count()} cores · PostgreSQL {server_version}"
        f" · gunicorn {_gunicorn_version()} · CONN_MAX_AGE {conn_max_age}"
    )
    print(
        f"{len(schools)} schools (a class of 45 in Toán each), {len(cells)} cells saved in turn;"
        " gunicorn on config.wsgi, loopback, DEBUG off, static files by WhiteNoise"
    )
    report(runs, counts=counts, requests=args.requests, keep_alive=args.keep_alive)
    errors = sum(r.errors for r in runs)
    print(f"\nerrors: {errors}; the whole run took {time.perf_counter() - began:.0f} s")
    if errors:
        for run in runs:
            for lv in run.levels:
                for line in lv.outcome.errors:
                    print(f"  {run.model.label}, {lv.clients} clients: {line}", file=sys.stderr)
        return 1
    return 0


def _sign_everyone_in(env, tmp: Path, schools: list[SeededSchool], officer: str, say):
    """Every account signed in once through a gunicorn of its own; the sessions, the CSRF tokens,
    the cells' shown values and the stylesheet's hashed path."""
    import httpx

    port = free_port()
    log = tmp / "sign-in.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, server, log)
        base = f"http://127.0.0.1:{port}"
        say("signing the accounts in")
        out_schools = []
        cells: dict[tuple[int, int, str], str] = {}
        static = ""
        for i, school in enumerate(schools):
            prefix = f"/truong/{school.code}"
            book = f"{prefix}/so-diem/{school.class_id}/toan/?hk=1"
            teacher = sign_in(base, school.teacher, totp_secret=school.totp.get(school.teacher), then=book)
            homeroom = sign_in(base, school.homeroom, totp_secret=school.totp.get(school.homeroom))
            cookie = "; ".join(f"{k}={v}" for k, v in teacher.items())
            page = httpx.get(base + book, headers={"Cookie": cookie}, timeout=60)
            found = _cells_from(page.text, i)
            if not found:
                raise SystemExit(f"no regular-score cell on {book}")
            cells.update(found)
            if not static:
                sheet = re.search(r'href="(/static/[^"]+\.css)"', page.text)
                if sheet is None:
                    raise SystemExit("no stylesheet on the grade book page")
                static = sheet.group(1)
            out_schools.append(
                {
                    "book": book,
                    "save": f"{prefix}/so-diem/{school.class_id}/toan/o/",
                    "homeroom": f"{prefix}/so-diem/lop/{school.homeroom_class_id}/",
                    "teacher_cookie": cookie,
                    "csrf": teacher["csrftoken"],
                    "homeroom_cookie": "; ".join(f"{k}={v}" for k, v in homeroom.items()),
                }
            )
        officer_cookies = sign_in(base, officer, then="/so/")
        return (out_schools, "; ".join(f"{k}={v}" for k, v in officer_cookies.items())), cells, static
    except BaseException:
        print(log.read_text()[-6000:], file=sys.stderr)
        raise
    finally:
        server.terminate()
        server.wait(30)


def _gunicorn_version() -> str:
    import gunicorn

    return gunicorn.__version__


if __name__ == "__main__":
    sys.exit(main())
