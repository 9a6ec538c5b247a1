"""The year record PDF's face for the apps above (design.md §2): what signing needs to seal it.

A seal batch (signing.services.pdfs) renders and stores a record's PDF through
`year_record_pdf_render(record_id=..., seal=...)` (transcripts.records.pdf), its `seal` callable
signing the `RenderedPdf` (the bytes and the seal's block) and answering a `SealedPdf`.
"""

from transcripts.records.pdf import SealedPdf, Sealer, year_record_pdf_render

from .render import PageBox, RenderedPdf

__all__ = ["PageBox", "RenderedPdf", "SealedPdf", "Sealer", "year_record_pdf_render"]
