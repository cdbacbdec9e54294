"""WFS XML attacks: external entities, billion laughs, huge and deep documents, bad filters and geometries.

Each is refused with a 4xx OWS ExceptionReport, never a 5xx, no file or URL is read, and the database is unchanged.
"""

from __future__ import annotations

import pytest
import requests
from lxml import etree

from gis import models as m

OWS = "http://www.opengis.net/ows/1.1"
WFS = "http://www.opengis.net/wfs/2.0"
APP = "http://onemap.community/features"

_XXE = ('<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f'<wfs:Transaction xmlns:wfs="{WFS}" service="WFS" version="2.0.0"><wfs:Insert><onemap:incidents '
        f'xmlns:onemap="{APP}"><onemap:title>&x;</onemap:title></onemap:incidents></wfs:Insert></wfs:Transaction>')
_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
           + f']><wfs:GetFeature xmlns:wfs="{WFS}">&lol9;</wfs:GetFeature>')
_UTF16_DTD = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY b SYSTEM "http://127.0.0.1:1/">]><a>&b;</a>'
_PARAMETER_ENTITY = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1:1/evil.dtd"> %p;]>'
                     f'<wfs:GetCapabilities xmlns:wfs="{WFS}"/>')
_DEEP = "<a>" * 5000 + "</a>" * 5000
_WIDE = f'<wfs:GetFeature xmlns:wfs="{WFS}">' + "<b/>" * 150_000 + "</wfs:GetFeature>"
_HUGE = b"<a>" + b"x" * (3 * 1024 * 1024) + b"</a>"


def _exception(response) -> str:
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{OWS}}}ExceptionReport", response.text[:300]
    return root.find(f"{{{OWS}}}Exception").get("exceptionCode")


@pytest.mark.parametrize("body", [
    _XXE.encode(), _LAUGHS.encode(), _UTF16_DTD.encode("utf-16"), _PARAMETER_ENTITY.encode(), _DEEP.encode(),
    _WIDE.encode(), _HUGE, b"", b"\x00\x01\x02", b"<not closed", "<a>\ud800</a>".encode("utf-8", "surrogatepass"),
    b'<?xml version="1.0" encoding="bogus"?><a/>', b"<a>&undefined;</a>",
])
def test_hostile_documents_are_a_4xx_report(live_server, accounts, body):
    count = m.Incident.objects.count()
    response = requests.post(f"{live_server}/wfs", data=body, auth=accounts["worker"].auth, timeout=60,
                             headers={"Content-Type": "text/xml"})
    assert 400 <= response.status_code < 500, response.text[:300]
    _exception(response)
    assert "root:" not in response.text  # /etc/passwd was not read
    assert m.Incident.objects.count() == count


@pytest.mark.parametrize("fes", [
    _XXE, "<Filter><Foo/></Filter>", "<Filter><PropertyIsEqualTo><ValueReference>code</ValueReference></PropertyIsEqualTo></Filter>",
    "<Filter><PropertyIsEqualTo><ValueReference>level</ValueReference><Literal>x</Literal></PropertyIsEqualTo></Filter>",
    "<Filter>" + "<Not>" * 200 + "<PropertyIsNull><ValueReference>code</ValueReference></PropertyIsNull>" + "</Not>" * 200 + "</Filter>",
    "<Filter><BBOX><Envelope srsName='EPSG:4326'><lowerCorner>a b</lowerCorner><upperCorner>1 2</upperCorner></Envelope></BBOX></Filter>",
    "<Filter><Intersects><ValueReference>geometry</ValueReference><Point><pos>1e400 1</pos></Point></Intersects></Filter>",
    "<Filter><Intersects><ValueReference>geometry</ValueReference><Blob/></Intersects></Filter>",
    "<Filter><PropertyIsLike wildCard='*' singleChar='.' escapeChar='!'><ValueReference>level</ValueReference>"
    "<Literal>1*</Literal></PropertyIsLike></Filter>",
    "x" * 30_000,
])
def test_bad_filters_are_a_4xx_report(live_server, fes):
    response = requests.get(f"{live_server}/wfs", params={"SERVICE": "WFS", "REQUEST": "GetFeature",
                                                          "TYPENAMES": "onemap:grids", "FILTER": fes}, timeout=60)
    assert 400 <= response.status_code < 500, response.text[:300]
    _exception(response)


@pytest.mark.parametrize("geometry", [
    "<gml:Point srsName='EPSG:4326'><gml:pos>1e400 34</gml:pos></gml:Point>",
    "<gml:Point srsName='EPSG:4326'><gml:pos>500 34</gml:pos></gml:Point>",
    "<gml:Point srsName='EPSG:9999'><gml:pos>113 34</gml:pos></gml:Point>",
    "<gml:LineString srsName='EPSG:4326'><gml:posList>113 34 114 35</gml:posList></gml:LineString>",
    "<gml:Point><gml:pos>not numbers</gml:pos></gml:Point>",
])
def test_bad_geometries_in_a_transaction_change_nothing(live_server, accounts, geometry):
    count = m.Incident.objects.count()
    body = (f'<wfs:Transaction xmlns:wfs="{WFS}" xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:onemap="{APP}" '
            'service="WFS" version="2.0.0"><wfs:Insert><onemap:incidents><onemap:geometry>'
            f"{geometry}</onemap:geometry><onemap:category>fire_hazard</onemap:category></onemap:incidents>"
            "</wfs:Insert></wfs:Transaction>")
    response = requests.post(f"{live_server}/wfs", data=body.encode(), auth=accounts["worker"].auth, timeout=60)
    assert 400 <= response.status_code < 500, response.text[:300]
    _exception(response)
    assert m.Incident.objects.count() == count
