/* The tracking page: a report's state and steps, rating and dispute with the code. */
(function () {
  'use strict';
  var C = window.onemapCommon, cfg = C.cfg, el = C.el;
  var state = { ready: false, progress: null };
  window.onemapTrack = state;

  function load() {
    return C.call(cfg.urls.progress).then(show).catch(function (error) { C.showError(error.message); });
  }

  function show(p) {
    state.progress = p;
    var summary = document.getElementById('om-summary');
    summary.textContent = '';
    summary.appendChild(el('h2', {}, [p.category_zh + ' ', el('span', { 'class': 'om-state', id: 'om-state' }, [p.state])]));
    summary.appendChild(el('p', { 'class': 'om-meta' }, ['上报于 ' + C.when(p.reported_at) +
      (p.kind === 'me_too' ? ' · 附议' : '') + (p.case ? ' · 案件 ' + p.case : '')]));
    if (p.hidden) summary.appendChild(el('p', { 'class': 'om-hint' }, ['内容已由工作人员隐藏。']));
    if (p.description) summary.appendChild(el('p', { id: 'om-description' }, [p.description]));
    if (p.photos.length) summary.appendChild(el('div', {}, p.photos.map(function (url) {
      return el('img', { src: url, alt: '现场照片 photo', style: 'max-width:160px;margin-right:6px;border-radius:6px' });
    })));
    if (p.due_at) summary.appendChild(el('p', { 'class': 'om-meta' }, ['预计处理期限 ' + C.when(p.due_at)]));
    if (p.closed_at) summary.appendChild(el('p', { 'class': 'om-meta' }, ['办结于 ' + C.when(p.closed_at)]));
    if (p.rating) summary.appendChild(el('p', { 'class': 'om-meta' }, ['您的评价：' + p.rating + ' 星']));
    var steps = document.getElementById('om-steps');
    steps.textContent = '';
    p.steps.forEach(function (s) {
      steps.appendChild(el('li', { 'class': 'om-step' }, [C.when(s.at) + ' ' + s.step + (s.note ? '：' + s.note : '')]));
    });
    document.getElementById('om-rate').hidden = !p.may_rate;
    document.getElementById('om-dispute').hidden = !p.may_dispute;
    if (p.dispute_until) {
      document.getElementById('om-dispute-until').textContent = '如问题未解决，可在 ' + C.when(p.dispute_until) +
        ' 前提出异议，案件将重新办理。';
    }
    state.ready = true;
  }

  function rate(stars) {
    C.showError('');
    C.call(cfg.urls.rate, { method: 'POST', json: { rating: stars } }).then(show)
      .catch(function (error) { C.showError(error.message); });
  }

  function dispute() {
    C.showError('');
    C.call(cfg.urls.dispute, { method: 'POST', json: { reason: document.getElementById('om-reason').value } })
      .then(show).catch(function (error) { C.showError(error.message); });
  }

  var stars = document.getElementById('om-stars');
  [1, 2, 3, 4, 5].forEach(function (n) {
    var button = el('button', { type: 'button', 'aria-label': n + ' 星' }, [n + ' ★']);
    button.addEventListener('click', function () { rate(n); });
    stars.appendChild(button);
  });
  document.getElementById('om-dispute-send').addEventListener('click', dispute);
  load();
})();
