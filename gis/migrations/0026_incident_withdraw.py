"""Who entered an incident by hand, and the one way a grid worker may delete one: withdrawing their own new report.

Deleting incidents stays the administrators' (a camera's evidence, a resident's report). A grid
worker may withdraw an incident they entered themselves (a mistake or a duplicate made in the
field), inside their grid, while its case is still as it was reported: state ``reported`` with
no step after its ``report`` row (no acceptance, escalation, "me too" or merge). The rule lives
here, in the database: the grid workers' role has no DELETE on ``incidents`` at all (see
``layers.access``) and may only call ``onemap_incident_withdraw``, which checks the rule as the
tables' owner, under row locks, against the caller's scope (``onemap.grid_id`` and
``onemap.user_id``, set by ``layers.access.scoped_django``), and then removes what an
administrator's delete removes: the incident, its status history and its case with the case's
audit rows (and tasks, and the links of reports and merged cases, of which a new case has none).

Both functions answer why not, as a word the services turn into a sentence:
``missing``, ``outside``, ``source:<camera|sensor|resident>``, ``reporter``, ``case:<state>``;
NULL when the caller may withdraw it (and, for the second, it is gone).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FUNCTIONS = """
CREATE FUNCTION onemap_withdraw_refusal(target bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN i.id IS NULL THEN 'missing'
        WHEN i.grid_id IS DISTINCT FROM nullif(current_setting('onemap.grid_id', true), '')::bigint THEN 'outside'
        WHEN i.source <> 'staff' THEN 'source:' || i.source
        WHEN i.reported_by_id IS NULL
          OR i.reported_by_id IS DISTINCT FROM nullif(current_setting('onemap.user_id', true), '')::bigint
          THEN 'reporter'
        WHEN c.id IS NOT NULL AND (c.state <> 'reported' OR EXISTS (
                SELECT 1 FROM case_events e WHERE e.case_id = c.id AND e.action <> 'report'))
          THEN 'case:' || c.state
    END
    FROM (SELECT target AS id) wanted
    LEFT JOIN incidents i ON i.id = wanted.id
    LEFT JOIN cases c ON c.incident_id = i.id
$$;

CREATE FUNCTION onemap_incident_withdraw(target bigint) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    refusal text;
BEGIN
    -- locked first, so the case cannot be accepted between the check and the delete
    PERFORM 1 FROM incidents i WHERE i.id = target FOR UPDATE;
    PERFORM 1 FROM cases c WHERE c.incident_id = target FOR UPDATE;
    refusal := onemap_withdraw_refusal(target);
    IF refusal IS NOT NULL THEN
        RETURN refusal;
    END IF;
    -- what Django's cascade does for an administrator's delete (gis.incidents.services.incident_delete)
    UPDATE reports r SET case_id = NULL FROM cases c WHERE r.case_id = c.id AND c.incident_id = target;
    UPDATE reports r SET incident_id = NULL WHERE r.incident_id = target;
    UPDATE cases m SET merged_into_id = NULL FROM cases c WHERE m.merged_into_id = c.id AND c.incident_id = target;
    DELETE FROM case_events e USING cases c WHERE e.case_id = c.id AND c.incident_id = target;
    DELETE FROM case_tasks t USING cases c WHERE t.case_id = c.id AND c.incident_id = target;
    DELETE FROM cases c WHERE c.incident_id = target;
    DELETE FROM incident_status_changes s WHERE s.incident_id = target;
    DELETE FROM incidents i WHERE i.id = target;
    RETURN NULL;
END $$;

REVOKE ALL ON FUNCTION onemap_withdraw_refusal(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION onemap_incident_withdraw(bigint) FROM PUBLIC;
"""

DROP_FUNCTIONS = """
DROP FUNCTION onemap_incident_withdraw(bigint);
DROP FUNCTION onemap_withdraw_refusal(bigint);
"""


class Migration(migrations.Migration):

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('onemap', '0025_people_counts'),
    ]

    operations = [
        migrations.AddField(
            model_name='incident',
            name='reported_by',
            field=models.ForeignKey(blank=True, help_text='the signed-in user who entered it; none for cameras, sensors and residents', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
    ]
