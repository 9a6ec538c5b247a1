"""The portal as production runs it, for tests: gunicorn on config.wsgi over TLS, DEBUG off.

    with ProductionStack.for_test_session() as stack:        # the session's test database
        httpx.get(stack.url + "/", verify=str(stack.ca_file))

What runs is `gunicorn -c config/gunicorn.py config.wsgi` with the production settings: DJANGO_DEBUG=0,
HOCBA_TESTING=0, a random DJANGO_SECRET_KEY, static files from a real `collectstatic` (hashed
names, .gz/.br, WhiteNoise, no finders), HSTS, CSP, secure cookies and the SSL redirect. Only the
data stores are the test's: its database, its Redis and its cache prefix, its documents directory,
its signing trust store. The one difference from config.settings is the password hasher
(tests/production/server_settings.py says why).

TLS comes from a throwaway CA made here with `cryptography` (`ca_file` is its certificate, for
clients to trust). collectstatic runs once per test process (about 20 s on 2 loaded cores) and
is shared by every stack of the process.
"""

from __future__ import annotations

import atexit
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

ROOT = Path(__file__).resolve().parents[1]
SERVER_SETTINGS = "tests.production.server_settings"
# Files no page of the portal links to and that cost most of collectstatic's time: the PDF fonts
# (read by WeasyPrint from static/, never sent to a browser) and ReDoc (the API docs page is
# Swagger UI). Ignored by the tests' collectstatic only; a deployment collects everything.
COLLECT_IGNORE = ["redoc", "NotoSerif-*.ttf"]

_static_lock = threading.Lock()
_static_root: Path | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_env(**values: str) -> dict[str, str]:
    """os.environ with the production settings switched on (and the testing ones off)."""
    testing_only = ("PYTEST_", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(testing_only)}
    env.update(
        DJANGO_SETTINGS_MODULE=SERVER_SETTINGS,
        DJANGO_DEBUG="0",
        HOCBA_TESTING="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        PYTHONUNBUFFERED="1",
    )
    env.update(values)
    return env


def settings_under(env: dict[str, str], *names: str) -> dict[str, object]:
    """The values of settings `names` as a process with `env` reads them (a subprocess: the test
    process's own settings were computed from its environment, which `make test` gives
    DJANGO_DEBUG=1 through scripts/devenv.py)."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def collected_static(env: dict[str, str]) -> Path:
    """`manage.py collectstatic` under the production settings, once per process (a temp dir)."""
    global _static_root
    with _static_lock:
        if _static_root is None:
            root = Path(tempfile.mkdtemp(prefix="hocba-static-"))
            atexit.register(shutil.rmtree, root, ignore_errors=True)
            ignore = [arg for pattern in COLLECT_IGNORE for arg in ("-i", pattern)]
            done = subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0", *ignore],
                cwd=ROOT,
                env={**env, "HOCBA_STATIC_ROOT": str(root)},
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"collectstatic failed:\n{done.stdout}\n{done.stderr}")
            _static_root = root
        return _static_root


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost: (ca, cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_usage = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement"), False
    )
    ca_key_usage = x509.KeyUsage(
        digital_signature=True, key_cert_sign=True, crl_sign=True, encipher_only=False,
        decipher_only=False, **ca_usage,
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hoc ba so test CA (throwaway)")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


class ProductionStack:
    """gunicorn with the production settings on a free loopback port; a context manager."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        cache_prefix: str,
        env: dict[str, str] | None = None,
        workers: int = 2,
        tls: bool = True,
    ):
        self.tls, self.workers = tls, workers
        self.port = _free_port()
        self.url = ""
        self._dir = Path(tempfile.mkdtemp(prefix="hocba-stack-"))
        self.log = self._dir / "gunicorn.log"
        self.ca_file = self._dir / "ca.pem"
        self.env = production_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            CELERY_BROKER_URL=redis_url,
            HOCBA_CACHE_PREFIX=cache_prefix,
            HOCBA_BIND=f"127.0.0.1:{self.port}",
            HOCBA_WEB_WORKERS=str(workers),
            HOCBA_PUBLIC_URL=f"{'https' if tls else 'http'}://127.0.0.1:{self.port}",
        )
        self.env.update(env or {})  # the caller's values win
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_test_session(cls, *, env: dict[str, str] | None = None, **kwargs: object) -> ProductionStack:
        """A stack on the running test session's database, Redis, cache prefix, documents and trust
        store (call it where the test database exists: in a fixture using django_db_setup)."""
        from django.conf import settings

        from signing.trust import deployment_key
        from tests.worker import database_url

        base = {
            # The keys that seal secrets at rest: the test process's, so that what it sealed opens.
            "HOCBA_DEPLOYMENT_KEY": deployment_key().decode(),
            "HOCBA_TRUST_ROOTS": ",".join(settings.HOCBA_TRUST_ROOTS),
            "HOCBA_TRUST_CRLS": ",".join(settings.HOCBA_TRUST_CRLS),
            "HOCBA_DOCUMENTS_DIR": str(settings.STORAGES["documents"]["OPTIONS"]["location"])
            if "location" in settings.STORAGES["documents"].get("OPTIONS", {})
            else "",
        }
        base.update(env or {})
        return cls(
            database_url=database_url(),
            redis_url=settings.REDIS_URL,
            cache_prefix=str(settings.CACHES["default"]["KEY_PREFIX"]),
            env=base,
            **kwargs,  # type: ignore[arg-type]
        )

    # --- life ---------------------------------------------------------------------------------
    def start(self) -> ProductionStack:
        self.env.setdefault("HOCBA_STATIC_ROOT", str(collected_static(self.env)))
        argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.py")]
        if self.tls:
            ca, cert, key = make_tls_files(self._dir)
            self.ca_file = ca
            argv += ["--certfile", str(cert), "--keyfile", str(key)]
        argv += ["--access-logfile", "-", "--error-logfile", "-", "config.wsgi:application"]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() takes the workers too
            )
        try:
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the stack's CA (and only it)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, **kwargs: object) -> httpx.Client:
        """An httpx client on the stack: its CA trusted, redirects not followed, patient timeouts
        (the first request of a worker imports and compiles; the machine may be loaded)."""
        import httpx

        options: dict[str, object] = {"base_url": self.url, "timeout": 60.0, "follow_redirects": False}
        if self.tls:
            options["verify"] = self.ssl_context()
        options.update(kwargs)
        return httpx.Client(**options)  # type: ignore[arg-type]

    def _wait_until_answering(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        context = self.ssl_context() if self.tls else None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n{self.output()[-4000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=5, context=context)  # noqa: S310
                return
            except urllib.error.HTTPError:
                return  # it answered (a 404 or a redirect is still an answer)
            except (OSError, ssl.SSLError):
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{self.output()[-4000:]}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to the process group (gunicorn's graceful stop), SIGKILL after 15 s."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            except ProcessLookupError:
                pass

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cleanup(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ProductionStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self.cleanup()
