"""Incidents' status history in commit order: a change is stamped when it happens, not when its transaction began.

Migration 0006 stamped each change with ``now()``, the start of its transaction. Two
concurrent changes of one incident are serialised by the row lock, but the one that
began first may commit second: its earlier stamp put the history out of order (the
screen showed 128 of 171 transitions out of order under load). ``clock_timestamp()``
is taken inside the trigger, after the row lock was granted, so stamps (and ids) follow
the order in which the changes committed.
"""

import importlib

from django.db import migrations

_0006 = importlib.import_module("gis.migrations.0006_live_events")
_FUNCTION = _0006.TRIGGERS.split("CREATE TRIGGER", 1)[0]
assert "SELECT n.id, now(), o.status" in _FUNCTION

FORWARD = _FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1).replace(
    "SELECT n.id, now(), o.status", "SELECT n.id, clock_timestamp(), o.status", 1
)
BACKWARD = _FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


class Migration(migrations.Migration):
    dependencies = [("onemap", "0007_incident_scene_index")]

    operations = [
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
