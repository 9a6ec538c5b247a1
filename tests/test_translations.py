"""Every user-facing string has its Vietnamese translation, and the compiled catalogue is current."""

from __future__ import annotations

import gettext
from pathlib import Path

import polib
import pytest

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = [ROOT / "locale" / "vi" / "LC_MESSAGES", ROOT / "locale_vendor" / "vi" / "LC_MESSAGES"]


@pytest.mark.parametrize("folder", CATALOGUES, ids=["ours", "allauth"])
def test_every_string_is_translated_into_vietnamese(folder):
    po = polib.pofile(str(folder / "django.po"))
    missing = [e.msgid for e in po if not e.obsolete and (not e.translated() or "fuzzy" in e.flags)]
    assert missing == []


@pytest.mark.parametrize("folder", CATALOGUES, ids=["ours", "allauth"])
def test_the_compiled_catalogue_matches_its_source(folder):
    po = polib.pofile(str(folder / "django.po"))
    with open(folder / "django.mo", "rb") as fh:
        mo = gettext.GNUTranslations(fh)
    stale = []
    for entry in po.translated_entries():
        key = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural:
            continue
        if mo._catalog.get(key) != entry.msgstr:
            stale.append(entry.msgid)
    assert stale == [], "run `make messages` and commit the .mo files"
