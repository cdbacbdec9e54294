/* Staff's moderation queue: publish, hide, redact the text, remove a photo, ban the sender; with each report's history. */
(function () {
  'use strict';
  var C = window.onemapCommon, cfg = C.cfg, el = C.el;
  var state = { ready: false, tab: 'pending', reports: [] };
  window.onemapModeration = state;
  var NAMES = { pending: '待审核 Pending', 'public': '已公开 Public', hidden: '已隐藏 Hidden' };
  var ACTIONS = { publish: '公开', hide: '隐藏', redact: '删改文字', remove_photo: '删除照片', ban: '封禁发送者' };

  function load() {
    state.ready = false;
    return C.call(cfg.urls.queue + '?state=' + encodeURIComponent(state.tab)).then(function (data) {
      state.reports = data.reports;
      render();
      state.ready = true;
    }).catch(function (error) { C.showError(error.message); });
  }

  function act(code, action, body) {
    C.showError('');
    var url = cfg.urls.act.replace('{code}', encodeURIComponent(code)).replace('{action}', action);
    return C.call(url, { method: 'POST', json: body }).then(load).catch(function (error) { C.showError(error.message); });
  }

  function item(r) {
    var reason = el('input', { type: 'text', placeholder: '原因（记入审核记录）reason', 'class': 'om-reason',
                               maxlength: '500' });
    var text = el('textarea', { rows: '3', 'class': 'om-text', maxlength: '4000' });
    text.value = r.description;  // as a value: never parsed as markup
    function button(action, handler) {
      var b = el('button', { type: 'button', 'data-action': action }, [ACTIONS[action]]);
      b.addEventListener('click', handler);
      return b;
    }
    var photos = el('div', {}, r.photos.map(function (p) {
      var remove = button('remove_photo', function () {
        act(r.code, 'remove_photo', { photo: p.name, reason: reason.value });
      });
      return el('span', { 'class': 'om-photo' }, [el('img', { src: p.url, alt: p.name }), remove]);
    }));
    var history = el('ul', { 'class': 'om-history' }, r.history.map(function (h) {
      return el('li', {}, [C.when(h.at) + ' ' + h.actor + ' ' + (ACTIONS[h.action] || h.action) +
                           (h.reason ? '：' + h.reason : '') + (h.before ? '（原文：' + h.before + '）' : '')]);
    }));
    return el('li', { 'class': 'om-item', 'data-code': r.code }, [
      el('strong', {}, [r.code + ' · ' + r.category + (r.kind === 'me_too' ? ' · 附议' : '')]),
      el('div', { 'class': 'om-meta' }, [C.when(r.created_at) + (r.case ? ' · ' + r.case : '') +
                                        (r.has_phone ? ' · 留有手机号（加密，不可见）' : '') +
                                        (r.banned ? ' · 来自被封禁的发送者' : '')]),
      text, photos, reason,
      el('div', { 'class': 'om-row' }, [
        button('publish', function () { act(r.code, 'publish', { reason: reason.value }); }),
        button('hide', function () { act(r.code, 'hide', { reason: reason.value }); }),
        button('redact', function () { act(r.code, 'redact', { text: text.value, reason: reason.value }); }),
        button('ban', function () { act(r.code, 'ban', { reason: reason.value }); })
      ]),
      r.history.length ? el('details', {}, [el('summary', {}, ['审核记录 History']), history]) : null
    ]);
  }

  function render() {
    var list = document.getElementById('om-queue');
    list.textContent = '';
    state.reports.forEach(function (r) { list.appendChild(item(r)); });
    if (!state.reports.length) list.appendChild(el('li', { 'class': 'om-hint' }, ['没有上报 Nothing here']));
    Array.prototype.forEach.call(document.querySelectorAll('.om-tab'), function (b) {
      b.setAttribute('aria-pressed', String(b.getAttribute('data-state') === state.tab));
    });
  }

  var tabs = document.getElementById('om-tabs');
  cfg.states.forEach(function (s) {
    var b = el('button', { type: 'button', 'class': 'om-tab', 'data-state': s }, [NAMES[s] || s]);
    b.addEventListener('click', function () { state.tab = s; load(); });
    tabs.appendChild(b);
  });
  load();
})();
