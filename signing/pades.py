"""The year record PDF sealed as a PDF: a PAdES signature with its timestamp and validation data.

`pdf_seal` signs a rendered PDF/A-3b with the school seal's key, as a standard PDF reader expects:

- one signature field, its widget on the seal's block of the form (`field_box`, found in the
  rendered layout by transcripts.pdf), with a visible stamp "Ký bởi / Chức vụ/Đơn vị / Thời gian
  ký" in Noto Serif embedded as a subset (a TrueType font: Vietnamese shows and PDF/A keeps every
  font embedded);
- the CMS signature is PAdES baseline (SubFilter ETSI.CAdES.detached, SHA-256, the signing
  certificate bound by signingCertificateV2), with an RFC 3161 signature timestamp from the
  configured TSA (HOCBA_TSA_URL; PAdES B-T);
- the validation data (LTV, PAdES B-LT): the certificates of the signer's and the TSA's chains and
  the CRLs of their issuers, in the document's DSS (/DSS: /Certs, /CRLs). They are written in the
  revision the signature covers, not in a revision appended after it (what pyHanko's
  embed_validation_info does): the signature then covers the whole file, so a reader says "the
  document has not been changed since it was signed" (poppler's "Total document signed"), and a
  later archive timestamp may still add a revision of its own. Everything comes from the
  configuration (trust.trust_roots, trust.tsa_roots, trust.crls): nothing is fetched.

The key is what signing.backends gives: a `cryptography` private key, or a DigestSigner (a PKCS#11
token, a CSC remote service) that signs a SHA-256 digest; `_KeySigner` hands pyHanko's CMS
builder either one.

`pdf_signature_report` reads the signatures back with pyHanko's validator, offline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import hashlib
import io
import threading
import time
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from asn1crypto import algos, tsp
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from django.conf import settings

from . import trust
from .backends import BackendError, DigestSigner

with warnings.catch_warnings():
    # pyHanko's CMS module imports cryptography's DSA key type, deprecated by cryptography 51:
    # a warning on the standard error of every process that loads it (manage.py commands whose
    # output is read included), about a key type the portal never uses. Silenced for this import
    # only; the module is cached, so later importers of pyHanko stay quiet too.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.sign import fields, signers
    from pyhanko.sign.general import SigningError as PyHankoSigningError
    from pyhanko.sign.signers import constants as pdf_constants
    from pyhanko.sign.timestamps.api import TimeStamper
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko.sign.validation.errors import NoDSSFoundError, SignatureValidationError
    from pyhanko.sign.validation.status import ModificationLevel, SignatureCoverageLevel
    from pyhanko.stamp import TextStampStyle
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        FreshnessReqType,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )
    from pyhanko_certvalidator.registry import SimpleCertificateStore

FIELD_NAME = "ChuKySoNhaTruong"  # the seal's signature field
FONT = Path(settings.BASE_DIR) / "static" / "fonts" / "NotoSerif-Regular.ttf"
LOCAL_TIME = ZoneInfo("Asia/Ho_Chi_Minh")
TIME_FORMAT = "%d/%m/%Y %H:%M:%S"
STAMP_TEXT = "Ký bởi: %(name)s\nChức vụ/Đơn vị: %(title)s\nThời gian ký: %(time)s"
CONTENT_TYPE = "application/timestamp-query"

# What the stamp's font keeps: Latin with Vietnamese (precomposed and combining marks), punctuation.
STAMP_UNICODES = (
    *range(0x20, 0x7F),
    *range(0xA0, 0x250),
    *range(0x300, 0x370),
    *range(0x1E00, 0x1F00),
    *range(0x2010, 0x2027),
)
_font_lock = threading.Lock()
_font_bytes: bytes | None = None

# A box on a page, in PDF points from the page's lower left corner: (page index, x1, y1, x2, y2).
FieldBox = tuple[int, float, float, float, float]


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def stamp_font() -> bytes:
    """Noto Serif cut down to STAMP_UNICODES, made once per process and kept in memory. pyHanko
    subsets the stamp's font again for every PDF it signs: fontTools takes about 0.3 s on the
    whole Noto Serif (mostly its layout tables, for Greek, Cyrillic, ...), a few ms on this one."""
    global _font_bytes
    with _font_lock:
        if _font_bytes is None:
            from fontTools import subset

            options = subset.Options()
            # No layout tables: the stamp's text is NFC (every Vietnamese letter precomposed), so
            # no mark needs positioning; kerning is all that is lost.
            options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH"]
            options.layout_features = []
            options.name_IDs = ["*"]
            options.notdef_outline = True
            font = subset.load_font(str(FONT), options)
            subsetter = subset.Subsetter(options)
            subsetter.populate(unicodes=STAMP_UNICODES)
            subsetter.subset(font)
            out = io.BytesIO()
            subset.save_font(font, out, options)
            _font_bytes = out.getvalue()
        return _font_bytes


@dataclass(frozen=True)
class _StampFontFactory(GlyphAccumulatorFactory):
    """pyHanko's font engine factory over stamp_font()'s bytes (its own opens a file by name)."""

    def create_font_engine(self, writer, obj_stream=None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
            obj_stream = writer.prepare_object_stream()
        return GlyphAccumulator(
            writer=writer,
            font_handle=io.BytesIO(stamp_font()),
            font_size=self.font_size,
            obj_stream=obj_stream,
        )


def local_time_text(moment: dt.datetime) -> str:
    """A time as the marks print it: Asia/Ho_Chi_Minh, dd/mm/yyyy HH:MM:SS."""
    return moment.astimezone(LOCAL_TIME).strftime(TIME_FORMAT)


class _KeySigner(signers.Signer):
    """pyHanko's Signer over our keys: a `cryptography` private key or a DigestSigner."""

    def __init__(self, key, cert: x509.Certificate, chain: Sequence[x509.Certificate]):
        public_key = cert.public_key()
        if isinstance(public_key, rsa.RSAPublicKey):
            mechanism, self._size = "sha256_rsa", public_key.key_size // 8
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            mechanism, self._size = "sha256_ecdsa", 2 * ((public_key.key_size + 7) // 8) + 8
        else:
            raise BackendError("unsupported_key", "Only RSA and ECDSA keys can seal a PDF")
        self._key = key
        super().__init__(
            signing_cert=_asn1(cert),
            cert_registry=SimpleCertificateStore.from_certs([_asn1(c) for c in chain]),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": mechanism}),
            embed_roots=False,
        )

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if digest_algorithm != "sha256":
            raise PyHankoSigningError("Year record PDFs are signed with SHA-256 only")
        if dry_run:
            return bytes(self._size)
        digest = hashlib.sha256(data).digest()
        if isinstance(self._key, DigestSigner):
            return self._key.sign_digest(digest)
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(digest, PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        return self._key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


class _TsaTimeStamper(TimeStamper):
    """pyHanko's TimeStamper posting to the configured TSA (HOCBA_TSA_URL) with httpx; a TSA
    that cannot be reached, times out or answers 5xx/429 is a retryable
    BackendError("tsa_unavailable"), as for signing.timestamps. pyHanko checks the answer
    (granted, our nonce and imprint)."""

    def __init__(self, url: str, timeout: float):
        super().__init__(include_nonce=True)
        self.url, self.timeout = url, timeout

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        try:
            response = httpx.post(
                self.url,
                content=req.dump(),
                headers={"Content-Type": CONTENT_TYPE},
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
            )
        except httpx.HTTPError as error:
            reason = f"Timestamping service unreachable: {error}"
            raise BackendError("tsa_unavailable", reason, True) from error
        answer = f"Timestamping service answered HTTP {response.status_code}"
        if response.status_code >= 500 or response.status_code == 429:
            raise BackendError("tsa_unavailable", answer, True)
        if response.status_code != 200:
            raise BackendError("tsa_refused", answer)
        try:
            return tsp.TimeStampResp.load(response.content, strict=True)
        except (ValueError, TypeError) as error:
            raise BackendError("tsa_refused", f"Not a timestamp reply: {error}") from error


class _PdfA3Signer(signers.PdfSigner):
    """pyHanko's PdfSigner keeping the document at PDF 1.7, the base of PDF/A-3 (ISO 32000-1): the
    PAdES signature declares the ESIC extension (ExtensionLevel 2 of 1.7) only. pyHanko would
    also declare ISO/TS 32002 for an ECDSA P-256 key, which raises the document to PDF 2.0."""

    def register_extensions(self, pdf_out, *, md_algorithm: str) -> None:
        pdf_out.ensure_output_version(version=(1, 7))
        pdf_out.register_extension(pdf_constants.ESIC_EXTENSION_1)


TSA_KEPT_SECONDS = 600  # how long a process keeps a TSA's token for the size and the certificates
_stampers: dict[tuple[str, float], tuple[float, _TsaTimeStamper]] = {}
_stampers_lock = threading.Lock()


def _timestamper() -> _TsaTimeStamper | None:
    """The configured TSA, or None without HOCBA_TSA_URL (then the seal is PAdES B-B: no
    timestamp, the signer's claimed time only; a deployment configures a TSA).

    One per process and URL for TSA_KEPT_SECONDS: pyHanko keeps in it the token it asks for to
    size the signature (which also gives us the TSA's certificates for the DSS), so a batch's
    PDFs cost one TSA round trip each, not two; a TSA that renews its certificate is seen within
    ten minutes (each signature's own token carries the TSA's certificate meanwhile)."""
    url = (getattr(settings, "HOCBA_TSA_URL", "") or "").strip()
    if not url:
        return None
    key = (url, float(getattr(settings, "HOCBA_TSA_TIMEOUT_SECONDS", 10)))
    with _stampers_lock:
        made, stamper = _stampers.get(key, (0.0, None))
        if stamper is None or time.monotonic() - made > TSA_KEPT_SECONDS:
            stamper = _TsaTimeStamper(*key)
            _stampers[key] = (time.monotonic(), stamper)
        return stamper


def _validation_data(
    certs: Sequence[x509.Certificate], crls: Sequence[x509.CertificateRevocationList]
) -> tuple[list[asn1_x509.Certificate], list[asn1_crl.CertificateList]]:
    """The certificates (once each) and the CRLs of their issuers, for the DSS."""
    unique: dict[bytes, x509.Certificate] = {}
    for cert in certs:
        unique.setdefault(cert.fingerprint(hashes.SHA256()), cert)
    issuers = {cert.issuer.public_bytes() for cert in unique.values()}
    chosen = [crl for crl in crls if crl.issuer.public_bytes() in issuers]
    return (
        [_asn1(c) for c in unique.values()],
        [asn1_crl.CertificateList.load(crl.public_bytes(Encoding.DER)) for crl in chosen],
    )


def _outside_event_loop(function, *args, **kwargs):
    """Call one of pyHanko's synchronous functions, which run their coroutines with asyncio.run:
    that refuses when this thread already runs an event loop (Playwright's sync API leaves one in
    the main thread, and an async caller has one), so then the call runs on a thread of its own
    (as signing.verify does for pyhanko-certvalidator)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def _tsa_certificates(timestamper: _TsaTimeStamper) -> list[x509.Certificate]:
    """The TSA's own certificates, from a token it issues over a dummy digest (pyHanko asks for
    one anyway to size the signature; it is cached per timestamper)."""
    token = _outside_event_loop(asyncio.run, timestamper.async_dummy_response("sha256"))
    signed_data = token["content"]
    return [
        x509.load_der_x509_certificate(choice.chosen.dump())
        for choice in signed_data["certificates"]
        if choice.name == "certificate"
    ]


def pdf_seal(
    pdf: bytes,
    *,
    key,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    signer_name: str,
    signer_title: str,
    field_box: FieldBox,
    at: dt.datetime | None = None,
) -> bytes:
    """`pdf` signed by the seal (PAdES B-LT: timestamped, validation data in the DSS; B-B plus the
    DSS when no TSA is configured), its stamp drawn in `field_box`. A BackendError when the key's
    service or the TSA fails (retryable when worth retrying). `at`: the time the stamp prints
    (now by default; the signature timestamp's time is the TSA's, within a second of it)."""
    timestamper = _timestamper()
    tsa_certs: list[x509.Certificate] = []
    if timestamper is not None:
        try:
            tsa_certs = _tsa_certificates(timestamper)
        except TimestampRequestError as error:
            raise BackendError("tsa_refused", f"Timestamp refused: {error}") from error
    page, x1, y1, x2, y2 = field_box
    path = [cert, *chain, *tsa_certs]
    issuers = {c.issuer for c in path}
    roots = [r for r in (*trust.trust_roots(), *trust.tsa_roots()) if r.subject in issuers]  # theirs only
    certs, crls = _validation_data([*path, *roots], trust.crls())
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    # The validation data, in the revision the signature covers (see the module's docstring).
    DocumentSecurityStore.supply_dss_in_writer(writer, None, certs=certs, crls=crls)
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        name=signer_name,
        reason="Đóng dấu phát hành học bạ số",
        embed_validation_info=False,  # written above, before signing
    )
    style = TextStampStyle(
        stamp_text=STAMP_TEXT,
        text_box_style=TextBoxStyle(font=_StampFontFactory(str(FONT)), font_size=9, leading=12),
        border_width=1,
        border_color=(0.75, 0.0, 0.0),
    )
    pdf_signer = _PdfA3Signer(
        meta,
        signer=_KeySigner(key, cert, chain),
        timestamper=timestamper,
        stamp_style=style,
        new_field_spec=fields.SigFieldSpec(
            sig_field_name=FIELD_NAME, on_page=page, box=(round(x1), round(y1), round(x2), round(y2))
        ),
    )
    text = {
        "name": unicodedata.normalize("NFC", signer_name),
        "title": unicodedata.normalize("NFC", signer_title),
        "time": local_time_text(at or trust.now()),
    }
    try:
        out = _outside_event_loop(pdf_signer.sign_pdf, writer, appearance_text_params=text)
    except TimestampRequestError as error:
        raise BackendError("tsa_refused", f"Timestamp refused: {error}") from error
    return out.getvalue()


# --- Reading the signatures back -------------------------------------------------------------------


@dataclass(frozen=True)
class PdfSignatureReport:
    """One signature of a PDF as pyHanko's validator sees it (offline); `problems` in English."""

    field: str
    signer: str = ""
    time: dt.datetime | None = None  # the timestamp's time, else the time the signer claims
    timestamped: bool = False
    intact: bool = False  # the signed bytes are the ones signed
    trusted: bool = False  # the signer's chain ends in a trusted root, unrevoked
    unchanged: bool = False  # nothing but validation data or timestamps added after it
    coverage: str = ""  # "entire_file", "entire_revision", "contiguous_block_from_start", ...
    modification: str = ""  # pyHanko's ModificationLevel after the signature
    validation_data: bool = False  # the document has a DSS with certificates and CRLs
    problems: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.intact and self.trusted and self.unchanged and not self.problems


# As signing.verify judges the XML signatures: the signer's (and the TSA's) revocation status must
# be known from a configured CRL; an issuing CA's is checked only if its certificate names a CRL;
# a CRL past its next update is still its issuer's last word (signing.trust logs it).
_POLICY = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CRL_REQUIRED,
        intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED,
    ),
    freshness=dt.timedelta(days=36500),
    freshness_req_type=FreshnessReqType.MAX_DIFF_REVOCATION_VALIDATION,
)


