"""URL map: the OGC API at /ogc/, the landing page at /."""

from django.urls import include, path

from api import ogc, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("ogc", ogc.landing_page, name="ogc-landing-bare"),
    path("ogc/", include("api.ogc")),
]
