"""Nothing inline in the templates a browser sees: the Content-Security-Policy (script-src and
style-src 'self', no 'unsafe-inline') would refuse it (docs/operations.md, "Production deployment").

A fast guard beside the browser check on the production stack (tests/production/test_browser_csp.py):
every template of ours, and every third-party one we render, is read for inline handlers, style
attributes, <style> blocks, inline <script> bodies and javascript: links. The PDF templates
(WeasyPrint, never a browser) are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.template import engines

ROOT = Path(__file__).resolve().parents[2]
NOT_FOR_A_BROWSER = ("transcripts/pdf/",)

INLINE = {
    "an inline event handler": re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.DOTALL),
    "a style attribute": re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.DOTALL),
    "a <style> block": re.compile(r"<style[\s>]", re.IGNORECASE),
    "an inline <script>": re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.IGNORECASE
    ),
    "a javascript: link": re.compile(r"javascript:", re.IGNORECASE),
}


COMMENTS = re.compile(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}", re.DOTALL)


def _inline(text: str) -> list[str]:
    """What inline code a template holds (its template comments left out)."""
    text = COMMENTS.sub("", text)
    return [what for what, pattern in INLINE.items() if pattern.search(text)]


def _our_templates() -> list[Path]:
    found = sorted((ROOT / "templates").rglob("*.html"))
    for app in ("portal", "schools", "transcripts", "signing", "registry"):
        found += sorted((ROOT / app / "templates").rglob("*.html"))
    return [path for path in found if not any(part in str(path) for part in NOT_FOR_A_BROWSER)]


@pytest.mark.parametrize("path", _our_templates(), ids=lambda path: str(path.relative_to(ROOT)))
def test_our_templates_have_nothing_inline(path):
    found = _inline(path.read_text())
    assert found == [], f"{path.relative_to(ROOT)}: {', '.join(found)}"


@pytest.mark.parametrize(
    "name",
    [
        "base.html",
        "admin/index.html",  # django-tenants ships one with a <style> block
        "admin/app_list.html",
        "drf_spectacular/swagger_ui.html",  # drf-spectacular's has an inline script and style
        "account/login.html",
        "mfa/authenticate.html",
    ],
)
def test_the_templates_the_portal_renders_are_the_clean_ones(name):
    """The template found under each name (ours first, then the apps') is the one without inline
    code, not a third-party copy that would shadow ours."""
    origin = Path(engines["django"].engine.get_template(name).origin.name)
    assert _inline(origin.read_text()) == [], str(origin)
