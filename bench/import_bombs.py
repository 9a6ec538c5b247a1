"""Peak memory and time of reading two hostile workbooks with the import's reader (issue 9, finding 9).

    .venv/bin/python bench/import_bombs.py

Builds, in a temporary folder, the two files of the finding: a ~300 KB workbook whose shared
string is 300 MB once inflated, and a ~4.4 MB workbook of 950,000 blank rows; and a third of
30,000 blank rows that passes the archive's size limits, so that the row limits are measured.
Each is read in a fresh child process by `schools.imports.workbook._workbook_read` (what an
upload runs before any query), and the child's peak RSS (from wait4) and wall time are printed,
with how the read ended (refused with which message, or read). No database is opened.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HEADER = ["ma_hoc_sinh", "ho_ten", "gioi_tinh", "ngay_sinh", "so_dinh_danh", "lop"]


def _base_workbook() -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "HocSinh"
    sheet.append(HEADER)
    sheet.append(["HS001", "Nguyễn Văn An", "Nam", "01/01/2014", "", "6A1"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _rewrite(base: bytes, target, members: dict[str, object]) -> None:
    """Copy the workbook into `target`, with `members` (name -> bytes, or a function yielding
    chunks, streamed) replacing or added to its own."""
    with (
        zipfile.ZipFile(io.BytesIO(base)) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out,
    ):
        for name in [i.filename for i in source.infolist() if i.filename not in members]:
            out.writestr(name, source.read(name))
        for name, content in members.items():
            if isinstance(content, bytes):
                out.writestr(name, content)
                continue
            with out.open(name, "w", force_zip64=True) as member:
                for chunk in content():  # type: ignore[operator]
                    member.write(chunk)


def shared_string_bomb(target, megabytes: int = 300) -> None:
    """The student's name cell points at one shared string of `megabytes` MB of 'A'."""
    base = _base_workbook()
    with zipfile.ZipFile(io.BytesIO(base)) as source:
        sheet = source.read("xl/worksheets/sheet1.xml").decode()
        rels = source.read("xl/_rels/workbook.xml.rels").decode()
        types = source.read("[Content_Types].xml").decode()
    sheet = re.sub(r'<c r="B2" t="inlineStr">.*?</c>', '<c r="B2" t="s"><v>0</v></c>', sheet)
    rels = rels.replace(
        "</Relationships>",
        '<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'sharedStrings" Target="sharedStrings.xml" Id="rId9"/></Relationships>',
    )
    types = types.replace(
        "</Types>",
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )

    def strings():
        yield (
            b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
            b' count="1" uniqueCount="1">'
            b"<si><t>"
        )
        block = b"A" * (1024 * 1024)
        for _ in range(megabytes):
            yield block
        yield b"</t></si></sst>"

    _rewrite(
        base,
        target,
        {
            "xl/worksheets/sheet1.xml": sheet.encode(),
            "xl/_rels/workbook.xml.rels": rels.encode(),
            "[Content_Types].xml": types.encode(),
            "xl/sharedStrings.xml": strings,
        },
    )


def blank_rows_bomb(target, rows: int = 950_000) -> None:
    """A HocSinh sheet with its header and then `rows` rows of sixteen empty cells (~4.4 MB)."""
    columns = "ABCDEFGHIJKLMNOP"

    def sheet():
        yield (
            b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            b'<row r="1">'
            + b"".join(
                f'<c r="{c}1" t="inlineStr"><is><t>{h}</t></is></c>'.encode()
                for c, h in zip(columns, HEADER, strict=False)
            )
            + b"</row>"
        )
        for number in range(2, rows + 2):
            yield (
                f'<row r="{number}">' + '<c t="inlineStr"><is><t></t></is></c>' * len(columns) + "</row>"
            ).encode()
        yield b"</sheetData></worksheet>"

    _rewrite(_base_workbook(), target, {"xl/worksheets/sheet1.xml": sheet})


def _read(path: str) -> None:
    """Child process: read the file as an upload would be read, say how it ended."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")  # the development settings; nothing is served
    import django

    django.setup()
    from django.utils import translation

    from schools.imports.workbook import SchoolImportError, _workbook_read

    data = Path(path).read_bytes()
    with translation.override("vi"):
        try:
            sheets = _workbook_read(data, Path(path).name)
        except SchoolImportError as exc:
            print("refused: " + "; ".join(str(p) for p in exc.problems)[:200])
        else:
            print("read: " + ", ".join(f"{s.name} {len(s.rows)} rows" for s in sheets.values()))


def _measure(path: Path) -> tuple[float, float, str]:
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, __file__, "--read", str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert child.stdout is not None
    output = child.stdout.read().strip()
    _pid, _status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    return usage.ru_maxrss / 1024, elapsed, output


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--read":
        _read(sys.argv[2])
        return
    with tempfile.TemporaryDirectory() as folder:
        files = {
            "baseline (a good two-row workbook)": Path(folder, "good.xlsx"),
            "300 MB shared string": Path(folder, "strings.xlsx"),
            "blank rows": Path(folder, "blank.xlsx"),
            "30,000 blank rows (under the size limits)": Path(folder, "blank-30k.xlsx"),
        }
        files["baseline (a good two-row workbook)"].write_bytes(_base_workbook())
        shared_string_bomb(files["300 MB shared string"])
        blank_rows_bomb(files["blank rows"])
        blank_rows_bomb(files["30,000 blank rows (under the size limits)"], rows=30_000)
        print(f"{'file':42} {'size':>9} {'peak RSS':>9} {'time':>7}  outcome")
        for label, path in files.items():
            rss, elapsed, output = _measure(path)
            size = path.stat().st_size / 1024
            print(f"{label:42} {size:7.0f}KB {rss:7.0f}MB {elapsed:6.2f}s  {output}")


if __name__ == "__main__":
    main()
