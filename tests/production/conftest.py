"""One production stack (tests/production_stack.py) for the tests of this folder, on the session's
test province."""

from __future__ import annotations

import pytest

from tests.production_stack import ProductionStack


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker, signing_trust):
    with ProductionStack.for_test_session() as running:
        yield running
