"""The year record as the Ministry's paper form: a PDF/A-3b with the record's XML attached.

Pure: no database. The snapshot (transcripts.document.YearRecord) is laid out on the primary (TT27)
or secondary (TT22) form by a Django template and printed by WeasyPrint, with:

- the Noto Serif font shipped in static/fonts (full Vietnamese coverage), loaded by @font-face from
  a file:// URL so that the PDF embeds it (a subset) and reads the same everywhere;
- the form's stylesheet (templates/transcripts/pdf/year_record.css) parsed once per process and
  thread with its fonts (one WeasyPrint FontConfiguration, `_printer`), given to every render with
  a user-agent stylesheet pruned of what the forms never use (`user_agent_stylesheet_text`): only
  the record's own HTML is parsed each time (the issue 15 target: 5 two-page records per second
  per core; what each step costs is in docs/benchmarks.md, "Year record rendering");
- the XML given (the signed document) embedded as an associated file with relationship /Source,
  so the PDF carries the bytes that the signatures cover and the verifier can check them;
- a QR code of the verification URL, drawn as inline SVG (vector, sharp at any zoom): one path,
  a stroke along each run of dark modules in a row;
- in the homeroom teacher's and the principal's blocks, the visible mark of their signatures
  ("Ký bởi", title, "Thời gian ký"), read from the XAdES signatures of the XML given
  (transcripts.pdf.marks);
- the seal's block (id "seal-block"), left empty: the seal's PAdES signature draws its stamp there
  (signing.pades). `year_record_pdf_rendered` returns the block's rectangle as laid out by
  WeasyPrint (the block's box among the page's layout boxes, CSS px turned into PDF points from
  the page's lower left corner), so the stamp lands exactly on it whatever the form's length.

Same record, same XML, same URL → the same bytes: every date written in the PDF (document info,
XMP metadata, the attachment's dates) is the record's date of issue, not the time of rendering,
and WeasyPrint's file identifier is a hash of the content.

The PDF's streams are deflated at zlib's default level 6, not pydyf's 9 (`_deflate_streams`):
level 9 cost about 30 ms a record for a file no smaller (46.2 KiB at 6, 46.3 at 9).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import threading
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path

import pydyf
import qrcode
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from weasyprint import CSS, HTML, Attachment
from weasyprint import html as weasyprint_html
from weasyprint.css.counters import CounterStyle
from weasyprint.text.fonts import FontConfiguration

from transcripts.document import PrimaryPart, SecondaryPart, YearRecord

from .marks import SignatureMark, signature_marks

FONT_DIR = Path(settings.BASE_DIR) / "static" / "fonts"
BASE_URL = FONT_DIR.as_uri() + "/"  # of every render: the stylesheet's font URLs are relative to it
STYLESHEET = Path(settings.BASE_DIR) / "templates" / "transcripts" / "pdf" / "year_record.css"
DEFLATE_LEVEL = 6  # zlib's default; pydyf deflates at 9
# A rule of WeasyPrint's user-agent stylesheet for a pseudo-element of every element, on its own
# line ("::marker { ... }", "::footnote-call { ... }", the notes' three).
UNIVERSAL_PSEUDO_RULE = re.compile(r"^::[a-z-]+ \{[^{}]*\}$", re.M)
TEMPLATES = {"primary": "transcripts/pdf/primary.html", "secondary": "transcripts/pdf/secondary.html"}

# Word forms of the codes the record stores (the form's wording).
PRIMARY_RESULTS = {
    "HTXS": "Hoàn thành xuất sắc",
    "HTT": "Hoàn thành tốt",
    "HT": "Hoàn thành",
    "CHT": "Chưa hoàn thành",
}
RATINGS = {"T": "Tốt", "K": "Khá", "Đ": "Đạt", "CĐ": "Chưa đạt"}
TITLES = {"xuat_sac": "Học sinh Xuất sắc", "gioi": "Học sinh Giỏi"}
LEVEL_NAMES = {
    "primary": "tiểu học",
    "lower_secondary": "trung học cơ sở",
    "upper_secondary": "trung học phổ thông",
    "continuing": "trung học",
}
LAST_GRADE = {"primary": 5, "lower_secondary": 9, "upper_secondary": 12}
SEX = {0: "", 1: "Nam", 2: "Nữ"}
SEAL_BLOCK_ID = "seal-block"  # the seal's block in the templates, where its stamp goes
PX_TO_PT = 0.75  # WeasyPrint lays out in CSS px (1/96 in); PDF user space is in points (1/72 in)

# A rectangle on a page: (page index, x1, y1, x2, y2) in PDF points from the lower left corner.
PageBox = tuple[int, float, float, float, float]


@dataclass(frozen=True)
class RenderedPdf:
    """The PDF and where its seal's block is (None when the form has none)."""

    pdf: bytes
    seal_box: PageBox | None


