"""The season's load test (issue 16): a province on this machine, its production stack, locust.

    make bench-load [ARGS="--schools 20 --users 40 --duration 90 --max-requests 20000
                           --workers-matrix sync:2,sync:4,gthread:2x4"]
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/load/run.py [same options]

Loopback only, in a throwaway database on the server of DATABASE_URL (bench/support.py), with
its own Redis key prefix; everything it starts is stopped at the end, also on failure.

1. The province: a department, two divisions, --schools lower secondary schools (default 20),
   each with the demo's two classes of --students (35) and their year of scores (transcripts.demo),
   a subject teacher (Toán in both classes), a homeroom teacher, a principal, a clerk (the
   school's administrator); a division officer per division and a department officer. Every
   account that needs two factors has a TOTP authenticator whose secret the load users know.
   In the first --signing-schools (3) schools class 9A1 is closed, its records made, confirmed
   and signed by the homeroom teacher (a real batch, in this process), so that the principal
   has a class to sign; the principal has a PKCS#12 key file, the school a PKCS#12 seal (the
   development CA of this run; no TSA: signatures are XAdES-B, said in the output).
2. The production stack: gunicorn on config.wsgi (DEBUG off, a secret of its own, static files
   collected into a temporary directory, plain HTTP on 127.0.0.1 with the HTTPS-only settings
   off: DJANGO_SECURE_COOKIES=0, DJANGO_SECURE_SSL_REDIRECT=0, HOCBA_HSTS_SECONDS=0),
   Celery worker pools as `make run` runs them (signing -c 2; pdf -c 1; celery+forwarding -c 1),
   beat (the relay every HOCBA_FORWARD_RELAY_SECONDS, the sweeps), and the reference Ministry
   repository (its own process, mutual TLS, the schools registered, the run's CA trusted). The
   public verification page's per-address limit is raised (HOCBA_VERIFY_RATE_LIMIT): every
   visitor comes from 127.0.0.1 here.
3. locust, headless, for each gunicorn setting of --workers-matrix (sync:N, gthread:NxT):
   -u --users, -r --spawn-rate, -t --duration, and at most --max-requests requests. The user
   classes (bench/load/locustfile.py): subject teachers saving grade book cells, homeroom
   teachers, one signing office per ready school (the principal signs, the clerk seals), officers
   polling dashboards, visitors of the verification page. With one setting, one run, signing
   included. With several, each is measured with the offices only looking at the signing page
   (the same load for each, no workers' CPU behind it), then the season's run, signing included,
   on the first setting.
4. After the runs: waits (at most --drain seconds) for the signing batches to finish, the PDFs
   to exist and the outbox to empty, then checks the data: every cell a user saw saved (200) holds
   the last value saved for it; every record issued during the run has its PDF, one outbox
   message, sent and acknowledged, and the repository holds it exactly once; no 5xx; no failed
   request. Exit status 1 on any error or failed check.

Printed: the machine, the settings, per request type the count, req/s, p50/p95/p99, failures;
the throughput; the worker-model table; the work done behind the pages (cell saves/s, records
signed/s, PDFs/s, records forwarded/s) and the database's size per school and per student; the
data check, PASS/FAIL with counts. Progress goes to stderr, the figures to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.support import ROOT, throwaway_django

PASSWORD = "load-only-password-2026"  # noqa: S105 - a throwaway database's accounts
PIN = "246810"
COLLECT_IGNORE = ["-i", "admin", "-i", "rest_framework", "-i", "drf_spectacular_sidecar"]
YEAR = "2025-2026"


def say(message: str) -> None:
    print(f"[load] {message}", file=sys.stderr, flush=True)


# --- The province ------------------------------------------------------------------------------


@dataclass
class Province:
    plan: dict
    school_codes: list[str]
    signing_schools: list[str]
    students: int
    setup_seconds: float
    homeroom_signed: int = 0
    homeroom_sign_seconds: float = 0.0


def _user(username: str, full_name: str):
    from portal.models import User

    return User.objects.create_user(
        username=username, password=None, full_name=full_name, email=f"{username}@load.hocba.local"
    )


def _grant(user, role: str, *, school=None, division=None, **extra) -> None:
    from portal.models import RoleAssignment
    from portal.permissions import forget_access

    RoleAssignment.objects.create(user=user, role=role, school=school, division=division, **extra)
    forget_access(user)


def _class_ready_to_sign(school, school_class, *, principal, teacher) -> int:
    """Close the class's year, make and confirm its records (August's re-assessments passed, as
    bench/signing_batches.py does); the count of confirmed records."""
    from schools.models import SchoolClass
    from transcripts.models import StudentYear, YearRecord, YearRecordStatus
    from transcripts.records.services import year_record_confirm, year_records_create
    from transcripts.selectors import student_year_retakes
    from transcripts.yearclose import class_summer_close, class_year_close, summer_cell_save

    class_year_close(actor=principal, school=school, school_class=school_class)
    outcome = year_records_create(actor=principal, school=school, school_class=school_class)
    if outcome.waiting:
        school_class = SchoolClass.objects.get(pk=school_class.pk)
        for year in StudentYear.objects.filter(enrolment__school_class=school_class):
            cells = [
                (f"retake:{code}", "Đ" if year.results["subjects"][code]["year"] in ("Đ", "CĐ") else "6")
                for code in student_year_retakes(year)
            ]
            if year.results.get("outcome") == "summer_training":
                cells.append(("conduct_after_training", "Đ"))
            for field_name, value in cells:
                summer_cell_save(
                    actor=teacher,
                    school=school,
                    school_class=school_class,
                    enrolment_id=year.enrolment_id,
                    field=field_name,
                    raw=value,
                )
        class_summer_close(actor=principal, school=school, school_class=school_class)
        year_records_create(actor=principal, school=school, school_class=school_class)
    confirmed = 0
    for record in YearRecord.objects.filter(
        enrolment__school_class=school_class, status=YearRecordStatus.DATA_COMPLETE
    ):
        year_record_confirm(actor=teacher, school=school, record=record)
        confirmed += 1
    return confirmed


def _homeroom_sign(school, school_class, teacher, certificate) -> int:
    """The homeroom teacher's batch over the class, run here as a worker would run it."""
    from django.db import connection

    from bench.signing_batches import patched
    from signing import services
    from signing.models import ItemState, SigningStep
    from signing.services import runner

    connection.set_tenant(school)
    with patched(runner, "signing_batch_enqueue", lambda pk, countdown=None: None):
        batch = services.signing_batch_start(
            actor=teacher,
            school=school,
            step=SigningStep.HOMEROOM_TEACHER,
            certificate=certificate,
            school_class=school_class,
        )
        services.signing_batch_confirm(actor=teacher, school=school, batch=batch, pin=PIN)
        connection.set_schema_to_public()
        outcome = services.signing_batch_run(batch_pk=batch.pk, worker="load-setup")
    done = batch.items.filter(state=ItemState.DONE).count()
    if outcome != "done" or done != batch.items.count():
        raise SystemExit(f"setup: the homeroom batch of {school.code} ended {outcome}, {done} signed")
    return done


