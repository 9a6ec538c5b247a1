"""Fixtures shared by the signing tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from signing.backends.pkcs11 import default_library
from signing.softhsm import softhsm_configure


@pytest.fixture(scope="session")
def softhsm_dir(tmp_path_factory) -> Path:
    """The SoftHSM2 directory of this test process, configured (SOFTHSM2_CONF) before any token use.

    SoftHSM2 reads its configuration once per process, so every test shares this directory: pass
    it to seal_token_provision, and give each test module's tokens labels of its own.
    """
    if default_library() is None:
        pytest.skip("SoftHSM2 is not installed (Debian packages softhsm2 and libsofthsm2)")
    directory = tmp_path_factory.mktemp("softhsm")
    softhsm_configure(directory)
    return directory
