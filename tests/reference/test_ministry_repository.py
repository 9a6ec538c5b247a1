"""The reference Ministry repository as a server: docs/ministry-contract.md over real mutual TLS.

One repository process for the module (tests/reference/ministry_service.py), trusting the
session's test CA; the records it judges are genuinely issued by the portal's own services
(tests/reference/conftest.py ministry_documents), so xmlsec1's verdicts are on real signatures.
Requests are written by hand with httpx: what is checked is what goes over the wire.

Each (kind, record id, version) can be stored once, so every test uses slots of its own:
records[0] goes through submit, replace and cancel; records[1] is the crash victim;
records[2] lacks its personal ID; records[3] has a tampered signature. The other rejections use
copies whose record id (and school) were edited: the stage that rejects them comes before the
signatures, which those edits break.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.reference.conftest import MinistryDocuments, SealedDocument
from tests.reference.ministry_service import MinistryService, make_tls
from tests.reference.process import PROJECT_ROOT

pytestmark = pytest.mark.slow

VERDICT_WAIT = 30  # seconds: an upper bound on a verdict, never a measure of speed


@pytest.fixture(scope="module")
def ministry(ministry_documents: MinistryDocuments) -> Iterator[MinistryService]:
    service = MinistryService(
        trust_roots=[ministry_documents.roots_pem], untrusted=[ministry_documents.intermediates_pem]
    )
    try:
        service.schools_add(ministry_documents.records[0].school_code)
        yield service
    finally:
        service.stop()


@pytest.fixture
def client(ministry: MinistryService) -> Iterator[httpx.Client]:
    with ministry.client() as client:
        yield client


@pytest.fixture(autouse=True)
def _no_faults_left(ministry: MinistryService) -> Iterator[None]:
    yield
    if ministry.running:
        ministry.faults(
            error_rate=0,
            latency_ms=0,
            drop_rate=0,
            throttle_next=0,
            retry_after=1,
            crash_after_store_next=0,
            hold_verdicts=0,
        )


# --- Helpers ----------------------------------------------------------------------------------


def message(
    document: SealedDocument | None,
    *,
    kind: str = "submit",
    xml: bytes | None = None,
    **overrides: Any,
) -> tuple[dict[str, Any], str]:
    """The contract's body for the document (fields overridable) and its Idempotency-Key."""
    body: dict[str, Any] = {
        "kind": kind,
        "school_code": document.school_code if document else "",
        "record_id": document.record_id if document else "",
        "version": document.version if document else 1,
        "replaces_version": None,
        "personal_id": document.personal_id if document else None,
        "document": None,
        "reason": "",
    }
    body.update(overrides)
    if kind == "cancel":
        key = hashlib.sha256(f"cancel\n{body['record_id']}\n{body['version']}".encode()).hexdigest()
    else:
        data = xml if xml is not None else document.xml
        body["document"] = base64.b64encode(data).decode()
        key = hashlib.sha256(data).hexdigest()
    return body, key


def send(client: httpx.Client, body: dict[str, Any], key: str) -> httpx.Response:
    return client.post("/v1/messages", json=body, headers={"Idempotency-Key": key})


def verdict(client: httpx.Client, receipt_id: str) -> dict[str, Any]:
    """The receipt once it has a verdict (polled)."""
    deadline = time.monotonic() + VERDICT_WAIT
    while True:
        response = client.get(f"/v1/receipts/{receipt_id}")
        assert response.status_code == 200, response.text
        receipt = response.json()
        if receipt["status"] != "received":
            return receipt
        assert time.monotonic() < deadline, f"no verdict on {receipt_id} within {VERDICT_WAIT} s"
        time.sleep(0.05)


def submitted(client: httpx.Client, body: dict[str, Any], key: str) -> dict[str, Any]:
    """Send a message that must be stored (202) and return its verdict."""
    response = send(client, body, key)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "received"
    return verdict(client, response.json()["receipt_id"])


def codes(receipt: dict[str, Any]) -> list[str]:
    return [reason["code"] for reason in receipt["reasons"]]


def held(ministry: MinistryService, key: str) -> list[dict[str, Any]]:
    return [m for m in ministry.state()["messages"] if m["key"] == key]


