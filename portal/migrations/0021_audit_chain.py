"""Audit rows chained by hash, in the database (issue 16; docs/security.md, "The audit chain").

One mechanism in public, used by every chained table in every schema:

- public.hocba_audit_chain_head: per chain (schema, table), the last position and hash, so that
  deleting the last rows of a chain is seen (the head is ahead of the table). Its row is locked
  by a transaction's first insert into the chain and stays locked until that transaction ends:
  a second transaction inserting into the same chain waits, so the chain order is the commit
  order. Chains of different tables, and of different schools, never wait for each other.
- public.hocba_audit_chain_text(row): the row's canonical text, its jsonb object (keys sorted by
  jsonb; null fields left out, so that adding a nullable column keeps old rows valid; the chain
  columns left out), made with TimeZone fixed to UTC by the function whatever the session says
  (the only setting jsonb's text of these tables' types depends on: dates are ISO 8601 whatever
  DateStyle; a float or interval column would also depend on extra_float_digits/IntervalStyle,
  and would need them in the function's SET list).
- public.hocba_audit_chain_step(prev, seq, text) = sha256(prev || utf8(seq || ' ' || text)), the
  first row's prev being the empty string; public.hocba_audit_chain_agg folds it over rows in
  order (the seal of existing rows, one set-based UPDATE per table).
- public.hocba_audit_chain(): the BEFORE INSERT trigger. It sets chain_seq and chain_hash on the
  row, whatever the client sent. The transaction's first insert into a chain locks its head row
  (or makes it); the running position and hash are then kept in a transaction-local setting
  (hocba_audit_chain.t<table oid>), not written to the head row on every insert: updating one
  row N times in one transaction leaves N versions that each later update walks (a 20,000-row
  insert took 86 s that way).
- public.hocba_audit_chain_flush(): a deferred constraint trigger on each chained table, run at
  commit: it writes the transaction's last position and hash to the head row (once: the other
  rows' events find it written, hocba_audit_chain.f<table oid>). A savepoint rolled back takes
  its rows, its settings and its head lock with it.
- Trigger names: zz_audit_chain sorts after every other BEFORE trigger, so the row is hashed as
  it is stored; zz_audit_chain_head.
- public.hocba_audit_chain_seal(table, guard): chains the rows a table already holds, in id
  order, and sets its head (the append-only guard trigger is disabled for the UPDATE and enabled
  again; a table with no rows is not touched).

The append-only guards stay: UPDATE and DELETE are still refused. The chain is what shows a
change made around them (triggers disabled by a superuser, a restored edited dump):
portal.audit_chain.audit_chain_verify, `manage.py audit_verify`.

This migration chains the public tables portal_auditentry, portal_copylog and
portal_verificationlog; registry 0007 chains registry_apicall and registry_personaldataexport,
transcripts 0017 the school tables (their SQL names no schema, so portal.migrate_fast replays it
per school).
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
    LANGUAGE sql STABLE SET TimeZone = 'UTC' AS $$
    SELECT pg_catalog.jsonb_strip_nulls(
        pg_catalog.to_jsonb(r) OPERATOR(pg_catalog.-) 'chain_seq'::text OPERATOR(pg_catalog.-) 'chain_hash'::text
    )::text
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
    LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    content text := public.hocba_audit_chain_text(NEW);
    running_key text := 'hocba_audit_chain.t' || TG_RELID::bigint;
    running text := pg_catalog.current_setting(running_key, true);
    prev_seq bigint;
    prev_hash bytea;
BEGIN
    IF running IS NULL OR running = '' THEN
        -- The transaction's first row in this chain: lock the head until the transaction ends.
        SELECT h.seq, h.hash INTO prev_seq, prev_hash FROM public.hocba_audit_chain_head AS h
        WHERE h.schema_name = TG_TABLE_SCHEMA AND h.table_name = TG_TABLE_NAME
        FOR UPDATE;
        IF NOT FOUND THEN
            -- The chain's first row ever: make its head (an insert made meanwhile by another
            -- transaction is waited for, then locked).
            INSERT INTO public.hocba_audit_chain_head AS h (schema_name, table_name, seq, hash, updated_at)
            VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, 1, public.hocba_audit_chain_step(''::bytea, 1, content),
                    pg_catalog.clock_timestamp())
            ON CONFLICT (schema_name, table_name) DO NOTHING
            RETURNING 0, ''::bytea INTO prev_seq, prev_hash;
            IF NOT FOUND THEN
                SELECT h.seq, h.hash INTO prev_seq, prev_hash FROM public.hocba_audit_chain_head AS h
                WHERE h.schema_name = TG_TABLE_SCHEMA AND h.table_name = TG_TABLE_NAME
                FOR UPDATE;
            END IF;
        END IF;
    ELSE
        prev_seq := pg_catalog.split_part(running, ':', 1)::bigint;
        prev_hash := pg_catalog.decode(pg_catalog.split_part(running, ':', 2), 'hex');
    END IF;
    NEW.chain_seq := prev_seq + 1;
    NEW.chain_hash := public.hocba_audit_chain_step(prev_hash, NEW.chain_seq, content);
    PERFORM pg_catalog.set_config(
        running_key, NEW.chain_seq::text || ':' || pg_catalog.encode(NEW.chain_hash, 'hex'), true
    );
    RETURN NEW;
END;
$$;

CREATE FUNCTION public.hocba_audit_chain_flush() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    running text := pg_catalog.current_setting('hocba_audit_chain.t' || TG_RELID::bigint, true);
    flushed_key text := 'hocba_audit_chain.f' || TG_RELID::bigint;
    last_seq bigint;
BEGIN
    -- Nothing to write: a row written around the chain trigger (the check names it), or the
    -- head already written by an earlier row's event of this transaction.
    IF running IS NULL OR running = '' OR running = pg_catalog.current_setting(flushed_key, true) THEN
        RETURN NULL;
    END IF;
    last_seq := pg_catalog.split_part(running, ':', 1)::bigint;
    UPDATE public.hocba_audit_chain_head AS h
    SET seq = last_seq,
        hash = pg_catalog.decode(pg_catalog.split_part(running, ':', 2), 'hex'),
        updated_at = pg_catalog.clock_timestamp()
    WHERE h.schema_name = TG_TABLE_SCHEMA AND h.table_name = TG_TABLE_NAME AND h.seq < last_seq;
    PERFORM pg_catalog.set_config(flushed_key, running, true);
    RETURN NULL;
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
    PERFORM set_config('hocba_audit_chain.t' || tbl::oid::bigint, '', true);
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
DROP FUNCTION IF EXISTS public.hocba_audit_chain_flush();
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
CREATE CONSTRAINT TRIGGER zz_audit_chain_head AFTER INSERT ON public.{table}
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION public.hocba_audit_chain_flush();
ALTER TABLE public.{table} ALTER COLUMN chain_seq SET NOT NULL, ALTER COLUMN chain_hash SET NOT NULL;
CREATE UNIQUE INDEX {table}_chain_seq ON public.{table} (chain_seq);
"""
    reverse = f"""
DROP INDEX IF EXISTS public.{table}_chain_seq;
ALTER TABLE public.{table} ALTER COLUMN chain_seq DROP NOT NULL, ALTER COLUMN chain_hash DROP NOT NULL;
DROP TRIGGER IF EXISTS zz_audit_chain_head ON public.{table};
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
