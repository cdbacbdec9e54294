"""The personal fields of care_subject_private sealed at rest (one AES-GCM blob per person).

Existing rows are sealed with the personal-data key (``ONEMAP_PII_KEY``, else ``.var/pii_key``,
made once) and their clear columns dropped; only ``gender`` stays in clear. Backwards, the
blobs are opened into the columns again (with the same key). The restricted layer's view
reads the old columns, so it is dropped first; ``layers`` recreates every view after migrate.
"""

from django.db import migrations, models

_SEALED = ("full_name", "birth_date", "phone", "unit", "floor", "room", "contacts", "health_notes")


def _seal_rows(apps, schema_editor):
    from gis.care.private import private_seal

    Private = apps.get_model("onemap", "CareSubjectPrivate")
    rows = Private.objects.using(schema_editor.connection.alias)
    batch = []
    for row in rows.all().iterator(chunk_size=2000):
        row.sealed = private_seal(subject_id=row.subject_id, fields={k: getattr(row, k) for k in _SEALED})
        batch.append(row)
        if len(batch) == 2000:
            rows.bulk_update(batch, ["sealed"])
            batch = []
    rows.bulk_update(batch, ["sealed"])


def _open_rows(apps, schema_editor):
    from gis.care.private import private_open

    Private = apps.get_model("onemap", "CareSubjectPrivate")
    rows = Private.objects.using(schema_editor.connection.alias)
    batch = []
    for row in rows.all().iterator(chunk_size=2000):
        fields = private_open(subject_id=row.subject_id, sealed=row.sealed)
        for name in _SEALED:
            value = fields[name]
            setattr(row, name, value if value is not None else ("" if name in ("phone", "health_notes") else value))
        batch.append(row)
    rows.bulk_update(batch, list(_SEALED), batch_size=2000)


class Migration(migrations.Migration):

    dependencies = [
        ("onemap", "0021_sensor_ingest"),
    ]

    operations = [
        migrations.RunSQL("DROP VIEW IF EXISTS ogc_care_subjects", migrations.RunSQL.noop),
        migrations.AddField(
            model_name="caresubjectprivate",
            name="sealed",
            field=models.BinaryField(null=True),
        ),
        # nullable first, so that going backwards can add the columns again over existing rows
        migrations.AlterField(model_name="caresubjectprivate", name="full_name",
                              field=models.CharField(max_length=50, null=True)),
        migrations.AlterField(model_name="caresubjectprivate", name="birth_date", field=models.DateField(null=True)),
        migrations.AlterField(model_name="caresubjectprivate", name="unit",
                              field=models.PositiveSmallIntegerField(null=True)),
        migrations.AlterField(model_name="caresubjectprivate", name="floor", field=models.SmallIntegerField(null=True)),
        migrations.AlterField(model_name="caresubjectprivate", name="room",
                              field=models.CharField(max_length=10, null=True)),
        migrations.RunPython(_seal_rows, _open_rows),
        *[migrations.RemoveField(model_name="caresubjectprivate", name=name) for name in _SEALED],
        migrations.AlterField(
            model_name="caresubjectprivate",
            name="sealed",
            field=models.BinaryField(help_text="AES-GCM of the personal fields under ONEMAP_PII_KEY (gis.care.private)"),
        ),
    ]
