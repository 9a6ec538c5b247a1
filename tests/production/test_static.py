"""Static files with DEBUG off, as production serves them: collectstatic's hashed names, .gz/.br,
WhiteNoise from gunicorn, a year's immutable cache (issue 16: with debug off the stylesheet was a
404)."""

from __future__ import annotations

import re

import pytest

ONE_YEAR = 365 * 24 * 3600


@pytest.fixture(scope="module")
def assets(stack) -> list[str]:
    """The stylesheets and scripts the login page links to."""
    with stack.client() as client:
        page = client.get("/accounts/login/").text
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', page)


def _max_age(cache_control: str) -> int:
    return int(re.search(r"max-age=(\d+)", cache_control).group(1))


def test_the_page_links_hashed_names(assets):
    assert {"css", "js"} <= {url.rsplit(".", 1)[-1] for url in assets}
    for url in assets:
        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", url), url


def test_a_hashed_static_file_is_served_immutable_for_a_year(stack, assets):
    with stack.client() as client:
        for url in assets:
            response = client.get(url, headers={"Accept-Encoding": "identity"})
            assert response.status_code == 200, url
            assert "immutable" in response.headers["Cache-Control"]
            assert _max_age(response.headers["Cache-Control"]) >= ONE_YEAR
            assert response.headers["Content-Type"].split(";")[0] in {"text/css", "text/javascript"}


@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_a_static_file_is_sent_compressed(stack, assets, encoding):
    url = next(url for url in assets if url.endswith(".css"))
    with stack.client() as client:
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        packed = client.get(url, headers={"Accept-Encoding": encoding})

    assert packed.headers["Content-Encoding"] == encoding
    assert int(packed.headers["Content-Length"]) < int(plain.headers["Content-Length"]) / 2
    assert packed.content == plain.content  # httpx decoded it: the same file


def test_an_unknown_static_file_is_a_404(stack):
    with stack.client() as client:
        assert client.get("/static/css/khong-co.css").status_code == 404
        assert client.get("/static/css/portal.0123456789ab.css").status_code == 404
