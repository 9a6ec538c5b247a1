"""Plain `migrate` is `migrate_schemas` here: the public schema, the template and every school."""

from .migrate_schemas import Command

__all__ = ["Command"]
