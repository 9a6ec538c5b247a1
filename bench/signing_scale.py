"""Signing at a province's scale (issue 13): records per second of whole signing batches, beside
the raw key rate measured in the same run.

    make bench-signing-scale                                  # 80 ms per remote call, TSA on loopback
    make bench-signing-scale ARGS="--tsa-delay-ms 80"         # a TSA as far away as the signer
    make bench-signing ARGS=--scale                           # the same, through bench/signing.py
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/signing_scale.py [--delay-ms 80]
        [--tsa-delay-ms 0] [--tsa-parallel N] [--small 40] [--large 1000] [--runs 3] [--chunk N]
        [--quick] [--profile]

In a throwaway database (bench/support.py): a lower secondary school, a homeroom teacher with a
PKCS#12 RSA-2048 key file (the development CA) and an RSA-2048 credential at the reference CSC
service (`python -m reference.csc serve --delay-ms 80`: a real process over HTTP; the delay is added
to every signHash call), and classes of confirmed year records (the THCS sample record, one per
student, made in bulk as tests/signing/world.py makes them one by one). Each batch is the homeroom
teacher's step over one class: `signing_batch_start` → `signing_batch_confirm` (the PIN, or the OTP
read from the service's log) → `signing_batch_run` in this process (the Celery enqueue replaced by a
no-op; the key cache emptied before the run, since a worker is another process and unlocks the key
itself), chunked as configured (HOCBA_SIGNING_CHUNK). Four configurations: PKCS#12 and CSC, each
without and with a TSA (the reference TSA, `python -m reference.tsa serve [--delay-ms]`: every
signature timestamped, XAdES-T). For each: --runs batches of --small records (a class) and one of
--large (a school's worth). Timed: confirm + run (the signer's wait after typing the code) and run
alone; "records/s" is records ÷ run. One untimed batch of 5 each way first (a worker that has run
before is warm). Inside the run, the time in sign_year_records (XML, the key, the TSA), of which in
the TSA, and the SQL statements are counted; the rest is the database work and checks. One signed
record of every batch is verified (signing.verify, untimed).

Raw rates, same run: PKCS#12 `key.sign` of a SHA-256 digest; the CSC service's signHash with one
digest per call, and with --small digests per call.

Targets: a --small (40) record class through the 80 ms service in under 2 s (confirm + run);
local-key batches at least 150 records/s on one worker (run). PASS/FAIL printed for each row.

A batch of 1,000 through the CSC service: the portal's approval covers the records plus a spare
(signing.services.batches), more than the reference service's 1,000 signatures a SAD; the bench
then approves exactly the batch's count itself (one authorize call, as signing_batch_confirm
makes it) and stores it on the batch as signing_batch_confirm does, and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.signing_batches import patched
from bench.signing_rates import PIN, loadavg, progress
from bench.support import throwaway_django

HOMEROOM = "homeroom_teacher"
TARGET_CLASS_SECONDS = 2.0  # a 40-record class through the 80 ms service, confirm + run
TARGET_LOCAL_RATE = 150.0  # records/s, local key, one worker
SAD_MAX = 1000  # reference.csc MULTISIGN


@dataclass
class Run:
    config: str
    records: int
    confirm: float
    run: float
    signing: float  # inside sign_year_records (XML + key + TSA)
    stamping: float  # of which in Timestamper.stamp_many
    unlock: float  # in keys.loaded_key during the run (PKCS#12: the file's PBKDF2; CSC: credentials/info)
    statements: int
    signhash: int  # signHash calls the service logged for the batch
    other_calls: int  # other CSC calls (authorize, credentials/info)
    done: int
    failed: int
    note: str = ""
    reasons: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.records / self.run

    @property
    def warm_rate(self) -> float:
        """Without the key's unlock: a worker's later batch with the same key and secret."""
        return self.records / (self.run - self.unlock)


def _count(log: str, path: str) -> int:
    return log.count(f"POST {path} ")


def raw_rates(*, loaded_p12, csc_client, credential_id, service, small: int) -> dict[str, float]:
    """Raw key rates: PKCS#12 key.sign of a digest; signHash with one digest and with `small`."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    digest = b"\x11" * 32
    key = loaded_p12.key
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < 1.0:
        key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        n += 1
    p12 = n / (time.perf_counter() - started)
    calls = 10
    csc_client.send_otp(credential_id)
    sad = csc_client.authorize(
        credential_id, num_signatures=calls * (1 + small), otp=service.otp_for(credential_id)
    )
    started = time.perf_counter()
    for _ in range(calls):
        csc_client.sign_hashes(credential_id, sad, [digest], algorithm="rsa")
    one = calls / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(calls):
        csc_client.sign_hashes(credential_id, sad, [digest] * small, algorithm="rsa")
    many = calls * small / (time.perf_counter() - started)
    return {
        "PKCS#12 RSA-2048 key.sign": p12,
        "CSC signHash, 1 hash a call": one,
        f"CSC signHash, {small} hashes a call": many,
    }


