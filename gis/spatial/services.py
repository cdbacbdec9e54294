"""Writes to the spatial core's features: keyword-only functions, each one transaction."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from gis.services import check_values
from gis.spatial.selectors import grid_for_point


@transaction.atomic
def area_feature_save(*, model, values: dict, geom=None, feature_id: int | None = None):
    """Create or update a parking spot or no-parking zone; its grid follows its geometry."""
    check_values(model, values)
    feature = model() if feature_id is None else model.objects.select_for_update().get(pk=feature_id)
    for name, value in values.items():
        setattr(feature, name, value)
    if geom is not None:
        inside = geom.point_on_surface
        path = grid_for_point(lon=inside.x, lat=inside.y)
        feature.geom = geom
        feature.grid_id = path.level3.id if path else None
    if feature_id is None and not feature.code:
        feature.code = f"{model._meta.db_table.upper()}-{timezone.now():%Y%m%d%H%M%S}-{_suffix()}"
    feature.save()
    return feature


def _suffix() -> str:
    import secrets

    return secrets.token_hex(3)


@transaction.atomic
def area_feature_delete(*, model, feature_id: int) -> None:
    """Remove a parking spot or no-parking zone."""
    model.objects.get(pk=feature_id).delete()
