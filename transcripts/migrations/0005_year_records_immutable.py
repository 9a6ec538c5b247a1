"""Year records are immutable once signed, and their history is append-only: enforced by the
database in every school schema, so neither a bug nor a raw UPDATE can change a signed record.

- Every row: the stored SHA-256 is the hash of the stored XML (INSERT and UPDATE).
- Once the status is signed_homeroom or later (FROZEN below, transcripts.models_records.
  FROZEN_STATUSES), the content columns never change, the row is never deleted, and the status
  only moves forward along the lifecycle (domain.md §5): the allowed moves are listed here, so a
  signed record cannot be walked back to an editable state and then edited.
- Year record events: UPDATE and DELETE refused.
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION transcripts_yearrecord_guard() RETURNS trigger AS $$
DECLARE
    frozen CONSTANT text[] := ARRAY['signed_homeroom', 'signed_principal', 'issued', 'queued',
                                    'acknowledged', 'rejected', 'superseded', 'revoked'];
    allowed text[];
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status = ANY (frozen) THEN
            RAISE EXCEPTION 'year record % v% is signed: it cannot be deleted', OLD.record_id, OLD.version
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.sha256 IS DISTINCT FROM encode(sha256(NEW.xml), 'hex') THEN
        RAISE EXCEPTION 'year record % v%: sha256 is not the hash of the xml', NEW.record_id, NEW.version
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = ANY (frozen) THEN
        IF NEW.xml IS DISTINCT FROM OLD.xml
           OR NEW.sha256 IS DISTINCT FROM OLD.sha256
           OR NEW.record_id IS DISTINCT FROM OLD.record_id
           OR NEW.version IS DISTINCT FROM OLD.version
           OR NEW.enrolment_id IS DISTINCT FROM OLD.enrolment_id
           OR NEW.supersedes_id IS DISTINCT FROM OLD.supersedes_id
           OR NEW.correction_reason IS DISTINCT FROM OLD.correction_reason
           OR NEW.created_at IS DISTINCT FROM OLD.created_at
           OR NEW.created_by_id IS DISTINCT FROM OLD.created_by_id THEN
            RAISE EXCEPTION 'year record % v% is signed: its content cannot change', OLD.record_id, OLD.version
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        allowed := CASE OLD.status
            WHEN 'signed_homeroom' THEN ARRAY['signed_principal', 'superseded', 'revoked']
            WHEN 'signed_principal' THEN ARRAY['issued', 'superseded', 'revoked']
            WHEN 'issued' THEN ARRAY['queued', 'superseded', 'revoked']
            WHEN 'queued' THEN ARRAY['acknowledged', 'rejected', 'superseded', 'revoked']
            WHEN 'acknowledged' THEN ARRAY['superseded', 'revoked']
            WHEN 'rejected' THEN ARRAY['queued', 'superseded', 'revoked']
            WHEN 'superseded' THEN ARRAY['revoked']
            ELSE ARRAY[]::text[]
        END;
        IF NEW.status <> OLD.status AND NOT NEW.status = ANY (allowed) THEN
            RAISE EXCEPTION 'year record % v%: % cannot move to %', OLD.record_id, OLD.version,
                OLD.status, NEW.status
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER transcripts_yearrecord_guard
    BEFORE INSERT OR UPDATE OR DELETE ON transcripts_yearrecord
    FOR EACH ROW EXECUTE FUNCTION transcripts_yearrecord_guard();

CREATE OR REPLACE FUNCTION transcripts_yearrecordevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the year record history is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER transcripts_yearrecordevent_append_only
    BEFORE UPDATE OR DELETE ON transcripts_yearrecordevent
    FOR EACH ROW EXECUTE FUNCTION transcripts_yearrecordevent_append_only();
"""

REVERSE = """
DROP TRIGGER IF EXISTS transcripts_yearrecord_guard ON transcripts_yearrecord;
DROP FUNCTION IF EXISTS transcripts_yearrecord_guard();
DROP TRIGGER IF EXISTS transcripts_yearrecordevent_append_only ON transcripts_yearrecordevent;
DROP FUNCTION IF EXISTS transcripts_yearrecordevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("transcripts", "0004_year_records")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
