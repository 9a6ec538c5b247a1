"""The reference timestamping service in a subprocess, for tests: real process, real HTTP.

    tsa = TsaService()                  # a temp data dir, a free port
    tsa.url                             # what HOCBA_TSA_URL points at
    tsa.roots_file, tsa.crl_url         # its CA for HOCBA_TSA_TRUST_ROOTS, its CRL for HOCBA_TRUST_CRLS
    tsa.stop()

`tests/conftest.py` starts one for the session (fixture `tsa_service`) and points the settings at
it only in tests that ask for the fixture `timestamping`.
"""

from __future__ import annotations

from pathlib import Path

from tests.reference.process import ReferenceProcess, ReferenceProcessError


class TsaServiceError(ReferenceProcessError):
    """The service did not start."""


class TsaService(ReferenceProcess):
    module = "reference.tsa"
    what = "The timestamping service"
    error = TsaServiceError

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        delay_ms: int | None = None,
        tsa_days: int | None = None,
        startup_timeout: float = 20,
    ):
        options = ["--delay-ms", str(delay_ms)] if delay_ms is not None else []
        if tsa_days is not None:
            options += ["--tsa-days", str(tsa_days)]
        super().__init__(data_dir, prefix="tsa-service-", options=options, startup_timeout=startup_timeout)
        self._start(port=0)

    @property
    def roots_file(self) -> Path:
        return self.data_dir / "ca" / "root.pem"

    @property
    def crl_url(self) -> str:
        return f"{self.url}/ca/crl.der"
