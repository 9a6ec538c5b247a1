"""Year record PDFs move out of PostgreSQL into the documents storage; issued XML copies join them.

Issue 15: ~2.5 M year records a year at ~43 KiB of PDF each was ~100 GiB a year in the school
schemas (and in every dump, every WAL segment, every replica). Each school schema's rows are moved
here, in its own migration run (django-tenants runs a tenant app's migrations per schema; this
RunPython is skipped in public): every PDF's bytes are written to STORAGES["documents"] under a
write-once name that carries their SHA-256 (checked against the row's before anything is written),
the row keeps the name and size, and the bytea column is dropped in the same migration.

Why drop it at once rather than keep it nullable for a transition: two places for the same bytes
means two read paths and a table that keeps its size until someone remembers to empty it; the move
is checked row by row, and the way back (migrating backwards) reads every object back into the
column, checked against its hash again. An object written by a run that then failed is harmless:
the next run finds the same name with the same bytes (document_put accepts a retry).

The issued (sealed) XML of each of these versions is copied to the storage too (YearRecordXml), as
the PDF renderer does from now on; the database keeps its working copy (the seal's signed_xml).

The database keeps the invariants:
- a PDF row's document never changes (name, hash, size, record, renderer, seal refused on UPDATE;
  DELETE stays allowed, as before: a PDF given up is rendered again, under its own name);
- an XML copy is append-only, and its hash is the hash of the record's sealed document;
- a name ends with "/<sha256>.pdf" (".xml"), so a row never points at other bytes than it hashed.
"""

import hashlib

import django.db.models.deletion
import django.db.models.functions.text
import django.utils.timezone
from django.db import migrations, models

SEAL_POSITION = 3


def _schema(schema_editor) -> str:
    return getattr(schema_editor.connection, "schema_name", "public")


def pdfs_to_storage(apps, schema_editor):
    from transcripts.records.storage import document_name, document_put

    YearRecordPdf = apps.get_model("transcripts", "YearRecordPdf")
    YearRecordSignature = apps.get_model("transcripts", "YearRecordSignature")
    YearRecordXml = apps.get_model("transcripts", "YearRecordXml")
    schema = _schema(schema_editor)
    # The XML copies' foreign keys checked as they are inserted: no trigger event left pending
    # for the ALTER TABLEs that follow in this transaction.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    rows = YearRecordPdf.objects.select_related("record").order_by("pk")
    for row in rows.iterator(chunk_size=100):
        data = bytes(row.pdf)
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise RuntimeError(f"{schema}: the PDF of record row {row.record_id} does not hash to its sha256")
        record = row.record
        name = document_name(
            schema=schema, record_id=record.record_id, version=record.version, sha256=row.sha256, kind="pdf"
        )
        stored = document_put(name, data)
        YearRecordPdf.objects.filter(pk=row.pk).update(name=stored.name, size=stored.size)
        sealed = YearRecordSignature.objects.filter(record_id=record.pk, position=SEAL_POSITION).first()
        if sealed is not None and not YearRecordXml.objects.filter(record_id=record.pk).exists():
            xml = bytes(sealed.signed_xml)
            sha256 = hashlib.sha256(xml).hexdigest()
            copy = document_put(
                document_name(
                    schema=schema,
                    record_id=record.record_id,
                    version=record.version,
                    sha256=sha256,
                    kind="xml",
                ),
                xml,
            )
            YearRecordXml.objects.create(record_id=record.pk, name=copy.name, size=copy.size, sha256=sha256)


def pdfs_from_storage(apps, schema_editor):
    from transcripts.records.storage import document_get

    YearRecordPdf = apps.get_model("transcripts", "YearRecordPdf")
    for row in YearRecordPdf.objects.order_by("pk").iterator(chunk_size=100):
        data = document_get(row.name, row.sha256)  # checked: never bytes other than the row's
        YearRecordPdf.objects.filter(pk=row.pk).update(pdf=data)