profiles: list[str] = []


def seed_class(school, teacher, *, tag: str, size: int):
    """A class of `size` students with year records confirmed (ready for the homeroom teacher's
    signature): tests/signing/world.py's confirmed_class in bulk, students with temporary codes
    (the record is the THCS sample; the student rows only hold the class together)."""
    import dataclasses
    import datetime as dt
    import hashlib

    from django.db import connection

    from schools.models import Enrolment, SchoolYear, Student
    from schools.services import class_create, school_year_open
    from tests.signing.world import SCHOOL_CODE
    from tests.transcripts.test_document import secondary_record
    from transcripts.document import year_record_xml
    from transcripts.models import YearRecord, YearRecordStatus

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
        codes = [f"K{tag}{n:04d}" for n in range(1, size + 1)]
        students = Student.objects.bulk_create(
            Student(
                student_code=code,
                personal_id=None,
                temporary_code=f"TAM-{code}",
                full_name=f"Học Sinh {n:04d}",
                sex=1 + n % 2,
                date_of_birth=sample.student.date_of_birth,
            )
            for n, code in enumerate(codes, start=1)
        )
        enrolments = Enrolment.objects.bulk_create(
            Enrolment(student=student, school_class=school_class, enrolled_on=year.starts_on, number=n)
            for n, student in enumerate(students, start=1)
        )
        records = []
        for code, enrolment in zip(codes, enrolments, strict=True):
            document = dataclasses.replace(
                sample, record_id=f"{SCHOOL_CODE}.{code}.2025-2026", version=1, supersedes=None
            )
            xml = year_record_xml(document)
            records.append(
                YearRecord(
                    enrolment=enrolment,
                    record_id=document.record_id,
                    version=1,
                    status=YearRecordStatus.CONFIRMED,
                    xml=xml,
                    sha256=hashlib.sha256(xml).hexdigest(),
                    created_by=teacher,
                )
            )
        YearRecord.objects.bulk_create(records)
    connection.set_schema_to_public()
    return school_class


