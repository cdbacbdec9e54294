"""Residents' reports: the problems residents report themselves, and what becomes of them.

- :mod:`gis.reports.models` — ``Report`` (what a resident gave; the case it opened or joined),
  the moderators' steps, the ban list
- :mod:`gis.reports.services` — submit, "me too", rate, dispute, moderate, ban
- :mod:`gis.reports.selectors` — likely duplicates, the tracking view, the moderation queue
- :mod:`gis.reports.photos` — photos checked by content and re-encoded without metadata
- :mod:`gis.reports.personal` — the phone number encrypted at rest, keyed digests for limits
"""
