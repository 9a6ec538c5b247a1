"""The schools app's references to users: a deferred check instead of a foreign key.

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
CREATE CONSTRAINT TRIGGER schools_term_user_check
    AFTER INSERT OR UPDATE OF locked_by_id ON schools_term
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.locked_by_id IS NOT NULL)
    EXECUTE FUNCTION hocba_user_exists('locked_by_id');
CREATE CONSTRAINT TRIGGER schools_schoolclass_user_check
    AFTER INSERT OR UPDATE OF homeroom_teacher_id, closed_by_id ON schools_schoolclass
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.homeroom_teacher_id IS NOT NULL OR NEW.closed_by_id IS NOT NULL)
    EXECUTE FUNCTION hocba_user_exists('homeroom_teacher_id', 'closed_by_id');
CREATE CONSTRAINT TRIGGER schools_teachingassignment_user_check
    AFTER INSERT OR UPDATE OF teacher_id ON schools_teachingassignment
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.teacher_id IS NOT NULL)
    EXECUTE FUNCTION hocba_user_exists('teacher_id');
"""

REVERSE = """
DROP TRIGGER IF EXISTS schools_term_user_check ON schools_term;
DROP TRIGGER IF EXISTS schools_schoolclass_user_check ON schools_schoolclass;
DROP TRIGGER IF EXISTS schools_teachingassignment_user_check ON schools_teachingassignment;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("schools", "0005_closed_book_guard"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("portal", "0020_user_references"),
    ]

    operations = [
        migrations.AlterField(
            model_name="schoolclass",
            name="closed_by",
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
            model_name="schoolclass",
            name="homeroom_teacher",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="homeroom teacher",
            ),
        ),
        migrations.AlterField(
            model_name="teachingassignment",
            name="teacher",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="term",
            name="locked_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunSQL(SQL, REVERSE),
    ]
