"""Signatures are append-only and checked by the database, and a record is "signed" only with one.

- transcripts_yearrecordsignature: UPDATE and DELETE refused. On INSERT: the stored SHA-256 is
  the hash of the signed document; position n follows n-1 of the same record; and the signed
  document carries the record's <thongtinhocba> element byte for byte (the content signed is the
  content stored).
- transcripts_yearrecord: moving to signed_homeroom, signed_principal or issued needs the
  signature of that step (positions 1, 2, 3) to exist already.
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION transcripts_yearrecordsignature_guard() RETURNS trigger AS $$
DECLARE
    content bytea;
    unsigned bytea;
    start integer;
    stop integer;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RAISE EXCEPTION 'year record signatures are append-only (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.sha256 IS DISTINCT FROM encode(sha256(NEW.signed_xml), 'hex') THEN
        RAISE EXCEPTION 'year record signature: sha256 is not the hash of the signed document'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.position > 1 AND NOT EXISTS (
        SELECT 1 FROM transcripts_yearrecordsignature
        WHERE record_id = NEW.record_id AND position = NEW.position - 1
    ) THEN
        RAISE EXCEPTION 'year record signature % comes before signature %', NEW.position, NEW.position - 1
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT xml INTO unsigned FROM transcripts_yearrecord WHERE id = NEW.record_id;
    start := position('<thongtinhocba'::bytea IN unsigned);
    stop := position('</thongtinhocba>'::bytea IN unsigned);
    IF start = 0 OR stop = 0 THEN
        RAISE EXCEPTION 'year record %: no content element', NEW.record_id USING ERRCODE = 'check_violation';
    END IF;
    content := substring(unsigned FROM start FOR stop - start + length('</thongtinhocba>'::bytea));
    IF position(content IN NEW.signed_xml) = 0 THEN
        RAISE EXCEPTION 'year record signature: the signed document does not carry the record''s content'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER transcripts_yearrecordsignature_guard
    BEFORE INSERT OR UPDATE OR DELETE ON transcripts_yearrecordsignature
    FOR EACH ROW EXECUTE FUNCTION transcripts_yearrecordsignature_guard();

CREATE OR REPLACE FUNCTION transcripts_yearrecord_needs_signature() RETURNS trigger AS $$
DECLARE
    needed integer;
BEGIN
    needed := CASE NEW.status
        WHEN 'signed_homeroom' THEN 1 WHEN 'signed_principal' THEN 2 WHEN 'issued' THEN 3 ELSE 0 END;
    IF needed > 0 AND NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
        SELECT 1 FROM transcripts_yearrecordsignature WHERE record_id = NEW.id AND position = needed
    ) THEN
        RAISE EXCEPTION 'year record % v%: % needs its signature first', NEW.record_id, NEW.version, NEW.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER transcripts_yearrecord_needs_signature
    BEFORE UPDATE ON transcripts_yearrecord
    FOR EACH ROW EXECUTE FUNCTION transcripts_yearrecord_needs_signature();
"""

REVERSE = """
DROP TRIGGER IF EXISTS transcripts_yearrecord_needs_signature ON transcripts_yearrecord;
DROP FUNCTION IF EXISTS transcripts_yearrecord_needs_signature();
DROP TRIGGER IF EXISTS transcripts_yearrecordsignature_guard ON transcripts_yearrecordsignature;
DROP FUNCTION IF EXISTS transcripts_yearrecordsignature_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("transcripts", "0008_yearrecordsignature")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
