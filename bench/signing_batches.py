"""bench/signing.py, part (3): a 40-student class end to end through the signing services, in a
throwaway database. Run `make bench-signing`; see bench/signing.py.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.signing_rates import HOMEROOM, PIN, STUDENTS, progress

# --- The class end to end --------------------------------------------------------------------------


@dataclass
class BatchRun:
    backend: str
    school_class: str
    records: int
    start: float
    confirm: float
    run: float
    signing: float  # of confirm + run, the time inside sign_year_records (the key operation included)
    statements: int  # SQL statements of confirm + run
    search_path: int  # of which django-tenants' SET search_path
    done: int
    failed: int
    reasons: list[str]

    @property
    def timed(self) -> float:
        return self.confirm + self.run


@contextlib.contextmanager
def patched(module, name: str, value) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def seed_schools(count: int, users: dict) -> list[tuple[object, list[object]]]:
    """`count` lower secondary schools, each with its two demo classes of STUDENTS, the year
    approved and the records created and confirmed: [(school, [class, class])]."""
    from portal.choices import Role, SchoolLevel
    from portal.models import RoleAssignment
    from portal.permissions import forget_access
    from portal.provisioning import SchoolSpec, school_provision
    from schools.models import SchoolClass
    from transcripts.demo import school_demo_seed
    from transcripts.models import StudentYear, YearRecord, YearRecordStatus
    from transcripts.records.services import year_record_confirm, year_records_create
    from transcripts.selectors import student_year_retakes
    from transcripts.yearclose import class_summer_close, class_year_close, summer_cell_save

    teacher, principal = users["thcs.gvcn"], users["thcs.hieutruong"]
    seeded = []
    for i in range(1, count + 1):
        progress(f"school {i}/{count}: provisioning and seeding ...")
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(
                code=f"bench-ky-{i}", name=f"Trường THCS Bench {i}", levels=(SchoolLevel.LOWER_SECONDARY,)
            ),
            division=None,
        )
        for username, role in (
            ("thcs.gvcn", Role.HOMEROOM_TEACHER),
            ("thcs.gvbm", Role.SUBJECT_TEACHER),
            ("thcs.hieutruong", Role.PRINCIPAL),
        ):
            RoleAssignment.objects.create(user=users[username], role=role, school=school)
            forget_access(users[username])  # roles are cached on the user object
        school_demo_seed(school, users, students_per_class=STUDENTS)
        with school:
            # The demo gives its homeroom teacher the first class; here they take the second too.
            SchoolClass.objects.filter(homeroom_teacher__isnull=True).update(homeroom_teacher=teacher)
            classes = list(SchoolClass.objects.order_by("pk"))
            for school_class in classes:
                progress(f"school {i}/{count}: {school_class.name}: year close, records, confirmation ...")
                class_year_close(actor=principal, school=school, school_class=school_class)
                outcome = year_records_create(actor=principal, school=school, school_class=school_class)
                if outcome.waiting:  # August, as bench/render.py does it: every re-assessment passes
                    school_class = SchoolClass.objects.get(pk=school_class.pk)
                    for year in StudentYear.objects.filter(enrolment__school_class=school_class):
                        cells = [
                            (
                                f"retake:{code}",
                                "Đ" if year.results["subjects"][code]["year"] in ("Đ", "CĐ") else "6",
                            )
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
                for record in YearRecord.objects.filter(
                    enrolment__school_class=school_class, status=YearRecordStatus.DATA_COMPLETE
                ):
                    year_record_confirm(actor=teacher, school=school, record=record)
            classes = list(SchoolClass.objects.order_by("pk"))
        seeded.append((school, classes))
    return seeded


def batch_run(
    *, backend: str, school, school_class, certificate, teacher, service, credential_id
) -> BatchRun:
    """One batch of the class's confirmed records at the homeroom teacher's step, timed."""
    from django.db import connection

    from signing import keys, services, trust
    from signing.models import ItemState
    from signing.services import runner
    from signing.verify import all_valid, verify_year_record
    from transcripts.models import YearRecord, YearRecordSignature, YearRecordStatus

    connection.set_tenant(school)
    records = YearRecord.objects.filter(
        enrolment__school_class=school_class, status=YearRecordStatus.CONFIRMED
    ).count()
    keys._cache.clear()  # each batch unlocks its key once, as a worker's first batch does
    started = time.perf_counter()
    batch = services.signing_batch_start(
        actor=teacher, school=school, step=HOMEROOM, certificate=certificate, school_class=school_class
    )
    start = time.perf_counter() - started
    otp = service.otp_for(credential_id) if credential_id else ""  # the signer reads their phone

    signing = [0.0]
    statements = {"all": 0, "search_path": 0}

    def timed_sign(*args, **kwargs):
        begun = time.perf_counter()
        try:
            return sign_year_records(*args, **kwargs)
        finally:
            signing[0] += time.perf_counter() - begun

    def count(execute, sql, params, many, context):
        statements["all"] += 1
        statements["search_path"] += sql.startswith("SET search_path")
        return execute(sql, params, many, context)

    sign_year_records = runner.sign_year_records  # the runner signs a chunk of records at once
    with patched(runner, "sign_year_records", timed_sign), connection.execute_wrapper(count):
        started = time.perf_counter()
        services.signing_batch_confirm(
            actor=teacher, school=school, batch=batch, pin="" if otp else PIN, otp=otp
        )
        confirm = time.perf_counter() - started
        connection.set_schema_to_public()
        started = time.perf_counter()
        outcome = services.signing_batch_run(batch_pk=batch.pk, worker="bench-signing")
        run = time.perf_counter() - started
    items = list(batch.items.values_list("state", "reason"))
    done = sum(1 for state, _ in items if state == ItemState.DONE)
    reasons = sorted({reason for state, reason in items if state != ItemState.DONE})
    if outcome != "done":
        reasons.append(f"batch outcome: {outcome}")
    with school:  # one signed record of the batch, checked as the verification page does
        first = YearRecordSignature.objects.filter(
            record__enrolment__school_class=school_class, position=1
        ).first()
        reports = (
            verify_year_record(bytes(first.signed_xml), trust_roots=trust.trust_roots(), crls=trust.crls())
            if first is not None
            else []
        )
    if not all_valid(reports, expected=1):
        reasons.append(f"a signed record does not verify: {[r.problems for r in reports]}")
    return BatchRun(
        backend=backend,
        school_class=f"{school.code}/{school_class.name}",
        records=records,
        start=start,
        confirm=confirm,
        run=run,
        signing=signing[0],
        statements=statements["all"],
        search_path=statements["search_path"],
        done=done,
        failed=len(items) - done,
        reasons=reasons[:3],
    )
