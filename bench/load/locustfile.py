"""The season's users for locust (bench/load/run.py starts it; see bench/README.md, "Load").

Reads the province bench/load/run.py built from $HOCBA_LOAD_PLAN (JSON). Imports nothing of Django:
the users know the portal only by its URLs, forms and answers, as a browser does.

- SubjectTeacher: signs in through the login form, opens a grade book (one class, Toán, one term),
  then saves cells one by one as static/js/gradebook.js does (POST to the table's data-save-url
  with enrolment, field, value, expected, term, period; the X-CSRFToken header from the csrftoken
  cookie), reopening the book now and then. Each cell a user saves belongs to it alone (one
  identity per class and term), and each value the server answered 200 for is written to
  $HOCBA_LOAD_OUT/saves-<pid>.jsonl for the data check.
- HomeroomTeacher: signs in with two factors, opens the homeroom page of the class, saves
  absences and comments the same way.
- SigningOffice (one per school with a class ready): the principal signs in with two factors,
  starts a batch over the class at the principal's step, confirms it with the key file's PIN and a
  fresh TOTP code, polls the batch's progress JSON every 2 s until finished; then the school's
  clerk seals the class the same way (PIN). Then both only look at the signing page.
- Officer: a division or department officer (two factors) polls a dashboard every few seconds.
- Visitor: the public verification page.

$HOCBA_LOAD_SIGN=0: the signing offices only look at the signing page (the worker-model runs).
$HOCBA_LOAD_MAX_REQUESTS: the run stops after that many requests (the run time is locust's -t).
At the end, counts by status class go to $HOCBA_LOAD_OUT/status-<pid>.json and every request's
(name, end time, milliseconds, status) to timings-<pid>.json: run.py computes exact percentiles
from them (locust's own are rounded to two significant digits).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import struct
import threading
import time
from collections import Counter
from pathlib import Path

from locust import HttpUser, between, constant, events, task
from locust.clients import HttpSession
from locust.exception import StopUser

PLAN = json.loads(Path(os.environ["HOCBA_LOAD_PLAN"]).read_text()) if "HOCBA_LOAD_PLAN" in os.environ else {}
OUT = Path(os.environ.get("HOCBA_LOAD_OUT", "."))
SIGNING = os.environ.get("HOCBA_LOAD_SIGN", "1") == "1"
MAX_REQUESTS = int(os.environ.get("HOCBA_LOAD_MAX_REQUESTS", "0") or 0)
PASSWORD = PLAN.get("password", "")
PIN = PLAN.get("pin", "")
SCORES = [f"{n / 2:.1f}".replace(".", ",") for n in range(8, 21)]  # 4,0 … 10,0

_lock = threading.Lock()
_statuses: Counter[str] = Counter()
_timings: list[tuple[str, float, float, int]] = []  # (name, ended at, ms, status) of every request
_requests = itertools.count(1)
_saves_file = None


def _saved(line: dict) -> None:
    global _saves_file
    with _lock:
        if _saves_file is None:
            _saves_file = (OUT / f"saves-{os.getpid()}.jsonl").open("a", encoding="utf-8")
        _saves_file.write(json.dumps(line) + "\n")
        _saves_file.flush()


@events.request.add_listener
def _count(request_type, name, response_time, response_length, response=None, exception=None, **kw):
    status = getattr(response, "status_code", 0) or 0
    with _lock:
        _statuses[f"{status // 100}xx" if status else "no answer"] += 1
        _timings.append((name, time.time(), response_time, status))
    if MAX_REQUESTS and next(_requests) == MAX_REQUESTS:
        runner = kw.get("context", {}).get("runner") or _environment.get("env")
        if runner is not None:
            threading.Thread(target=runner.runner.quit, daemon=True).start()


_environment: dict = {}


@events.init.add_listener
def _keep(environment, **_kw):
    _environment["env"] = environment


@events.test_stop.add_listener
def _write_statuses(**_kw):
    with _lock:
        (OUT / f"status-{os.getpid()}.json").write_text(json.dumps(dict(_statuses)))
        (OUT / f"timings-{os.getpid()}.json").write_text(json.dumps(_timings))
        _timings.clear()
        _statuses.clear()
        if _saves_file is not None:
            _saves_file.flush()


# --- Identities: each user takes the next one of its kind --------------------------------------

_pools: dict[str, itertools.cycle] = {}


def _next(kind: str) -> dict:
    with _lock:
        if kind not in _pools:
            _pools[kind] = itertools.cycle(PLAN.get(kind) or [{}])
        return next(_pools[kind])


def totp_code(secret: str, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 6 digits, 30 s), as the authenticator app shows it."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int((at or time.time()) // 30)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


# The 30-s window of the code each account last used (run.py's sign-ins included).
_used_steps: dict[str, int] = dict(PLAN.get("totp_used", {}))


def fresh_totp(username: str) -> str:
    """A code of a 30-s window not used yet by this account (allauth refuses a code twice)."""
    while True:
        step = int(time.time() // 30)
        with _lock:
            if _used_steps.get(username, -1) < step:
                _used_steps[username] = step
                return totp_code(PLAN["totp"][username])
        time.sleep(max(0.2, 30 - time.time() % 30 + 0.2))


def _csrf_from(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    return found.group(1) if found else ""


def sign_in(client, base: str, username: str, label: str) -> None:
    """The session run.py opened for this account before the run (the morning's sign-in, measured
    apart), or else the login form (allauth), then the code page when the account has two factors."""
    session = PLAN.get("sessions", {}).get(username)
    if session:
        host = client.base_url.split("://", 1)[1].split(":", 1)[0].split("/", 1)[0]
        for name, value in session.items():
            client.cookies.set(name, value, domain=host, path="/")  # as the server's own (host-only)
        return
    page = client.get("/accounts/login/", name="sign-in: login page")
    answer = client.post(
        "/accounts/login/",
        data={"login": username, "password": PASSWORD, "csrfmiddlewaretoken": _csrf_from(page.text)},
        headers={"Referer": f"{base}/accounts/login/"},
        name="sign-in: password",
    )
    for _attempt in range(3):  # a code that arrives after its window: the next one, as a person would
        if "/accounts/2fa/authenticate/" not in answer.url:
            break
        answer = client.post(
            "/accounts/2fa/authenticate/",
            data={"code": fresh_totp(username), "csrfmiddlewaretoken": _csrf_from(answer.text)},
            headers={"Referer": f"{base}/accounts/2fa/authenticate/"},
            name="sign-in: two-factor code",
        )
    if "sessionid" not in client.cookies:
        raise StopUser(f"{label} {username}: sign-in failed")


def csrf_cookie(client) -> str:
    """The csrftoken cookie's value, as the page's script reads document.cookie (the last set)."""
    values = [cookie.value for cookie in client.cookies if cookie.name == "csrftoken"]
    return values[-1] if values else ""


_ROW = re.compile(r'<tr data-enrolment="(\d+)">(.*?)</tr>', re.S)
_INPUT = re.compile(r'<input name="[^"]*" data-field="([^"]+)" value="([^"]*)"')


def cells_of(html: str) -> dict[tuple[int, str], str]:
    """(enrolment, field) → the value the page shows (what the script sends as `expected`)."""
    import html as html_lib

    cells = {}
    for enrolment, row in _ROW.findall(html):
        for field, value in _INPUT.findall(row):
            cells[(int(enrolment), field)] = html_lib.unescape(value)
    return cells


def close_connections(user) -> None:
    """`Connection: close` on every request, as a reverse proxy that does not keep connections to
    gunicorn sends them (nginx's default). Kept-alive connections would race gthread's keep-alive
    timeout (2 s): a POST sent as the server closes the idle connection gets no answer, and the
    client library does not resend a POST (a browser does, on a reused connection)."""
    user.client.headers["Connection"] = "close"


class _Saver(HttpUser):
    abstract = True
    username = ""

    def _save(self, url: str, data: dict, name: str, record: dict) -> None:
        with self.client.post(
            url,
            data=data,
            headers={
                "X-CSRFToken": csrf_cookie(self.client),
                "Accept": "application/json",
                "Referer": self.host + url,
            },
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            value = response.json().get("value")
            self.cells[(data["enrolment"], data["field"])] = value if value is not None else data["value"]
            _saved(
                {
                    **record,
                    "enrolment": data["enrolment"],
                    "field": data["field"],
                    "value": value,
                    "at": time.time(),
                }
            )


class SubjectTeacher(_Saver):
    """Fills a grade book cell by cell; a teacher types, so a second or two between cells."""

    weight = 12
    wait_time = between(0.5, 2.0)

    def on_start(self):
        close_connections(self)
        self.me = _next("books")
        if not self.me:
            raise StopUser("no grade book in the plan")
        sign_in(self.client, self.host, self.me["teacher"], "subject teacher")
        self.cells: dict = {}
        self.saves = 0
        self.open_book()

    def open_book(self):
        page = self.client.get(self.me["page"], name="grade book page")
        self.cells = {k: v for k, v in cells_of(page.text).items() if k[1] in self.me["fields"]}

    @task
    def save_cell(self):
        if self.saves and self.saves % 40 == 0:
            self.open_book()  # the teacher comes back to the book later
        if not self.cells:
            return
        (enrolment, field), expected = random.choice(list(self.cells.items()))
        value = random.choice([s for s in SCORES if s != expected])
        self.saves += 1
        self._save(
            self.me["save"],
            {
                "enrolment": enrolment,
                "field": field,
                "value": value,
                "expected": expected,
                "term": str(self.me["term"]),
                "period": "",
            },
            "cell save",
            {
                "kind": "score",
                "school": self.me["school"],
                "subject": self.me["subject"],
                "term": self.me["term"],
            },
        )


class HomeroomTeacher(_Saver):
    """The homeroom page: absences and comments, one cell at a time."""

    weight = 3
    wait_time = between(1.0, 3.0)

    def on_start(self):
        close_connections(self)
        self.me = _next("homerooms")
        if not self.me:
            raise StopUser("no homeroom class in the plan")
        sign_in(self.client, self.host, self.me["teacher"], "homeroom teacher")
        self.cells: dict = {}
        self.saves = 0
        self.open_page()

    def open_page(self):
        page = self.client.get(self.me["page"], name="homeroom page")
        self.cells = {
            k: v for k, v in cells_of(page.text).items() if k[1] in ("absences", "homeroom_comment")
        }

    @task
    def save_cell(self):
        if self.saves and self.saves % 30 == 0:
            self.open_page()
        if not self.cells:
            return
        (enrolment, field), expected = random.choice(list(self.cells.items()))
        if field == "absences":
            value = str(random.choice([n for n in range(0, 12) if str(n) != expected]))
        else:
            value = f"Chăm ngoan, tiến bộ (lần {self.saves + 1})"
        self.saves += 1
        self._save(
            self.me["save"],
            {"enrolment": enrolment, "field": field, "value": value, "expected": expected, "period": ""},
            "homeroom save",
            {"kind": "homeroom", "school": self.me["school"]},
        )


class SigningOffice(HttpUser):
    """A school's principal signs its ready class, then its clerk seals it (one per such school)."""

    fixed_count = len(PLAN.get("offices") or [])
    wait_time = constant(5)

    def on_start(self):
        close_connections(self)
        self.me = _next("offices")
        if not self.me:
            raise StopUser("no school with a class to sign in the plan")
        self.done = not SIGNING
        sign_in(self.client, self.host, self.me["principal"], "principal")
        self.clerk = HttpSession(self.host, self.environment.events.request, self)
        self.clerk.headers["Connection"] = "close"
        sign_in(self.clerk, self.host, self.me["clerk"], "clerk")

    def _batch(self, client, step: str, certificate: int, username: str, totp: bool) -> bool:
        base = self.me["signing"]
        page = client.get(base, name="signing page")
        answer = client.post(
            base + "bat-dau/",
            data={
                "step": step,
                "class_id": self.me["class_id"],
                "certificate": certificate,
                "csrfmiddlewaretoken": _csrf_from(page.text),
            },
            headers={"Referer": self.host + base},
            name=f"batch start ({step})",
        )
        found = re.search(r"/ky-so/(\d+)/$", answer.url)
        if not found:
            return False
        batch = f"{base}{found.group(1)}/"
        page_text = answer.text
        for _attempt in range(3):  # a code that arrives after its window: the next one, as a person would
            data = {"pin": PIN, "csrfmiddlewaretoken": _csrf_from(page_text)}
            if totp:
                data["totp"] = fresh_totp(username)
            confirmed = client.post(
                batch + "xac-nhan/", data=data, headers={"Referer": self.host + batch}, name="batch confirm"
            )
            page_text = confirmed.text
            state = client.get(batch + "tien-do/", name="batch progress (poll)").json().get("state")
            if state != "awaiting":
                break
        deadline = time.time() + 600
        while time.time() < deadline:
            with client.get(
                batch + "tien-do/", name="batch progress (poll)", catch_response=True
            ) as response:
                progress = response.json() if response.status_code == 200 else {}
                if progress.get("failed"):
                    response.failure(f"batch items failed: {progress.get('failures')}")
            if progress.get("finished"):
                return True
            time.sleep(2)
        return False

    @task
    def sign(self):
        if self.done:
            self.client.get(self.me["signing"], name="signing page")
            return
        self.done = True
        if self._batch(
            self.client, "principal", self.me["principal_certificate"], self.me["principal"], True
        ):
            self._batch(self.clerk, "seal", self.me["seal_certificate"], self.me["clerk"], False)


class Officer(HttpUser):
    """A division or department officer keeps a dashboard open; it is reloaded every few seconds."""

    weight = 2
    wait_time = between(3.0, 6.0)

    def on_start(self):
        close_connections(self)
        self.me = _next("officers")
        if not self.me:
            raise StopUser("no officer in the plan")
        sign_in(self.client, self.host, self.me["username"], "officer")

    @task
    def dashboard(self):
        self.client.get(self.me["page"], name=self.me["label"])


class Visitor(HttpUser):
    """A parent or an employer opens the public verification page."""

    weight = 1
    wait_time = between(2.0, 5.0)

    def on_start(self):
        close_connections(self)

    @task
    def verify(self):
        self.client.get("/tra-cuu/", name="verification page (public)")
