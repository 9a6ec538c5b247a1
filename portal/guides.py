"""The first-time guides: what a step does and what cannot be undone, for a wary first signer.

Issue 14, "teachers new to signing": the first time a teacher, principal or clerk meets a step,
a short guide says what will happen and what cannot be undone, with a link to the page that
explains digital signatures in plain words. The texts live here, in one place, so that they are
read and translated together; `{% guide "code" %}` (portal.templatetags.guides) shows them, and
portal.services_guides remembers who has dismissed which.

Who sees a guide is decided by the page, with the capability its view already computed
(`{% guide "sign_batch" when=offer.certificates %}`), never by comparing role codes here.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Guide:
    """One guide: its title, what will happen, and what cannot be undone (each a list of points)."""

    code: str
    title: Promise
    happens: tuple[Promise, ...]
    irreversible: tuple[Promise, ...]


OPEN_GRADEBOOK = Guide(
    code="open_gradebook",
    title=_("Before you enter scores"),
    happens=(
        _(
            "Each score or comment is saved on its own as soon as you leave its cell: "
            "there is no Save button."
        ),
        _(
            "If the connection drops, what you type is kept on this device, marked “not sent yet”, "
            "and sent by itself when the connection returns."
        ),
        _("You change only the classes and subjects assigned to you; the other cells are there to read."),
        _("Every change is recorded: who made it, when, the old value and the new one."),
    ),
    irreversible=(
        _(
            "When the principal locks a term, its scores can no longer be changed here "
            "(only the principal can unlock it)."
        ),
        _(
            "Once the year records are signed, a score is changed only through a correction: a new "
            "version, with a reason and the principal's approval, signed again. The signed version "
            "stays on file."
        ),
    ),
)

CONFIRM_CLASS = Guide(
    code="confirm_class",
    title=_("Confirming the class's year records"),
    happens=(
        _(
            "Confirming says that you, the homeroom teacher, have checked each student's year record: "
            "scores, conduct, results, comments and awards."
        ),
        _("Look through the records before confirming: what you confirm is what will be signed."),
        _(
            "Confirmed records then wait for the signatures: yours first, then the principal's, and "
            "last the school's seal."
        ),
    ),
    irreversible=(
        _(
            "A confirmed record does not go back to a draft. If you find a mistake afterwards, ask "
            "for a correction: a new version is made from the grade book as it is then."
        ),
    ),
)

REGISTER_CERTIFICATE = Guide(
    code="register_certificate",
    title=_("Registering your signing certificate"),
    happens=(
        _(
            "A certificate is a certification authority's statement that the signing key is yours. "
            "The portal checks that it carries your name, is still valid and comes from a trusted "
            "authority."
        ),
        _(
            "A key file is stored encrypted; its PIN is never stored and is asked for each time you "
            "sign. With a remote signing service, you confirm each signing on your phone."
        ),
        _("Registering a certificate signs nothing yet."),
    ),
    irreversible=(
        _(
            "A signature made with your certificate has the legal value of your handwritten "
            "signature. Keep the key file, the PIN and your phone to yourself: whoever holds them "
            "can sign in your name."
        ),
        _(
            "If the file is lost or someone else learns the PIN, choose “Stop using” here at "
            "once and tell the school and the certification authority. Signatures made before stay "
            "valid."
        ),
    ),
)

SIGN_BATCH = Guide(
    code="sign_batch",
    title=_("Signing year records"),
    happens=(
        _(
            "You sign every record listed at once, with one confirmation: the PIN of your key file, "
            "or the code (OTP) that the remote signing service sends to your phone."
        ),
        _(
            "Each record receives your digital signature, with your name and title as your "
            "certificate gives them, and the time of signing."
        ),
        _(
            "The signing runs on its own: the page shows its progress, and records that fail "
            "can be signed again."
        ),
    ),
    irreversible=(
        _("A signature cannot be taken back. Check the records before you confirm."),
        _(
            "After signing, the record's content is locked: changing a single score would break the "
            "signature. A mistake is corrected only by a new version, with a reason and the "
            "principal's approval; the signed version can still be checked, marked as replaced."
        ),
    ),
)

SEAL = Guide(
    code="seal",
    title=_("Applying the school's seal"),
    happens=(
        _(
            "The seal is the school's own certificate, not a person's. It is applied last, after the "
            "homeroom teacher's and the principal's signatures."
        ),
        _(
            "Sealing issues the record: from then on it is the official transcript, it is queued for "
            "the Ministry's repository, and parents can check it on the verification page."
        ),
        _("One confirmation with the seal's PIN seals every record of the batch."),
    ),
    irreversible=(
        _(
            "An issued record cannot be unsealed. A mistake is corrected by a new version that the "
            "principal approves and that is signed again three times; the old version stays on "
            "file, marked as replaced."
        ),
    ),
)

GUIDES: dict[str, Guide] = {
    guide.code: guide for guide in (OPEN_GRADEBOOK, CONFIRM_CLASS, REGISTER_CERTIFICATE, SIGN_BATCH, SEAL)
}


def guide_get(code: str) -> Guide | None:
    """The guide named `code`, or None for a code no guide has (a typo, or a hostile post)."""
    return GUIDES.get(code)
