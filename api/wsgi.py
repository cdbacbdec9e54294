"""WSGI entry point: ``gunicorn api.wsgi:application`` (``onemap serve`` runs it)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.settings")
from api.fastpath import FastFeatures  # noqa: E402

application = FastFeatures(get_wsgi_application())
