"""WSGI entry point: ``host.wsgi:application`` (``onemap serve`` runs it under granian).

Each server worker imports this module once: it builds the OGC API and opens the
connection pool now, so the first request does not pay for it.
"""

import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")
from api.fastpath import FastFeatures  # noqa: E402

application = FastFeatures(get_wsgi_application())


def _warm_up() -> None:
    from api.ogc import warm_up

    try:
        warm_up()
    except Exception as exc:  # the database may be down at start; the first request tries again
        logging.getLogger(__name__).warning("warm-up failed (%s); the first request will retry", exc)


_warm_up()
