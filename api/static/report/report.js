/* The resident's page: pick a place (tap, GPS or pasted coordinates), see likely duplicates, report or say "me too". */
(function () {
  'use strict';
  var C = window.onemapCommon, cfg = C.cfg, el = C.el;
  var DEVICE_KEY = 'onemap.report.device', MINE_KEY = 'onemap.report.mine';
  var state = { point: null, marker: null, duplicates: [], submitted: null, ready: false, busy: false };
  window.onemapReport = state;

  function storage(key, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(key);
      window.localStorage.setItem(key, value);
    } catch (e) { /* private browsing: kept for this page only */ }
    return value;
  }

  // one random id per browser, so the server can count one phone's reports without knowing who it is
  function deviceId() {
    var id = storage(DEVICE_KEY);
    if (!id) {
      var bytes = new Uint8Array(16);
      window.crypto.getRandomValues(bytes);
      id = Array.prototype.map.call(bytes, function (b) { return (b < 16 ? '0' : '') + b.toString(16); }).join('');
      storage(DEVICE_KEY, id);
    }
    return id;
  }

  var map;
  function buildMap() {
    map = L.map('om-map', { attributionControl: false, zoomControl: true, maxZoom: 20, minZoom: 12 });
    var area = cfg.area;
    if (L.vectorGrid) {
      ['grids', 'buildings'].forEach(function (name) {
        var styles = {};
        styles[name] = name === 'grids'
          ? function (p) { return { color: '#7a93ad', weight: p.level === 3 ? 1 : 2, dashArray: '4 4', fill: false }; }
          : { color: '#8597a8', weight: 0.6, fill: true, fillColor: '#c9d3dd', fillOpacity: 0.8 };
        var zooms = cfg.tileZooms[name];
        L.vectorGrid.protobuf(cfg.urls.tiles.replace('{layer}', name), {
          rendererFactory: L.canvas.tile, vectorTileLayerStyles: styles, interactive: false,
          minZoom: zooms[0], maxNativeZoom: zooms[1], maxZoom: 20
        }).addTo(map);
      });
    }
    if (area.outline) {
      L.geoJSON(area.outline, { style: { color: '#0a6cc2', weight: 3, fill: false }, interactive: false }).addTo(map);
      var b = area.bounds;
      map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [8, 8], animate: false });
    } else {
      map.setView([34.75, 113.66], 15);
    }
    map.on('click', function (e) { choose(e.latlng.lng, e.latlng.lat, 'wgs84'); });
    state.map = map;
  }

  // a place as the resident gave it; the server converts GCJ-02 and answers with the WGS84 point
  function choose(lon, lat, crs) {
    state.point = { lon: lon, lat: lat, crs: crs, wgs84: crs === 'wgs84' ? [lon, lat] : null };
    if (crs === 'wgs84') placeMarker(lon, lat);
    describePlace();
    refreshDuplicates();
  }

  function placeMarker(lon, lat) {
    if (!map) return;
    if (state.marker) state.marker.setLatLng([lat, lon]);
    else state.marker = L.circleMarker([lat, lon], { radius: 9, color: '#fff', weight: 3, fillColor: '#e8590c',
                                                     fillOpacity: 1 }).addTo(map);
  }

  function describePlace() {
    var p = state.point, where = document.getElementById('om-where');
    if (!p) { where.textContent = '尚未选择位置 No place chosen yet'; return; }
    var text = '已选位置 ' + p.lon.toFixed(6) + ', ' + p.lat.toFixed(6) + (p.crs === 'gcj02' ? '（GCJ-02）' : '（WGS84）');
    if (p.crs === 'gcj02' && p.wgs84) text += ' → WGS84 ' + p.wgs84[0].toFixed(6) + ', ' + p.wgs84[1].toFixed(6);
    where.textContent = text;
  }

  function refreshDuplicates() {
    var p = state.point;
    if (!p) return;
    var category = document.getElementById('om-category').value;
    var query = new URLSearchParams({ lon: String(p.lon), lat: String(p.lat), crs: p.crs });
    if (category) query.set('category', category);
    var asked = p;
    C.call(cfg.urls.duplicates + '?' + query.toString()).then(function (data) {
      if (state.point !== asked) return;  // the resident moved the pin meanwhile
      p.wgs84 = data.point;
      if (p.crs !== 'wgs84') { placeMarker(data.point[0], data.point[1]); describePlace(); }
      showDuplicates(data.duplicates);
    }).catch(function (error) { C.showError(error.message); });
  }

  function showDuplicates(found) {
    state.duplicates = found;
    var box = document.getElementById('om-dupes'), list = document.getElementById('om-dupe-list');
    list.textContent = '';
    found.forEach(function (d) {
      var photos = el('div', {}, d.photos.map(function (url) { return el('img', { src: url, alt: '现场照片 photo' }); }));
      var button = el('button', { type: 'button', 'class': 'om-me-too' }, ['我也遇到了（附议）Me too']);
      button.addEventListener('click', function () { meToo(d.case, button); });
      list.appendChild(el('li', { 'class': 'om-dupe', 'data-case': d.case }, [
        el('strong', {}, [d.category_zh + ' · ' + d.state]),
        el('div', { 'class': 'om-meta' }, ['约 ' + Math.round(d.metres) + ' 米 · ' + C.when(d.reported_at) + ' · ' +
                                          d.reporters + ' 位居民上报']),
        d.description ? el('p', { 'class': 'om-dupe-text' }, [d.description]) : null,
        photos, button
      ]));
    });
    box.hidden = found.length === 0;
    state.ready = true;
  }

  function meToo(caseCode, button) {
    C.showError('');
    button.disabled = true;
    C.call(cfg.urls.meToo, { method: 'POST', json: {
      case: caseCode, device: deviceId(), phone: document.getElementById('om-phone').value.trim(),
      description: document.getElementById('om-description').value
    } }).then(done).catch(function (error) { button.disabled = false; C.showError(error.message); });
  }

  function checkPhotos() {
    var files = document.getElementById('om-photos').files, note = document.getElementById('om-photo-note');
    if (files.length > cfg.limits.photos) return '最多 ' + cfg.limits.photos + ' 张照片 At most ' + cfg.limits.photos + ' photos';
    for (var i = 0; i < files.length; i++) {
      if (files[i].size > cfg.limits.photoBytes) {
        return '照片 ' + (i + 1) + ' 超过 ' + cfg.limits.photoBytes / 1048576 + ' MB，请换一张或压缩后再传';
      }
    }
    note.textContent = files.length ? '已选 ' + files.length + ' 张照片（上传时会去除拍摄位置等信息）' : '';
    return '';
  }

  function submit(event) {
    event.preventDefault();
    if (state.busy) return;
    C.showError('');
    var category = document.getElementById('om-category').value;
    var problem = !state.point ? '请先在地图上选择位置 Choose the place first'
      : !category ? '请选择问题类别 Choose a category' : checkPhotos();
    if (problem) { C.showError(problem); return; }
    var form = new FormData();
    form.append('category', category);
    form.append('description', document.getElementById('om-description').value);
    form.append('lon', String(state.point.lon));
    form.append('lat', String(state.point.lat));
    form.append('crs', state.point.crs);
    form.append('device', deviceId());
    form.append('phone', document.getElementById('om-phone').value.trim());
    var files = document.getElementById('om-photos').files;
    for (var i = 0; i < files.length; i++) form.append('photo', files[i], files[i].name);
    state.busy = true;
    document.getElementById('om-submit').disabled = true;
    C.call(cfg.urls.submit, { method: 'POST', body: form }).then(done).catch(function (error) {
      C.showError(error.message);
    }).then(function () { state.busy = false; document.getElementById('om-submit').disabled = false; });
  }

  function done(receipt) {
    state.submitted = receipt;
    var mine = [];
    try { mine = JSON.parse(storage(MINE_KEY) || '[]'); } catch (e) { mine = []; }
    mine.unshift({ code: receipt.code, at: new Date().toISOString() });
    storage(MINE_KEY, JSON.stringify(mine.slice(0, 20)));
    document.getElementById('om-form').hidden = true;
    document.getElementById('om-done').hidden = false;
    document.getElementById('om-code').textContent = receipt.code;
    document.getElementById('om-track-link').setAttribute('href', receipt.tracking);
    window.scrollTo(0, 0);
  }

  function showMine() {
    var mine = [];
    try { mine = JSON.parse(storage(MINE_KEY) || '[]'); } catch (e) { mine = []; }
    var list = document.getElementById('om-mine-list');
    mine.forEach(function (m) {
      if (!/^R[A-Z0-9]{1,15}$/.test(m.code)) return;
      list.appendChild(el('li', {}, [el('a', { href: cfg.urls.track + m.code }, [m.code]), ' · ' + C.when(m.at)]));
    });
    document.getElementById('om-mine').hidden = list.children.length === 0;
  }

  function pasted() {
    var numbers = (document.getElementById('om-coords').value.match(/-?\d+(\.\d+)?/g) || []).map(Number);
    if (numbers.length !== 2) { C.showError('请输入“经度, 纬度”两个数 Enter lon, lat'); return; }
    var a = numbers[0], b = numbers[1];
    // Tencent's picker gives "lat,lng": in China the longitude is always the larger number
    var lon = Math.max(a, b), lat = Math.min(a, b);
    C.showError('');
    choose(lon, lat, document.getElementById('om-crs').value);
  }

  function gps() {
    if (!navigator.geolocation) { C.showError('此浏览器无法定位，请在地图上点选 This browser cannot locate you'); return; }
    navigator.geolocation.getCurrentPosition(function (position) {
      C.showError('');
      var c = position.coords;  // the browser's position is WGS84
      choose(c.longitude, c.latitude, 'wgs84');
      if (map) map.setView([c.latitude, c.longitude], Math.max(map.getZoom(), 17));
    }, function () {
      C.showError('无法获取位置（请允许定位，或在地图上点选）Could not get your position');
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  }

  function start() {
    var select = document.getElementById('om-category');
    cfg.categories.forEach(function (c) { select.appendChild(el('option', { value: c.code }, [c.zh + ' ' + c.en])); });
    try { buildMap(); } catch (e) { C.showError('地图无法显示，可使用定位或输入坐标 The map could not load'); }
    select.addEventListener('change', refreshDuplicates);
    document.getElementById('om-set').addEventListener('click', pasted);
    document.getElementById('om-gps').addEventListener('click', gps);
    document.getElementById('om-photos').addEventListener('change', function () { C.showError(checkPhotos()); });
    document.getElementById('om-form').addEventListener('submit', submit);
    showMine();
    state.ready = true;
  }

  start();
})();
