"""The supervision permission matrix (issue 12): who sees which dashboard, and named data only with
the data-access grant, logged.

- department staff see every division, the direct schools and every school's supervision page;
- a division officer sees its own division and its schools only: 404 elsewhere (another
  division's page, its schools' pages, their exports, the department's pages);
- school staff who supervise nothing get 404 on every supervision page, their own school's too;
- anonymous visitors are sent to log in;
- the way into a school's own pages is offered only to a holder of the data-access grant, and
  every page opened that way writes an AuditEntry (SCHOOL_DATA_VIEWED); without the grant the
  school's pages answer 403 (a supervisor of the school) or 404 (anyone else), as before.
"""

from __future__ import annotations

import pytest

from portal.choices import AuditAction, Role
from portal.models import AuditEntry, RoleAssignment, User
from portal.models_progress import SchoolProgress

SCHOOL = "t-th-a"  # under t-div-a
OTHER = "t-thcs-b"  # under t-div-b
DIRECT = "t-thpt-c"  # directly under the department

ALLOWED = 200
HIDDEN = 404

PAGES = {
    "department": "/so/",
    "department_export": "/so/?format=xlsx",
    "direct": "/so/truc-thuoc/",
    "direct_export": "/so/truc-thuoc/?format=xlsx",
    "division_a": "/don-vi/t-div-a/",
    "division_a_export": "/don-vi/t-div-a/?format=xlsx",
    "division_b": "/don-vi/t-div-b/",
    "division_b_export": "/don-vi/t-div-b/?format=xlsx",
    "school_a": f"/giam-sat/truong/{SCHOOL}/",
    "school_b": f"/giam-sat/truong/{OTHER}/",
    "school_direct": f"/giam-sat/truong/{DIRECT}/",
}

# persona: the pages it may open (every other page answers 404).
MATRIX = {
    "department_admin": set(PAGES),
    "department_officer": set(PAGES),
    "division_manager": {"division_a", "division_a_export", "school_a"},
    "division_officer": {"division_a", "division_a_export", "school_a"},
    "other_division_officer": {"division_b", "division_b_export", "school_b"},
    "school_admin": set(),
    "principal": set(),
    "homeroom_teacher": set(),
    "subject_teacher": set(),
    "teacher_of_another_school": set(),
}


@pytest.fixture
def figures(school, other_school, direct_school):
    for s in (school, other_school, direct_school):
        # update: the session's test school has its row already (written as its book was built).
        SchoolProgress.objects.update_or_create(
            school=s,
            school_year="2025-2026",
            defaults={"students": 10, "records_acknowledged": 4, "rejections": {"schema": 1}},
        )


@pytest.mark.parametrize("persona_name", sorted(MATRIX))
@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_supervision_matrix(client_as, persona, figures, persona_name, page):
    expected = ALLOWED if page in MATRIX[persona_name] else HIDDEN
    assert client_as(persona(persona_name)).get(PAGES[page]).status_code == expected


@pytest.mark.parametrize("page", sorted(PAGES))
def test_anonymous_visitors_are_sent_to_log_in(client, db, page):
    response = client.get(PAGES[page])
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_an_unknown_school_or_division_answers_404(client_as, department_officer):
    client = client_as(department_officer)
    assert client.get("/giam-sat/truong/khong-co/").status_code == 404
    assert client.get("/don-vi/khong-co/").status_code == 404


def test_a_division_officer_sees_no_other_division_in_its_figures(client_as, division_officer, figures):
    response = client_as(division_officer).get(PAGES["division_a"])
    assert [row.key for row in response.context["rows"]] == [SCHOOL]
    page = response.content.decode()
    assert OTHER not in page and DIRECT not in page


def test_the_pages_show_no_named_student(client_as, department_officer, figures):
    from tests.conftest import STUDENTS

    client = client_as(department_officer)
    for url in PAGES.values():
        if "format" in url:
            continue
        page = client.get(url).content.decode()
        assert not any(name in page for name, _sex in STUDENTS), url


