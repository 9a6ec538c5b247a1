"""The trust store's CRLs: read from files or URLs, kept when a source fails, a stale one said."""

from __future__ import annotations

import datetime as dt
import logging

from cryptography.hazmat.primitives.serialization import Encoding

from signing import ca, trust


def test_a_crl_past_its_next_update_is_used_and_logged(settings, tmp_path, caplog):
    dev = ca.dev_ca()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    stale = ca.issue_crl(dev, [42], this_update=past, next_update=past + dt.timedelta(days=7))
    (tmp_path / "stale.pem").write_bytes(stale.public_bytes(Encoding.PEM))
    settings.HOCBA_TRUST_CRLS = [str(tmp_path / "stale.pem")]
    trust.trust_reset()
    try:
        with caplog.at_level(logging.WARNING, logger="signing.trust"):
            crls = trust.crls()
    finally:
        trust.trust_reset()
    assert [c.get_revoked_certificate_by_serial_number(42) is not None for c in crls] == [True]
    assert "past its next update" in caplog.text


def test_a_source_that_cannot_be_read_keeps_its_last_good_copy(settings, tmp_path, caplog):
    dev = ca.dev_ca()
    source = tmp_path / "crl.pem"
    source.write_bytes(ca.issue_crl(dev, [7]).public_bytes(Encoding.PEM))
    settings.HOCBA_TRUST_CRLS = [str(source)]
    trust.trust_reset()
    try:
        assert len(trust.crls()) == 1
        source.write_bytes(b"not a CRL")
        with caplog.at_level(logging.WARNING, logger="signing.trust"):
            kept = trust.crls(fresh=True)
    finally:
        trust.trust_reset()
    assert len(kept) == 1 and kept[0].get_revoked_certificate_by_serial_number(7) is not None
    assert "keeping the last good copy" in caplog.text
