from django.apps import AppConfig


class GisConfig(AppConfig):
    name = "gis"
    label = "onemap"
    verbose_name = "Community One Map spatial domain"
    default_auto_field = "django.db.models.BigAutoField"
