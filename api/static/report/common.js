/* What the residents' pages share: the config block, element building with text only, the API calls. */
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('om-config').textContent);

  // every user-written word goes in as text, never as markup
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return node;
  }

  function showError(message) {
    var box = document.getElementById('om-error');
    if (!box) return;
    box.textContent = message || '';
    box.hidden = !message;
  }

  // JSON from our own API; a refusal becomes an Error whose message is the server's sentence
  function call(url, options) {
    options = options || {};
    var headers = options.headers || {};
    if (options.method && options.method !== 'GET') headers[cfg.writeHeader[0]] = cfg.writeHeader[1];
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(options.json);
    }
    return fetch(url, { method: options.method || 'GET', headers: headers, body: options.body,
                        credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) {
        return response.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
          if (!response.ok) {
            var message = (data && data.error) || ('HTTP ' + response.status);
            if (response.status === 429 && response.headers.get('Retry-After')) {
              message += '（请 ' + Math.ceil(Number(response.headers.get('Retry-After')) / 60) + ' 分钟后再试）';
            }
            if (response.status === 413 && !(data && data.error)) message = '照片或内容太大 The upload is too large';
            var error = new Error(message);
            error.status = response.status;
            throw error;
          }
          return data;
        });
      });
  }

  function when(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return '';
    function two(n) { return (n < 10 ? '0' : '') + n; }
    return d.getFullYear() + '-' + two(d.getMonth() + 1) + '-' + two(d.getDate()) + ' ' + two(d.getHours()) + ':' +
      two(d.getMinutes());
  }

  window.onemapCommon = { cfg: cfg, el: el, call: call, showError: showError, when: when };
})();
