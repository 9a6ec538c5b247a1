"""Work due in the schools, kept as facts in the public schema (portal.PdfDue): `services` writes
and claims them; the apps above call it, never the table."""
