"""The year record as a document: snapshot dataclasses, canonical XML, and parsing it back.

Pure code, no ORM: the services take the snapshot from the database, this package turns it into
the bytes that are signed, stored, embedded in the PDF and sent to the Ministry (design.md §4).

The document
------------
::

    <hocba xmlns="urn:hocbaso:year-record:1.0">
      <thongtinhocba Id="HB-<madinhdanhhocba>-v<phienban>">   the content: header, identity,
        ...                                                   study history line, tieuhoc or
      </thongtinhocba>                                        trunghoc, expected signers
      <chuky>                                                 signatures, in signing order
        <ds:Signature Id="...">  homeroom teacher: refs #HB-... (+ its XAdES SignedProperties)
        <ds:Signature Id="...">  principal:        refs #HB-..., the first signature
        <ds:Signature Id="...">  school seal:      refs #HB-..., the first and second signatures
      </chuky>
    </hocba>

Why this shape, for several signatures added one after another:

- Signatures do not sign the root. An enveloped signature over <hocba> removes only itself
  before digesting, so appending a second signature would change what the first one signed and
  break it. Each signature is instead *detached* within the document: its References point by Id
  at the content element, which never changes after the snapshot, and at the earlier
  <ds:Signature> elements, which never change after they are appended. So the first signature
  stays valid when the second arrives, and the second one provably covers the first (the order
  homeroom teacher → principal → seal is in the signed bytes, not only in our database).
- Nothing is ever inserted *inside* an earlier signature (unlike a XAdES CounterSignature, which
  lives in the countersigned signature's unsigned properties), so every signature can be checked
  on its own by our verifier and by an independent one (xmlsec1 with `--id-attr:Id`).
- The content's Id carries the record id and version, so records bundled into one file (a
  student's whole book) never share an Id.
- <chuky> starts empty; the schema lets it hold any number of ds:Signature elements (validated
  laxly), so a signed document still validates against the same XSD.

The bytes are Canonical XML 1.0 (see canonical.py): the same record always gives the same bytes,
and those bytes are already the canonical form that a signature over the content digests.

What is *not* in the document: the lifecycle status (issued, acknowledged, superseded, revoked),
which changes after signing and lives in the database and the public index.
`trangthaithongtinhocba` says only whether this version is a first issue ("new") or a correction
("correction") of the version named in <thaythe>.
"""

from transcripts.schema import NAMESPACE

from .canonical import year_record_tree, year_record_xml
from .parsing import MAX_DOCUMENT_BYTES, year_record_from_tree, year_record_load, year_record_parse
from .records import (
    GRADES_BY_LEVEL,
    STATUS_CORRECTION,
    STATUS_NEW,
    Certificate,
    DocumentError,
    Issuer,
    PrimaryPart,
    PrimarySubjectRow,
    QualityRow,
    Ratings,
    SecondaryPart,
    SecondarySubjectRow,
    Signers,
    StudentIdentity,
    StudyHistoryLine,
    Supersedes,
    YearRecord,
    subject_value,
    year_record_check,
    year_record_id,
)

__all__ = [
    "GRADES_BY_LEVEL",
    "MAX_DOCUMENT_BYTES",
    "NAMESPACE",
    "STATUS_CORRECTION",
    "STATUS_NEW",
    "Certificate",
    "DocumentError",
    "Issuer",
    "PrimaryPart",
    "PrimarySubjectRow",
    "QualityRow",
    "Ratings",
    "SecondaryPart",
    "SecondarySubjectRow",
    "Signers",
    "StudentIdentity",
    "StudyHistoryLine",
    "Supersedes",
    "YearRecord",
    "subject_value",
    "year_record_check",
    "year_record_from_tree",
    "year_record_id",
    "year_record_load",
    "year_record_parse",
    "year_record_tree",
    "year_record_xml",
]
