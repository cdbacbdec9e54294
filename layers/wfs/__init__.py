"""WFS 2.0 with transactions over the layer catalogue: the same layers, rows and writers as the OGC API.

``xml`` reads a client's XML safely; ``gml`` names CRSs and reads geometries; ``filters``
turns FES filters into the CQL2 tree; ``requests`` reads GetFeature requests (KVP and XML);
``reading`` writes capabilities, schemas and feature collections; ``transactions`` runs WFS-T.
The HTTP face is ``api/wfs.py``; see ``docs/wfs.md``.
"""
