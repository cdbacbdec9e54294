/* Leaflet.VectorGrid 1.3.0 on Leaflet 1.9: two things VectorGrid's canvas tiles rely on are gone.
 *
 * - L.DomEvent.fakeStop (removed in Leaflet 1.8), called on every click on a feature:
 *   given back with its Leaflet 1.7 meaning.
 * - Leaflet 1.8+ asks a clicked layer for getLatLng(), which VectorGrid's point
 *   symbolizers answer with nothing: they are given the mouse position, as a marker has.
 *
 * Loaded right after VectorGrid (api/screen/views.py); tests/test_screen_browser.py shows both
 * failures without it and clicks working with it. The page draws VectorGrid on canvas.
 */
if (window.L && L.Canvas && L.Canvas.Tile) {
  if (!L.DomEvent.fakeStop) {
    L.DomEvent.fakeStop = function (e) { e._stopped = true; return this; };
  }
  L.Canvas.Tile.include({
    _fireEvent: function (layers, e, type) {
      var latlng = this._map.mouseEventToLatLng(e);
      for (var i = 0; i < layers.length; i++) {
        if (layers[i].getLatLng) { layers[i]._latlng = latlng; }
      }
      L.Canvas.prototype._fireEvent.call(this, layers, e, type);
    }
  });
}
