from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GisConfig(AppConfig):
    name = "gis"
    label = "onemap"
    verbose_name = "Community One Map spatial domain"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_sync_layer_views, sender=self)


def _sync_layer_views(sender, using="default", **kwargs) -> None:
    """Published-layer views follow the catalogue after every migrate (they are not data)."""
    from layers.access import sync_row_security
    from layers.tiles import sync_layer_versions
    from layers.views import sync_views

    sync_views(using=using)
    sync_layer_versions(using=using)  # after the views: it follows their dependencies
    sync_row_security(using=using)
