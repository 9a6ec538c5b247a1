"""Audit rows chained by hash, in the database (issue 16; docs/security.md, "The audit chain").

One mechanism in public, used by every chained table in every schema:

- public.hocba_audit_chain_head: per chain (schema, table), the last position and hash. The
  trigger updates it with the row, so deleting the last rows of a chain is seen (the head is
  ahead of the table), and its row lock orders the chain: a second insert into the same chain
  waits for the first transaction to end, so the chain order is the commit order. Chains of
  different tables, and of different schools, never wait for each other.
- public.hocba_audit_chain_text(row): the row's canonical text, a JSON object of its columns
  (keys sorted by jsonb, NULL columns left out so that adding a nullable column keeps old rows
  valid, the chain columns left out), made with TimeZone, DateStyle, IntervalStyle and
  extra_float_digits fixed by the function, whatever the session says.
- public.hocba_audit_chain_step(prev, seq, text) = sha256(prev || utf8(seq || ' ' || text)), the
  first row's prev being the empty string; public.hocba_audit_chain_agg folds it over rows in
  order (the seal of existing rows, one set-based UPDATE per table).
- public.hocba_audit_chain(): the BEFORE INSERT trigger. It sets chain_seq and chain_hash on the
  row, whatever the client sent, and moves the head. Its name on each table, zz_audit_chain, sorts
  after every other trigger, so the row is hashed as it is stored.
- public.hocba_audit_chain_seal(table, guard): chains the rows a table already holds, in id
  order, and sets its head (the append-only guard trigger is disabled for the UPDATE and enabled
  again; a table with no rows is not touched).

The append-only guards stay: UPDATE and DELETE are still refused. The chain is what shows a
change made around them (triggers disabled by a superuser, a restored edited dump):
portal.audit_chain.audit_chain_verify, `manage.py audit_verify`.

This migration chains the public tables portal_auditentry, portal_copylog and
portal_verificationlog; registry 0006 chains registry_apicall, transcripts 0017 the school
tables (their SQL names no schema, so portal.migrate_fast replays it per school).
"""

from django.db import migrations, models

FUNCTIONS = """
CREATE TABLE public.hocba_audit_chain_head (
    schema_name name NOT NULL,
    table_name name NOT NULL,
    seq bigint NOT NULL CHECK (seq > 0),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (schema_name, table_name)
);

CREATE FUNCTION public.hocba_audit_chain_text(r anyelement) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
    SET DateStyle = 'ISO, YMD'
    SET IntervalStyle = 'postgres'
    SET extra_float_digits = 1 AS $$
    SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)::text
    FROM jsonb_each(to_jsonb(r)) AS e
    WHERE e.value <> 'null'::jsonb AND e.key NOT IN ('chain_seq', 'chain_hash')
$$;

CREATE FUNCTION public.hocba_audit_chain_step(prev bytea, seq bigint, content text) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.sha256(prev || pg_catalog.convert_to(seq::text || ' ' || content, 'UTF8'))
$$;

CREATE AGGREGATE public.hocba_audit_chain_agg(bigint, text) (
    SFUNC = public.hocba_audit_chain_step,
    STYPE = bytea,
    INITCOND = ''
);

CREATE FUNCTION public.hocba_audit_chain() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    content text := public.hocba_audit_chain_text(NEW);
BEGIN
    INSERT INTO public.hocba_audit_chain_head AS h (schema_name, table_name, seq, hash, updated_at)
    VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, 1, public.hocba_audit_chain_step(''::bytea, 1, content),
            clock_timestamp())
    ON CONFLICT (schema_name, table_name) DO UPDATE
        SET seq = h.seq + 1,
            hash = public.hocba_audit_chain_step(h.hash, h.seq + 1, content),
            updated_at = clock_timestamp()
    RETURNING h.seq, h.hash INTO NEW.chain_seq, NEW.chain_hash;
    RETURN NEW;
END;
$$;

CREATE FUNCTION public.hocba_audit_chain_seal(tbl regclass, guard name DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    chain_schema name;
    chain_table name;
    has_rows boolean;
    sealed bigint := 0;
    last_hash bytea;
BEGIN
    SELECT n.nspname, c.relname INTO chain_schema, chain_table
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', tbl);
    DELETE FROM public.hocba_audit_chain_head h
    WHERE h.schema_name = chain_schema AND h.table_name = chain_table;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', tbl) INTO has_rows;
    IF NOT has_rows THEN
        RETURN 0;
    END IF;
    IF guard IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', tbl, guard);
    END IF;
    EXECUTE format($q$
        UPDATE %1$s AS t SET chain_seq = w.seq, chain_hash = w.hash
        FROM (
            SELECT numbered.id, numbered.seq,
                   public.hocba_audit_chain_agg(numbered.seq, numbered.content)
                       OVER (ORDER BY numbered.seq) AS hash
            FROM (
                SELECT r.id, row_number() OVER (ORDER BY r.id) AS seq,
                       public.hocba_audit_chain_text(r) AS content
                FROM %1$s AS r
            ) AS numbered
        ) AS w
        WHERE t.id = w.id
    $q$, tbl);
    GET DIAGNOSTICS sealed = ROW_COUNT;
    IF guard IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER %I', tbl, guard);
    END IF;
    EXECUTE format('SELECT chain_hash FROM %s WHERE chain_seq = $1', tbl) INTO last_hash USING sealed;
    INSERT INTO public.hocba_audit_chain_head (schema_name, table_name, seq, hash, updated_at)
    VALUES (chain_schema, chain_table, sealed, last_hash, clock_timestamp());
    RETURN sealed;
END;
$$;
"""

