"""Services: writes that apply the domain rules (an incident gets its grid by location)."""

from __future__ import annotations

import pytest

from gis import models as m
from gis.incidents.services import incident_create
from gis.services import ServiceError


def test_incident_gets_its_level3_grid(rollback):
    grid = m.Grid.objects.filter(level=3).order_by("code").last()
    point = grid.geom.point_on_surface
    incident = incident_create(lon=point.x, lat=point.y, category="sanitation", source="staff", code="INC-SVC-1")
    assert incident.grid_id == grid.id


def test_incident_outside_every_grid_has_no_grid(rollback):
    incident = incident_create(lon=113.0, lat=34.0, category="sanitation", source="staff", code="INC-SVC-2")
    assert incident.grid_id is None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"category": "ufo"}, "category must be one of"),
        ({"source": "rumour"}, "source must be one of"),
        ({"severity": 0}, "severity must be 1"),
        ({"lon": 200.0}, "not a lon/lat"),
    ],
)
def test_bad_incidents_are_refused(rollback, change, message):
    values = dict(lon=113.66, lat=34.757, category="sanitation", source="staff", code="INC-SVC-3")
    values.update(change)
    before = m.Incident.objects.count()
    with pytest.raises(ServiceError, match=message):
        incident_create(**values)
    assert m.Incident.objects.count() == before
