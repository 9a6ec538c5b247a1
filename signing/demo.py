"""The demo's signing set-up (`make run`): every signer of the demo province can sign right away.

- Homeroom teachers: a PKCS#12 key file from the development CA (CN = their name, T = "Giáo viên
  chủ nhiệm"), PIN DEMO_PIN, registered with their account; the file is also written to
  `<ca_dir>/keys/<username>.p12` for trying the upload page.
- Principals and vice-principals: a credential at the remote-signing service (HOCBA_CSC_URL, the
  reference service `make run` starts), enrolled over its admin endpoint, registered with their
  account. Signing with it asks for the OTP the service prints to its log (the `make run` terminal).
- Each school's seal: a SoftHSM2 token `seal-<school code>` (user PIN DEMO_PIN) holding a key the
  development CA certified, registered by the school's administrator.
- thcs-lqd's class 6A1: the year approved, its year records created, confirmed and signed by the
  homeroom teacher through a real signing batch (run here, in-process), so the principal finds
  them waiting for the principal's signature. The other classes are left unsigned.

Idempotent: a certificate that is registered and can still sign is kept; one that cannot (a new
development CA, a credential the service no longer knows, a token re-issued) is replaced. What
cannot be done in this environment (no trusted development CA, no remote-signing service, no
SoftHSM2) is skipped and said, so `manage.py seed_demo` still works without `make run`.
Development only: keys sit on the developer's disk under .data/.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from portal.choices import Role
from portal.demo import SCHOOLS
from portal.models import RoleAssignment, School, User
from portal.services import connection_tenant_reset
from schools.demo import YEAR_CODE
from schools.models import SchoolClass
from transcripts.demo import class_records_confirm_seed
from transcripts.models import YearRecord, YearRecordStatus

from . import ca, trust
from .backends import KeyLoadError
from .models import CertificateBackend, ItemState, SigningCertificate, SigningStep
from .services import (
    certificate_objects,
    certificate_refusal,
    certificate_register_csc,
    certificate_register_pkcs11,
    certificate_register_pkcs12,
    certificate_remove,
    signing_batch_confirm,
    signing_batch_run,
    signing_batch_start,
)

log = logging.getLogger(__name__)

DEMO_PIN = "123456"  # key files and seal tokens (user PIN) of the demo; published, not a secret
DEMO_SO_PIN = "12345678"  # the seal tokens' security officer PIN
TITLES: dict[str, str] = {
    Role.HOMEROOM_TEACHER: "Giáo viên chủ nhiệm",
    Role.PRINCIPAL: "Hiệu trưởng",
    Role.VICE_PRINCIPAL: "Phó Hiệu trưởng",
}
# The class whose records wait for the principal's signature after `make run`.
PRESIGNED_SCHOOL, PRESIGNED_CLASS = "thcs-lqd", "6A1"
WORKER = "seed_demo"


def _data_dir() -> Path:
    return Path(settings.BASE_DIR) / ".data"


def seal_token_label(school: School) -> str:
    return f"seal-{school.code}"


@dataclass
class SigningSeeded:
    """What demo_signing_seed did (counts of what it added) and what it had to skip, and why."""

    key_files: int = 0
    credentials: int = 0
    seals: int = 0
    signed: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.key_files or self.credentials or self.seals or self.signed)

    def lines(self) -> list[str]:
        done = []
        if self.key_files:
            done.append(f"{self.key_files} key files (PKCS#12) registered")
        if self.credentials:
            done.append(f"{self.credentials} remote-signing credentials registered")
        if self.seals:
            done.append(f"{self.seals} seal tokens registered")
        if self.signed:
            done.append(
                f"{self.signed} records of {PRESIGNED_CLASS} ({PRESIGNED_SCHOOL}) signed"
                " by the homeroom teacher"
            )
        lines = [f"Signing demo: {'; '.join(done)}."] if done else ["Signing demo already set up."]
        return lines + [f"Signing demo: {reason}" for reason in self.skipped]


def demo_signing_seed(
    *, ca_dir: str | os.PathLike[str] | None = None, softhsm_dir: str | os.PathLike[str] | None = None
) -> SigningSeeded:
    """Set up the demo province's signers (see the module's docstring); run after demo_province_seed.

    `ca_dir`: the development CA (default .data/ca), which HOCBA_TRUST_ROOTS must trust.
    `softhsm_dir`: the SoftHSM2 directory (default .data/softhsm), which SOFTHSM2_CONF must name,
    so that the web and worker processes see the same tokens.
    """
    seeded = SigningSeeded()
    connection_tenant_reset()
    schools = list(School.objects.filter(code__in=[code for code, *_ in SCHOOLS]).order_by("pk"))
    if not schools:
        seeded.skipped.append("no demo province (run seed_demo first).")
        return seeded
    ca_dir = Path(ca_dir) if ca_dir else _data_dir() / "ca"
    if not all((ca_dir / name).exists() for name in ca.CA_FILES):
        seeded.skipped.append(f"no development CA in {ca_dir}: nothing done (run it through `make run`).")
        return seeded
    dev = ca.dev_ca_load(ca_dir)
    trusted = {trust.fingerprint(root) for root in trust.trust_roots()}
    if trust.fingerprint(dev.root_cert) not in trusted:
        seeded.skipped.append(
            f"the development CA in {ca_dir} is not in HOCBA_TRUST_ROOTS: nothing done "
            "(run it through `make run`)."
        )
        return seeded
    try:
        _homeroom_teachers(seeded, schools, dev, ca_dir / "keys")
        _leaders(seeded, schools)
        _seals(seeded, schools, dev, Path(softhsm_dir) if softhsm_dir else _data_dir() / "softhsm")
        _presign(seeded)
    finally:
        connection_tenant_reset()
    return seeded


# --- Who -----------------------------------------------------------------------------------------


def _holders(schools: list[School], roles) -> list[tuple[User, str, School]]:
    """(user, role, school) of the current assignments of `roles`, one per user (the first found)."""
    seen: dict[int, tuple[User, str, School]] = {}
    assignments = (
        RoleAssignment.objects.current()
        .filter(school__in=schools, role__in=roles)
        .select_related("user", "school")
        .order_by("school_id", "pk")
    )
    for assignment in assignments:
        assert assignment.school is not None  # filtered on school__in
        seen.setdefault(assignment.user_id, (assignment.user, assignment.role, assignment.school))
    return list(seen.values())


def _reason(error: ValidationError | PermissionDenied) -> str:
    # PermissionDenied has no .messages: its reason is its text.
    return " ".join(error.messages) if isinstance(error, ValidationError) else str(error)


def _usable(certificate: SigningCertificate) -> bool:
    return not certificate_refusal(*certificate_objects(certificate))


def _retire(certificates, actor: User) -> None:
    for certificate in certificates:
        certificate_remove(actor=actor, certificate=certificate)


# --- Homeroom teachers: key files ------------------------------------------------------------------


def _homeroom_teachers(seeded: SigningSeeded, schools, dev: ca.DevCA, keys_dir: Path) -> None:
    for user, role, school in _holders(schools, [Role.HOMEROOM_TEACHER]):
        current = list(
            SigningCertificate.objects.filter(user=user, backend=CertificateBackend.PKCS12, removed_at=None)
        )
        if any(_usable(c) for c in current):
            continue
        try:
            with transaction.atomic():
                _retire(current, user)
                data = _key_file(user, TITLES[role], school, dev, keys_dir)
                certificate_register_pkcs12(actor=user, user=user, data=data, pin=DEMO_PIN)
        except (ValidationError, PermissionDenied) as error:
            seeded.skipped.append(f"no key file for {user.username}: {_reason(error)}")
            continue
        seeded.key_files += 1


def _key_file(user: User, title: str, school: School, dev: ca.DevCA, keys_dir: Path) -> bytes:
    """The user's key file in keys_dir if it is still good for them, else a new one written there."""
    path = keys_dir / f"{user.username}.p12"
    if path.exists():
        data = path.read_bytes()
        try:
            _key, cert, chain = pkcs12.load_key_and_certificates(data, DEMO_PIN.encode())
        except ValueError:
            cert = None
        if (
            cert is not None
            and _common_name(cert) == user.get_full_name()
            and cert.issuer == dev.issuing_cert.subject
            and not certificate_refusal(cert, tuple(chain))
        ):
            return data
    issued = ca.issue_person(dev, common_name=user.get_full_name(), title=title, organisation=school.name)
    data = ca.pkcs12_export(issued, DEMO_PIN, friendly_name=user.username)
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return data


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


