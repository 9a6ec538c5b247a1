"""What the benchmarks share: a throwaway database on the server of DATABASE_URL, and timing.

The database named in DATABASE_URL is never opened: each run creates `hocba_bench_<pid>` on the
same server, points Django at it, and drops it at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config.env import database_from_url  # noqa: E402 - needs ROOT on sys.path; imports no settings


def admin_connect(url: str):
    """A psycopg connection to the server's maintenance database (never the one in the URL)."""
    import psycopg

    db = database_from_url(url)
    params = {
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
        **db["OPTIONS"],
    }
    params = {k: v for k, v in params.items() if v is not None}
    last_error: Exception | None = None
    for maintenance in ("postgres", "template1"):
        try:
            return psycopg.connect(dbname=maintenance, autocommit=True, **params)
        except psycopg.OperationalError as exc:
            last_error = exc
    raise SystemExit(f"Cannot connect to the PostgreSQL server of DATABASE_URL: {last_error}")


def url_with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def database_create(url: str, name: str) -> str:
    """Create the bench database; return the server version."""
    with admin_connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        conn.execute(f'CREATE DATABASE "{name}"')
    return version


def database_drop(url: str, name: str) -> None:
    assert name.startswith("hocba_bench_"), name
    with admin_connect(url) as conn:
        if conn.info.server_version >= 130000:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def cache_keys_delete(redis_url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def _django_on(database_url: str, redis_url: str, prefix: str, *, shared_only: bool) -> None:
    """Django set up on `database_url`, its schemas migrated (only public with `shared_only`)."""
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        HOCBA_CACHE_PREFIX=prefix,
        DJANGO_SETTINGS_MODULE="config.settings",
        HOCBA_TESTING="1",
        # A developer's environment must not change the figures.
        DJANGO_DEBUG="0",
    )
    os.environ.pop("EXECUTOR", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", shared=shared_only, interactive=False, verbosity=0)


@contextlib.contextmanager
def throwaway_django() -> Iterator[str]:
    """Django set up on a fresh database of its own (public and template schemas migrated).

    Yields the server's version. Everything is dropped on exit.
    """
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/hocba")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    name = f"hocba_bench_{os.getpid()}"
    prefix = f"hocba-bench-{os.getpid()}"
    version = database_create(url, name)
    try:
        _django_on(url_with_database(url, name), redis_url, prefix, shared_only=False)
        yield version
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        database_drop(url, name)
        with contextlib.suppress(Exception):
            cache_keys_delete(redis_url, prefix)


@contextlib.contextmanager
def bench_django(
    name: str,
    *,
    fresh: bool,
    stale: Callable[[str], bool] | None = None,
    shared_only: bool = False,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> Iterator[str]:
    """Django set up on a bench's own database `name` (created when missing, kept after), its
    schemas migrated (only public with `shared_only`); yields the server's version. `fresh`: drop
    it first; `stale(url)`: whether the database holds another data set than the bench's (then it
    is dropped and made again: it is the bench's own). The bench's cache keys are cleared before
    and after."""
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/hocba")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"hocba-bench-{name}"
    with admin_connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not fresh and stale is not None and stale(url_with_database(url, name)):
            say(f"database {name} holds another data set (or none): making it again")
            fresh = True
        if exists and fresh:
            say(f"dropping database {name}")
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            say(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')
    # Cached routes and access from an earlier data set must not answer for this one.
    cache_keys_delete(redis_url, prefix)
    _django_on(url_with_database(url, name), redis_url, prefix, shared_only=shared_only)
    try:
        yield version
    finally:
        from django.db import connections

        connections.close_all()
        cache_keys_delete(redis_url, prefix)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary_ms(values: list[float]) -> str:
    return (
        f"median {statistics.median(values) * 1000:6.1f} ms   p95 {percentile(values, 0.95) * 1000:6.1f} ms"
    )


# --- The production stack on loopback (gunicorn, DEBUG off) and the people who sign in to it ------

# Without the admin's, the API docs' and the PDF fonts' files, which the measured pages do not use:
# collectstatic in seconds instead of 2 minutes (brotli at its highest level over 46 MB).
COLLECT_IGNORE = ["-i", "admin", "-i", "rest_framework", "-i", "drf_spectacular_sidecar", "-i", "fonts"]
BENCH_PASSWORD = "bench-only-password-2026"  # noqa: S105 - a throwaway database's accounts


def production_env(static_root: Path) -> dict[str, str]:
    """The environment of a production process on plain HTTP over loopback: DEBUG off, a secret
    key and a deployment key of its own, no HTTPS redirect and no secure-only cookies, static
    files collected into `static_root`, the revision measured first on the path."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if k not in ("HOCBA_TESTING", "DJANGO_DEBUG")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-" + Fernet.generate_key().decode(),
        HOCBA_DEPLOYMENT_KEY=Fernet.generate_key().decode(),
        DJANGO_SECURE_COOKIES="0",
        DJANGO_SECURE_SSL_REDIRECT="0",
        HOCBA_STATIC_ROOT=str(static_root),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


def collectstatic(env: dict[str, str]) -> None:
    """`manage.py collectstatic` as a release runs it (hashed names, .gz/.br), in `env`."""
    import subprocess

    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0", *COLLECT_IGNORE],
        cwd=ROOT,
        env=env,
        check=True,
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process, log: Path, timeout: float = 90.0) -> None:
    """Until something listens on 127.0.0.1:`port`; SystemExit with the log if `process` exits."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise SystemExit(f"the server did not listen within {timeout:.0f} s")


def sign_in(
    base_url: str, username: str, *, totp_secret: str | None = None, then: str = "/"
) -> dict[str, str]:
    """Sign in through the login form (and the TOTP step when the account has one); GET `then`
    (which sets the CSRF cookie a page's script reads); the cookies a browser would then hold."""
    import re
    import time

    import httpx

    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=120) as client:
        form = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        if token is None:
            raise SystemExit(f"no CSRF token on the login page ({form.status_code})")
        answer = client.post(
            "/accounts/login/",
            data={"login": username, "password": BENCH_PASSWORD, "csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": f"{base_url}/accounts/login/"},
        )
        if answer.status_code == 302 and "/accounts/2fa/authenticate/" in answer.headers.get("location", ""):
            if totp_secret is None:
                raise SystemExit(f"{username} is asked for a second factor and has no TOTP secret here")
            from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

            page = client.get("/accounts/2fa/authenticate/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            code = format_hotp_value(hotp_value(totp_secret, int(time.time()) // 30))
            answer = client.post(
                "/accounts/2fa/authenticate/",
                data={"code": code, "csrfmiddlewaretoken": token.group(1) if token else ""},
                headers={"Referer": f"{base_url}/accounts/2fa/authenticate/"},
            )
        if answer.status_code != 302 or "sessionid" not in client.cookies:
            raise SystemExit(f"sign-in of {username} failed: {answer.status_code} {answer.text[:500]}")
        page = client.get(then)
        if page.status_code != 200:
            raise SystemExit(f"{username}: {then} answered {page.status_code} after signing in")
        return dict(client.cookies.items())


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (/proc/<pid>/stat; gone ones count 0)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def children(parent: int) -> list[int]:
    """The processes whose parent is `parent` (a gunicorn master's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in KiB (/proc: status's VmRSS, smaps_rollup's Pss; 0 if gone).
    PSS shares the pages forked workers hold in common among them: the memory they really add."""
    rss = pss = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


@dataclass
class SeededSchool:
    """A lower-secondary school seeded with the demo's year, and who works in it."""

    code: str
    class_id: int  # the subject teacher's Toán class
    homeroom_class_id: int  # the homeroom teacher's class
    teacher: str  # the subject teacher's username
    homeroom: str  # the homeroom teacher's username
    totp: dict[str, str] = field(default_factory=dict)  # username -> TOTP secret (if asked for one)


def schools_seeded(
    count: int, *, students_per_class: int | None = None, prefix: str = "bench"
) -> list[SeededSchool]:
    """`count` schools provisioned and seeded with the demo (transcripts.demo), a subject and a
    homeroom teacher each, their passwords hashed as a server (not the test settings) checks them
    and a TOTP authenticator for whoever must log in with one. Call it in throwaway_django()."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.db import connection

    from portal.choices import Role, SchoolLevel
    from portal.models import RoleAssignment, User
    from portal.permissions import requires_two_factor
    from portal.provisioning import SchoolSpec, school_provision
    from schools.models import SchoolClass, TeachingAssignment
    from transcripts.demo import school_demo_seed

    hasher = PBKDF2PasswordHasher()
    password = hasher.encode(BENCH_PASSWORD, hasher.salt())
    seeded = []
    for i in range(count):
        code = f"{prefix}-thcs-{i + 1}"
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(
                code=code, name=f"Trường THCS {prefix} {i + 1}", levels=(SchoolLevel.LOWER_SECONDARY,)
            ),
            division=None,
        )
        teacher = User.objects.create(username=f"{code}.gvbm", full_name="Giáo Viên Toán", password=password)
        homeroom = User.objects.create(
            username=f"{code}.gvcn", full_name="Giáo Viên Chủ Nhiệm", password=password
        )
        for user, role in ((teacher, Role.SUBJECT_TEACHER), (homeroom, Role.HOMEROOM_TEACHER)):
            RoleAssignment.objects.create(user=user, role=role, school=school)
        with school:
            school_demo_seed(
                school, {"thcs.gvbm": teacher, "thcs.gvcn": homeroom}, students_per_class=students_per_class
            )
            taught = (
                TeachingAssignment.objects.filter(teacher=teacher, subject__code="toan")
                .order_by("school_class__name")
                .values_list("school_class_id", flat=True)
                .first()
            )
            homeroom_class = (
                SchoolClass.objects.filter(homeroom_teacher=homeroom).values_list("pk", flat=True).first()
            )
        connection.set_schema_to_public()  # type: ignore[attr-defined] # django-tenants' backend
        if taught is None or homeroom_class is None:
            raise SystemExit("the demo gave the teachers no Toán class or no homeroom class")
        totp = {}
        for user in (teacher, homeroom):
            if requires_two_factor(user):
                secret = generate_totp_secret()
                TOTP.activate(user, secret)
                totp[user.username] = secret
        seeded.append(
            SeededSchool(
                code=code,
                class_id=taught,
                homeroom_class_id=homeroom_class,
                teacher=teacher.username,
                homeroom=homeroom.username,
                totp=totp,
            )
        )
    return seeded
