"""The database backend (ENGINE "portal.postgresql_backend"): django-tenants' with `SET
search_path` issued only when it changes (base.py)."""
