from django.apps import AppConfig


class GisConfig(AppConfig):
    name = "gis"
    label = "onemap"
    verbose_name = "Community One Map spatial domain"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # the outbox names residents by reference (report:<id>); their number is read only to send
        from gis.notifications import recipients
        from gis.reports.services import phone_of

        recipients.register("report", phone_of)
