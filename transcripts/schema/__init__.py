"""The XML Schema of the year record (transcripts.document), one file per version of the format.

A published version is never edited: records signed against it must stay valid for decades
(domain.md §5). A change that old readers could not accept gets a new namespace and a new file.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

NAMESPACE = "urn:hocbaso:year-record:1.0"
XSD_PATH = Path(__file__).with_name("hocba-year-record-1.0.xsd")


@functools.cache
def year_record_schema() -> etree.XMLSchema:
    """The compiled XSD, built once per process (compiling costs a few milliseconds)."""
    # Our own file, but parsed as strictly as any other: no DTD, no network, no entities.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(XSD_PATH), parser))
