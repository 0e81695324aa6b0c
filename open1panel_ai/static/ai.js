/* Shared helpers of the AI pages: translation, API calls with CSRF, the /ai Socket.IO link. */
(function () {
  "use strict";
  var catalogNode = document.getElementById("ai-catalog");
  var catalog = catalogNode ? JSON.parse(catalogNode.textContent) : {};
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');

  function t(key, params) {
    var text = Object.prototype.hasOwnProperty.call(catalog, key) ? catalog[key] : key;
    Object.keys(params || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(params[name]));
    });
    return text;
  }

  /* Calls the API; resolves with the JSON body, rejects with the error envelope's error. */
  function api(path, options) {
    options = options || {};
    var headers = { "Accept": "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (csrfMeta && csrfMeta.content) headers["X-CSRF-Token"] = csrfMeta.content;
    return fetch("/api/v2/ai" + path, {
      method: options.method || "GET",
      headers: headers,
      credentials: "same-origin",
      body: options.body === undefined ? undefined : JSON.stringify(options.body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          throw (data && data.error) || { code: "http_" + response.status, message: response.statusText };
        }
        return data;
      });
    });
  }

  /* The /ai Socket.IO link (one per page), signed in by the browser session. It subscribes
     again to every topic after a reconnect. A handler is attached to its event only once,
     however many topics it is used for. */
  var socket = null;
  var topics = [];
  var handlers = [];
  function live(topic, event, handler) {
    if (!socket) {
      socket = window.io("/ai", { transports: ["websocket"] });  // no sticky sessions needed (docs/scaling.md)
      socket.on("connect", function () {
        topics.forEach(function (name) { socket.emit("subscribe", { topic: name }); });
      });
    }
    if (topics.indexOf(topic) < 0) {
      topics.push(topic);
      if (socket.connected) socket.emit("subscribe", { topic: topic });
    }
    var known = handlers.some(function (pair) { return pair[0] === event && pair[1] === handler; });
    if (!known) {
      handlers.push([event, handler]);
      socket.on(event, handler);
    }
    return socket;
  }

  function formatBytes(bytes) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
  }

  window.AI = { t: t, api: api, live: live, formatBytes: formatBytes };
})();
