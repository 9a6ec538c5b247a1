"""Command line of the reference Ministry repository.

    python -m reference.ministry serve --data DIR [--host 127.0.0.1] [--port 0]
                 [--tls-cert PEM --tls-key PEM [--client-ca PEM]]
                 [--trust-roots PEM ...] [--untrusted-pem PEM ...]
                 [--error-rate F] [--latency-ms N] [--drop-rate F] [--throttle-next N]
                 [--retry-after S] [--crash-after-store-next N] [--seed N]
    python -m reference.ministry school-add --data DIR --code C [--code C2 ...]

The Department's token comes from $MINISTRY_TOKEN only (never the command line, where `ps`
shows it to everyone). `serve` logs to stderr, line by line; once bound it logs and prints to
stdout `listening on http(s)://HOST:PORT` (with --port 0 the port is a free one). `school-add`
writes to the data directory directly; a running server sees the schools at its next verdict.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .server import Faults, MinistryHTTPServer
from .store import MessageStore
from .validate import Validator

log = logging.getLogger("reference.ministry")


def _logging() -> None:
    if hasattr(sys.stderr, "reconfigure"):
        sys.stderr.reconfigure(line_buffering=True)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.tls_cert, args.tls_key)
    if args.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(args.client_ca))
    return context


def serve(args: argparse.Namespace) -> int:
    token = os.environ.get("MINISTRY_TOKEN", "")
    if not token:
        print("serve: the Department's token is needed in $MINISTRY_TOKEN", file=sys.stderr)
        return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.client_ca and not args.tls_cert:
        print("serve: --client-ca needs --tls-cert and --tls-key", file=sys.stderr)
        return 2
    if not args.tls_cert and args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("Listening on %s without TLS: the token and the records travel in clear", args.host)
    if not args.trust_roots:
        log.warning("No --trust-roots: every signed document will be rejected (signature)")
    faults = Faults()
    try:
        faults.update(
            {
                "error_rate": args.error_rate,
                "latency_ms": args.latency_ms,
                "drop_rate": args.drop_rate,
                "throttle_next": args.throttle_next,
                "retry_after": args.retry_after,
                "crash_after_store_next": args.crash_after_store_next,
            }
        )
    except ValueError as error:
        print(f"serve: {error}", file=sys.stderr)
        return 2
    store = MessageStore(args.data)
    validator = Validator(store, trust_roots=args.trust_roots, untrusted=args.untrusted_pem)
    server = MinistryHTTPServer(
        (args.host, args.port),
        store=store,
        validator=validator,
        token=token,
        faults=faults,
        seed=args.seed,
        ssl_context=_ssl_context(args),
    )
    validator.held = lambda: server.faults.hold_verdicts > 0  # type: ignore[method-assign]

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    validator.start()
    log.info(
        "data in %s; %d trust root file(s); client certificates %s; schools: %s",
        args.data,
        len(args.trust_roots),
        "required" if args.client_ca else "not asked for",
        ", ".join(store.schools()) or "none",
    )
    log.info("listening on %s", server.url)
    print(f"listening on {server.url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        validator.stop()
        log.info("stopped")
    return 0


def school_add(args: argparse.Namespace) -> int:
    codes = [c.strip() for c in args.code if c.strip()]
    if not codes:
        print("school-add: give at least one --code", file=sys.stderr)
        return 2
    print(json.dumps({"schools": MessageStore(args.data).schools_add(codes)}, ensure_ascii=False))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reference.ministry", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("serve", help="run the HTTP(S) repository")
    run.add_argument("--data", type=Path, required=True, help="state directory (created)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=0, help="0: a free port, printed once listening")
    run.add_argument("--tls-cert", type=Path, help="the server's certificate chain (PEM)")
    run.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    run.add_argument("--client-ca", type=Path, help="require client certificates issued by this CA (PEM)")
    run.add_argument(
        "--trust-roots", type=Path, nargs="+", default=[], metavar="PEM", help="CAs trusted for signatures"
    )
    run.add_argument(
        "--untrusted-pem",
        type=Path,
        nargs="+",
        default=[],
        metavar="PEM",
        help="intermediate CA certificates",
    )
    run.add_argument("--error-rate", type=float, default=0.0, help="share of /v1/ requests answered 503")
    run.add_argument("--latency-ms", type=int, default=0, help="sleep before handling each /v1/ request")
    run.add_argument("--drop-rate", type=float, default=0.0, help="share of /v1/ requests dropped unanswered")
    run.add_argument("--throttle-next", type=int, default=0, help="the next N message POSTs get 429")
    run.add_argument("--retry-after", type=int, default=1, help="the Retry-After of those 429s (seconds)")
    run.add_argument(
        "--crash-after-store-next", type=int, default=0, help="exit (3) after storing the next N new messages"
    )
    run.add_argument("--seed", type=int, default=None, help="seed of the fault RNG")
    run.set_defaults(handler=serve)

    add = commands.add_parser("school-add", help="register schools to the Department, offline")
    add.add_argument("--data", type=Path, required=True)
    add.add_argument("--code", action="append", required=True, help="a school code (repeat for more)")
    add.set_defaults(handler=school_add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _logging()
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
