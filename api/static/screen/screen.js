/* Community One Map — the command-centre screen (社区一张图 指挥中心大屏).
 *
 * The map itself is made by folium on the server; this script adds the layers, the
 * legend, the scene panels (with the cases by grid and the outbox's dead letters), the
 * live feed (Server-Sent Events at /screen/events) and the incident panel. Everything it
 * asks for is on this server (config in window.ONEMAP_SCREEN_CONFIG). Tests and the
 * benchmark read window.onemapScreen.
 */
(function () {
  'use strict';

  var cfg = window.ONEMAP_SCREEN_CONFIG;
  var map = window[cfg.mapName];
  var CLOSED = { resolved: true, closed: true, false_alarm: true };
  var CARE = 'elder_inactivity';
  var gridQuery = '?grid=' + encodeURIComponent(cfg.grid.code);
  var caseGrids = document.getElementById('om-case-grids');  // kept across the governance panel's refills

  var state = window.onemapScreen = {
    map: map,
    ready: false,
    incidents: new Map(),   // incident id -> Leaflet marker (live markers, at most cfg.limits.markers)
    markerSeenAt: {},       // incident id -> Date.now() when its marker was added or updated
    lastEventId: null,
    eventsReceived: 0,
    connection: 'connecting',
    layers: {}
  };

  // ---------------------------------------------------------------- start

  setupPanes();
  fitGrid();
  var layers = buildLayers();
  addControls();
  startClock();
  settled(loadDensity());  // the heat overlay comes when it comes: ready does not wait for it
  var initial = [loadScenes(), loadCaseGrids(), loadDeadLetters(), loadLive(), loadCameras(), loadGridLabels(),
    loadCareAlerts()].concat(cfg.smallLayers.map(loadSmallLayer));
  Promise.all(initial.map(settled)).then(function () {
    return firstTiles(layers.grids, 4000);
  }).then(function () {
    state.ready = true;
    document.body.classList.add('om-ready');
  });
  connect(null);
  setInterval(function () { [loadScenes(), loadCaseGrids(), loadDeadLetters()].forEach(settled); }, 60000);
  document.querySelector('#om-incident-panel .om-close').addEventListener('click', closeIncident);

  // ---------------------------------------------------------------- layers

  function setupPanes() {
    [['omGrids', 350], ['omBuildings', 360], ['omDensity', 365], ['omParking', 370], ['omZones', 380], ['omCare', 390],
     // grid names above the live markers (Leaflet's marker pane is 600), below tooltips (650)
     ['omCameras', 410], ['omIncidentTiles', 420], ['omLabels', 640]].forEach(function (p) {
      map.createPane(p[0]).style.zIndex = String(p[1]);
    });
    map.getPane('omLabels').style.pointerEvents = 'none';
  }

  function fitGrid() {
    fitArea(cfg.grid.bounds, false);
  }

  // an area [west, south, east, north] fills the part of the map the side columns and the header leave free
  function fitArea(b, animate) {
    var column = document.querySelector('.om-left').getBoundingClientRect();
    var header = document.querySelector('.om-header').getBoundingClientRect();
    var side = Math.round(column.right + 16);
    var free = map.getSize().x - 2 * side;
    if (free < map.getSize().x * 0.3) side = 16;  // a narrow window: the columns cover the map anyway
    map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {
      paddingTopLeft: [side, Math.round(header.bottom + 16)], paddingBottomRight: [side, 16], animate: animate
    });
  }

  function tileUrl(layer) {
    return cfg.urls.tiles.replace('{layer}', layer);
  }

  function vectorLayer(name, pane, style, extra) {
    var zooms = cfg.tileZooms[name];
    var options = {
      pane: pane, minZoom: zooms[0], maxNativeZoom: zooms[1], maxZoom: 22,
      rendererFactory: L.canvas.tile, vectorTileLayerStyles: {}, interactive: false,
      fetchOptions: { credentials: 'same-origin' }
    };
    options.vectorTileLayerStyles[name] = style;
    return L.vectorGrid.protobuf(tileUrl(name), L.extend(options, extra || {}));
  }

  function buildLayers() {
    var l = state.layers;
    l.grids = vectorLayer('grids', 'omGrids', function (p) {
      if (p.level === 1) return { color: '#36e2d3', weight: 3, fill: false };
      if (p.level === 2) return { color: '#4fc3f7', weight: 2, fill: false };
      return { color: '#2f6f9f', weight: 1, dashArray: '4 4', fill: false };
    });
    l.buildings = vectorLayer('buildings', 'omBuildings', {
      color: '#3c6e9c', weight: 0.6, fill: true, fillColor: '#16365a', fillOpacity: 0.7
    });
    l.parking = vectorLayer('parking_spots', 'omParking', function (p) {
      var c = { free: '#52d273', occupied: '#ff4d4f' }[p.occupancy] || '#5b6b7f';
      return { color: c, weight: 0.5, fill: true, fillColor: c, fillOpacity: 0.75 };
    });
    l.incidentTiles = vectorLayer('incidents', 'omIncidentTiles', function (p, z) {
      var open = !CLOSED[p.status];
      return {
        radius: z >= 16 ? 5 : 3.5, fill: true, fillColor: cfg.colours[p.category] || '#8aa3bd',
        fillOpacity: open ? 0.9 : 0.35, color: open ? '#ffffff' : '#5b6b7f', weight: 1
      };
    }, {
      interactive: true,
      getFeatureId: function (f) { f.properties.incident_id = f.id; return f.id; }
    });
    l.incidentTiles.on('click', function (e) {
      if (e.layer && e.layer.properties) openIncident(e.layer.properties.incident_id);
    });
    l.live = L.layerGroup();
    l.labels = L.layerGroup();
    l.cameras = L.layerGroup();
    l.care = L.layerGroup();
    l.density = L.layerGroup();
    l.no_parking_zones = L.layerGroup();
    l.party_orgs = L.layerGroup();
    l.service_points = L.layerGroup();
    ['grids', 'buildings', 'density', 'parking', 'no_parking_zones', 'care', 'cameras', 'incidentTiles', 'live', 'labels',
     'party_orgs', 'service_points'].forEach(function (k) { l[k].addTo(map); });
    map.on('zoomend', labelZoomClass);
    labelZoomClass();
    return l;
  }

  function labelZoomClass() {
    var z = map.getZoom();
    var c = map.getContainer().classList;
    c.toggle('om-zoom-low', z < 15);
    c.toggle('om-zoom-high', z >= 17);
  }

  function firstTiles(layer, timeoutMs) {
    return new Promise(function (resolve) {
      var done = false;
      function finish() { if (!done) { done = true; resolve(); } }
      layer.once('load', finish);
      if (!layer.isLoading || !layer.isLoading()) setTimeout(finish, 300);
      setTimeout(finish, timeoutMs);
    });
  }

  function addControls() {
    var l = state.layers;
    var bases = {};
    map.eachLayer(function (layer) {
      if (layer instanceof L.TileLayer && !(layer instanceof L.VectorGrid)) bases['底图 Base map'] = layer;
    });
    var overlays = {
      '网格 Grids': l.grids, '网格名称 Grid names': l.labels, '楼栋 Buildings': l.buildings,
      '摄像头 Cameras': l.cameras, '停车位 Parking': l.parking, '禁停区 No-parking zones': l.no_parking_zones,
      '事件 Incidents': l.incidentTiles, '实时事件 Live incidents': l.live,
      '事件密度 Incident density': l.density, '养老预警楼栋 Elder-care alerts': l.care, '党组织 Party organizations': l.party_orgs,
      '服务点 Service points': l.service_points
    };
    var outline = window[cfg.outlineName];
    if (outline) overlays['当前网格 Focus grid'] = outline;
    L.control.layers(bases, overlays, { collapsed: false, position: 'topright' }).addTo(map);
    L.control.scale({ metric: true, imperial: false, position: 'bottomleft' }).addTo(map);
    var legend = L.control({ position: 'bottomleft' });
    legend.onAdd = function () {
      var div = L.DomUtil.create('div', 'om-legend');
      div.appendChild(el('h4', {}, '图例 Legend'));
      Object.keys(cfg.categories).forEach(function (cat) {
        div.appendChild(el('span', {}, [el('i', { 'class': 'om-incident om-cat-' + cat }), cfg.categories[cat]]));
      });
      [['#52d273', '空闲车位 free'], ['#ff4d4f', '占用车位 occupied'], ['#5b6b7f', '未知 unknown'],
       ['#36e2d3', '摄像头在线 online'], ['#ff8c1a', '摄像头离线 offline'], ['#ffd23f', '维护中 maintenance'],
       ['rgba(255,77,79,0.5)', '禁停区 no parking'], ['#d46bff', '养老预警楼栋 care alert'], ['#d4232b', '党组织 party']]
        .forEach(function (s) {
          div.appendChild(el('span', {}, [el('i', { 'class': 'om-swatch', style: '--c:' + s[0] }), s[1]]));
        });
      div.appendChild(el('span', { 'class': 'om-density' }, ''));
      return div;
    };
    legend.addTo(map);
  }

  // ---------------------------------------------------------------- data the page fetches

  function getJSON(url) {
    return fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) {
        if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
        return r.json();
      });
  }

  function settled(p) {
    return p.then(function () { return true; }, function () { return false; });
  }

  function loadCameras() {
    return getJSON(cfg.urls.cameras + gridQuery).then(function (fc) {
      var group = state.layers.cameras;
      group.clearLayers();
      var colour = { online: '#36e2d3', offline: '#ff8c1a', maintenance: '#ffd23f' };
      fc.features.forEach(function (f) {
        var p = f.properties;
        var h = p.health;
        // a live camera whose stream is lost shows as offline, whatever its registered status
        var c = h && !h.connected && h.state !== 'stopped' ? colour.offline : (colour[p.status] || '#8aa3bd');
        var tip = cameraTip(p);
        if (p.wedge) {
          L.geoJSON(p.wedge, {
            pane: 'omCameras', interactive: false,
            style: { color: c, weight: 1, opacity: 0.7, fillColor: c, fillOpacity: 0.16 }
          }).addTo(group);
        }
        var ll = [f.geometry.coordinates[1], f.geometry.coordinates[0]];
        L.circleMarker(ll, { pane: 'omCameras', radius: 4, color: '#ffffff', weight: 1, fillColor: c, fillOpacity: 1 })
          .bindTooltip(tip).addTo(group);
      });
    });
  }

  // The marker's tooltip as elements with textContent: names and errors come from the database and streams
  function cameraTip(p) {
    var box = document.createElement('div');
    box.className = 'om-camera-tip';
    function line(text) {
      var d = document.createElement('div');
      d.textContent = text;
      box.appendChild(d);
    }
    line(p.name + ' · ' + p.status);
    var h = p.health;
    if (h) {
      var dropped = h.frames_in ? Math.round(100 * h.frames_dropped / h.frames_in) : 0;
      line('视频 ' + h.state + (h.connected ? ' ✓' : ' ✗') + ' · ' + h.fps_in.toFixed(1) + '/' +
           h.fps_out.toFixed(1) + ' fps · 丢帧 ' + h.frames_dropped + ' (' + dropped + '%)');
      if (h.gaps) line('断流 ' + h.gaps + ' 次, ' + h.gap_seconds.toFixed(1) + ' s');
      if (h.last_event_at) line('最近事件 ' + new Date(h.last_event_at).toLocaleTimeString());
      if (h.last_error) line('错误 ' + h.last_error);
    }
    box.dataset.camera = p.code;
    return box;
  }

  function loadGridLabels() {
    return getJSON(cfg.urls.gridLabels + gridQuery).then(function (fc) {
      var group = state.layers.labels;
      group.clearLayers();
      fc.features.forEach(function (f) {
        var icon = L.divIcon({
          className: 'om-grid-label om-grid-label-l' + f.properties.level, iconSize: null,
          html: '<span>' + escapeHtml(f.properties.name) + '</span>'
        });
        L.marker([f.geometry.coordinates[1], f.geometry.coordinates[0]],
          { icon: icon, pane: 'omLabels', interactive: false, keyboard: false }).addTo(group);
      });
    });
  }

  // the daily kernel density (a GeoTIFF in EPSG:4547 on the server) as a heat overlay, with its download
  function loadDensity() {
    return getJSON(cfg.urls.density + gridQuery).then(function (index) {
      if (!index.latest) return null;
      return getJSON(index.links.json).then(function (day) {
        state.layers.density.clearLayers();
        if (day.empty) return;
        L.imageOverlay(day.links.png, day.overlay.leaflet_bounds,
          { pane: 'omDensity', opacity: 0.6, interactive: false }).addTo(state.layers.density);
        var note = document.querySelector('.om-legend .om-density');
        if (note) {
          note.textContent = '';
          note.appendChild(el('i', { 'class': 'om-swatch om-heat' }));
          note.appendChild(document.createTextNode('事件密度 density ' + day.date + ' (≤ ' +
            Math.round(day.max) + '/km²) '));
          if ((day.excluded_statuses || []).indexOf('false_alarm') >= 0) {
            note.appendChild(el('span', { 'class': 'om-note om-density-excluded' }, '不含误报 false alarms excluded '));
          }
          note.appendChild(el('a', { href: day.links.tif, download: '' }, 'GeoTIFF'));
        }
      });
    });
  }

  function loadCareAlerts() {
    return getJSON(cfg.urls.careAlerts + gridQuery).then(function (fc) {
      var group = state.layers.care;
      group.clearLayers();
      L.geoJSON(fc, {
        pane: 'omCare',
        style: { color: '#f0b3ff', weight: 2, fillColor: '#d46bff', fillOpacity: 0.55, className: 'om-care-alert' },
        onEachFeature: function (f, layer) {
          layer.bindTooltip(escapeHtml((f.properties.name || f.properties.code) + ' · 独居老人预警 ' +
            f.properties.open_alerts + ' 起 open alerts'));
        }
      }).addTo(group);
    });
  }

  function loadSmallLayer(name) {
    var b = cfg.grid.bounds;
    var url = cfg.urls.features + name + '?f=json&limit=5000&bbox=' + b.join(',');
    return getJSON(url).then(function (fc) {
      var group = state.layers[name];
      group.clearLayers();
      var options = {};
      if (name === 'no_parking_zones') {
        options = { pane: 'omZones', style: { color: '#ff4d4f', weight: 1.5, dashArray: '5 4', fillColor: '#ff4d4f', fillOpacity: 0.22 } };
      } else if (name === 'party_orgs') {
        options.pointToLayer = function (f, ll) {
          return L.marker(ll, { icon: L.divIcon({ className: 'om-party', iconSize: null }), keyboard: false });
        };
      } else {
        var colours = { service: '#ffd23f', commerce: '#3fb6ff', culture: '#d46bff' };
        options.pointToLayer = function (f, ll) {
          return L.circleMarker(ll, { radius: 5, color: '#061222', weight: 1,
            fillColor: colours[f.properties.category] || '#8aa3bd', fillOpacity: 0.95 });
        };
      }
      options.onEachFeature = function (f, layer) {
        var p = f.properties;
        layer.bindTooltip(escapeHtml(p.name + (p.subcategory ? ' · ' + p.subcategory : '') +
          (p.members ? ' · 党员 ' + p.members : '')));
      };
      L.geoJSON(fc, options).addTo(group);
    });
  }

  // the open incidents of the last 24 hours: their markers, and the live list (newest on top) so it is never
  // empty on open while incidents are open; the feed adds to both from then on
  function loadLive() {
    return getJSON(cfg.urls.live + gridQuery).then(function (fc) {
      var list = document.getElementById('om-event-list');
      list.textContent = '';
      eventCount = 0;
      fc.features.slice().reverse().forEach(function (f) {
        upsertMarker(f, false);
        addEventRow({ op: 'open', id: f.id }, f, new Date(f.properties.reported_at), true);
      });
    });
  }

  // ---------------------------------------------------------------- scene panels

  var scenesTimer = null;

  function scheduleScenes() {
    if (scenesTimer) return;
    scenesTimer = setTimeout(function () {
      scenesTimer = null;
      settled(loadScenes());
      settled(loadCaseGrids());
    }, 5000);
  }

  function loadScenes() {
    return getJSON(cfg.urls.scenes + gridQuery).then(renderScenes);
  }

  function renderScenes(d) {
    var c = d.charts;
    fill('party', [
      kpis([[d.party.organizations, '党组织 orgs'], [d.party.members, '党员 members'],
            [d.party.activities_30d, '30日活动 events'], [d.party.participants_30d, '参与 people']]),
      el('p', { 'class': 'om-note' }, Object.keys(d.party.by_kind).map(function (k) {
        return (cfg.partyKinds[k] || k) + ' ' + d.party.by_kind[k];
      }).join(' · ')),
      svg(c.party_branches),
      list(d.party.recent_activities.slice(0, 3).map(function (a) {
        return shortDate(a.starts_at) + ' ' + a.title;
      }))
    ]);
    fill('governance', [
      kpis([[d.governance.open, '未办结 open', d.governance.open > 0], [d.governance.closed, '已办结 closed'],
            [d.governance.by_grid.length, '下级网格 grids']]),
      d.cases ? kpis([[d.cases.open, '案件在办 cases open'], [d.cases.overdue, '超时 overdue', d.cases.overdue > 0],
                      [d.cases.escalated, '已上报 escalated', d.cases.escalated > 0]], 3) : null,
      caseGrids,
      svg(c.governance_by_category),
      d.governance.by_grid.length > 1 ? svg(c.governance_by_grid) : null
    ]);
    var s = d.safety;
    fill('safety', [
      kpis([[s.falling_object.today, '今日高空抛物', s.falling_object.today > 0],
            [s.fire_smoke.today, '今日烟火', s.fire_smoke.today > 0],
            [s.illegal_parking.today, '今日违停']], 3),
      svg(c.safety)
    ]);
    var e = d.elder_care;
    fill('elder_care', [
      kpis([[e.registered, '登记 registered'], [e.living_alone, '独居 alone'],
            [e.open_alerts, '预警 alerts', e.open_alerts > 0], [e.buildings_with_alerts, '预警楼栋 bldgs']]),
      el('p', { 'class': 'om-note' }, '仅显示统计与楼栋 · counts and buildings only')
    ]);
    var p = d.parking;
    fill('parking', [
      kpis([[p.spots, '车位 spots'], [p.free, '空闲 free'],
            [p.occupancy_rate == null ? '–' : Math.round(p.occupancy_rate * 100) + '%', '占用率 occupied'],
            [p.illegal_parking_open, '违停待办', p.illegal_parking_open > 0]]),
      svg(c.parking)
    ]);
    fill('services', [
      kpis([[d.services.total, '服务点 points']].concat(Object.keys(d.services.by_category).map(function (k) {
        return [d.services.by_category[k], cfg.services[k] || k];
      }))),
      svg(c.services)
    ]);
  }

  function fill(panel, children) {
    var body = document.querySelector('#om-scene-' + panel + ' .om-body');
    body.textContent = '';
    children.forEach(function (child) { if (child) body.appendChild(child); });
  }

  function kpis(items, columns) {
    return el('div', { 'class': 'om-kpis' + (columns === 3 ? ' om-kpis-3' : '') }, items.map(function (k) {
      return el('div', { 'class': 'om-kpi' + (k[2] ? ' om-hot' : '') },
        [el('span', { 'class': 'om-v' }, String(k[0])), el('span', { 'class': 'om-k' }, k[1])]);
    }));
  }

  function svg(markup) {
    var div = el('div', { 'class': 'om-chart-box' });
    div.innerHTML = markup;  // rendered and escaped on the server
    return div;
  }

  function list(lines) {
    return el('ul', { 'class': 'om-list' }, lines.map(function (t) { return el('li', {}, t); }));
  }

  // ---------------------------------------------------------------- cases by grid (governance panel)

  function loadCaseGrids() {
    return getJSON(cfg.urls.caseGrids + gridQuery).then(renderCaseGrids, function (e) {
      caseGrids.textContent = '';
      caseGrids.appendChild(missing('无法加载各网格案件 · could not load the cases by grid'));
      throw e;
    });
  }

  // the grids with open cases, the most overdue first, and the total; a row's click fits the map to its grid
  function renderCaseGrids(d) {
    var busy = d.grids.filter(function (g) { return g.open > 0; }).sort(function (a, b) {
      return b.overdue - a.overdue || b.escalated - a.escalated || b.open - a.open || (a.code < b.code ? -1 : 1);
    });
    var shown = busy.slice(0, cfg.lists.caseGrids);
    var rows = shown.map(function (g) {
      var row = el('tr', { 'data-grid-code': g.code, title: g.code }, [
        el('td', {}, g.name || g.code), countCell(g.open), countCell(g.overdue, 'om-hot'),
        countCell(g.escalated, 'om-warm')
      ]);
      row.addEventListener('click', function () { fitArea(g.bounds, true); });
      return row;
    });
    var t = d.total;
    var table = el('table', {}, [
      el('thead', {}, el('tr', {}, ['网格 Grid', '在办 open', '超时 overdue', '上报 escalated'].map(function (h) {
        return el('th', {}, h);
      }))),
      el('tbody', {}, rows),
      el('tfoot', {}, el('tr', { 'class': 'om-total' }, [el('td', {}, '合计 Total'), countCell(t.open),
        countCell(t.overdue, 'om-hot'), countCell(t.escalated, 'om-warm')]))
    ]);
    caseGrids.textContent = '';
    caseGrids.appendChild(el('h3', {}, ['各网格案件 ', el('small', {}, 'Cases by grid')]));
    caseGrids.appendChild(el('div', { 'class': 'om-table-box' }, table));
    if (!busy.length) caseGrids.appendChild(el('p', { 'class': 'om-note' }, '暂无在办案件 · no open cases'));
    if (busy.length > shown.length) {
      caseGrids.appendChild(el('p', { 'class': 'om-note' },
        '另有 ' + (busy.length - shown.length) + ' 个网格有在办案件 · more grids'));
    }
  }

  function countCell(n, hot) {
    return el('td', { 'class': n > 0 && hot ? hot : '' }, String(n));
  }

  // ---------------------------------------------------------------- dead letters (the outbox's failures)

  function loadDeadLetters() {
    return fetch(cfg.urls.deadNotices, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(answer).then(function (res) {
        if (!res.ok) {
          deadNote('无法加载失败通知 · ' + problem(res));
          return;
        }
        var list = document.getElementById('om-dead-list');
        list.textContent = '';
        res.data.notifications.forEach(function (n) { list.appendChild(deadRow(n)); });
        deadCount();
      }, function () {
        deadNote('无法加载失败通知 · could not reach the server');
      });
  }

  // every text here was written by someone else (recipients, errors quoting them): text nodes only
  function deadRow(n) {
    var about = n.case_code || (n.members ? '合并 ' + n.members + ' 条 summary' :
      n.subject.kind + (n.subject.id == null ? '' : ' #' + n.subject.id));
    var button = el('button', { type: 'button', 'class': 'om-replay' }, '重发 Replay');
    var error = el('div', { 'class': 'om-dead-error' }, n.last_error || '—');
    error.title = n.last_error || '';
    var row = el('li', { 'data-notification-id': String(n.id) }, [
      el('div', { 'class': 'om-dead-head' }, [
        el('span', { 'class': 'om-chip' }, cfg.channels[n.channel] || n.channel),
        el('span', { 'class': 'om-recipient', title: n.recipient }, n.recipient),
        el('span', { 'class': 'om-case-code', title: about }, about)
      ]),
      error,
      el('div', { 'class': 'om-dead-foot' }, [
        el('span', { 'class': 'om-dead-when' }, '尝试 ' + n.attempts + ' 次 · ' + dateTime(n.created_at)), button
      ])
    ]);
    button.addEventListener('click', function () { replay(n.id, row, button); });
    return row;
  }

  // back to the outbox with fresh attempts: the row goes; a refusal (say, someone replayed it first) is said in it
  function replay(id, row, button) {
    button.disabled = true;
    var url = cfg.urls.replayNotice.replace('{id}', encodeURIComponent(id));
    fetch(url, { method: 'POST', credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(answer).then(function (res) {
        if (res.ok) {
          row.parentNode.removeChild(row);
          deadCount();
          return;
        }
        button.replaceWith(el('span', { 'class': 'om-missing' }, '重发失败 · ' + problem(res)));
      }, function () {
        button.disabled = false;
        var said = row.querySelector('.om-dead-said');
        if (!said) said = row.appendChild(el('p', { 'class': 'om-missing om-dead-said' }));
        said.textContent = '重发失败 · 无法连接服务器 could not reach the server';
      });
  }

  function deadCount() {
    var n = document.getElementById('om-dead-list').childElementCount;
    document.getElementById('om-dead-count').textContent = n ? String(n) : '';
    document.getElementById('om-dead-letters').classList.toggle('om-has-dead', n > 0);
    deadNote(n ? '' : '无失败通知 · none');
  }

  function deadNote(text) {
    document.getElementById('om-dead-note').textContent = text;
  }

  // a response as {ok, status, data}; data is {} when the body is not JSON (a proxy's error page)
  function answer(r) {
    return r.json().then(function (data) { return { ok: r.ok, status: r.status, data: data || {} }; },
      function () { return { ok: r.ok, status: r.status, data: {} }; });
  }

  // what went wrong, in the server's words, or its status: never a script's stack
  function problem(res) {
    return typeof res.data.error === 'string' ? res.data.error : 'HTTP ' + res.status;
  }

  // ---------------------------------------------------------------- live feed

  var reconnectTimer = null;

  function connect(fromId) {
    var url = cfg.urls.events;
    if (fromId != null) url += '?last_event_id=' + encodeURIComponent(fromId);
    setConnection('connecting');
    var source = new EventSource(url);
    source.onopen = function () { setConnection('open'); };
    source.addEventListener('hello', function (e) {
      var d = JSON.parse(e.data);
      if (state.lastEventId == null) state.lastEventId = d.last_event_id;
      setConnection('open');
    });
    source.addEventListener('incident', function (e) {
      state.eventsReceived += 1;
      rememberId(e.lastEventId);
      handleIncident(JSON.parse(e.data));
    });
    source.addEventListener('notification', function (e) {
      // an in-app notification (the outbox): counted and its id kept; the cases panel will show it
      state.eventsReceived += 1;
      rememberId(e.lastEventId);
    });
    source.addEventListener('reset', function (e) {
      state.eventsReceived += 1;
      rememberId(e.lastEventId);
      reloadIncidentState();
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // the browser gave up (a server error, not a dropped connection): try again ourselves
        source.close();
        setConnection('closed');
        if (!reconnectTimer) {
          reconnectTimer = setTimeout(function () {
            reconnectTimer = null;
            connect(state.lastEventId);
          }, 1000 + Math.random() * 4000);
        }
      } else {
        setConnection('connecting');  // EventSource retries with Last-Event-ID itself
      }
    };
  }

  function rememberId(raw) {
    var n = Number(raw);
    if (raw !== '' && isFinite(n)) state.lastEventId = n;
  }

  function setConnection(value) {
    state.connection = value;
    var badge = document.getElementById('om-connection');
    badge.className = 'om-connection om-connection-' + value;
    badge.textContent = { open: '实时 live', connecting: '连接中 connecting', closed: '已断开 offline' }[value];
  }

  function inScope(feature) {
    if (!cfg.focused) return true;
    var code = feature && feature.properties.grid_code;
    return !!code && code.indexOf(cfg.grid.code) === 0;
  }

  function handleIncident(d) {
    var f = d.feature;
    if (d.op === 'delete') {
      var marker = state.incidents.get(d.id);
      if (marker) dropMarker(d.id, marker);
      addEventRow(d, marker ? marker.feature : null);
      scheduleScenes();
      return;
    }
    if (!f || !inScope(f)) return;
    addEventRow(d, f);
    scheduleScenes();
    if (f.properties.category === CARE) {  // counts and a highlighted building, never a person's marker
      scheduleCare();
      return;
    }
    if (CLOSED[f.properties.status]) {
      var existing = state.incidents.get(f.id);
      if (existing) fadeOut(f.id, existing, f);
      return;
    }
    upsertMarker(f, true);
  }

  var IncidentIcon = L.DivIcon.extend({
    createIcon: function (old) {
      var div = L.DivIcon.prototype.createIcon.call(this, old);
      div.setAttribute('data-incident-id', String(this.options.incidentId));
      div.title = this.options.tip;
      return div;
    }
  });

  function incidentIcon(f, fresh) {
    var p = f.properties;
    return new IncidentIcon({
      className: 'om-incident om-cat-' + p.category + ' om-sev-' + p.severity + (fresh ? ' om-new' : '') +
        (p.overdue ? ' om-overdue' : ''),
      iconSize: null, incidentId: f.id,
      tip: (cfg.categories[p.category] || p.category) + ' · ' + (cfg.statuses[p.status] || p.status)
    });
  }

  function upsertMarker(f, fresh) {
    var id = f.id;
    var ll = [f.geometry.coordinates[1], f.geometry.coordinates[0]];
    var marker = state.incidents.get(id);
    var now = Date.now();
    if (marker) {
      clearTimeout(marker._omFade);
      marker.feature = f;
      marker.setLatLng(ll);
      marker.setIcon(incidentIcon(f, now - marker._omAddedAt < cfg.limits.newSeconds * 1000));
      state.incidents.delete(id);  // re-insert: the Map's order is oldest-touched first
    } else {
      marker = L.marker(ll, { icon: incidentIcon(f, fresh), keyboard: false, riseOnHover: true });
      marker.feature = f;
      marker._omAddedAt = now;
      marker.on('click', function () { openIncident(id); });
      if (fresh) {
        marker._omNew = setTimeout(function () {
          var element = marker.getElement();
          if (element) element.classList.remove('om-new');
          marker.options.icon.options.className = marker.options.icon.options.className.replace(' om-new', '');
        }, cfg.limits.newSeconds * 1000);
      }
      state.layers.live.addLayer(marker);
    }
    state.incidents.set(id, marker);
    state.markerSeenAt[id] = now;
    while (state.incidents.size > cfg.limits.markers) {
      var oldest = state.incidents.entries().next().value;
      dropMarker(oldest[0], oldest[1]);
    }
    pruneSeen();
  }

  function fadeOut(id, marker, f) {
    marker.feature = f;
    var element = marker.getElement();
    if (element) element.classList.add('om-fading');
    clearTimeout(marker._omFade);
    marker._omFade = setTimeout(function () { dropMarker(id, marker); }, 2500);
  }

  function dropMarker(id, marker) {
    clearTimeout(marker._omFade);
    clearTimeout(marker._omNew);
    state.layers.live.removeLayer(marker);
    if (state.incidents.get(id) === marker) state.incidents.delete(id);
  }

  function pruneSeen() {
    var keys = Object.keys(state.markerSeenAt);  // integer keys come in ascending order: oldest ids first
    var limit = cfg.limits.markers * 2;
    for (var i = 0; i < keys.length - limit; i++) {
      if (!state.incidents.has(Number(keys[i]))) delete state.markerSeenAt[keys[i]];
    }
  }

  function reloadIncidentState() {
    state.incidents.forEach(function (marker, id) { dropMarker(id, marker); });
    state.layers.incidentTiles.redraw();
    [loadLive(), loadCareAlerts(), loadScenes(), loadCaseGrids()].forEach(settled);
  }

  var careTimer = null;

  function scheduleCare() {
    if (careTimer) return;
    careTimer = setTimeout(function () { careTimer = null; settled(loadCareAlerts()); }, 2000);
  }

  // ---------------------------------------------------------------- event list

  var eventCount = 0;

  function addEventRow(d, f, at, initial) {
    var list = document.getElementById('om-event-list');
    var p = f ? f.properties : {};
    var category = p.category || '';
    var what;
    if (d.op === 'delete') what = '已删除 deleted #' + d.id;
    else if (category === CARE) what = (cfg.statuses[p.status] || p.status) + ' · ' + (p.grid_name || '');
    else what = (cfg.statuses[p.status] || p.status) + ' · ' + (p.grid_name || '') + ' ' + (p.title || '');
    var row = el('li', { 'class': initial ? 'om-open' : 'om-fresh', 'data-incident-id': String(d.id) }, [
      el('span', { 'class': 'om-time' }, clock(at || new Date())),
      el('span', { 'class': 'om-chip', style: '--c:' + (cfg.colours[category] || '#8aa3bd') },
        category ? (cfg.categories[category] || category) : '—'),
      el('span', { 'class': 'om-what' }, what)
    ]);
    if (d.op !== 'delete') row.addEventListener('click', function () { openIncident(d.id); });
    list.insertBefore(row, list.firstChild);
    while (list.childElementCount > cfg.limits.events) list.removeChild(list.lastChild);
    eventCount += 1;
    document.getElementById('om-event-count').textContent = String(eventCount);
  }

  // ---------------------------------------------------------------- incident panel

  function openIncident(id) {
    if (id == null) return;
    var panel = document.getElementById('om-incident-panel');
    var body = panel.querySelector('.om-body');
    body.textContent = '加载中 loading…';
    panel.hidden = false;
    fetch(cfg.urls.incident + encodeURIComponent(id), { credentials: 'same-origin' }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, data: data }; });
    }).then(function (res) {
      body.textContent = '';
      if (!res.ok) {
        body.appendChild(el('h2', {}, '事件 #' + id));
        body.appendChild(el('p', { 'class': 'om-missing' }, '该事件已不存在 · ' + res.data.error));
        return;
      }
      renderIncident(body, res.data);
    }, function () {
      body.textContent = '无法加载事件 · could not load the incident';
    });
  }

  function renderIncident(body, d) {
    var p = d.feature.properties;
    body.appendChild(el('h2', {}, [
      el('span', { 'class': 'om-chip', style: '--c:' + (cfg.colours[p.category] || '#8aa3bd') }, d.labels.category),
      ' ' + (p.category === CARE ? '' : (p.title || '')) + ' ', el('small', {}, p.code)
    ]));
    var rows = [
      ['时间 Time', dateTime(p.reported_at)],
      ['网格 Grid', d.grid_path.map(function (g) { return g.name; }).join(' › ') || '—'],
      ['楼栋 Building', d.building ? (d.building.name || d.building.code) : '—'],
      ['楼层 Floor', p.floor == null ? '—' : p.floor + ' 层'],
      ['状态 Status', d.labels.status + (p.resolved_at ? ' · ' + dateTime(p.resolved_at) : '')],
      ['来源 Source', (cfg.sources[p.source] || p.source) + (d.camera ? ' · ' + d.camera.name : '')],
      ['等级 Severity', String(p.severity)]
    ];
    var dl = el('dl');
    rows.forEach(function (r) { dl.appendChild(el('dt', {}, r[0])); dl.appendChild(el('dd', {}, r[1])); });
    body.appendChild(dl);
    body.appendChild(el('h3', {}, '处置记录 Status history'));
    if (d.history.length) {
      body.appendChild(el('ol', {}, d.history.map(function (h) {
        return el('li', {}, dateTime(h.at) + ' ' + (h.from_status ? (cfg.statuses[h.from_status] || h.from_status) + ' → ' : '') +
          (cfg.statuses[h.to_status] || h.to_status) + (h.actor ? ' · ' + h.actor : ''));
      })));
    } else {
      body.appendChild(el('p', { 'class': 'om-note' }, '暂无记录 · no status changes yet'));
    }
    renderCase(body, d.case, d.feature.id);
    body.appendChild(el('h3', {}, '取证 Evidence'));
    var urls = d.evidence_urls;
    if (!urls.keyframe && !urls.clip) {
      body.appendChild(el('p', { 'class': 'om-missing' }, '无取证材料 · no evidence for this incident'));
    }
    if (urls.keyframe) {
      var img = el('img', { src: urls.keyframe, alt: '关键帧 keyframe' });
      img.addEventListener('error', function () { img.replaceWith(missing('关键帧缺失 · keyframe missing')); });
      body.appendChild(img);
    }
    if (urls.clip) {
      var video = el('video', { src: urls.clip, controls: 'controls', preload: 'metadata', muted: 'muted' });
      video.addEventListener('error', function () { video.replaceWith(missing('视频无法播放 · clip unavailable')); });
      body.appendChild(video);
    }
    var ll = [d.feature.geometry.coordinates[1], d.feature.geometry.coordinates[0]];
    if (!map.getBounds().pad(-0.2).contains(ll)) map.panTo(ll);
  }

  // the incident's case: state, its clock coloured, the steps, whom to send (and the button, for commanders)
  function renderCase(body, c, incidentId) {
    body.appendChild(el('h3', {}, '案件 Case'));
    if (!c) {
      body.appendChild(el('p', { 'class': 'om-note' }, '尚未立案 · no case yet'));
      return;
    }
    var clock = c.breached ? 'om-due-red' : (c.warned ? 'om-due-yellow' : 'om-due-green');
    var dl = el('dl', { 'class': 'om-case' });
    [['编号 Code', c.code], ['状态 State', c.label + (c.deferred ? ' · 已延期 deferred' : '')],
     ['时限 Due', c.due_at ? el('span', { 'class': clock }, dateTime(c.due_at)) : '—'],
     ['负责 Handler', (c.assignee || '—') + (c.grid_name ? ' · ' + c.grid_name : '')]].forEach(function (r) {
      dl.appendChild(el('dt', {}, r[0])); dl.appendChild(el('dd', {}, r[1]));
    });
    body.appendChild(dl);
    body.appendChild(el('ol', { 'class': 'om-case-steps' }, c.history.map(function (h) {
      return el('li', {}, dateTime(h.at) + ' ' + h.action + (h.actor ? ' · ' + h.actor : '') + (h.reason ? ' · ' + h.reason : ''));
    })));
    var advice = c.recommendation;
    if (!advice) return;
    var best = advice.candidates.filter(function (w) { return w.worker_id === advice.recommended; })[0];
    // without a fresh position nobody is recommended; the first candidate (the grid's, nearest last seen) is offered
    var pick = best || advice.candidates[0];
    body.appendChild(el('p', { 'class': 'om-note' }, best ? '推荐 ' + best.name + ' · ' + best.why :
      (pick ? '无实时位置 · no fresh position: ' + pick.name + ' · ' + pick.why : '无可派遣人员 · nobody on duty')));
    if (!pick || c.allowed.indexOf('dispatch') < 0) return;
    best = pick;
    var button = el('button', { type: 'button', 'class': 'om-dispatch' }, '派遣 ' + best.name + ' · dispatch');
    button.addEventListener('click', function () {
      button.disabled = true;
      fetch('/api/cases/' + c.id + '/dispatch', {
        method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ worker_id: best.worker_id })
      }).then(function (r) {
        return r.json().then(function (data) {
          if (!r.ok) throw new Error(data.error || r.status);
          openIncident(incidentId);
        });
      }).catch(function (e) {
        button.replaceWith(missing('派遣失败 · ' + e.message));
      });
    });
    body.appendChild(button);
  }

  function missing(text) {
    return el('p', { 'class': 'om-missing' }, text);
  }

  function closeIncident() {
    var panel = document.getElementById('om-incident-panel');
    panel.hidden = true;
    panel.querySelector('.om-body').textContent = '';
  }

  // ---------------------------------------------------------------- small helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    [].concat(children == null ? [] : children).forEach(function (c) {
      if (c == null) return;
      node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return node;
  }

  function escapeHtml(text) {
    var div = document.createElement('div');
    div.textContent = text == null ? '' : String(text);
    return div.innerHTML;
  }

  // every time on the page is the server's time zone (cfg.timeZone), whatever the browser's
  var zoned = null;  // made on first use: the clock starts before this line runs

  function local(d) {
    var out = {};
    zoned = zoned || new Intl.DateTimeFormat('en-GB', {
      timeZone: cfg.timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit'
    });
    zoned.formatToParts(d).forEach(function (p) { if (p.type !== 'literal') out[p.type] = p.value; });
    return out;
  }

  function clock(d) { var t = local(d); return t.hour + ':' + t.minute + ':' + t.second; }

  function dateTime(iso) {
    if (!iso) return '—';
    var t = local(new Date(iso));
    return t.year + '-' + t.month + '-' + t.day + ' ' + t.hour + ':' + t.minute + ':' + t.second;
  }

  function shortDate(iso) {
    var t = local(new Date(iso));
    return t.month + '-' + t.day;
  }

  function startClock() {
    var node = document.getElementById('om-clock');
    node.title = cfg.timeZone;
    function tick() {
      var t = local(new Date());
      node.textContent = t.year + '年' + Number(t.month) + '月' + Number(t.day) + '日 ' + t.hour + ':' + t.minute + ':' +
        t.second;
    }
    tick();
    setInterval(tick, 1000);
  }
})();
