/* Shared helpers of the AI pages: translation, times, API calls with CSRF, the /ai Socket.IO
   link and the connection banner, busy buttons, dialogs that open clean, and field errors. */
(function () {
  "use strict";
  var catalogNode = document.getElementById("ai-catalog");
  var catalog = catalogNode ? JSON.parse(catalogNode.textContent) : {};
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var lang = document.documentElement.lang || "en";
  var plurals = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;

  function known(key) { return Object.prototype.hasOwnProperty.call(catalog, key); }

  /* The text of `key` with {name} placeholders filled from `params`. With a numeric
     params.count, a key written as key.one / key.other picks the plural form of the page's
     language. An unknown key is shown as itself, so a gap is visible rather than blank. */
  function t(key, params) {
    params = params || {};
    var text = key;
    if (known(key)) {
      text = catalog[key];
    } else if (typeof params.count === "number") {
      var form = key + "." + (plurals ? plurals.select(params.count) : (params.count === 1 ? "one" : "other"));
      if (known(form)) text = catalog[form];
      else if (known(key + ".other")) text = catalog[key + ".other"];
    }
    Object.keys(params).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(params[name]));
    });
    return text;
  }

  /* A message the server composed: its translation when the server sent its key (i18n is
     {key, params}) and the catalog has it, else the text as the server wrote it. */
  function text(message, i18n) {
    if (i18n && i18n.key && (known(i18n.key) || known(i18n.key + ".other"))) return t(i18n.key, i18n.params);
    return message || "";
  }

  function toDate(value) { return value instanceof Date ? value : new Date(value); }
  var timeFormat = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: lang === "en" ? "h12" : "h23" };
  /* A time of day in the page's language (24-hour in Chinese). */
  function formatTime(value) { return toDate(value).toLocaleTimeString(lang, timeFormat); }
  function formatDateTime(value) {
    return toDate(value).toLocaleString(lang, Object.assign({ year: "numeric", month: "2-digit", day: "2-digit" }, timeFormat));
  }

  /* Calls the API; resolves with the JSON body, rejects with the error envelope's error
     (its message already in the page's language). A request that never got an answer
     rejects with code "network_error". */
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
          throw (data && data.error) || { code: "http_" + response.status, message: response.statusText, details: {} };
        }
        return data;
      });
    }, function () {
      throw { code: "network_error", message: t("ai.error.network"), details: {} };
    });
  }

  /* The connection banner, shown on every page while the /ai link is down. */
  var banner = document.createElement("div");
  banner.id = "ai-connection";
  banner.className = "ai-connection";
  banner.setAttribute("role", "status");
  banner.hidden = true;
  banner.textContent = t("ai.connection.lost");
  document.addEventListener("DOMContentLoaded", function () {
    var main = document.querySelector("main") || document.body;
    main.insertBefore(banner, main.firstChild);
  });
  if (document.readyState !== "loading") (document.querySelector("main") || document.body).prepend(banner);

  var connectionListeners = [];
  var connected = null;
  function setConnected(state) {
    if (connected === state) return;
    var wasDown = connected === false;
    connected = state;
    banner.hidden = state;
    document.documentElement.dataset.connection = state ? "up" : "down";
    connectionListeners.forEach(function (listener) { listener(state, wasDown); });
  }

  /* The /ai Socket.IO link (one per page), signed in by the browser session. It subscribes
     again to every topic after a reconnect. A handler is attached to its event only once,
     however many topics it is used for. */
  var socket = null;
  var topics = [];
  var handlers = [];
  function link() {
    if (!socket) {
      socket = window.io("/ai", { transports: ["websocket"] });  // no sticky sessions needed (docs/scaling.md)
      socket.on("connect", function () {
        topics.forEach(function (name) { socket.emit("subscribe", { topic: name }); });
        setConnected(true);
      });
      socket.on("disconnect", function () { setConnected(false); });
      socket.on("connect_error", function () { setConnected(false); });
    }
    return socket;
  }

  function live(topic, event, handler) {
    link();
    if (topics.indexOf(topic) < 0) {
      topics.push(topic);
      if (socket.connected) socket.emit("subscribe", { topic: topic });
    }
    var seen = handlers.some(function (pair) { return pair[0] === event && pair[1] === handler; });
    if (!seen) {
      handlers.push([event, handler]);
      socket.on(event, handler);
    }
    return socket;
  }

  /* Calls onChange(connected, cameBack) whenever the /ai link connects or drops; cameBack is
     true on a reconnect after a drop, when a page refreshes what it shows and clears errors
     that the drop caused. */
  function connection(onChange) {
    link();
    connectionListeners.push(onChange);
    if (connected !== null) onChange(connected, false);
  }

  /* Keeps `button` disabled (and aria-busy) until `promise` settles, so a second click cannot
     send the same request again. Returns the promise. */
  function busy(button, promise) {
    if (!button) return promise;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    function done() { button.disabled = false; button.removeAttribute("aria-busy"); }
    promise.then(done, done);
    return promise;
  }

  function clearErrors(form) {
    if (!form) return;
    form.querySelectorAll(".ai-field-error").forEach(function (node) { node.remove(); });
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (node) { node.removeAttribute("aria-invalid"); });
    form.querySelectorAll("[data-form-error]").forEach(function (node) { node.textContent = ""; node.hidden = true; });
  }

  /* Opens a <dialog> clean: its forms reset, what [data-reset] marks emptied (and hidden
     where data-reset="hide"), no field errors left from the last time. */
  function openDialog(dialog) {
    dialog.querySelectorAll("form").forEach(function (form) { form.reset(); clearErrors(form); });
    dialog.querySelectorAll("[data-reset]").forEach(function (node) {
      if (node.tagName === "PROGRESS") node.value = 0;
      else node.textContent = "";
      if (node.dataset.reset === "hide") node.hidden = true;
    });
    if (!dialog.open) dialog.showModal();
  }

  function fieldLabel(form, input) {
    var label = input.id ? form.querySelector('label[for="' + input.id + '"]') : null;
    label = label || input.closest("label");
    if (!label) return input.name;
    var own = Array.prototype.filter.call(label.childNodes, function (node) { return node.nodeType === 3; })
      .map(function (node) { return node.textContent.trim(); }).join(" ").trim();
    return own || label.textContent.trim() || input.name;
  }

  function flatten(fields, prefix, into) {
    Object.keys(fields || {}).forEach(function (name) {
      var value = fields[name];
      var path = prefix ? prefix + "." + name : name;
      if (Array.isArray(value)) into.push([path, value.join(" ")]);
      else if (value && typeof value === "object") flatten(value, path, into);
      else into.push([path, String(value)]);
    });
    return into;
  }

  /* Shows an API error on a form: the message in its [data-form-error] element and, for a
     validation error, each field's own message beside it, the form's message naming the
     fields by their labels. A field the form has no input for keeps its name. */
  function showError(form, error) {
    clearErrors(form);
    var message = (error && error.message) || String(error);
    var fields = error && error.details && error.details.fields;
    if (fields && typeof fields === "object") {
      var names = [];
      flatten(fields, "", []).forEach(function (pair) {
        // The field's own input, else the one of the nearest enclosing name (profile.read.0
        // is shown at the input named profile.read).
        var input = null;
        for (var parts = pair[0].split("."); !input && parts.length; parts.pop()) {
          input = form.querySelector('[name="' + parts.join(".") + '"]');
        }
        if (!input || pair[0] === "_schema") { names.push(pair[0] === "_schema" ? pair[1] : pair[0] + ": " + pair[1]); return; }
        input.setAttribute("aria-invalid", "true");
        var note = document.createElement("small");
        note.className = "ai-field-error";
        note.setAttribute("data-field", input.name);
        note.textContent = pair[1];
        input.insertAdjacentElement("afterend", note);
        var label = fieldLabel(form, input);
        if (names.indexOf(label) < 0) names.push(label);
      });
      if (names.length) message = t("ai.error.fields", { fields: names.join(lang === "en" ? ", " : "、") });
    }
    var box = form.querySelector("[data-form-error]");
    if (box) { box.textContent = message; box.hidden = false; }
    return message;
  }

  function formatBytes(bytes) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
  }

  window.AI = {
    t: t, text: text, lang: lang, api: api, live: live, connection: connection,
    formatBytes: formatBytes, formatTime: formatTime, formatDateTime: formatDateTime,
    busy: busy, openDialog: openDialog, showError: showError, clearErrors: clearErrors
  };

  /* The alerts bell (static/alerts-bell.js) on every page, where the alerts feature is installed. */
  if (known("alerts.bell.title") && document.currentScript) {
    var bellScript = document.createElement("script");
    bellScript.src = document.currentScript.src.replace(/ai\.js(\?.*)?$/, "alerts-bell.js");
    document.head.appendChild(bellScript);
  }
})();
