"""The registry's audit logs are chained by hash, as the others (portal 0021, docs/security.md):
the log of partner API calls and the log of personal data exports."""

from django.db import migrations, models

CHAINED = [
    ("apicall", "registry_apicall", "registry_apicall_append_only"),
    ("personaldataexport", "registry_personaldataexport", "registry_personaldataexport_append_only"),
]


def _chain(model_name: str, table: str, guard: str) -> list:
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
        ("registry", "0006_personal_data_export"),
        ("portal", "0021_audit_chain"),
    ]

    operations = [op for chained in CHAINED for op in _chain(*chained)]
