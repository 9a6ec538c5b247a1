"""xmlsec1, the independent verifier: its command line and its verdict on each signature by Id.

Shared by the signing tests of every backend.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from signing.profile import DS, ROLES, XADES
from transcripts.schema import NAMESPACE


def tool(name: str, package: str) -> str:
    """The path of a system tool the signing tests need; a missing one fails the test (as the PDF
    tests do with poppler-utils), never skips it: a quiet skip let a green run check nothing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install {package}")
    return path


def xmlsec1() -> str:
    return tool("xmlsec1", "xmlsec1")


def xmllint() -> str:
    return tool("xmllint", "libxml2-utils")


def pem(*certs) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def write_pems(dev, folder: Path) -> Path:
    """root.pem (trusted) and issuing.pem (untrusted intermediate) of a DevCA, for xmlsec1."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "root.pem").write_bytes(pem(*dev.roots))
    (folder / "issuing.pem").write_bytes(pem(*dev.chain))
    return folder


def xmlsec1_command(document: Path, node_id: str, pems: Path) -> list[str]:
    return [
        xmlsec1(), "--verify",
        "--enabled-reference-uris", "same-doc",
        "--id-attr:Id", f"{NAMESPACE}:thongtinhocba",
        "--id-attr:Id", f"{DS}:Signature",
        "--id-attr:Id", f"{DS}:KeyInfo",
        "--id-attr:Id", f"{DS}:SignatureValue",
        "--id-attr:Id", f"{XADES}:SignedProperties",
        "--trusted-pem", str(pems / "root.pem"),
        "--untrusted-pem", str(pems / "issuing.pem"),
        "--node-id", node_id,
        str(document),
    ]  # fmt: skip


def xmlsec1_results(xml: bytes, pems: Path, tmp_path: Path) -> list[bool]:
    """xmlsec1's verdict on signatures 1..3, found by the Ids the profile gives them.

    The Ids are derived from the Id of the content the reader sees (/hocba/thongtinhocba), so a
    signature over some other (moved) element is not found under them.
    """
    document = tmp_path / "record.xml"
    document.write_bytes(xml)
    content_id = etree.fromstring(xml).find(f"{{{NAMESPACE}}}thongtinhocba").get("Id")
    verdicts = []
    for n, role in enumerate(ROLES, start=1):
        run = subprocess.run(
            xmlsec1_command(document, f"{content_id}-sig-{n}-{role}", pems), capture_output=True, text=True
        )
        verdicts.append(run.returncode == 0)
    return verdicts
