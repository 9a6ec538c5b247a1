"""Command line of the reference timestamping service.

    python -m reference.tsa serve  --data DIR [--host 127.0.0.1] [--port 0] [--delay-ms 0]
                                   [--algorithm ec|rsa] [--tsa-days 1825]
    python -m reference.tsa revoke --data DIR [--at ISO]   (revoke the TSA certificate)

`serve` logs to stderr; once bound it prints `listening on http://HOST:PORT` to stdout (with
--port 0 the port is a free one, read from there by a parent process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .authority import Authority
from .server import TsaHTTPServer

log = logging.getLogger("reference.tsa")


def serve(args: argparse.Namespace) -> int:
    authority = Authority(args.data, algorithm=args.algorithm, lifetime=dt.timedelta(days=args.tsa_days))
    server = TsaHTTPServer((args.host, args.port), authority, delay_ms=args.delay_ms)

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "data in %s; TSA certificate serial %x valid until %s; delay %d ms",
        args.data,
        authority.cert.serial_number,
        authority.cert.not_valid_after_utc.isoformat(),
        args.delay_ms,
    )
    log.info("listening on %s", server.url)
    print(f"listening on {server.url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        log.info("stopped")
    return 0


def revoke(args: argparse.Namespace) -> int:
    authority = Authority(args.data)
    authority.revoke_tsa(dt.datetime.fromisoformat(args.at) if args.at else None)
    print(f"revoked {authority.cert.serial_number:x}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reference.tsa", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the HTTP service")
    run.add_argument("--data", type=Path, required=True, help="state directory (created)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=0)
    run.add_argument("--delay-ms", type=int, default=0, help="added to every timestamp")
    run.add_argument("--algorithm", choices=("ec", "rsa"), default="ec", help="of a new TSA key")
    run.add_argument("--tsa-days", type=int, default=5 * 365, help="lifetime of a new TSA certificate")
    run.set_defaults(handler=serve)
    end = commands.add_parser("revoke", help="revoke the TSA certificate (its CA's CRL lists it)")
    end.add_argument("--data", type=Path, required=True)
    end.add_argument("--at", help="revocation date, ISO 8601 with offset (default now)")
    end.set_defaults(handler=revoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "delay_ms", 0) < 0:
        print("--delay-ms must not be negative", file=sys.stderr)
        return 2
    if hasattr(sys.stderr, "reconfigure"):
        sys.stderr.reconfigure(line_buffering=True)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
