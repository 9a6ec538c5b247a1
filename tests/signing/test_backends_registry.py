# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""Key backends behind one protocol in a registry, one error type that says whether to retry, and
a batch that pauses (not fails) while its key's service is down (issue 10, style.md rule 13).

The outages here are real: the portal is pointed at a port nobody listens on (connection refused),
or at a small HTTP server in a thread that answers 429, 503, 400 or nothing at all. The whole
story with a real worker and a real stop of the reference service is test_batch_outage.py.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from portal.formats import moment_vi
from signing import keys, trust
from signing.backends import BackendError, KeyLoadError, backend_for, registered_backends
from signing.backends.csc import CscClient, CscError, csc_load
from signing.backends.pkcs11 import Pkcs11Error, pkcs11_key
from signing.backends.pkcs12 import Pkcs12Error, pkcs12_key
from signing.models import BatchState, CertificateBackend, ItemState, SigningBatch
from signing.services import (
    certificate_register_csc,
    signing_batch_confirm,
    signing_batch_start,
    signing_batches_resume,
)
from signing.services.certificates import key_error_message
from signing.services.runner import RETRY_MAX_SECONDS, retry_delay
from tests.signing.test_batch_backends import csc, remote_signing  # noqa: F401
from tests.signing.test_batches import confirmed, run, states  # noqa: F401
from tests.transcripts.test_year_close import complete_class  # noqa: F401
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401

# --- The registry ---------------------------------------------------------------------------------


def test_every_certificate_backend_has_exactly_its_registered_loader():
    assert registered_backends() == {
        CertificateBackend.PKCS12: pkcs12_key,
        CertificateBackend.PKCS11: pkcs11_key,
        CertificateBackend.CSC: csc_load,
    }
    assert backend_for(CertificateBackend.CSC) is csc_load


def test_an_unknown_backend_is_refused_by_name():
    with pytest.raises(KeyLoadError) as error:
        backend_for("floppy")
    assert (error.value.code, str(error.value)) == ("unknown_backend", "Unknown key backend 'floppy'")
    assert not error.value.retryable


def test_every_backends_error_is_one_backend_error_that_says_whether_to_retry():
    assert issubclass(CscError, BackendError) and issubclass(Pkcs11Error, BackendError)
    assert issubclass(Pkcs12Error, BackendError) and issubclass(KeyLoadError, BackendError)
    assert BackendError("x", "y", retryable=True).retryable
    assert not KeyLoadError("wrong_pin", "Wrong PIN").retryable
    assert Pkcs11Error("device_error", "gone").retryable and not Pkcs11Error("wrong_pin", "no").retryable


# --- What is worth retrying, over real sockets ----------------------------------------------------


class _Answers(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status = 200
    body = b"{}"
    silent = False

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.silent:
            threading.Event().wait(3)  # never answers within the client's timeout
            return
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator:
    servers = []

    def serve(status: int = 200, body: bytes = b"{}", silent: bool = False) -> str:
        handler = type("Handler", (_Answers,), {"status": status, "body": body, "silent": silent})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _refused(url: str, timeout: float = 5) -> CscError:
    with pytest.raises(CscError) as error:
        CscClient(url, "secret", timeout=timeout).info()
    return error.value


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (429, b'{"error": "too_many_requests", "error_description": "slow down"}', "busy", True),
        (429, b"Too Many Requests", "busy", True),
        (503, b"<html>Service Unavailable</html>", "server_error", True),
        (500, b'{"error": "server_error", "error_description": "oops"}', "server_error", True),
        (400, b'{"error": "invalid_otp", "error_description": "The OTP is invalid"}', "wrong_otp", False),
        (
            400,
            b'{"error": "certificate_revoked", "error_description": "revoked"}',
            "certificate_revoked",
            False,
        ),
        (401, b'{"error": "invalid_token", "error_description": "no"}', "unauthorised_client", False),
        (404, b'{"error": "not_found", "error_description": "no such method"}', "protocol", False),
    ],
)
def test_busy_and_failing_services_are_retryable_and_refusals_are_permanent(
    answering, status, body, code, retryable
):
    error = _refused(answering(status, body))
    assert (error.code, error.retryable, error.status) == (code, retryable, status)