FUNCTIONS_REVERSE = """
DROP FUNCTION IF EXISTS public.hocba_audit_chain_seal(regclass, name);
DROP FUNCTION IF EXISTS public.hocba_audit_chain();
DROP AGGREGATE IF EXISTS public.hocba_audit_chain_agg(bigint, text);
DROP FUNCTION IF EXISTS public.hocba_audit_chain_step(bytea, bigint, text);
DROP FUNCTION IF EXISTS public.hocba_audit_chain_text(anyelement);
DROP TABLE IF EXISTS public.hocba_audit_chain_head;
"""


def chain_sql(table: str, guard: str) -> tuple[str, str]:
    """Seal `table`'s rows, then chain every insert (the trigger), as the other chained tables."""
    forward = f"""
SELECT public.hocba_audit_chain_seal('public.{table}', '{guard}');
CREATE TRIGGER zz_audit_chain BEFORE INSERT ON public.{table}
    FOR EACH ROW EXECUTE FUNCTION public.hocba_audit_chain();
ALTER TABLE public.{table} ALTER COLUMN chain_seq SET NOT NULL, ALTER COLUMN chain_hash SET NOT NULL;
CREATE UNIQUE INDEX {table}_chain_seq ON public.{table} (chain_seq);
"""
    reverse = f"""
DROP INDEX IF EXISTS public.{table}_chain_seq;
ALTER TABLE public.{table} ALTER COLUMN chain_seq DROP NOT NULL, ALTER COLUMN chain_hash DROP NOT NULL;
DROP TRIGGER IF EXISTS zz_audit_chain ON public.{table};
DELETE FROM public.hocba_audit_chain_head WHERE schema_name = 'public' AND table_name = '{table}';
"""
    return forward, reverse


def chain_fields(model_name: str) -> list:
    return [
        migrations.AddField(
            model_name=model_name,
            name="chain_seq",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name=model_name,
            name="chain_hash",
            field=models.BinaryField(blank=True, editable=False, null=True),
        ),
    ]


def chain_state(model_name: str) -> list:
    return [
        migrations.AlterField(
            model_name=model_name, name="chain_seq", field=models.BigIntegerField(blank=True, editable=False)
        ),
        migrations.AlterField(
            model_name=model_name, name="chain_hash", field=models.BinaryField(blank=True, editable=False)
        ),
    ]


CHAINED = [
    ("auditentry", "portal_auditentry", "portal_audit_append_only"),
    ("copylog", "portal_copylog", "portal_copylog_append_only"),
    ("verificationlog", "portal_verificationlog", "portal_verificationlog_append_only"),
]

# The verification log had no guard: it is an audit log like the others (nothing updates or
# deletes its rows), so it gets the same one before it is chained.
VERIFICATION_GUARD = """
CREATE FUNCTION public.portal_verificationlog_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the verification log is append-only (% on portal_verificationlog refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER portal_verificationlog_append_only
    BEFORE UPDATE OR DELETE ON public.portal_verificationlog
    FOR EACH ROW EXECUTE FUNCTION public.portal_verificationlog_append_only();
"""
VERIFICATION_GUARD_REVERSE = """
DROP TRIGGER IF EXISTS portal_verificationlog_append_only ON public.portal_verificationlog;
DROP FUNCTION IF EXISTS public.portal_verificationlog_append_only();
"""


def _operations() -> list:
    operations: list = [
        migrations.RunSQL(FUNCTIONS, FUNCTIONS_REVERSE),
        migrations.RunSQL(VERIFICATION_GUARD, VERIFICATION_GUARD_REVERSE),
    ]
    for model_name, table, guard in CHAINED:
        forward, reverse = chain_sql(table, guard)
        operations += chain_fields(model_name)
        operations.append(migrations.RunSQL(forward, reverse, state_operations=chain_state(model_name)))
    return operations


class Migration(migrations.Migration):
    dependencies = [("portal", "0020_user_references")]
    operations = _operations()
