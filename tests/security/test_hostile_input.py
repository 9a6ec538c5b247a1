"""500-hunting: every page and form of the portal, fed hostile values, answers < 500.

The routes are listed from the URLconfs (config.urls and config.urls_school, as
tests/portal/test_tenant_isolation.py does), so a page added later is walked without a new test.
Each route is requested as the users who work with it, by GET with hostile query parameters and
by POST with hostile form fields: NUL bytes, 10,000 characters, other alphabets' digits (٧, ７,
١٠), negative and huge numbers, ids such as "1; DROP" and "../../", fields missing, fields given
twice. No answer may be a 500; a refused request (4xx) must leave the database as it was (every
change of a score, a record, a grant or a signature writes an audit row, so the audit tables are
the witnesses).

A 500 that comes from code this suite's author does not own is marked xfail(strict=True) with the
reproducing request, so that its owner sees the mark flip when it is fixed.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import URLPattern, URLResolver

import config.urls
import config.urls_school

# --- Hostile values --------------------------------------------------------------------------------

LONG = "7" * 10_000
HOSTILE_VALUES = [
    "\x00",
    "7\x00",
    LONG,
    "٧",  # Arabic-Indic seven
    "١٠",  # Arabic-Indic ten
    "７",  # full-width seven
    "-1",
    "-99999999999999999999",
    "1; DROP TABLE schools_student;--",
    "../../etc/passwd",
    "' OR '1'='1",
    '=HYPERLINK("http://evil.example")',
    "",
]

# Every form field name the portal's views and forms read (grep request.POST/GET and the forms).
FIELDS = [
    "action",
    "back",
    "certificate",
    "class_id",
    "code",
    "credential_id",
    "enrolment",
    "field",
    "file",
    "hk",
    "issued_record",
    "key_label",
    "ky",
    "language",
    "locked",
    "next",
    "otp",
    "period",
    "pin",
    "reason",
    "record_id",
    "step",
    "term",
    "token_label",
    "totp",
    "value",
    "version",
    # The admin's forms.
    "username",
    "email",
    "full_name",
    "password1",
    "password2",
    "is_active",
    "role",
    "school",
    "division",
    "user",
    "valid_until",
    "data_access",
    "is_manager",
    "name",
    "levels",
    "address",
    "q",
    "o",
    "p",
    "_selected_action",
    "index",
]

# The values a form's "action"/"step"/"field" take, so that the hostile values reach the branch.
CHOICES = {
    "action": ["pkcs12", "pkcs11", "csc", "remove"],
    "field": ["mid", "end", "regular_1", "conduct", "comment", "absences", "level", "pc1", "toan"],
    "step": ["homeroom", "principal", "seal"],
}


def _payloads(*, choices: bool) -> list[tuple[str, dict]]:
    """(name, form data): nothing at all; every hostile value in every field at once (and, for
    forms, once per choice of the selecting fields); every field given twice."""
    payloads: list[tuple[str, dict]] = [("missing fields", {})]
    for value in HOSTILE_VALUES:
        payloads.append((f"{value[:20]!r} everywhere", {name: value for name in FIELDS}))
        if not choices:
            continue
        # Two rounds of choices keep the walk short; "everywhere" above covers the rest.
        for i in range(2):
            data = {name: value for name in FIELDS}
            for name, options in CHOICES.items():
                data[name] = options[i % len(options)]
            payloads.append((f"{value[:20]!r} with {data['action']}/{data['field']}/{data['step']}", data))
    payloads.append(("every field twice", {name: ["1", "2"] for name in FIELDS}))
    return payloads


PAYLOADS = {"get": _payloads(choices=False), "post": _payloads(choices=True)}

# --- The routes ------------------------------------------------------------------------------------

# Public URLconf: allauth's pages (its own forms, tested upstream) and the admin (a separate walk
# below, on its forms) are not walked as routes; the school pages are walked from urls_school.
SKIPPED_PUBLIC = ("accounts/", "admin/", "truong/")


def _routes(patterns, prefix: str = "") -> list[str]:
    routes = []
    for p in patterns:
        if isinstance(p, URLResolver):
            routes += _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            routes.append(prefix + str(p.pattern))
    return routes


PUBLIC_ROUTES = [
    r for r in _routes(config.urls.urlpatterns) if not r.startswith(SKIPPED_PUBLIC) and "<path:" not in r
]
SCHOOL_ROUTES = _routes(config.urls_school.urlpatterns)

# Who works with each school page (the first matching prefix): the subject teacher their grade
# book, the homeroom teacher the class pages and records, the principal approvals, locks and
# signing, the school administrator the data and the seal.
SCHOOL_PERSONAS = [
    ("so-diem/<int:class_id>/", ["subject_teacher"]),
    ("so-diem/lop/", ["homeroom_teacher", "principal"]),
    ("so-diem/ho-so/", ["homeroom_teacher", "principal"]),
    ("du-lieu/", ["school_admin"]),
    ("ky-so/con-dau/", ["school_admin"]),
    ("ky-so/", ["homeroom_teacher", "principal"]),
    ("", ["principal"]),
]


def _personas_for(route: str) -> list[str]:
    return next(names for prefix, names in SCHOOL_PERSONAS if route.startswith(prefix))


# 500s that come from code this suite's owner does not own: (persona, route) -> reason. Each
# reason carries the reproducing request; the strict xfail flips when the owner fixes it.
KNOWN_500: dict[tuple[str, str], str] = {}


def _fill(route: str, ids: dict[str, str], hostile: str | None = None) -> str:
    """The route with real ids for its arguments (so the view reaches its form), or `hostile`
    in every string argument."""
    while "<" in route:
        start = route.index("<")
        end = route.index(">", start)
        converter, name = route[start + 1 : end].split(":")
        value = ids.get(name, "1")
        if hostile is not None and converter == "str":
            value = hostile
        route = route[:start] + value + route[end + 1 :]
    return route


@pytest.fixture
def ids(school) -> dict[str, str]:
    """Real ids of the test school's book for the URL arguments."""
    from schools.models import Enrolment, SchoolClass, Term

    connection.set_tenant(school)
    school_class = SchoolClass.objects.get(name="8A")
    enrolment = Enrolment.objects.filter(school_class=school_class).first()
    term = Term.objects.order_by("pk").first()
    connection.set_schema_to_public()
    return {
        "school_code": school.code,
        "class_id": str(school_class.pk),
        "subject_code": "toan",
        "term_id": str(term.pk),
        "student_id": str(enrolment.student_id),
        "record_pk": "1",
        "batch_pk": "1",
        "code": "t-div-a",
        "record_id": "t-th-a.CS001.2025-2026",
        "version": "1",
    }