def test_a_refused_connection_and_a_timeout_are_unreachable_and_retryable(answering):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    error = _refused(closed)
    assert (error.code, error.retryable) == ("unreachable", True)
    error = _refused(answering(silent=True), timeout=0.5)
    assert (error.code, error.retryable) == ("unreachable", True)
    assert "timed out" in str(error).lower()


def test_the_csc_client_shares_one_pooled_http_client_per_process():
    from signing.backends.csc import http_client

    assert http_client() is http_client()
    assert http_client().timeout.connect == 5.0


# --- The batch pauses while the service is down ---------------------------------------------------


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def remote_batch(csc, remote_signing, homeroom_teacher, school, confirmed, approved_class, settings):
    """The homeroom teacher's batch over 8A through the reference service, confirmed with the OTP."""
    settings.HOCBA_SIGNING_QUEUE = "test-registry-unconsumed"  # wake-ups nobody takes
    school_class, _ = approved_class
    credential_id, _ = csc.enrol(homeroom_teacher.username, homeroom_teacher.full_name, "Giáo viên")
    certificate = certificate_register_csc(actor=homeroom_teacher, credential_id=credential_id)
    batch = signing_batch_start(
        actor=homeroom_teacher,
        school=school,
        step="homeroom_teacher",
        certificate=certificate,
        school_class=school_class,
    )
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, otp=csc.otp_for(credential_id))
    keys._cache.clear()  # this process has not loaded the key yet, as a fresh worker
    return batch


def test_a_batch_whose_service_is_down_pauses_with_its_records_pending_and_resumes_when_due(
    remote_batch, csc, settings
):
    batch = remote_batch
    settings.HOCBA_CSC_URL = _closed_port_url()  # the service is down: connection refused
    before = timezone.now()
    assert run(batch) == "paused"
    paused = SigningBatch.objects.get(pk=batch.pk)
    assert paused.state == BatchState.QUEUED and (paused.lease_owner, paused.lease_until) == ("", None)
    assert paused.retry_count == 1 and paused.retrying_since is not None
    assert (
        before + dt.timedelta(seconds=0.5)
        <= paused.next_attempt_at
        <= timezone.now() + dt.timedelta(seconds=1)
    )
    assert paused.retry_reason == key_error_message(CscError("unreachable"))
    assert states(batch) == [ItemState.PENDING, ItemState.PENDING]  # nothing failed

    assert run(batch) == "not claimed"  # a wake-up that comes early does nothing: not due yet
    assert batch.pk not in signing_batches_resume()  # (other runs' committed batches may be due)
    SigningBatch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    assert batch.pk in signing_batches_resume()  # due: the sweep queues it

    assert run(batch) == "paused"  # still down: the wait doubles
    again = SigningBatch.objects.get(pk=batch.pk)
    assert again.retry_count == 2 and again.retrying_since == paused.retrying_since

    settings.HOCBA_CSC_URL = csc.url  # the service is back
    SigningBatch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())
    assert run(batch) == "done"
    done = SigningBatch.objects.get(pk=batch.pk)
    assert done.state == BatchState.DONE and states(batch) == [ItemState.DONE, ItemState.DONE]
    assert (done.retry_count, done.retrying_since, done.next_attempt_at, done.retry_reason) == (
        0,
        None,
        None,
        "",
    )


