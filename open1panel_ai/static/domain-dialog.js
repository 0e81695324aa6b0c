/* DomainConfigDialog: bind a domain to an Ollama endpoint or an MCP server, or change a binding.
   window.AI.openDomainDialog({kind: "ollama" | "mcp", target: "<endpoint name or server id>"})
   opens the binding of that target (or a new one); {binding: "<id>"} opens a binding by id, and
   {} asks for the target too. It shows the fields, a live preview of the config that will be
   written, the state and error, and the ready URL. Needs static/ai.js first. After a save or a
   delete it fires "domain-binding-changed" on window. */
(function () {
  "use strict";
  var AI = window.AI;
  var t = AI.t;
  var script = document.currentScript;

  (function loadStyles() {
    if (document.getElementById("domain-dialog-css") || !script) return;
    var link = document.createElement("link");
    link.id = "domain-dialog-css";
    link.rel = "stylesheet";
    link.href = script.src.replace(/domain-dialog\.js(\?.*)?$/, "domain-dialog.css");
    document.head.appendChild(link);
  })();

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (name === "text") node.textContent = value;
      else if (name === "on") Object.keys(value).forEach(function (ev) { node.addEventListener(ev, value[ev]); });
      else if (value === true) node.setAttribute(name, "");
      else if (value !== false && value !== null && value !== undefined) node.setAttribute(name, value);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function field(name, label, input, hint) {
    input.name = name;
    input.id = "domain-field-" + name.replace(/\./g, "-");
    return el("div", { "class": "domain-field", "data-field": name }, [
      el("label", { "for": input.id, text: label }), input,
      hint ? el("small", { "class": "muted", text: hint }) : null,
      el("span", { "class": "domain-field-error", role: "alert" })
    ]);
  }

  function select(options, value) {
    var node = el("select");
    options.forEach(function (option) {
      node.appendChild(el("option", { value: option[0], text: option[1], selected: option[0] === value }));
    });
    return node;
  }

  function lines(text) {
    return text.split(/[\n,]+/).map(function (s) { return s.trim(); }).filter(Boolean);
  }

  /* Field errors by dotted name ("tls.key"); an item of a list counts for the list. */
  function flatErrors(fields, prefix, out) {
    Object.keys(fields || {}).forEach(function (key) {
      var value = fields[key], item = /^\d+$/.test(key) && prefix;
      var name = item ? prefix : (prefix ? prefix + "." + key : key);
      if (Array.isArray(value)) out[name] = (out[name] || []).concat(value.filter(function (v) { return typeof v === "string"; }));
      else if (value && typeof value === "object") flatErrors(value, name, out);
    });
    return out;
  }

  function copy(text, button) {
    function done() { button.textContent = t("domain.dialog.copied"); }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, done);
    } else {
      var area = el("textarea", { readonly: true });
      area.value = text;
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); } catch (e) { /* the text stays selectable */ }
      area.remove();
      done();
    }
  }

  function open(options) {
    options = options || {};
    var existing = document.getElementById("domain-dialog");
    if (existing) existing.remove();
    var binding = null;
    var previewTimer = null;

    var targetKind = select([["ollama", t("domain.target.ollama")], ["mcp", t("domain.target.mcp")]], options.kind || "ollama");
    var targetName = select([], null);
    var domains = el("textarea", { rows: "2", placeholder: "ai.example.com", spellcheck: "false" });
    var tlsMode = select([["none", t("domain.tls.none")], ["existing", t("domain.tls.existing")], ["acme", t("domain.tls.acme")]], "none");
    var certificate = el("input", { type: "text", placeholder: "/etc/ssl/certs/ai.example.com.pem", spellcheck: "false" });
    var key = el("input", { type: "text", placeholder: "/etc/ssl/private/ai.example.com.key", spellcheck: "false" });
    var forceHttps = el("input", { type: "checkbox", checked: true });
    var allowlist = el("textarea", { rows: "2", placeholder: "203.0.113.7\n10.0.0.0/8", spellcheck: "false" });
    var authMode = select([["bearer", t("domain.auth.bearer")], ["basic", t("domain.auth.basic")], ["none", t("domain.auth.none")]], "bearer");
    var username = el("input", { type: "text", autocomplete: "off" });
    var password = el("input", { type: "password", autocomplete: "new-password" });
    var authMcpNote = el("p", { "class": "muted domain-auth-mcp", hidden: true, text: t("domain.dialog.auth_mcp") });

    var stateBadge = el("span", { "class": "domain-state", "data-state": "new", text: t("domain.state.new") });
    var proxyDown = el("p", { "class": "domain-proxy-down", role: "alert", hidden: true });
    var errorBox = el("p", { "class": "domain-error", role: "alert", hidden: true });
    var urlText = el("code", { "class": "domain-url" });
    var copyUrl = el("button", { type: "button", "class": "domain-copy-url", text: t("domain.dialog.copy") });
    var tokenBox = el("div", { "class": "domain-token", hidden: true });
    var preview = el("pre", { "class": "domain-preview", "aria-live": "polite" });
    var previewNote = el("p", { "class": "muted domain-preview-note" });
    var formError = el("p", { "class": "domain-form-error", role: "alert", hidden: true });
    var save = el("button", { type: "submit", "class": "primary", text: t("domain.dialog.save") });
    var rotate = el("button", { type: "button", "class": "domain-rotate", hidden: true, text: t("domain.dialog.rotate") });
    var remove = el("button", { type: "button", "class": "domain-delete danger", hidden: true, text: t("domain.dialog.delete") });
    var close = el("button", { type: "button", "class": "domain-close", text: t("domain.dialog.close") });

    var tlsFiles = el("div", { "class": "domain-tls-files" }, [
      field("tls.certificate", t("domain.field.certificate"), certificate),
      field("tls.key", t("domain.field.key"), key)]);
    var basicFields = el("div", { "class": "domain-basic" }, [
      field("auth.username", t("domain.field.username"), username),
      field("auth.password", t("domain.field.password"), password, t("domain.field.password_hint"))]);

    var form = el("form", { method: "dialog", novalidate: true }, [
      el("div", { "class": "domain-head" }, [el("h2", { text: t("domain.dialog.title") }), stateBadge]),
      proxyDown,
      errorBox,
      el("div", { "class": "domain-grid" }, [
        el("div", { "class": "domain-fields" }, [
          el("fieldset", {}, [el("legend", { text: t("domain.dialog.target") }),
            field("target.kind", t("domain.field.kind"), targetKind),
            field("target.name", t("domain.field.target"), targetName)]),
          field("domains", t("domain.field.domains"), domains, t("domain.field.domains_hint")),
          el("fieldset", {}, [el("legend", { text: t("domain.dialog.tls") }),
            field("tls.mode", t("domain.field.tls_mode"), tlsMode), tlsFiles,
            el("label", { "class": "domain-check" }, [forceHttps, document.createTextNode(" " + t("domain.field.force_https"))])]),
          field("allowlist", t("domain.field.allowlist"), allowlist, t("domain.field.allowlist_hint")),
          el("fieldset", {}, [el("legend", { text: t("domain.dialog.auth") }),
            field("auth.mode", t("domain.field.auth_mode"), authMode), authMcpNote, basicFields])
        ]),
        el("div", { "class": "domain-side" }, [
          el("h3", { text: t("domain.dialog.url") }), el("p", {}, [urlText, document.createTextNode(" "), copyUrl]),
          tokenBox,
          el("h3", { text: t("domain.dialog.preview") }), previewNote, preview
        ])
      ]),
      formError,
      el("div", { "class": "domain-actions" }, [save, rotate, remove, close])
    ]);
    var dialog = el("dialog", { id: "domain-dialog", "class": "domain-dialog", "aria-labelledby": "domain-dialog-title" }, [form]);
    form.querySelector("h2").id = "domain-dialog-title";
    document.body.appendChild(dialog);

    function body() {
      var data = {
        domains: lines(domains.value),
        target: { kind: targetKind.value, name: targetName.value },
        tls: { mode: tlsMode.value, force_https: forceHttps.checked },
        allowlist: lines(allowlist.value),
        auth: { mode: authMode.value }
      };
      if (tlsMode.value === "existing") { data.tls.certificate = certificate.value.trim(); data.tls.key = key.value.trim(); }
      if (authMode.value === "basic") {
        data.auth.username = username.value.trim();
        if (password.value) data.auth.password = password.value;
      }
      return data;
    }

    function showModes() {
      tlsFiles.hidden = tlsMode.value !== "existing";
      forceHttps.parentNode.hidden = tlsMode.value === "none";
      // An MCP bridge checks its own bearer token in the Authorization header, so the proxy
      // cannot ask for another one there: MCP targets take no auth at the proxy.
      var mcp = targetKind.value === "mcp";
      Array.prototype.forEach.call(authMode.options, function (option) {
        option.disabled = option.hidden = mcp && option.value !== "none";
      });
      if (mcp) authMode.value = "none";
      authMcpNote.hidden = !mcp;
      basicFields.hidden = authMode.value !== "basic";
    }

    function clearErrors() {
      form.querySelectorAll(".domain-field-error").forEach(function (node) { node.textContent = ""; });
      formError.hidden = true;
    }

    /* The error's message under the form; a validation error's field messages beside their
       fields, and the form's message naming those fields by their labels. */
    function showError(error) {
      clearErrors();
      var fields = flatErrors(error.details && error.details.fields, "", {});
      var labels = [];
      Object.keys(fields).forEach(function (name) {
        var box = form.querySelector('[data-field="' + name + '"]') ||
                  form.querySelector('[data-field="' + name.split(".")[0] + '"]');
        if (!box) return;
        box.querySelector(".domain-field-error").textContent = fields[name].join(" ");
        var label = box.querySelector("label").textContent;
        if (labels.indexOf(label) < 0) labels.push(label);
      });
      formError.textContent = labels.length
        ? t("ai.error.fields", { fields: labels.join(AI.lang === "en" ? ", " : "、") })
        : (error.message || String(error));
      formError.hidden = false;
      return labels.length > 0;
    }

    function showBinding(data, token) {
      binding = data;
      stateBadge.dataset.state = data.state;
      stateBadge.textContent = t("domain.state." + data.state);
      errorBox.hidden = !data.error;
      errorBox.textContent = data.error ? t("domain.dialog.error", { error: AI.text(data.error, data.error_i18n) }) : "";
      urlText.textContent = data.url;
      rotate.hidden = data.auth.mode !== "bearer";
      remove.hidden = false;
      if (token) {
        tokenBox.hidden = false;
        tokenBox.textContent = "";
        var value = el("code", { "class": "domain-token-value", text: token });
        tokenBox.appendChild(el("p", { text: t("domain.dialog.token_once") }));
        tokenBox.appendChild(el("p", {}, [value, document.createTextNode(" "),
          el("button", { type: "button", text: t("domain.dialog.copy"), on: { click: function (ev) { copy(token, ev.target); } } })]));
      }
    }

    function fill(data) {
      targetKind.value = data.target.kind;
      domains.value = data.domains.join("\n");
      tlsMode.value = data.tls.mode;
      certificate.value = data.tls.certificate || "";
      key.value = data.tls.key || "";
      forceHttps.checked = data.tls.force_https;
      allowlist.value = data.allowlist.join("\n");
      authMode.value = data.auth.mode;
      username.value = data.auth.username || "";
      password.placeholder = data.auth.mode === "basic" ? t("domain.field.password_keep") : "";
      return loadTargets(data.target.name).then(function () { showModes(); showBinding(data); });
    }

    function loadTargets(wanted) {
      var kind = targetKind.value;
      var request = kind === "ollama" ? AI.api("/ollama/endpoints") : AI.api("/mcp/servers");
      return request.then(function (data) {
        var items = kind === "ollama" ? (data.endpoints || []).map(function (e) { return [e.name, e.name + " — " + e.url]; })
                                      : (data.servers || []).map(function (s) { return [s.id, s.name]; });
        if (wanted && !items.some(function (i) { return i[0] === wanted; })) items.unshift([wanted, wanted]);
        targetName.textContent = "";
        items.forEach(function (item) { targetName.appendChild(el("option", { value: item[0], text: item[1] })); });
        if (wanted) targetName.value = wanted;
      }, function () {
        targetName.textContent = "";
        if (wanted) targetName.appendChild(el("option", { value: wanted, text: wanted }));
      });
    }

    function refreshPreview() {
      clearTimeout(previewTimer);
      previewTimer = setTimeout(function () {
        var data = body();
        if (!data.domains.length || !data.target.name) {
          previewNote.textContent = t("domain.dialog.preview_needs");
          preview.textContent = "";
          return;
        }
        var path = binding ? "/domains/" + binding.id + "/preview" : "/domains/preview";
        AI.api(path, { method: "POST", body: data }).then(function (result) {
          previewNote.textContent = t("domain.dialog.preview_by", { provider: result.provider });
          preview.textContent = result.config;
          if (!binding) urlText.textContent = result.url;
          clearErrors();
        }, function (error) {
          previewNote.textContent = error.message || "";
          preview.textContent = "";
        });
      }, 250);
    }

    form.addEventListener("input", refreshPreview);
    form.addEventListener("change", function (ev) {
      if (ev.target === targetKind) loadTargets(null).then(refreshPreview);
      if (ev.target === targetKind && !binding) authMode.value = targetKind.value === "ollama" ? "bearer" : "none";
      showModes();
      refreshPreview();
    });
    copyUrl.addEventListener("click", function () { copy(urlText.textContent, copyUrl); });
    close.addEventListener("click", function () { dialog.close(); dialog.remove(); });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      save.disabled = true;
      var request = binding ? AI.api("/domains/" + binding.id, { method: "PUT", body: body() })
                            : AI.api("/domains", { method: "POST", body: body() });
      request.then(function (data) {
        clearErrors();
        password.value = "";
        showBinding(data, data.token);
        window.dispatchEvent(new CustomEvent("domain-binding-changed", { detail: data }));
        refreshPreview();
      }, function (error) {
        // Saved, but the proxy did not take it: the binding as saved, in error, and why.
        var saved = error.details && error.details.binding;
        if (saved) {
          password.value = "";
          showBinding(saved, saved.token);
          window.dispatchEvent(new CustomEvent("domain-binding-changed", { detail: saved }));
        }
        showError(error);
      }).then(function () { save.disabled = !proxyDown.hidden; });
    });
    rotate.addEventListener("click", function () {
      AI.api("/domains/" + binding.id + "/token", { method: "POST" }).then(function (data) {
        clearErrors();
        showBinding(data, data.token);
      }, function (error) {
        // Not rotated: the error says whether the old token still works, and why.
        if (error.details && error.details.binding) showBinding(error.details.binding);
        showError(error);
      });
    });
    remove.addEventListener("click", function () {
      if (!window.confirm(t("domain.dialog.delete_confirm", { domain: binding.domains[0] }))) return;
      AI.api("/domains/" + binding.id, { method: "DELETE" }).then(function () {
        window.dispatchEvent(new CustomEvent("domain-binding-changed", { detail: { id: binding.id, deleted: true } }));
        dialog.close();
        dialog.remove();
      }, showError);
    });

    dialog.showModal();
    // A proxy that cannot apply changes: say so at the top, and Save waits until it can.
    AI.api("/domains/proxy").then(function (proxy) {
      proxyDown.hidden = proxy.usable;
      proxyDown.textContent = proxy.usable ? "" : t("domain.dialog.proxy_down", { reason: proxy.reason || "" });
      save.disabled = !proxy.usable;
      save.title = proxy.usable ? "" : proxyDown.textContent;
    }, function () { /* the save itself says what is wrong */ });
    var ready;
    if (options.binding) {
      ready = AI.api("/domains/" + encodeURIComponent(options.binding)).then(fill);
    } else if (options.target) {
      ready = AI.api("/domains").then(function (data) {
        var found = data.bindings.filter(function (b) {
          return b.target.kind === options.kind && b.target.name === options.target;
        })[0];
        if (found) return fill(found);
        authMode.value = options.kind === "mcp" ? "none" : "bearer";
        targetKind.disabled = true;
        return loadTargets(options.target).then(function () { targetName.disabled = true; showModes(); });
      });
    } else {
      ready = loadTargets(null).then(showModes);
    }
    ready.then(refreshPreview, showError);
    return dialog;
  }

  AI.openDomainDialog = open;
})();
