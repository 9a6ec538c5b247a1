"""Settings are read from the environment and a bad value fails loudly."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url, env_bool, env_int


def test_a_bad_boolean_fails_loudly(monkeypatch):
    monkeypatch.setenv("X_FLAG", "perhaps")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG", False)


def test_a_bad_integer_fails_loudly(monkeypatch):
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_NUM"):
        env_int("X_NUM", 1)


def test_database_urls_with_a_socket_directory():
    db = database_from_url("postgresql://postgres@/hocba?host=/run/pg")
    assert (db["NAME"], db["HOST"], db["USER"]) == ("hocba", "/run/pg", "postgres")


def test_database_urls_with_host_and_password():
    db = database_from_url("postgres://u:p%40ss@db.example:6543/hb?sslmode=require")
    assert (db["HOST"], db["PORT"], db["PASSWORD"], db["OPTIONS"]) == (
        "db.example",
        "6543",
        "p@ss",
        {"sslmode": "require"},
    )


def test_only_postgresql_is_accepted():
    with pytest.raises(ImproperlyConfigured):
        database_from_url("mysql://x@y/z")


def _check_deploy(**env: str):
    """`manage.py check --deploy --fail-level WARNING` under the production settings, as CI runs it."""
    import os
    import secrets
    import subprocess
    import sys
    from pathlib import Path

    # Not the test process's own switches: DJANGO_ALLOW_ASYNC_UNSAFE (the browser tests set it)
    # is a deployment warning of its own.
    testing_only = ("PYTEST_", "DJANGO_SETTINGS", "DJANGO_ALLOW_ASYNC_UNSAFE")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(testing_only)}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="0",
        HOCBA_TESTING="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        **env,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=Path(__file__).resolve().parents[1],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_deploy_is_clean_with_the_production_settings():
    done = _check_deploy()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_the_deployment_checks_fail_when_a_production_setting_is_switched_off(settings):
    """The checks the subprocess above runs really see these settings: without the HTTPS redirect
    or HSTS they warn (in process: the same checks, the settings changed for this test only)."""
    from django.core.checks import run_checks

    settings.SECURE_SSL_REDIRECT = False
    settings.SECURE_HSTS_SECONDS = 0
    ids = {message.id for message in run_checks(include_deployment_checks=True)}
    assert {"security.W008", "security.W004"} <= ids


def test_the_hsts_and_referrer_decisions():
    """HSTS for a year without includeSubDomains or preload (config/settings.py says why); the
    referrer never leaves the site (verification codes travel in paths)."""
    from tests.production_stack import production_env, settings_under

    # As a deployment reads them (DEBUG off, nothing of the tests'), not as this process did.
    env = production_env(DJANGO_SETTINGS_MODULE="config.settings")
    for name in ("HOCBA_HSTS_SECONDS", "HOCBA_HSTS_INCLUDE_SUBDOMAINS", "DJANGO_SECURE_SSL_REDIRECT"):
        env.pop(name, None)
    settings = settings_under(
        env,
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_REFERRER_POLICY",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_SSL_REDIRECT",
        "MIDDLEWARE",
    )
    assert settings["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert settings["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False and settings["SECURE_HSTS_PRELOAD"] is False
    assert settings["SECURE_REFERRER_POLICY"] in {"same-origin", "no-referrer"}
    assert settings["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert settings["SECURE_SSL_REDIRECT"] is True
    assert settings["MIDDLEWARE"][0] == "portal.security.TrustedProxyMiddleware"
