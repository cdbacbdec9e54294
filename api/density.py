"""Incident density downloads at /screen/density/ (being built)."""

urlpatterns: list = []
