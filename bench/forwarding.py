"""Records forwarded per second to the reference Ministry repository, beside bare POSTs (issue 11).

    make bench-forwarding
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/forwarding.py [--n 2000] [--runs 3]
        [--error-rate 0.1] [--production-backoff] [--profile]

Runs in a throwaway database (bench/support.py). One school is provisioned; N year record
documents are made once: the XSD-valid unsigned XML of the THCS sample record
(tests/transcripts/test_document.py, `secondary_record()`) as version 1, its record id and
student code varied per document, so every payload (and its Idempotency-Key) is distinct. They
carry no signature: the repository stores them (202, the figure) and rejects them later
(`signature`). The repository runs without --trust-roots, so its validator rejects each one
without spawning xmlsec1 (which would take the CPU the relay is measured on).

Each repetition, for each fault setting (none, then `--error-rate`), in this process:

(a) bare POSTs: a fresh repository (the reference server, its own process, mutual TLS, the school
    registered); the N payloads posted as the adapter posts them (same JSON body, same
    Idempotency-Key, over the adapter's own pooled client, `registry.ministry.http_client`),
    HOCBA_FORWARD_CONCURRENCY (8) at a time, each retried at once until the repository stores
    it (202). The limit: HTTP and TLS, no database.
(b) the relay: the outbox emptied (its guard refuses DELETE: session_replication_role = replica),
    N messages written by `registry.services.outbox_issued` (committed), a fresh repository, then
    `registry.forwarding.relay_run` until every message is `sent` (stored by the repository).
    Time: from the start to the last message's `sent_at` (the relay polls verdicts as they come
    due; a poll is due 1 s after its send, so polls mix in only behind retries). With faults the
    relay retries at once (HOCBA_FORWARD_BACKOFF_BASE = 0, as the relay tests do), so the figure
    is the relay's work, not the back-off's sleeping; `--production-backoff` adds a run with the
    configured back-off (2 s doubling). The verdict phase (until every message has one) is timed
    too, once every message is sent.

Printed: records/s of each (median of --runs, and the spread), the ratio relay ÷ bare POST (taken
within each repetition, whose two runs share the machine's state; the median of those), and
the target: at least 300 records/s with no faults, and within 2× of the bare-POST rate (ratio
≥ 0.5). `--profile` adds two relay runs (no faults): one with every SQL statement logged
(statements per message until the last send, time inside them), one under cProfile. Progress
goes to stderr, the figures to stdout. Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import platform
import pstats
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import throwaway_django

TARGET_RATE = 300.0  # records/s with no faults (issue 11)
TARGET_RATIO = 0.5  # relay ÷ bare POST: within 2×
SCHOOL_CODE = "08200302"
SCHOOL_YEAR = "2024-2025"
WORKER = "bench-relay"
VERDICT_TIMEOUT = 600  # seconds


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass
class Payload:
    record_id: str
    student_code: str
    personal_id: str
    document: bytes


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a process on this machine, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """CPU seconds of this process, the repository and our PostgreSQL backend, sampled with the
    wall clock every 50 ms in a thread, so the CPU of a phase that ends inside a relay run (the
    last send) can be read at the time it ended."""

    EVERY = 0.05

    def __init__(self, repository_pid: int):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.pids = {"repository": repository_pid, "postgres": cursor.fetchone()[0]}
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> tuple[float, dict[str, float]]:
        cpu = {"bench": time.process_time()}
        for name, pid in self.pids.items():
            cpu[name] = process_cpu(pid)
        return time.time(), cpu

    def _run(self) -> None:
        while not self._stop.wait(self.EVERY):
            self.samples.append(self.sample())

    def start(self) -> None:
        self.samples.append(self.sample())
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self.samples.append(self.sample())

    def __enter__(self) -> CpuSampler:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def used(self, until: float | None = None) -> dict[str, float]:
        """CPU seconds used from the start to the first sample at or after `until` (epoch
        seconds; the end if None)."""
        first = self.samples[0][1]
        last = self.samples[-1][1]
        if until is not None:
            last = next((cpu for at, cpu in self.samples if at >= until), last)
        return {name: last[name] - first[name] for name in first}


@dataclasses.dataclass
class RelayFigures:
    sent_seconds: float
    cpu: dict[str, float]  # CPU seconds until the last send: bench (the relay), repository, postgres
    verdict_seconds: float
    outcomes: dict[str, int]
    runs: int  # relay_run calls until every message was sent

    def rate(self, n: int) -> float:
        return n / self.sent_seconds


def documents(n: int) -> list[Payload]:
    """N distinct XSD-valid unsigned documents of the sample record, version 1, for SCHOOL_CODE."""
    from tests.transcripts.test_document import issuer, secondary_record
    from transcripts.document import year_record_id, year_record_xml

    sample = secondary_record()
    school = issuer(school_code=SCHOOL_CODE, school_name="Trường THCS Lê Quý Đôn")
    payloads = []
    for i in range(n):
        student_code = f"{SCHOOL_CODE}2017{i:04d}"
        personal_id = f"0822{i:08d}"
        record_id = year_record_id(
            school_code=SCHOOL_CODE, student_code=student_code, school_year=SCHOOL_YEAR
        )
        student = dataclasses.replace(
            sample.student,
            student_code=student_code,
            personal_id=personal_id,
            personal_id_verified=True,
            temporary_code="",
        )
        record = dataclasses.replace(
            sample, record_id=record_id, version=1, supersedes=None, issuer=school, student=student
        )
        payloads.append(Payload(record_id, student_code, personal_id, year_record_xml(record)))
    return payloads


def repository_start(school_code: str, error_rate: float):
    """A fresh reference repository (own process, mutual TLS), the school registered, the faults
    set, and the portal's settings (and its pooled client) pointed at it."""
    from django.conf import settings

    from registry import ministry
    from tests.reference.ministry_service import MinistryService

    service = MinistryService(seed=2026)
    service.schools_add(school_code)
    service.faults(error_rate=error_rate)
    settings.HOCBA_MINISTRY_URL = service.url + "/"
    settings.HOCBA_MINISTRY_TOKEN = service.token
    settings.HOCBA_MINISTRY_CA = str(service.ca_path)
    settings.HOCBA_MINISTRY_CLIENT_CERT = str(service.client_cert_path)
    settings.HOCBA_MINISTRY_CLIENT_KEY = str(service.client_key_path)
    ministry.http_client_reset()
    return service


