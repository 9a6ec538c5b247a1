"""The registry's vocabularies (style.md: one vocabulary per concept, in a leaf module)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class MessageKind(models.TextChoices):
    """docs/ministry-contract.md, Messages."""

    SUBMIT = "submit", _("New record")
    REPLACE = "replace", _("Correction")
    CANCEL = "cancel", _("Revocation")


class OutboxState(models.TextChoices):
    """Where a message to the Ministry's repository stands (registry.forwarding)."""

    WAITING_PERSONAL_ID = "waiting_personal_id", _("Waiting for the student's personal ID")
    PENDING = "pending", _("Waiting to be sent")
    SENDING = "sending", _("Being sent")
    SENT = "sent", _("Received by the Ministry, waiting for its verdict")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged by the Ministry")
    REJECTED = "rejected", _("Rejected by the Ministry")
    DEAD = "dead", _("Stopped after repeated failures")
    VOID = "void", _("Not sent: the Ministry never held this version")


# A message in one of these states is finished: the next message of the same record may go.
FINISHED_STATES = frozenset({OutboxState.ACKNOWLEDGED, OutboxState.REJECTED, OutboxState.VOID})
# States the relay claims (when due); the state an operator may replay from (a rejected message
# is not replayed: the same key gets the same verdict; a correction makes a new message).
DUE_STATES = frozenset({OutboxState.PENDING, OutboxState.SENT})
REPLAYABLE_STATES = frozenset({OutboxState.DEAD})


class RejectionCode(models.TextChoices):
    """The repository's coded reasons (docs/ministry-contract.md, Verdicts)."""

    SCHEMA = "schema", _("The document does not follow the Ministry's format (XSD).")
    SIGNATURE = (
        "signature",
        _("A signature does not verify or its certificate is not trusted by the Ministry."),
    )
    PERSONAL_ID_MISSING = "personal_id_missing", _("The student's personal ID number is missing.")
    UNKNOWN_SCHOOL = "unknown_school", _("The Ministry does not know this school under the Department.")
    MISMATCH = "mismatch", _("The envelope (school, record, version) disagrees with the document.")
    UNKNOWN_VERSION = "unknown_version", _("The version corrected or revoked is not held by the Ministry.")
