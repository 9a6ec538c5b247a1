"""References to users from the school schemas are checked by triggers, not foreign keys (issue 15).

Nine school tables name a user (schools: term.locked_by, schoolclass.homeroom_teacher,
schoolclass.closed_by, teachingassignment.teacher; transcripts: assessmentchange.actor,
attachedrecord.attached_by, yearrecord.created_by, yearrecordevent.actor,
yearrecordsignature.signer). As real foreign keys, each added two RI triggers to the one table
public.portal_user: 18 per school, 18,000 at 1,000 schools, and PostgreSQL re-reads all of them
whenever a key to that table is added (each provisioning) and on each connection's first use of
it, so provisioning slowed with every school. Instead:

- public.hocba_user_exists(): a trigger function for a deferred constraint trigger that each
  school table carries in its own schema (schools 0006 / transcripts 0016), one per table, with
  the user columns as arguments. At commit, each non-NULL value must name a row of
  public.portal_user, read FOR KEY SHARE as PostgreSQL's own foreign key check does (a user
  cannot be deleted or have its id changed under a transaction that references it); otherwise
  foreign_key_violation (23503, an IntegrityError in Django). The event is checked with the row
  as written by that statement: a row inserted with an unknown user and corrected later in the
  same transaction is still refused (a real key would accept it); the project never does this.
- Users are never deleted (they are deactivated: is_active), and their ids never change: a
  trigger on portal_user refuses DELETE and UPDATE of id (restrict_violation, 23001), so a
  reference checked once stays valid. TRUNCATE (the test suite's flush) is not refused.

The function names public.portal_user explicitly and runs with a fixed search_path, so it reads
the same table whatever the caller's search_path (a school's is "<school>, public").
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION public.hocba_user_exists() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    row_values jsonb := to_jsonb(NEW);
    col text;
    user_id bigint;
BEGIN
    FOR i IN 0 .. TG_NARGS - 1 LOOP
        col := TG_ARGV[i];
        IF NOT row_values ? col THEN
            RAISE EXCEPTION 'hocba_user_exists: table %.% has no column %',
                TG_TABLE_SCHEMA, TG_TABLE_NAME, col
                USING ERRCODE = 'undefined_column';
        END IF;
        user_id := (row_values ->> col)::bigint;
        CONTINUE WHEN user_id IS NULL;
        PERFORM 1 FROM public.portal_user u WHERE u.id = user_id FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'insert or update on table "%.%": no user % (column "%")',
                TG_TABLE_SCHEMA, TG_TABLE_NAME, user_id, col
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format('Key (%s)=(%s) is not present in table "public.portal_user".',
                                      col, user_id),
                      SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME, COLUMN = col;
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION public.portal_user_kept() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'users are deactivated, never deleted (user % refused): records refer to them',
            OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION 'a user''s id never changes (user % refused): school records refer to it', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER portal_user_kept
    BEFORE DELETE OR UPDATE OF id ON public.portal_user
    FOR EACH ROW EXECUTE FUNCTION public.portal_user_kept();
"""

REVERSE = """
DROP TRIGGER IF EXISTS portal_user_kept ON public.portal_user;
DROP FUNCTION IF EXISTS public.portal_user_kept();
DROP FUNCTION IF EXISTS public.hocba_user_exists();
"""


class Migration(migrations.Migration):
    dependencies = [("portal", "0019_pdf_due")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