def edited(document: SealedDocument, *, record_id: str, school_code: str | None = None) -> bytes:
    """The sealed XML with its record id (and school code) changed: its signatures no longer hold."""
    xml = document.xml.replace(
        f"<madinhdanhhocba>{document.record_id}</madinhdanhhocba>".encode(),
        f"<madinhdanhhocba>{record_id}</madinhdanhhocba>".encode(),
    )
    if school_code is not None:
        xml = xml.replace(
            f"<matruong>{document.school_code}</matruong>".encode(),
            f"<matruong>{school_code}</matruong>".encode(),
        )
    assert xml != document.xml
    return xml


# --- Submit, replace, cancel: record 0 ----------------------------------------------------------


@pytest.fixture(scope="module")
def record_zero(ministry: MinistryService, ministry_documents: MinistryDocuments) -> dict[str, Any]:
    """records[0] v1 submitted and, at once, its correction (v2) as a replace: both 202."""
    first, correction = ministry_documents.records[0], ministry_documents.correction
    with ministry.client() as client:
        submit_body, submit_key = message(first)
        submit = send(client, submit_body, submit_key)
        replace_body, replace_key = message(correction, kind="replace", replaces_version=1)
        replace = send(client, replace_body, replace_key)
    assert (submit.status_code, replace.status_code) == (202, 202), (submit.text, replace.text)
    return {
        "submit": (submit_body, submit_key, submit.json()),
        "replace": (replace_body, replace_key, replace.json()),
    }


def test_a_sealed_record_is_received_then_accepted(client, ministry, record_zero):
    _, key, answer = record_zero["submit"]
    assert set(answer) == {"receipt_id", "status"} and answer["status"] == "received"

    receipt = verdict(client, answer["receipt_id"])

    assert receipt["status"] == "accepted" and receipt["reasons"] == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", receipt["decided_at"])
    [stored] = held(ministry, key)
    assert (stored["kind"], stored["version"], stored["accepted_count"]) == ("submit", 1, 1)


def test_the_same_key_again_gets_the_first_receipt_and_is_stored_once(client, ministry, record_zero):
    body, key, answer = record_zero["submit"]
    replayed_before = ministry.state()["totals"]["replayed"]

    again = send(client, body, key)

    assert again.status_code == 200 and again.json() == answer
    assert len(held(ministry, key)) == 1
    assert ministry.state()["totals"]["replayed"] == replayed_before + 1


def test_the_same_version_with_other_bytes_is_a_conflict(client, ministry, ministry_documents, record_zero):
    first, other = ministry_documents.records[0], ministry_documents.records[1]
    body, key = message(first, xml=other.xml)  # records[0]'s envelope, records[1]'s signed bytes

    response = send(client, body, key)

    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    assert held(ministry, key) == []
    assert len([m for m in ministry.state()["messages"] if m["record_id"] == first.record_id]) == 2


def test_a_replace_waits_for_its_submit_and_is_accepted(client, ministry, ministry_documents, record_zero):
    _, key, answer = record_zero["replace"]

    receipt = verdict(client, answer["receipt_id"])

    assert receipt["status"] == "accepted", receipt
    record_id = ministry_documents.correction.record_id
    log = ministry.log()
    assert log.index(f"submit {record_id} v1: accepted") < log.index(f"replace {record_id} v2: accepted")
    [stored] = held(ministry, key)
    assert (stored["replaces_version"], stored["accepted_count"]) == (1, 1)


def test_a_cancel_of_the_accepted_version_is_accepted(client, ministry, ministry_documents, record_zero):
    verdict(client, record_zero["replace"][2]["receipt_id"])
    correction = ministry_documents.correction
    body, key = message(correction, kind="cancel", reason="Hồ sơ cấp nhầm")

    receipt = submitted(client, body, key)

    assert receipt["status"] == "accepted", receipt
    assert body["document"] is None and held(ministry, key)[0]["kind"] == "cancel"
    counts = [
        (m["kind"], m["version"], m["accepted_count"])
        for m in ministry.state()["messages"]
        if m["record_id"] == correction.record_id
    ]
    assert sorted(counts) == [("cancel", 2, 1), ("replace", 2, 1), ("submit", 1, 1)]


