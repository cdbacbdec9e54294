"""URL map: the OGC API at /ogc/, the big screen at /screen/, the phone at /m/, residents at /report/,
Open311 at /open311/v2/, WFS 2.0 at /wfs, the landing page at /.

The live feeds ``/screen/events`` and ``/m/events`` are answered by the ASGI app (``host.asgi``) before Django.
"""

from django.urls import include, path

from api import ogc, views, wfs
from api.mobile import views as mobile_views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", views.healthz, name="healthz"),
    path("openapi.json", views.openapi_json, name="openapi"),
    path("ogc", ogc.landing_page, name="ogc-landing-bare"),
    path("ogc/", include("api.ogc")),
    path("wfs", wfs.service, name="wfs"),
    path("wfs/", wfs.service, name="wfs-slash"),
    path("screen/density/", include("api.screen.density")),
    path("screen/", include("api.screen.urls")),
    path("api/cases/", include("api.cases")),
    path("api/care/", include("api.care")),
    path("api/sensors/", include("api.sensors")),
    path("m", mobile_views.page, name="mobile-bare"),
    path("m/", include("api.mobile.urls")),
    path("report/", include("api.residents.urls")),
    path("open311/v2/", include("api.open311")),
]
