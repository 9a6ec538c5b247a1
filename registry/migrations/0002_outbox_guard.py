"""What a message to the Ministry says never changes, and no message is ever deleted.

Refused by PostgreSQL itself (design.md: invariants live in the database), whatever writes:
- DELETE of any message;
- an UPDATE of what the message says: its school, record, version, kind, the version it
  replaces, its key, the student, a revocation's reason, when it was queued;
- a change of its document, except dropping it once the Ministry has acknowledged the message;
- a personal ID changed once set (it is set once, when the number is verified);
- an acknowledged message moving to any other state.
"""

from django.db import migrations

GUARD = r"""
CREATE OR REPLACE FUNCTION registry_outbox_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'A message to the Ministry is never deleted (message %)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.school_id IS DISTINCT FROM OLD.school_id
        OR NEW.record_id IS DISTINCT FROM OLD.record_id
        OR NEW.version IS DISTINCT FROM OLD.version
        OR NEW.kind IS DISTINCT FROM OLD.kind
        OR NEW.replaces_version IS DISTINCT FROM OLD.replaces_version
        OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key
        OR NEW.student_code IS DISTINCT FROM OLD.student_code
        OR NEW.reason IS DISTINCT FROM OLD.reason
        OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'What a message to the Ministry says never changes (message %)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.document IS DISTINCT FROM OLD.document
        AND NOT (NEW.document IS NULL AND NEW.state = 'acknowledged') THEN
        RAISE EXCEPTION 'A message''s document is only dropped once acknowledged (message %)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.personal_id IS NOT NULL AND NEW.personal_id IS DISTINCT FROM OLD.personal_id THEN
        RAISE EXCEPTION 'A message''s personal ID is set once (message %)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.state = 'acknowledged' AND NEW.state <> 'acknowledged' THEN
        RAISE EXCEPTION 'An acknowledged message stays acknowledged (message %)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER registry_outbox_guard BEFORE UPDATE OR DELETE ON registry_outboxmessage
    FOR EACH ROW EXECUTE FUNCTION registry_outbox_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS registry_outbox_guard ON registry_outboxmessage;
DROP FUNCTION IF EXISTS registry_outbox_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_outbox")]

    operations = [migrations.RunSQL(GUARD, UNGUARD)]