def batch_run(
    *, config: str, school, school_class, certificate, teacher, service, credential_id, profile: bool = False
) -> Run:
    from django.db import connection

    from signing import services, timestamps, trust
    from signing.models import BatchState, ItemState, SigningBatch
    from signing.services import runner
    from signing.verify import verify_year_record
    from transcripts.models import YearRecord, YearRecordSignature, YearRecordStatus

    connection.set_tenant(school)
    records = YearRecord.objects.filter(
        enrolment__school_class=school_class, status=YearRecordStatus.CONFIRMED
    ).count()
    from signing import keys

    keys._cache.clear()  # every batch unlocks its key once, as a worker's first batch does
    batch = services.signing_batch_start(
        actor=teacher, school=school, step=HOMEROOM, certificate=certificate, school_class=school_class
    )
    otp = service.otp_for(credential_id) if credential_id else ""
    log_before = service.log() if credential_id else ""
    signing, stamping, statements = [0.0], [0.0], [0]

    real_sign = runner.sign_year_records
    real_stamp = timestamps.Timestamper.stamp_many
    real_load = keys.loaded_key
    unlock = [0.0]

    def timed_load(*args, **kwargs):
        begun = time.perf_counter()
        try:
            return real_load(*args, **kwargs)
        finally:
            unlock[0] += time.perf_counter() - begun

    def timed_sign(*args, **kwargs):
        begun = time.perf_counter()
        try:
            return real_sign(*args, **kwargs)
        finally:
            signing[0] += time.perf_counter() - begun

    def timed_stamp(self, items):
        begun = time.perf_counter()
        try:
            return real_stamp(self, items)
        finally:
            stamping[0] += time.perf_counter() - begun

    def count(execute, sql, params, many, context):
        statements[0] += 1
        return execute(sql, params, many, context)

    note = ""
    with (
        patched(runner, "sign_year_records", timed_sign),
        patched(timestamps.Timestamper, "stamp_many", timed_stamp),
        patched(keys, "loaded_key", timed_load),
        connection.execute_wrapper(count),
    ):
        started = time.perf_counter()
        spare = max(2, int(records * 0.05), min(records, runner.chunk_size()))
        if credential_id and records + spare > SAD_MAX:
            # More than one approval of the reference service covers with the portal's spare:
            # approve exactly the batch, as signing_batch_confirm would, and store it likewise.
            from django.utils import timezone

            sad = keys.csc_client().authorize(credential_id, num_signatures=records, otp=otp)
            SigningBatch.objects.filter(pk=batch.pk).update(
                secret=trust.seal_secret(sad.token),
                secret_expires_at=sad.expires_at,
                state=BatchState.QUEUED,
                confirmed_at=timezone.now(),
            )
            note = f"approved for {records} (no spare) by the bench: {records}+{spare} > {SAD_MAX} a SAD"
        else:
            services.signing_batch_confirm(
                actor=teacher, school=school, batch=batch, pin="" if otp else PIN, otp=otp
            )
        confirm = time.perf_counter() - started
        connection.set_schema_to_public()
        keys._cache.clear()  # a worker is another process: it unlocks the key (PBKDF2, or info)
        unlock[0] = 0.0  # the confirmation's own unlock is not the run's
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        outcome = services.signing_batch_run(batch_pk=batch.pk, worker="bench-signing-scale")
        run = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
            profiles.append(
                f"--- {config}, {records} records: cProfile of signing_batch_run ---\n{out.getvalue()}"
            )
    signhash = other = 0
    if credential_id:
        client = keys.csc_client()
        client.info()  # logged after the batch's calls on the same kept-alive connection
        deadline = time.monotonic() + 5
        while _count(service.log(), "/csc/v2/info") <= _count(log_before, "/csc/v2/info"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        log = service.log()
        signhash = _count(log, "/csc/v2/signatures/signHash") - _count(
            log_before, "/csc/v2/signatures/signHash"
        )
        other = sum(
            _count(log, f"/csc/v2/{m}") - _count(log_before, f"/csc/v2/{m}")
            for m in ("credentials/authorize", "credentials/info")
        )
    items = list(batch.items.values_list("state", "reason"))
    done = sum(1 for state, _ in items if state == ItemState.DONE)
    reasons = sorted({reason for state, reason in items if state != ItemState.DONE})
    if outcome != "done":
        reasons.append(f"batch outcome: {outcome}")
    with school:
        first = YearRecordSignature.objects.filter(record__enrolment__school_class=school_class).first()
        reports = (
            verify_year_record(
                bytes(first.signed_xml),
                trust_roots=trust.trust_roots(),
                crls=trust.crls(),
                tsa_roots=trust.tsa_roots(),
            )
            if first is not None
            else []
        )
        if first is None or [r.problems for r in reports] != [()]:
            reasons.append(f"a signed record does not verify: {[r.problems for r in reports]}")
        elif "TSA" in config and b"SignatureTimeStamp" not in bytes(first.signed_xml):
            reasons.append("no SignatureTimeStamp in a signature made with the TSA")
    connection.set_schema_to_public()
    return Run(
        config=config,
        records=records,
        confirm=confirm,
        run=run,
        signing=signing[0],
        stamping=stamping[0],
        unlock=unlock[0],
        statements=statements[0],
        signhash=signhash,
        other_calls=other,
        done=done,
        failed=len(items) - done,
        note=note,
        reasons=reasons[:3],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=int, default=80, help="added to every signHash (default 80)")
    parser.add_argument("--tsa-delay-ms", type=int, default=0, help="added to every timestamp (default 0)")
    parser.add_argument(
        "--tsa-parallel",
        type=int,
        help="timestamp requests in flight (HOCBA_TSA_PARALLEL, default the setting's)",
    )
    parser.add_argument("--small", type=int, default=40, help="records of a class batch (default 40)")
    parser.add_argument("--large", type=int, default=1000, help="records of a large batch (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="class batches per configuration (default 3)")
    parser.add_argument("--chunk", type=int, help="HOCBA_SIGNING_CHUNK (default: the setting's)")
    parser.add_argument("--quick", action="store_true", help="one class batch, a large batch of 200")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the large batches' runs (printed at the end)"
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.large = 1, min(args.large, 200)

    from tests.reference.service import CscService
    from tests.reference.tsa import TsaService

    problems: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="hocba-bench-scale-") as tmp,
        throwaway_django() as server_version,
    ):
        workdir = Path(tmp)
        from cryptography.hazmat.primitives.serialization import Encoding
        from django.conf import settings
        from django.db import connection

        from signing import ca, timestamps, trust
        from signing.backends.csc import CscClient
        from signing.backends.pkcs12 import pkcs12_load
        from signing.services import certificate_register_csc, certificate_register_pkcs12, runner
        from tests.signing.world import homeroom_teacher_for, signing_school

        if args.chunk:
            settings.HOCBA_SIGNING_CHUNK = args.chunk
        if args.tsa_parallel:  # the setting the Timestamper is made with (timestamper_reset below)
            settings.HOCBA_TSA_PARALLEL = args.tsa_parallel
        progress(f"starting the reference CSC service (--delay-ms {args.delay_ms}) and TSA ...")
        service = CscService(workdir / "csc", delay_ms=args.delay_ms)
        tsa = TsaService(workdir / "tsa", delay_ms=args.tsa_delay_ms)
        stack = contextlib.ExitStack()
        stack.callback(service.stop)
        stack.callback(tsa.stop)
        with stack:
            dev = ca.dev_ca("Học bạ số (benchmark)")
            roots_file, dev_crl = workdir / "roots.pem", workdir / "dev-crl.pem"
            roots_file.write_bytes(
                dev.root_cert.public_bytes(Encoding.PEM) + service.root_cert().public_bytes(Encoding.PEM)
            )
            dev_crl.write_bytes(ca.issue_crl(dev).public_bytes(Encoding.PEM))
            settings.HOCBA_TRUST_ROOTS = [str(roots_file)]
            settings.HOCBA_TRUST_CRLS = [str(dev_crl), f"{service.url}/ca/crl.der", tsa.crl_url]
            settings.HOCBA_TSA_TRUST_ROOTS = [str(tsa.roots_file)]
            settings.HOCBA_CSC_URL, settings.HOCBA_CSC_CLIENT_SECRET = service.url, service.client_secret
            settings.HOCBA_TSA_URL = ""
            trust.trust_reset()
            timestamps.timestamper_reset()

            from portal.models import Department

            Department.objects.create(code="BENCH", name="Sở Giáo dục và Đào tạo Bench", place_name="Lào Cai")
            school = signing_school()
            tag = uuid.uuid4().hex[:6]
            teacher = homeroom_teacher_for(school, tag)
            credential_id, _cert = service.enrol(
                teacher.username, teacher.full_name, "Giáo viên chủ nhiệm", algorithm="rsa"
            )
            csc_certificate = certificate_register_csc(actor=teacher, credential_id=credential_id)
            p12 = ca.pkcs12_export(
                ca.issue_person(
                    dev, common_name=teacher.full_name, title="Giáo viên chủ nhiệm", algorithm="rsa"
                ),
                PIN,
            )
            p12_certificate = certificate_register_pkcs12(actor=teacher, user=teacher, data=p12, pin=PIN)

            configs = [
                ("PKCS#12", False, p12_certificate, ""),
                ("CSC", False, csc_certificate, credential_id),
                ("PKCS#12 + TSA", True, p12_certificate, ""),
                ("CSC + TSA", True, csc_certificate, credential_id),
            ]
            sizes = [args.small] * args.runs + [args.large]
            seed_started = time.perf_counter()
            classes = {}
            for name, _tsa, _cert, _cred in configs:
                for i, size in enumerate(sizes):
                    progress(f"seeding {name}: class {i + 1}/{len(sizes)} of {size} records ...")
                    classes[(name, i)] = seed_class(
                        school, teacher, tag=f"{tag}{len(classes):02d}", size=size
                    )
            seed_seconds = time.perf_counter() - seed_started

            progress("raw key rates ...")
            loaded_p12 = pkcs12_load(p12, PIN)
            with CscClient(service.url, service.client_secret) as client:
                raws = raw_rates(
                    loaded_p12=loaded_p12,
                    csc_client=client,
                    credential_id=credential_id,
                    service=service,
                    small=args.small,
                )

            load_before = loadavg()
            runs: list[Run] = []
            queued: list[int] = []
            with patched(runner, "signing_batch_enqueue", lambda pk, countdown=None: queued.append(pk)):
                # Untimed: one small batch each way first, as a worker that has run before is warm
                # (imports, the trust store and CRLs read, the HTTP pools open).
                for name, certificate, cred in (
                    ("PKCS#12", p12_certificate, ""),
                    ("CSC", csc_certificate, credential_id),
                ):
                    progress(f"warm-up batch {name} ...")
                    batch_run(
                        config=f"warm-up {name}",
                        school=school,
                        school_class=seed_class(school, teacher, tag=f"{tag}w{name[:3]}", size=5),
                        certificate=certificate,
                        teacher=teacher,
                        service=service,
                        credential_id=cred,
                    )
                for name, with_tsa, certificate, cred in configs:
                    settings.HOCBA_TSA_URL = tsa.url if with_tsa else ""
                    timestamps.timestamper_reset()
                    for i, size in enumerate(sizes):
                        progress(f"batch {name}: {size} records ...")
                        done = batch_run(
                            config=name,
                            school=school,
                            school_class=classes[(name, i)],
                            certificate=certificate,
                            teacher=teacher,
                            service=service,
                            credential_id=cred,
                            profile=args.profile and size == args.large,
                        )
                        runs.append(done)
                        if done.failed or done.done != done.records or done.reasons:
                            problems.append(f"{name} {size}: {done.reasons}")
            load_after = loadavg()
            connection.set_schema_to_public()

        from importlib.metadata import version

        print(
            f"Signing at scale · {platform.node()} · {os.cpu_count()} cores · PostgreSQL {server_version}"
            f" · Python {platform.python_version()} · cryptography {version('cryptography')}"
            f" · lxml {version('lxml')} · httpx {version('httpx')}"
        )
        print(f"load average (1, 5, 15 min): {load_before} before the batches, {load_after} after")
        in_flight = settings.HOCBA_TSA_PARALLEL or timestamps.PARALLEL
        print(
            f"CSC: reference service, --delay-ms {args.delay_ms} on every signHash (RSA-2048);"
            f" TSA: reference, --delay-ms {args.tsa_delay_ms}, {in_flight} requests in flight;"
            f" chunk {runner.chunk_size()} records"
            f" (HOCBA_SIGNING_CHUNK); CSC hashes a call: up to the service's {SAD_MAX}"
        )
        seeded = sum(sizes) * len(configs)
        print(f"setup, untimed: {seeded:,} confirmed records seeded in {seed_seconds:.0f} s\n")
        print("Raw key rates, same run:")
        for label, value in raws.items():
            print(f"  {label:<34}{value:9.1f} signatures/s  ({1000 / value:.2f} ms)")
        print()
        print(
            "Batches (homeroom teacher's step, one class each; confirm = PIN check or one authorize call;"
            " run = signing_batch_run):"
        )
        print(
            f"  {'configuration':<15}{'records':>8}{'confirm s':>10}{'run s':>8}{'unlock s':>9}"
            f"{'conf+run s':>11}"
            f"{'records/s':>10}{'ms/rec':>8}{'sign ms/rec':>12}{'TSA ms/rec':>11}{'other ms/rec':>13}"
            f"{'SQL/rec':>8}{'signHash':>9}{'other calls':>12}  failed"
        )
        for r in runs:
            per = 1000 / r.records
            print(
                f"  {r.config:<15}{r.records:>8}{r.confirm:10.3f}{r.run:8.2f}{r.unlock:9.3f}"
                f"{r.confirm + r.run:11.2f}"
                f"{r.rate:10.1f}{r.run * per:8.2f}{(r.signing - r.stamping) * per:12.2f}"
                f"{r.stamping * per:11.2f}{(r.run - r.signing) * per:13.2f}{r.statements / r.records:8.1f}"
                f"{r.signhash:>9}{r.other_calls:>12}  {r.failed}{'  * ' + r.note if r.note else ''}"
            )
        print(
            "  unlock: the run's keys.loaded_key (a worker's first batch with a key and secret; later ones"
            " hit its cache); sign ms/rec: inside sign_year_records without the TSA (XML + the key: for"
            " CSC the signHash round trip); TSA ms/rec: Timestamper.stamp_many; other: the run's database"
            " work and checks (locks, certificate check, roles, signature rows, status, events, audit,"
            " items, recount)"
        )
        print()
        print("Targets:")
        for name in ("CSC", "CSC + TSA"):
            mine = [r for r in runs if r.config == name and r.records == args.small]
            if not mine:
                continue
            timed = statistics.median(r.confirm + r.run for r in mine)
            extra = statistics.median(r.other_calls for r in mine) * args.delay_ms / 1000
            verdict = "PASS" if timed < TARGET_CLASS_SECONDS else "FAIL"
            verdict_all = "PASS" if timed + extra < TARGET_CLASS_SECONDS else "FAIL"
            print(
                f"  {args.small}-record class via the {args.delay_ms} ms service, {name}: {timed:.2f} s"
                f" confirm + run (median of {len(mine)}) < {TARGET_CLASS_SECONDS:.0f} s: {verdict};"
                f" with the delay on its other calls too (+{extra:.2f} s): {timed + extra:.2f} s"
                f" {verdict_all}"
            )
        for name in ("PKCS#12", "PKCS#12 + TSA"):
            for size in (args.small, args.large):
                mine = [r for r in runs if r.config == name and r.records == size]
                if not mine:
                    continue
                rate = statistics.median(r.rate for r in mine)
                warm = statistics.median(r.warm_rate for r in mine)
                verdict = "PASS" if rate >= TARGET_LOCAL_RATE else "FAIL"
                verdict_warm = "PASS" if warm >= TARGET_LOCAL_RATE else "FAIL"
                print(
                    f"  local key, {name}, batch of {size}: {rate:.1f} records/s (run, median of {len(mine)})"
                    f" >= {TARGET_LOCAL_RATE:.0f}: {verdict}; with the key already unlocked in the worker:"
                    f" {warm:.1f} {verdict_warm}"
                )
        for name in ("CSC", "CSC + TSA"):
            mine = [r for r in runs if r.config == name and r.records == args.large]
            for r in mine:
                print(
                    f"  (no target) {name}, batch of {r.records}: {r.rate:.1f} records/s, run {r.run:.2f} s"
                )
        print(f"  (Celery enqueues skipped: {len(queued)})")
        for text in profiles:
            print(text)
        for problem in problems:
            print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
