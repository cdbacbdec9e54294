"""The big screen's URLs under ``/screen/``; the live feed ``/screen/events`` is the ASGI app's."""

from __future__ import annotations

from django.urls import re_path

from api.screen.evidence import evidence_api
from api.screen.views import (
    SMALL_LAYERS,
    TILED,
    cameras_api,
    care_alerts_api,
    case_grids_api,
    features_api,
    grid_labels_api,
    incident_api,
    live_api,
    page,
    scenes_api,
    tile_api,
)

urlpatterns = [
    re_path(r"^$", page, name="screen"),
    re_path(r"^api/scenes$", scenes_api, name="screen-scenes"),
    re_path(r"^api/incidents$", live_api, name="screen-live"),
    re_path(r"^api/incidents/(?P<incident_id>[^/]+)$", incident_api, name="screen-incident"),
    re_path(r"^api/incidents/(?P<incident_id>[^/]+)/evidence/(?P<kind>keyframe|clip)$", evidence_api,
            name="screen-evidence"),
    re_path(r"^api/care-alerts$", care_alerts_api, name="screen-care-alerts"),
    re_path(r"^api/case-grids$", case_grids_api, name="screen-case-grids"),
    re_path(r"^api/cameras$", cameras_api, name="screen-cameras"),
    re_path(r"^api/grid-labels$", grid_labels_api, name="screen-grid-labels"),
    re_path(rf"^api/features/(?P<collection_id>{'|'.join(SMALL_LAYERS)})$", features_api, name="screen-features"),
    re_path(rf"^tiles/(?P<collection_id>{'|'.join(TILED)})/(?P<z>\d+)/(?P<y>\d+)/(?P<x>\d+)$", tile_api,
            name="screen-tile"),
]
