"""Open311 GeoReport v2 over residents' reports: the keys apps post with, the services offered, the requests.

- :mod:`gis.open311.models` — ``Open311Key`` (only the SHA-256 digest of a key is kept) and
  ``Open311Request`` (what an Open311 POST added to its report: key, attribute answers, media_url)
- :mod:`gis.open311.catalogue` — the services: the residents' categories with their time limits
  and the questions (attributes) each asks
- :mod:`gis.open311.services` — keys issued, checked and revoked; a request submitted through
  :func:`gis.reports.services.report_submit`, the only way a report is written
- :mod:`gis.open311.selectors` — requests as the public may see them (``docs/open311.md``)
"""
