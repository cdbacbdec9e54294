"""CRS names as WFS clients write them, and GML geometries read from a client's document.

WFS has two habits for EPSG:4326: the URN and URL forms (``urn:ogc:def:crs:EPSG::4326``,
``http://www.opengis.net/def/crs/EPSG/0/4326``) follow the EPSG axis order (latitude
first), while the short form ``EPSG:4326`` is, by the WFS 1.0 convention QGIS and GDAL
keep, longitude first. Both are honoured, in requests and in the GML we write.
"""

from __future__ import annotations

import json
import re

from lxml import etree

from layers import crs as crsmod
from layers.crs import Crs
from layers.errors import InvalidBody, InvalidParameter
from layers.wfs.xml import attribute, local

# the EPSG codes offered, with the axis order of their definition (from the OGC API's list)
_OFFERED = {c.srid: c for c in crsmod.SUPPORTED if c.uri.startswith("http://www.opengis.net/def/crs/EPSG/")}
DEFAULT_SRS = "urn:ogc:def:crs:EPSG::4326"
_URN = re.compile(r"urn:(?:x-)?ogc:def:crs:EPSG:[0-9.]*:([0-9]+)", re.IGNORECASE)
_URL = re.compile(r"https?://www\.opengis\.net/def/crs/EPSG/0/([0-9]+)/?", re.IGNORECASE)
_SHORT = re.compile(r"(?:EPSG:|https?://www\.opengis\.net/gml/srs/epsg\.xml#)([0-9]+)", re.IGNORECASE)
_CRS84 = {"urn:ogc:def:crs:ogc:1.3:crs84", "urn:ogc:def:crs:ogc::crs84", "crs:84", "ogc:crs84", "crs84",
          "http://www.opengis.net/def/crs/ogc/1.3/crs84"}


def offered_srs() -> list[str]:
    """The srsName values the capabilities list: the default first."""
    return [f"urn:ogc:def:crs:EPSG::{srid}" for srid in (4326, *sorted(s for s in _OFFERED if s != 4326))]


def wfs_crs(value: str | None, *, parameter: str = "srsName") -> Crs:
    """The CRS an srsName names, with the axis order that spelling implies; 400 when not offered."""
    if not value:
        return wfs_crs(DEFAULT_SRS)
    text = value.strip()
    if text.lower() in _CRS84:
        return Crs("EPSG:4326", 4326, north_first=False, decimals=7)
    for pattern, north_first in ((_URN, None), (_URL, None), (_SHORT, False)):
        match = pattern.fullmatch(text)
        if match:
            srid = int(match.group(1))
            offered = _OFFERED.get(srid)
            if offered is None:
                break
            if north_first is None:  # the EPSG definition's own order
                return Crs(f"urn:ogc:def:crs:EPSG::{srid}", srid, offered.north_first, offered.decimals)
            return Crs(f"EPSG:{srid}", srid, north_first=False, decimals=offered.decimals)
    raise InvalidParameter(f"{parameter}: {value!r} is not offered; use one of {', '.join(offered_srs())}")


def geometry_from_gml(element, *, default_srs: str | None = None):
    """A GML geometry element (GML 2, 3.1 or 3.2) as a GEOS geometry in EPSG:4326 (longitude first)."""
    from django.contrib.gis.gdal import GDALException, OGRGeometry
    from django.contrib.gis.geos import GEOSException, GEOSGeometry

    srs = _srs_name(element) or default_srs
    crs = wfs_crs(srs, parameter="srsName of the geometry")
    # GML 2 (gml:coordinates) is x/y whatever the srsName says, as WFS 1.0 has it: QGIS 3.22's
    # transactions name urn:ogc:def:crs:EPSG::4326 and still write longitude first there
    east_first = any(local(node) == "coordinates" for node in element.iter() if isinstance(node.tag, str))
    try:
        ogr = OGRGeometry.from_gml(etree.tostring(element, encoding="unicode"))
        if crs.north_first and not east_first:
            document = json.loads(ogr.json)
            document["coordinates"] = crsmod.swap_axes(document.get("coordinates"))
            geometry = GEOSGeometry(json.dumps(document))
        else:
            geometry = GEOSGeometry(ogr.wkb)
        geometry.srid = crs.srid
        if crs.srid != 4326:
            geometry.transform(4326)
    except (GDALException, GEOSException, ValueError, TypeError, KeyError) as exc:
        raise InvalidBody(f"the {local(element)} geometry cannot be read: {str(exc).splitlines()[0]}") from None
    if geometry.empty:
        raise InvalidBody("the geometry is empty")
    return geometry


def _srs_name(element) -> str | None:
    node = element
    while node is not None:
        value = attribute(node, "srsName")
        if value:
            return value
        node = node.getparent()
    for node in element.iter():  # GML 2 may put it on a member geometry only
        value = attribute(node, "srsName") if isinstance(node.tag, str) else None
        if value:
            return value
    return None