def province_build(args, dev) -> Province:
    """The province (see the module's docstring); the plan the load users read."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.db import connection

    from portal.choices import DivisionKind, Role, SchoolLevel
    from portal.models import Department, Division, User
    from portal.permissions import requires_two_factor
    from portal.provisioning import SchoolSpec, school_provision
    from schools.models import Enrolment, SchoolClass, TeachingAssignment
    from signing import ca
    from signing.services import certificate_register_pkcs12
    from transcripts.demo import school_demo_seed

    started = time.perf_counter()
    Department.objects.create(code="LT", name="Sở Giáo dục và Đào tạo Thử Tải", place_name="Lào Cai")
    divisions = [
        Division.objects.create(
            code=f"pgd-{n}", name=f"Phòng GD&ĐT Thử Tải {n}", kind=DivisionKind.DISTRICT_OFFICE
        )
        for n in (1, 2)
    ]
    officers = []
    department_officer = _user("so.chuyenvien", "Trần Thị Sở")
    _grant(department_officer, Role.DEPARTMENT_OFFICER, data_access=True)
    officers.append(
        {"username": department_officer.username, "page": "/so/", "label": "dashboard: department"}
    )
    for division in divisions:
        officer = _user(f"{division.code}.chuyenvien", f"Cán Bộ {division.name}")
        _grant(officer, Role.DIVISION_OFFICER, division=division)
        officers.append(
            {
                "username": officer.username,
                "page": f"/don-vi/{division.code}/",
                "label": "dashboard: division",
            }
        )

    books: list[list[dict]] = []
    homerooms, offices, codes, signing_codes = [], [], [], []
    students = 0
    signed = 0
    sign_seconds = 0.0
    for i in range(1, args.schools + 1):
        code = f"lt-{i:03d}"
        say(f"school {i}/{args.schools}: provisioning and seeding ...")
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(
                code=code,
                name=f"Trường THCS Thử Tải {i}",
                levels=(SchoolLevel.LOWER_SECONDARY,),
                division_code=divisions[i % 2].code,
            ),
            division=divisions[i % 2],
        )
        codes.append(code)
        subject = _user(f"{code}.gvbm", f"Giáo Viên Toán {i}")
        homeroom = _user(f"{code}.gvcn", f"Giáo Viên Chủ Nhiệm {i}")
        principal = _user(f"{code}.hieutruong", f"Hiệu Trưởng {i}")
        clerk = _user(f"{code}.giaovu", f"Giáo Vụ {i}")
        for user, role in (
            (subject, Role.SUBJECT_TEACHER),
            (homeroom, Role.HOMEROOM_TEACHER),
            (principal, Role.PRINCIPAL),
            (clerk, Role.SCHOOL_ADMIN),
        ):
            _grant(user, role, school=school)
        school_demo_seed(
            school, {"thcs.gvbm": subject, "thcs.gvcn": homeroom}, students_per_class=args.students
        )
        signs = i <= args.signing_schools
        with school:
            classes = list(SchoolClass.objects.order_by("pk"))  # 6A1 (the homeroom's), 9A1
            students += Enrolment.objects.count()
            first, second = classes[0], classes[1]
            homerooms.append(
                {
                    "school": code,
                    "teacher": homeroom.username,
                    "page": f"/truong/{code}/so-diem/lop/{first.pk}/",
                    "save": f"/truong/{code}/so-diem/lop/{first.pk}/o/",
                }
            )
            toan = {
                a.school_class_id
                for a in TeachingAssignment.objects.filter(subject__code="toan", teacher_id=subject.pk)
            }
            open_classes = [first] if signs else [first, second]
            for index, school_class in enumerate(open_classes):
                if school_class.pk not in toan:
                    raise SystemExit(f"setup: {code} {school_class.name}: no Toán assignment")
                for term in (1, 2):
                    slot = index * 2 + term - 1
                    while len(books) <= slot:
                        books.append([])
                    books[slot].append(
                        {
                            "school": code,
                            "teacher": subject.username,
                            "subject": "toan",
                            "term": term,
                            "page": f"/truong/{code}/so-diem/{school_class.pk}/toan/?hk={term}",
                            "save": f"/truong/{code}/so-diem/{school_class.pk}/toan/o/",
                            "fields": ["regular_1", "regular_2", "regular_3", "regular_4", "mid", "end"],
                        }
                    )
            if signs:
                SchoolClass.objects.filter(pk=second.pk).update(homeroom_teacher=homeroom)
                second.refresh_from_db()
                say(f"school {i}: {second.name}: year close, records, confirmation ...")
                _class_ready_to_sign(school, second, principal=principal, teacher=homeroom)
        if signs:
            keys = {}
            for user, title in ((homeroom, "Giáo viên chủ nhiệm"), (principal, "Hiệu trưởng")):
                p12 = ca.pkcs12_export(ca.issue_person(dev, common_name=user.full_name, title=title), PIN)
                keys[user.pk] = certificate_register_pkcs12(actor=user, user=user, data=p12, pin=PIN)
            seal = ca.pkcs12_export(ca.issue_organisation(dev, name=school.name, province="Lào Cai"), PIN)
            seal_certificate = certificate_register_pkcs12(actor=clerk, school=school, data=seal, pin=PIN)
            say(f"school {i}: {second.name}: the homeroom teacher's batch ...")
            begun = time.perf_counter()
            signed += _homeroom_sign(school, second, homeroom, keys[homeroom.pk])
            sign_seconds += time.perf_counter() - begun
            signing_codes.append(code)
            offices.append(
                {
                    "school": code,
                    "principal": principal.username,
                    "clerk": clerk.username,
                    "signing": f"/truong/{code}/ky-so/",
                    "class_id": second.pk,
                    "principal_certificate": keys[principal.pk].pk,
                    "seal_certificate": seal_certificate.pk,
                }
            )
        connection.set_schema_to_public()

    # One password for all, hashed as the server (DEBUG off, not testing) checks it.
    hasher = PBKDF2PasswordHasher()
    User.objects.update(password=hasher.encode(PASSWORD, hasher.salt()))
    secrets = {}
    for user in User.objects.all():
        if requires_two_factor(user):
            secret = generate_totp_secret()
            TOTP.activate(user, secret)
            secrets[user.username] = secret
    plan = {
        "password": PASSWORD,
        "pin": PIN,
        "totp": secrets,
        "books": [book for slot in books for book in slot],  # each school's first class first
        "homerooms": homerooms,
        "offices": offices,
        "officers": officers,
    }
    return Province(
        plan=plan,
        school_codes=codes,
        signing_schools=signing_codes,
        students=students,
        setup_seconds=time.perf_counter() - started,
        homeroom_signed=signed,
        homeroom_sign_seconds=sign_seconds,
    )


# --- The stack -----------------------------------------------------------------------------------


@dataclass
class Stack:
    env: dict
    tmp: Path
    processes: dict = field(default_factory=dict)
    logs: dict = field(default_factory=dict)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("w")
        self.logs[name] = self.tmp / f"{name}.log"
        process = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs.get(name)
        return path.read_text(errors="replace")[-chars:] if path and path.exists() else ""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, stack: Stack, name: str) -> None:
    import socket

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if stack.processes[name].poll() is not None:
            raise SystemExit(f"{name} exited:\n{stack.tail(name)}")
        time.sleep(0.2)
    raise SystemExit(f"{name} did not listen within 90 s")


def gunicorn_start(stack: Stack, setting: str) -> int:
    kind, _, size = setting.partition(":")
    port = _free_port()
    argv = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    if kind == "sync":
        argv += ["--workers", size]
    elif kind == "gthread":
        workers, _, threads = size.partition("x")
        argv += ["--workers", workers, "--threads", threads, "--worker-class", "gthread"]
    else:
        raise SystemExit(f"unknown worker setting {setting!r} (sync:N or gthread:NxT)")
    argv += ["--timeout", "120", "--access-logfile", str(stack.tmp / f"access-{setting}.log")]
    argv += ["--access-logformat", "%(m)s %(U)s %(s)s %(D)s"]
    stack.start("web", argv)
    _wait_for_port(port, stack, "web")
    # Each worker imports the portal at its first request: not what a season's day measures.
    import httpx

    for _i in range(4 * int(size.partition("x")[0])):
        for path in ("/accounts/login/", "/tra-cuu/"):
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=120)
    return port


def celery_start(stack: Stack) -> None:
    def worker(queues: str, concurrency: int, name: str) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "info",
                "-Q", queues, "-c", str(concurrency), "-n", f"{name}-load@%h"]  # fmt: skip

    stack.start("worker-default", worker("celery,forwarding", 1, "default"))
    stack.start("worker-signing", worker("signing", 2, "signing"))
    stack.start("worker-pdf", worker("pdf", 1, "pdf"))
    beat_file = stack.tmp / "celerybeat-schedule"
    stack.start(
        "beat", [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info", "-s", str(beat_file)]
    )


def _totp(secret: str, step: int) -> str:
    import base64
    import hashlib
    import hmac
    import struct

    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def sessions_open(port: int, plan: dict) -> list[float]:
    """Every account of the plan signs in once through the login form (and its code page), one
    after the other, before the runs: the morning's sign-ins, measured apart (a sign-in checks a
    PBKDF2 hash of 1,000,000 iterations, half a second of a core: 40 at once would be a storm no
    season has, and would hide the day's work). The sessions' cookies go into the plan. Returns
    the seconds each sign-in took."""
    import re

    import httpx

    usernames = sorted(
        {b["teacher"] for b in plan["books"]}
        | {h["teacher"] for h in plan["homerooms"]}
        | {o["principal"] for o in plan["offices"]}
        | {o["clerk"] for o in plan["offices"]}
        | {o["username"] for o in plan["officers"]}
    )
    base = f"http://127.0.0.1:{port}"
    token = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
    sessions, used, times = {}, {}, []
    for username in usernames:
        with httpx.Client(base_url=base, follow_redirects=True, timeout=300) as client:
            begun = time.perf_counter()
            page = client.get("/accounts/login/")
            answer = client.post(
                "/accounts/login/",
                data={
                    "login": username,
                    "password": PASSWORD,
                    "csrfmiddlewaretoken": token.search(page.text)[1],
                },
                headers={"Referer": f"{base}/accounts/login/"},
            )
            for _attempt in range(3):
                if answer.url.path != "/accounts/2fa/authenticate/":
                    break
                # A code typed as its 30-s window ends can arrive after it (the server allows no
                # drift): the next window's code then, as a person types the next one.
                step = max(int(time.time() // 30), used.get(username, -1) + 1)
                while time.time() < step * 30:
                    time.sleep(0.2)
                used[username] = step
                answer = client.post(
                    "/accounts/2fa/authenticate/",
                    data={
                        "code": _totp(plan["totp"][username], step),
                        "csrfmiddlewaretoken": token.search(answer.text)[1],
                    },
                    headers={"Referer": f"{base}/accounts/2fa/authenticate/"},
                )
            times.append(time.perf_counter() - begun)
            if "sessionid" not in client.cookies or answer.url.path.startswith("/accounts/"):
                raise SystemExit(f"sign-in of {username} failed: {answer.status_code} {answer.url}")
            sessions[username] = {
                "sessionid": client.cookies["sessionid"],
                "csrftoken": client.cookies["csrftoken"],
            }
    plan["sessions"], plan["totp_used"] = sessions, used
    return times


# --- locust --------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    count: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float


@dataclass
class Run:
    signing: bool
    setting: str
    seconds: float
    rows: list[Row]
    total: Row
    work: Row
    statuses: dict
    failures: list[str]
    web_cpu: float = 0.0
    db_cpu: float = 0.0


def locust_run(args, port: int, setting: str, plan_file: Path, out: Path, *, signing: bool) -> Run:
    prefix = out / f"locust-{setting.replace(':', '-')}{'-season' if signing else ''}"
    env = {
        **os.environ,
        "HOCBA_LOAD_SIGN": "1" if signing else "0",
        "HOCBA_LOAD_PLAN": str(plan_file),
        "HOCBA_LOAD_OUT": str(out),
        "HOCBA_LOAD_MAX_REQUESTS": str(args.max_requests),
    }
    argv = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "load" / "locustfile.py"),
        "--headless", "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.duration}s",
        "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix), "--only-summary",
        "--stop-timeout", "10", "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    say(f"locust: {args.users} users, {setting}, {args.duration} s or {args.max_requests} requests ...")
    started = time.perf_counter()
    log_name = f"{prefix.name}.log"
    with (out / log_name).open("w") as log:
        subprocess.run(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=args.duration + 900,
        )
    seconds = time.perf_counter() - started
    timings: list = []
    for timing_file in out.glob("timings-*.json"):
        timings += json.loads(timing_file.read_text())
        timing_file.unlink()
    if not timings:
        raise SystemExit(f"locust made no request; its log:\n{(out / log_name).read_text()[-3000:]}")
    window = max(t[1] for t in timings) - min(t[1] - t[2] / 1000 for t in timings)
    by_name: dict[str, list] = {}
    for timing in timings:
        by_name.setdefault(timing[0], []).append(timing)
    rows = [_row(name, group, window) for name, group in by_name.items()]
    total = _row("all", timings, window)
    work = _row("all but sign-in", [t for t in timings if not t[0].startswith("sign-in")], window)
    failures = []
    with contextlib.suppress(FileNotFoundError), open(f"{prefix}_failures.csv", newline="") as handle:
        failures = [
            f"{f['Method']} {f['Name']}: {f['Error'][:200]} ×{f['Occurrences']}"
            for f in csv.DictReader(handle)
        ]
    with contextlib.suppress(FileNotFoundError), open(f"{prefix}_exceptions.csv", newline="") as handle:
        failures += [
            f"exception in a user's task: {e['Message'][:200]} ×{e['Count']}" for e in csv.DictReader(handle)
        ]
    statuses: dict[str, int] = {}
    for status_file in out.glob("status-*.json"):
        for key, value in json.loads(status_file.read_text()).items():
            statuses[key] = statuses.get(key, 0) + value
        status_file.unlink()
    return Run(
        signing=signing,
        setting=setting,
        seconds=seconds,
        rows=rows,
        total=total,
        work=work,
        statuses=statuses,
        failures=failures,
    )


def _row(name: str, timings: list, window: float) -> Row:
    from bench.support import percentile

    ms = [t[2] for t in timings]
    return Row(
        name=name,
        count=len(timings),
        failures=sum(1 for t in timings if not 200 <= t[3] < 400),
        rps=len(timings) / window if window else 0.0,
        p50=percentile(ms, 0.50),
        p95=percentile(ms, 0.95),
        p99=percentile(ms, 0.99),
    )


# --- After the runs ------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def drain(province: Province, seconds: float) -> float:
    """Wait until no batch is unfinished, no issued record lacks its PDF and the outbox is empty."""
    from django.db import connection

    from registry.choices import OutboxState
    from registry.models import OutboxMessage
    from signing.models import BatchState, SigningBatch

    # Finished, or waiting by design (a student without a verified personal ID is not sent).
    SETTLED = [
        OutboxState.ACKNOWLEDGED,
        OutboxState.REJECTED,
        OutboxState.DEAD,
        OutboxState.WAITING_PERSONAL_ID,
    ]
    say("waiting for the queues to drain ...")
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        connection.set_schema_to_public()
        busy = SigningBatch.objects.filter(state__in=[BatchState.QUEUED, BatchState.RUNNING]).count()
        outbox = OutboxMessage.objects.exclude(state__in=SETTLED).count()
        missing = sum(len(_issued_without_pdf(code)) for code in province.signing_schools)
        if not busy and not outbox and not missing:
            return time.perf_counter() - started
        time.sleep(2)
    return time.perf_counter() - started


def _issued(code: str) -> list:
    from portal.models import School
    from transcripts.models import YearRecord

    school = School.objects.get(code=code)
    with school:
        return list(
            YearRecord.objects.filter(signatures__role="seal")
            .distinct()
            .values_list("pk", "record_id", "version")
        )


def _issued_without_pdf(code: str) -> list:
    from portal.models import School
    from transcripts.models import YearRecord

    school = School.objects.get(code=code)
    with school:
        return list(
            YearRecord.objects.filter(signatures__role="seal", pdf__isnull=True)
            .distinct()
            .values_list("pk", flat=True)
        )


def data_check(province: Province, out: Path, ministry_state: dict) -> list[Check]:
    from django.db import connection

    from portal.models import School
    from registry.choices import MessageKind, OutboxState
    from registry.models import OutboxMessage
    from schools.models import Subject
    from transcripts.models import StudentYear, SubjectTermScores

    checks = []
    last: dict[tuple, dict] = {}
    saves = [json.loads(line) for path in out.glob("saves-*.jsonl") for line in path.read_text().splitlines()]
    # By the time each answer came (a cell is one user's in a run; runs follow each other).
    for save in sorted(saves, key=lambda save: save["at"]):
        key = (
            save["kind"],
            save["school"],
            save.get("subject"),
            save.get("term"),
            save["enrolment"],
            save["field"],
        )
        last[key] = save
    wrong: list[str] = []
    by_school: dict[str, list] = {}
    for key, save in last.items():
        by_school.setdefault(key[1], []).append((key, save))
    for code, saves in by_school.items():
        with School.objects.get(code=code):
            subjects = {s.code: s.pk for s in Subject.objects.all()}
            for (kind, _school, subject, term, enrolment, field_name), save in saves:
                if kind == "score":
                    row = SubjectTermScores.objects.filter(
                        enrolment_id=enrolment, subject_id=subjects[subject], term=term
                    ).first()
                    stored = getattr(row, field_name) if row else None
                    ok = stored is not None and Decimal(str(stored)) == Decimal(
                        save["value"].replace(",", ".")
                    )
                else:
                    year = StudentYear.objects.filter(enrolment_id=enrolment).first()
                    stored = getattr(year, field_name) if year else None
                    ok = str(stored) == save["value"]
                if not ok:
                    wrong.append(
                        f"{code} {kind} {enrolment}/{field_name}: saved {save['value']!r}, stored {stored!r}"
                    )
    connection.set_schema_to_public()
    checks.append(
        Check(
            "every saved cell holds its last saved value",
            bool(last) and not wrong,
            f"{len(last)} cells checked ({sum(1 for k in last if k[0] == 'score')} scores, "
            f"{sum(1 for k in last if k[0] == 'homeroom')} homeroom), {len(wrong)} wrong"
            + (f": {wrong[:3]}" if wrong else ""),
        )
    )

    from signing.models import BatchState, SigningBatch

    batches = list(
        SigningBatch.objects.filter(step__in=["principal", "seal"]).values_list("state", flat=True)
    )
    unfinished = [state for state in batches if state != BatchState.DONE]
    checks.append(
        Check(
            "every signing batch started in the run finished",
            len(batches) == 2 * len(province.signing_schools) and not unfinished,
            f"{len(batches)} batches (principal and seal, {len(province.signing_schools)} schools), "
            f"{len(unfinished)} unfinished ({', '.join(sorted(set(unfinished))) or 'none'})",
        )
    )
    issued = [(code, *row) for code in province.signing_schools for row in _issued(code)]
    expected = sum(1 for _ in issued)
    without_pdf = sum(len(_issued_without_pdf(code)) for code in province.signing_schools)
    checks.append(
        Check(
            "every issued record has its PDF",
            expected > 0 and without_pdf == 0,
            f"{expected} records issued (sealed) in {len(province.signing_schools)} schools, "
            f"{without_pdf} without a PDF",
        )
    )
    messages = list(
        OutboxMessage.objects.filter(kind=MessageKind.SUBMIT).values_list("record_id", "version", "state")
    )
    per_record: dict[tuple, list] = {}
    for record_id, version, state in messages:
        per_record.setdefault((record_id, version), []).append(state)
    issued_keys = {(record_id, version) for _code, _pk, record_id, version in issued}
    waiting = {k for k in issued_keys if per_record.get(k) == [OutboxState.WAITING_PERSONAL_ID]}
    sendable = issued_keys - waiting
    not_once = [k for k in issued_keys if len(per_record.get(k, [])) != 1]
    not_acknowledged = [k for k in sendable if per_record.get(k) != [OutboxState.ACKNOWLEDGED]]
    held: dict[tuple, int] = {}
    for message in ministry_state.get("messages", []):
        key = (message.get("record_id"), message.get("version"))
        held[key] = held.get(key, 0) + 1
    not_held_once = [k for k in sendable if held.get(k, 0) != 1]
    held_waiting = [k for k in waiting if held.get(k, 0)]
    checks.append(
        Check(
            "every issued record forwarded exactly once",
            bool(sendable)
            and not not_once
            and not not_acknowledged
            and not not_held_once
            and not held_waiting,
            f"outbox: {len(messages)} submit messages, {len(not_once)} issued records without exactly one, "
            f"{len(not_acknowledged)} of {len(sendable)} sendable not acknowledged, {len(waiting)} waiting "
            f"for a verified personal ID (not sent, by design); repository: holds "
            f"{ministry_state.get('held')}, {len(not_held_once)} sendable records not held exactly once, "
            f"{len(held_waiting)} waiting ones held",
        )
    )
    return checks


def db_size() -> tuple[int, int]:
    """(bytes of the whole database, bytes of one school's schema: the first's)."""
    from django.db import connection

    from portal.models import School

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        total = int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            [School.objects.get(code="lt-001").schema_name],
        )
        school = int(cursor.fetchone()[0])
    return total, school


# --- Main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=20, help="schools (default 20)")
    parser.add_argument("--students", type=int, default=35, help="students a class (default 35)")
    parser.add_argument("--signing-schools", type=int, default=3, help="schools with a class to sign (3)")
    parser.add_argument("--users", type=int, default=40, help="locust users (default 40)")
    parser.add_argument("--spawn-rate", type=float, default=10, help="users started a second (10)")
    parser.add_argument("--duration", type=int, default=90, help="seconds of each run (default 90)")
    parser.add_argument("--max-requests", type=int, default=20000, help="requests at most per run (20000)")
    parser.add_argument(
        "--workers-matrix",
        default="sync:2",
        help="gunicorn settings, one run each: sync:N, gthread:NxT, comma-separated (default sync:2)",
    )
    parser.add_argument("--drain", type=int, default=600, help="seconds at most to wait for the queues (600)")
    args = parser.parse_args()
    settings_list = [s.strip() for s in args.workers_matrix.split(",") if s.strip()]
    if args.signing_schools > args.schools:
        args.signing_schools = args.schools

    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives.serialization import Encoding

    from signing import ca

    tmp = Path(tempfile.mkdtemp(prefix="hocba-load-"))
    out = tmp / "out"
    out.mkdir()
    dev = ca.dev_ca("Học bạ số (thử tải)")
    roots, crl, issuing = tmp / "roots.pem", tmp / "crl.pem", tmp / "issuing.pem"
    roots.write_bytes(dev.root_cert.public_bytes(Encoding.PEM))
    issuing.write_bytes(dev.issuing_cert.public_bytes(Encoding.PEM))
    crl.write_bytes(ca.issue_crl(dev).public_bytes(Encoding.PEM))
    # The setup process and the stack share these (read by the settings at start).
    os.environ.update(
        HOCBA_TRUST_ROOTS=str(roots),
        HOCBA_TRUST_CRLS=str(crl),
        HOCBA_TSA_URL="",
        HOCBA_CSC_URL="",
        HOCBA_DEPLOYMENT_KEY=Fernet.generate_key().decode(),
        HOCBA_DOCUMENTS_DIR=str(tmp / "documents"),
        HOCBA_ARCHIVE_DIR=str(tmp / "archive"),
    )
    for name in ("HOCBA_TSA_TRUST_ROOTS", "HOCBA_CSC_CLIENT_SECRET", "HOCBA_MINISTRY_URL", "SOFTHSM2_CONF"):
        os.environ.pop(name, None)

    from tests.reference.ministry_service import MinistryService

    stack: Stack | None = None
    ministry = None
    exit_code = 0
    try:
        with throwaway_django() as server_version:
            from django.db import connection

            province = province_build(args, dev)
            plan_file = tmp / "plan.json"
            plan_file.write_text(json.dumps(province.plan))
            say(
                f"province built in {province.setup_seconds:.0f} s: {args.schools} schools, "
                f"{province.students} students, {len(province.plan['books'])} grade books to fill"
            )
            ministry = MinistryService(tmp / "ministry", trust_roots=[roots], untrusted=[issuing])
            ministry.schools_add(*province.school_codes)
            env = {k: v for k, v in os.environ.items() if k not in ("HOCBA_TESTING", "DJANGO_DEBUG")}
            env.update(
                DJANGO_SETTINGS_MODULE="config.settings",
                DJANGO_DEBUG="0",
                DJANGO_SECRET_KEY="load-" + Fernet.generate_key().decode(),
                DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
                # Plain HTTP on loopback: the HTTPS-only settings off (a proxy does TLS in production).
                DJANGO_SECURE_COOKIES="0",
                DJANGO_SECURE_SSL_REDIRECT="0",
                HOCBA_HSTS_SECONDS="0",
                HOCBA_STATIC_ROOT=str(tmp / "static"),
                HOCBA_VERIFY_RATE_LIMIT="1000000",
                HOCBA_MINISTRY_URL=ministry.url + "/",
                HOCBA_MINISTRY_TOKEN=ministry.token,
                HOCBA_MINISTRY_CA=str(ministry.ca_path),
                HOCBA_MINISTRY_CLIENT_CERT=str(ministry.client_cert_path),
                HOCBA_MINISTRY_CLIENT_KEY=str(ministry.client_key_path),
                HOCBA_PUBLIC_URL="http://127.0.0.1",
                PYTHONPATH=str(ROOT),
                PYTHONUNBUFFERED="1",
            )
            say("collectstatic ...")
            subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0", *COLLECT_IGNORE],
                cwd=ROOT,
                env=env,
                check=True,
            )
            connection.close()
            stack = Stack(env=env, tmp=tmp)
            celery_start(stack)
            runs = []
            first_started = time.time()
            # With several settings, each is measured without the signing (the same users otherwise),
            # then the season's run with the signing on the first setting.
            plan_runs = [(s, len(settings_list) == 1) for s in settings_list]
            if len(settings_list) > 1:
                plan_runs.append((settings_list[0], True))
            sign_ins: list[float] = []
            for setting, signing in plan_runs:
                port = gunicorn_start(stack, setting)
                say(f"gunicorn {setting} on 127.0.0.1:{port}")
                if not sign_ins:
                    say("the morning: every account signs in once ...")
                    sign_ins = sessions_open(port, province.plan)
                    plan_file.write_text(json.dumps(province.plan))
                cpu_before, db_before = _tree_cpu(stack.processes["web"].pid), _db_cpu()
                run = locust_run(args, port, setting, plan_file, out, signing=signing)
                run.web_cpu = _tree_cpu(stack.processes["web"].pid) - cpu_before
                # Backends that ended during the run are lost (persistent connections: few).
                run.db_cpu = sum(cpu - db_before.get(pid, 0.0) for pid, cpu in _db_cpu().items())
                runs.append(run)
                stack.stop("web")
            drained = drain(province, args.drain)
            ministry_state = ministry.state()
            checks = data_check(province, out, ministry_state)
            work = work_figures(province, first_started)
            total, school_bytes = db_size()
            report(args, server_version, province, runs, checks, work, drained, total, school_bytes, sign_ins)
            failed_requests = sum(r.total.failures + len(r.failures) for r in runs)
            fives = sum(r.statuses.get("5xx", 0) for r in runs)
            if failed_requests or fives or not all(c.ok for c in checks):
                exit_code = 1
            for name in list(stack.processes):
                log = stack.tail(name, 200000)
                if "Traceback" in log:
                    print(f"\n{name}: a traceback in its log:\n{log[log.index('Traceback') :][:3000]}")
                    exit_code = 1
    finally:
        if stack is not None:
            stack.stop_all()
        if ministry is not None:
            ministry.stop()
        if os.environ.get("HOCBA_LOAD_KEEP"):
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return exit_code


def _db_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend on the bench's database (/proc)."""
    from django.db import connection

    from bench.support import cpu_seconds as _cpu_seconds

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    connection.close()
    return {pid: _cpu_seconds([pid]) for pid in pids}


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (gunicorn's arbiter and workers), from /proc."""
    from bench.support import children as _children
    from bench.support import cpu_seconds as _cpu_seconds

    return _cpu_seconds([pid, *_children(pid)])


def work_figures(province: Province, since: float) -> dict:
    """What the workers did behind the pages, from the database's own timestamps."""
    import datetime as dt

    from django.db.models import Max, Min

    from registry.models import OutboxMessage
    from signing.models import SigningBatch

    start = dt.datetime.fromtimestamp(since, tz=dt.UTC)
    figures: dict = {}
    batches = SigningBatch.objects.filter(created_at__gte=start)
    for step in ("principal", "seal"):
        span = batches.filter(step=step).aggregate(first=Min("confirmed_at"), last=Max("finished_at"))
        count = sum(b.items.count() for b in batches.filter(step=step))
        if span["first"] and span["last"]:
            figures[step] = (count, (span["last"] - span["first"]).total_seconds())
    sent = OutboxMessage.objects.filter(created_at__gte=start).aggregate(
        first=Min("created_at"), last=Max("sent_at"), n=Max("pk")
    )
    rendered = []
    for code in province.signing_schools:
        from portal.models import School
        from transcripts.models import YearRecordPdf

        with School.objects.get(code=code):
            rendered += list(YearRecordPdf.objects.values_list("rendered_at", flat=True))
    if len(rendered) > 1:
        figures["pdf"] = (len(rendered), (max(rendered) - min(rendered)).total_seconds())
    count = OutboxMessage.objects.filter(created_at__gte=start).count()
    if sent["first"] and sent["last"]:
        figures["forwarded"] = (count, (sent["last"] - sent["first"]).total_seconds())
    return figures


def report(
    args, server_version, province, runs, checks, work, drained, total, school_bytes, sign_ins
) -> None:
    from bench.support import percentile

    cores = os.cpu_count() or 1
    print(
        f"Season load test · {platform.node()} · {cores} cores · {platform.python_version()} · "
        f"PostgreSQL {server_version} · load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(
        f"province: {args.schools} schools (2 classes of {args.students}), {province.students} students, "
        f"{len(province.signing_schools)} schools with a class to sign ({province.homeroom_signed} records "
        f"signed by the homeroom teachers in setup, {province.homeroom_sign_seconds:.1f} s); built in "
        f"{province.setup_seconds:.0f} s"
    )
    print(
        "stack: gunicorn config.wsgi, DEBUG off, loopback HTTP (HTTPS-only settings off); Celery pools "
        "signing -c 2, pdf -c 1, celery+forwarding -c 1, beat; reference Ministry repository (mTLS); "
        "PKCS#12 keys, no TSA (XAdES-B)"
    )
    print(
        f"locust: {args.users} users (spawn {args.spawn_rate}/s), {args.duration} s or "
        f"{args.max_requests} requests per run, loopback; the load generator shares the cores"
    )
    print(
        f"\nthe morning's sign-ins (login form, and the code page for the accounts with two factors),"
        f" one after the other on {runs[0].setting if runs else '?'} before the runs: {len(sign_ins)},"
        f" p50 {percentile(sign_ins, 0.5) * 1000:.0f} ms, p95 {percentile(sign_ins, 0.95) * 1000:.0f} ms"
        " (a PBKDF2 check of 1,000,000 iterations each)"
    )
    for run in runs:
        what = "the season, signing included" if run.signing else "without the signing"
        print(f"\n== gunicorn {run.setting}, {what}: {run.total.count} requests in {run.seconds:.0f} s ==")
        print(f"  {'request':<34}{'count':>7}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'fail':>6}")
        for row in sorted(run.rows, key=lambda r: -r.count):
            print(
                f"  {row.name[:33]:<34}{row.count:7d}{row.rps:8.1f}{row.p50:8.0f}{row.p95:8.0f}"
                f"{row.p99:8.0f}{row.failures:6d}"
            )
        for t in (run.work, run.total):
            print(
                f"  {t.name:<34}{t.count:7d}{t.rps:8.1f}{t.p50:8.0f}{t.p95:8.0f}{t.p99:8.0f}{t.failures:6d}"
            )
        print(f"  statuses: {run.statuses}")
        for failure in run.failures[:10]:
            print(f"  failure: {failure}")
    print("\nworker model (same users, one run each; latencies of all requests but the sign-ins):")
    matrix = [run for run in runs if not run.signing] or runs
    print(
        f"  {'gunicorn':<14}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'cell save p95':>15}"
        f"{'web CPU/req':>13}{'DB CPU/req':>12}{'req/s/core':>12}{'errors':>8}"
    )
    for run in matrix:
        save = next((r for r in run.rows if r.name == "cell save"), None)
        per = run.web_cpu / run.total.count * 1000 if run.total.count else 0
        db = run.db_cpu / run.total.count * 1000 if run.total.count else 0
        print(
            f"  {run.setting:<14}{run.total.rps:8.1f}{run.work.p50:8.0f}{run.work.p95:8.0f}"
            f"{run.work.p99:8.0f}{(save.p95 if save else 0):15.0f}"
            f"{per:11.1f}ms{db:10.1f}ms{1000 / (per + db) if per + db else 0:12.0f}"
            f"{run.total.failures + run.statuses.get('5xx', 0):8d}"
        )
    print(
        "  req/s: every request over the run's window; web CPU/req: gunicorn's processes' CPU (/proc) over"
        " the requests; DB CPU/req: the database's backends' (the workers' too, idle in these runs);"
        " req/s/core: one core's worth of both, what a core gives whatever else runs"
    )
    print("\nwork behind the pages:")
    for run in runs:
        save = next((r for r in run.rows if r.name == "cell save"), None)
        if save:
            print(f"  cell saves ({run.setting}): {save.count} in the run, {save.rps:.1f}/s")
    for key, label in (
        ("principal", "records signed by principals (first confirmation to last batch's end)"),
        ("seal", "records sealed, XML and PDF (first confirmation to last batch's end)"),
        ("pdf", "PDFs rendered and sealed (first to last rendered_at)"),
        ("forwarded", "records forwarded (first queued to last sent)"),
    ):
        if key in work:
            count, seconds = work[key]
            print(f"  {label}: {count} in {seconds:.1f} s, {count / seconds if seconds else 0:.1f}/s")
    print(f"  queues drained {drained:.0f} s after the last run")
    print(
        f"  database: {total / 1e6:.0f} MB for {args.schools} schools "
        f"({total / args.schools / 1e6:.1f} MB a school with "
        f"the public schema shared); one school's schema {float(school_bytes) / 1e6:.1f} MB, "
        f"{float(school_bytes) / (province.students / args.schools) / 1e3:.0f} kB a student"
    )
    print("\ndata check:")
    for check in checks:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    errors = sum(r.total.failures + r.statuses.get("5xx", 0) + len(r.failures) for r in runs)
    print(
        f"  {'PASS' if not errors else 'FAIL'}  errors = {errors} (failed requests, 5xx, locust's failures"
        " and exceptions in the users' tasks, over all runs)"
    )


if __name__ == "__main__":
    sys.exit(main())
