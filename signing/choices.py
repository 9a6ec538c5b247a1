"""The signing app's vocabularies: a leaf module (imports nothing of ours), for every app to read.

`ProblemCode` names each refusal the verifier (signing.verify) can make. Its label is what the
refusal means to a reader, in their language: the one mapping from a code to the message shown,
on the public verification page, when a prior record is attached and before a certificate signs.
The verifier's technical sentence (English) travels beside the code as `Problem.detail`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _


class ProblemCode(models.TextChoices):
    # The document as a whole (reported at position 0).
    NOT_A_YEAR_RECORD = (
        "not_a_year_record",
        _("The file is not a valid year record, so it cannot be verified."),
    )
    DUPLICATE_ID = (
        "duplicate_id",
        _("An identifier is used twice in the document: its structure was altered around its signatures."),
    )
    CONTENT_COUNT = (
        "content_count",
        _(
            "The document does not have exactly one content part: "
            "its structure was altered around its signatures."
        ),
    )
    # The profile of one signature.
    TOO_MANY_SIGNATURES = (
        "too_many_signatures",
        _("The record carries more signatures than a year record has."),
    )
    ID_OUTSIDE_PROFILE = (
        "id_outside_profile",
        _("The signature's identifier does not belong to this record's signature profile."),
    )
    ORDER_CHANGED = "order_changed", _("The signatures are not in their order: the document was altered.")
    WRONG_ROLE = "wrong_role", _("The signature stands in the place of another signer's signature.")
    NO_SIGNED_INFO = "no_signed_info", _("The signature lacks the part that says what it signs.")
    WRONG_CANONICALIZATION = (
        "wrong_canonicalization",
        _("The signature does not use the canonicalisation method the profile requires."),
    )
    WRONG_SIGNATURE_METHOD = (
        "wrong_signature_method",
        _("The signature is not made with RSA or ECDSA and SHA-256, as the profile requires."),
    )
    WRONG_REFERENCES = (
        "wrong_references",
        _("The signature does not cover the content and the earlier signatures in order."),
    )
    FOREIGN_SIGNED_PROPERTIES = (
        "foreign_signed_properties",
        _("The signature's signed properties (signing time, role) are not its own."),
    )
    FOREIGN_KEY_INFO = (
        "foreign_key_info",
        _("The signature's certificate reference does not point to its own certificate."),
    )
    WRONG_TRANSFORM = (
        "wrong_transform",
        _("The signature transforms the document in a way the profile does not allow."),
    )
    WRONG_DIGEST_METHOD = "wrong_digest_method", _("The signature does not digest the document with SHA-256.")
    # What the signature carries.
    NO_SIGNING_TIME = "no_signing_time", _("The signature does not say when it was made.")
    UNREADABLE_CERTIFICATE = (
        "unreadable_certificate",
        _("The signer's certificate in the signature cannot be read."),
    )
    MISSING_CERTIFICATE = "missing_certificate", _("The signature does not carry the signer's certificate.")
    ALTERED = "altered", _("The signature does not match the document: it was changed after signing.")
    MALFORMED = "malformed", _("The signature is damaged and cannot be checked.")
    UNCHECKABLE = "uncheckable", _("The signature could not be checked.")
    WRONG_CLAIMED_ROLE = (
        "wrong_claimed_role",
        _("The signature claims another signer's role than its place requires."),
    )
    # The signer's certificate.
    NO_TRUST_ROOTS = "no_trust_roots", _("This portal has no trusted certification authority configured.")
    CA_AS_SIGNER = (
        "ca_as_signer",
        _("The signer's certificate belongs to a certification authority, not to a person or a school."),
    )
    KEY_USAGE = "key_usage", _("The certificate is not meant for signing documents.")
    NO_KEY_USAGE = (
        "no_key_usage",
        _("The certificate does not say what it may be used for, so it cannot sign."),
    )
    ISSUER_NOT_CA = (
        "issuer_not_ca",
        _("A certificate in the signer's chain is not a certification authority's."),
    )
    UNTRUSTED_ISSUER = (
        "untrusted_issuer",
        _("The certificate was not issued by a certification authority this portal trusts."),
    )
    CHAIN_TOO_LONG = (
        "chain_too_long",
        _("The certificate's chain of certification authorities is longer than this portal accepts."),
    )
    NOT_YET_VALID = "not_yet_valid", _("The certificate was not yet valid when it signed.")
    EXPIRED = "expired", _("The certificate had expired when it signed.")
    REVOCATION_UNKNOWN = "revocation_unknown", _("The certificate's revocation status cannot be checked.")
    REVOKED = "revoked", _("The certificate has been revoked by the authority that issued it.")
    # The signature's timestamp (XAdES-T) and archive timestamps (XAdES-LTA).
    TIMESTAMP_INVALID = (
        "timestamp_invalid",
        _("The signature's timestamp is damaged or does not belong to it, so its time is not proven."),
    )
    TIMESTAMP_UNTRUSTED = (
        "timestamp_untrusted",
        _(
            "The signature's timestamp does not come from a timestamping authority this portal "
            "trusts, or its certificate was not valid when it stamped."
        ),
    )
    TIMESTAMP_EXPIRED = (
        "timestamp_expired",
        _(
            "The certificate of the timestamping authority is no longer valid and no archive "
            "timestamp made before that renews the proof of time."
        ),
    )
    ARCHIVE_TIMESTAMP_INVALID = (
        "archive_timestamp_invalid",
        _("An archive timestamp of the signature is damaged, untrusted or made too late."),
    )
    # Notes: facts a reader should see that do not make the signature invalid.
    EXPIRED_SINCE = (
        "expired_since",
        _(
            "The certificate has expired since; the timestamp proves it was valid when it signed, "
            "so the signature stays valid."
        ),
    )
    REVOKED_SINCE = (
        "revoked_since",
        _(
            "The certificate was revoked after the time the timestamp proves; the signature made "
            "before that stays valid."
        ),
    )


@dataclass(frozen=True)
class Problem:
    """One refusal of the verifier: what it is (`code`) and its technical detail (English)."""

    code: ProblemCode
    detail: str

    @property
    def message(self) -> str:
        """What the refusal means, in the reader's language."""
        return str(self.code.label)

    def __str__(self) -> str:
        return self.detail
