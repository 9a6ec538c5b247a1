"""Draw docs/images/pdf-signature-marks.png: the signature marks of a sealed year record PDF.

    .venv/bin/python scripts/pdf_marks_image.py [--out docs/images/pdf-signature-marks.png]

A sample secondary record (tests/transcripts/test_document.py) is signed for real by its homeroom
teacher, its principal and its school seal (XAdES, keys of a throw-away development CA, timestamps
of the reference TSA started for the occasion), rendered (transcripts.pdf) and sealed as a PDF
(signing.pades.pdf_seal, PAdES with its stamp on the seal's block). Then poppler's pdftoppm draws
page 1 (the seal's stamp beside the principal's mark) and the last page (the homeroom teacher's
and the principal's marks), each cropped to its signature blocks as WeasyPrint laid them out, and
the two crops are stacked into one image. Nothing is stored in a database.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HOCBA_TESTING", "1")

import django  # noqa: E402

django.setup()

from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402
from django.conf import settings  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from weasyprint import HTML  # noqa: E402

from signing import ca, timestamps, trust  # noqa: E402
from signing.pades import pdf_seal  # noqa: E402
from signing.profile import sign_year_record  # noqa: E402
from tests.reference.tsa import TsaService  # noqa: E402
from tests.transcripts.test_document import secondary_record  # noqa: E402
from transcripts.document import year_record_xml  # noqa: E402
from transcripts.pdf import signature_marks, year_record_html, year_record_pdf_rendered  # noqa: E402
from transcripts.pdf.render import FONT_DIR, PX_TO_PT  # noqa: E402

DPI = 110
MARGIN_PT = 6


def signature_tables(html: str) -> dict[int, tuple[float, float]]:
    """{page index: (top, bottom)} in PDF points from the page's top, of its table.signatures boxes."""
    document = HTML(string=html, base_url=FONT_DIR.as_uri() + "/").render()
    found: dict[int, tuple[float, float]] = {}
    for index, page in enumerate(document.pages):
        for box in page._page_box.descendants():
            element = getattr(box, "element", None)
            if element is None or element.tag != "table" or "signatures" not in element.get("class", ""):
                continue
            if "::" in box.element_tag:
                continue
            top, bottom = box.border_box_y() * PX_TO_PT, (box.border_box_y() + box.border_height()) * PX_TO_PT
            low, high = found.get(index, (top, bottom))
            found[index] = (min(low, top), max(high, bottom))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "pdf-signature-marks.png")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pdf-marks-"))
    authority = ca.dev_ca("Học bạ số (minh họa)")
    (work / "roots.pem").write_bytes(authority.root_cert.public_bytes(Encoding.PEM))
    (work / "crl.pem").write_bytes(ca.issue_crl(authority).public_bytes(Encoding.PEM))
    tsa = TsaService(work / "tsa")
    try:
        settings.HOCBA_TRUST_ROOTS = [str(work / "roots.pem")]
        settings.HOCBA_TRUST_CRLS = [str(work / "crl.pem"), tsa.crl_url]
        settings.HOCBA_TSA_URL, settings.HOCBA_TSA_TRUST_ROOTS = tsa.url, [str(tsa.roots_file)]
        trust.trust_reset()
        timestamps.timestamper_reset()
        record = secondary_record()
        signers = {
            "homeroom_teacher": ca.issue_person(
                authority, common_name=record.signers.homeroom_teacher, title="Giáo viên chủ nhiệm"
            ),
            "principal": ca.issue_person(
                authority, common_name=record.signers.principal, title="Phó Hiệu trưởng"
            ),
            "seal": ca.issue_organisation(authority, name=record.issuer.school_name, province="Lào Cai"),
        }
        xml = year_record_xml(record)
        for role, issued in signers.items():
            xml = sign_year_record(
                xml,
                key=issued.key,
                cert=issued.cert,
                chain=issued.chain,
                role=role,
                timestamper=timestamps.timestamper(),
            )
        verify_url = "https://hocba.example.vn/tra-cuu/"
        rendered = year_record_pdf_rendered(record, xml=xml, verify_url=verify_url)
        seal = signers["seal"]
        pdf = pdf_seal(
            rendered.pdf,
            key=seal.key,
            cert=seal.cert,
            chain=seal.chain,
            signer_name=record.issuer.school_name,
            signer_title=record.issuer.school_name,
            field_box=rendered.seal_box,
        )
        (work / "sealed.pdf").write_bytes(pdf)
        tables = signature_tables(year_record_html(record, verify_url=verify_url, marks=signature_marks(xml)))
        last = max(tables)
        crops = []
        for index in (0, last):
            prefix = work / f"page-{index}"
            subprocess.run(
                [
                    "pdftoppm",
                    "-f",
                    str(index + 1),
                    "-l",
                    str(index + 1),
                    "-r",
                    str(DPI),
                    "-png",
                    "-singlefile",
                    work / "sealed.pdf",
                    prefix,
                ],
                check=True,
            )
            image = Image.open(f"{prefix}.png").convert("RGB")
            scale = DPI / 72
            top, bottom = tables[index]
            crops.append(
                image.crop(
                    (
                        int(40 * scale),
                        int((top - MARGIN_PT) * scale),
                        int(image.width - 30 * scale),
                        int((bottom + MARGIN_PT) * scale),
                    )
                )
            )
        gap = 12
        width = max(c.width for c in crops)
        sheet = Image.new("RGB", (width, sum(c.height for c in crops) + gap), "white")
        sheet.paste(crops[0], (0, 0))
        ImageDraw.Draw(sheet).line(
            [(0, crops[0].height + gap // 2), (width, crops[0].height + gap // 2)],
            fill=(170, 170, 170),
            width=1,
        )
        sheet.paste(crops[1], (0, crops[0].height + gap))
        options.out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(options.out, optimize=True)
        size = f"{sheet.width}x{sheet.height}"
        print(f"{options.out} ({size}): page 1 and page {last + 1} of {work / 'sealed.pdf'}")
    finally:
        tsa.stop()


if __name__ == "__main__":
    main()