# --- The envelope and the credentials -------------------------------------------------------------


def test_a_key_that_is_not_the_documents_sha256_is_refused(client, ministry, ministry_documents):
    body, key = message(ministry_documents.records[1])
    wrong = hashlib.sha256(b"some other bytes").hexdigest()

    mismatch = send(client, body, wrong)
    malformed = send(client, body, key.upper())
    missing = client.post("/v1/messages", json=body)

    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == "key_mismatch"
    assert [r.status_code for r in (malformed, missing)] == [400, 400]
    assert {r.json()["error"]["code"] for r in (malformed, missing)} == {"bad_key"}
    assert held(ministry, wrong) == held(ministry, key) == []


def test_malformed_envelopes_are_refused(client, ministry_documents):
    document = ministry_documents.records[1]
    body, key = message(document)
    cases = [
        {**body, "kind": "delete"},
        {**body, "version": "1"},
        {**body, "document": "not base64!"},
        {**body, "replaces_version": 0},
        {**body, "version": 2},  # a submit is version 1
        {**body, "kind": "replace", "version": 2, "replaces_version": 2},
    ]
    answers = [send(client, case, key) for case in cases]
    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(400, "bad_request")] * 6
    not_json = client.post("/v1/messages", content=b"[1, 2", headers={"Idempotency-Key": key})
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "bad_request"


def test_a_wrong_token_is_unauthorized(ministry):
    with ministry.client(token="not-the-token") as stranger:
        response = stranger.get("/_reference/state")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("who", ["no certificate", "a certificate of another CA"])
def test_a_client_without_the_departments_certificate_is_refused_at_the_handshake(ministry, who):
    refusals_before = ministry.log().count("TLS handshake refused")
    with (
        ministry.client(client_cert=False, stranger=who != "no certificate") as stranger,
        pytest.raises(httpx.TransportError),
    ):
        stranger.get("/_reference/state")
    deadline = time.monotonic() + 5
    while ministry.log().count("TLS handshake refused") == refusals_before:
        assert time.monotonic() < deadline, ministry.log()[-2000:]
        time.sleep(0.02)


def test_an_unknown_receipt_is_404(client):
    response = client.get("/v1/receipts/rcpt_000000000000000000000000")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# --- Rejections -----------------------------------------------------------------------------------


def test_a_document_of_an_unregistered_school_is_rejected_until_the_school_is_added(
    client, ministry, ministry_documents
):
    document = ministry_documents.records[1]
    early = edited(document, record_id="t-moi.HS0001.2025-2026", school_code="t-moi")
    body, key = message(document, xml=early, school_code="t-moi", record_id="t-moi.HS0001.2025-2026")

    rejected = submitted(client, body, key)
    assert rejected["status"] == "rejected" and codes(rejected) == ["unknown_school"]

    # Registered offline, beside the running server: the next verdict sees it.
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "reference.ministry",
            "school-add",
            "--data",
            str(ministry.data_dir),
            "--code",
            "t-moi",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0, added.stderr
    later = edited(document, record_id="t-moi.HS0002.2025-2026", school_code="t-moi")
    body, key = message(document, xml=later, school_code="t-moi", record_id="t-moi.HS0002.2025-2026")
    past_school = submitted(client, body, key)
    assert past_school["status"] == "rejected" and set(codes(past_school)) == {"signature"}


def test_a_record_without_a_valid_personal_id_is_rejected(client, ministry_documents):
    document = ministry_documents.records[2]
    body, key = message(document, personal_id=None)
    rejected = submitted(client, body, key)
    assert rejected["status"] == "rejected" and codes(rejected) == ["personal_id_missing"]

    arabic_digits = "07921234567" + "\u0663"  # a digit, but not an ASCII one
    record_id = document.record_id.replace(".2025", "X.2025")
    body, key = message(document, xml=edited(document, record_id=record_id), record_id=record_id)
    body["personal_id"] = arabic_digits
    rejected = submitted(client, body, key)
    assert codes(rejected) == ["personal_id_missing"]


