"""The incident category for objects from high floors is ``falling_object``, the name the vision pipeline reports."""

from django.db import migrations, models

CATEGORIES = [
    ("falling_object", "object falling or thrown from height (高空抛物)"),
    ("fire_smoke", "open fire or smoke"),
    ("illegal_parking", "illegal parking"),
    ("elder_inactivity", "elder not seen (48 h)"),
    ("resident_report", "resident report"),
    ("sanitation", "sanitation"),
    ("facility_damage", "facility damage"),
    ("neighbour_dispute", "neighbour dispute"),
    ("epidemic", "epidemic prevention"),
]


class Migration(migrations.Migration):
    dependencies = [("onemap", "0004_query_indexes")]

    operations = [
        migrations.AlterField(model_name="incident", name="category", field=models.CharField(choices=CATEGORIES, max_length=30)),
        migrations.RunSQL(
            "UPDATE incidents SET category = 'falling_object' WHERE category = 'thrown_object'",
            "UPDATE incidents SET category = 'thrown_object' WHERE category = 'falling_object'",
        ),
    ]
