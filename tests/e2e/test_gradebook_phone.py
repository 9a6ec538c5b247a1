"""The grade book on a phone-sized screen (390 x 844), in a real browser."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.e2e.test_gradebook_browser import e2e_class  # noqa: F401 - the class fixture, shared

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser):
    context = browser.new_context(locale="vi-VN", viewport=PHONE, is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


def _open_book(phone, live_url, school, school_class):
    phone.goto(f"{live_url}/accounts/login/")
    phone.fill("input[name=login]", "subject_teacher")
    phone.fill("input[name=password]", PASSWORD)
    phone.click("button[type=submit]")
    phone.wait_for_url(f"{live_url}/")
    phone.goto(f"{live_url}/truong/{school.code}/so-diem/{school_class.pk}/toan/?hk=1")
    phone.wait_for_selector("#gradebook[data-ready]")


def test_on_a_phone_the_page_does_not_scroll_sideways_only_the_grade_book_does(
    live_url,
    phone,
    e2e_class,  # noqa: F811
):
    _open_book(phone, live_url, *e2e_class)

    page_width = phone.evaluate("document.scrollingElement.scrollWidth")
    book = phone.evaluate(
        "(() => { const t = document.getElementById('gradebook'); return [t.clientWidth, t.scrollWidth]; })()"
    )

    assert page_width <= PHONE["width"]
    assert book[0] <= PHONE["width"] < book[1]  # the columns go on past the screen, inside the box


def test_on_a_phone_the_students_number_and_name_stay_in_view_when_the_book_scrolls_sideways(
    live_url,
    phone,
    e2e_class,  # noqa: F811
):
    _open_book(phone, live_url, *e2e_class)
    first = phone.locator("#gradebook tbody tr").nth(0)
    name_before = first.locator("td.name").bounding_box()
    end_before = first.locator("td.end").bounding_box()

    phone.eval_on_selector("#gradebook", "t => { t.scrollLeft = t.scrollWidth; }")

    name_after = first.locator("td.name").bounding_box()
    end_after = first.locator("td.end").bounding_box()
    assert end_after["x"] < end_before["x"] - 50  # the scores moved...
    assert abs(name_after["x"] - name_before["x"]) < 2  # ...the name did not (borders collapse)
    assert first.locator("td.name").inner_text() == "Đinh Thị Ánh"
    assert name_after["x"] >= 0 and name_after["x"] + name_after["width"] < PHONE["width"]


def test_on_a_phone_a_cell_is_large_enough_to_tap_and_takes_a_score(live_url, phone, e2e_class):  # noqa: F811
    _open_book(phone, live_url, *e2e_class)
    cell = phone.locator("#gradebook tbody tr").nth(0).locator("input[name=mid]")

    box = cell.bounding_box()
    font = cell.evaluate("i => parseFloat(getComputedStyle(i).fontSize)")
    assert box["height"] >= 44 and box["width"] >= 44
    assert font >= 16  # smaller text makes a phone zoom in on focus

    cell.tap()
    phone.keyboard.type("7,5")
    phone.keyboard.press("Tab")
    phone.locator("#gradebook tbody tr").nth(0).locator("td.mid.saved").wait_for(timeout=10_000)


def test_on_a_phone_the_header_wraps_instead_of_pushing_the_page_sideways(live_url, phone, e2e_class):  # noqa: F811
    school, school_class = e2e_class
    _open_book(phone, live_url, school, school_class)

    for url in (f"{live_url}/", f"{live_url}/truong/{school.code}/so-diem/"):
        assert phone.goto(url).status == 200, url
        assert phone.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"], url
        sign_out = phone.locator("header.topbar button", has_text="Đăng xuất")
        box = sign_out.bounding_box()
        assert box["x"] + box["width"] <= PHONE["width"], url  # reachable without scrolling