# --- Principals and vice-principals: remote-signing credentials -------------------------------------


def _leaders(seeded: SigningSeeded, schools) -> None:
    from .keys import csc_client

    url = getattr(settings, "HOCBA_CSC_URL", "")
    if not url:
        seeded.skipped.append("HOCBA_CSC_URL is not set: principals get no remote-signing credential.")
        return
    try:
        client = csc_client()
        client.info()
    except (KeyLoadError, ValueError) as error:
        seeded.skipped.append(f"the remote-signing service cannot be reached ({error}): no credentials.")
        return
    with client:
        for user, role, school in _holders(schools, [Role.PRINCIPAL, Role.VICE_PRINCIPAL]):
            try:
                if _leader_credential(client, user, TITLES[role], school):
                    seeded.credentials += 1
            except (ValidationError, PermissionDenied) as error:
                seeded.skipped.append(f"no credential for {user.username}: {_reason(error)}")
            except KeyLoadError as error:
                seeded.skipped.append(f"no credential for {user.username}: {error}")


def _leader_credential(client, user: User, title: str, school: School) -> bool:
    """Make sure the user has a usable credential registered; True when one was registered now."""
    at_service = client.credentials_list(user.username)
    current = list(
        SigningCertificate.objects.filter(user=user, backend=CertificateBackend.CSC, removed_at=None)
    )
    if any(c.csc_credential_id in at_service and _usable(c) for c in current):
        return False
    taken = set(
        SigningCertificate.objects.filter(removed_at=None, backend=CertificateBackend.CSC).values_list(
            "csc_credential_id", flat=True
        )
    )
    credential_id = next(
        (
            cid
            for cid in at_service
            if cid not in taken and _credential_fits(client.credentials_info(cid), user)
        ),
        None,
    )
    if credential_id is None:
        credential_id = _enrol(user, title, school)
    with transaction.atomic():
        _retire(current, user)
        certificate_register_csc(actor=user, credential_id=credential_id)
    return True