def test_a_document_the_xsd_refuses_is_rejected_schema(client, ministry_documents):
    document = ministry_documents.records[1]
    record_id = document.record_id.replace(".2025", "S.2025")
    xml = edited(document, record_id=record_id).replace(
        b"</thongtinhocba>", b"<thuathem>1</thuathem></thongtinhocba>"
    )
    body, key = message(document, xml=xml, record_id=record_id)

    rejected = submitted(client, body, key)

    assert rejected["status"] == "rejected" and codes(rejected) == ["schema"]
    assert "XSD" in rejected["reasons"][0]["message"]


def test_a_tampered_signature_is_rejected_by_xmlsec1(client, ministry, ministry_documents):
    document = ministry_documents.records[3]
    value = list(re.finditer(rb"<ds:SignatureValue[^>]*>([A-Za-z0-9+/]{8})", document.xml))[
        1
    ]  # the principal's
    start = value.start(1)
    flipped = b"A" if document.xml[start : start + 1] != b"A" else b"B"
    xml = document.xml[:start] + flipped + document.xml[start + 1 :]
    body, key = message(document, xml=xml)

    rejected = submitted(client, body, key)

    assert rejected["status"] == "rejected" and set(codes(rejected)) == {"signature"}
    assert any("-sig-2-principal" in r["message"] for r in rejected["reasons"])
    assert not any("-sig-1-homeroom_teacher" in r["message"] for r in rejected["reasons"])


def test_signatures_from_a_ca_the_repository_does_not_trust_are_rejected(ministry_documents, tmp_path):
    make_tls(tmp_path)  # its ca.pem: some other CA
    document = ministry_documents.records[0]
    with MinistryService(trust_roots=[tmp_path / "ca.pem"]) as elsewhere:
        elsewhere.schools_add(document.school_code)
        with elsewhere.client() as client:
            rejected = submitted(client, *message(document))

    assert rejected["status"] == "rejected" and codes(rejected) == ["signature"] * 3
    assert all("certificate verification failed" in r["message"] for r in rejected["reasons"])


def test_a_replace_of_a_version_never_received_is_judged_as_a_first_version_a_cancel_is_refused(
    client, ministry_documents
):
    correction = ministry_documents.correction
    record_id = "t-th-a.CHUA-GUI.2025-2026"  # the same bytes under another record would be a conflict
    xml = edited(correction, record_id=record_id)
    body, key = message(correction, kind="replace", xml=xml, record_id=record_id, replaces_version=1)
    # Judged on its own merits, not refused for the missing version: the edit broke its signatures.
    assert set(codes(submitted(client, body, key))) == {"signature"}
    body, key = message(correction, kind="cancel", record_id=record_id, version=1)
    assert codes(submitted(client, body, key)) == ["unknown_version"]


def test_an_envelope_that_disagrees_with_its_document_is_rejected_mismatch(client, ministry_documents):
    document = ministry_documents.records[1]
    # Bytes of its own (records[1]'s own bytes belong to the crash test's submit).
    xml = edited(document, record_id="t-th-a.TRONG-TAI-LIEU.2025-2026")
    body, key = message(document, xml=xml, record_id="t-th-a.KHAC.2025-2026")

    rejected = submitted(client, body, key)

    assert rejected["status"] == "rejected" and codes(rejected) == ["mismatch"]
    assert "t-th-a.TRONG-TAI-LIEU.2025-2026 in the document" in rejected["reasons"][0]["message"]


# --- Faults ---------------------------------------------------------------------------------------


def _faultable(ministry_documents) -> tuple[dict[str, Any], str]:
    """A message that would be stored if it got through (records[1] under a record id of its own)."""
    document = ministry_documents.records[1]
    record_id = "t-th-a.FAULT.2025-2026"
    return message(document, xml=edited(document, record_id=record_id), record_id=record_id)


def test_error_rate_answers_503_and_stores_nothing(client, ministry, ministry_documents):
    body, key = _faultable(ministry_documents)
    ministry.faults(error_rate=1.0)

    response = send(client, body, key)

    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
    assert held(ministry, key) == [] and ministry.state()["totals"]["errors_injected"] >= 1


