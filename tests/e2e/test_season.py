"""The closing season in a browser (issue 16): from the grade book to a parent's phone.

A fresh primary school (tests/e2e/season_kit.py: one grade 5 class of five pupils, two subjects),
in a database of the season's own (what it issues, indexes and forwards is no other test's
business), goes through its closing season in Debian's chromium, each person in a browser context
of their own, against the production stack (tests/production_stack.py: gunicorn, TLS, DEBUG off,
the CSP), a real Celery worker (signing, PDFs and the relay to the Ministry on one queue of this
test) and the reference Ministry repository (a real process, mutual TLS):

1. the subject teacher fills the year's levels and test scores of both subjects;
2. the homeroom teacher fills the qualities and competencies and a comment, computes the results;
3. the principal logs in with a second factor and approves the year;
4. the homeroom teacher creates and confirms the records and signs the class (the worker signs);
5. the principal signs the whole school in one batch (PIN and authenticator code);
6. the clerk seals it (the school seal, the worker; the sealed PDFs are made);
7. the relay (queued by the seal, as in production) hands each record to the reference
   repository: its own state, over HTTPS, holds each exactly once, accepted;
8. the division officer sees the school at 100 %;
9. a parent, not logged in, opens the link of a record's QR code (read from the PDF's rendering)
   and sees it in force, its three signatures valid.

Each step writes a full-page screenshot to .data/e2e/season/ (HOCBA_SCREENSHOT_DIR overrides),
with an index.html of their captions; the test prints where. Nothing in the data is made by hand
after the set-up: every figure on the pages comes from what the browser did.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from playwright.sync_api import expect

from tests.e2e.season_kit import (
    SUBJECTS,
    Codes,
    Gallery,
    log_in,
    qr_links,
    screenshot_dir,
    season_database,
    season_records,
    trusting_chromium,
)
from tests.production_stack import ProductionStack
from tests.reference.ministry_service import MinistryService
from tests.signing_kit import PIN
from tests.worker import Worker

pytestmark = pytest.mark.slow

QUALITY_CELLS = 15  # TT27: 5 qualities, 3 general and 7 specific competencies


@pytest.fixture(scope="module")
def season(django_db_setup, django_db_blocker, signing_trust, tmp_path_factory):
    """The season's database and school, the reference repository, the server and the worker."""
    from signing.trust import deployment_key

    folder = tmp_path_factory.mktemp("season")
    trust_env = {
        "HOCBA_DEPLOYMENT_KEY": deployment_key().decode(),  # what the set-up seals, the stack opens
        "HOCBA_TRUST_ROOTS": ",".join(settings.HOCBA_TRUST_ROOTS),
        "HOCBA_TRUST_CRLS": ",".join(settings.HOCBA_TRUST_CRLS),
        "HOCBA_CSC_URL": "",
    }
    started = time.monotonic()
    with season_database(django_db_blocker, signing_trust, folder, trust_env) as (database, world):
        print(f"\nthe season's database set up in {time.monotonic() - started:.1f} s")
        roots, issuing = folder / "roots.pem", folder / "issuing.pem"
        roots.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in signing_trust.ca.roots))
        issuing.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in signing_trust.ca.chain))
        ministry = MinistryService(trust_roots=[roots], untrusted=[issuing])
        queue = f"e2e-{world.school_code}"
        env = {
            **trust_env,
            "DATABASE_URL": database,
            "HOCBA_CACHE_PREFIX": f"hocba-{world.school_code}",
            # One queue of this test for what the server and the worker queue: signing, PDFs, relay.
            "HOCBA_SIGNING_QUEUE": queue,
            "HOCBA_PDF_QUEUE": queue,
            "HOCBA_FORWARD_QUEUE": queue,
            "HOCBA_MINISTRY_URL": ministry.url + "/",
            "HOCBA_MINISTRY_TOKEN": ministry.token,
            "HOCBA_MINISTRY_CA": str(ministry.ca_path),
            "HOCBA_MINISTRY_CLIENT_CERT": str(ministry.client_cert_path),
            "HOCBA_MINISTRY_CLIENT_KEY": str(ministry.client_key_path),
        }
        started = time.monotonic()
        stack = ProductionStack.for_test_session(env=env)
        try:
            ministry.schools_add(world.school_code)
            stack.start()
            worker = Worker(
                queue=queue,
                log=folder / "worker.log",
                env={**env, "HOCBA_PUBLIC_URL": stack.url},  # the QR codes point at the stack
            ).start()
            print(f"the stack and the worker started in {time.monotonic() - started:.1f} s")
            try:
                yield world, database, stack, ministry, worker
            finally:
                worker.stop()
                print(f"\nworker log: {worker.log}\nserver log: {stack.log}")
        finally:
            stack.stop()
            ministry.stop()