def _credential_fits(credential, user: User) -> bool:
    return (
        credential.status == "valid"
        and _common_name(credential.cert) == user.get_full_name()
        and not certificate_refusal(credential.cert, credential.chain)
    )


def _enrol(user: User, title: str, school: School) -> str:
    """A new credential for the user at the service (its admin endpoint, the portal's secret)."""
    body = {
        "userID": user.username,
        "name": user.get_full_name(),
        "title": title,
        "organisation": school.name,
        "algorithm": "ec",
    }
    request = urllib.request.Request(  # noqa: S310 -- the configured service's URL
        settings.HOCBA_CSC_URL.rstrip("/") + "/admin/credentials",
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {settings.HOCBA_CSC_CLIENT_SECRET}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise KeyLoadError("enrol", f"enrolment refused: HTTP {error.code} {error.read()[:200]!r}") from error
    except (OSError, ValueError) as error:
        raise KeyLoadError("unreachable", f"enrolment failed: {error}") from error
    return answer["credentialID"]


# --- The seals: SoftHSM2 tokens --------------------------------------------------------------------


def _seals(seeded: SigningSeeded, schools, dev: ca.DevCA, softhsm_dir: Path) -> None:
    from .backends.pkcs11 import default_library

    if default_library() is None:
        seeded.skipped.append("SoftHSM2 is not installed (Debian package softhsm2): no seal tokens.")
        return
    conf = (softhsm_dir / "softhsm2.conf").resolve()
    configured = os.environ.get("SOFTHSM2_CONF", "")
    if not configured or Path(configured).resolve() != conf:
        seeded.skipped.append(
            f"SOFTHSM2_CONF is not {conf} (the web and worker processes would not see the tokens): "
            "no seal tokens (run it through `make run`)."
        )
        return
    from .softhsm import seal_token_provision

    admins = {school.pk: user for user, _role, school in _holders(schools, [Role.SCHOOL_ADMIN])}
    for school in schools:
        admin = admins.get(school.pk)
        if admin is None:
            seeded.skipped.append(f"{school.code} has no administrator to register its seal.")
            continue
        try:
            _library, token_label, key_label, cert = seal_token_provision(
                directory=softhsm_dir,
                ca=dev,
                school_name=school.name,
                token_label=seal_token_label(school),
                user_pin=DEMO_PIN,
                so_pin=DEMO_SO_PIN,
            )
            current = list(
                SigningCertificate.objects.filter(
                    school=school, backend=CertificateBackend.PKCS11, removed_at=None
                )
            )
            fingerprint = trust.fingerprint(cert)
            if any(c.fingerprint == fingerprint and _usable(c) for c in current):
                continue
            with transaction.atomic():
                _retire(current, admin)
                certificate_register_pkcs11(
                    actor=admin, school=school, token_label=token_label, key_label=key_label, pin=DEMO_PIN
                )
        except (ValidationError, PermissionDenied) as error:
            seeded.skipped.append(f"no seal for {school.code}: {_reason(error)}")
            continue
        except (KeyLoadError, RuntimeError, OSError) as error:
            seeded.skipped.append(f"no seal for {school.code}: {error}")
            continue
        seeded.seals += 1


# --- 6A1: approved, created, confirmed, signed by the homeroom teacher ---------------------------------


def _presign(seeded: SigningSeeded) -> None:
    school = School.objects.filter(code=PRESIGNED_SCHOOL).first()
    if school is None:
        return
    principal = (
        RoleAssignment.objects.current()
        .filter(school=school, role=Role.PRINCIPAL)
        .select_related("user")
        .first()
    )
    try:
        with transaction.atomic():
            seeded.signed += _presign_class(school, principal.user if principal else None)
    except (ValidationError, PermissionDenied, KeyLoadError) as error:
        messages = getattr(error, "messages", None) or [str(error)]
        seeded.skipped.append(f"{PRESIGNED_CLASS} of {PRESIGNED_SCHOOL} not signed: {' '.join(messages)}")


def _presign_class(school: School, principal: User | None) -> int:
    """Bring the class to "signed by the homeroom teacher"; the number of records signed now.

    One transaction: the batch is queued (on commit) only once it is done, so a worker that gets
    it finds nothing left to do. Only version 1 records are touched: corrections made in the
    portal afterwards are the user's to sign.
    """
    with school:
        school_class = (
            SchoolClass.objects.filter(name=PRESIGNED_CLASS, school_year__code=YEAR_CODE)
            .select_related("homeroom_teacher")
            .first()
        )
        if school_class is None or school_class.homeroom_teacher is None:
            return 0
        teacher = school_class.homeroom_teacher
        if not class_records_confirm_seed(
            school=school, school_class=school_class, principal=principal, teacher=teacher
        ):
            return 0
        records = YearRecord.objects.filter(enrolment__school_class=school_class, version=1)
        if not records.filter(status=YearRecordStatus.CONFIRMED).exists():
            return 0
        certificate = SigningCertificate.objects.filter(
            user=teacher, backend=CertificateBackend.PKCS12, removed_at=None
        ).first()
        if certificate is None:
            raise ValidationError(f"{teacher.username} has no key file registered")
        batch = signing_batch_start(
            actor=teacher,
            school=school,
            step=SigningStep.HOMEROOM_TEACHER,
            certificate=certificate,
            school_class=school_class,
        )
    signing_batch_confirm(actor=teacher, school=school, batch=batch, pin=DEMO_PIN)
    outcome = signing_batch_run(batch_pk=batch.pk, worker=WORKER)
    failed = batch.items.exclude(state=ItemState.DONE)
    if outcome != "done" or failed.exists():
        reasons = sorted(set(failed.values_list("reason", flat=True)))
        raise ValidationError(f"the batch ended {outcome!r}: {'; '.join(reasons)}")
    return batch.items.count()