def test_latency_delays_each_answer_by_at_least_the_knob(client, ministry, record_zero):
    receipt_id = record_zero["submit"][2]["receipt_id"]
    ministry.faults(latency_ms=300)

    started = time.monotonic()
    response = client.get(f"/v1/receipts/{receipt_id}")
    elapsed = time.monotonic() - started

    assert response.status_code == 200 and elapsed >= 0.3


def test_drop_rate_closes_the_connection_without_an_answer(client, ministry, ministry_documents):
    body, key = _faultable(ministry_documents)
    dropped_before = ministry.state()["totals"]["dropped"]
    ministry.faults(drop_rate=1.0)

    with pytest.raises(httpx.TransportError):
        send(client, body, key)

    ministry.faults(drop_rate=0)
    assert held(ministry, key) == []
    assert ministry.state()["totals"]["dropped"] == dropped_before + 1


def test_throttle_next_answers_429_with_retry_after_then_lets_through(client, ministry, ministry_documents):
    body, key = _faultable(ministry_documents)
    ministry.faults(throttle_next=2, retry_after=7)

    answers = [send(client, body, key) for _ in range(2)]
    malformed = send(client, {**body, "kind": "delete"}, key)  # the third: no longer throttled

    assert [(a.status_code, a.headers.get("Retry-After")) for a in answers] == [(429, "7"), (429, "7")]
    assert malformed.status_code == 400
    assert held(ministry, key) == [] and ministry.faults()["throttle_next"] == 0


def test_a_crash_after_storing_loses_the_answer_not_the_message(ministry, ministry_documents):
    document = ministry_documents.records[1]
    body, key = message(document)
    ministry.faults(crash_after_store_next=1)

    with ministry.client() as client, pytest.raises(httpx.TransportError):
        send(client, body, key)
    assert ministry.wait_exit() == 3

    ministry.restart()
    [stored] = held(ministry, key)  # committed before the crash
    with ministry.client() as client:
        again = send(client, body, key)
        assert again.status_code == 200
        assert again.json() == {"receipt_id": stored["receipt_id"], "status": "received"}
        assert verdict(client, stored["receipt_id"])["status"] == "accepted"
    [after] = held(ministry, key)
    assert after["accepted_count"] == 1
    state = ministry.state()
    assert all(m["accepted_count"] <= 1 for m in state["messages"])


def test_hold_verdicts_keeps_every_receipt_received_until_released(client, ministry, ministry_documents):
    document = ministry_documents.records[1]
    record_id = "t-th-a.HOLD.2025-2026"  # bytes of its own
    body, key = message(document, xml=edited(document, record_id=record_id), record_id=record_id)
    ministry.faults(hold_verdicts=1)
    receipt = send(client, body, key).json()["receipt_id"]
    time.sleep(1.0)  # five of the validator's rounds
    assert client.get(f"/v1/receipts/{receipt}").json()["status"] == "received"
    ministry.faults(hold_verdicts=0)
    assert verdict(client, receipt)["status"] in ("accepted", "rejected")


# --- Start-up -------------------------------------------------------------------------------------


def test_fault_flags_at_start_are_the_first_knobs():
    options = ["--error-rate", "0.25", "--latency-ms", "5", "--throttle-next", "2", "--retry-after", "9"]
    with MinistryService(options=options) as started:
        assert started.faults() == {
            "error_rate": 0.25,
            "latency_ms": 5,
            "drop_rate": 0.0,
            "throttle_next": 2,
            "retry_after": 9,
            "crash_after_store_next": 0,
            "hold_verdicts": 0,
        }


def test_serve_takes_the_token_from_the_environment_only(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MINISTRY_TOKEN"}
    run = subprocess.run(
        [sys.executable, "-m", "reference.ministry", "serve", "--data", str(tmp_path)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2 and "$MINISTRY_TOKEN" in run.stderr
    flag = subprocess.run(
        [sys.executable, "-m", "reference.ministry", "serve", "--data", str(tmp_path), "--token", "x"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert flag.returncode == 2 and "unrecognized arguments: --token" in flag.stderr
