"""The year record's PDF: the Ministry's paper form (TT27 / TT22) as PDF/A-3b, the XML attached."""

from .marks import SignatureMark, signature_marks
from .render import (
    SEAL_BLOCK_ID,
    PageBox,
    RenderedPdf,
    attachment_name,
    qr_svg,
    year_record_html,
    year_record_pdf,
    year_record_pdf_rendered,
)

__all__ = [
    "SEAL_BLOCK_ID",
    "PageBox",
    "RenderedPdf",
    "SignatureMark",
    "attachment_name",
    "qr_svg",
    "signature_marks",
    "year_record_html",
    "year_record_pdf",
    "year_record_pdf_rendered",
]
