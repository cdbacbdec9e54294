"""The live feed's event log and incidents' status history, both written by triggers on ``incidents``."""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


# The advisory lock makes writers of live events take their ids one transaction at a
# time, holding the lock to commit: a reader that sees id N has seen every id below N
# that will ever commit, so "everything after N" is a complete replay cursor.
LIVE_LOCK = 7_240_501

# More rows than this in one statement is a bulk load: one ``reset`` event, not one per row.
BULK_ROWS = 500

TRIGGERS = f"""
CREATE FUNCTION live_incidents_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    op text := lower(TG_OP);
    rows bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        rows := {BULK_ROWS} + 1;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT count(*) INTO rows FROM old_rows;
    ELSE
        SELECT count(*) INTO rows FROM new_rows;
    END IF;
    IF rows = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock({LIVE_LOCK});
    IF rows > {BULK_ROWS} THEN
        INSERT INTO live_events (kind, op) VALUES ('reset', op);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO live_events (kind, op, incident_id) SELECT 'incident', op, id FROM old_rows ORDER BY id;
    ELSE
        INSERT INTO live_events (kind, op, incident_id) SELECT 'incident', op, id FROM new_rows ORDER BY id;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO incident_status_changes (incident_id, at, from_status, to_status, actor)
        SELECT n.id, now(), o.status, n.status, coalesce(current_setting('onemap.actor', true), '')
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.status IS DISTINCT FROM o.status;
    END IF;
    PERFORM pg_notify('onemap_live', '');
    RETURN NULL;
END $$;

CREATE TRIGGER live_incidents_insert AFTER INSERT ON incidents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION live_incidents_changed();
CREATE TRIGGER live_incidents_update AFTER UPDATE ON incidents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION live_incidents_changed();
CREATE TRIGGER live_incidents_delete AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION live_incidents_changed();
CREATE TRIGGER live_incidents_truncate AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION live_incidents_changed();
"""

DROP_TRIGGERS = """
DROP TRIGGER live_incidents_insert ON incidents;
DROP TRIGGER live_incidents_update ON incidents;
DROP TRIGGER live_incidents_delete ON incidents;
DROP TRIGGER live_incidents_truncate ON incidents;
DROP FUNCTION live_incidents_changed();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('onemap', '0005_falling_object_category'),
    ]

    operations = [
        migrations.CreateModel(
            name='LiveEvent',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                ('kind', models.CharField(max_length=20)),
                ('op', models.CharField(max_length=10)),
                ('incident_id', models.BigIntegerField(blank=True, null=True)),
            ],
            options={
                'db_table': 'live_events',
                'indexes': [models.Index(fields=['at'], name='live_events_at_idx')],
            },
        ),
        migrations.CreateModel(
            name='IncidentStatusChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                ('from_status', models.CharField(max_length=20)),
                ('to_status', models.CharField(max_length=20)),
                ('actor', models.CharField(blank=True, default='', help_text='Who changed it, when known', max_length=150)),
                ('incident', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='status_changes', to='onemap.incident')),
            ],
            options={
                'db_table': 'incident_status_changes',
                'indexes': [models.Index(fields=['incident', 'at'], name='incident_status_changes_idx')],
            },
        ),
        migrations.RunSQL(TRIGGERS, DROP_TRIGGERS),
    ]
