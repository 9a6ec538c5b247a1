"""Validation in the background: each stored message goes from `received` to `accepted` or `rejected`.

The order is the contract's, and the first stage that finds a problem decides the verdict (its
reasons are all of that stage's problems, e.g. every signature that fails):

1. envelope against document: school code (matruong), record id (madinhdanhhocba) and version
   (phienban) read from the XML must be the envelope's (`mismatch`); for a `replace`, the
   document's thaythe, when present, must name the replaced version;
2. the school is registered (`unknown_school`);
3. the envelope's personal ID is 12 ASCII digits (`personal_id_missing`);
4. the document validates against the year record XSD (`schema`); a document that is not even
   well-formed XML, or lacks the elements of step 1, is a `schema` rejection too;
5. each of the three signatures (`<content Id>-sig-<n>-<role>`) verifies with xmlsec1 against
   the repository's trust roots (`signature`).

A `replace` or a `cancel` waits while the version it names is still `received`. A `replace` of an
accepted version supersedes it; of a version rejected or never received, it is judged as the
record's first version. A `cancel` of a version not accepted is rejected `unknown_version`; it has
no document: it is checked for its school and the named version only.

xmlsec1 is the independent verifier (the portal signs with its own code, so the repository
must not share it); it runs in a small pool (2) of subprocesses. Revocation is not checked.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lxml import etree

from .store import Message, MessageStore

log = logging.getLogger("reference.ministry")

NAMESPACE = "urn:hocbaso:year-record:1.0"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
# The signing order of signing/profile.py ROLES (not imported: this service never imports the portal).
ROLES = ("homeroom_teacher", "principal", "seal")
XSD_PATH = Path(__file__).resolve().parents[2] / "transcripts" / "schema" / "hocba-year-record-1.0.xsd"
PERSONAL_ID = re.compile(r"[0-9]{12}")  # ASCII digits only (\d would take any Unicode digit)
XMLSEC_WORKERS = 2
XMLSEC_TIMEOUT = 60
POLL_SECONDS = 0.2


class Rejection(Exception):
    """A stage found problems: the coded reasons of the verdict."""

    def __init__(self, *reasons: tuple[str, str]):
        super().__init__(reasons[0][1])
        self.reasons = [{"code": code, "message": message} for code, message in reasons]


def _parser() -> etree.XMLParser:
    # A parser per call (lxml parsers are not thread-safe); hardened as for any outside input.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


def _text(parent: etree._Element | None, name: str) -> str | None:
    if parent is None:
        return None
    element = parent.find(f"{{{NAMESPACE}}}{name}")
    return element.text.strip() if element is not None and element.text is not None else None


class Validator:
    """The background thread that judges stored messages, oldest first."""

    def __init__(
        self,
        store: MessageStore,
        *,
        trust_roots: list[Path],
        untrusted: list[Path],
        xsd_path: Path = XSD_PATH,
        xmlsec1: str | None = None,
    ):
        self.store = store
        self.trust_roots = [Path(p) for p in trust_roots]
        self.untrusted = [Path(p) for p in untrusted]
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        self.schema = etree.XMLSchema(etree.parse(str(xsd_path), parser))
        self._schema_lock = threading.Lock()  # an XMLSchema object is not safe to share between threads
        self.xmlsec1 = xmlsec1 or shutil.which("xmlsec1") or ""
        if not self.xmlsec1:
            raise RuntimeError("xmlsec1 is missing: apt-get install xmlsec1")
        self._pool = ThreadPoolExecutor(max_workers=XMLSEC_WORKERS, thread_name_prefix="xmlsec1")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="validator", daemon=True)
        self._scratch = Path(tempfile.mkdtemp(prefix="validate-", dir=store.directory))

    def start(self) -> None:
        self._thread.start()

    def held(self) -> bool:
        """Whether verdicts are held (the `hold_verdicts` fault); set by the server."""
        return False

    def wake(self) -> None:
        """A message was stored: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self._scratch, ignore_errors=True)

    # --- The loop -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            if self.held():
                self._wake.wait(POLL_SECONDS)
                continue
            try:
                progressed = self.round()
            except Exception:
                log.exception("validation round failed")
                progressed = False
            if not progressed:
                self._wake.wait(POLL_SECONDS)

    def round(self) -> bool:
        """Judge every pending message that can be judged now; True if any verdict was made."""
        progressed = False
        for message in self.store.pending():
            if self._stop.is_set():
                break
            named = self._named_version(message)
            if named is not None:
                status = self.store.version_status(message.record_id, named)
                if status == "received":
                    continue  # wait for that version's verdict
            try:
                self._judge(message, named)
            except Rejection as rejection:
                verdict, reasons = "rejected", rejection.reasons
            except Exception:
                # Our failure, not the message's: it stays `received` and is tried again.
                log.exception("validating %s failed", message.receipt_id)
                continue
            else:
                verdict, reasons = "accepted", []
            if self.store.decide(message.id, verdict, reasons):
                codes = ",".join(r["code"] for r in reasons)
                log.info(
                    "%s %s %s v%d: %s%s",
                    message.receipt_id,
                    message.kind,
                    message.record_id,
                    message.version,
                    verdict,
                    f" ({codes})" if codes else "",
                )
            progressed = True
        return progressed

    @staticmethod
    def _named_version(message: Message) -> int | None:
        """The version a replace replaces or a cancel cancels (None for a submit)."""
        if message.kind == "replace":
            return message.replaces_version
        if message.kind == "cancel":
            return message.version
        return None

    # --- The stages -----------------------------------------------------------------------

    def _judge(self, message: Message, named: int | None) -> None:
        # A replace of a version the repository does not hold (rejected, or issued before
        # forwarding began) is judged as the record's first version: the record must not be lost
        # because an earlier version was refused. A cancel must name a version held.
        if (
            message.kind == "cancel"
            and self.store.version_status(message.record_id, named or 0) != "accepted"
        ):
            raise Rejection(
                (
                    "unknown_version",
                    f"The repository holds no version {named} of {message.record_id} "
                    f"for this {message.kind} to name",
                )
            )
        if message.kind == "cancel":
            held_by = self.store.version_school(message.record_id, message.version)
            if held_by != message.school_code:
                raise Rejection(("mismatch", f"Version {message.version} was sent by school {held_by}"))
            self._school(message)
            return
        document = self.store.document(message.id) or b""
        root = self._parse(document)
        self._envelope_against_document(message, root)
        self._school(message)
        if message.personal_id is None or not PERSONAL_ID.fullmatch(message.personal_id):
            raise Rejection(("personal_id_missing", "The envelope has no valid 12-digit personal ID"))
        with self._schema_lock:
            valid = self.schema.validate(root)
            error = self.schema.error_log.last_error
        if not valid:
            raise Rejection(
                ("schema", f"The document does not validate against the year record XSD: {error}")
            )
        self._signatures(message, document, root)

    @staticmethod
    def _parse(document: bytes) -> etree._Element:
        if b"<!DOCTYPE" in document or b"<!ENTITY" in document:
            raise Rejection(("schema", "Documents with a DTD or entity declarations are refused"))
        try:
            root = etree.fromstring(document, _parser())
        except etree.XMLSyntaxError as error:
            raise Rejection(("schema", f"The document is not well-formed XML: {error}")) from error
        if root.tag != f"{{{NAMESPACE}}}hocba":
            raise Rejection(("schema", f"The document is not a year record: root {root.tag}"))
        return root

    @staticmethod
    def _envelope_against_document(message: Message, root: etree._Element) -> None:
        content = root.find(f"{{{NAMESPACE}}}thongtinhocba")
        school, record_id, version = (_text(content, n) for n in ("matruong", "madinhdanhhocba", "phienban"))
        if school is None or record_id is None or version is None:
            raise Rejection(("schema", "The document lacks its school code, record id or version"))
        problems = []
        if school != message.school_code:
            problems.append(
                ("mismatch", f"School {message.school_code} in the envelope, {school} in the document")
            )
        if record_id != message.record_id:
            problems.append(
                ("mismatch", f"Record {message.record_id} in the envelope, {record_id} in the document")
            )
        if version != str(message.version):
            problems.append(
                ("mismatch", f"Version {message.version} in the envelope, {version} in the document")
            )
        superseded = content.find(f"{{{NAMESPACE}}}thaythe")
        if message.kind == "replace" and superseded is not None:
            old = (_text(superseded, "madinhdanhhocba"), _text(superseded, "phienban"))
            if old != (message.record_id, str(message.replaces_version)):
                problems.append(
                    (
                        "mismatch",
                        f"The document replaces {old[0]} v{old[1]}, the envelope "
                        f"{message.record_id} v{message.replaces_version}",
                    )
                )
        if problems:
            raise Rejection(*problems)

    def _school(self, message: Message) -> None:
        if not self.store.school_registered(message.school_code):
            raise Rejection(
                ("unknown_school", f"School {message.school_code} is not registered to this Department")
            )

    def _signatures(self, message: Message, document: bytes, root: etree._Element) -> None:
        if not self.trust_roots:
            raise Rejection(
                ("signature", "The repository trusts no certificate authority (no --trust-roots)")
            )
        content_id = root.find(f"{{{NAMESPACE}}}thongtinhocba").get("Id") or ""
        path = self._scratch / f"{message.receipt_id}.xml"
        path.write_bytes(document)
        try:
            ids = [f"{content_id}-sig-{n}-{role}" for n, role in enumerate(ROLES, start=1)]
            verdicts = list(self._pool.map(lambda node_id: self._xmlsec1(path, node_id), ids))
        finally:
            path.unlink(missing_ok=True)
        problems = [
            ("signature", f"Signature {node_id} does not verify: {detail}")
            for node_id, (ok, detail) in zip(ids, verdicts, strict=True)
            if not ok
        ]
        if problems:
            raise Rejection(*problems)

    def xmlsec1_command(self, document: Path, node_id: str) -> list[str]:
        """The flags of tests/signing/xmlsec.py, with every trust root and intermediate given."""
        command = [
            self.xmlsec1, "--verify",
            "--enabled-reference-uris", "same-doc",
            "--id-attr:Id", f"{NAMESPACE}:thongtinhocba",
            "--id-attr:Id", f"{DS}:Signature",
            "--id-attr:Id", f"{DS}:KeyInfo",
            "--id-attr:Id", f"{DS}:SignatureValue",
            "--id-attr:Id", f"{XADES}:SignedProperties",
        ]  # fmt: skip
        for root in self.trust_roots:
            command += ["--trusted-pem", str(root)]
        for intermediate in self.untrusted:
            command += ["--untrusted-pem", str(intermediate)]
        return [*command, "--node-id", node_id, str(document)]

    def _xmlsec1(self, document: Path, node_id: str) -> tuple[bool, str]:
        try:
            run = subprocess.run(  # noqa: S603 -- our fixed command line, the document as a file
                self.xmlsec1_command(document, node_id),
                capture_output=True,
                text=True,
                timeout=XMLSEC_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            return False, f"xmlsec1 did not answer within {XMLSEC_TIMEOUT} s"
        if run.returncode == 0 and "\nOK" in f"\n{run.stdout}\n{run.stderr}":
            return True, ""
        return False, xmlsec1_reason(run.stderr, run.returncode)


def xmlsec1_reason(stderr: str, returncode: int) -> str:
    """xmlsec1's first error in words, and how many references held (no file paths)."""
    parts = []
    for line in stderr.splitlines():
        found = re.search(r":error=\d+:(.*)$", line)
        if found:
            parts.append(found[1].strip()[:200])
            break
    references = re.search(r"SignedInfo References \(ok/all\): (\d+/\d+)", stderr)
    if references:
        parts.append(f"references verified {references[1]}")
    return "; ".join(parts) or f"xmlsec1 failed (exit status {returncode})"