def attachment_name(record: YearRecord) -> str:
    """The embedded XML's file name: "<record id>-v<version>.xml"."""
    return f"{record.record_id}-v{record.version}.xml"


def qr_svg(data: str) -> SafeString:
    """`data` as a QR code (error correction M, no quiet zone), an inline <svg> sized by CSS: one
    path, a line one module thick along each run of dark modules in a row (two path commands a
    run: WeasyPrint parses and draws a path command by command, a module a square was 5 × ~850)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    size = len(matrix)
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < size and row[x]:
                x += 1
            runs.append(f"M{start} {y}.5h{x - start}")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}">'
        f'<path d="{"".join(runs)}" fill="none" stroke="#000" stroke-width="1"/></svg>'
    )
    return mark_safe(svg)  # noqa: S308 (numbers only: the QR code's modules)


def _date_line(place: str, day: dt.date) -> str:
    return f"{place}, ngày {day.day} tháng {day.month} năm {day.year}"


def _title_lines(title: str) -> list[str]:
    """The principal's title as printed above the signature: ["KT. HIỆU TRƯỞNG", "PHÓ HIỆU TRƯỞNG"]."""
    return [part.strip().upper() for part in title.split("/") if part.strip()]


def _primary_context(record: YearRecord, part: PrimaryPart) -> dict:
    if record.grade == LAST_GRADE["primary"] and part.completed_primary is not None:
        completion = (
            "Hoàn thành chương trình tiểu học"
            if part.completed_primary
            else "Chưa hoàn thành chương trình tiểu học"
        )
    else:
        done = "Hoàn thành" if part.completed_grade else "Chưa hoàn thành"
        completion = f"{done} chương trình lớp {record.grade}"
    return {
        "result": PRIMARY_RESULTS.get(part.result, part.result),
        "completion": completion,
        "quality_comments": [row.comment for row in part.qualities if row.comment],
        "competency_comments": [
            row.comment for row in (*part.general_competencies, *part.specific_competencies) if row.comment
        ],
        "competency_rows": len(part.general_competencies) + len(part.specific_competencies) + 2,
    }


def _secondary_context(record: YearRecord, part: SecondaryPart) -> dict:
    next_grade = record.grade + 1
    promotion = {"promoted": "", "after": "", "repeat": ""}
    if not part.promoted:
        promotion["repeat"] = f"Ở lại lớp {record.grade}"
    elif record.grade != LAST_GRADE.get(record.level):
        key = "promoted" if part.outcome == "promoted" else "after"
        promotion[key] = f"Lên lớp {next_grade}"
    completion = ""
    if part.completed_level is not None:
        completion = "Hoàn thành" if part.completed_level else "Không hoàn thành"

    def rating(code: str | None) -> str:
        return RATINGS.get(code, code) if code else ""

    terms = [
        ("Học kì I", rating(part.conduct.term1), rating(part.learning.term1)),
        ("Học kì II", rating(part.conduct.term2), rating(part.learning.term2)),
        ("Cả năm", rating(part.conduct.year), rating(part.learning.year)),
    ]
    awards = [TITLES.get(part.title, part.title)] if part.title else []
    awards += list(part.awards)
    return {
        "terms": terms,
        "reassessed_conduct": rating(part.conduct.after_reassessment),
        "reassessed_learning": rating(part.learning.after_reassessment),
        "promotion": promotion,
        "completion": completion,
        "certificates": "; ".join(c.name for c in part.certificates),
        "certificate_grades": "; ".join(c.grade for c in part.certificates if c.grade),
        "awards": "; ".join(awards),
    }


