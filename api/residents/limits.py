"""How large a resident's request may be (no Django here: ``host.asgi`` reads it before a body is taken)."""

from __future__ import annotations

MAX_PHOTOS = 3
PHOTO_BYTES = 8 * 1024 * 1024  # each photo (gis.reports.photos.MAX_BYTES says the same)
SUBMIT_PATH = "/report/api/reports"
# three full-size photos and the form's fields: the one route allowed past the server's general 16 MiB
SUBMIT_BODY_BYTES = MAX_PHOTOS * PHOTO_BYTES + 1024 * 1024
JSON_BODY_BYTES = 64 * 1024  # me too, rating, dispute, moderation