GUARDS = """
CREATE OR REPLACE FUNCTION transcripts_yearrecordpdf_guard() RETURNS trigger AS $$
BEGIN
    IF NEW.record_id IS DISTINCT FROM OLD.record_id
       OR NEW.name IS DISTINCT FROM OLD.name
       OR NEW.sha256 IS DISTINCT FROM OLD.sha256
       OR NEW.size IS DISTINCT FROM OLD.size
       OR NEW.rendered_at IS DISTINCT FROM OLD.rendered_at
       OR NEW.renderer IS DISTINCT FROM OLD.renderer
       OR NEW.sealed IS DISTINCT FROM OLD.sealed
       OR NEW.sealed_by IS DISTINCT FROM OLD.sealed_by
       OR NEW.sealed_at IS DISTINCT FROM OLD.sealed_at THEN
        RAISE EXCEPTION 'the PDF of year record row % is stored: it cannot change', OLD.record_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER transcripts_yearrecordpdf_guard
    BEFORE UPDATE ON transcripts_yearrecordpdf
    FOR EACH ROW EXECUTE FUNCTION transcripts_yearrecordpdf_guard();

CREATE OR REPLACE FUNCTION transcripts_yearrecordxml_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RAISE EXCEPTION 'issued XML copies are write-once (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM transcripts_yearrecordsignature
        WHERE record_id = NEW.record_id AND position = 3
          AND encode(sha256(signed_xml), 'hex') = NEW.sha256
    ) THEN
        RAISE EXCEPTION 'year record row %: the XML copy is not its sealed document', NEW.record_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER transcripts_yearrecordxml_guard
    BEFORE INSERT OR UPDATE OR DELETE ON transcripts_yearrecordxml
    FOR EACH ROW EXECUTE FUNCTION transcripts_yearrecordxml_guard();
"""

UNGUARDS = """
DROP TRIGGER IF EXISTS transcripts_yearrecordxml_guard ON transcripts_yearrecordxml;
DROP FUNCTION IF EXISTS transcripts_yearrecordxml_guard();
DROP TRIGGER IF EXISTS transcripts_yearrecordpdf_guard ON transcripts_yearrecordpdf;
DROP FUNCTION IF EXISTS transcripts_yearrecordpdf_guard();
"""


def _name_of_hash(kind: str):
    return models.Q(
        name__endswith=django.db.models.functions.text.Concat(
            models.Value("/"), "sha256", models.Value(f".{kind}")
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("transcripts", "0014_year_record_renewal"),
    ]

    operations = [
        migrations.CreateModel(
            name="YearRecordXml",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=255, unique=True, verbose_name="stored as")),
                ("size", models.PositiveIntegerField(verbose_name="size (bytes)")),
                ("sha256", models.CharField(max_length=64, verbose_name="SHA-256")),
                (
                    "stored_at",
                    models.DateTimeField(default=django.utils.timezone.now, verbose_name="stored at"),
                ),
                (
                    "record",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="xml_copy",
                        to="transcripts.yearrecord",
                        verbose_name="year record",
                    ),
                ),
            ],
            options={
                "verbose_name": "issued XML copy",
                "verbose_name_plural": "issued XML copies",
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("sha256__regex", "^[0-9a-f]{64}$")),
                        name="year_record_xml_sha256_hex",
                    ),
                    models.CheckConstraint(
                        condition=_name_of_hash("xml"), name="year_record_xml_name_of_hash"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("size__gt", 0)), name="year_record_xml_size_positive"
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="yearrecordpdf",
            name="name",
            field=models.CharField(max_length=255, null=True, verbose_name="stored as"),
        ),
        migrations.AddField(
            model_name="yearrecordpdf",
            name="size",
            field=models.PositiveIntegerField(null=True, verbose_name="size (bytes)"),
        ),
        # Nullable before it goes, so that migrating backwards adds it back empty and
        # pdfs_from_storage fills it before NOT NULL is restored.
        migrations.AlterField(
            model_name="yearrecordpdf", name="pdf", field=models.BinaryField(null=True, verbose_name="PDF")
        ),
        migrations.RunPython(pdfs_to_storage, pdfs_from_storage),
        migrations.RemoveField(model_name="yearrecordpdf", name="pdf"),
        migrations.AlterField(
            model_name="yearrecordpdf",
            name="name",
            field=models.CharField(max_length=255, unique=True, verbose_name="stored as"),
        ),
        migrations.AlterField(
            model_name="yearrecordpdf",
            name="size",
            field=models.PositiveIntegerField(verbose_name="size (bytes)"),
        ),
        migrations.AddConstraint(
            model_name="yearrecordpdf",
            constraint=models.CheckConstraint(
                condition=_name_of_hash("pdf"), name="year_record_pdf_name_of_hash"
            ),
        ),
        migrations.AddConstraint(
            model_name="yearrecordpdf",
            constraint=models.CheckConstraint(
                condition=models.Q(("size__gt", 0)), name="year_record_pdf_size_positive"
            ),
        ),
        migrations.RunSQL(GUARDS, UNGUARDS),
    ]
