"""Fixtures shared by the signing tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from signing.backends.pkcs11 import default_library


@pytest.fixture(scope="session")
def softhsm_dir(softhsm_session_dir) -> Path:
    """The SoftHSM2 directory of this test process, configured (SOFTHSM2_CONF) before any token use.

    SoftHSM2 reads its configuration once per process, so every test shares this directory: pass
    it to seal_token_provision, and give each test module's tokens labels of its own.
    """
    if default_library() is None:  # fail, never skip: a quiet skip let a green run check nothing
        pytest.fail("SoftHSM2 is missing: apt-get install softhsm2")
    return softhsm_session_dir
