"""Test helpers for signing: the session's CA and trust store, and signing a record step by step."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding
from django.db import connection

from signing import ca, trust
from signing.backends.pkcs12 import pkcs12_load
from signing.longterm import signing_extras
from signing.profile import sign_year_record

PIN = "135790"  # tests/conftest.py SIGNING_PIN

TITLES = {
    "homeroom_teacher": "Giáo viên chủ nhiệm",
    "principal": "Hiệu trưởng",
    "vice_principal": "Phó Hiệu trưởng",
}


CURRENT: TrustFixture | None = None


class TrustFixture:
    """The session's development CA, written where the settings point, and its CRL."""

    def __init__(self, folder: Path):
        global CURRENT
        CURRENT = self
        self._made: dict[tuple[str, str], bytes] = {}
        self.folder = folder
        self.ca = ca.dev_ca("Học bạ số (kiểm thử)")
        self.roots_file = folder / "roots.pem"
        self.roots_file.write_bytes(self.ca.root_cert.public_bytes(Encoding.PEM))
        self.crl_file = folder / "crl.pem"
        self.revoked: list = []  # serials, or (serial, revocation date)
        self._publish()
        self._keys: dict[str, dict[str, bytes]] = {}

    def _publish(self) -> None:
        crl = ca.issue_crl(self.ca, self.revoked)
        self.crl_file.write_bytes(crl.public_bytes(Encoding.PEM))

    def reset(self) -> None:
        trust.trust_reset()

    def revoke(self, cert, when=None) -> None:
        """Publish a CRL that revokes `cert` (on `when`, a datetime; default the CRL's time)."""
        self.revoked.append(cert.serial_number if when is None else (cert.serial_number, when))
        self._publish()
        self.reset()

    def unrevoke_all(self) -> None:
        self.revoked.clear()
        self._publish()
        self.reset()

    def person(self, full_name: str, title: str, **kwargs) -> bytes:
        """A PKCS#12 file (PIN) for a person; without kwargs, made once per name and title."""
        if not kwargs and (full_name, title) in self._made:
            return self._made[full_name, title]
        issued = ca.issue_person(self.ca, common_name=full_name, title=title, **kwargs)
        data = ca.pkcs12_export(issued, PIN)
        if not kwargs:
            self._made[full_name, title] = data
        return data

    def seal(self, school_name: str, **kwargs) -> bytes:
        if not kwargs and ("seal", school_name) in self._made:
            return self._made["seal", school_name]
        data = ca.pkcs12_export(ca.issue_organisation(self.ca, name=school_name, **kwargs), PIN)
        if not kwargs:
            self._made["seal", school_name] = data
        return data

    def school_keys(self, school) -> dict[str, bytes]:
        """PKCS#12 files for the test school's signers (made once per session)."""
        if school.code not in self._keys:
            from portal.models import User

            names = dict(User.objects.filter(username__in=TITLES).values_list("username", "full_name"))
            self._keys[school.code] = {
                **{role: self.person(names[role], title) for role, title in TITLES.items()},
                "seal": self.seal(school.name),
            }
        return self._keys[school.code]


def sign_step(record, *, step: str, actor, school, p12: bytes):
    """Make signature `step` on the record through the lifecycle service, with this key file."""
    from transcripts.records.services import year_record_sign

    key = pkcs12_load(p12, PIN)
    connection.set_tenant(school)
    return year_record_sign(
        actor=actor,
        school=school,
        record=record,
        step=step,
        sign=lambda document: sign_year_record(
            document, key=key.key, cert=key.cert, chain=key.chain, role=step, **signing_extras(step)
        ),
        signer_name=key.cert.subject.rfc4514_string(),
        signer_title="",
        certificate_fingerprint=trust.fingerprint(key.cert),
        certificate_serial=format(key.cert.serial_number, "x"),
    )


def issue(record, *, homeroom_teacher, principal, school, keys=None, sealer=None):
    """Confirm, sign (homeroom teacher, principal) and seal a record: it is issued.

    Without `keys`, key files named after the signers and the school come from the session's CA.
    """
    from transcripts.models import YearRecordStatus
    from transcripts.records.services import year_record_confirm

    keys = keys or {
        "homeroom_teacher": CURRENT.person(homeroom_teacher.full_name, TITLES["homeroom_teacher"]),
        "principal": CURRENT.person(principal.full_name, TITLES["principal"]),
        "seal": CURRENT.seal(school.name),
    }
    connection.set_tenant(school)
    if record.status == YearRecordStatus.DATA_COMPLETE:
        record = year_record_confirm(actor=homeroom_teacher, school=school, record=record)
    record = sign_step(
        record, step="homeroom_teacher", actor=homeroom_teacher, school=school, p12=keys["homeroom_teacher"]
    )
    record = sign_step(record, step="principal", actor=principal, school=school, p12=keys["principal"])
    return sign_step(record, step="seal", actor=sealer or principal, school=school, p12=keys["seal"])
