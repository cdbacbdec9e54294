"""The published layers as a Django app: after every ``migrate`` they publish their own schema.

The views (``ogc_<id>``), the layer versions the tile caches key on and the row-level
security all follow :mod:`layers.catalogue`; they are derived objects, not data, so they
are made afresh once the spatial domain's tables (the ``onemap`` app) are migrated.
``gis`` knows nothing of them.
"""

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class LayersConfig(AppConfig):
    name = "layers"
    verbose_name = "Community One Map published layers"

    def ready(self) -> None:
        post_migrate.connect(publish_layers, sender=apps.get_app_config("onemap"), dispatch_uid="layers.publish")


def publish_layers(sender, using="default", **kwargs) -> None:
    """Views, then layer versions (they follow the views' dependencies), then row-level security."""
    from layers.access import sync_row_security
    from layers.tiles import sync_layer_versions
    from layers.views import sync_views

    sync_views(using=using)
    sync_layer_versions(using=using)
    sync_row_security(using=using)
