"""The year record's PDF: the Ministry's paper form (TT27 / TT22) as PDF/A-3b, the XML attached."""

from .render import attachment_name, qr_svg, year_record_html, year_record_pdf

__all__ = ["attachment_name", "qr_svg", "year_record_html", "year_record_pdf"]