# --- Named data: only with the grant, one click away, logged ----------------------------------


def _grantee(division) -> User:
    """A division officer of t-div-a holding the data-access grant."""
    user = User.objects.create_user(username="phong.duocxem", full_name="Đinh Được Xem", password="x")
    RoleAssignment.objects.create(user=user, role=Role.DIVISION_OFFICER, division=division, data_access=True)
    return user


def test_with_the_grant_the_school_page_leads_to_the_schools_records_and_the_visit_is_logged(
    client_as, division_a, figures, school
):
    client = client_as(_grantee(division_a))
    page = client.get(PAGES["school_a"]).content.decode()
    link = f'href="/truong/{SCHOOL}/so-diem/"'
    assert link in page
    before = AuditEntry.objects.filter(action=AuditAction.SCHOOL_DATA_VIEWED, school=school).count()
    assert client.get(f"/truong/{SCHOOL}/so-diem/").status_code == 200
    entry = AuditEntry.objects.filter(action=AuditAction.SCHOOL_DATA_VIEWED, school=school).latest("id")
    assert (
        AuditEntry.objects.filter(action=AuditAction.SCHOOL_DATA_VIEWED, school=school).count() == before + 1
    )
    assert entry.actor.username == "phong.duocxem"
    assert entry.division_id == division_a.pk
    assert f"/truong/{SCHOOL}/so-diem/" in entry.summary


def test_department_staff_with_the_grant_get_the_link_on_every_school(client_as, department_officer, figures):
    client = client_as(department_officer)
    for code in (SCHOOL, OTHER, DIRECT):
        assert f'href="/truong/{code}/so-diem/"' in client.get(f"/giam-sat/truong/{code}/").content.decode()
    assert client.get(f"/truong/{DIRECT}/").status_code == 200
    assert AuditEntry.objects.filter(
        action=AuditAction.SCHOOL_DATA_VIEWED, actor=department_officer, school__code=DIRECT
    ).exists()


@pytest.mark.parametrize("persona_name", ["department_admin", "division_officer", "division_manager"])
def test_without_the_grant_there_is_no_link_and_the_schools_pages_stay_closed(
    client_as, persona, figures, persona_name
):
    client = client_as(persona(persona_name))
    response = client.get(PAGES["school_a"], HTTP_ACCEPT_LANGUAGE="vi")
    page = response.content.decode()
    assert response.context["can_open"] is False
    assert f'href="/truong/{SCHOOL}/' not in page
    assert "quyền xem dữ liệu" in page and "quản trị viên của Sở" in page
    logged = AuditEntry.objects.filter(action=AuditAction.SCHOOL_DATA_VIEWED).count()
    assert client.get(f"/truong/{SCHOOL}/so-diem/").status_code == 403
    assert client.get(f"/truong/{SCHOOL}/").status_code == 403
    assert AuditEntry.objects.filter(action=AuditAction.SCHOOL_DATA_VIEWED).count() == logged


def test_another_divisions_officer_cannot_reach_the_school_either_way(
    client_as, other_division_officer, figures
):
    client = client_as(other_division_officer)
    assert client.get(PAGES["school_a"]).status_code == 404
    assert client.get(f"/truong/{SCHOOL}/so-diem/").status_code == 404


def test_the_schools_own_staff_open_their_pages_without_an_audit_entry(client_as, principal, school):
    client = client_as(principal)
    assert client.get(f"/truong/{SCHOOL}/").status_code == 200
    assert not AuditEntry.objects.filter(action=AuditAction.SCHOOL_DATA_VIEWED, actor=principal).exists()


def test_names_are_escaped_in_the_tables_and_the_charts(client_as, department_officer, figures, school):
    from portal.models import School

    School.objects.filter(pk=school.pk).update(name='<script>alert("x")</script>')
    client = client_as(department_officer)
    for url in (PAGES["division_a"], PAGES["school_a"]):
        page = client.get(url).content.decode()
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert" in page