def repository_check(service, n: int) -> dict[str, int]:
    """What the repository holds: every message once, none twice."""
    state = service.state()
    if state["held"] != n or len({m["key"] for m in state["messages"]}) != n:
        raise SystemExit(f"The repository holds {state['held']} messages, expected {n}: {state['totals']}")
    return state["totals"]


def bare_posts(payloads: list[Payload], school_code: str, error_rate: float):
    """(seconds, POSTs made, CPU seconds used): every payload stored, 8 at a time, retried at once."""
    import base64

    from django.conf import settings

    from registry import ministry

    # The bodies are built before timing: the payload is what the relay would send.
    requests = []
    for p in payloads:
        body = {
            "kind": "submit",
            "school_code": school_code,
            "record_id": p.record_id,
            "version": 1,
            "replaces_version": None,
            "personal_id": p.personal_id,
            "reason": "",
            "document": base64.b64encode(p.document).decode("ascii"),
        }
        key = ministry.message_key(kind="submit", record_id=p.record_id, version=1, document=p.document)
        requests.append((body, key))
    service = repository_start(school_code, error_rate)
    service.faults(hold_verdicts=1)  # as in the relay's timed phase: no validator on the cores
    try:
        client = ministry.http_client()

        def post(item: tuple[dict, str]) -> int:
            body, key = item
            for attempt in range(1, 100):
                response = client.post("v1/messages", json=body, headers={"Idempotency-Key": key})
                if response.status_code in (200, 202):
                    return attempt
            raise SystemExit(f"bare POST: no 202 after 99 attempts ({response.status_code})")

        with CpuSampler(service._process.pid) as sampler:
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=settings.HOCBA_FORWARD_CONCURRENCY) as pool:
                attempts = sum(pool.map(post, requests))
            seconds = time.perf_counter() - start
        repository_check(service, len(payloads))
    finally:
        ministry.http_client_reset()
        service.stop()
    return seconds, attempts, sampler.used()


