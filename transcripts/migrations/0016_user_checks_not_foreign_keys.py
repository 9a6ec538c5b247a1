"""The transcripts app's references to users: a deferred check instead of a foreign key.

Each foreign key to portal_user added two triggers to that one shared table, per school (issue
15: provisioning slowed with every school). The columns keep their index and their ORM relation
(db_constraint=False); one constraint trigger per table, in the school's own schema, calls
public.hocba_user_exists (portal 0020) at commit: an unknown user is refused with
foreign_key_violation, as the key did, and users are never deleted (portal_user refuses it).
The SQL names no schema: the function is found through the school's search_path ("<school>,
public"), so portal.migrate_fast can replay it, and pg_dump (the clone) writes it qualified.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

SQL = """
CREATE CONSTRAINT TRIGGER transcripts_assessmentchange_user_check
    AFTER INSERT OR UPDATE OF actor_id ON transcripts_assessmentchange
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.actor_id IS NOT NULL)
    EXECUTE FUNCTION hocba_user_exists('actor_id');
CREATE CONSTRAINT TRIGGER transcripts_attachedrecord_user_check
    AFTER INSERT OR UPDATE OF attached_by_id ON transcripts_attachedrecord
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.attached_by_id IS NOT NULL)
    EXECUTE FUNCTION hocba_user_exists('attached_by_id');
CREATE CONSTRAINT TRIGGER transcripts_yearrecord_user_check
    AFTER INSERT OR UPDATE OF created_by_id ON transcripts_yearrecord
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.created_by_id IS NOT NULL)
    EXECUTE FUNCTION hocba_user_exists('created_by_id');
CREATE CONSTRAINT TRIGGER transcripts_yearrecordevent_user_check
    AFTER INSERT OR UPDATE OF actor_id ON transcripts_yearrecordevent
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.actor_id IS NOT NULL)
    EXECUTE FUNCTION hocba_user_exists('actor_id');
CREATE CONSTRAINT TRIGGER transcripts_yearrecordsignature_user_check
    AFTER INSERT OR UPDATE OF signer_id ON transcripts_yearrecordsignature
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.signer_id IS NOT NULL)
    EXECUTE FUNCTION hocba_user_exists('signer_id');
"""

REVERSE = """
DROP TRIGGER IF EXISTS transcripts_assessmentchange_user_check ON transcripts_assessmentchange;
DROP TRIGGER IF EXISTS transcripts_attachedrecord_user_check ON transcripts_attachedrecord;
DROP TRIGGER IF EXISTS transcripts_yearrecord_user_check ON transcripts_yearrecord;
DROP TRIGGER IF EXISTS transcripts_yearrecordevent_user_check ON transcripts_yearrecordevent;
DROP TRIGGER IF EXISTS transcripts_yearrecordsignature_user_check ON transcripts_yearrecordsignature;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("transcripts", "0015_documents_in_storage"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("portal", "0020_user_references"),
    ]

    operations = [
        migrations.AlterField(
            model_name="assessmentchange",
            name="actor",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="attachedrecord",
            name="attached_by",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="attached by",
            ),
        ),
        migrations.AlterField(
            model_name="yearrecord",
            name="created_by",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="created by",
            ),
        ),
        migrations.AlterField(
            model_name="yearrecordevent",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="yearrecordsignature",
            name="signer",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunSQL(SQL, REVERSE),
    ]
