"""A real Celery worker for the tests: a subprocess on the test database and Redis, on a queue of its
own (so it never takes another run's tasks), started and stopped (or killed) by the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """The test database as a URL (as tests/e2e/conftest.py gives it to the server process)."""
    db = connection.settings_dict
    host = db["HOST"]
    query = f"?host={host}" if host.startswith("/") else ""
    netloc = "" if host.startswith("/") else f"{host}:{db['PORT'] or 5432}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgresql://{db['USER']}{password}@{netloc}/{db['NAME']}{query}"


class Worker:
    """`celery -A config worker` (solo pool) consuming `queue`, logging to `log`."""

    def __init__(self, *, queue: str, log: Path, env: dict[str, str] | None = None):
        self.queue, self.log = queue, log
        self.env = dict(
            os.environ,
            DATABASE_URL=database_url(),
            REDIS_URL=settings.REDIS_URL,
            CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
            HOCBA_CACHE_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
            HOCBA_TESTING="1",
            DJANGO_DEBUG="0",
            PYTHONUNBUFFERED="1",
        )
        self.env.update(env or {})  # the caller's values win (a broker of its own, say)
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "config", "worker",
                    "-Q", self.queue, "--pool=solo", "-c", "1",
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "-l", "INFO", "-n", f"{self.queue}@%h",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes all of it
            )  # fmt: skip
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no warm shutdown, no acknowledgement."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM); killed if it does not stop in 15 s."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
