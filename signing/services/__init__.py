"""Signing: certificates registered with their holders, and batches of year records signed in the background.

By sub-domain: `certificates` (what a certificate says, whether it can sign now, registering and
removing one), `batches` (the signer's side of a batch: start, confirm, cancel, sign the failures
again) and `runner` (the Celery job's body: the lease, each item, the resume sweep, the queue).

The flow of a batch (design.md §4, domain.md §5):

1. `signing_batch_start`: the signer picks the records (a class, or the whole school) at one step
   (homeroom teacher, principal, seal) and the certificate; the batch lists the records that are
   at that step now. With a remote-signing service the service is asked to send its OTP.
2. `signing_batch_confirm`: one confirmation for the whole batch: the PIN of the key file or the
   token, or the OTP of the remote-signing service (which returns an authorisation for the
   batch's signatures), plus a fresh two-factor code for the principal's step. What unlocks the
   key is kept encrypted on the batch until it ends. Then the batch is queued.
3. `signing_batch_run` (a Celery task): holds a lease on the batch and signs item after item.
   Each item is signed in its own transaction that also records its outcome, with the record's
   state, the signer's role and the certificate checked again: a failure is recorded with its
   reason and the batch goes on; a worker that dies leaves the lease to run out and the resume
   sweep (`signing_batches_resume`) hands the batch to another worker, which carries on with the
   items still pending. No record is signed twice: its signature and its item's outcome commit
   together, and the database refuses a second signature at a step (transcripts migration 0009).
4. Failed items can be signed again in a new batch of their own (`signing_batch_retry`).
"""

from .batches import (
    CSC_SPARE_SHARE,
    signing_batch_cancel,
    signing_batch_confirm,
    signing_batch_otp_resend,
    signing_batch_retry,
    signing_batch_start,
)
from .certificates import (
    can_manage_seal,
    certificate_objects,
    certificate_refusal,
    certificate_register,
    certificate_register_csc,
    certificate_register_pkcs11,
    certificate_register_pkcs12,
    certificate_remove,
    certificate_subject_name,
    csc_credentials,
    key_error_message,
)
from .runner import lease_seconds, signing_batch_enqueue, signing_batch_run, signing_batches_resume

__all__ = [
    "CSC_SPARE_SHARE",
    "can_manage_seal",
    "certificate_objects",
    "certificate_refusal",
    "certificate_register",
    "certificate_register_csc",
    "certificate_register_pkcs11",
    "certificate_register_pkcs12",
    "certificate_remove",
    "certificate_subject_name",
    "csc_credentials",
    "key_error_message",
    "lease_seconds",
    "signing_batch_cancel",
    "signing_batch_confirm",
    "signing_batch_enqueue",
    "signing_batch_otp_resend",
    "signing_batch_retry",
    "signing_batch_run",
    "signing_batch_start",
    "signing_batches_resume",
]
