"""How pages and static files travel on a slow link: compressed, and static files cached for a year.

The production path (bench/gradebook_page.py measures it): WhiteNoise serves what collectstatic
made (hashed names, .gz and .br beside each file); GZipMiddleware compresses the pages.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.http import HttpResponseNotFound
from django.test import RequestFactory
from whitenoise.middleware import WhiteNoiseMiddleware

MANIFEST = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
ONE_YEAR_OR_MORE = 365 * 24 * 3600
# The admin's, the API's and the PDF fonts' files: 2 minutes of brotli, and nothing these tests read.
NOT_NEEDED_HERE = ["admin", "rest_framework", "drf_spectacular_sidecar", "fonts"]


@pytest.fixture
def collected(settings, tmp_path):
    """collectstatic as a deployment runs it, into a folder of this test; WhiteNoise over it."""
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = MANIFEST
    settings.WHITENOISE_USE_FINDERS = settings.WHITENOISE_AUTOREFRESH = False
    call_command("collectstatic", interactive=False, verbosity=0, ignore_patterns=NOT_NEEDED_HERE)
    return WhiteNoiseMiddleware(lambda request: pytest.fail(f"{request.path} reached Django"))


def _max_age(response) -> int:
    directives = dict(
        part.strip().partition("=")[::2] for part in response.headers["Cache-Control"].split(",")
    )
    return int(directives["max-age"])


def test_a_static_file_with_a_hashed_name_is_cached_for_a_year_as_immutable(collected):
    url = staticfiles_storage.url("css/portal.css")
    assert url != "/static/css/portal.css" and url.startswith("/static/css/portal.")

    response = collected(RequestFactory().get(url))

    assert response.status_code == 200
    assert _max_age(response) >= ONE_YEAR_OR_MORE
    assert "immutable" in response.headers["Cache-Control"]


def test_a_static_file_under_its_plain_name_is_cached_only_briefly(collected):
    response = collected(RequestFactory().get("/static/css/portal.css"))

    assert response.status_code == 200
    assert _max_age(response) <= 60
    assert "immutable" not in response.headers["Cache-Control"]


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_a_static_file_is_sent_compressed_to_a_browser_that_accepts_it(collected, encoding):
    url = staticfiles_storage.url("js/gradebook.js")
    plain = collected(RequestFactory().get(url))
    packed = collected(RequestFactory().get(url, HTTP_ACCEPT_ENCODING=f"{encoding}, deflate"))

    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == encoding
    assert int(packed.headers["Content-Length"]) < int(plain.headers["Content-Length"]) / 2
    assert "Accept-Encoding" in packed.headers["Vary"]


def test_the_grade_book_is_sent_gzipped_to_a_browser_that_accepts_it(
    client_as, subject_teacher, school, secondary_class
):
    client = client_as(subject_teacher)
    url = f"/truong/{school.code}/so-diem/{secondary_class.pk}/toan/?hk=1"

    plain = client.get(url)
    packed = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")

    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    page = gzip.decompress(packed.content).decode()
    assert 'id="gradebook"' in page and "</html>" in page
    assert len(packed.content) < len(plain.content) / 3


def test_two_compressed_answers_of_the_same_page_differ_in_length_and_token(
    client_as, subject_teacher, school, secondary_class
):
    """BREACH: Django pads each gzipped response with random bytes and masks the CSRF token anew,
    so an attacker who reflects guesses cannot read the secret off the compressed length."""
    client = client_as(subject_teacher)
    url = f"/truong/{school.code}/so-diem/{secondary_class.pk}/toan/?hk=1"

    answers = [client.get(url, HTTP_ACCEPT_ENCODING="gzip") for _i in range(6)]

    assert len({len(a.content) for a in answers}) > 1
    tokens = set()
    for answer in answers:
        page = gzip.decompress(answer.content).decode()
        start = page.index('name="csrfmiddlewaretoken" value="') + len('name="csrfmiddlewaretoken" value="')
        tokens.add(page[start : page.index('"', start)])
    assert len(tokens) == len(answers)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../config/settings.py",
        "/static/%2e%2e/config/settings.py",
        "/static/css/portal.css%00.txt",
        "/static/css/portal.css\x00",
        "/static/staticfiles.json/../../manage.py",
    ],
)
def test_a_hostile_static_path_is_answered_404_by_the_portal_not_a_file_or_a_500(client, path):
    response = client.get(path)

    assert response.status_code in (400, 404)
    assert b"SECRET_KEY" not in response.content and b"DJANGO_SETTINGS_MODULE" not in response.content


@pytest.mark.parametrize(
    "path",
    ["/static/../config/settings.py", "/static/css/portal.css\x00", "/static/css/../../manage.py"],
)
def test_after_collectstatic_a_hostile_static_path_is_no_file_it_serves(settings, tmp_path, path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = MANIFEST
    settings.WHITENOISE_USE_FINDERS = settings.WHITENOISE_AUTOREFRESH = False
    call_command("collectstatic", interactive=False, verbosity=0, ignore_patterns=NOT_NEEDED_HERE)
    passed_on = []
    middleware = WhiteNoiseMiddleware(
        lambda request: passed_on.append(request.path) or HttpResponseNotFound()
    )

    response = middleware(RequestFactory().get(path))

    assert response.status_code == 404
    assert passed_on  # not a file of WhiteNoise's: Django answers (its 404, or RefuseNul's 400)


def test_every_static_file_a_template_names_exists():
    """In production a missing one is a 500 on every page that names it (the manifest has no entry
    for it), while the tests, without collectstatic, would render the plain name without a word."""
    named = set()
    for folder in django_settings.TEMPLATES[0]["DIRS"]:
        for template in Path(folder).rglob("*.html"):
            named |= set(re.findall(r"""{% static ['"]([^'"]+)['"]""", template.read_text(encoding="utf-8")))

    assert {"css/portal.css", "js/gradebook.js"} <= named
    assert [name for name in sorted(named) if not finders.find(name)] == []


def test_after_collectstatic_the_grade_book_links_the_hashed_files_it_is_served(
    collected, client_as, subject_teacher, school, secondary_class
):
    page = client_as(subject_teacher).get(f"/truong/{school.code}/so-diem/{secondary_class.pk}/toan/?hk=1")

    assert page.status_code == 200
    linked = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.content.decode())
    assert any(re.fullmatch(r"/static/css/portal\.[0-9a-f]{12}\.css", url) for url in linked), linked
    assert any(re.fullmatch(r"/static/js/gradebook\.[0-9a-f]{12}\.js", url) for url in linked), linked
    for url in linked:
        assert collected(RequestFactory().get(url)).status_code == 200, url
