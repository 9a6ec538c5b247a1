"""The first-time guides (issue 14, "teachers new to signing"): who sees which, dismissing and
reopening them, what they cost, and the public page "What is a digital signature?"."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.template import Context, Template, TemplateSyntaxError
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from portal.guides import GUIDES
from portal.models import GuideDismissal
from portal.models_guides import GUIDE_CODE_PATTERN
from portal.services_guides import guide_dismiss, guide_reopen
from tests.transcripts import test_year_close, test_year_records
from transcripts.records.services import year_record_confirm

# An approved 8A (two students promoted, two waiting for August), and its two records.
complete_class = test_year_close.complete_class
approved_class = test_year_records.approved_class
records = test_year_records.records
signed = test_year_records.signed


def school_url(school, path: str) -> str:
    return f"/truong/{school.code}/{path}"


def class_records_url(school, school_class) -> str:
    return school_url(school, f"so-diem/ho-so/lop/{school_class.pk}/")


def gradebook_url(school, school_class, subject: str) -> str:
    return school_url(school, f"so-diem/{school_class.pk}/{subject}/")


def guides_on(response) -> set[str]:
    """The guides shown in full on a page (not the reopen buttons)."""
    return set(re.findall(r'<section class="guide" id="guide-([a-z_]+)"', response.content.decode()))


def reopen_buttons_on(response) -> set[str]:
    return set(re.findall(r'<form [^>]*class="guide-reopen" id="guide-([a-z_]+)"', response.content.decode()))


@pytest.fixture
def confirmed(homeroom_teacher, school, records):
    """8A's two records confirmed: the homeroom teacher's signature is the next step."""
    connection.set_tenant(school)
    done = [year_record_confirm(actor=homeroom_teacher, school=school, record=r) for r in records]
    connection.set_schema_to_public()
    return done


# Who sees which guide ---------------------------------------------------------------------------


def test_the_subject_teacher_sees_the_grade_book_guide_on_the_subject_they_enter(
    client_as, subject_teacher, school, secondary_class
):
    page = client_as(subject_teacher).get(gradebook_url(school, secondary_class, "toan"))
    assert page.status_code == 200
    assert guides_on(page) == {"open_gradebook"}
    index = client_as(subject_teacher).get(school_url(school, "so-diem/"))
    assert guides_on(index) == {"open_gradebook"}


def test_a_reader_of_a_grade_book_sees_no_guide_to_entering_scores(
    client_as, homeroom_teacher, subject_teacher, school, secondary_class
):
    # The homeroom teacher reads 8A's Toán (the subject teacher enters it).
    page = client_as(homeroom_teacher).get(gradebook_url(school, secondary_class, "toan"))
    assert page.status_code == 200
    assert guides_on(page) == set()


def test_the_homeroom_teacher_meets_the_confirm_guide_where_records_wait_for_confirmation(
    client_as, homeroom_teacher, principal, school, approved_class, records
):
    school_class, _ = approved_class
    page = client_as(homeroom_teacher).get(class_records_url(school, school_class))
    assert page.status_code == 200
    assert "confirm_class" in guides_on(page)
    # The principal opens the same page but confirms nothing: no guide about confirming.
    leader = client_as(principal).get(class_records_url(school, school_class))
    assert leader.status_code == 200
    assert "confirm_class" not in guides_on(leader)


def test_the_signing_guide_shows_to_whoever_signs_next_and_the_seal_guide_to_no_teacher(
    client_as, homeroom_teacher, principal, subject_teacher, school, approved_class, confirmed
):
    school_class, _ = approved_class
    teacher = client_as(homeroom_teacher).get(class_records_url(school, school_class))
    assert guides_on(teacher) == {"sign_batch"}
    # Nothing waits for the principal's signature yet: no signing guide for them.
    leader = client_as(principal).get(class_records_url(school, school_class))
    assert leader.status_code == 200
    assert guides_on(leader) == set()
    # The subject teacher signs nothing and seals nothing, on the school's signing page either.
    signing_page = client_as(subject_teacher).get(school_url(school, "ky-so/"))
    assert signing_page.status_code == 200
    assert guides_on(signing_page) == set()


def test_once_the_homeroom_teacher_has_signed_the_signing_guide_moves_to_the_principal(
    client_as, homeroom_teacher, principal, school_admin, school, approved_class, signed
):
    school_class, _ = approved_class
    assert guides_on(client_as(principal).get(class_records_url(school, school_class))) == {"sign_batch"}
    # The teacher's other record still waits for confirmation; nothing waits for their signature.
    assert guides_on(client_as(homeroom_teacher).get(class_records_url(school, school_class))) == {
        "confirm_class"
    }
    # The seal comes after the principal: nothing for the school office yet.
    office = client_as(school_admin).get(class_records_url(school, school_class))
    assert office.status_code == 200
    assert guides_on(office) == set()


def test_the_seal_guide_shows_on_the_seal_page_to_the_school_office(client_as, school_admin, school):
    page = client_as(school_admin).get(school_url(school, "ky-so/con-dau/"))
    assert page.status_code == 200
    assert guides_on(page) == {"seal"}


def test_the_certificate_guide_shows_where_a_signer_registers_a_certificate(client_as, homeroom_teacher):
    page = client_as(homeroom_teacher).get("/chu-ky-so/")
    assert page.status_code == 200
    assert guides_on(page) == {"register_certificate"}


# Dismissed, reopened, per user ------------------------------------------------------------------


def test_a_dismissed_guide_is_gone_on_the_next_load_and_comes_back_when_reopened(
    client_as, subject_teacher, school, secondary_class
):
    client = client_as(subject_teacher)
    url = gradebook_url(school, secondary_class, "toan")
    dismissed = client.post("/huong-dan/open_gradebook/an/", {"next": url})
    assert dismissed.status_code == 302
    assert dismissed["Location"] == f"{url}#guide-open_gradebook"
    page = client.get(url)
    assert guides_on(page) == set()
    assert reopen_buttons_on(page) == {"open_gradebook"}  # the small "Guide" button stays

    reopened = client.post("/huong-dan/open_gradebook/mo-lai/", {"next": url})
    assert reopened.status_code == 302
    assert reopened["Location"] == f"{url}#guide-open_gradebook"
    assert guides_on(client.get(url)) == {"open_gradebook"}
    assert not GuideDismissal.objects.filter(user=subject_teacher).exists()


def test_one_users_dismissal_hides_the_guide_from_nobody_else(client_as, homeroom_teacher, principal):
    guide_dismiss(user=homeroom_teacher, code="register_certificate")
    assert guides_on(client_as(homeroom_teacher).get("/chu-ky-so/")) == set()
    assert guides_on(client_as(principal).get("/chu-ky-so/")) == {"register_certificate"}


def test_dismissing_twice_keeps_one_row_and_reopening_a_shown_guide_does_nothing(homeroom_teacher):
    guide_dismiss(user=homeroom_teacher, code="sign_batch")
    guide_dismiss(user=homeroom_teacher, code="sign_batch")
    assert GuideDismissal.objects.filter(user=homeroom_teacher, code="sign_batch").count() == 1
    guide_reopen(user=homeroom_teacher, code="sign_batch")
    guide_reopen(user=homeroom_teacher, code="sign_batch")
    assert not GuideDismissal.objects.filter(user=homeroom_teacher).exists()


# The buttons refuse what they should ------------------------------------------------------------


def test_the_dismiss_button_is_protected_against_cross_site_posts(subject_teacher):
    client = Client(enforce_csrf_checks=True)
    client.force_login(subject_teacher)
    refused = client.post("/huong-dan/sign_batch/an/", {"next": "/"})
    assert refused.status_code == 403
    assert not GuideDismissal.objects.filter(user=subject_teacher).exists()


def test_the_dismiss_form_on_a_page_carries_the_pages_token_and_works_with_it(subject_teacher):
    client = Client(enforce_csrf_checks=True)
    client.force_login(subject_teacher)
    page = client.get("/chu-ky-so/")
    form = re.search(
        r'action="/huong-dan/register_certificate/an/".*?name="csrfmiddlewaretoken" value="([^"]+)"',
        page.content.decode(),
        re.S,
    )
    assert form is not None
    done = client.post(
        "/huong-dan/register_certificate/an/", {"csrfmiddlewaretoken": form[1], "next": "/chu-ky-so/"}
    )
    assert done.status_code == 302
    assert GuideDismissal.objects.filter(user=subject_teacher, code="register_certificate").exists()


@pytest.mark.parametrize("code", ["no_such_guide", "SIGN_BATCH", "sign-batch", "x" * 300, "%3Cscript%3E"])
def test_an_unknown_guide_code_is_not_found_and_nothing_is_stored(client_as, homeroom_teacher, code):
    for action in ("an", "mo-lai"):
        answer = client_as(homeroom_teacher).post(f"/huong-dan/{code}/{action}/", {"next": "/"})
        assert answer.status_code == 404
    assert not GuideDismissal.objects.filter(user=homeroom_teacher).exists()


def test_the_buttons_answer_only_posts_and_only_to_a_signed_in_user(client, client_as, homeroom_teacher):
    assert client_as(homeroom_teacher).get("/huong-dan/sign_batch/an/").status_code == 405
    client.logout()
    anonymous = client.post("/huong-dan/sign_batch/an/", {"next": "/"})
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert not GuideDismissal.objects.exists()


# What a guide costs --------------------------------------------------------------------------------


def render_guides(user, names: tuple[str, ...]) -> tuple[str, int]:
    """Render `names` guides for `user` in one template; the page and its number of queries."""
    request = RequestFactory().get("/somewhere/")
    request.user = user
    template = Template("{% load guides %}" + "".join(f'{{% guide "{name}" %}}' for name in names))
    with CaptureQueriesContext(connection) as queries:
        html = template.render(Context({"request": request, "csrf_token": "t" * 64}))
    # Each statement follows django-tenants' SET search_path (docs/architecture.md): not counted.
    return html, len([q for q in queries if not q["sql"].startswith("SET search_path")])


def test_every_guide_of_a_page_costs_one_query_together_and_none_for_a_visitor(homeroom_teacher):
    from django.contrib.auth.models import AnonymousUser

    guide_dismiss(user=homeroom_teacher, code="seal")
    html, count = render_guides(homeroom_teacher, ("sign_batch", "seal", "confirm_class", "sign_batch"))
    assert count == 1
    assert html.count('<section class="guide"') == 2  # sign_batch once (not twice), confirm_class
    assert 'class="guide-reopen" id="guide-seal"' in html
    html, count = render_guides(AnonymousUser(), ("sign_batch", "seal"))
    assert (html.strip(), count) == ("", 0)


def test_a_real_page_with_guides_reads_the_dismissals_once(
    client_as, homeroom_teacher, school, approved_class, confirmed
):
    school_class, _ = approved_class
    client = client_as(homeroom_teacher)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(class_records_url(school, school_class))
    assert guides_on(page) == {"sign_batch"}
    assert len([q for q in queries if "portal_guidedismissal" in q["sql"]]) == 1


def test_a_guide_is_not_shown_when_the_page_says_the_user_does_not_meet_the_step(homeroom_teacher):
    request = RequestFactory().get("/")
    request.user = homeroom_teacher
    html = Template('{% load guides %}{% guide "seal" when=can_seal %}').render(
        Context({"request": request, "can_seal": False})
    )
    assert html == ""


def test_a_template_naming_no_guide_fails_loudly(homeroom_teacher):
    request = RequestFactory().get("/")
    request.user = homeroom_teacher
    with pytest.raises(TemplateSyntaxError):
        Template('{% load guides %}{% guide "no_such_guide" %}').render(Context({"request": request}))


def test_every_guide_has_a_code_the_database_accepts_and_something_on_each_side(db):
    for code, guide in GUIDES.items():
        assert re.fullmatch(GUIDE_CODE_PATTERN, code)
        assert guide.code == code and guide.title and guide.happens and guide.irreversible


def test_every_guide_reads_in_vietnamese(homeroom_teacher):
    with translation.override("vi"):
        html, _ = render_guides(homeroom_teacher, tuple(GUIDES))
    assert "Đã hiểu, ẩn hướng dẫn" in html
    assert "Chữ ký số là gì?" in html
    with translation.override("en"):
        english = {
            str(p) for guide in GUIDES.values() for p in (guide.title, *guide.happens, *guide.irreversible)
        }
    with translation.override("vi"):
        vietnamese = {
            str(p) for guide in GUIDES.values() for p in (guide.title, *guide.happens, *guide.irreversible)
        }
    assert not english & vietnamese  # every sentence translated


# The public page -----------------------------------------------------------------------------------


def test_the_signature_page_answers_a_parent_without_login_in_vietnamese(client):
    page = client.get("/huong-dan/chu-ky-so/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Chữ ký số là gì?" in text
    assert "Giáo viên chủ nhiệm" in text and "Hiệu trưởng" in text and "Con dấu của trường" in text
    assert 'href="/tra-cuu/"' in text  # how a parent checks


def test_the_verification_page_links_to_the_signature_page(client):
    page = client.get("/tra-cuu/")
    assert page.status_code == 200
    assert 'href="/huong-dan/chu-ky-so/"' in page.content.decode()


def test_a_guide_links_to_the_signature_page(client_as, homeroom_teacher):
    page = client_as(homeroom_teacher).get("/chu-ky-so/")
    assert 'href="/huong-dan/chu-ky-so/"' in page.content.decode()
