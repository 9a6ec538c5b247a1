"""A partner and a consent issuer to try the API with (`manage.py api_demo`): demo only.

In production the consent issuer's private key stays with the identity app; here the demo keeps
one in a file (mode 0600, under .data/ by default) so that a person trying the API can make the
consent token a citizen would otherwise give. Everything goes through registry.api.services, so
the demo is audited like a real registration.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import transaction

from portal.models import User

from ..models_api import ConsentIssuer, PartnerClient
from .choices import ConsentAlgorithm, PartnerKind, Purpose, Scope
from .consent import max_lifetime
from .services import (
    consent_issuer_register,
    consent_issuer_update,
    partner_client_register,
    partner_key_issue,
)

DEMO_ISSUER = "https://dinh-danh.demo.hocba.local"
DEMO_PARTNER = "Cổng Dịch vụ công (demo)"


@dataclass(frozen=True)
class DemoApi:
    client: PartnerClient
    key: str  # the whole API key, shown once
    issuer: ConsentIssuer
    private_key: ec.EllipticCurvePrivateKey

    def consent_token(self, *, personal_id: str, purpose: str = Purpose.ADMISSION, days: int = 1) -> str:
        """A consent token as the identity app would sign it for this partner."""
        now = int(time.time())
        lifetime = min(days * 86400, int(max_lifetime().total_seconds()))
        claims = {
            "iss": DEMO_ISSUER,
            "sub": personal_id,
            "aud": str(self.client.identifier),
            "scope": Scope.RECORDS_READ.value,
            "purpose": purpose,
            "iat": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self.private_key, algorithm="ES256")


def _private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(loaded, ec.EllipticCurvePrivateKey):
            return loaded
    key = ec.generate_private_key(ec.SECP256R1())
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    return key


@transaction.atomic
def api_demo_seed(*, actor: User, key_file: Path) -> DemoApi:
    """The demo issuer (its key in `key_file`) and partner, registered if missing; a new API key
    for the partner (its earlier demo keys revoked)."""
    private_key = _private_key(key_file)
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
        .strip()
    )
    issuer = ConsentIssuer.objects.filter(issuer=DEMO_ISSUER).first()
    if issuer is None:
        issuer = consent_issuer_register(
            actor=actor,
            name="Ứng dụng định danh (demo)",
            issuer=DEMO_ISSUER,
            algorithm=ConsentAlgorithm.ES256,
            public_key=public_pem,
        )
    else:
        issuer = consent_issuer_update(actor=actor, issuer=issuer, public_key=public_pem, active=True)
    client = PartnerClient.objects.filter(name=DEMO_PARTNER).first()
    if client is None:
        client = partner_client_register(
            actor=actor,
            name=DEMO_PARTNER,
            kind=PartnerKind.PUBLIC_SERVICE_PORTAL,
            scopes=list(Scope.values),
            purposes=list(Purpose.values),
            throttle_rate="120/min",
            active=True,
        )
    issued = partner_key_issue(actor=actor, client=client, revoke_others=True)
    return DemoApi(client=client, key=issued.secret, issuer=issuer, private_key=private_key)
