"""The assessment audit trail is append-only, enforced by the database in every school schema."""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION transcripts_change_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the assessment audit trail is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER transcripts_change_append_only
    BEFORE UPDATE OR DELETE ON transcripts_assessmentchange
    FOR EACH ROW EXECUTE FUNCTION transcripts_change_append_only();
"""

REVERSE = """
DROP TRIGGER IF EXISTS transcripts_change_append_only ON transcripts_assessmentchange;
DROP FUNCTION IF EXISTS transcripts_change_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("transcripts", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
