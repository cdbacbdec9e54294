"""The phone's URLs under ``/m/``; its live feed ``/m/events`` is the ASGI app's (``api.mobile.feed``)."""

from __future__ import annotations

from django.urls import path, re_path

from api.mobile import views

urlpatterns = [
    path("", views.page, name="mobile"),
    path("api/me", views.me, name="mobile-me"),
    path("api/tasks", views.tasks, name="mobile-tasks"),
    path("api/care-alerts", views.care_alerts, name="mobile-care-alerts"),
    path("api/position", views.position, name="mobile-position"),
    path("api/photos", views.photo_upload, name="mobile-photos"),
    re_path(r"^api/photos/(?P<name>[^/]+)$", views.photo_file, name="mobile-photo"),
]
