"""Command line of the reference signing service.

    python -m reference.csc serve  --data DIR [--host 127.0.0.1] [--port 0] --client-secret S
                                   [--sad-lifetime 900] [--otp-lifetime 300] [--delay-ms 0]
    python -m reference.csc enrol  --data DIR --user ID --name NAME [--title T] [--organisation O]
                                   [--algorithm ec|rsa] [--not-before ISO] [--not-after ISO]
    python -m reference.csc revoke --data DIR --credential ID

`serve` logs to stderr, line by line; once bound it logs and prints to stdout
`listening on http://HOST:PORT` (with --port 0 the port is a free one, so a parent process
reads it from there). The client secret may come from $CSC_CLIENT_SECRET instead of the
command line, where other users could read it in `ps`. `enrol` and `revoke` work on the data
directory directly (a running server sees the change) and print their answer as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .server import CscHTTPServer
from .service import ApiError, CscService
from .store import CredentialStore

log = logging.getLogger("reference.csc")


def _logging() -> None:
    if hasattr(sys.stderr, "reconfigure"):
        sys.stderr.reconfigure(line_buffering=True)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def serve(args: argparse.Namespace) -> int:
    secret = args.client_secret or os.environ.get("CSC_CLIENT_SECRET", "")
    if not secret:
        print("serve: a client secret is needed (--client-secret or $CSC_CLIENT_SECRET)", file=sys.stderr)
        return 2
    if len(secret) < 16:
        log.warning("The client secret is short (%d characters); use 16 or more", len(secret))
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("Listening on %s without TLS: the client secret and hashes travel in clear", args.host)
    service = CscService(
        CredentialStore(args.data),
        sad_lifetime=args.sad_lifetime,
        otp_lifetime=args.otp_lifetime,
        delay_ms=args.delay_ms,
    )
    server = CscHTTPServer((args.host, args.port), service, secret)

    def stop(signum: int, frame: object) -> None:
        # shutdown() waits for serve_forever() to return: call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("data in %s; SAD lifetime %d s; delay %d ms", args.data, args.sad_lifetime, args.delay_ms)
    log.info("listening on %s", server.url)
    print(f"listening on {server.url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)  # a quick stop for tests and `make run`
    finally:
        server.server_close()
        log.info("stopped")
    return 0


def enrol(args: argparse.Namespace) -> int:
    service = CscService(CredentialStore(args.data))
    body = {
        "userID": args.user,
        "name": args.name,
        "title": args.title,
        "organisation": args.organisation,
        "algorithm": args.algorithm,
        "notBefore": args.not_before,
        "notAfter": args.not_after,
    }
    try:
        answer = service.admin_enrol({k: v for k, v in body.items() if v is not None})
    except ApiError as error:
        print(f"enrol: {error.description}", file=sys.stderr)
        return 2
    print(json.dumps(answer))
    return 0


def revoke(args: argparse.Namespace) -> int:
    service = CscService(CredentialStore(args.data))
    try:
        answer = service.admin_revoke({"credentialID": args.credential})
    except ApiError as error:
        print(f"revoke: {error.description}", file=sys.stderr)
        return 2
    print(json.dumps(answer))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reference.csc", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("serve", help="run the HTTP service")
    run.add_argument("--data", type=Path, required=True, help="state directory (created)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=0, help="0: a free port, printed once listening")
    run.add_argument("--client-secret", default="", help="the portal's bearer token ($CSC_CLIENT_SECRET)")
    run.add_argument("--sad-lifetime", type=int, default=900, metavar="SECONDS")
    run.add_argument("--otp-lifetime", type=int, default=300, metavar="SECONDS")
    run.add_argument("--delay-ms", type=int, default=0, help="added to every signHash (tests, benchmarks)")
    run.set_defaults(handler=serve)

    new = commands.add_parser("enrol", help="create a credential (key + certificate) offline")
    new.add_argument("--data", type=Path, required=True)
    new.add_argument("--user", required=True, help="the userID the portal lists credentials by")
    new.add_argument("--name", required=True, help="the signer's full name (certificate CN)")
    new.add_argument("--title", default="", help="e.g. Giáo viên chủ nhiệm, Hiệu trưởng")
    new.add_argument("--organisation", default="")
    new.add_argument("--algorithm", choices=("ec", "rsa"), default="ec")
    new.add_argument("--not-before", help="ISO 8601 with offset")
    new.add_argument("--not-after", help="ISO 8601 with offset")
    new.set_defaults(handler=enrol)

    end = commands.add_parser("revoke", help="revoke a credential offline")
    end.add_argument("--data", type=Path, required=True)
    end.add_argument("--credential", required=True)
    end.set_defaults(handler=revoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for name in ("sad_lifetime", "otp_lifetime", "delay_ms"):
        if getattr(args, name, 0) < 0:
            print(f"--{name.replace('_', '-')} must not be negative", file=sys.stderr)
            return 2
    _logging()
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
