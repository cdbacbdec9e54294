"""Debian's QGIS 3.22 as a client of the live server, run by tests/test_qgis_client.py with /usr/bin/python3.

Not a test module (the venv cannot import qgis). Reads one JSON job on stdin, prints one JSON
answer: ``load`` counts every feature of each layer through OAPIF and WFS; ``edit`` adds,
changes and (unless told not to) deletes an incident through WFS-T, and ``delete`` deletes the
incidents of the given titles, each reporting what each commit answered.
"""

import json
import os
import sys

from qgis.core import QgsApplication, QgsFeature, QgsFeatureRequest, QgsGeometry, QgsPointXY, QgsVectorLayer


def _uri(job, provider, layer_id):
    auth = f" username='{job['username']}' password='{job['password']}'" if job.get("username") else ""
    if provider == "WFS":
        return (f"url='{job['base']}/wfs' typename='onemap:{layer_id}' version='2.0.0' "
                f"pagingEnabled='true' restrictToRequestBBOX='0'{auth}")
    return f"url='{job['base']}/ogc' typename='{layer_id}'{auth}"


# QGIS 3.22's WFS provider may still have a download thread when a layer is destroyed, which can crash
# the process: every layer is kept until the answer is printed, and the process then ends without teardown.
_KEEP = []


def _layer(job, provider, layer_id):
    _KEEP.append(_make_layer(job, provider, layer_id))
    return _KEEP[-1]


def _make_layer(job, provider, layer_id):
    return QgsVectorLayer(_uri(job, provider, layer_id), f"{provider}-{layer_id}", "WFS" if provider == "WFS" else "OAPIF")


def load(job):
    counts = {}
    for provider in ("OAPIF", "WFS"):
        for layer_id in job["layers"]:
            print(f"loading {provider} {layer_id}", file=sys.stderr, flush=True)
            layer = _layer(job, provider, layer_id)
            counts[f"{provider}:{layer_id}"] = (
                sum(1 for _ in layer.getFeatures()) if layer.isValid() else f"invalid: {layer.error().summary()}"
            )
    return counts


def _find(job, title):
    layer = _layer(job, "WFS", "incidents")
    request = QgsFeatureRequest().setFilterExpression(f"\"title\" = '{title}'")
    return layer, [f for f in layer.getFeatures(request)]


def edit(job):
    out = {}
    layer = _layer(job, "WFS", "incidents")
    out["valid"] = layer.isValid()
    out["capabilities"] = layer.dataProvider().capabilitiesString()
    for name, (lon, lat) in (("inside", job["inside"]), ("outside", job["outside"])):
        layer = _layer(job, "WFS", "incidents")
        layer.startEditing()
        feature = QgsFeature(layer.fields())
        feature.setAttribute("category", job["category"])
        feature.setAttribute("title", job["title"] + name)
        feature.setAttribute("severity", 2)
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(lon, lat)))
        layer.addFeature(feature)
        out[f"add_{name}"] = layer.commitChanges()
        out[f"add_{name}_errors"] = layer.commitErrors()
    layer, found = _find(job, job["title"] + "inside")
    out["found"] = len(found)
    if found:
        layer.startEditing()
        layer.changeAttributeValue(found[0].id(), layer.fields().indexOf("notes"), "changed in QGIS")
        layer.changeAttributeValue(found[0].id(), layer.fields().indexOf("severity"), 4)
        out["change"] = layer.commitChanges()
    if found and job.get("delete", True):
        layer, found = _find(job, job["title"] + "inside")
        out["id"] = found[0]["code"] if found else None
        layer.startEditing()
        layer.deleteFeature(found[0].id())
        out["delete"] = layer.commitChanges()
        out["delete_errors"] = layer.commitErrors()
    return out


def delete(job):
    out = {}
    for title in job["titles"]:
        layer, found = _find(job, title)
        out[title] = {"found": len(found)}
        if found:
            layer.startEditing()
            layer.deleteFeature(found[0].id())
            out[title].update(deleted=layer.commitChanges(), errors=layer.commitErrors())
    return out


def main():
    job = json.loads(sys.stdin.read())
    app = QgsApplication([], False)
    app.initQgis()
    print(json.dumps({"load": load, "edit": edit, "delete": delete}[job["action"]](job)), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
