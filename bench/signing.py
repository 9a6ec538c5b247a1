"""Signing throughput: XAdES signatures per second per key backend, against the raw key rate.

    make bench-signing                   # full run (about 1½ minutes on 2 cores)
    make bench-signing ARGS=--quick      # a short run (fewer iterations, one batch per backend)
    make bench-signing ARGS=--scale      # batches of 40 and 1,000 at scale: bench/signing_scale.py
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/signing.py [--quick] [--runs N] [--batches R]

One process, one core for the signing (the reference CSC service runs in a process of its own
and takes the other core while it signs). Every key is loaded once, outside the timed loops.

(1) XAdES signatures per second: `signing.profile.sign_year_record` of the grade 8 (THCS, TT22)
    sample record of tests/transcripts/test_document.py (`secondary_record()`), every signature
    appended as step 1 (homeroom_teacher) to the same unsigned record, so every iteration does
    the same work. Backends: PKCS#12 RSA-2048 and ECDSA P-256 (cryptography keys from
    `pkcs12_load`), PKCS#11 SoftHSM2 RSA-2048 and EC P-256 (tokens in a temp dir, provisioned by
    `signing.softhsm`, loaded by `pkcs11_load`), and the reference CSC service over HTTP (RSA
    and EC credentials, one SAD covering all of the row's signatures, keep-alive client).
(2) Next to each, the raw signing rate of the same key in the same run, "the physical limit":
    cryptography's `key.sign` of a SHA-256 digest (PKCS#12), `Pkcs11Key.sign_digest` (PKCS#11),
    one signHash call per digest through `CscClient.sign_hashes` (CSC); the ratio raw ÷ XAdES and
    PASS when it is at most 3 (the target: the XAdES path within 3× of the key). Each figure is
    the median of --runs runs (default 7, 5 with --quick) of about 0.6 s (0.15 s with --quick).
    Each round runs XAdES, then raw, then an instrumented XAdES pass that splits the time of a
    signature into: parse + XSD validation of the record, exclusive C14N, SHA-256 digests, the
    key operation, the final Canonical XML serialisation, and the rest (building the signature
    elements: template, parse, Ids, base64); its figures are the mean over all rounds.
    Each backend's first signature is verified (signing.verify) before anything is timed.
(3) A 40-student class end to end through the services, in a throwaway database (bench/support.py):
    lower secondary schools seeded with the demo data (40 students a class), each class's year
    approved and its records created and confirmed through the services (transcripts.yearclose,
    transcripts.records.services); then `signing_batch_start` → `signing_batch_confirm` (the OTP
    read from the service's log; the PIN for PKCS#12) → `signing_batch_run` in this process,
    for the class's homeroom teacher with a CSC RSA-2048 credential and with a PKCS#12
    RSA-2048 key file. Timed: confirm + run (start and the OTP are the signer's side), with the
    time spent inside sign_year_records and the SQL statements counted. Each batch signs a class
    of its own (--batches per backend, default 5, 1 with --quick; the backends alternate between
    the two grades); the key cache of signing.keys is emptied before each confirm, so every batch
    unlocks its key once, as a worker does for its first batch. The Celery enqueue is replaced by
    a no-op (the run happens here), so nothing reaches the broker. One signed record of each batch
    is verified afterwards (signing.verify, untimed).

Printed: the machine and its load, the tables, and a summary line. Progress goes to stderr, the
figures to stdout. Exit status 1 if a signature does not verify or a batch item failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.signing_batches import BatchRun, batch_run, patched, seed_schools
from bench.signing_rates import (
    HOMEROOM,
    PART_LABELS,
    PARTS,
    PIN,
    RSA_TARGET_RATIO,
    STUDENTS,
    TARGET_RATIO,
    Row,
    key_rows,
    loadavg,
    measure_row,
    progress,
    softhsm_version,
)
from bench.support import throwaway_django

# --- Report --------------------------------------------------------------------------------------

E2E_CSC, E2E_PKCS12 = "CSC RSA-2048", "PKCS#12 RSA-2048"
E2E_PEERS = {E2E_CSC: "CSC over HTTP RSA-2048", E2E_PKCS12: "PKCS#12 RSA-2048"}  # their row in (1)


def versions() -> str:
    from importlib.metadata import version

    return " · ".join(
        f"{name} {version(name)}" for name in ("cryptography", "signxml", "lxml", "python-pkcs11")
    )


def print_rates(rows: list[Row]) -> None:
    print("(1) and (2): signatures per second, keys loaded once; raw = the key alone on a SHA-256 digest")
    print(
        f"  {'backend':<27}{'XAdES/s':>8}{'ms':>7}{'raw/s':>8}{'ms':>7}{'raw÷XAdES':>10}"
        f"  target (RSA ≤{RSA_TARGET_RATIO:.0f}×, EC ≤{TARGET_RATIO:.0f}×)  {'n XAdES, raw':>13}  verified"
    )
    for row in rows:
        verdict = f"PASS ≤{row.target:.0f}×" if row.ratio <= row.target else f"MISS >{row.target:.0f}×"
        print(
            f"  {row.name:<27}{row.xades:8.0f}{1000 / row.xades:7.2f}{row.raw_rate:8.0f}"
            f"{1000 / row.raw_rate:7.3f}{row.ratio:9.2f}×  {verdict:<27}"
            f"  {row.n_xades:>5}, {row.n_raw:<6}  {row.verified}"
        )
    print()
    print(
        "  Where a XAdES signature's time goes: ms a signature (share), instrumented passes between the runs"
    )
    print(f"  {'backend':<27}{'total':>6}" + "".join(f"{PART_LABELS[p]:>13}" for p in PARTS))
    for row in rows:
        total = sum(row.breakdown.values())
        cells = "".join(f"{row.breakdown[p] * 1000:7.3f} {row.breakdown[p] / total:4.0%}" for p in PARTS)
        print(f"  {row.name:<27}{total * 1000:6.2f}{cells}")
    xml_ms = sorted((sum(row.breakdown.values()) - row.breakdown["key"]) * 1000 for row in rows)
    print(
        f"  Without the key, a signature costs {xml_ms[0]:.2f}-{xml_ms[-1]:.2f} ms of XML work here: a key"
        f" operation faster than half of that cannot be within {TARGET_RATIO:.0f}× (XAdES ≥ XML + key)."
    )
    print(
        "  parse + XSD: year_record_load of the input; exc-c14n and SHA-256: the references and"
        " SignedInfo; key op: key.sign() as signing.profile calls it (SHA-256 of SignedInfo included;"
        " CSC: the signHash round trip and the check of the answer); doc C14N: the document as"
        " Canonical XML (the text path: the input, to check it is canonical; the tree path: the signed"
        " document); other: building the signature (as text, or its template filled and parsed), Ids,"
        " base64, splicing it in, the guards."
    )


def print_batches(batch_runs: list[BatchRun], rows: list[Row], *, batches: int) -> dict:
    print(
        f"(3) a {STUDENTS}-student class end to end: signing_batch_start → signing_batch_confirm →"
        f" signing_batch_run in this process, homeroom teacher's step; {batches} batch(es) per backend,"
        " a class each; timed: confirm + run"
    )
    print(
        f"  {'backend':<17}{'class':<16}{'records':>7}{'start s':>8}{'confirm s':>10}{'run s':>7}"
        f"{'conf+run s':>11}{'records/s':>10}{'ms/rec':>7}{'sign ms/rec':>12}{'SQL/rec':>8}  failed"
    )
    for done in batch_runs:
        records = max(done.records, 1)
        real = (done.statements - done.search_path) / records
        print(
            f"  {done.backend:<17}{done.school_class:<16}{done.records:>7}{done.start:8.3f}"
            f"{done.confirm:10.3f}{done.run:7.2f}{done.timed:11.2f}{done.records / done.timed:10.1f}"
            f"{done.timed / records * 1000:7.1f}{done.signing / records * 1000:12.1f}"
            f"{done.statements / records:5.1f} ({real:.0f}){done.failed:>4}"
        )
    by_name = {row.name: row for row in rows}
    summary = {}
    for backend in (E2E_CSC, E2E_PKCS12):
        mine = [d for d in batch_runs if d.backend == backend]
        timed = statistics.median(d.timed for d in mine)
        per_record = statistics.median(d.timed / max(d.records, 1) for d in mine)
        signing = statistics.median(d.signing / max(d.records, 1) for d in mine)
        summary[backend] = (timed, per_record)
        alone = 1000 / by_name[E2E_PEERS[backend]].xades
        print(
            f"  median {backend:<17} confirm+run {timed:5.2f} s  {1 / per_record:5.1f} records/s"
            f"  {per_record * 1000:5.1f} ms a record, of which {signing * 1000:.1f} ms signing"
            f" ({signing / per_record:.0%}; {alone:.1f} ms alone in (1))"
        )
    ratio = summary[E2E_CSC][0] / summary[E2E_PKCS12][0]
    print(f"  CSC ÷ PKCS#12, confirm + run: {ratio:.2f}×")
    print(
        "  sign ms/rec: time inside sign_year_records during the batch (key operation included);"
        " SQL/rec: statements a record, with django-tenants' SET search_path (without it)"
    )
    return summary


# --- Main ------------------------------------------------------------------------------------------


def main() -> int:
    if "--scale" in sys.argv:  # issue 13: whole batches at a province's scale (bench/signing_scale.py)
        from bench import signing_scale

        sys.argv.remove("--scale")
        return signing_scale.main()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: shorter runs, one batch each")
    parser.add_argument("--runs", type=int, help="runs per rate (default 7, 5 with --quick; at least 5)")
    parser.add_argument(
        "--batches", type=int, help="40-record batches per backend (default 3, 1 with --quick)"
    )
    args = parser.parse_args()
    runs = max(5, args.runs or (5 if args.quick else 7))
    batches = max(1, args.batches or (1 if args.quick else 5))
    seconds = 0.15 if args.quick else 0.6  # length of one timed run

    from tests.reference.service import CscService

    problems: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="hocba-bench-signing-") as tmp,
        throwaway_django() as server_version,
    ):
        workdir = Path(tmp)
        from signing.softhsm import softhsm_configure

        softhsm_configure(workdir / "softhsm")  # before the first use of the library in this process
        from cryptography.hazmat.primitives.serialization import Encoding
        from django.conf import settings

        from signing import ca, trust
        from signing.backends.csc import CscKey
        from signing.backends.pkcs11 import pkcs11_cache_clear
        from signing.services import runner
        from tests.transcripts.test_document import secondary_record
        from transcripts.document import year_record_xml

        progress("starting the reference CSC service ...")
        service = CscService()
        try:
            dev = ca.dev_ca("Học bạ số (benchmark)")
            roots_file, dev_crl, csc_crl = (
                workdir / "roots.pem",
                workdir / "dev-crl.pem",
                workdir / "csc-crl.der",
            )
            roots_file.write_bytes(
                dev.root_cert.public_bytes(Encoding.PEM) + service.root_cert().public_bytes(Encoding.PEM)
            )
            dev_crl.write_bytes(ca.issue_crl(dev).public_bytes(Encoding.PEM))
            csc_crl.write_bytes(service.crl().public_bytes(Encoding.DER))
            settings.HOCBA_TRUST_ROOTS = [str(roots_file)]
            settings.HOCBA_TRUST_CRLS = [str(dev_crl), str(csc_crl)]
            settings.HOCBA_CSC_URL, settings.HOCBA_CSC_CLIENT_SECRET = service.url, service.client_secret
            trust.trust_reset()

            # (1) and (2): rates.
            xml = year_record_xml(secondary_record())
            rows = key_rows(dev=dev, workdir=workdir, service=service)
            load_before = loadavg()
            for row in rows:
                progress(f"{row.name}: {runs} runs of XAdES and raw signing ...")
                measure_row(
                    row, xml, runs=runs, seconds=seconds, trust_roots=trust.trust_roots(), crls=trust.crls()
                )
                if row.verified != "yes":
                    problems.append(f"{row.name}: the signature does not verify: {row.verified}")
            load_rates = loadavg()
            for row in rows:  # the rate rows' CSC connections and token sessions are done with
                if isinstance(row.loaded.key, CscKey):
                    row.loaded.key.client.close()
            pkcs11_cache_clear()

            # (3): a class end to end.
            from django.db import connection

            from portal.models import Department, User
            from signing.services import certificate_register_csc, certificate_register_pkcs12

            Department.objects.create(code="BENCH", name="Sở Giáo dục và Đào tạo Bench", place_name="Lào Cai")
            users = {
                username: User.objects.create_user(username=username, password="bench-only", full_name=name)
                for username, name in (
                    ("thcs.gvcn", "Nguyễn Thị Chủ Nhiệm"),
                    ("thcs.gvbm", "Trần Văn Bộ Môn"),
                    ("thcs.hieutruong", "Lê Văn Hiệu Trưởng"),
                )
            }
            teacher = users["thcs.gvcn"]
            seed_started = time.perf_counter()
            seeded = seed_schools(batches, users)
            seed_seconds = time.perf_counter() - seed_started
            connection.set_schema_to_public()
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

            queued: list[int] = []
            batch_runs: list[BatchRun] = []
            with patched(runner, "signing_batch_enqueue", queued.append):  # the run happens here
                for i, (school, classes) in enumerate(seeded):
                    # Alternate which class each backend gets, so neither always has the same grade.
                    first, second = classes if i % 2 == 0 else classes[::-1]
                    for backend, school_class, certificate, cred in (
                        (E2E_CSC, first, csc_certificate, credential_id),
                        (E2E_PKCS12, second, p12_certificate, ""),
                    ):
                        progress(f"batch {backend}, {school.code}/{school_class.name} ...")
                        done = batch_run(
                            backend=backend,
                            school=school,
                            school_class=school_class,
                            certificate=certificate,
                            teacher=teacher,
                            service=service,
                            credential_id=cred,
                        )
                        connection.set_schema_to_public()
                        batch_runs.append(done)
                        if done.failed or done.done != done.records or done.reasons:
                            problems.append(f"batch {backend} {done.school_class}: {done.reasons}")
            load_after = loadavg()
        finally:
            service.stop()

        print(
            f"Signing benchmark · {platform.node()} · {os.cpu_count()} cores · PostgreSQL {server_version}"
            f" · Python {platform.python_version()} · {versions()} · SoftHSM {softhsm_version()}"
        )
        print(
            f"load average (1, 5, 15 min): {load_before} before the rates, {load_rates} after them,"
            f" {load_after} after the batches"
        )
        print(
            f"record: the THCS sample (secondary_record), {len(xml):,} bytes unsigned; every signature is"
            f" step 1 ({HOMEROOM}) on the unsigned record; one process; median of {runs} runs;"
            f" {'quick' if args.quick else 'full'} run\n"
        )
        print_rates(rows)
        print()
        summary = print_batches(batch_runs, rows, batches=batches)
        print(
            f"  (setup, untimed: {batches} school(s) seeded in {seed_seconds:.0f} s;"
            f" Celery enqueues skipped: {len(queued)})"
        )
        print()
        passed = [row.name for row in rows if row.ratio <= row.target]
        missed = [row.name for row in rows if row.ratio > row.target]
        csc, p12 = summary[E2E_CSC], summary[E2E_PKCS12]
        print(
            f"Summary: XAdES within {RSA_TARGET_RATIO:.0f}× (RSA) or {TARGET_RATIO:.0f}× (EC) of the raw"
            f" key rate for {len(passed)} of {len(rows)}"
            f" backends (PASS: {', '.join(passed) or 'none'}; MISS: {', '.join(missed) or 'none'});"
            f" a {STUDENTS}-student class signs in {csc[0]:.2f} s through CSC ({1 / csc[1]:.1f} records/s)"
            f" and {p12[0]:.2f} s through PKCS#12 ({1 / p12[1]:.1f} records/s), confirm + run, median."
        )
        for problem in problems:
            print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
