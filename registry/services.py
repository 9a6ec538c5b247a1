"""Writes of the registry (style.md: services).

The verification log is written by registry.verification.verification_log; the index rows by
transcripts through portal.services, inside the transaction that issues a version (design.md §2).
The forwarding outbox, receipts and the partner API will live here.
"""

from __future__ import annotations

from .verification import verification_log

__all__ = ["verification_log"]
