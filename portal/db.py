"""The database connection as django-tenants makes it, typed once (style.md rule 18).

django-tenants' backend adds the current schema, and the methods that switch it, to Django's
PostgreSQL connection; django-stubs know only Django's. Code that reads or switches the schema
imports `connection` from here instead of from django.db: the same object, with those names typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.db import connection as _connection

if TYPE_CHECKING:
    from django.db.backends.postgresql.base import DatabaseWrapper

    from .models import School

    class TenantDatabaseWrapper(DatabaseWrapper):
        """django_tenants.postgresql_backend.base.DatabaseWrapper, the part of it we use."""

        schema_name: str
        tenant: Any  # a School, or django-tenants' FakeTenant for the public schema

        def set_tenant(self, tenant: School, include_public: bool = True) -> None: ...
        def set_schema_to_public(self) -> None: ...


connection = cast("TenantDatabaseWrapper", _connection)
