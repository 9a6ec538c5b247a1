"""Settings for the Học bạ số portal, read from the environment (see docs/operations.md).

One deployment serves one province. Each school is a PostgreSQL schema (django-tenants).
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

from django.utils.translation import gettext_lazy as _

from .env import database_from_url, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
TESTING = env_bool("HOCBA_TESTING", "pytest" in sys.modules)
# The development key only works with DEBUG on; a deployment must set DJANGO_SECRET_KEY.
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not TESTING:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "development-only-not-secret"  # noqa: S105 - refused above outside DEBUG/tests
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- Tenancy -------------------------------------------------------------------------------
# Decided once (style.md rule 8): everything province-wide lives in the public schema; a school
# schema holds only that school's data, because every tenant table is multiplied by thousands.
# Never move an app between these two lists.
SHARED_APPS = [
    # portal comes first so that its migrate_schemas (which skips current schools) wins.
    "portal",
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    # The partner API's OpenAPI 3 schema (/api/schema/) and its documentation page (/api/docs/),
    # whose Swagger UI assets are served from here (the sidecar), never from a CDN.
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Public: signing certificates belong to users (province-wide), and signing batches are
    # found province-wide by the resume sweep (signing.tasks); each batch names its school. The
    # signatures themselves live beside the records, in the school's schema (transcripts).
    "signing",
    # Public, the top of the chain (design.md §2): what happens to an issued record outside its
    # school: the verification pages and the outbox to the Ministry (registry.OutboxMessage).
    "registry",
]
TENANT_APPS = [
    "schools",
    "transcripts",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "portal.School"
# No domain model: schools are routed by path, /truong/<code>/ (portal.middleware), not by host.
PUBLIC_SCHEMA_NAME = "public"
# New schools are cloned from this schema (portal.provisioning); migrate_schemas keeps it current.
TENANT_BASE_SCHEMA = "school_template"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
TENANT_MULTIPROCESSING_MAX_PROCESSES = env_int("HOCBA_MIGRATE_PROCESSES", 2)
SCHOOL_URL_PREFIX = "truong"

MIDDLEWARE = [
    # First: the client's address and scheme from a trusted proxy's headers, and only from one
    # (HOCBA_TRUSTED_PROXIES); everything below, the lock-outs and rate limits included, sees them.
    "portal.security.TrustedProxyMiddleware",
    # /healthz and /readyz for the load balancer: no HTTPS redirect, Host check, session or school.
    "portal.health.HealthMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy (CONTENT_SECURITY_POLICY below) and Permissions-Policy on everything,
    # the static files and the error pages included.
    "csp.middleware.CSPMiddleware",
    "portal.security.PermissionsPolicyMiddleware",
    # Up here, so that the responses of the middleware below (a 400 for a NUL) get it too.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Static files from the WSGI process (docs/operations.md, static files): answered here, before
    # any session or database work, gzip/brotli made once at collectstatic, hashed names cached for
    # a year. The pages themselves are compressed by GZipMiddleware below.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages compressed when the browser asks (a grade book of 40 students: ~80 KB, ~10 KB gzipped;
    # bench/gradebook_page.py). BREACH: Django's GZipMiddleware pads each response with random
    # bytes (Django 4.2+), and the CSRF token in a page is masked anew for every response, so the
    # secret never repeats byte for byte (docs/operations.md, static files and compression).
    "django.middleware.gzip.GZipMiddleware",
    "portal.security.RefuseNulMiddleware",  # before anything queries with the path (a 400, not a 500)
    "portal.middleware.SchoolRouteMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.middleware.RequireTwoFactorMiddleware",
    "portal.middleware.SchoolAccessMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "portal.context_processors.portal",
            ],
        },
    },
]

# --- Data stores ---------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/hocba")
DATABASES = {"default": database_from_url(DATABASE_URL)}
# Session pooling only (schema state lives on the connection, design.md §3).
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DJANGO_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # A test run gets a prefix of its own, so it never reads (or clears) anyone else's keys.
        "KEY_PREFIX": env_str(
            "HOCBA_CACHE_PREFIX", f"hocba-test-{uuid.uuid4().hex[:8]}" if TESTING else "hocba"
        ),
        "TIMEOUT": 300,
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Users and login -----------------------------------------------------------------------
AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portal:home"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
# Accounts are created by operators and school administrators, never by self sign-up.
ACCOUNT_ADAPTER = "portal.adapters.AccountAdapter"
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_SESSION_REMEMBER = None
# Wrong passwords: per account with back-off and per address under a ceiling (portal.lockout,
# called by portal.adapters), not allauth's "login_failed" (10 a minute per address, which locks a
# whole school behind its NAT). That limit is left to the two-factor codes: 5 wrong codes per
# account in 5 minutes, and a per-address ceiling as high as the passwords'. "login" (every
# attempt, per address) is raised for the morning rush of a school behind one address. django-axes
# was considered: one failure limit for every parameter (no 5 per account beside 300 per
# address) and no back-off.
ACCOUNT_RATE_LIMITS = {
    "login_failed": "300/15m/ip,5/5m/key",
    "login": "600/m/ip",
}
HOCBA_LOGIN_ACCOUNT_FAILURES = env_int("HOCBA_LOGIN_ACCOUNT_FAILURES", 5)
HOCBA_LOGIN_LOCK_SECONDS = env_int("HOCBA_LOGIN_LOCK_SECONDS", 300)
HOCBA_LOGIN_LOCK_MAX_SECONDS = env_int("HOCBA_LOGIN_LOCK_MAX_SECONDS", 4 * 3600)
HOCBA_LOGIN_ADDRESS_FAILURES = env_int("HOCBA_LOGIN_ADDRESS_FAILURES", 300)
HOCBA_LOGIN_ADDRESS_WINDOW_SECONDS = env_int("HOCBA_LOGIN_ADDRESS_WINDOW_SECONDS", 15 * 60)
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("HOCBA_TOTP_ISSUER", "Học bạ số")
EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "hocbaso@localhost")

# --- Language and time ---------------------------------------------------------------------
LANGUAGE_CODE = "vi"
LANGUAGES = [("vi", _("Vietnamese")), ("en", _("English"))]
# locale/: our strings (makemessages). locale_vendor/: Vietnamese for the django-allauth pages we
# show (login, password reset, two-factor), which allauth does not ship; kept by hand.
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale_vendor"]
USE_I18N = True
TIME_ZONE = "Asia/Ho_Chi_Minh"
USE_TZ = True
# One form for what a person reads, in both languages: 6,5 and dd/mm/yyyy (HH:MM), over Django's
# three Vietnamese date forms (portal.formats says why; config/formats/ holds them).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# `manage.py collectstatic` writes here (a deployment runs it at each release).
STATIC_ROOT = Path(env_str("HOCBA_STATIC_ROOT", str(BASE_DIR / ".data" / "staticfiles")))
# Hashed names (portal.3f2a9c1b7e04.css) and their .gz/.br made once at collectstatic: WhiteNoise
# serves them with a one-year immutable Cache-Control. The tests render pages without a
# collectstatic, so they keep plain names (tests/portal/test_static_files.py runs one).
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Year record PDFs and issued XML copies (transcripts.records.storage): write-once objects named by
# school, record, version and SHA-256; the SHA-256 stays in the database and is checked on every
# read. The filesystem under .data/documents by default (`make run` needs nothing set); S3-compatible
# object storage (django-storages' S3Storage) when HOCBA_DOCUMENTS_S3_BUCKET is set. The keys come
# from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the instance's role), never from this file.
# docs/operations.md, "Documents".
HOCBA_DOCUMENTS_S3_BUCKET = env_str("HOCBA_DOCUMENTS_S3_BUCKET", "")
if HOCBA_DOCUMENTS_S3_BUCKET:
    STORAGES["documents"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": HOCBA_DOCUMENTS_S3_BUCKET,
            "endpoint_url": env_str("HOCBA_DOCUMENTS_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("HOCBA_DOCUMENTS_S3_REGION", "") or None,
            "location": env_str("HOCBA_DOCUMENTS_S3_PREFIX", ""),
            "default_acl": None,  # private: the bucket's policy decides, nothing is public-read
            "querystring_auth": True,
            "file_overwrite": False,  # write-once (the service checks too)
        },
    }
else:
    _documents_dir = env_str("HOCBA_DOCUMENTS_DIR", "")
    if not _documents_dir and TESTING:
        # One temporary directory per test session, inherited by the workers the tests start
        # (made by the first document stored, removed when the process that named it exits).
        import atexit
        import os
        import shutil
        import tempfile

        _documents_dir = os.environ["HOCBA_DOCUMENTS_DIR"] = os.path.join(
            tempfile.gettempdir(), f"hocba-documents-{uuid.uuid4().hex[:12]}"
        )
        atexit.register(shutil.rmtree, _documents_dir, ignore_errors=True)
    STORAGES["documents"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": _documents_dir or str(BASE_DIR / ".data" / "documents"),
            "file_permissions_mode": 0o640,
            "directory_permissions_mode": 0o750,
        },
    }
# Not compressed at collectstatic: WhiteNoise's list (images, fonts, archives already compressed)
# and source maps (read by a developer's tools only; a third of the bytes and of the time).
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = [
    *("jpg", "jpeg", "png", "gif", "webp", "zip", "gz", "tgz", "bz2", "tbz", "xz", "br", "swf"),
    *("flv", "woff", "woff2", "3gp", "3gpp", "asf", "avi", "m4v", "mov", "mp4", "mpeg", "mpg"),
    *("webm", "wmv", "map"),
]
if TESTING:
    # No collectstatic before the tests: WhiteNoise finds the files where they are.
    WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = True

# --- Security ------------------------------------------------------------------------------
# docs/operations.md, "Production deployment". `manage.py check --deploy` is clean with DEBUG off
# (tests/test_settings.py runs it).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
# The province's reverse proxy ends TLS and says so in X-Forwarded-Proto; its address (or its
# network) is listed in HOCBA_TRUSTED_PROXIES, and only from there are X-Forwarded-For/-Proto
# believed (portal.security.TrustedProxyMiddleware removes them from anyone else, so this header
# cannot be spoofed). config/gunicorn.py gives gunicorn the same list.
HOCBA_TRUSTED_PROXIES = env_list("HOCBA_TRUSTED_PROXIES", [])
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# allauth's rate limits read REMOTE_ADDR, which the middleware above has already set.
ALLAUTH_TRUSTED_PROXY_COUNT = 0
# HTTPS only outside DEBUG (the test suite's client speaks plain HTTP: off there too).
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG and not TESTING)
# The load balancer's plain-HTTP probes (portal.health answers them before the redirect anyway).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# HSTS: a year outside DEBUG. Before a deployment goes back to plain HTTP, set HOCBA_HSTS_SECONDS=0
# and wait out the old max-age (docs/operations.md). includeSubDomains is off by default: the
# portal usually lives on a sub-domain of the Department's own domain (hocba.sgd….edu.vn), whose
# other sub-domains the portal does not control and some of which may still be plain HTTP; turn it
# on when the portal has a domain of its own. Preload is off: it is a commitment for the whole
# registrable domain, made by the province's network team, not by this application.
SECURE_HSTS_SECONDS = env_int("HOCBA_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HOCBA_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = False
SECURE_CONTENT_TYPE_NOSNIFF = True
# "same-origin": the verification links printed as QR codes carry the record's code in the path,
# which must never reach another site in a Referer; "no-referrer" would be stricter, but browsers
# then send "Origin: null" with a same-origin form POST, which Django's CSRF check refuses.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# W005 (includeSubDomains) and W021 (preload) are decisions (above), not omissions.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
# Content-Security-Policy (django-csp): nothing inline, nothing from another origin. Scripts,
# styles, images, fonts, fetches and the grade book's service worker (/truong/<code>/so-diem/sw.js)
# come from the portal itself; data: images for the TOTP QR code and Swagger UI's icons.
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'"],
        "manifest-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}
# A form refused for its CSRF token (most often: the page stayed open past the session) gets our
# page, in Vietnamese, saying to reload, instead of Django's English dead end.
CSRF_FAILURE_VIEW = "portal.errors.csrf_failure"

# --- Celery --------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "expire-role-assignments": {
        "task": "portal.tasks.role_assignments_expire",
        "schedule": 3600.0,
    },
    # The supervisors' progress rows recounted from the schools, drift corrected and audited.
    "reconcile-progress": {
        "task": "portal.tasks.progress_reconcile",
        "schedule": float(env_int("HOCBA_PROGRESS_RECONCILE_SECONDS", 24 * 3600)),
    },
    # The PDFs due (portal.PdfDue) that no message is on its way for and no worker holds: a
    # message lost, a worker killed mid-render, a failed render's back-off over. One statement on
    # a public table: cheap enough to run every minute.
    "render-missing-pdfs": {
        "task": "transcripts.tasks.year_record_pdfs_missing",
        "schedule": float(env_int("HOCBA_PDF_SWEEP_SECONDS", 60)),
    },
    # Signing batches whose worker died are taken up again once their lease runs out.
    "resume-signing-batches": {
        "task": "signing.tasks.signing_batches_resume",
        "schedule": float(env_int("HOCBA_SIGNING_RESUME_SECONDS", 15)),
    },
    # The relay to the Ministry's repository (registry.tasks): messages due, verdicts to ask for,
    # expired leases, records whose personal ID has been verified. Also woken after each issue.
    "forward-to-ministry": {
        "task": "registry.tasks.forward_relay",
        "schedule": float(env_int("HOCBA_FORWARD_RELAY_SECONDS", 10)),
    },
}
# Redis redelivers a message not acknowledged within the visibility timeout: above the longest
# task (a relay run stops taking new work after HOCBA_FORWARD_RUN_SECONDS; a signing batch renews
# its lease), so that nothing runs twice merely for being slow. design.md §5.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("HOCBA_CELERY_VISIBILITY_TIMEOUT", 3600)}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The partner API (registry.api, docs/api.md) sets its own authentication (API keys), scopes,
    # throttles (per client, in the Redis cache) and JSON errors, Vietnamese first.
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "registry.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Học bạ số: API cho đối tác (partner API)",
    "DESCRIPTION": "Issued year records by personal ID (with the citizen's consent), their signed XML "
    "and PDF, verification of an uploaded record, progress by division and school. docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's assets from drf-spectacular-sidecar (static files), not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Partner API: how long an old key keeps working after a rotation with a grace period, and the
# longest lifetime of a consent token (exp - iat) the portal accepts (docs/api.md).
HOCBA_API_KEY_GRACE_HOURS = env_int("HOCBA_API_KEY_GRACE_HOURS", 7 * 24)
HOCBA_API_CONSENT_MAX_DAYS = env_int("HOCBA_API_CONSENT_MAX_DAYS", 30)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # WeasyPrint logs every rendering step at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        # pikepdf says at import that its logger is bridged: noise on every command's stderr.
        "pikepdf": {"level": "WARNING"},
        # httpx logs every request at INFO: one line per signature of a batch (signing.backends.csc).
        "httpx": {"level": "WARNING"},
    },
}

if TESTING:
    # Hashing demo passwords at full strength would dominate the suite's time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Excel imports of a school's data: an upload is refused before parsing beyond these
# (schools/imports/workbook.py, ImportLimits, says why each default is what it is).
HOCBA_IMPORT_MAX_BYTES = env_int("HOCBA_IMPORT_MAX_BYTES", 5 * 1024 * 1024)
HOCBA_IMPORT_MAX_MEMBERS = env_int("HOCBA_IMPORT_MAX_MEMBERS", 200)
HOCBA_IMPORT_MAX_MEMBER_BYTES = env_int("HOCBA_IMPORT_MAX_MEMBER_BYTES", 25 * 1024 * 1024)
HOCBA_IMPORT_MAX_TOTAL_BYTES = env_int("HOCBA_IMPORT_MAX_TOTAL_BYTES", 50 * 1024 * 1024)
HOCBA_IMPORT_MAX_RATIO = env_int("HOCBA_IMPORT_MAX_RATIO", 200)
HOCBA_IMPORT_MAX_ROWS = env_int("HOCBA_IMPORT_MAX_ROWS", 20_000)
HOCBA_IMPORT_MAX_COLUMNS = env_int("HOCBA_IMPORT_MAX_COLUMNS", 50)
HOCBA_IMPORT_MAX_BLANK_RUN = env_int("HOCBA_IMPORT_MAX_BLANK_RUN", 1_000)

# The public address of the portal, printed in QR codes of year records (the verification page).
HOCBA_PUBLIC_URL = env_str("HOCBA_PUBLIC_URL", "http://127.0.0.1:8000")
# The public verification page: upload size, and verifications per address per window.
HOCBA_VERIFY_MAX_UPLOAD_BYTES = env_int("HOCBA_VERIFY_MAX_UPLOAD_BYTES", 5 * 1024 * 1024)
HOCBA_VERIFY_RATE_LIMIT = env_int("HOCBA_VERIFY_RATE_LIMIT", 30)
HOCBA_VERIFY_RATE_WINDOW_SECONDS = env_int("HOCBA_VERIFY_RATE_WINDOW_SECONDS", 60)
# Wrong or unknown verification codes per address per window, then lookups by code answer 429.
HOCBA_VERIFY_WRONG_CODE_LIMIT = env_int("HOCBA_VERIFY_WRONG_CODE_LIMIT", 20)
HOCBA_VERIFY_WRONG_CODE_WINDOW_SECONDS = env_int("HOCBA_VERIFY_WRONG_CODE_WINDOW_SECONDS", 3600)
# Where the Department's archives of issued records are written (registry.archive, a Celery job).
HOCBA_ARCHIVE_DIR = env_str("HOCBA_ARCHIVE_DIR", str(BASE_DIR / ".data" / "archives"))

# --- Signing (signing.trust, signing.keys) -------------------------------------------------
# The pinned trust roots (PEM files) and the CRL sources (files or URLs); `make run` points them
# at the development CA (.data/ca) and the reference remote-signing service.
HOCBA_TRUST_ROOTS = env_list("HOCBA_TRUST_ROOTS", [])
HOCBA_TRUST_CRLS = env_list("HOCBA_TRUST_CRLS", [])
HOCBA_TRUST_CRL_SECONDS = env_int("HOCBA_TRUST_CRL_SECONDS", 300)
# Encrypts PKCS#12 files and batch secrets at rest (a Fernet key); derived in DEBUG and tests.
HOCBA_DEPLOYMENT_KEY = env_str("HOCBA_DEPLOYMENT_KEY", "")
# The CSC remote-signing service, and the PKCS#11 library (SoftHSM2 when empty).
HOCBA_CSC_URL = env_str("HOCBA_CSC_URL", "")
HOCBA_CSC_CLIENT_SECRET = env_str("HOCBA_CSC_CLIENT_SECRET", "")
HOCBA_PKCS11_LIBRARY = env_str("HOCBA_PKCS11_LIBRARY", "")
# Hashes one CSC signHash call carries at most (also capped by the credential's `multisign`).
HOCBA_CSC_MAX_HASHES = env_int("HOCBA_CSC_MAX_HASHES", 1000)
# The RFC 3161 timestamping service every signature is timestamped by (XAdES-T; PAdES), and the
# roots its certificates must chain to (PEM files, apart from the signers' roots: a TSA's CA is
# not a signer's). Without a URL, signatures carry no timestamp (baseline B): verifiable only while
# their certificates are valid. Its CA's CRL belongs in HOCBA_TRUST_CRLS.
HOCBA_TSA_URL = env_str("HOCBA_TSA_URL", "")
HOCBA_TSA_TRUST_ROOTS = env_list("HOCBA_TSA_TRUST_ROOTS", [])
HOCBA_TSA_TIMEOUT_SECONDS = env_int("HOCBA_TSA_TIMEOUT_SECONDS", 10)
HOCBA_TSA_PARALLEL = env_int("HOCBA_TSA_PARALLEL", 16)  # timestamp requests in flight per batch
# A record sealed by a batch gets its PDF sealed by that batch; the missing-PDF sweep renders one
# (unsealed) only after this long without it (a batch that never came back).
HOCBA_PDF_SEAL_GRACE_SECONDS = env_int("HOCBA_PDF_SEAL_GRACE_SECONDS", 3 * 3600)
# A signing job holds its batch this long between two signatures; past it, the batch is resumed.
HOCBA_SIGNING_LEASE_SECONDS = env_int("HOCBA_SIGNING_LEASE_SECONDS", 60)
# A batch signs this many records together (a class: one chunk): one transaction, one call to the
# key (one signHash for a remote key), one round of timestamps; each record's outcome is its own.
HOCBA_SIGNING_CHUNK = env_int("HOCBA_SIGNING_CHUNK", 40)
# A batch paused by a failing key service (signing.services.runner) fails its remaining records
# only after this many consecutive retryable failures spanning more than this many seconds.
HOCBA_SIGNING_RETRY_ATTEMPTS = env_int("HOCBA_SIGNING_RETRY_ATTEMPTS", 8)
HOCBA_SIGNING_RETRY_GIVE_UP_SECONDS = env_int("HOCBA_SIGNING_RETRY_GIVE_UP_SECONDS", 900)
# The resume sweep marks a batch it queued and queues it again only after this long (its worker's
# claim clears the mark), so a batch waiting behind others does not get a message every 15 s.
HOCBA_SIGNING_ENQUEUED_SECONDS = env_int("HOCBA_SIGNING_ENQUEUED_SECONDS", 300)
# Each kind of work has its queue and its workers by default (issue 15, docs/operations.md
# "Workers and queues"): signing jobs, PDF renderings, the relay to the Ministry; the rest (the
# sweeps, progress, role expiry) on Celery's default queue, "celery". A backlog of PDFs never
# delays a principal's batch.
HOCBA_SIGNING_QUEUE = env_str("HOCBA_SIGNING_QUEUE", "signing")
HOCBA_PDF_QUEUE = env_str("HOCBA_PDF_QUEUE", "pdf")
HOCBA_FORWARD_QUEUE = env_str("HOCBA_FORWARD_QUEUE", "forwarding")
CELERY_TASK_ROUTES = {
    "signing.tasks.*": {"queue": HOCBA_SIGNING_QUEUE},
    "transcripts.tasks.year_record_pdf_*": {"queue": HOCBA_PDF_QUEUE},
    "registry.tasks.*": {"queue": HOCBA_FORWARD_QUEUE},
}
# The PDFs due (portal.PdfDue, transcripts.records.pdf): a worker holds a record this long while
# it renders (past it, killed mid-render, the sweep queues it again); a queued record waits this
# long for its message before the sweep queues it again (above the longest backlog expected of
# the PDF workers: a duplicate then costs a claim refused, not a render); one sweep queues at most
# this many.
HOCBA_PDF_LEASE_SECONDS = env_int("HOCBA_PDF_LEASE_SECONDS", 300)
HOCBA_PDF_QUEUED_SECONDS = env_int("HOCBA_PDF_QUEUED_SECONDS", 3600)
HOCBA_PDF_SWEEP_LIMIT = env_int("HOCBA_PDF_SWEEP_LIMIT", 5000)

# --- Forwarding to the Ministry's repository (registry; docs/ministry-contract.md) ------------
# The repository's base URL (empty: nothing is sent, messages wait in the outbox), the
# Department's token and client certificate, and the CA that vouches for the repository.
HOCBA_MINISTRY_URL = env_str("HOCBA_MINISTRY_URL", "")
HOCBA_MINISTRY_TOKEN = env_str("HOCBA_MINISTRY_TOKEN", "")
HOCBA_MINISTRY_CA = env_str("HOCBA_MINISTRY_CA", "")
HOCBA_MINISTRY_CLIENT_CERT = env_str("HOCBA_MINISTRY_CLIENT_CERT", "")
HOCBA_MINISTRY_CLIENT_KEY = env_str("HOCBA_MINISTRY_CLIENT_KEY", "")
# Failed sends before a message is a dead letter; back-off from the base doubling up to the cap
# (seconds, with jitter); a claim is held this long between renewals (the relay renews it every
# third of it while requests are out: keep it above one request's timeouts, 35 s); one relay
# run's time and batch.
HOCBA_FORWARD_MAX_ATTEMPTS = env_int("HOCBA_FORWARD_MAX_ATTEMPTS", 20)
HOCBA_FORWARD_BACKOFF_BASE = env_int("HOCBA_FORWARD_BACKOFF_BASE", 2)
HOCBA_FORWARD_BACKOFF_CAP = env_int("HOCBA_FORWARD_BACKOFF_CAP", 900)
HOCBA_FORWARD_LEASE_SECONDS = env_int("HOCBA_FORWARD_LEASE_SECONDS", 120)
HOCBA_FORWARD_RUN_SECONDS = env_int("HOCBA_FORWARD_RUN_SECONDS", 50)
HOCBA_FORWARD_BATCH = env_int("HOCBA_FORWARD_BATCH", 32)
# Messages of one claimed batch in flight at once (threads sharing the pooled client).
HOCBA_FORWARD_CONCURRENCY = env_int("HOCBA_FORWARD_CONCURRENCY", 8)

# How long the school route (code -> schema) stays cached; changes through services evict it.
SCHOOL_ROUTE_CACHE_SECONDS = env_int("HOCBA_SCHOOL_ROUTE_CACHE_SECONDS", 300)