def _validation_context(
    roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    dss: DocumentSecurityStore | None,
) -> ValidationContext:
    """Pinned roots, the CRLs given and the document's own validation data (its DSS), offline."""
    anchors = [_asn1(r) for r in roots]
    lists = [asn1_crl.CertificateList.load(crl.public_bytes(Encoding.DER)) for crl in crls]
    if dss is not None:
        kwargs = {"trust_roots": anchors, "crls": lists, "allow_fetching": False, "revinfo_policy": _POLICY}
        return dss.as_validation_context(kwargs)
    return ValidationContext(trust_roots=anchors, crls=lists, allow_fetching=False, revinfo_policy=_POLICY)


def _common_name(cert: asn1_x509.Certificate | None) -> str:
    if cert is None:
        return ""
    return str(cert.subject.native.get("common_name", "")) or cert.subject.human_friendly


def pdf_signature_report(
    pdf: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    tsa_roots: Sequence[x509.Certificate] = (),
    crls: Sequence[x509.CertificateRevocationList] = (),
) -> list[PdfSignatureReport]:
    """Every signature of `pdf`, validated offline against these roots and CRLs (plus the
    certificates in the document's DSS); [] for a PDF without signatures or one that cannot
    be read (then a single report with the problem)."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        embedded = list(reader.embedded_signatures)
    except Exception as error:
        return [PdfSignatureReport(field="", problems=(f"The PDF cannot be read: {error}",))]
    try:
        dss: DocumentSecurityStore | None = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        dss = None
    has_dss = dss is not None and bool(dss.certs) and bool(dss.crls)
    reports = []
    for sig in embedded:
        context = _validation_context(trust_roots, crls, dss)
        # A timestamp's certificate must chain to a TSA root, never to a signers' root (signing.trust).
        ts_context = _validation_context(tsa_roots, crls, dss)
        problems: list[str] = []
        try:
            status = _outside_event_loop(
                validate_pdf_signature,
                sig,
                signer_validation_context=context,
                ts_validation_context=ts_context,
            )
        except (SignatureValidationError, ValueError, KeyError, TypeError) as error:
            problem = f"The signature cannot be validated: {error}"
            reports.append(PdfSignatureReport(field=sig.field_name, problems=(problem,)))
            continue
        timestamp = status.timestamp_validity
        if not status.intact:
            problems.append("The signed bytes were altered after signing (digest mismatch)")
        elif not status.valid:
            problems.append("The signature value does not verify with the signer's certificate")
        elif not status.trusted:  # (trust is not judged for a signature that does not hold)
            indication = status.trust_problem_indic
            problems.append(
                "The signer's certificate is not trusted"
                + (
                    f" ({str(getattr(indication, 'name', indication)).lower()})"
                    if indication is not None
                    else ""
                )
            )
        if timestamp is not None and not (timestamp.intact and timestamp.valid and timestamp.trusted):
            problems.append("The signature timestamp does not hold or is not trusted")
        coverage = status.coverage
        modification = status.modification_level
        unchanged = coverage == SignatureCoverageLevel.ENTIRE_FILE or (
            coverage == SignatureCoverageLevel.ENTIRE_REVISION
            and modification in (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES)
        )
        if not unchanged:
            problems.append(
                "The document was changed after this signature "
                f"(coverage {coverage.name.lower() if coverage else 'unknown'}, "
                f"modifications {modification.name.lower() if modification else 'unknown'})"
            )
        reports.append(
            PdfSignatureReport(
                field=sig.field_name,
                signer=_common_name(status.signing_cert),
                time=timestamp.timestamp if timestamp is not None else status.signer_reported_dt,
                timestamped=timestamp is not None,
                intact=bool(status.intact and status.valid),
                trusted=bool(status.trusted),
                unchanged=unchanged,
                coverage=coverage.name.lower() if coverage else "",
                modification=modification.name.lower() if modification else "",
                validation_data=has_dss,
                problems=tuple(problems),
            )
        )
    return reports
