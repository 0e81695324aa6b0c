/* DomainsPage: the bindings with their state, live after each change, and the dialog. */
(function () {
  "use strict";
  var AI = window.AI, t = AI.t;
  var table = document.getElementById("domain-bindings");
  var rows = table.querySelector("tbody");
  var empty = document.getElementById("domain-empty");
  var banner = document.getElementById("domain-banner");

  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

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
      var badge = document.createElement("span");
      badge.className = "domain-row-state";
      badge.textContent = t("domain.state." + b.state);
      state.appendChild(badge);
      if (b.error) {
        var error = document.createElement("div");
        error.className = "domain-row-error";
        error.textContent = b.error;
        state.appendChild(error);
      }
      tr.appendChild(state);
      var url = cell("");
      var code = document.createElement("code");
      code.textContent = b.url;
      url.appendChild(code);
      tr.appendChild(url);
      var actions = cell("");
      var edit = document.createElement("button");
      edit.type = "button";
      edit.textContent = t("domain.page.edit");
      edit.addEventListener("click", function () { AI.openDomainDialog({ binding: b.id }); });
      actions.appendChild(edit);
      tr.appendChild(actions);
      rows.appendChild(tr);
    });
  }

  function load() {
    AI.api("/domains").then(function (data) {
      // Bindings removed while the proxy was down, which it has still to take out.
      var pending = data.removals.map(function (r) { return r.domains.join(", ") + ": " + r.note; });
      banner.hidden = pending.length === 0;
      banner.textContent = pending.join(" ");
      render(data.bindings);
    }, function (error) {
      banner.hidden = false;
      banner.textContent = error.message;
    });
    AI.api("/status").then(function (data) {
      var domain = data.providers.filter(function (p) { return p.kind === "domain"; })[0];
      var note = document.getElementById("domain-provider");
      note.textContent = domain && domain.usable ? t("domain.page.provider", { name: domain.provider })
                                                 : t("domain.page.no_provider", { reason: (domain && domain.reason) || "" });
    });
  }

  document.getElementById("domain-new").addEventListener("click", function () { AI.openDomainDialog({}); });
  window.addEventListener("domain-binding-changed", load);
  load();
})();
