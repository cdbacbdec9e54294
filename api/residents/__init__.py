"""The residents' face at ``/report/``: the report page, tracking by code, and the staff's moderation.

- :mod:`api.residents.views` — the resident's page and its JSON endpoints (report, duplicates, me too,
  tracking, rating, dispute, photos)
- :mod:`api.residents.moderation` — the moderation queue for administrators and commanders
- :mod:`api.residents.access` — one wrapper for every view: methods, the same-origin check on writes,
  staff sign-in, and the one table from domain errors to HTTP statuses
- :mod:`api.residents.limits` — the body limits (read by the ASGI layer before a body is taken)

Every write goes through :mod:`gis.reports.services`; every read through :mod:`gis.reports.selectors`.
See ``docs/reports.md``.
"""
