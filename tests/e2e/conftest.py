"""A real server and a real browser for end-to-end tests.

The server is a separate `manage.py runserver` process on the test database: it sees what the
session fixtures committed (the test province) and what the browser does is committed too, so
each e2e test works in a class of its own. Chromium is Debian's (/usr/bin/chromium), driven by
Playwright; it is installed by scripts/sysdeps.sh.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def e2e_signing_queue() -> str:
    """The Celery queue the server sends signing jobs to (a worker of the test consumes it)."""
    return f"e2e-signing-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def live_url(django_db_setup, django_db_blocker, signing_trust, e2e_signing_queue):
    db = connection.settings_dict
    host = db["HOST"]
    query = f"?host={host}" if host.startswith("/") else ""
    netloc = "" if host.startswith("/") else f"{host}:{db['PORT'] or 5432}"
    env = dict(
        os.environ,
        DATABASE_URL=f"postgresql://{db['USER']}@{netloc}/{db['NAME']}{query}",
        REDIS_URL=settings.REDIS_URL,
        HOCBA_CACHE_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
        DJANGO_DEBUG="1",  # runserver serves the static files
        HOCBA_TESTING="1",
        PYTHONUNBUFFERED="1",
        # Signing: the session's test CA as the trust store, and a queue of this session.
        HOCBA_TRUST_ROOTS=",".join(settings.HOCBA_TRUST_ROOTS),
        HOCBA_TRUST_CRLS=",".join(settings.HOCBA_TRUST_CRLS),
        HOCBA_SIGNING_QUEUE=e2e_signing_queue,
    )
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(server.stdout.read().decode()) from None
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


@pytest.fixture(scope="session")
def browser(playwright_driver):
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make sysdeps` (as root) or install it"
    instance = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield instance
    instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def wait_until(page, expression: str, *, timeout: float = 30_000) -> None:
    """page.wait_for_function for pages under the Content-Security-Policy: Playwright's polling
    turns a string into a function in the page (eval), which script-src 'self' refuses; this polls
    with page.evaluate (the DevTools protocol, outside the page's CSP)."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true within {timeout / 1000:.0f} s: {expression}")
        page.wait_for_timeout(100)
