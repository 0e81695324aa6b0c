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
  var whenSubscribed = {};
  function subscribe(topic) {
    socket.emit("subscribe", { topic: topic }, function (answer) {
      if (answer && answer.ok) (whenSubscribed[topic] || []).forEach(function (callback) { callback(); });
    });
  }
  function link() {
    if (!socket) {
      socket = window.io("/ai", { transports: ["websocket"] });  // no sticky sessions needed (docs/scaling.md)
      socket.on("connect", function () {
        topics.forEach(subscribe);
        setConnected(true);
      });
      socket.on("disconnect", function () { setConnected(false); });
      socket.on("connect_error", function () { setConnected(false); });
    }
    return socket;
  }

  /* Calls handler(data) for each `event` of `topic`. onSubscribed(), when given, runs each
     time the server confirms the subscription (at first, and after a reconnect): a change
     made between a page's first load and then was pushed to nobody, so the page loads again
     what it shows. */
  function live(topic, event, handler, onSubscribed) {
    link();
    if (onSubscribed) (whenSubscribed[topic] = whenSubscribed[topic] || []).push(onSubscribed);
    if (topics.indexOf(topic) < 0) {
      topics.push(topic);
      if (socket.connected) subscribe(topic);
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
    if (!dialog.open) {
      if (document.activeElement && !dialog.contains(document.activeElement)) dialog._aiOpener = document.activeElement;
      dialog.showModal();
    }
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

  /* ---- The design system's behaviour (static/ai.css has its look) ------------------------ */

  var script = document.currentScript;
  var spriteUrl = script ? script.src.replace(/ai\.js(\?.*)?$/, "vendor/tabler-icons/sprite.svg") : "";

  /* An <svg> showing icon `name` of the vendored Tabler sprite; decorative (aria-hidden)
     unless a `label` is given. */
  function icon(name, label) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "ai-icon");
    svg.setAttribute("data-icon-name", name);
    if (label) { svg.setAttribute("role", "img"); svg.setAttribute("aria-label", label); }
    else { svg.setAttribute("aria-hidden", "true"); svg.setAttribute("focusable", "false"); }
    var use = document.createElementNS(ns, "use");
    use.setAttribute("href", spriteUrl + "#ti-" + name);
    svg.appendChild(use);
    return svg;
  }

  /* Toasts: short results and errors in a corner, read out politely, gone after a while (an
     error stays longer). Inside an open modal dialog they join the dialog, so they stay above
     its backdrop. `message` may be an API error. Returns the toast element. */
  var TONE_ICONS = { ok: "circle-check", bad: "circle-x", warn: "alert-triangle", info: "info-circle" };
  function toast(message, options) {
    options = options || {};
    var tone = options.tone || (message && typeof message === "object" ? "bad" : "ok");
    var content = message && typeof message === "object" ? (message.message || String(message)) : String(message);
    var openModal = Array.prototype.filter.call(document.querySelectorAll("dialog[open]"), function (node) {
      return node.matches(":modal");
    }).pop();
    var host = openModal || document.body;
    var region = host.querySelector(":scope > .ai-toasts");
    if (!region) {
      region = document.createElement("div");
      region.className = "ai-toasts";
      region.setAttribute("aria-live", "polite");
      host.appendChild(region);
    }
    var item = document.createElement("div");
    item.className = "ai-toast";
    item.dataset.tone = tone;
    var words = document.createElement("span");
    words.className = "ai-toast-text";
    words.textContent = content;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "ai-quiet";
    close.setAttribute("aria-label", t("ai.toast.close"));
    close.appendChild(icon("x"));
    item.append(icon(TONE_ICONS[tone] || "info-circle"), words, close);
    function dismiss() { item.remove(); if (!region.children.length) region.remove(); }
    close.addEventListener("click", dismiss);
    region.appendChild(item);
    var wait = options.timeout === undefined ? (tone === "bad" ? 10000 : 5000) : options.timeout;
    if (wait) setTimeout(dismiss, wait);
    return item;
  }

  /* Copies `text` to the clipboard and says so in a toast; resolves true when it worked. */
  function copy(text) {
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      (document.querySelector("dialog[open]") || document.body).appendChild(area);
      area.select();
      var done = false;
      try { done = document.execCommand("copy"); } catch (e) { done = false; }
      area.remove();
      return done;
    }
    var attempt = navigator.clipboard && window.isSecureContext
      ? navigator.clipboard.writeText(text).then(function () { return true; }, fallback)
      : Promise.resolve(fallback());
    return attempt.then(function (done) {
      toast(t(done ? "ai.copied" : "ai.copy_failed"), { tone: done ? "ok" : "bad", timeout: done ? 2500 : undefined });
      return done;
    });
  }

  /* Tabs: a [role=tablist] of [role=tab] buttons, each aria-controls its [role=tabpanel].
     Arrow keys, Home and End move between tabs; onSelect(tab) runs after a change. */
  function tabs(list, onSelect) {
    var all = function () { return Array.prototype.slice.call(list.querySelectorAll('[role="tab"]')); };
    function select(tab, focus) {
      all().forEach(function (each) {
        var on = each === tab;
        each.setAttribute("aria-selected", on ? "true" : "false");
        each.tabIndex = on ? 0 : -1;
        var panel = document.getElementById(each.getAttribute("aria-controls"));
        if (panel) panel.hidden = !on;
      });
      if (focus) tab.focus();
      if (onSelect) onSelect(tab);
    }
    list.addEventListener("click", function (event) {
      var tab = event.target.closest('[role="tab"]');
      if (tab) select(tab, false);
    });
    list.addEventListener("keydown", function (event) {
      var items = all();
      var at = items.indexOf(document.activeElement);
      if (at < 0) return;
      var next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: items.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      select(items[(next + items.length) % items.length], true);
    });
    var current = all().filter(function (tab) { return tab.getAttribute("aria-selected") === "true"; })[0] || all()[0];
    if (current) select(current, false);
    return { select: select };
  }

  /* The theme in effect ("light" or "dark"): the one chosen with the toggle (html[data-theme],
     kept in localStorage by the layout) or else the system's. onTheme(listener) calls
     listener(theme) whenever it changes, so charts can redraw in its colours. */
  var THEME_KEY = "open1panel-ai.theme";
  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  var root = document.documentElement;
  if (!root.dataset.theme) {
    try {
      var kept = window.localStorage.getItem(THEME_KEY);
      if (kept === "dark" || kept === "light") root.dataset.theme = kept;
    } catch (e) { /* storage refused: the system's theme */ }
  }
  function theme() { return root.dataset.theme || (darkQuery && darkQuery.matches ? "dark" : "light"); }
  var themeListeners = [];
  var shownTheme = theme();
  function themeChanged() {
    var now = theme();
    root.dataset.themeEffective = now;
    if (now === shownTheme) return;
    shownTheme = now;
    themeListeners.forEach(function (listener) { listener(now); });
  }
  root.dataset.themeEffective = shownTheme;
  new MutationObserver(themeChanged).observe(root, { attributes: true, attributeFilter: ["data-theme"] });
  if (darkQuery && darkQuery.addEventListener) darkQuery.addEventListener("change", themeChanged);
  function onTheme(listener) { themeListeners.push(listener); }
  /* Chooses the theme ("light", "dark", or null for the system's) and keeps the choice: in
     localStorage, and in a cookie the layout reads to paint the next page in it at once. */
  function setTheme(value) {
    try {
      if (value) window.localStorage.setItem(THEME_KEY, value);
      else window.localStorage.removeItem(THEME_KEY);
    } catch (e) { /* kept for this page only */ }
    document.cookie = "open1panel-ai-theme=" + (value || "") + "; path=/; SameSite=Lax; max-age=" + (value ? 31536000 : 0);
    if (value) root.dataset.theme = value; else delete root.dataset.theme;
  }
  /* The layout's theme toggle (a pressed button means dark). */
  function wireThemeToggle() {
    var toggle = document.getElementById("ai-theme-toggle");
    if (!toggle || toggle.dataset.wired) return;
    toggle.dataset.wired = "yes";
    var show = function () { toggle.setAttribute("aria-pressed", theme() === "dark" ? "true" : "false"); };
    toggle.addEventListener("click", function () { setTheme(theme() === "dark" ? "light" : "dark"); show(); });
    onTheme(show);
    show();
    toggle.hidden = false;
  }

  /* Gives `scope` (a page part just built, or the document) the design system's behaviour:
     icons on [data-icon] elements, a scrolling card around each table, a copy button on
     pre[data-copy] code blocks. Runs on the document at start and on what scripts add later. */
  function enhance(scope) {
    scope = scope || document;
    if (scope.nodeType !== 1 && scope.nodeType !== 9) return;
    var pick = function (selector) {
      var found = Array.prototype.slice.call(scope.querySelectorAll(selector));
      if (scope.matches && scope.matches(selector)) found.unshift(scope);
      return found;
    };
    pick("[data-icon]").forEach(function (node) {
      if (node.querySelector(":scope > .ai-icon")) return;
      node.insertBefore(icon(node.dataset.icon), node.firstChild);
    });
    pick("table").forEach(function (table) {
      if (table.closest(".ai-table-wrap, .ai-plain, .u-legend") || !table.closest(".ai-page, dialog, .ai-enhance")) return;
      var wrap = document.createElement("div");
      wrap.className = "ai-table-wrap";
      table.parentNode.insertBefore(wrap, table);
      wrap.appendChild(table);
      // A table wider than its card scrolls in it; keyboard users scroll it once it has focus.
      var label = table.getAttribute("aria-label") || (table.closest("[aria-labelledby]") &&
        (document.getElementById(table.closest("[aria-labelledby]").getAttribute("aria-labelledby")) || {}).textContent);
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", (label || t("ai.table")).trim());
      wrap.tabIndex = 0;
    });
    pick("pre[data-copy]").forEach(function (pre) {
      if (pre.parentNode.classList.contains("ai-code-box")) return;
      var box = document.createElement("div");
      box.className = "ai-code-box";
      pre.parentNode.insertBefore(box, pre);
      box.appendChild(pre);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "ai-copy";
      button.append(icon("copy"), document.createTextNode(t("ai.copy")));
      button.addEventListener("click", function () { copy(pre.textContent); });
      box.appendChild(button);
    });
  }
  function enhanceDocument() {
    wireThemeToggle();
    enhance(document);
    new MutationObserver(function (changes) {
      changes.forEach(function (change) {
        Array.prototype.forEach.call(change.addedNodes, function (node) { if (node.nodeType === 1) enhance(node); });
      });
    }).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", enhanceDocument);
  else enhanceDocument();

  /* A busy control (aria-busy, see busy) ignores clicks and does not submit its form, even
     where a page script turned it back on too early. */
  document.addEventListener("click", function (event) {
    var target = event.target.closest && event.target.closest('[aria-busy="true"]');
    if (target && (target.tagName === "BUTTON" || target.classList.contains("ai-button"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
  document.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    if ((submitter && submitter.getAttribute("aria-busy") === "true") || event.target.getAttribute("aria-busy") === "true") {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  /* Dialogs give focus back to what opened them when they close (Esc, a close button, or a
     script), wherever they were opened from. */
  var lastOutside = null;
  document.addEventListener("focusin", function (event) {
    if (!event.target.closest || !event.target.closest("dialog")) lastOutside = event.target;
  }, true);
  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (!dialog || dialog.tagName !== "DIALOG") return;
    var opener = dialog._aiOpener || lastOutside;
    dialog._aiOpener = null;
    setTimeout(function () {
      var active = document.activeElement;
      if (opener && opener.isConnected && !opener.disabled && (!active || active === document.body || dialog.contains(active))) {
        opener.focus();
      }
    }, 0);
  }, true);

  window.AI = {
    t: t, text: text, lang: lang, api: api, live: live, connection: connection,
    formatBytes: formatBytes, formatTime: formatTime, formatDateTime: formatDateTime,
    busy: busy, openDialog: openDialog, showError: showError, clearErrors: clearErrors,
    icon: icon, toast: toast, copy: copy, tabs: tabs, enhance: enhance,
    theme: theme, onTheme: onTheme, setTheme: setTheme
  };

  /* The alerts bell (static/alerts-bell.js) on every page, where the alerts feature is installed. */
  if (known("alerts.bell.title") && document.currentScript) {
    var bellScript = document.createElement("script");
    bellScript.src = document.currentScript.src.replace(/ai\.js(\?.*)?$/, "alerts-bell.js");
    document.head.appendChild(bellScript);
  }
})();
