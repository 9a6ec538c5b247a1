"""The reference CSC service, started once for the session (tests/reference/service.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reference.service import CscService


@pytest.fixture(scope="session")
def csc_service() -> Iterator[CscService]:
    service = CscService()
    try:
        yield service
    finally:
        service.stop()
