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
