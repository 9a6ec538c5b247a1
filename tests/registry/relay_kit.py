"""Helpers of the relay's fault tests (tests/registry/test_relay_faults.py).

- `seal_documents`: genuinely sealed year records of a class of its own in the test school (its
  students' codes are used by no other test), made once, the database rolled back; the bytes and
  the PEMs of the CA that issued the signers' certificates are kept.
- `outbox_write`: fresh outbox rows for them, through the public service (`outbox_issued`).
- `repository_for`: a fresh reference repository (a real process) trusting that CA, the test
  school registered.
- `point_at`, `relay_until_done`, `held_once`: the relay pointed at it, run until every message
  is final, and the repository's side counted.
- `RedisServer`: a private, throwaway redis-server (the machine's one is shared: never restarted).
- `outbox_purge`: committed outbox rows removed (a trigger refuses DELETE; lifted for that one
  transaction, as the database's owner could).
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding
from django.db import connection, transaction

from registry import ministry
from registry.choices import OutboxState
from registry.forwarding import relay_run
from registry.models import OutboxMessage
from registry.services import outbox_issued
from tests.reference.ministry_service import MinistryService

FINAL = {OutboxState.ACKNOWLEDGED, OutboxState.REJECTED, OutboxState.VOID, OutboxState.DEAD}
CLASS_NAME = "8F"  # a class only these tests make (and roll back)
STUDENT_PREFIX = "RF"


@dataclass(frozen=True)
class Document:
    """Version 1 of one issued record, as the relay forwards it."""

    record_id: str
    version: int
    personal_id: str
    student_code: str
    xml: bytes


@dataclass(frozen=True)
class Documents:
    school_code: str
    records: list[Document]
    roots_pem: Path
    intermediates_pem: Path

    @property
    def record_ids(self) -> set[str]:
        return {d.record_id for d in self.records}


def _seal_class(school, homeroom_teacher, principal, count: int) -> list:
    """A grade 8 class of `count` students, its year closed, every record issued."""
    from schools.models import Enrolment, SchoolYear
    from schools.services import class_create, student_enrol
    from tests.conftest import student_make
    from tests.signing_kit import issue
    from tests.transcripts.test_homeroom import fill_secondary
    from transcripts.models import StudentYear
    from transcripts.records.services import year_records_create
    from transcripts.yearclose import class_year_close

    connection.set_tenant(school)
    year = SchoolYear.objects.get(code="2025-2026")
    school_class = class_create(
        school_year=year, name=CLASS_NAME, grade=8, levels=school.levels, homeroom_teacher=homeroom_teacher
    )
    for number in range(1, count + 1):
        student = student_make(
            f"{STUDENT_PREFIX}{number:03d}",
            f"Học Sinh Chuyển Tiếp {number}",
            1 + number % 2,
            dt.date(2012, 5, 1 + number % 28),
        )
        student_enrol(student=student, school_class=school_class, enrolled_on=year.starts_on, number=number)
    fill_secondary(school_class, "7.0")
    for enrolment in Enrolment.objects.filter(school_class=school_class):
        StudentYear.objects.create(
            enrolment=enrolment, conduct_term1="K", conduct_term2="K", conduct_year="K"
        )
    class_year_close(actor=principal, school=school, school_class=school_class)
    created = year_records_create(actor=homeroom_teacher, school=school, school_class=school_class).created
    records = sorted(created, key=lambda r: r.enrolment.number)
    return [issue(r, homeroom_teacher=homeroom_teacher, principal=principal, school=school) for r in records]


def seal_documents(django_db_blocker, signing_trust, folder: Path, count: int) -> Documents:
    """`count` records issued (signed and sealed with the session's test CA), their bytes kept, the
    database rolled back (the outbox rows the issue wrote go with it)."""
    from portal.models import School, User
    from tests.conftest import SCHOOLS
    from transcripts.records.services import year_record_document

    with django_db_blocker.unblock():
        try:
            with transaction.atomic():
                school = School.objects.get(code=SCHOOLS["school"][0])
                homeroom_teacher = User.objects.get(username="homeroom_teacher")
                principal = User.objects.get(username="principal")
                issued = _seal_class(school, homeroom_teacher, principal, count)
                documents = [
                    Document(
                        record_id=r.record_id,
                        version=r.version,
                        personal_id=r.enrolment.student.personal_id,
                        student_code=r.enrolment.student.student_code,
                        xml=year_record_document(r),
                    )
                    for r in issued
                ]
                transaction.set_rollback(True)
        finally:
            connection.set_schema_to_public()
    roots, intermediates = folder / "roots.pem", folder / "issuing.pem"
    roots.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in signing_trust.ca.roots))
    intermediates.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in signing_trust.ca.chain))
    return Documents(school.code, documents, roots, intermediates)


def outbox_write(school, documents: list[Document]) -> list[OutboxMessage]:
    """A submit in the outbox for each document, as issuing writes it."""
    connection.set_schema_to_public()
    return [
        outbox_issued(
            school=school,
            record_id=d.record_id,
            version=d.version,
            replaces_version=None,
            document=d.xml,
            personal_id=d.personal_id,
            student_code=d.student_code,
        )
        for d in documents
    ]


def repository_for(documents: Documents) -> MinistryService:
    """A fresh repository (its own data): it trusts the test CA and knows the test school."""
    service = MinistryService(trust_roots=[documents.roots_pem], untrusted=[documents.intermediates_pem])
    try:
        service.schools_add(documents.school_code)
    except BaseException:
        service.stop()
        raise
    return service


def ministry_env(repository: MinistryService) -> dict[str, str]:
    """The HOCBA_MINISTRY_* settings of a worker process pointed at `repository`."""
    return {
        "HOCBA_MINISTRY_URL": repository.url + "/",
        "HOCBA_MINISTRY_TOKEN": repository.token,
        "HOCBA_MINISTRY_CA": str(repository.ca_path),
        "HOCBA_MINISTRY_CLIENT_CERT": str(repository.client_cert_path),
        "HOCBA_MINISTRY_CLIENT_KEY": str(repository.client_key_path),
    }


def point_at(repository: MinistryService, settings) -> None:
    """This process's relay pointed at `repository`; retries come back quickly (the tests count,
    they do not wait) and nothing becomes a dead letter under the faults."""
    for name, value in ministry_env(repository).items():
        setattr(settings, name, value)
    settings.HOCBA_FORWARD_BACKOFF_BASE = 0.2
    settings.HOCBA_FORWARD_BACKOFF_CAP = 1
    settings.HOCBA_FORWARD_MAX_ATTEMPTS = 1000
    ministry.http_client_reset()


def relay_until_done(record_ids: set[str], timeout: float = 90) -> dict[str, int]:
    """Run the relay (in this process) until every message of `record_ids` is final; the
    outcomes counted over the runs."""
    connection.set_schema_to_public()
    totals: Counter[str] = Counter()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        totals.update(relay_run(worker="test-relay", seconds=10).as_dict())
        if not unfinished(record_ids):
            return dict(totals)
        time.sleep(0.2)
    raise AssertionError(f"The relay did not finish in {timeout} s: {states(record_ids)}")


def unfinished(record_ids: set[str]) -> int:
    return OutboxMessage.objects.filter(record_id__in=record_ids).exclude(state__in=FINAL).count()


def states(record_ids: set[str]) -> Counter[str]:
    return Counter(OutboxMessage.objects.filter(record_id__in=record_ids).values_list("state", flat=True))


def held_once(repository: MinistryService, documents: Documents) -> dict:
    """The repository's side: each (kind, record, version) held exactly once and accepted exactly
    once, nothing else held; ours: every message acknowledged. The repository's state returned."""
    state = repository.state()
    held = Counter((m["kind"], m["record_id"], m["version"]) for m in state["messages"])
    expected = {("submit", d.record_id, d.version) for d in documents.records}
    assert set(held) == expected, f"held {sorted(set(held) ^ expected)[:5]}… differently"
    assert set(held.values()) == {1}, [k for k, n in held.items() if n != 1]
    assert {(m["status"], m["accepted_count"]) for m in state["messages"]} == {("accepted", 1)}, [
        (m["record_id"], m["status"], m["accepted_count"]) for m in state["messages"]
    ]
    assert state["totals"]["stored"] == len(documents.records), state["totals"]
    assert states(documents.record_ids) == Counter({OutboxState.ACKNOWLEDGED: len(documents.records)})
    return state


def outbox_purge(record_ids: set[str]) -> int:
    """Delete committed outbox rows of `record_ids` (the append-only trigger off for this
    transaction only). How many."""
    connection.set_schema_to_public()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        deleted, _ = OutboxMessage.objects.filter(record_id__in=record_ids).delete()
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    return deleted


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """`redis-server` on a free port, nothing persisted: a restart loses every key (the broker's
    queues and unacknowledged tasks, the cache), as a crashed Redis without persistence would."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is not installed")
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    server, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", str(self.folder),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except OSError:
                pass
            except Exception as error:  # redis.ConnectionError and kin, until it listens
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited ({self.process.returncode})") from error
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 10 s")

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def run_id(self) -> str:
        return self.client().info("server")["run_id"]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()
