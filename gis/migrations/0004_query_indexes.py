"""Indexes the OGC API's common requests need on large data.

- ``buildings.floors`` and ``buildings.use``: the attribute filters analysts send most
  (an exact ``numberMatched`` then counts from the index, not a table scan);
- a partial GiST index over open incidents: low-zoom incident tiles show only these.
"""

from django.db import migrations

OPEN_INCIDENTS = "status IN ('new', 'dispatched', 'in_progress')"


class Migration(migrations.Migration):
    dependencies = [("onemap", "0003_access")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS buildings_floors_idx ON buildings (floors)",
            "DROP INDEX IF EXISTS buildings_floors_idx",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS buildings_use_idx ON buildings (use)",
            "DROP INDEX IF EXISTS buildings_use_idx",
        ),
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS incidents_open_geom_idx ON incidents USING gist (geom) WHERE {OPEN_INCIDENTS}",
            "DROP INDEX IF EXISTS incidents_open_geom_idx",
        ),
    ]
