"""Reading a client's XML safely, and the namespaces WFS documents use.

Every document a client sends (a POSTed request, a ``FILTER`` parameter) is parsed here
and nowhere else: no DTD, no entity of any kind (internal ones are how "billion laughs"
grows a small body into gigabytes; external ones read files and URLs), no network, no
huge-tree mode (libxml2 keeps its depth and text-node limits), at most ``MAX_BYTES`` and
``MAX_ELEMENTS``. Elements are matched by local name, so WFS 1.0/1.1 documents (QGIS 3.22
writes its transactions that way) and WFS 2.0 ones read alike.
"""

from __future__ import annotations

import re

from lxml import etree

from layers.errors import InvalidBody, PayloadTooLarge

WFS = "http://www.opengis.net/wfs/2.0"
FES = "http://www.opengis.net/fes/2.0"
GML = "http://www.opengis.net/gml/3.2"
OWS = "http://www.opengis.net/ows/1.1"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
# the feature types' own namespace (the prefix is ``onemap``); a name, not a place to fetch
APP = "http://onemap.community/features"
APP_PREFIX = "onemap"

MAX_BYTES = 2 * 1024 * 1024
MAX_ELEMENTS = 100_000
MAX_FILTER_BYTES = 64 * 1024

# a declaration of a DTD or an entity, in any of the encodings a document may declare
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DECLARATION_UTF16 = [
    word.encode(codec) for codec in ("utf-16-le", "utf-16-be") for word in ("<!DOCTYPE", "<!ENTITY", "<!doctype", "<!entity")
]


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, dtd_validation=False,
        remove_comments=True, remove_pis=True, collect_ids=False,
    )


def parse(data: bytes | str, *, what: str = "the request body", limit: int = MAX_BYTES) -> etree._Element:
    """The root element of a client's XML document; InvalidBody (400) or PayloadTooLarge (413) otherwise."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > limit:
        raise PayloadTooLarge(f"{what} is {len(data):,} bytes; this server reads at most {limit:,}")
    if not data.strip():
        raise InvalidBody(f"{what} is empty; send an XML document")
    if _DECLARATION.search(data) or any(word in data for word in _DECLARATION_UTF16):
        raise InvalidBody(f"{what} declares a DTD or an entity; WFS requests need neither and this server refuses them")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidBody(f"{what} is not well-formed XML: {exc}") from None
    except (ValueError, UnicodeError) as exc:  # e.g. an encoding declaration lxml will not honour
        raise InvalidBody(f"{what} cannot be read as XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise InvalidBody(f"{what} declares a DTD; WFS requests need none and this server refuses them")
    count = 0
    for node in root.iter():
        count += 1
        if count > MAX_ELEMENTS:
            raise PayloadTooLarge(f"{what} has more than {MAX_ELEMENTS:,} elements")
        if isinstance(node, etree._Entity):
            raise InvalidBody(f"{what} refers to an entity (&{node.name};); write the text itself")
    return root


def local(node) -> str:
    """An element's or attribute's name without its namespace."""
    tag = node.tag if hasattr(node, "tag") else node
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def children(node, name: str | None = None) -> list:
    """The child elements of ``node`` (those named ``name``, whatever their namespace)."""
    return [c for c in node if isinstance(c.tag, str) and (name is None or local(c) == name)]


def child(node, name: str):
    found = children(node, name)
    return found[0] if found else None


def attribute(node, name: str) -> str | None:
    """An attribute by local name, with or without a namespace (``typeName``, ``gml:id``)."""
    for key, value in node.attrib.items():
        if local(key) == name:
            return value
    return None


def text(node) -> str:
    return "".join(node.itertext()).strip() if node is not None else ""


def escape(value: str) -> str:
    """``value`` as XML character data or attribute text."""
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
