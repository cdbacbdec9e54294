"""The residents' URLs under ``/report/`` (``docs/reports.md``)."""

from __future__ import annotations

from django.urls import re_path

from api.residents import moderation, views
from api.residents.views import TRACKING_CODE

urlpatterns = [
    re_path(r"^$", views.report_page, name="report"),
    re_path(r"^api/reports$", views.submit, name="report-submit"),
    re_path(r"^api/duplicates$", views.duplicates, name="report-duplicates"),
    re_path(r"^api/me-too$", views.me_too, name="report-me-too"),
    re_path(rf"^t/(?P<code>{TRACKING_CODE})$", views.tracking_page, name="report-track"),
    re_path(rf"^api/t/(?P<code>{TRACKING_CODE})$", views.progress, name="report-progress"),
    re_path(rf"^api/t/(?P<code>{TRACKING_CODE})/rate$", views.rate, name="report-rate"),
    re_path(rf"^api/t/(?P<code>{TRACKING_CODE})/dispute$", views.dispute, name="report-dispute"),
    re_path(r"^photos/(?P<report_id>[0-9]{1,18})/(?P<name>[0-9]{1,2}\.jpg)$", views.photo, name="report-photo"),
    re_path(r"^moderation$", moderation.moderation_page, name="report-moderation"),
    re_path(r"^api/moderation$", moderation.queue, name="report-moderation-queue"),
    re_path(rf"^api/moderation/(?P<code>{TRACKING_CODE})/(?P<action>[a-z_]{{1,20}})$", moderation.act,
            name="report-moderate"),
]