def outbox_empty() -> None:
    """Delete every outbox message (the guard trigger refuses DELETE; replica role skips it)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM registry_outboxmessage")


def outbox_fill(school, payloads: list[Payload]) -> None:
    """N messages written by the service that issuing calls, committed (one transaction)."""
    from django.core.cache import cache
    from django.db import transaction

    from registry.services import WAKE_EVERY_SECONDS, outbox_issued

    # relay_wake sends a Celery task at most once per WAKE_EVERY_SECONDS (a cache key); the key
    # is set here so that no task goes to a broker nobody reads: this process is the relay.
    cache.set("registry:relay-wake", 1, timeout=max(WAKE_EVERY_SECONDS, 3600))
    with transaction.atomic():
        for p in payloads:
            outbox_issued(
                school=school,
                record_id=p.record_id,
                version=1,
                replaces_version=None,
                document=p.document,
                personal_id=p.personal_id,
                student_code=p.student_code,
            )


def relay(school, payloads: list[Payload], error_rate: float, *, backoff_base: int):
    """The relay until every message is sent, then until every one has its verdict."""
    from django.conf import settings
    from django.db import connection
    from django.db.models import Count, Max
    from django.utils import timezone

    from registry import ministry
    from registry.choices import FINISHED_STATES, OutboxState
    from registry.forwarding import relay_run
    from registry.models import OutboxMessage

    outbox_empty()
    outbox_fill(school, payloads)
    n = len(payloads)
    service = repository_start(school.code, error_rate)
    configured_base = settings.HOCBA_FORWARD_BACKOFF_BASE
    settings.HOCBA_FORWARD_BACKOFF_BASE = backoff_base
    connection.set_schema_to_public()
    outcomes: dict[str, int] = {}
    unsent = [OutboxState.PENDING, OutboxState.SENDING]
    calls = 0
    sampler = CpuSampler(service._process.pid)
    # The repository's validator (XSD, in the same process) decides nothing while the path to a
    # receipt is timed, in both phases: on this 2-core machine it would otherwise compete with the
    # relay for the cores, which the Ministry's own servers never do.
    service.faults(hold_verdicts=1)
    try:
        sampler.start()
        started_at, start = timezone.now(), time.perf_counter()
        while True:
            report = relay_run(worker=WORKER, seconds=300)
            calls += 1
            for outcome, count in report.as_dict().items():
                outcomes[outcome] = outcomes.get(outcome, 0) + count
            if not OutboxMessage.objects.filter(state__in=unsent).exists():
                break
            time.sleep(0.01)  # only when the rest waits for its back-off
        last_sent = OutboxMessage.objects.aggregate(last=Max("sent_at"))["last"]
        sent_seconds = (last_sent - started_at).total_seconds()
        sampler.stop()
        cpu = sampler.used(until=last_sent.timestamp())
        service.faults(hold_verdicts=0)
        # The polls made while verdicts were held backed off; ask again now, so that the verdict
        # figure is the time from the release to the last verdict.
        OutboxMessage.objects.filter(state=OutboxState.SENT).update(next_attempt_at=timezone.now())
        start = time.perf_counter()
        while OutboxMessage.objects.exclude(state__in=FINISHED_STATES).exists():
            if time.perf_counter() - start > VERDICT_TIMEOUT:
                raise SystemExit(f"Not every verdict within {VERDICT_TIMEOUT} s")
            report = relay_run(worker=WORKER, seconds=300)
            for outcome, count in report.as_dict().items():
                outcomes[outcome] = outcomes.get(outcome, 0) + count
            time.sleep(0.05)
        verdict_seconds = time.perf_counter() - start
        repository_check(service, n)
        if OutboxMessage.objects.exclude(state=OutboxState.REJECTED).exists():
            states = dict(OutboxMessage.objects.values_list("state").annotate(c=Count("pk")))
            raise SystemExit(f"Not every message has its verdict (rejected: unsigned): {states}")
    finally:
        sampler.stop()
        settings.HOCBA_FORWARD_BACKOFF_BASE = configured_base
        ministry.http_client_reset()
        service.stop()
    return RelayFigures(sent_seconds, cpu, verdict_seconds, outcomes, calls)


def relay_instrumented(school, payloads: list[Payload], *, profile: bool):
    """One relay run (no faults) until every message is sent, each SQL statement logged (when it
    ended, its kind, seconds inside it); under cProfile when `profile`. Returns (seconds to the
    last send, the epoch time of the last send, the statement log, the profiler or None)."""
    from django.db import connection
    from django.db.models import Max
    from django.utils import timezone

    from registry import ministry
    from registry.choices import OutboxState
    from registry.forwarding import relay_run
    from registry.models import OutboxMessage

    outbox_empty()
    outbox_fill(school, payloads)
    service = repository_start(school.code, 0.0)
    log: list[tuple[float, str, float]] = []

    def logged(execute, sql, params, many, context):
        word = sql.lstrip().split(None, 1)[0].upper()
        if word == "SET" and "search_path" in sql:
            word = "SET search_path"
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            log.append((time.time(), word, time.perf_counter() - began))

    profiler = cProfile.Profile() if profile else None
    connection.set_schema_to_public()
    try:
        started_at = timezone.now()
        with connection.execute_wrapper(logged):
            if profiler:
                profiler.enable()
            while OutboxMessage.objects.filter(state__in=[OutboxState.PENDING, OutboxState.SENDING]).exists():
                relay_run(worker=WORKER, seconds=300)
            if profiler:
                profiler.disable()
        last_sent = OutboxMessage.objects.aggregate(last=Max("sent_at"))["last"]
    finally:
        ministry.http_client_reset()
        service.stop()
    return (last_sent - started_at).total_seconds(), last_sent.timestamp(), log, profiler


def relay_profiled(school, payloads: list[Payload]) -> None:
    """Where the relay's time goes: SQL statements per message and the time inside them (a plain
    run), then the functions (a run under cProfile, which slows Python code down)."""
    n = len(payloads)
    seconds, last_sent, log, _ = relay_instrumented(school, payloads, profile=False)
    sends = [entry for entry in log if entry[0] <= last_sent]
    statements: dict[str, int] = {}
    inside: dict[str, float] = {}
    for _at, word, spent in sends:
        statements[word] = statements.get(word, 0) + 1
        inside[word] = inside.get(word, 0.0) + spent
    print(
        f"\nInstrumented relay run, no faults: the last send after {seconds:.2f} s ({n / seconds:,.0f}"
        " records/s, every statement logged); SQL statements of the relay's process until the last"
        " send, per message:"
    )
    for word, total in sorted(statements.items(), key=lambda kv: -kv[1]):
        print(f"  {word:<16} {total / n:6.2f}   {inside[word] / n * 1000:6.2f} ms")
    print(
        f"  {'all':<16} {len(sends) / n:6.2f}   {sum(inside.values()) / n * 1000:6.2f} ms inside statements"
        f" of {seconds / n * 1000:.2f} ms wall a message"
    )
    seconds, _last, _log, profiler = relay_instrumented(school, payloads, profile=True)
    print(
        f"\nThe same under cProfile (sends, then the polls that come due within the same relay_run):"
        f" {seconds:.2f} s to the last send ({n / seconds:,.0f} records/s)"
    )
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(15)


def spread(values: list[float]) -> str:
    return f"{min(values):,.0f}–{max(values):,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="messages per run (default 2000)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions (default 3; the median is printed)")
    parser.add_argument("--error-rate", type=float, default=0.1, help="the faulty runs' 503 rate (0.1)")
    parser.add_argument(
        "--production-backoff",
        action="store_true",
        help="also time the faulty relay with the configured back-off (2 s doubling), once a repetition",
    )
    parser.add_argument(
        "--profile", action="store_true", help="two more relay runs: statements logged, then cProfile"
    )
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be 1 or more")

    with throwaway_django() as server_version:
        import httpx
        from django.conf import settings

        from portal.choices import SchoolLevel
        from portal.models import Department
        from portal.provisioning import SchoolSpec, school_provision

        Department.objects.create(code="BENCH", name="Sở Giáo dục và Đào tạo Bench", place_name="Lào Cai")
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(
                code=SCHOOL_CODE, name="Trường THCS Bench", levels=(SchoolLevel.LOWER_SECONDARY,)
            ),
            division=None,
        )
        progress(f"making {args.n} documents ...")
        payloads = documents(args.n)
        sizes = [len(p.document) for p in payloads]
        configured_base = settings.HOCBA_FORWARD_BACKOFF_BASE
        settings_line = (
            f"HOCBA_FORWARD_CONCURRENCY {settings.HOCBA_FORWARD_CONCURRENCY},"
            f" HOCBA_FORWARD_BATCH {settings.HOCBA_FORWARD_BATCH},"
            f" HOCBA_FORWARD_BACKOFF_BASE {configured_base} s (0 in the timed faulty runs)"
        )

        faults = [0.0, args.error_rate] if args.error_rate > 0 else [0.0]
        bare: dict[float, list[float]] = {f: [] for f in faults}
        bare_attempts: dict[float, list[int]] = {f: [] for f in faults}
        bare_cpu: dict[float, list[dict[str, float]]] = {f: [] for f in faults}
        relayed: dict[float, list[RelayFigures]] = {f: [] for f in faults}
        production: list[RelayFigures] = []
        for run in range(1, args.runs + 1):
            for rate in faults:
                progress(f"run {run}/{args.runs}, error rate {rate:.0%}: bare POSTs ...")
                seconds, attempts, cpu = bare_posts(payloads, school.code, rate)
                bare_cpu[rate].append(cpu)
                bare[rate].append(args.n / seconds)
                bare_attempts[rate].append(attempts)
                progress(f"  {args.n / seconds:,.0f} records/s; the relay ...")
                figures = relay(school, payloads, rate, backoff_base=0)
                relayed[rate].append(figures)
                progress(
                    f"  {figures.rate(args.n):,.0f} records/s;"
                    f" verdicts {figures.verdict_seconds:.1f} s after their release"
                )
            if args.production_backoff and args.error_rate > 0:
                progress(f"run {run}/{args.runs}: the relay with the configured back-off ...")
                production.append(relay(school, payloads, args.error_rate, backoff_base=configured_base))
        if args.profile:
            progress("profiling one relay run ...")
            relay_profiled(school, payloads)
        outbox_empty()

    n = args.n
    print(
        f"Forwarding benchmark · {platform.node()} · {os.cpu_count()} cores"
        f" · load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end"
        f" · PostgreSQL {server_version} · Python {platform.python_version()} · httpx {httpx.__version__}"
    )
    print(
        f"{n} submit messages a run, one school; payload: the unsigned XSD-valid THCS sample record"
        f" (version 1, record id and student code varied; {min(sizes):,}–{max(sizes):,} bytes, not a"
        f" sealed document: stored 202, rejected `signature` later); the reference repository over"
        f" mutual TLS on 127.0.0.1, fresh for every run, no --trust-roots"
    )
    print(f"{settings_line}; median of {args.runs} repetitions (range)\n")
    print(f"  {'':<34} {'records/s':>10} {'range':>14} {'POSTs':>7}  extra")
    verdict_figures: dict[float, float] = {}
    ratios: dict[float, float] = {}
    for rate in faults:
        label = "no faults" if rate == 0 else f"{rate:.0%} errors (503)"
        rates = [f.rate(n) for f in relayed[rate]]
        median_bare, median_relay = statistics.median(bare[rate]), statistics.median(rates)
        # Each repetition's relay and bare POSTs share the machine's state of the moment: the ratio
        # is taken within a repetition, then the median of those.
        each = [r / b for r, b in zip(rates, bare[rate], strict=True)]
        ratios[rate] = statistics.median(each)
        verdict_figures[rate] = statistics.median(f.verdict_seconds for f in relayed[rate])
        posts = [f.outcomes.get("received", 0) + f.outcomes.get("retry", 0) for f in relayed[rate]]
        print(
            f"  bare POST, {label:<23} {median_bare:10,.0f} {spread(bare[rate]):>14}"
            f" {statistics.median(bare_attempts[rate]):7,.0f}"
        )
        print(
            f"  relay,     {label:<23} {median_relay:10,.0f} {spread(rates):>14}"
            f" {statistics.median(posts):7,.0f}  all verdicts {verdict_figures[rate]:.1f} s after release"
            f" (relay_run calls until all sent: {statistics.median(f.runs for f in relayed[rate]):.0f})"
        )
        print(
            f"  ratio relay ÷ bare POST, {label:<9} {ratios[rate]:10.2f}"
            f" {min(each):>9.2f}–{max(each):.2f}  (within each repetition; their median)"
        )
    print(
        "\nCPU per record (ms; median over the repetitions; the bench process is the client, or"
        " the relay with its threads):"
    )
    print(f"  {'':<34} {'bench':>7} {'repository':>11} {'PostgreSQL':>11} {'wall':>7}")
    for rate in faults:
        label = "no faults" if rate == 0 else f"{rate:.0%} errors (503)"
        rows = [
            (f"bare POST, {label}", bare_cpu[rate], [n / r for r in bare[rate]]),
            (f"relay,     {label}", [f.cpu for f in relayed[rate]], [f.sent_seconds for f in relayed[rate]]),
        ]
        for name, cpus, walls in rows:
            cells = [
                statistics.median(c[k] for c in cpus) / n * 1000 for k in ("bench", "repository", "postgres")
            ]
            print(
                f"  {name:<34} {cells[0]:7.2f} {cells[1]:11.2f} {cells[2]:11.2f}"
                f" {statistics.median(walls) / n * 1000:7.2f}"
            )
    if production:
        rates = [f.rate(n) for f in production]
        print(
            f"  relay, {args.error_rate:.0%} errors, back-off {configured_base} s doubling:"
            f" {statistics.median(rates):,.0f} records/s ({spread(rates)}), the last sent after"
            f" {statistics.median(f.sent_seconds for f in production):.1f} s"
        )
    no_fault_rate = statistics.median(f.rate(n) for f in relayed[0.0])
    rate_ok = no_fault_rate >= TARGET_RATE
    ratio_ok = ratios[0.0] >= TARGET_RATIO
    print(
        f"\nTarget: ≥ {TARGET_RATE:.0f} records/s with no faults: {no_fault_rate:,.0f}"
        f" {'PASS' if rate_ok else 'MISS'}; within 2× of the bare-POST rate (ratio ≥ {TARGET_RATIO}):"
        f" {ratios[0.0]:.2f} {'PASS' if ratio_ok else 'MISS'}"
    )
    return 0 if rate_ok and ratio_ok else 1


if __name__ == "__main__":
    sys.exit(main())