def _witnesses(school) -> tuple[int, ...]:
    """What changes when anything is written: the audit tables, public and the school's."""
    from portal.models import AuditEntry
    from transcripts.models import AssessmentChange

    connection.set_schema_to_public()
    counts = [AuditEntry.objects.count()]
    connection.set_tenant(school)
    counts.append(AssessmentChange.objects.count())
    connection.set_schema_to_public()
    return tuple(counts)


def _walk(client, school, url: str, methods=("get", "post")) -> list[str]:
    """Every payload on one URL; the failures, described as reproducing requests."""
    failures = []
    before = _witnesses(school)
    for method in methods:
        for name, data in PAYLOADS[method]:
            try:
                response = getattr(client, method)(url, data, HTTP_ACCEPT_LANGUAGE="vi")
            except Exception as exc:  # a 500 raised through the test client
                failures.append(f"{method.upper()} {url} [{name}]: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            status = response.status_code
            if status >= 500:
                failures.append(f"{method.upper()} {url} [{name}]: {status}")
            elif status >= 400:
                if _witnesses(school) != before:
                    failures.append(f"{method.upper()} {url} [{name}]: refused ({status}) but wrote")
            elif method == "post":
                before = _witnesses(school)  # an accepted write moves the baseline
    return failures


def _cases():
    cases = []
    for route in SCHOOL_ROUTES:
        for persona_name in _personas_for(route):
            marks = []
            reason = KNOWN_500.get((persona_name, route))
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            cases.append(pytest.param(persona_name, route, marks=marks, id=f"{persona_name}-{route}"))
    return cases


@pytest.mark.parametrize(("persona_name", "route"), _cases())
def test_no_school_page_answers_500_to_hostile_values(client_as, persona, school, ids, persona_name, route):
    client = client_as(persona(persona_name))
    url = f"/truong/{school.code}/" + _fill(route, ids)
    failures = _walk(client, school, url)
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("route", [r for r in SCHOOL_ROUTES if "<str:" in r])
@pytest.mark.parametrize("hostile", ["\x00", "x" * 10_000, "../..", "toan'--", "٧", "１"])
def test_no_school_page_answers_500_to_a_hostile_path_argument(
    client_as, principal, school, ids, route, hostile
):
    client = client_as(principal)
    url = f"/truong/{school.code}/" + _fill(route, ids, hostile=hostile)
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        assert response.status_code < 500, (method, url[:200], response.status_code)


@pytest.mark.parametrize("route", PUBLIC_ROUTES)
@pytest.mark.parametrize("persona_name", ["anonymous", "department_admin", "division_manager"])
def test_no_public_page_answers_500_to_hostile_values(
    client, client_as, persona, school, ids, route, persona_name
):
    if persona_name != "anonymous":
        client = client_as(persona(persona_name))
    url = "/" + _fill(route, ids)
    failures = _walk(client, school, url)
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("route", [r for r in PUBLIC_ROUTES if "<str:" in r])
@pytest.mark.parametrize("hostile", ["\x00", "x" * 10_000, "..", "a'--", "٧"])
def test_no_public_page_answers_500_to_a_hostile_path_argument(client, school, ids, route, hostile):
    url = "/" + _fill(route, ids, hostile=hostile)
    response = client.get(url)
    assert response.status_code < 500, (url[:200], response.status_code)


@pytest.mark.parametrize(
    "path",
    [
        "/truong/t-th-a\x00/",
        "/truong/t-th-a%00/",
        "/truong/" + "a" * 10_000 + "/",
        "/truong/T-TH-A'--/",
        "/truong/../../etc/passwd/",
        "/don-vi/t-div-a\x00/",
        "/tra-cuu/t-th-a.CS001\x00.2025-2026/v1/",
    ],
)
def test_a_hostile_school_or_division_code_in_the_path_is_a_4xx(client_as, principal, path):
    response = client_as(principal).get(path)
    assert response.status_code in (400, 404), (path[:80], response.status_code)


def test_a_nul_in_the_school_code_is_refused_with_the_vietnamese_page(client_as, principal):
    response = client_as(principal).get("/truong/t-th-a%00/")

    assert response.status_code == 400
    assert "Yêu cầu bị từ chối: có ký tự rỗng (NUL) trong địa chỉ trang." in response.content.decode()


def test_a_school_code_the_model_cannot_hold_is_no_school_and_costs_no_query(
    client_as, principal, django_assert_max_num_queries
):
    client = client_as(principal)
    with django_assert_max_num_queries(0):
        from django.test import RequestFactory

        from portal.middleware import SchoolRouteMiddleware

        request = RequestFactory().get("/truong/" + "a" * 64 + "/")
        with pytest.raises(Exception) as raised:
            SchoolRouteMiddleware(lambda r: None)(request)
    assert type(raised.value).__name__ == "Http404"
    assert client.get("/truong/" + "a" * 64 + "/").status_code == 404


@pytest.mark.parametrize(
    ("where", "request_kwargs", "message"),
    [
        ("query", {"path": "/", "data": {"q": "a\x00"}}, "tham số của địa chỉ"),
        ("query key", {"path": "/", "data": {"a\x00": "1"}}, "tham số của địa chỉ"),
        ("cookie", {"path": "/", "cookie": "abc\x00def"}, "cookie của trình duyệt"),
    ],
)
def test_a_nul_anywhere_in_the_request_is_a_400_that_says_where(client, where, request_kwargs, message):
    if "cookie" in request_kwargs:
        client.cookies["sessionid"] = request_kwargs["cookie"]
        response = client.get(request_kwargs["path"])
    else:
        response = client.get(request_kwargs["path"], request_kwargs["data"])

    assert response.status_code == 400
    assert f"Yêu cầu bị từ chối: có ký tự rỗng (NUL) trong {message}." in response.content.decode()


def test_a_nul_in_a_form_field_is_a_400_and_writes_nothing(client_as, homeroom_teacher, school, ids):
    before = _witnesses(school)
    response = client_as(homeroom_teacher).post(
        f"/truong/{school.code}/so-diem/lop/{ids['class_id']}/o/",
        {"enrolment": "1", "field": "comment", "value": "Chăm ngoan\x00"},
    )

    assert response.status_code == 400
    assert "Yêu cầu bị từ chối: có ký tự rỗng (NUL) trong dữ liệu biểu mẫu." in response.content.decode()
    assert _witnesses(school) == before


# --- The admin's forms -----------------------------------------------------------------------------

ADMIN_FORMS = [
    "/admin/portal/user/add/",
    "/admin/portal/user/{user}/change/",
    "/admin/portal/user/{user}/password/",
    "/admin/portal/roleassignment/add/",
    "/admin/portal/school/add/",
    "/admin/portal/school/{school}/change/",
    "/admin/portal/user/",
    "/admin/portal/roleassignment/",
    "/admin/portal/auditentry/",
]


@pytest.mark.parametrize("path", ADMIN_FORMS)
@pytest.mark.parametrize("persona_name", ["department_admin", "school_admin"])
def test_no_admin_form_answers_500_to_hostile_values(client_as, persona, school, path, persona_name):
    from portal.models import User

    client = client_as(persona(persona_name))
    url = path.format(user=User.objects.get(username="subject_teacher").pk, school=school.pk)
    failures = _walk(client, school, url)
    assert not failures, "\n".join(failures[:20])
