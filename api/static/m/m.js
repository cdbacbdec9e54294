/* The grid worker's phone page (/m/): sign in, the grid map, tasks, care alerts, an outbox that survives the network.
 *
 * Every action is put in an outbox in IndexedDB first, with an idempotency key made here, and sent from
 * there in order; a network error leaves it for the next try (when the phone is back online, and every
 * few seconds), a refusal (4xx) drops it and says why. The server applies a key once and answers a
 * replay with its first answer, so an action whose answer was lost is never applied twice.
 * Everything a person wrote reaches the page as textContent, never as markup.
 */
(function () {
  'use strict';

  var C = window.ONEMAP_PHONE_CONFIG;
  var AUTH_KEY = 'onemap.phone.auth';
  var RETRY_MS = 5000;
  var PHOTO_SIDE = 1600;
  var state = {auth: null, me: null, tasks: [], alerts: [], queue: [], map: null, layers: {}, shareWatch: null,
               lastShared: 0, refreshTimer: null, feed: null};
  // the page's contract for tests and for whoever debugs it on a phone
  var phone = window.onemapPhone = {ready: false, signedIn: false, live: 'closed', online: navigator.onLine,
                                    pending: 0, sent: 0, replayed: 0, rejected: [], refreshed: 0, tasks: [],
                                    alerts: [], flush: function () { return flush(); }};

  // -- small helpers ------------------------------------------------------------------

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === undefined || value === null || value === false) return;
      if (name === 'text') node.textContent = value;
      else if (name === 'class') node.className = value;
      else if (name.slice(0, 2) === 'on') node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    });
    for (var i = 2; i < arguments.length; i++) if (arguments[i] !== null) node.append(arguments[i]);
    return node;
  }

  function toast(text) {
    var box = $('toast');
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { box.hidden = true; }, 4000);
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }

  function basic(auth) {
    var bytes = new TextEncoder().encode(auth.username + ':' + auth.token);
    var text = '';
    bytes.forEach(function (b) { text += String.fromCharCode(b); });
    return 'Basic ' + btoa(text);
  }

  function api(url, options) {
    options = options || {};
    var headers = Object.assign({Authorization: basic(state.auth), Accept: 'application/json'}, options.headers || {});
    return fetch(url, Object.assign({}, options, {headers: headers, cache: 'no-store', credentials: 'omit'}));
  }

  async function errorOf(response) {
    try { return (await response.json()).error || ('HTTP ' + response.status); } catch (e) { return 'HTTP ' + response.status; }
  }

  function when(iso) {
    if (!iso) return '';
    var d = new Date(iso);
    var pad = function (n) { return String(n).padStart(2, '0'); };
    return pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  function dueText(iso) {
    if (!iso) return null;
    var minutes = Math.round((new Date(iso) - Date.now()) / 60000);
    if (minutes < 0) return {text: '已超时 ' + span(-minutes), cls: 'due late'};
    return {text: '剩余 ' + span(minutes) + '（' + when(iso) + ' 前）', cls: minutes < 30 ? 'due soon' : 'due'};
  }

  function span(minutes) {
    if (minutes < 60) return minutes + ' 分钟';
    if (minutes < 48 * 60) return Math.floor(minutes / 60) + ' 小时 ' + (minutes % 60) + ' 分';
    return Math.floor(minutes / 1440) + ' 天';
  }

  function where(timeoutMs) {
    return new Promise(function (resolve) {
      if (!navigator.geolocation) return resolve(null);
      navigator.geolocation.getCurrentPosition(function (p) {
        resolve([Math.round(p.coords.longitude * 1e6) / 1e6, Math.round(p.coords.latitude * 1e6) / 1e6]);
      }, function () { resolve(null); }, {enableHighAccuracy: true, timeout: timeoutMs || 8000, maximumAge: 30000});
    });
  }

  // -- the outbox (IndexedDB) ---------------------------------------------------------

  var dbPromise = null;

  function db() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var open = indexedDB.open('onemap-phone', 1);
        open.onupgradeneeded = function () { open.result.createObjectStore('outbox', {keyPath: 'seq', autoIncrement: true}); };
        open.onsuccess = function () { resolve(open.result); };
        open.onerror = function () { reject(open.error); };
      });
    }
    return dbPromise;
  }

  async function store(mode, work) {
    var database = await db();
    return new Promise(function (resolve, reject) {
      var tx = database.transaction('outbox', mode);
      var result = work(tx.objectStore('outbox'));
      tx.oncomplete = function () { resolve(result && 'result' in result ? result.result : undefined); };
      tx.onerror = function () { reject(tx.error); };
      tx.onabort = function () { reject(tx.error); };
    });
  }

  async function loadQueue() {
    var all = await store('readonly', function (s) { return s.getAll(); });
    state.queue = (all || []).filter(function (item) { return item.user === state.auth.username; });
    showOutbox();
  }

  async function enqueue(caseId, action, body, photos) {
    var item = {key: 'm-' + uuid(), user: state.auth.username, caseId: caseId, action: action, body: body,
                photos: photos || [], photoNames: [], queuedAt: new Date().toISOString()};
    await store('readwrite', function (s) { return s.add(item); });
    await loadQueue();
    render();
    flush();
  }

  function showOutbox() {
    phone.pending = state.queue.length;
    var box = $('outbox');
    box.hidden = !state.queue.length;
    box.textContent = '待发送 ' + state.queue.length;
    box.title = '联网后自动发送';
  }

  var flushing = null;

  function flush() {
    if (!flushing) flushing = sendQueued().finally(function () { flushing = null; });
    return flushing;
  }

  // sends in order; stops at the first that cannot be sent now (network, server busy), to keep the order
  async function sendQueued() {
    if (!state.auth) return;
    await loadQueue();
    var changed = false;
    try {
      for (var i = 0; i < state.queue.length; i++) {
        var outcome = await sendOne(state.queue[i]);
        if (outcome === 'later') break;
        await store('readwrite', function (s) { return s.delete(state.queue[i].seq); });
        changed = true;
      }
    } catch (e) {
      setOnline(false);  // fetch failed: no network; try again later
    }
    await loadQueue();
    if (changed) { render(); scheduleRefresh(200); }
    clearTimeout(state.retry);
    if (state.queue.length) state.retry = setTimeout(flush, RETRY_MS);
  }

  async function sendOne(item) {
    while (item.photoNames.length < item.photos.length) {
      var blob = item.photos[item.photoNames.length];
      var up = await api(C.urls.photos, {method: 'POST', body: blob, headers: {'Content-Type': blob.type || 'image/jpeg'}});
      setOnline(true);
      if (later(up)) return 'later';
      if (!up.ok) return refused(item, await errorOf(up));
      item.photoNames.push((await up.json()).photo);
      await store('readwrite', function (s) { return s.put(item); });  // not uploaded again after a reload
    }
    var body = Object.assign({}, item.body);
    if (item.photos.length) body.photos = item.photoNames.slice();
    var url = C.urls.action.replace('{id}', item.caseId).replace('{action}', item.action);
    var response = await api(url, {method: 'POST', body: JSON.stringify(body),
                                   headers: {'Content-Type': 'application/json', 'Idempotency-Key': item.key}});
    setOnline(true);
    if (later(response)) return 'later';
    if (!response.ok) return refused(item, await errorOf(response));
    phone.sent += 1;
    try {  // the case as the server has it now, until the next read of the list
      var detail = await response.json();
      state.tasks.forEach(function (task) {
        if (task.id === detail.id) { task.state = detail.state; task.allowed = detail.allowed; task.due_at = detail.due_at; }
      });
    } catch (e) { /* the list is read again anyway */ }
    if (response.headers.get('Idempotent-Replayed') === 'true') phone.replayed += 1;
    return 'sent';
  }

  function later(response) {
    if (response.status === 401) { toast('登录已失效，请重新登录 Sign in again'); return true; }
    return response.status >= 500 || response.status === 429 || response.status === 408;
  }

  function refused(item, why) {
    phone.rejected.push({key: item.key, action: item.action, caseId: item.caseId, error: why});
    toast('未能提交「' + (C.actions[item.action] || item.action) + '」：' + why);
    return 'refused';
  }

  function setOnline(online) {
    phone.online = online;
    var net = $('net');
    net.textContent = online ? '在线' : '离线';
    net.title = online ? '' : '操作已保存，将在联网后发送';
    net.className = online ? 'net' : 'net off';
  }

  // -- reading ------------------------------------------------------------------------

  async function refresh() {
    try {
      var answers = await Promise.all([api(C.urls.tasks), api(C.urls.careAlerts)]);
      setOnline(true);
      if (answers[0].ok) state.tasks = (await answers[0].json()).tasks;
      if (answers[1].ok) state.alerts = (await answers[1].json()).alerts;
      phone.tasks = state.tasks;
      phone.alerts = state.alerts;
      phone.refreshed += 1;
      render();
    } catch (e) {
      setOnline(false);
    }
  }

  function scheduleRefresh(ms) {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refresh, ms);
  }

  // the live feed over fetch (an EventSource cannot send the Authorization header)
  async function listen() {
    var delay = 1000;
    while (state.auth) {
      try {
        var response = await api(C.urls.events, {headers: {Accept: 'text/event-stream'}});
        if (response.status === 401 || response.status === 403) return;
        if (!response.ok) throw new Error('HTTP ' + response.status);
        phone.live = 'open';
        delay = 1000;
        setOnline(true);
        refresh();  // whatever happened while the stream was down
        flush();
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = '';
        for (;;) {
          var chunk = await reader.read();
          if (chunk.done) break;
          buffer += decoder.decode(chunk.value, {stream: true});
          var end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            onMessage(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (e) {
        setOnline(navigator.onLine && phone.online);
      }
      phone.live = 'closed';
      await sleep(delay);
      delay = Math.min(delay * 2, 15000);
    }
  }

  function onMessage(block) {
    var event = 'message', data = '';
    block.split('\n').forEach(function (line) {
      if (line.indexOf('event:') === 0) event = line.slice(6).trim();
      else if (line.indexOf('data:') === 0) data += line.slice(5).trim();
    });
    if (event === 'incident' || event === 'reset') scheduleRefresh(300);
    if (event === 'notification') {
      try { toast(JSON.parse(data).title || '新通知'); } catch (e) { /* not JSON: ignore */ }
      scheduleRefresh(300);
    }
  }

  // -- drawing ------------------------------------------------------------------------

  // the state a task will be in once its queued actions are applied
  function withQueued(task) {
    var shown = Object.assign({}, task, {pending: []});
    state.queue.forEach(function (item) {
      if (item.caseId !== task.id) return;
      shown.pending.push(C.actions[item.action] || item.action);
      if (item.action === 'acknowledge') shown.state = 'acknowledged';
      if (item.action === 'handle' || item.action === 'visit') shown.state = 'handled';
      if (item.action === 'return') shown.state = 'returned';
      if (item.action === 'arrive') shown.arrived_at = item.queuedAt;
    });
    if (shown.pending.length) {
      var queuedStates = {acknowledged: ['arrive', 'handle', 'return', 'request_escalation'], handled: [], returned: []};
      if (shown.state in queuedStates && shown.state !== task.state) shown.allowed = queuedStates[shown.state];
    }
    return shown;
  }

  function render() {
    renderTasks();
    renderAlerts();
    renderMapMarkers();
  }

  function renderTasks() {
    var list = $('tasks');
    list.replaceChildren();
    var shown = state.tasks.map(withQueued).filter(function (t) { return t.state !== 'returned'; });
    $('tasks-empty').hidden = shown.length > 0;
    shown.forEach(function (task) {
      var due = task.state === 'handled' ? null : dueText(task.due_at);
      var meta = el('div', {class: 'meta'},
        el('span', {class: 'badge', text: C.states[task.state] || task.state}),
        el('span', {text: C.categories[task.category] || task.category}),
        task.building ? el('span', {text: task.building + (task.floor ? ' ' + task.floor + '层' : '')}) : null,
        task.breached ? el('span', {class: 'badge late', text: '已超时'}) : null,
        task.arrived_at ? el('span', {text: '已到场 ' + when(task.arrived_at)}) : null,
        task.pending.length ? el('span', {class: 'badge pending', text: '待发送：' + task.pending.join('、')}) : null);
      var card = el('li', {class: 'card', 'data-case-id': String(task.id), 'data-state': task.state},
        el('h3', {text: task.title || (C.categories[task.category] || task.category)}),
        meta,
        due ? el('div', {class: due.cls, text: due.text}) : (task.state === 'handled' ? el('div', {class: 'due', text: '已反馈，等待核查'}) : null),
        actions(task));
      list.append(card);
    });
  }

  var BUTTONS = [
    ['acknowledge', '签收', 'primary'], ['arrive', '到场', 'primary'], ['handle', '处置反馈', 'primary'],
    ['return', '退回', 'warn'], ['request_escalation', '申请上报', '']
  ];

  // an elder's alert is handled by a visit: checked in (到场), then its outcome (走访结果) instead of 处置反馈
  function actions(task) {
    var row = el('div', {class: 'acts'});
    var care = task.category === C.careCategory;
    BUTTONS.forEach(function (b) {
      if (task.allowed.indexOf(b[0]) < 0) return;
      if (care && b[0] === 'handle') b = ['visit', '走访结果', 'primary'];
      if (task.pending.indexOf(C.actions[b[0]]) >= 0 && b[0] !== 'arrive') return;
      row.append(el('button', {type: 'button', class: b[2], 'data-action': b[0], text: b[1],
                               onclick: function () { act(task, b[0]); }}));
    });
    return row.childNodes.length ? row : null;
  }

  function renderAlerts() {
    var list = $('alerts');
    list.replaceChildren();
    $('alerts-empty').hidden = state.alerts.length > 0;
    state.alerts.forEach(function (alert) {
      var person = alert.person
        ? el('div', {class: 'person'}, el('strong', {text: alert.person.name}), ' ', el('span', {text: alert.person.flat}))
        : el('div', {class: 'note', text: alert.mine ? '' : '住户信息仅对负责该案件的网格员显示'});
      list.append(el('li', {class: 'card', 'data-alert-id': String(alert.incident_id)},
        el('h3', {text: alert.title || '独居老人预警'}),
        el('div', {class: 'meta'},
          el('span', {text: alert.building || ''}),
          el('span', {text: '自 ' + when(alert.reported_at)}),
          alert.case_state ? el('span', {class: 'badge', text: C.states[alert.case_state] || alert.case_state}) : null),
        person));
    });
  }

  // -- the map ------------------------------------------------------------------------

  function drawMap() {
    if (!window.L || state.map) return;
    var grid = state.me.grid;
    var map = state.map = L.map('map', {zoomControl: false, attributionControl: false, preferCanvas: true});
    if (C.basemap) L.tileLayer(C.basemap, {maxZoom: 20}).addTo(map);
    L.geoJSON(grid.buildings, {style: {color: '#5c6670', weight: 1, fillColor: '#b8c2cc', fillOpacity: 0.5}})
      .addTo(map);
    L.geoJSON(grid.outline, {style: {color: '#0b5cad', weight: 3, fill: false, dashArray: '6 4'}}).addTo(map);
    var b = grid.bounds;
    map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {padding: [12, 12]});
    state.layers.markers = L.layerGroup().addTo(map);
  }

  function renderMapMarkers() {
    if (!state.map) return;
    var group = state.layers.markers;
    group.clearLayers();
    state.alerts.forEach(function (a) {
      L.circleMarker([a.location[1], a.location[0]], {radius: 9, color: '#8e44ad', fillOpacity: 0.6}).addTo(group);
    });
    state.tasks.map(withQueued).forEach(function (t) {
      if (t.state === 'returned') return;
      var colour = t.breached ? '#c0392b' : t.warned ? '#d35400' : t.state === 'handled' ? '#7f8c8d' : '#0b5cad';
      L.circleMarker([t.location[1], t.location[0]], {radius: 8, color: colour, fillOpacity: 0.8})
        .on('click', function () { focusTask(t.id); }).addTo(group);
    });
  }

  function focusTask(id) {
    showPane('tasks');
    var card = document.querySelector('[data-case-id="' + id + '"]');
    if (!card) return;
    card.scrollIntoView({behavior: 'smooth', block: 'center'});
    card.classList.add('flash');
    setTimeout(function () { card.classList.remove('flash'); }, 1500);
  }

  // -- actions ------------------------------------------------------------------------

  async function act(task, action) {
    if (action === 'acknowledge') {
      var position = await where(5000);
      return enqueue(task.id, 'acknowledge', position ? {position: position} : {});
    }
    if (action === 'visit') {
      var found = await sheet('走访结果 Visit outcome', '情况说明 Note', false, true);
      if (!found) return;
      var at = await where(5000);
      var visit = {outcome: found.outcome, note: found.text};
      if (at) visit.position = at;
      return enqueue(task.id, 'visit', visit);
    }
    if (action === 'arrive') {
      var here = await where(10000);
      if (!here) return toast('无法获取位置，请打开定位后再点「到场」 Turn on location first');
      return enqueue(task.id, 'arrive', {position: here});
    }
    var forms = {
      handle: ['处置反馈 Report what was done', '处置情况 Note', true],
      return: ['退回 Return the task', '退回原因 Reason', false],
      request_escalation: ['申请上报 Ask to escalate', '上报原因 Reason', false]
    };
    var form = forms[action];
    var answer = await sheet(form[0], form[1], form[2]);
    if (!answer) return;
    if (action === 'handle') {
      var spot = await where(5000);
      var body = {note: answer.text};
      if (spot) body.position = spot;
      return enqueue(task.id, 'handle', body, answer.photos);
    }
    return enqueue(task.id, action, {reason: answer.text});
  }

  // a bottom sheet asking for a text (and photos); resolves {text, photos} or null
  function sheet(title, textName, withPhotos, withOutcome) {
    var dialog = $('sheet'), form = $('sheet-form');
    form.reset();
    $('sheet-outcome-label').hidden = !withOutcome;
    $('sheet-title').textContent = title;
    $('sheet-text-name').textContent = textName;
    $('sheet-photo-label').hidden = !withPhotos;
    $('sheet-photo-count').textContent = '';
    var input = form.elements.photos;
    input.onchange = function () { $('sheet-photo-count').textContent = input.files.length ? '已选 ' + input.files.length + ' 张' : ''; };
    return new Promise(function (resolve) {
      $('sheet-cancel').onclick = function () { dialog.close(); resolve(null); };
      form.onsubmit = async function (event) {
        event.preventDefault();
        var text = form.elements.text.value.trim();
        if (!text) return;
        $('sheet-submit').disabled = true;
        try {
          var photos = withPhotos ? await Promise.all(Array.prototype.map.call(input.files, shrink)) : [];
          dialog.close();
          resolve({text: text, photos: photos, outcome: form.elements.outcome.value});
        } finally {
          $('sheet-submit').disabled = false;
        }
      };
      dialog.showModal();
    });
  }

  // a camera photo as a JPEG of at most PHOTO_SIDE pixels a side (the server re-encodes it again)
  async function shrink(file) {
    try {
      var bitmap = await createImageBitmap(file);
      var scale = Math.min(1, PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement('canvas');
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return await new Promise(function (resolve) { canvas.toBlob(resolve, 'image/jpeg', 0.82); }) || file;
    } catch (e) {
      return file;  // the server says whether it can take it
    }
  }

  // -- sharing the position (with consent, on duty, while the page is open) -----------

  function shareKey() { return 'onemap.phone.share.' + state.auth.username; }

  function setSharing(on) {
    localStorage.setItem(shareKey(), on ? '1' : '0');
    $('share').checked = on;
    stopWatching();
    if (on && document.visibilityState === 'visible') startWatching();
    $('share-status').textContent = on ? '位置共享已开启' : '位置共享已关闭';
  }

  function startWatching() {
    if (!navigator.geolocation || state.shareWatch !== null) return;
    state.shareWatch = navigator.geolocation.watchPosition(sharePosition, function () {
      $('share-status').textContent = '无法获取位置（定位未开启或未授权）';
    }, {enableHighAccuracy: true, maximumAge: 15000});
  }

  function stopWatching() {
    if (state.shareWatch !== null) navigator.geolocation.clearWatch(state.shareWatch);
    state.shareWatch = null;
  }

  async function sharePosition(p) {
    if (Date.now() - state.lastShared < C.positionEverySeconds * 1000) return;
    state.lastShared = Date.now();
    try {  // not queued: an old position is no use to dispatch
      var response = await api(C.urls.position, {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({position: [p.coords.longitude, p.coords.latitude], at: new Date(p.timestamp).toISOString()})});
      $('share-status').textContent = response.ok ? '位置已上报 ' + when(new Date().toISOString()) : await errorOf(response);
    } catch (e) {
      $('share-status').textContent = '离线：位置未上报';
    }
  }

  // -- sign-in and start --------------------------------------------------------------

  function showPane(name) {
    ['tasks', 'alerts', 'me'].forEach(function (pane) { $('pane-' + pane).hidden = pane !== name; });
    document.querySelectorAll('.tabs button').forEach(function (b) { b.classList.toggle('on', b.dataset.pane === name); });
  }

  async function signIn(auth) {
    state.auth = auth;
    var response = await api(C.urls.me);
    if (!response.ok) { state.auth = null; throw new Error(await errorOf(response)); }
    state.me = await response.json();
    localStorage.setItem(AUTH_KEY, JSON.stringify(auth));
    return start();
  }

  async function start() {
    $('signin').hidden = true;
    $('app').hidden = false;
    var me = state.me;
    $('grid-name').textContent = me.grid ? me.grid.name : '';
    $('worker-name').textContent = me.worker ? me.worker.name + ' · ' + me.worker.code : me.username + '（未绑定网格员）';
    $('me-line').textContent = '账号 ' + me.username + (me.worker ? '，网格员 ' + me.worker.code + (me.worker.on_duty ? '，在岗' : '，不在岗') : '');
    phone.signedIn = true;
    drawMap();
    await loadQueue();
    await refresh();
    $('share').checked = localStorage.getItem(shareKey()) === '1';
    if ($('share').checked) setSharing(true);
    listen();
    flush();
    phone.ready = true;
  }

  function signOut() {
    localStorage.removeItem(AUTH_KEY);
    location.reload();
  }

  function boot() {
    document.querySelectorAll('.tabs button').forEach(function (b) {
      b.addEventListener('click', function () { showPane(b.dataset.pane); });
    });
    $('signout').addEventListener('click', signOut);
    $('share').addEventListener('change', function () { setSharing($('share').checked); });
    window.addEventListener('online', function () { setOnline(true); flush(); scheduleRefresh(100); });
    window.addEventListener('offline', function () { setOnline(false); });
    document.addEventListener('visibilitychange', function () {
      if (!state.auth) return;
      if (document.visibilityState === 'visible') {
        if ($('share').checked) startWatching();
        flush();
        scheduleRefresh(100);
      } else {
        stopWatching();  // shared only while the page is open
      }
    });
    setInterval(function () { if (state.auth && document.visibilityState === 'visible') refresh(); }, 60000);
    $('signin-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var form = event.target;
      $('signin-error').textContent = '';
      signIn({username: form.elements.username.value.trim(), token: form.elements.token.value.trim()})
        .catch(function (e) { $('signin-error').textContent = '登录失败：' + e.message; });
    });
    var saved = null;
    try { saved = JSON.parse(localStorage.getItem(AUTH_KEY) || 'null'); } catch (e) { saved = null; }
    if (!saved) { $('signin').hidden = false; return; }
    signIn(saved).catch(function (e) {
      $('signin').hidden = false;
      $('signin-error').textContent = '请重新登录：' + e.message;
    });
  }

  boot();
})();