def test_a_service_down_for_longer_than_the_limit_fails_the_remaining_records_with_the_reason(
    remote_batch, settings
):
    batch = remote_batch
    settings.HOCBA_CSC_URL = _closed_port_url()
    settings.HOCBA_SIGNING_RETRY_ATTEMPTS, settings.HOCBA_SIGNING_RETRY_GIVE_UP_SECONDS = 3, 60
    since = timezone.now() - dt.timedelta(seconds=30)
    SigningBatch.objects.filter(pk=batch.pk).update(retry_count=2, retrying_since=since)
    assert run(batch) == "paused"  # three failures, but over 30 s only: not yet
    first_failure = timezone.now() - dt.timedelta(seconds=61)
    SigningBatch.objects.filter(pk=batch.pk).update(next_attempt_at=None, retrying_since=first_failure)
    assert run(batch) == "done"
    ended = SigningBatch.objects.get(pk=batch.pk)
    assert ended.state == BatchState.DONE and ended.secret is None
    # The count starts afresh for a later "sign the failed records again"; the reason stays.
    assert (ended.retry_count, ended.retrying_since, ended.next_attempt_at) == (0, None, None)
    since = moment_vi(first_failure)  # the one form a person reads (portal.formats)
    reason = (
        f"Dịch vụ ký số lỗi 4 lần liên tiếp từ {since}; các hồ sơ còn lại chưa được ký: "
        "Không kết nối được dịch vụ ký số từ xa; hãy thử lại sau."
    )
    assert list(batch.items.values_list("state", "reason")) == [(ItemState.FAILED, reason)] * 2
    assert ended.retry_reason == reason


def test_a_permanent_refusal_fails_the_records_with_its_reason_and_does_not_pause(remote_batch):
    batch = remote_batch
    SigningBatch.objects.filter(pk=batch.pk).update(secret=trust.seal_secret("a-made-up-approval"))
    assert run(batch) == "done"
    ended = SigningBatch.objects.get(pk=batch.pk)
    assert (ended.retry_count, ended.next_attempt_at) == (0, None)
    assert (
        list(batch.items.values_list("state", "reason"))
        == [(ItemState.FAILED, "Dịch vụ ký số từ xa từ chối phiên ủy quyền.")] * 2
    )


def test_the_back_off_doubles_from_one_second_up_to_a_minute_with_jitter():
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (6, 32), (7, 60), (40, 60)]:
        delays = [retry_delay(failures) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (failures, delays)
        assert len(set(delays)) > 1  # jittered
    assert RETRY_MAX_SECONDS == 60


@pytest.mark.parametrize(
    ("status", "reason"),
    [(503, "Dịch vụ ký số từ xa đang gặp lỗi."), (429, "Dịch vụ ký số từ xa đang quá tải.")],
)
def test_a_failing_or_busy_service_pauses_the_batch_and_says_so(
    remote_batch, answering, settings, status, reason
):
    settings.HOCBA_CSC_URL = answering(status, b"{}")
    assert run(remote_batch) == "paused"
    paused = SigningBatch.objects.get(pk=remote_batch.pk)
    assert (paused.state, paused.retry_count, paused.retry_reason) == (BatchState.QUEUED, 1, reason)
    assert states(remote_batch) == [ItemState.PENDING, ItemState.PENDING]


def test_the_progress_page_and_json_say_the_batch_is_paused_and_when_it_retries(
    remote_batch, client_as, homeroom_teacher, school, settings
):
    settings.HOCBA_CSC_URL = _closed_port_url()
    assert run(remote_batch) == "paused"
    connection.set_schema_to_public()
    paused = SigningBatch.objects.get(pk=remote_batch.pk)
    at = timezone.localtime(paused.next_attempt_at).strftime("%H:%M:%S")
    client = client_as(homeroom_teacher)
    url = reverse("signing:batch", kwargs={"school_code": school.code, "batch_pk": paused.pk})
    progress = client.get(url + "tien-do/").json()
    assert progress["state_label"] == f"Tạm dừng, thử lại lúc {at}"
    assert (progress["paused"], progress["finished"], progress["failed"], progress["remaining"]) == (
        True,
        False,
        0,
        2,
    )
    assert progress["next_attempt_at"] == paused.next_attempt_at.isoformat()
    assert progress["retry_reason"] == "Không kết nối được dịch vụ ký số từ xa; hãy thử lại sau."
    page = client.get(url).content.decode()
    assert f"Tạm dừng, thử lại lúc {at}" in page
    assert "Lô ký sẽ tự chạy tiếp khi dịch vụ hoạt động trở lại; không cần xác nhận lại." in page
