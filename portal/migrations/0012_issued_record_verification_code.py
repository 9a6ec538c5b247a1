"""Every issued record gets its verification code (issue 9, finding 7).

The column is added empty, the records already issued get a code each (80 random bits, as
portal.verification.verification_code_new makes them: the code is never derived from the id),
then it becomes required, unique and checked for its format.

The PDFs already rendered for those records keep their QR code without the code (a stored PDF is
never rendered again): their holders verify by uploading the document, or ask the school, whose
pages show the code.
"""

import secrets

from django.db import migrations, models

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32, as in portal.models_verification


def codes_for_issued_records(apps, schema_editor):
    IssuedRecord = apps.get_model("portal", "IssuedRecord")
    used = set(
        IssuedRecord.objects.exclude(verification_code=None).values_list("verification_code", flat=True)
    )
    for entry in IssuedRecord.objects.filter(verification_code=None).only("pk").iterator():
        code = "".join(secrets.choice(ALPHABET) for _ in range(16))
        while code in used:  # 80 bits: never in practice, but the constraint below must hold
            code = "".join(secrets.choice(ALPHABET) for _ in range(16))
        used.add(code)
        IssuedRecord.objects.filter(pk=entry.pk).update(verification_code=code)


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0011_alter_auditentry_action"),
    ]

    operations = [
        migrations.AddField(
            model_name="issuedrecord",
            name="verification_code",
            field=models.CharField(
                editable=False, max_length=16, null=True, verbose_name="verification code"
            ),
        ),
        migrations.RunPython(codes_for_issued_records, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="issuedrecord",
            name="verification_code",
            field=models.CharField(editable=False, max_length=16, verbose_name="verification code"),
        ),
        migrations.AddConstraint(
            model_name="issuedrecord",
            constraint=models.UniqueConstraint(
                fields=("verification_code",), name="issued_record_verification_code_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="issuedrecord",
            constraint=models.CheckConstraint(
                condition=models.Q(verification_code__regex="^[0-9A-HJKMNP-TV-Z]{16}$"),
                name="issued_record_verification_code_format",
            ),
        ),
    ]
