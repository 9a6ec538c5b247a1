"""gunicorn's configuration for the portal: `gunicorn -c config/gunicorn.py config.wsgi`.

Everything a province changes comes from the environment (docs/operations.md, "Production
deployment"); TLS is ended by the province's proxy in front, or by `--certfile/--keyfile` for
`make serve` and the tests' production stack (tests/production_stack.py).
"""

from __future__ import annotations

import os

# The number of web worker processes when HOCBA_WEB_WORKERS is not set: sync workers, two a core.
# Measured (docs/benchmarks.md, "Issue 16": bench/load on the quiet 2-core machine, the season's
# mix, 40 users): sync 4 workers 24.2 req/s, p95 180 ms; gthread 2 x 4 threads 23.7 req/s, p95
# 339 ms (and a database connection per thread); sync 2 workers 20.1 req/s, p95 1.2 s (a core
# idles while its worker waits on PostgreSQL). A fifth worker on 2 cores added ~140 MB and a
# connection for no gain (bench/web_workers.py). Change the model and count here, in one place.
DEFAULT_WEB_WORKERS = 2 * (os.cpu_count() or 1)
DEFAULT_WORKER_CLASS = "sync"


def _addresses(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


bind = _addresses(os.environ.get("HOCBA_BIND", "127.0.0.1:8000"))
workers = int(os.environ.get("HOCBA_WEB_WORKERS", "") or DEFAULT_WEB_WORKERS)
worker_class = os.environ.get("HOCBA_WEB_WORKER_CLASS", "") or DEFAULT_WORKER_CLASS
threads = int(os.environ.get("HOCBA_WEB_THREADS", "") or 1)

# A request longer than this is killed with its worker (a stuck query, a runaway render): the
# slowest page (an export, a verification upload) takes a few seconds. On SIGTERM, requests in
# flight get graceful_timeout to finish.
timeout = int(os.environ.get("HOCBA_WEB_TIMEOUT", "") or 60)
graceful_timeout = int(os.environ.get("HOCBA_WEB_GRACEFUL_TIMEOUT", "") or 30)
keepalive = 5  # behind a proxy that keeps connections to gunicorn open
# Each worker is replaced after about this many requests (with jitter, so that they are not all
# replaced at once): whatever a long-lived process accumulates is given back.
max_requests = int(os.environ.get("HOCBA_WEB_MAX_REQUESTS", "") or 2000)
max_requests_jitter = max(1, max_requests // 10)

# The client's address and scheme are decided by the portal (portal.security.TrustedProxyMiddleware,
# HOCBA_TRUSTED_PROXIES), never by gunicorn: gunicorn's own defaults would believe X-Forwarded-Proto
# from any local process. The same list is given to gunicorn for what it still reads (SCRIPT_NAME).
forwarded_allow_ips = ",".join(_addresses(os.environ.get("HOCBA_TRUSTED_PROXIES", "")))
secure_scheme_headers: dict[str, str] = {}

# Logs on stderr (the journal under systemd); the access log with the request's time in µs (%(D)s)
# and the client address Django saw is not available here: the proxy's log has it.
accesslog = os.environ.get("HOCBA_WEB_ACCESS_LOG", "") or "-"
errorlog = os.environ.get("HOCBA_WEB_ERROR_LOG", "") or "-"
loglevel = os.environ.get("HOCBA_WEB_LOG_LEVEL", "") or "info"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(D)sus "%(a)s"'
# No control socket: it is one fixed path per user, shared by every gunicorn of that user.
control_socket_disable = True
# Worker heartbeats in memory, not on a disk that may be slow or full.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - gunicorn's advice
proc_name = "hocba-web"