def _messages(page) -> str:
    return page.locator("ul.messages").inner_text()


def _fill_cells(page, rows: list[list[str]]) -> None:
    """Type the rows as a person does: a value, Tab to the next cell; an empty value is skipped."""
    for values in rows:
        for value in values:
            if value:
                page.keyboard.type(value)
            page.keyboard.press("Tab")


def _batch_done(page, total: int) -> None:
    page.locator("#batch-progress").wait_for()
    # Locator assertions, not wait_for_function: the page's CSP (no 'unsafe-eval') applies to the
    # test's own scripts too; the progress bar's script (signing.js) runs under it.
    expect(page.locator("#batch-done")).to_have_text(str(total), timeout=120_000)
    expect(page.locator("#batch-state")).to_have_text("Đã xong", timeout=60_000)
    assert page.locator("#batch-failed").inner_text() == "0"
    assert page.locator("#batch-remaining").inner_text() == "0"


def test_the_closing_season_in_a_browser(season, browser):
    world, database, stack, ministry, worker = season
    url = stack.url
    users, secrets = world.users, world.secrets
    pupils = 5
    codes = Codes()
    gallery = Gallery(
        screenshot_dir(),
        ("Mùa tổng kết năm học trong trình duyệt", "The closing season in a browser"),
    )
    print(f"\nscreenshots: {gallery.directory}/index.html")
    book = f"{url}{world.book}"

    problems: list[str] = []  # what the pages said went wrong: failed requests, script errors
    chromium = trusting_chromium(browser, stack.ca_file.parent / "server.pem")

    def context(**options):
        made = chromium.new_context(locale="vi-VN", **{"viewport": {"width": 1280, "height": 800}, **options})
        made.on(
            "console",
            lambda m: problems.append(f"{m.text} ({m.location.get('url')})") if m.type == "error" else None,
        )
        made.on("weberror", lambda e: problems.append(str(e.error)))
        made.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        return made

    # 1. The subject teacher fills the end-of-year levels and test scores of both subjects.
    teacher = context().new_page()
    log_in(teacher, url, users["subject_teacher"], codes=codes)
    for n, subject in enumerate(SUBJECTS):
        teacher.goto(f"{book}/{world.class_pk}/{subject}/?ky=end2")
        rows = teacher.locator("#gradebook tbody tr")
        assert rows.count() == pupils
        rows.nth(0).locator("input[name=level]").click()
        _fill_cells(teacher, [["T" if (i + n) % 2 else "H", str(10 - i), ""] for i in range(pupils)])
        for field in ("level", "test_score"):
            expect(teacher.locator(f"#gradebook td.{field}.saved")).to_have_count(pupils, timeout=30_000)
        assert teacher.locator("#save-status").inner_text().strip() in ("", "Đã lưu")
        if n == 0:
            gallery.shot(
                teacher,
                "giao-vien-bo-mon-nhap-diem",
                "Giáo viên bộ môn nhập mức đạt được và điểm kiểm tra cuối năm",
                "The subject teacher enters the year's levels and test scores",
            )
    teacher.reload()  # kept by the server: the values come back
    assert (
        teacher.locator("#gradebook tbody tr").nth(0).locator("input[name=test_score]").input_value() == "10"
    )
    teacher.context.close()

    # 2. The homeroom teacher (a second factor: they sign) fills qualities and competencies and a
    # comment for each pupil, then computes the year's results.
    homeroom = context().new_page()
    log_in(homeroom, url, users["homeroom_teacher"], codes=codes, secret=secrets["homeroom_teacher"])
    homeroom.goto(f"{book}/lop/{world.class_pk}/?ky=end2")
    assert homeroom.locator("#gradebook tbody tr").count() == pupils
    homeroom.locator("#gradebook tbody tr").nth(0).locator("td.q input").first.click()
    _fill_cells(
        homeroom,
        [
            [*[("T" if (i + q) % 3 else "Đ") for q in range(QUALITY_CELLS)], "Em chăm ngoan, tiến bộ.", ""]
            for i in range(pupils)
        ],
    )
    expect(homeroom.locator("#gradebook td.q.saved")).to_have_count(pupils * QUALITY_CELLS, timeout=60_000)
    expect(homeroom.locator("#gradebook td.homeroom_comment.saved")).to_have_count(pupils, timeout=30_000)
    homeroom.get_by_role("button", name="Tính kết quả cả năm").click()
    homeroom.wait_for_load_state()
    print("compute:", _messages(homeroom))
    assert homeroom.locator("td.missing").all_inner_texts() == [""] * pupils
    gallery.shot(
        homeroom,
        "giao-vien-chu-nhiem-hoan-thanh-so",
        "Giáo viên chủ nhiệm đánh giá phẩm chất, năng lực, ghi nhận xét và tính kết quả cả năm",
        "The homeroom teacher assesses qualities and competencies, comments and computes the year",
    )

    # 3. The principal logs in with two factors and approves the class's year.
    principal = context().new_page()
    log_in(principal, url, users["principal"], codes=codes, secret=secrets["principal"])
    principal.goto(f"{book}/lop/{world.class_pk}/?ky=end2")
    principal.get_by_role("button", name="Phê duyệt kết quả năm học").click()
    principal.wait_for_load_state()
    assert f"Đã phê duyệt kết quả năm học lớp {world.class_name} ({pupils} học sinh)." in _messages(principal)
    assert "sổ đã khóa" in principal.locator("p.notice").first.inner_text()
    gallery.shot(
        principal,
        "hieu-truong-phe-duyet",
        "Hiệu trưởng đăng nhập hai lớp xác thực và phê duyệt kết quả năm học của lớp",
        "The principal logs in with two factors and approves the class's year",
    )

    # 4. The homeroom teacher creates the records, confirms them and signs the class.
    homeroom.goto(f"{book}/ho-so/lop/{world.class_pk}/")
    homeroom.get_by_role("button", name="Tạo học bạ năm học").click()
    homeroom.wait_for_load_state()
    assert f"Đã tạo {pupils} học bạ năm học." in _messages(homeroom)
    homeroom.locator("form[action$='/xac-nhan/'] button").first.click()
    homeroom.wait_for_load_state()
    assert f"Đã xác nhận {pupils} học bạ." in _messages(homeroom)
    offer = homeroom.locator("section.signing-offer")
    assert f"Ký {pupils} hồ sơ của lớp" in offer.inner_text()
    offer.locator("button[type=submit]").click()
    homeroom.locator("input[name=pin]").fill(PIN)
    homeroom.click("#confirm-form button[type=submit]")
    _batch_done(homeroom, pupils)
    gallery.shot(
        homeroom,
        "giao-vien-chu-nhiem-ky",
        "Giáo viên chủ nhiệm xác nhận học bạ và ký cả lớp; tiến trình ký đã xong",
        "The homeroom teacher confirms the records and signs the class; the batch is done",
    )
    homeroom.context.close()

    # 5. The principal signs the whole school in one batch: the key's PIN and a fresh code.
    principal.goto(f"{url}/truong/{world.school_code}/ky-so/")
    section = principal.locator("section.card", has=principal.locator("input[name=step][value=principal]"))
    assert f"{pupils} hồ sơ" in section.inner_text()
    section.get_by_role("button", name=f"Ký {pupils} hồ sơ của toàn trường").click()
    principal.locator("input[name=pin]").fill(PIN)
    principal.locator("input[name=totp]").fill(codes.next(secrets["principal"]))
    principal.click("#confirm-form button[type=submit]")
    _batch_done(principal, pupils)
    gallery.shot(
        principal,
        "hieu-truong-ky-lo",
        "Hiệu trưởng ký cả trường trong một lô (mã PIN và mã xác thực); tiến trình ký đã xong",
        "The principal signs the whole school in one batch (PIN and authenticator code); done",
    )
    principal.context.close()

    # 6. The clerk seals: the school seal on every record, then the sealed PDFs.
    clerk = context().new_page()
    log_in(clerk, url, users["clerk"], codes=codes, secret=secrets["clerk"])
    clerk.goto(f"{url}/truong/{world.school_code}/ky-so/")
    section = clerk.locator("section.card", has=clerk.locator("input[name=step][value=seal]"))
    assert f"{pupils} hồ sơ" in section.inner_text()
    section.get_by_role("button", name=f"Ký {pupils} hồ sơ của toàn trường").click()
    clerk.locator("input[name=pin]").fill(PIN)
    clerk.click("#confirm-form button[type=submit]")
    _batch_done(clerk, pupils)
    gallery.shot(
        clerk,
        "van-thu-dong-dau",
        "Văn thư đóng dấu số của trường: học bạ được phát hành",
        "The clerk applies the school seal: the records are issued",
    )

    issued = season_records(database, world)
    # Issued, and queued for the Ministry by the seal (or already acknowledged).
    assert {r["status"] for r in issued} <= {"queued", "acknowledged"}, issued
    assert len(issued) == pupils
    record_ids = {r["record_id"] for r in issued}

    # 7. The relay, queued by the seal as in production, hands each record to the repository.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = ministry.state()
        if {m["record_id"] for m in state["messages"]} >= record_ids and all(
            m["status"] == "accepted" for m in state["messages"]
        ):
            break
        assert worker.alive(), worker.output()
        time.sleep(0.5)
    held = Counter((m["kind"], m["record_id"], m["version"]) for m in state["messages"])
    assert held == Counter({("submit", rid, 1): 1 for rid in record_ids}), (held, worker.output()[-3000:])
    assert {m["accepted_count"] for m in state["messages"]} == {1}
    # The school sees it too: each record of the class acknowledged by the Ministry.
    records_url = f"{book}/ho-so/lop/{world.class_pk}/"
    deadline = time.monotonic() + 60
    while True:
        clerk.goto(records_url)
        acknowledged = clerk.locator("span.badge.status-acknowledged").all_inner_texts()
        pdfs = clerk.locator("a[href$='/pdf/']")
        if (len(acknowledged), pdfs.count()) == (pupils, pupils) or time.monotonic() > deadline:
            break
        time.sleep(1)  # the relay stores the receipts right after the repository's answers
    assert acknowledged == ["Bộ đã tiếp nhận"] * pupils, clerk.inner_text("main")
    assert pdfs.count() == pupils, clerk.inner_text("main")  # the sealed PDFs, one a record
    gallery.shot(
        clerk,
        "bo-da-tiep-nhan",
        "Kho học bạ của Bộ nhận mỗi học bạ đúng một lần; nhà trường thấy trạng thái “Bộ đã tiếp nhận”",
        "The Ministry's repository holds each record exactly once; the school sees them acknowledged",
    )

    # 8. The division officer sees the school at 100 %.
    officer = context().new_page()
    log_in(officer, url, users["division_officer"], codes=codes)
    division_url = f"{url}/don-vi/{world.division_code}/"
    deadline = time.monotonic() + 60
    while True:
        officer.goto(division_url)
        row = officer.locator("table.progress-table tbody tr", has_text=world.school_name)
        cells = row.locator("td.num").all_inner_texts()
        if "100 %" in cells or time.monotonic() > deadline:
            break
        time.sleep(1)  # the acknowledgements reach the counters with the relay's own commit
    assert "Tỉ lệ hoàn thành theo trường" in officer.inner_text("main")
    assert "100 %" in cells, cells
    assert str(pupils) in cells
    gallery.shot(
        officer,
        "phong-giao-duc-100",
        "Cán bộ đơn vị quản lý thấy trường hoàn thành 100 %: Bộ đã tiếp nhận mọi học bạ",
        "The division officer sees the school at 100 %: the Ministry acknowledged every record",
    )
    officer.context.close()
    assert [r["status"] for r in season_records(database, world)] == ["acknowledged"] * pupils

    # 9. A parent scans the QR code of the PDF and opens the link, not logged in.
    first = issued[0]
    with clerk.expect_download() as download:
        clerk.locator(f"a[href$='/ho-so/{first['pk']}/pdf/']").click()  # the clerk prints it for the family
    pdf = download.value.path().read_bytes()
    assert pdf.startswith(b"%PDF")
    links = qr_links(pdf)
    assert links, "no QR code read on the PDF"
    link = links[0]
    assert re.match(rf"^{re.escape(url)}/tra-cuu/{re.escape(first['record_id'])}/v1/\?code=", link), link
    clerk.context.close()

    parent = context(viewport={"width": 412, "height": 915}, is_mobile=True, has_touch=True).new_page()
    parent.goto(link)
    main = parent.inner_text("main")
    assert "Còn hiệu lực: phiên bản này do nhà trường phát hành và đang có hiệu lực." in main
    assert main.count("Hợp lệ: chữ ký và chứng thư số đã được kiểm tra") == 3, main
    assert first["full_name"] in main
    # It fits the phone's screen: no sideways scrolling of the whole page (a wide table scrolls
    # in its own box).
    assert parent.evaluate("document.documentElement.scrollWidth") <= 412
    gallery.shot(
        parent,
        "phu-huynh-xac-minh",
        "Phụ huynh quét mã QR trên bản PDF: học bạ còn hiệu lực, ba chữ ký hợp lệ",
        "A parent scans the PDF's QR code: the record is in force, its three signatures valid",
    )
    parent.context.close()
    # No page refused a script or a style under the production CSP, no request failed. (The
    # portal has no favicon: chromium's own request for /favicon.ico answers 404, left aside.)
    assert [p for p in problems if "/favicon.ico" not in p] == [], problems
    chromium.close()
    print(f"screenshots: {gallery.directory}/index.html ({len(gallery.shots)} steps)")
