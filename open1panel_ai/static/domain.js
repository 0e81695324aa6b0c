/* DomainsPage: the bindings with their state, kept current by the "domain" Socket.IO topic,
   and the dialog. When no reverse proxy can apply changes (nginx stopped, say), a warning says
   why, what the panel checks of the proxy and which setting changes it, and "Bind a domain" is
   disabled with the reason; removing a binding and the config preview still work. The proxy
   in use may warn about how it is set up (Caddy's admin API within other users' reach): each
   warning is shown with what to do. */
(function () {
  "use strict";
  var AI = window.AI, t = AI.t;
  var table = document.getElementById("domain-bindings");
  var rows = table.querySelector("tbody");
  var empty = document.getElementById("domain-empty");
  var banner = document.getElementById("domain-banner");
  var proxyBox = document.getElementById("domain-proxy");
  var warningsBox = document.getElementById("domain-warnings");
  var newButton = document.getElementById("domain-new");
  var newReason = document.getElementById("domain-new-reason");

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function cell(text, cls) { return el("td", text, cls); }

  function render(bindings) {
    rows.textContent = "";
    empty.hidden = bindings.length > 0;
    table.hidden = bindings.length === 0;
    bindings.forEach(function (b) {
      var tr = document.createElement("tr");
      tr.dataset.binding = b.id;
      tr.dataset.state = b.state;
      tr.appendChild(cell(b.domains.join(", "), "domain-row-domains"));
      tr.appendChild(cell(t("domain.target." + b.target.kind) + ": " + b.target.name));
      tr.appendChild(cell(t("domain.tls." + b.tls.mode)));
      tr.appendChild(cell(t("domain.auth." + b.auth.mode)));
      var state = cell("");
      state.appendChild(el("span", t("domain.state." + b.state), "domain-row-state"));
      if (b.error) state.appendChild(el("div", AI.text(b.error, b.error_i18n), "domain-row-error"));
      tr.appendChild(state);
      var url = cell("");
      url.appendChild(el("code", b.url));
      tr.appendChild(url);
      var actions = cell("");
      var edit = el("button", t("domain.page.edit"));
      edit.type = "button";
      edit.addEventListener("click", function () { AI.openDomainDialog({ binding: b.id }); });
      actions.appendChild(edit);
      tr.appendChild(actions);
      rows.appendChild(tr);
    });
  }

  /* One proxy that was tried: why it cannot be used, the fix, and what the panel checks of it
     with the setting that changes each. */
  function candidate(proxy) {
    var box = el("div", null, "domain-proxy-candidate");
    box.dataset.provider = proxy.name;
    box.appendChild(el("p", t("domain.proxy.candidate", { name: proxy.name, reason: proxy.reason || "" }), "domain-proxy-reason"));
    if (proxy.fix) box.appendChild(el("p", t("domain.proxy.fix", { fix: proxy.fix }), "domain-proxy-fix"));
    if (proxy.settings.length) {
      box.appendChild(el("h3", t("domain.proxy.checks", { name: proxy.name })));
      var settings = el("table", null, "domain-proxy-settings");
      var head = el("tr");
      ["domain.proxy.what", "domain.proxy.value", "domain.proxy.setting"].forEach(function (key) {
        var th = el("th", t(key));
        th.scope = "col";
        head.appendChild(th);
      });
      settings.appendChild(el("thead")).appendChild(head);
      var body = settings.appendChild(el("tbody"));
      proxy.settings.forEach(function (item) {
        var tr = el("tr");
        tr.appendChild(el("td", item.label));
        tr.appendChild(el("td")).appendChild(el("code", item.value));
        tr.appendChild(el("td")).appendChild(el("code", item.setting));
        body.appendChild(tr);
      });
      box.appendChild(settings);
    }
    return box;
  }

  function showProxy(proxy) {
    var note = document.getElementById("domain-provider");
    var down = proxy.candidates.filter(function (c) { return !c.usable; });
    if (proxy.usable) note.textContent = t("domain.page.provider", { name: proxy.provider });
    else if (down.length === 1) note.textContent = t("domain.page.no_provider", { reason: down[0].reason || "" });
    else note.textContent = down.length ? t("domain.page.no_provider_any") : (proxy.reason || "");
    proxyBox.hidden = proxy.usable;
    newButton.disabled = !proxy.usable;
    newReason.hidden = proxy.usable;
    var list = proxyBox.querySelector(".domain-proxy-candidates");
    list.textContent = "";
    down.forEach(function (c) { list.appendChild(candidate(c)); });
    proxyBox.querySelector(".domain-proxy-checked").textContent = t("domain.proxy.checked", { time: AI.formatTime(new Date()) });
    showWarnings(proxy);
  }

  function showWarnings(proxy) {
    var warnings = proxy.warnings || [];
    warningsBox.textContent = "";
    warningsBox.hidden = warnings.length === 0;
    if (!warnings.length) return;
    warningsBox.appendChild(el("h2", t("domain.proxy.warnings", { name: proxy.provider })));
    warnings.forEach(function (item) {
      var box = el("div", null, "domain-warning");
      box.appendChild(el("p", item.warning, "domain-warning-text"));
      if (item.fix) box.appendChild(el("p", t("domain.proxy.fix", { fix: item.fix }), "domain-warning-fix"));
      warningsBox.appendChild(box);
    });
  }

  function fail(error) {
    if (error.code === "network_error") return;  // the connection banner says so
    banner.hidden = false;
    banner.textContent = error.message;
  }

  function loadProxy() {
    return AI.api("/domains/proxy").then(showProxy, fail);
  }

  function loadBindings() {
    return AI.api("/domains").then(function (data) {
      // Bindings removed while the proxy was down, which it has still to take out.
      var pending = data.removals.map(function (r) { return r.domains.join(", ") + ": " + AI.text(r.note, r.note_i18n); });
      banner.hidden = pending.length === 0;
      banner.textContent = pending.join(" ");
      render(data.bindings);
    }, fail);
  }

  function load() {
    banner.hidden = true;
    loadBindings();
    return loadProxy();
  }

  newButton.addEventListener("click", function () { AI.openDomainDialog({}); });
  document.getElementById("domain-recheck").addEventListener("click", function (ev) {
    AI.busy(ev.target, load());
  });
  window.addEventListener("domain-binding-changed", load);
  // A binding created, changed or removed elsewhere (another tab, the API, a target that
  // changed): the event names it only, so read the list again, once for a burst of events.
  var pushed = null;
  AI.live("domain", "domain", function () {
    clearTimeout(pushed);
    pushed = setTimeout(function () { pushed = null; loadBindings(); }, 150);
  }, loadBindings);  // and once subscribed: a change before then was pushed to nobody
  // Back from a dropped connection: the proxy's state too (the bindings come with the
  // subscription), so no error of the drop stays.
  AI.connection(function (connected, cameBack) { if (cameBack) loadProxy(); });
  load();
})();