def user_agent_stylesheet_text() -> str:
    """WeasyPrint's HTML5 user-agent stylesheet less its rules for a pseudo-element of every
    element (::marker, ::footnote-call, ::footnote-marker, ::note-call, ::note-marker,
    ::note-callback). WeasyPrint computes a style for each of them on every element, six times the
    ~260 elements of a form, for boxes it never makes: the forms have no list item, no footnote and
    no note. With them gone the PDF is byte for byte the same, its cascade a third cheaper."""
    return UNIVERSAL_PSEUDO_RULE.sub("", weasyprint_html.UA)


@dataclass(frozen=True)
class _Printer:
    """What every render reuses: the fonts (loaded into fontconfig and Pango once, with Pango's
    caches of shaped glyphs), the form's stylesheet and the user agent's, parsed once."""

    font_config: FontConfiguration
    stylesheet: CSS
    user_agent: CSS


class _FormHTML(HTML):
    """A form's HTML, printed with the printer's user-agent stylesheet (WeasyPrint's own tests
    change it the same way, overriding `_ua_stylesheets`)."""

    def __init__(self, *, string: str, printer: _Printer) -> None:
        super().__init__(string=string, base_url=BASE_URL)
        self._printer = printer

    def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:
        return [self._printer.user_agent]


_printers = threading.local()  # WeasyPrint's font configuration is not meant to be shared by threads


def _printer() -> _Printer:
    printer = getattr(_printers, "printer", None)
    if printer is None:
        font_config = FontConfiguration()
        printer = _printers.printer = _Printer(
            font_config=font_config,
            stylesheet=CSS(filename=str(STYLESHEET), base_url=BASE_URL, font_config=font_config),
            # Its @counter-style rules go to a throwaway set: every document starts from
            # WeasyPrint's own copy of them (HTML._ua_counter_style), as before.
            user_agent=CSS(string=user_agent_stylesheet_text(), counter_style=CounterStyle()),
        )
        # WeasyPrint copies the fonts to a temporary folder for fontconfig and removes it when the
        # configuration is collected, which a process's own never is: removed at exit too (not
        # when the process ends by os._exit, as a Celery prefork child does: 1.8 MB in /tmp).
        folder = getattr(font_config, "_folder", None)
        if folder is not None:
            weakref.finalize(font_config, shutil.rmtree, folder, True)
    return printer


def _deflate_streams(_document, pdf: pydyf.PDF) -> None:
    """Deflate the PDF's streams at DEFLATE_LEVEL before pydyf writes them (a WeasyPrint finisher):
    each stream still to be compressed gets its bytes compressed here and is written as it is. A
    stream of another shape (a later pydyf) is left to pydyf."""
    to_bytes = getattr(pydyf, "_to_bytes", None)  # how pydyf joins a stream's parts (pydyf 0.11-0.13)
    if to_bytes is None:
        return
    for item in pdf.objects:
        if not isinstance(item, pydyf.Stream) or not item.compress or "Filter" in item.extra:
            continue
        raw = b"\n".join(to_bytes(part) for part in item.stream)
        item.stream = [zlib.compress(raw, DEFLATE_LEVEL)]
        item.extra["Filter"] = "/FlateDecode"
        item.compress = False


