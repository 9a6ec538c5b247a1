"""Committed signing data for the tests that run other processes (a Celery worker, a server).

Signed records can never be deleted (by design), so these tests work in a school of their own,
`t-sign-worker`, which no other test looks at; each run adds a class with a fresh tag.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

from django.db import connection

from portal.choices import Role, SchoolLevel
from portal.models import RoleAssignment, School, User
from portal.provisioning import SchoolSpec, school_provision
from tests.conftest import PASSWORD, student_make
from tests.transcripts.test_document import secondary_record
from transcripts.document import year_record_xml
from transcripts.models import YearRecord, YearRecordStatus

SCHOOL_CODE = "t-sign-worker"
SCHOOL_NAME = "Trường THCS Thử Ký Số"
TEACHER_NAME = "Phan Chủ Nhiệm Ký"


def signing_school() -> School:
    connection.set_schema_to_public()
    school = School.objects.filter(code=SCHOOL_CODE).first()
    if school is None:
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(code=SCHOOL_CODE, name=SCHOOL_NAME, levels=(SchoolLevel.LOWER_SECONDARY,)),
            division=None,
        )
    return school


def homeroom_teacher_for(school: School, tag: str) -> User:
    """A homeroom teacher of the school for this run (password tests.conftest.PASSWORD)."""
    teacher = User.objects.create_user(
        username=f"t-sign-gvcn-{tag}",
        password=PASSWORD,
        full_name=TEACHER_NAME,
        email=f"gvcn-{tag}@test.local",
    )
    RoleAssignment.objects.create(user=teacher, role=Role.HOMEROOM_TEACHER, school=school)
    return teacher


def confirmed_class(school: School, teacher: User, *, tag: str, size: int):
    """A class of `size` students with year records confirmed by `teacher` (ready to sign)."""
    from schools.models import SchoolYear
    from schools.services import class_create, school_year_open, student_enrol

    with school:
        year = SchoolYear.objects.filter(code="2025-2026").first() or school_year_open(
            code="2025-2026",
            starts_on=dt.date(2025, 9, 5),
            ends_on=dt.date(2026, 5, 31),
            levels=list(school.levels),
        )
        school_class = class_create(
            school_year=year, name=f"8K-{tag}", grade=8, levels=school.levels, homeroom_teacher=teacher
        )
        sample = secondary_record()
        for n in range(1, size + 1):
            code = f"K{tag}{n:02d}"
            student = student_make(code, f"Học Sinh {n:02d}", 1 + n % 2, sample.student.date_of_birth)
            enrolment = student_enrol(
                student=student, school_class=school_class, enrolled_on=year.starts_on, number=n
            )
            document = dataclasses.replace(
                sample, record_id=f"{SCHOOL_CODE}.{code}.2025-2026", version=1, supersedes=None
            )
            xml = year_record_xml(document)
            YearRecord.objects.create(
                enrolment=enrolment,
                record_id=document.record_id,
                version=1,
                status=YearRecordStatus.CONFIRMED,
                xml=xml,
                sha256=hashlib.sha256(xml).hexdigest(),
                created_by=teacher,
            )
    connection.set_schema_to_public()
    return school_class


def worker_signing_env(csc, settings, tmp_path, *, queue: str, **extra: str) -> dict[str, str]:
    """Point this process and a worker started with the returned environment at the reference
    remote-signing service: its root trusted beside the session's, its CRL read, its URL and
    secret, and a signing queue of the test's own. `extra` adds environment variables."""
    from pathlib import Path

    from cryptography.hazmat.primitives.serialization import Encoding

    from signing import trust

    roots = tmp_path / "roots.pem"
    pems = [Path(f).read_bytes() for f in settings.HOCBA_TRUST_ROOTS]
    roots.write_bytes(b"".join(pems) + csc.root_cert().public_bytes(Encoding.PEM))
    crl_url = f"{csc.url}/ca/crl.der"
    env = {
        "HOCBA_TRUST_ROOTS": str(roots),
        "HOCBA_TRUST_CRLS": ",".join([*settings.HOCBA_TRUST_CRLS, crl_url]),
        "HOCBA_CSC_URL": csc.url,
        "HOCBA_CSC_CLIENT_SECRET": csc.client_secret,
        "HOCBA_SIGNING_QUEUE": queue,
        **extra,
    }
    settings.HOCBA_TRUST_ROOTS = [str(roots)]
    settings.HOCBA_TRUST_CRLS = [*settings.HOCBA_TRUST_CRLS, crl_url]
    settings.HOCBA_CSC_URL, settings.HOCBA_CSC_CLIENT_SECRET = csc.url, csc.client_secret
    settings.HOCBA_SIGNING_QUEUE = queue
    trust.trust_reset()
    return env
