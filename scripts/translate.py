"""Fill Vietnamese translations into locale/vi from a Python file of dicts T (msgid -> msgstr) and
P (singular msgid -> [plural forms]); then run `manage.py compilemessages`. A development aid:
`python scripts/translate.py FILE`."""

import runpy
import sys

import polib

table = runpy.run_path(sys.argv[1])
po = polib.pofile("locale/vi/LC_MESSAGES/django.po")
filled = 0
for entry in po:
    if entry.obsolete or entry.translated():
        continue
    if entry.msgid_plural and entry.msgid in table.get("P", {}):
        entry.msgstr_plural = dict(enumerate(table["P"][entry.msgid]))
    elif not entry.msgid_plural and entry.msgid in table.get("T", {}):
        entry.msgstr = table["T"][entry.msgid]
    else:
        continue
    if "fuzzy" in entry.flags:
        entry.flags.remove("fuzzy")
    filled += 1
po.save()
missing = [e.msgid for e in po if not e.obsolete and not e.translated()]
print(f"filled {filled}; still missing {len(missing)}")
for msgid in missing:
    print("  ", repr(msgid))
