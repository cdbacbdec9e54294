"""WFS-T: a Transaction document's Insert, Update and Delete, run through the OGC API's writers.

Every action goes through :mod:`layers.editing` (the ``gis`` services under the caller's
database role and grid, so a new incident opens its case, the grid fence and row-level
security apply, and a row the caller may not read is a 404). All actions of one document
share one database transaction: one refusal and nothing of it is kept. WFS 1.0 and 1.1
documents (QGIS 3.22 writes those) are read as well as 2.0 ones; the answer is written
in the version the document named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from layers.catalogue import Layer
from layers.errors import Forbidden, InvalidBody, InvalidParameter, NotAuthenticated
from layers.wfs.filters import resource_ids
from layers.wfs.gml import geometry_from_gml
from layers.wfs.reading import GEOMETRY
from layers.wfs.xml import FES, WFS, attribute, child, children, local, text

MAX_ACTIONS = 1000
_WFS1 = "http://www.opengis.net/wfs"
_OGC = "http://www.opengis.net/ogc"
_GEOMETRY_NAMES = {GEOMETRY, "geom", "the_geom"}


@dataclass
class Outcome:
    version: str
    inserted: list[str] = field(default_factory=list)  # resource ids, in document order
    updated: int = 0
    deleted: int = 0


def run_transaction(root, identity, *, layer_for) -> Outcome:
    """Apply a parsed ``Transaction`` element for ``identity``; ``layer_for(identity, type_name)`` finds its layers."""
    from django.db import transaction

    version = attribute(root, "version") or "2.0.0"
    actions = children(root)
    if not actions:
        raise InvalidBody("the Transaction holds no Insert, Update or Delete")
    if len(actions) > MAX_ACTIONS:
        raise InvalidBody(f"a Transaction holds at most {MAX_ACTIONS} actions; send several")
    plan = [_action(element, identity, layer_for) for element in actions]  # read everything before writing
    outcome = Outcome(version=version)
    with transaction.atomic():
        for step in plan:
            step(outcome)
    return outcome


def _action(element, identity, layer_for):
    name = local(element)
    if name == "Insert":
        features = [_feature(f, identity, layer_for) for f in children(element)]
        if not features:
            raise InvalidBody("an Insert holds at least one feature")
        return lambda outcome: _insert(features, identity, outcome)
    if name in ("Update", "Delete"):
        layer = layer_for(identity, attribute(element, "typeName") or attribute(element, "typeNames") or "")
        _allowed(layer, identity, name)
        found = child(element, "Filter")
        if found is None or not children(found) or not all(
                local(c) in ("ResourceId", "FeatureId", "GmlObjectId") for c in children(found)):
            raise InvalidParameter(f"{name}: name the features with a Filter of resource ids (fes:ResourceId)")
        ids = resource_ids(children(found), layer=layer, strict=True)
        if name == "Delete":
            return lambda outcome: _delete(layer, identity, ids, outcome)
        properties, geometry = _update_values(element, layer, identity)
        return lambda outcome: _update(layer, identity, ids, properties, geometry, outcome)
    raise InvalidParameter(f"the Transaction action {name!r} is not supported; use Insert, Update or Delete")


@dataclass(frozen=True)
class _Feature:
    layer: Layer
    properties: dict
    geometry: object


def _feature(element, identity, layer_for) -> _Feature:
    layer = layer_for(identity, local(element))
    _allowed(layer, identity, "Insert")
    properties, geometry = {}, None
    for node in children(element):
        name = local(node)
        members = children(node)
        if name in _GEOMETRY_NAMES or (members and "gml" in (members[0].tag or "")):
            if members:
                geometry = geometry_from_gml(members[0])
            continue
        value = _typed(layer, name, node)
        if value is not None:  # an empty or nil value leaves the property to its default
            properties[name] = value
    return _Feature(layer, properties, geometry)


def _update_values(element, layer: Layer, identity) -> tuple[dict, object]:
    properties, geometry = {}, None
    for prop in children(element, "Property"):
        reference = child(prop, "ValueReference")
        if reference is None:
            reference = child(prop, "Name")
        if reference is None:
            raise InvalidBody("an Update Property names its property with ValueReference (or Name)")
        name = text(reference).rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        value = child(prop, "Value")
        if name in _GEOMETRY_NAMES:
            members = children(value) if value is not None else []
            if not members:
                raise InvalidBody("the geometry cannot be removed; send a new one")
            geometry = geometry_from_gml(members[0])
            continue
        properties[name] = _typed(layer, name, value) if value is not None else None
    if not properties and geometry is None:
        raise InvalidBody("an Update changes at least one Property")
    return properties, geometry


def _typed(layer: Layer, name: str, node):
    """A property's text as the JSON value the OGC API's checks expect (None for nil or empty non-text)."""
    if node is None or attribute(node, "nil") in ("true", "1"):
        return None
    value = text(node)
    try:
        column = layer.column(name)
    except KeyError:
        return value  # the checks name the unknown property
    if column.type == "string":
        return value
    if value == "":
        return None
    try:
        if column.type == "integer":
            return int(value)
        if column.type == "number":
            return float(value)
        if column.type == "boolean":
            return {"true": True, "false": False, "1": True, "0": False}[value.lower()]
    except (ValueError, KeyError):
        raise InvalidBody(f"{name}: {value!r} is not a valid {column.type}") from None
    return value


def _allowed(layer: Layer, identity, action: str) -> None:
    from layers.wfs.reading import editable_actions

    if action in editable_actions(layer, identity.role):
        return
    if identity.is_anonymous:
        raise NotAuthenticated(f"{action} on {layer.id} needs a signed-in user: send your username and a personal "
                               "access token with HTTP Basic")
    raise Forbidden(f"your role ({identity.role}) may not {action.lower()} features of {layer.id}")


def _insert(features: list[_Feature], identity, outcome: Outcome) -> None:
    from layers.editing import feature_body, feature_create

    for feature in features:
        body = feature_body(feature.layer, role=identity.role, mode="create", properties=feature.properties,
                            geometry=feature.geometry)
        outcome.inserted.append(f"{feature.layer.id}.{feature_create(feature.layer, identity, body)}")


def _update(layer: Layer, identity, ids, properties: dict, geometry, outcome: Outcome) -> None:
    from layers.editing import feature_body, feature_change

    body = feature_body(layer, role=identity.role, mode="update", properties=properties, geometry=geometry)
    for pk in ids:
        feature_change(layer, identity, str(pk), body)
        outcome.updated += 1


def _delete(layer: Layer, identity, ids, outcome: Outcome) -> None:
    from layers.editing import feature_delete

    for pk in ids:
        feature_delete(layer, identity, str(pk))
        outcome.deleted += 1


# ---------------------------------------------------------------- the answer


def response_document(outcome: Outcome) -> bytes:
    """The TransactionResponse in the version the request named (WFS 1.0.0, 1.1.0 or 2.0)."""
    if outcome.version.startswith("1.0"):
        inserted = "".join(f'<ogc:FeatureId fid="{rid}"/>' for rid in outcome.inserted)
        body = (
            f'<wfs:WFS_TransactionResponse version="1.0.0" xmlns:wfs="{_WFS1}" xmlns:ogc="{_OGC}">'
            + (f"<wfs:InsertResult>{inserted}</wfs:InsertResult>" if inserted else "")
            + "<wfs:TransactionResult><wfs:Status><wfs:SUCCESS/></wfs:Status></wfs:TransactionResult>"
            "</wfs:WFS_TransactionResponse>"
        )
    elif outcome.version.startswith("1.1"):
        inserted = "".join(f'<wfs:Feature><ogc:FeatureId fid="{rid}"/></wfs:Feature>' for rid in outcome.inserted)
        body = (
            f'<wfs:TransactionResponse version="1.1.0" xmlns:wfs="{_WFS1}" xmlns:ogc="{_OGC}">'
            f"<wfs:TransactionSummary><wfs:totalInserted>{len(outcome.inserted)}</wfs:totalInserted>"
            f"<wfs:totalUpdated>{outcome.updated}</wfs:totalUpdated><wfs:totalDeleted>{outcome.deleted}"
            "</wfs:totalDeleted></wfs:TransactionSummary>"
            + (f"<wfs:InsertResults>{inserted}</wfs:InsertResults>" if inserted else "")
            + "</wfs:TransactionResponse>"
        )
    else:
        inserted = "".join(f'<wfs:Feature><fes:ResourceId rid="{rid}"/></wfs:Feature>' for rid in outcome.inserted)
        body = (
            f'<wfs:TransactionResponse version="2.0.0" xmlns:wfs="{WFS}" xmlns:fes="{FES}">'
            f"<wfs:TransactionSummary><wfs:totalInserted>{len(outcome.inserted)}</wfs:totalInserted>"
            f"<wfs:totalUpdated>{outcome.updated}</wfs:totalUpdated><wfs:totalReplaced>0</wfs:totalReplaced>"
            f"<wfs:totalDeleted>{outcome.deleted}</wfs:totalDeleted></wfs:TransactionSummary>"
            + (f"<wfs:InsertResults>{inserted}</wfs:InsertResults>" if inserted else "")
            + "</wfs:TransactionResponse>"
        )
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode("utf-8")
