"""URL map: the OGC API at /ogc/, the landing page at /."""

from django.urls import include, path

from api import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("ogc/", include("api.ogc")),
]
