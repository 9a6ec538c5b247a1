"""The school's audit rows are chained by hash: the assessment changes and the year record
transitions (portal 0021, docs/security.md, "The audit chain").

Existing rows are chained in id order by one set-based UPDATE per table
(public.hocba_audit_chain_seal; a school with no rows is not touched), then the trigger chains
each insert. The SQL names no schema: the functions are found through the school's search_path
("<school>, public"), so portal.migrate_fast replays it in every school, and the clone of the
template carries the triggers.
"""

from django.db import migrations, models

CHAINED = [
    ("assessmentchange", "transcripts_assessmentchange", "transcripts_change_append_only"),
    ("yearrecordevent", "transcripts_yearrecordevent", "transcripts_yearrecordevent_append_only"),
]


def _chain(model_name: str, table: str, guard: str) -> list:
    forward = f"""
SELECT hocba_audit_chain_seal('{table}', '{guard}');
CREATE TRIGGER zz_audit_chain BEFORE INSERT ON {table}
    FOR EACH ROW EXECUTE FUNCTION hocba_audit_chain();
CREATE CONSTRAINT TRIGGER zz_audit_chain_head AFTER INSERT ON {table}
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION hocba_audit_chain_flush();
ALTER TABLE {table} ALTER COLUMN chain_seq SET NOT NULL, ALTER COLUMN chain_hash SET NOT NULL;
CREATE UNIQUE INDEX {table}_chain_seq ON {table} (chain_seq);
"""
    reverse = f"""
DROP INDEX IF EXISTS {table}_chain_seq;
ALTER TABLE {table} ALTER COLUMN chain_seq DROP NOT NULL, ALTER COLUMN chain_hash DROP NOT NULL;
DROP TRIGGER IF EXISTS zz_audit_chain_head ON {table};
DROP TRIGGER IF EXISTS zz_audit_chain ON {table};
DELETE FROM hocba_audit_chain_head WHERE schema_name = current_schema() AND table_name = '{table}';
"""
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
        migrations.RunSQL(
            forward,
            reverse,
            state_operations=[
                migrations.AlterField(
                    model_name=model_name,
                    name="chain_seq",
                    field=models.BigIntegerField(blank=True, editable=False),
                ),
                migrations.AlterField(
                    model_name=model_name,
                    name="chain_hash",
                    field=models.BinaryField(blank=True, editable=False),
                ),
            ],
        ),
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("transcripts", "0016_user_checks_not_foreign_keys"),
        ("portal", "0021_audit_chain"),
    ]

    operations = [op for chained in CHAINED for op in _chain(*chained)]
