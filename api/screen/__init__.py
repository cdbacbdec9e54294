"""The command-centre big screen at ``/screen/``: who may ask, the page, its JSON APIs, evidence, charts.

- :mod:`api.screen.access` — every URL needs an administrator or a commander
  (``core.roles.SCREEN_ROLES``); refusals as JSON, or as a page for the page itself
- :mod:`api.screen.views` — the folium page (cached per grid and base layer) and the JSON APIs
- :mod:`api.screen.selectors` — the figures: one SQL statement per scene panel or map layer
- :mod:`api.screen.charts` — the panels' SVG charts
- :mod:`api.screen.evidence` — keyframes and clips, inside the evidence folder only
- :mod:`api.screen.density` — the daily incident density (``/screen/density/``), also for analysts
- :mod:`api.screen.labels` and ``templates/`` — what the page calls things, and its HTML

Every asset is served by us: our own files under ``/static/screen/``, Leaflet and the
font under ``/vendor/``. Nothing the screen receives carries a person's data: elder care
is counts and highlighted buildings. See ``docs/screen.md``.
"""