def _context(
    record: YearRecord,
    *,
    verify_url: str,
    verification_code: str,
    marks: dict[str, SignatureMark] | None,
) -> dict:
    part = record.part
    student = record.student
    context = {
        "record": record,
        "part": part,
        "student": student,
        "sex": SEX.get(student.sex, ""),
        "level_name": LEVEL_NAMES.get(record.level, ""),
        "date_line": _date_line(record.issuer.place_of_issue, record.issued_on),
        "principal_title": _title_lines(record.signers.principal_title),
        "qr": qr_svg(verify_url),
        "verify_url": verify_url,
        "verification_code": verification_code,
        "issued_iso": record.issued_on.isoformat(),
        "level_code": "THCS" if record.level == "lower_secondary" else "THPT",
        "marks": marks or {},
        "seal_block_id": SEAL_BLOCK_ID,
    }
    if isinstance(part, PrimaryPart):
        context.update(_primary_context(record, part))
    else:
        context.update(_secondary_context(record, part))
    return context


def _template(record: YearRecord) -> str:
    return TEMPLATES["primary" if isinstance(record.part, PrimaryPart) else "secondary"]


def year_record_html(
    record: YearRecord,
    *,
    verify_url: str,
    verification_code: str = "",
    marks: dict[str, SignatureMark] | None = None,
) -> str:
    """The record laid out on its form, as a standalone HTML document (its stylesheet inlined; print
    it with base URL BASE_URL); the code printed by the QR; `marks`: the signers' visible marks by
    role, transcripts.pdf.marks.signature_marks. The PDF is printed from the same HTML without the
    inlined stylesheet, given to WeasyPrint parsed."""
    context = _context(record, verify_url=verify_url, verification_code=verification_code, marks=marks)
    context["stylesheet"] = mark_safe(STYLESHEET.read_text(encoding="utf-8"))  # noqa: S308 (our file)
    return render_to_string(_template(record), context)


def _element_box(document, element_id: str) -> PageBox | None:
    """The border box of the element with this id on the first page it is laid out on."""
    for index, page in enumerate(document.pages):
        for box in page._page_box.descendants():
            element = getattr(box, "element", None)
            if element is None or element.get("id") != element_id or "::" in box.element_tag:
                continue
            x, y = box.border_box_x(), box.border_box_y()
            width, height = box.border_width(), box.border_height()
            return (
                index,
                round(x * PX_TO_PT, 2),
                round((page.height - y - height) * PX_TO_PT, 2),
                round((x + width) * PX_TO_PT, 2),
                round((page.height - y) * PX_TO_PT, 2),
            )
    return None


def year_record_pdf_rendered(
    record: YearRecord, *, xml: bytes, verify_url: str, verification_code: str = ""
) -> RenderedPdf:
    """The record's PDF/A-3b (its form, A4, the `xml` embedded as "<record id>-v<version>.xml",
    the signers' marks read from `xml`) and the rectangle of its seal's block."""
    context = _context(
        record, verify_url=verify_url, verification_code=verification_code, marks=signature_marks(xml)
    )
    html = render_to_string(_template(record), context)
    issued = dt.datetime.combine(record.issued_on, dt.time(), tzinfo=dt.UTC)
    attachment = Attachment(
        string=xml,
        name=attachment_name(record),
        description=f"Học bạ số {record.record_id}, phiên bản {record.version} (XML)",
        created=issued,
        modified=issued,
        relationship="Source",
    )
    printer = _printer()
    document = _FormHTML(string=html, printer=printer).render(
        font_config=printer.font_config, stylesheets=[printer.stylesheet]
    )
    pdf = document.write_pdf(
        pdf_variant="pdf/a-3b",
        attachments=[attachment],
        custom_metadata=True,
        finisher=_deflate_streams,
    )
    return RenderedPdf(pdf=pdf, seal_box=_element_box(document, SEAL_BLOCK_ID))


def year_record_pdf(record: YearRecord, *, xml: bytes, verify_url: str, verification_code: str = "") -> bytes:
    """The record's PDF/A-3b: its form, A4, the `xml` embedded as "<record id>-v<version>.xml"."""
    return year_record_pdf_rendered(
        record, xml=xml, verify_url=verify_url, verification_code=verification_code
    ).pdf
