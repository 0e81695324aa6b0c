/* OllamaModelsPage: endpoints, models, downloads under way, running models, storage, and the
   pull (ModelDownloadDialog), import, load, copy, delete and details dialogs. Task progress
   arrives over Socket.IO on the "tasks" topic; running pulls and imports are read from
   GET /tasks when the page loads, so a reload keeps them in view. The endpoint watchers push
   "ollama" events (models added, removed or changed, in the panel or outside it, and the
   loaded models), which keep the tables current; the running table counts down to unload. */
(function () {
  "use strict";
  var AI = window.AI, t = AI.t;
  var page = document.getElementById("ollama-page");
  if (!page) return;
  var KINDS = ["ollama.pull", "ollama.import"];
  var ACTIVE = ["queued", "running"];
  var state = {
    endpoint: "local", models: [], frees: {}, ticket: 0,
    downloads: {},   // task id → the task, for the downloads strip
    followers: {},   // task id → function(task), the dialogs following a task
    latest: {}       // task id → the newest state seen of it
  };

  function $(selector, root) { return (root || document).querySelector(selector); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "on") Object.keys(attrs.on).forEach(function (ev) { node.addEventListener(ev, attrs.on[ev]); });
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }
  function q(path) { return path + (path.indexOf("?") < 0 ? "?" : "&") + "endpoint=" + encodeURIComponent(state.endpoint); }
  /* A model route of the API, with the model's name in the path one segment at a time. A
     segment that is empty, "." or ".." would make the browser climb out of /ollama/models/
     (to /mcp/servers/..., say), and percent-encoding its dots does not help: browsers read
     %2E as a dot. Such a name is refused here and no request is sent. Names come from the
     server, which flags the ones that are not valid (name_valid) so no action is offered. */
  function modelApi(name, suffix, options) {
    var segments = String(name).split("/");
    if (segments.some(function (s) { return s === "" || s === "." || s === ".."; })) {
      return Promise.reject({ code: "invalid_model_name", message: t("ollama.models.invalid_name"), details: {} });
    }
    return AI.api(q("/ollama/models/" + segments.map(encodeURIComponent).join("/") + (suffix || "")), options);
  }
  function usable(model) { return model.name_valid !== false; }
  function invalidName() { return el("span", { "class": "ollama-invalid-name", text: t("ollama.models.invalid_name") }); }
  function errorText(error) {
    if (!error) return "";
    var text = AI.text(error.message || String(error), error.i18n);
    var details = error.details || {};
    var fix = details.fix ? AI.text(details.fix, details.fix_i18n) : "";
    return fix ? text + " " + fix : text;
  }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    seconds = Math.round(seconds);
    if (seconds < 60) return t("ollama.duration.seconds", { s: seconds });
    if (seconds < 3600) return t("ollama.duration.minutes", { m: Math.floor(seconds / 60), s: seconds % 60 });
    return t("ollama.duration.hours", { h: Math.floor(seconds / 3600), m: Math.floor((seconds % 3600) / 60) });
  }
  function when(text) {
    if (!text) return "";
    var date = new Date(text);
    if (date.getFullYear() > 2200) return t("ollama.running.forever");
    return date.toDateString() === new Date().toDateString() ? AI.formatTime(date) : AI.formatDateTime(date);
  }
  /* -- live state: the watchers' events, the countdown to unload ----------------------- */
  function clock(seconds) {
    seconds = Math.max(0, Math.ceil(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = (h && m < 10 ? "0" : "") + m, ss = (s < 10 ? "0" : "") + s;
    return h ? h + ":" + mm + ":" + ss : mm + ":" + ss;
  }
  /* The expiry cell of a loaded model: "Never" when kept, else a countdown from the seconds
     left when the state was read (by the panel's clock, so the browser's clock does not
     matter); at zero Ollama unloads it and the next poll takes the row away. */
  function tickExpiry(cell) {
    var deadline = Number(cell.getAttribute("data-deadline"));
    if (!deadline) return;
    var left = (deadline - Date.now()) / 1000;
    cell.textContent = left > 0 ? t("ollama.running.expires_in", { time: clock(left) }) : t("ollama.running.unloading");
    cell.setAttribute("data-seconds-left", String(Math.max(0, Math.ceil(left))));
  }
  function expiryCell(m, age) {
    var cell = el("td", { "class": "ollama-expires", title: t("ollama.running.countdown_hint") });
    var forever = m.expires_at && new Date(m.expires_at).getFullYear() > 2200;
    if (forever || m.expires_in === null || m.expires_in === undefined) {
      cell.textContent = when(m.expires_at);
      return cell;
    }
    cell.setAttribute("data-deadline", String(Date.now() + 1000 * (m.expires_in - (age || 0))));
    tickExpiry(cell);
    return cell;
  }
  setInterval(function () { document.querySelectorAll("#ollama-running td[data-deadline]").forEach(tickExpiry); }, 1000);

  function staleNote(data) {
    var note = $(".ollama-stale");
    note.hidden = !data || !data.stale;
    note.textContent = data && data.stale ? t("ollama.models.stale", { age: duration(data.age) }) + " " + errorText(data.error) : "";
  }
  function upsert(list, model) {
    var rest = list.filter(function (m) { return m.name !== model.name; });
    rest.push(model);
    return rest;
  }
  function onOllama(event) {
    if (!event || event.endpoint !== state.endpoint) return;
    if (event.type === "model_added" || event.type === "model_changed") {
      state.models = upsert(state.models, event.model);
      renderModels();
    } else if (event.type === "model_removed") {
      state.models = state.models.filter(function (m) { return m.name !== event.name; });
      renderModels();
    } else if (event.type === "running") {
      renderRunning(event.models, 0);
    } else if (event.type === "status") {
      if (event.reachable) { banner(null); refresh(); return; }
      state.models = [];
      renderModels();
      $(".ollama-empty").hidden = true;  // not "no models": they cannot be known now
      renderRunning([], 0);
      banner(event.error);
    }
    if (event.type === "model_added" || event.type === "model_removed") loadStorage(state.ticket);
  }
  AI.live("ollama", "ollama", onOllama, refresh);  // Ollama may have come back before the page subscribed

  function banner(error) {
    var node = $("#ollama-banner");
    node.hidden = !error;
    node.textContent = error ? errorText(error) : "";
  }
  /* A model name as Ollama compares it: no case, ":latest" when no tag is given. */
  function nameKey(name) {
    var text = String(name || "").trim().toLowerCase().replace(/^ollama\s+(run|pull)\s+/, "");
    var slash = text.lastIndexOf("/");
    if (text.indexOf(":", slash + 1) < 0) text += ":latest";
    return text.replace(/^registry\.ollama\.ai\//, "").replace(/^library\//, "");
  }
  function findModel(name) {
    var key = nameKey(name);
    return state.models.filter(function (m) { return nameKey(m.name) === key; })[0] || null;
  }
  /* A free name for a copy that keeps the tag: qwen2.5:0.5b → qwen2.5-copy:0.5b (-copy2, ...). */
  function copyName(name) {
    var slash = name.lastIndexOf("/"), colon = name.indexOf(":", slash + 1);
    var base = colon < 0 ? name : name.slice(0, colon), tag = colon < 0 ? "" : name.slice(colon);
    for (var n = 1; ; n += 1) {
      var candidate = base + "-copy" + (n > 1 ? n : "") + tag;
      if (!findModel(candidate)) return candidate;
    }
  }
  function closeButtons(dialog) {
    dialog.querySelectorAll("[data-action=close]").forEach(function (button) {
      button.addEventListener("click", function () { dialog.close(); });
    });
  }

  /* -- the connection: states are unknown while the panel cannot be reached --------------- */
  AI.connection(function (up, cameBack) {
    if (!up) {
      document.querySelectorAll("#ollama-endpoints .ai-badge, #ollama-downloads .ollama-task-state").forEach(function (node) {
        node.textContent = t("ai.state.unknown");
        node.setAttribute("data-unknown", "true");
      });
      return;
    }
    if (cameBack) {  // the models and the downloads come with the subscriptions
      banner(null);
      loadEndpoints();
    }
  });

  /* -- endpoints ------------------------------------------------------------------------ */
  function loadEndpoints() {
    return AI.api("/ollama/endpoints").then(function (data) {
      var body = $("#ollama-endpoints tbody"), select = $("#ollama-endpoint");
      body.textContent = "";
      select.textContent = "";
      data.endpoints.forEach(function (ep) {
        var stateCell = el("td", {}, [el("span", { "class": "ai-badge", text: ep.reachable
          ? t("ollama.endpoints.online", { version: ep.version }) : t("ollama.endpoints.offline") })]);
        if (ep.error) stateCell.appendChild(el("span", { "class": "muted", text: " " + errorText(ep.error) }));
        (ep.warnings || []).forEach(function (w) { stateCell.appendChild(el("span", { "class": "ollama-warning", text: w })); });
        var actions = el("td");
        if (typeof window.AI.openDomainDialog === "function") {
          actions.appendChild(el("button", { type: "button", "data-action": "domain", text: t("ollama.endpoints.domain"),
            on: { click: function () { window.AI.openDomainDialog({ kind: "ollama", target: ep.name }); } } }));
        }
        actions.appendChild(el("button", { type: "button", "data-action": "budget", text: t("ollama.budget.open"),
          on: { click: function () { openBudget(ep); } } }));
        if (!ep.builtin) {
          actions.appendChild(el("button", { type: "button", "data-action": "remove", text: t("ollama.endpoints.remove"),
            on: { click: function (event) {
              AI.busy(event.target, AI.api("/ollama/endpoints/" + encodeURIComponent(ep.name), { method: "DELETE" }))
                .then(function () {
                  if (state.endpoint === ep.name) { state.endpoint = "local"; refresh(); }
                  return loadEndpoints();
                }, banner);
            } } }));
        }
        body.appendChild(el("tr", { "data-endpoint": ep.name }, [el("td", { text: ep.name }), el("td", { text: ep.url }), stateCell, actions]));
        var option = el("option", { value: ep.name, text: ep.name });
        if (ep.name === state.endpoint) option.selected = true;
        select.appendChild(option);
      });
    }, banner);
  }
  $("#ollama-endpoint-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    AI.clearErrors(form);
    var request = AI.api("/ollama/endpoints", { method: "POST", body: {
      name: form.name.value.trim(), url: form.url.value.trim(), models_dir: form.models_dir.value.trim() || null } });
    AI.busy($("button[type=submit]", form), request)
      .then(function () { form.reset(); return loadEndpoints(); }, function (e) { AI.showError(form, e); });
  });
  $("#ollama-endpoint").addEventListener("change", function (event) { state.endpoint = event.target.value; refresh(); });

  /* -- models --------------------------------------------------------------------------- */
  function loadModels(ticket) {
    return AI.api(q("/ollama/models")).then(function (data) {
      if (ticket !== state.ticket) return;
      banner(null);
      staleNote(data);
      state.models = data.models;
      renderModels();
    }, function (error) {
      if (ticket !== state.ticket) return;
      staleNote(null);
      state.models = [];
      renderModels();
      $(".ollama-empty").hidden = true;  // the banner says why there is no list, not "no models"
      banner(error);
    });
  }
  function renderModels() {
    var body = $(".ollama-model-table tbody"), needle = $("#ollama-search").value.trim().toLowerCase();
    var sort = $("#ollama-sort").value;
    var models = state.models.filter(function (m) { return m.name.toLowerCase().indexOf(needle) >= 0; });
    models.sort(function (a, b) {
      if (sort === "size") return b.size - a.size;
      if (sort === "modified") return (b.modified_at || "").localeCompare(a.modified_at || "");
      return a.name.localeCompare(b.name);
    });
    body.textContent = "";
    models.forEach(function (m) {
      var details = m.details || {};
      var loaded = m.loaded ? t("ollama.models.loaded_state", {
        memory: AI.formatBytes(m.memory || 0),
        vram: m.memory ? Math.round(100 * (m.size_vram || 0) / m.memory) : 0 }) : "";
      var actions = !usable(m) ? el("td", {}, [invalidName()]) : el("td", {}, [
        el("a", { "data-action": "open", text: t("ollama.models.open"),
                  href: "/ai/ollama/model?endpoint=" + encodeURIComponent(state.endpoint) + "&name=" + encodeURIComponent(m.name) }),
        el("button", { type: "button", "data-action": "details", text: t("ollama.models.details"), on: { click: function () { showDetails(m); } } }),
        el("button", { type: "button", "data-action": "copy", text: t("ollama.models.copy"), on: { click: function () { openCopy(m); } } }),
        m.loaded
          ? el("button", { type: "button", "data-action": "unload", text: t("ollama.models.unload"), on: { click: function (event) { unload(m.name, event.target); } } })
          : el("button", { type: "button", "data-action": "load", text: t("ollama.models.load"), on: { click: function () { openLoad(m); } } }),
        el("button", { type: "button", "data-action": "delete", text: t("ollama.models.delete"), on: { click: function () { openDelete(m); } } })
      ]);
      body.appendChild(el("tr", { "data-model": m.name, "data-digest": m.digest || "" }, [
        el("td", { text: m.name }), el("td", { "class": "ollama-size", text: AI.formatBytes(m.size || 0) }),
        el("td", { text: details.family || "" }), el("td", { text: details.quantization_level || "" }),
        el("td", { "class": "ollama-loaded", text: loaded }), actions]));
    });
    $(".ollama-empty").hidden = models.length > 0;
  }
  $("#ollama-search").addEventListener("input", renderModels);
  $("#ollama-sort").addEventListener("change", renderModels);

  var detailsDialog = $("#ollama-details-dialog");
  closeButtons(detailsDialog);
  function showDetails(model) {
    AI.openDialog(detailsDialog);
    var list = $("dl", detailsDialog);
    $("h2", detailsDialog).textContent = model.name;
    modelApi(model.name).then(function (shown) {
      [["capabilities", (shown.capabilities || []).join(", ")], ["parameters", shown.parameters],
       ["template", shown.template], ["system", shown.system], ["details", JSON.stringify(shown.details, null, 1)],
       ["license", shown.license]].forEach(function (row) {
        if (!row[1]) return;
        list.appendChild(el("dt", { text: t("ollama.details." + row[0]) }));
        list.appendChild(el("dd", { "data-detail": row[0] }, [row[0] === "capabilities"
          ? el("span", { text: row[1] })
          : el("pre", { "data-copy": "", tabindex: "0", "aria-label": t("ollama.details." + row[0]), text: row[1] })]));
      });
    }, function (e) { list.appendChild(el("dd", { text: errorText(e) })); });
  }

  /* A confirm step inside a dialog: says which model would be replaced, and offers to replace
     it or to keep it (then the name can be changed). */
  function askToReplace(dialog, existing, onReplace) {
    var box = $(".ollama-confirm", dialog);
    box.textContent = "";
    var size = existing.size === null || existing.size === undefined ? "" : AI.formatBytes(existing.size);
    box.appendChild(el("p", { "class": "ollama-warning", text: size
      ? t("ollama.replace.text", { name: existing.name, size: size })
      : t("ollama.replace.text_unknown", { name: existing.name }) }));
    var replace = el("button", { type: "button", "class": "danger", "data-action": "overwrite",
      text: t("ollama.replace.confirm", { name: existing.name }) });
    var keep = el("button", { type: "button", "data-action": "keep", text: t("ollama.replace.keep") });
    replace.addEventListener("click", function () { onReplace(replace); });
    keep.addEventListener("click", function () { box.hidden = true; box.textContent = ""; });
    box.appendChild(el("menu", {}, [replace, keep]));
    box.hidden = false;
  }
  function hideConfirm(dialog) {
    var box = $(".ollama-confirm", dialog);
    box.hidden = true;
    box.textContent = "";
  }
  function existingFrom(error, fallbackName) {
    var details = (error && error.details) || {};
    return { name: details.name || fallbackName, size: details.size };
  }

  var copyDialog = $("#ollama-copy-dialog"), copySource = null;
  closeButtons(copyDialog);
  function openCopy(model) {
    copySource = model;
    AI.openDialog(copyDialog);
    var form = $("form", copyDialog);
    $(".ollama-dialog-model", copyDialog).textContent = t("ollama.copy.source", { name: model.name });
    form.destination.value = copyName(model.name);
    form.destination.select();
  }
  function copyTo(button, overwrite) {
    var form = $("form", copyDialog), destination = form.destination.value.trim();
    AI.clearErrors(form);
    var request = modelApi(copySource.name, "/copy", { method: "POST",
      body: { destination: destination, overwrite: overwrite } });
    return AI.busy(button, request).then(function () {
      copyDialog.close();
      refresh();
    }, function (e) {
      if (e.code === "model_exists") {
        askToReplace(copyDialog, existingFrom(e, destination), function (replace) { copyTo(replace, true); });
      } else {
        hideConfirm(copyDialog);
        AI.showError(form, e);
      }
    });
  }
  $("form", copyDialog).addEventListener("submit", function (event) {
    event.preventDefault();
    hideConfirm(copyDialog);
    copyTo($("[data-action=copy]", copyDialog), false);
  });
  $("[name=destination]", copyDialog).addEventListener("input", function () { hideConfirm(copyDialog); });

  var loadDialog = $("#ollama-load-dialog"), loadModel = null;
  closeButtons(loadDialog);
  function openLoad(model) {
    loadModel = model;
    AI.openDialog(loadDialog);
    showCustomKeepAlive();
    $(".ollama-dialog-model", loadDialog).textContent = t("ollama.load.model", { name: model.name });
  }
  /* "Another duration…" shows a field for any keep_alive Ollama takes: a Go duration (90m,
     2h30m), seconds, or a negative value to keep it loaded. */
  function showCustomKeepAlive() {
    var custom = $("form", loadDialog).keep_alive.value === "custom";
    loadDialog.querySelectorAll(".ollama-custom-keep-alive").forEach(function (node) { node.hidden = !custom; });
    return custom;
  }
  $("[name=keep_alive]", loadDialog).addEventListener("change", function () {
    if (showCustomKeepAlive()) $("[name=keep_alive_custom]", loadDialog).focus();
  });
  /* The keep_alive of the form: a choice, or the custom text (a plain number is seconds). */
  function keepAliveValue(form) {
    if (form.keep_alive.value !== "custom") return form.keep_alive.value;
    var text = form.keep_alive_custom.value.trim();
    return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
  }
  $("form", loadDialog).addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    AI.clearErrors(form);
    if (form.keep_alive.value === "custom" && !form.keep_alive_custom.value.trim()) {
      AI.showError(form, { code: "validation_error", message: "",
        details: { fields: { keep_alive_custom: [t("ai.error.field_missing")] } } });
      return;
    }
    $(".ollama-load-state", loadDialog).textContent = t("ollama.load.loading");
    var request = modelApi(loadModel.name, "/load", { method: "POST",
      body: { keep_alive: keepAliveValue(form), cpu_only: form.cpu_only.checked } }).catch(function (e) {
      /* The API names the field keep_alive; the custom text is where it was typed. */
      var fields = e && e.details && e.details.fields;
      if (fields && fields.keep_alive && form.keep_alive.value === "custom") {
        fields.keep_alive_custom = fields.keep_alive;
        delete fields.keep_alive;
      }
      throw e;
    });
    AI.busy($("[data-action=load]", loadDialog), request).then(function () { loadDialog.close(); refresh(); }, function (e) {
      $(".ollama-load-state", loadDialog).textContent = "";
      AI.showError(form, e);
    });
  });

  function unload(name, button) {
    AI.busy(button, modelApi(name, "/unload", { method: "POST" })).then(refresh, banner);
  }

  var deleteDialog = $("#ollama-delete-dialog"), deleteModel = null;
  closeButtons(deleteDialog);
  function openDelete(model) {
    deleteModel = model;
    AI.openDialog(deleteDialog);
    var frees = state.frees[model.name];
    $(".ollama-delete-text", deleteDialog).textContent = frees === null || frees === undefined
      ? t("ollama.delete.text_unknown", { name: model.name })
      : t("ollama.delete.text", { name: model.name, frees: AI.formatBytes(frees) });
  }
  $("form", deleteDialog).addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    AI.busy($("[data-action=delete]", deleteDialog), modelApi(deleteModel.name, "", { method: "DELETE" }))
      .then(function () { deleteDialog.close(); refresh(); }, function (e) { AI.showError(form, e); });
  });

  /* -- a server's memory budget: most GPU memory and most loaded models ------------------- */
  var budgetDialog = $("#ollama-budget-dialog"), budgetEndpoint = null, GIB = 1024 * 1024 * 1024;
  closeButtons(budgetDialog);
  function budgetPath(name) { return "/ollama/endpoints/" + encodeURIComponent(name) + "/budget"; }
  function openBudget(ep) {
    budgetEndpoint = ep.name;
    budgetDialog.removeAttribute("data-loaded");
    AI.openDialog(budgetDialog);
    var form = $("form", budgetDialog), save = $("[data-action=save]", budgetDialog);
    $(".ollama-budget-endpoint", budgetDialog).textContent = t("ollama.budget.of", { endpoint: ep.name });
    AI.busy(save, AI.api(budgetPath(ep.name)).then(function (budget) {
      form.vram_bytes.value = budget.vram_bytes ? String(Math.round(100 * budget.vram_bytes / GIB) / 100) : "";
      form.max_models.value = budget.max_models ? String(budget.max_models) : "";
      budgetDialog.setAttribute("data-loaded", "true");
    }, function (e) { AI.showError(form, e); }));
  }
  $("form", budgetDialog).addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    AI.clearErrors(form);
    var gib = form.vram_bytes.value.trim(), most = form.max_models.value.trim();
    var body = { vram_bytes: gib === "" ? null : Math.round(Number(gib) * GIB),
                 max_models: most === "" ? null : Number(most) };
    AI.busy($("[data-action=save]", budgetDialog), AI.api(budgetPath(budgetEndpoint), { method: "PUT", body: body }))
      .then(function () {
        budgetDialog.close();
        AI.toast(t("ollama.budget.saved", { endpoint: budgetEndpoint }));
      }, function (e) { AI.showError(form, e); });
  });

  /* -- running models and storage ------------------------------------------------------- */
  function loadRunning(ticket) {
    return AI.api(q("/ollama/running")).then(function (data) {
      if (ticket !== state.ticket) return;
      renderRunning(data.models, data.age);
    }, function () {
      if (ticket !== state.ticket) return;
      $("#ollama-running tbody").textContent = "";
      $(".ollama-running-empty").hidden = true;
    });
  }

  /* The loaded models, from a read (age: how old its state was) or an event (age 0). */
  function renderRunning(models, age) {
    var body = $("#ollama-running tbody");
    body.textContent = "";
    models.forEach(function (m) {
      var share = m.vram_share !== null && m.vram_share !== undefined ? Math.round(100 * m.vram_share)
        : (m.size ? Math.round(100 * m.size_vram / m.size) : 0);
      body.appendChild(el("tr", { "data-model": m.name, "data-vram-share": String(share) }, [
        el("td", { text: m.name }), el("td", { text: AI.formatBytes(m.size) }),
        el("td", { "class": "ollama-vram", text: share === 0 ? t("ollama.running.cpu") : share + "% (" + AI.formatBytes(m.size_vram) + ")" }),
        expiryCell(m, age),
        el("td", {}, [usable(m) ? el("button", { type: "button", "data-action": "unload", text: t("ollama.models.unload"),
          on: { click: function (event) { unload(m.name, event.target); } } }) : invalidName()])]));
    });
    $(".ollama-running-empty").hidden = models.length > 0;
  }

  function freesText(bytes) {
    return bytes === null || bytes === undefined ? t("ollama.storage.frees_unknown") : AI.formatBytes(bytes);
  }
  function suggestionText(s, report) {
    var known = s.frees !== null && s.frees !== undefined;
    var params = { name: s.name, size: AI.formatBytes(s.size), frees: known ? AI.formatBytes(s.frees) : "",
      days: report.unused_days, count: report.unused_days, copies: (s.copies || []).join(", "),
      typical: AI.formatBytes(s.typical || 0) };
    return t("ollama.storage.reason." + s.reason + (known ? "" : "_unknown"), params);
  }
  /* Delete partial downloads: a button beside the "Partial downloads" fact, shown when the
     panel can see the folder and it holds some; partials a pull is writing are kept. */
  var partialsButton = $("#ollama-partials-delete");
  partialsButton.addEventListener("click", function () {
    var endpoint = state.endpoint;
    if (!window.confirm(t("ollama.storage.delete_partials_confirm", { endpoint: endpoint }))) return;
    AI.busy(partialsButton, AI.api(q("/ollama/storage/partials"), { method: "DELETE" })).then(function (result) {
      var bytes = AI.formatBytes(result.freed);
      AI.toast(result.skipped.length
        ? t("ollama.storage.partials_skipped", { bytes: bytes, count: result.skipped.length })
        : t("ollama.storage.partials_deleted", { bytes: bytes }));
      loadStorage(state.ticket);
    }, function (error) { AI.toast({ message: errorText(error) }); });
  });
  function clearStorage(endpoint) {
    $(".ollama-storage-endpoint").textContent = t("ollama.storage.of", { endpoint: endpoint });
    partialsButton.hidden = true;
    $(".ollama-storage-facts").after(partialsButton);  // out of the facts, which are cleared
    $(".ollama-storage-facts").textContent = "";
    $(".ollama-storage-models tbody").textContent = "";
    $(".ollama-storage-models").hidden = true;
    $(".ollama-suggestions").textContent = "";
    $(".ollama-suggestions-empty").hidden = true;
    $(".ollama-storage-error").hidden = true;
    $("#ollama-storage").setAttribute("data-endpoint", endpoint);
    state.frees = {};
  }
  function loadStorage(ticket) {
    var endpoint = state.endpoint;
    clearStorage(endpoint);
    return AI.api(q("/ollama/storage")).then(function (report) {
      if (ticket !== state.ticket) return;  // another server was picked meanwhile
      var facts = $(".ollama-storage-facts"), list = $(".ollama-suggestions"), table = $(".ollama-storage-models tbody");
      report.models.forEach(function (m) { state.frees[m.name] = m.frees; });
      var partial = AI.formatBytes(report.partial_bytes);
      if (report.partial_active) partial = t("ollama.storage.partial_active", { bytes: partial, count: report.partial_active });
      var rows = [["models_dir", report.models_dir || t("ollama.storage.not_visible")],
        ["used", AI.formatBytes(report.used_by_models)], ["partial", partial]];
      if (report.visible) rows.push(["free", t("ollama.storage.free_of", { free: AI.formatBytes(report.free), total: AI.formatBytes(report.total) })]);
      rows.forEach(function (row) {
        facts.appendChild(el("dt", { text: t("ollama.storage." + row[0]) }));
        facts.appendChild(el("dd", { "data-fact": row[0], text: row[1] }));
      });
      if (report.visible && report.partial_downloads.length) {
        $('[data-fact="partial"]', facts).append(" ", partialsButton);
        partialsButton.hidden = false;
      }
      report.models.forEach(function (m) {
        var shared = (m.shared_with || []).length
          ? t("ollama.storage.shares", { models: m.shared_with.join(", "), bytes: AI.formatBytes(m.shared_bytes || 0) }) : "";
        table.appendChild(el("tr", { "data-model": m.name }, [el("td", { text: m.name }),
          el("td", { text: AI.formatBytes(m.size || 0) }), el("td", { "class": "ollama-frees", text: freesText(m.frees) }),
          el("td", { "class": "ollama-shared", text: shared })]));
      });
      $(".ollama-storage-models").hidden = report.models.length === 0;
      report.suggestions.forEach(function (s) {
        list.appendChild(el("li", { "data-reason": s.reason, "data-model": s.name, text: suggestionText(s, report) }));
      });
      $(".ollama-suggestions-empty").hidden = report.suggestions.length > 0;
    }, function (error) {
      if (ticket !== state.ticket) return;
      var box = $(".ollama-storage-error");
      box.textContent = errorText(error);
      box.hidden = false;
    });
  }

  function refresh() {
    state.ticket += 1;
    var ticket = state.ticket;
    return Promise.all([loadModels(ticket), loadRunning(ticket), loadStorage(ticket)]);
  }

  /* -- downloads and imports under way -------------------------------------------------- */
  function targetOf(task) {
    var at = task.target.lastIndexOf("@");
    return { name: task.target.slice(0, at), endpoint: task.target.slice(at + 1) };
  }
  function percentLine(task) {
    return task.percent !== null && task.percent !== undefined ? task.percent.toFixed(1) + "%" : "";
  }
  function bytesLine(task) {
    if (!task.total) return "";
    return t("ollama.progress.bytes", { done: AI.formatBytes(task.completed || 0), total: AI.formatBytes(task.total) });
  }
  function speedLine(task) {
    var parts = [];
    if (task.bytes_per_second) parts.push(t("ollama.progress.speed", { speed: AI.formatBytes(task.bytes_per_second) }));
    if (task.eta_seconds) parts.push(t("ollama.pull.eta", { eta: duration(task.eta_seconds) }));
    return parts.join(" · ");
  }
  function stateLine(task) {
    if (task.error) return errorText(task.error);
    if (task.message) return AI.text(task.message, task.message_i18n);
    return t("task.status." + task.status);
  }
  function taskAction(task, action) {
    return AI.api("/tasks/" + task.id + "/" + action, { method: "POST" }).then(onTask, banner);
  }

  /* One row per task, kept and updated in place (a row rebuilt under the pointer would eat a
     click on its Cancel button); its buttons change only when the task starts or ends. */
  function downloadRow(task) {
    var body = $("#ollama-downloads tbody");
    var row = body.querySelector('tr[data-task="' + task.id + '"]');
    if (!row) {
      var target = targetOf(task), bar = el("progress", { max: "100" });
      row = el("tr", { "data-task": task.id, "data-kind": task.kind, "data-model": target.name }, [
        el("td", { text: t(task.kind === "ollama.import" ? "ollama.downloads.import" : "ollama.downloads.pull", { name: target.name }) }),
        el("td", { text: target.endpoint }),
        el("td", {}, [bar, el("span", { "class": "ollama-task-bytes" })]),
        el("td", { "class": "ollama-task-speed" }),
        el("td", { "class": "ollama-task-state" }),
        el("td", { "class": "ollama-task-actions" })]);
      body.appendChild(row);
    }
    return row;
  }
  function renderDownload(task) {
    var row = downloadRow(task), active = ACTIVE.indexOf(task.status) >= 0;
    var wasActive = row.getAttribute("data-active");
    row.setAttribute("data-status", task.status);
    row.setAttribute("data-active", active ? "1" : "0");
    $("progress", row).value = task.percent || 0;
    $(".ollama-task-bytes", row).textContent = " " + [bytesLine(task), percentLine(task)].filter(Boolean).join(" · ");
    $(".ollama-task-speed", row).textContent = active ? speedLine(task) : "";
    var stateCell = $(".ollama-task-state", row);
    stateCell.textContent = stateLine(task);
    stateCell.removeAttribute("data-unknown");
    if (wasActive === (active ? "1" : "0")) return;
    var actions = $(".ollama-task-actions", row);
    actions.textContent = "";
    if (active) {
      actions.appendChild(el("button", { type: "button", "data-action": "cancel", text: t("ollama.pull.cancel"),
        on: { click: function (event) { AI.busy(event.target, taskAction(task, "cancel")); } } }));
    } else {
      actions.appendChild(el("button", { type: "button", "data-action": "retry", text: t("ollama.pull.retry"),
        on: { click: function (event) { AI.busy(event.target, taskAction(task, "retry")); } } }));
      actions.appendChild(el("button", { type: "button", "data-action": "dismiss", text: t("ollama.downloads.dismiss"),
        on: { click: function () { forget(task.id); } } }));
    }
  }
  function forget(id) {
    delete state.downloads[id];
    var row = $('#ollama-downloads tr[data-task="' + id + '"]');
    if (row) row.remove();
    $("#ollama-downloads").hidden = Object.keys(state.downloads).length === 0;
  }

  /* Every task event: the strip shows pulls and imports under way (and how the ones it showed
     ended, until dismissed); a dialog following the task updates too. */
  function onTask(task) {
    if (!task || KINDS.indexOf(task.kind) < 0) return;
    /* Events and HTTP answers can cross: an answer to Cancel that says "running" may come after
       the event that said "cancelled". What is older than what was shown is dropped. */
    var last = state.latest[task.id];
    if (last && (task.updated_at < last.updated_at ||
        (task.updated_at === last.updated_at && ACTIVE.indexOf(task.status) >= 0 && ACTIVE.indexOf(last.status) < 0))) return;
    state.latest[task.id] = task;
    var follower = state.followers[task.id];
    if (follower) follower(task);
    var shown = Object.prototype.hasOwnProperty.call(state.downloads, task.id);
    if (task.status === "succeeded") {
      if (shown || follower) {
        forget(task.id);
        if (targetOf(task).endpoint === state.endpoint) refresh();
      }
      return;
    }
    if (!shown && ACTIVE.indexOf(task.status) < 0) return;
    state.downloads[task.id] = task;
    renderDownload(task);
    $("#ollama-downloads").hidden = false;
  }
  AI.live("tasks", "task", onTask, loadTasks);  // and once subscribed, as for the models

  function loadTasks() {
    return Promise.all(KINDS.map(function (kind) {
      return AI.api("/tasks?limit=100&kind=" + encodeURIComponent(kind)).then(function (data) { return data.tasks; });
    })).then(function (lists) {
      var seen = {};
      lists.forEach(function (tasks) {
        tasks.forEach(function (task) {
          seen[task.id] = true;
          var shown = Object.prototype.hasOwnProperty.call(state.downloads, task.id);
          if (ACTIVE.indexOf(task.status) >= 0 || shown) onTask(task);
        });
      });
      Object.keys(state.downloads).forEach(function (id) { if (!seen[id]) forget(id); });
    }, function () {});
  }

  /* A dialog follows one task: the model it is for, bytes done of the total, speed, what
     Ollama is doing (never a layer digest), and its end. */
  function follow(dialog, task, prefix) {
    Object.keys(state.followers).forEach(function (id) {
      if (state.followers[id].dialog === dialog) delete state.followers[id];
    });
    function show(task) {
      var bar = $("progress", dialog), cancel = $("[data-action=cancel]", dialog), retry = $("[data-action=retry]", dialog);
      var followed = $(".ollama-followed", dialog);
      followed.hidden = false;
      followed.textContent = t(task.kind === "ollama.import" ? "ollama.downloads.import" : "ollama.downloads.pull",
                               { name: targetOf(task).name });
      bar.hidden = false;
      bar.value = task.percent || 0;
      var active = ACTIVE.indexOf(task.status) >= 0;
      var parts = [percentLine(task)];
      if (active) parts.push(speedLine(task));
      parts.push(bytesLine(task));
      if (!task.error) parts.push(stateLine(task));
      $("." + prefix + "-state", dialog).textContent = parts.filter(Boolean).join(" · ");
      $("." + prefix + "-error", dialog).textContent = task.error ? errorText(task.error) : "";
      dialog.setAttribute("data-status", task.status);
      if (cancel) cancel.hidden = !active;
      if (retry) retry.hidden = active || task.status === "succeeded";
      if (!active) release(dialog);
    }
    show.dialog = dialog;
    show.task = task;
    state.followers[task.id] = show;
    onTask(task);
    /* A task can end before the subscription is in place: read it once more then. */
    setTimeout(function () { AI.api("/tasks/" + task.id).then(onTask, function () {}); }, 1500);
  }
  /* A promise that stays pending while `dialog` follows a task under way: the dialog's start
     button is kept busy (AI.busy) with it, so a second click cannot start a second pull. It
     settles when the task ends or the dialog closes (the task goes on in the downloads strip). */
  function hold(dialog) {
    release(dialog);
    return new Promise(function (resolve) { dialog._aiRelease = resolve; });
  }
  function release(dialog) {
    var resolve = dialog._aiRelease;
    dialog._aiRelease = null;
    if (resolve) resolve();
  }
  function followed(dialog) {
    var ids = Object.keys(state.followers).filter(function (id) { return state.followers[id].dialog === dialog; });
    return ids.length ? state.followers[ids[0]].task : null;
  }
  /* A new request in a dialog starts from a clean slate: no progress or "Done" of the last one. */
  function unfollow(dialog, prefix) {
    Object.keys(state.followers).forEach(function (id) {
      if (state.followers[id].dialog === dialog) delete state.followers[id];
    });
    dialog.removeAttribute("data-status");
    $("progress", dialog).hidden = true;
    $(".ollama-followed", dialog).hidden = true;
    ["-state", "-error"].forEach(function (suffix) { $("." + prefix + suffix, dialog).textContent = ""; });
    dialog.querySelectorAll("[data-action=cancel], [data-action=retry]").forEach(function (b) { b.hidden = true; });
  }

  var pullDialog = $("#ollama-pull-dialog");
  closeButtons(pullDialog);
  pullDialog.addEventListener("close", function () { release(pullDialog); });
  $("#ollama-pull-open").addEventListener("click", function () {
    unfollow(pullDialog, "ollama-pull");
    AI.openDialog(pullDialog);
  });
  $("form", pullDialog).addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    unfollow(pullDialog, "ollama-pull");
    AI.clearErrors(form);
    $(".ollama-pull-warning", pullDialog).textContent = "";
    var request = AI.api("/ollama/pulls", { method: "POST", body: { name: form.name.value.trim(), endpoint: state.endpoint } });
    AI.busy($("[data-action=start]", pullDialog), request.then(function (task) {
      if (task.warnings && task.warnings.length) $(".ollama-pull-warning", pullDialog).textContent = task.warnings.join(" ");
      var held = hold(pullDialog);
      if (pullDialog.open) follow(pullDialog, task, "ollama-pull");
      else release(pullDialog);
      return held;
    }, function (e) { AI.showError(form, e); }));
  });
  $("[data-action=cancel]", pullDialog).addEventListener("click", function (event) {
    var task = followed(pullDialog);
    if (task) AI.busy(event.target, taskAction(task, "cancel"));
  });
  $("[data-action=retry]", pullDialog).addEventListener("click", function (event) {
    var task = followed(pullDialog);
    if (!task) return;
    var held = hold(pullDialog);  // running again: Download stays busy until it ends
    AI.busy($("[data-action=start]", pullDialog), held);
    AI.busy(event.target, taskAction(task, "retry").then(function () {
      if (ACTIVE.indexOf((state.latest[task.id] || task).status) < 0) release(pullDialog);
    }));
  });

  var importDialog = $("#ollama-import-dialog");
  closeButtons(importDialog);
  $("#ollama-import-open").addEventListener("click", function () {
    unfollow(importDialog, "ollama-import");
    AI.openDialog(importDialog);
  });
  /* Sends the file as the raw body with XMLHttpRequest, which (unlike fetch) reports upload
     progress: bytes sent of the total, the speed over the last ~2 seconds and the time left,
     shown under the bar. The returned promise has abort(), which stops the sending; the panel
     then removes what it had received. */
  var sending = null;
  function uploadImport(file, fields) {
    var query = Object.keys(fields).map(function (k) { return k + "=" + encodeURIComponent(fields[k]); }).join("&");
    var csrf = document.querySelector('meta[name="csrf-token"]');
    var xhr = new XMLHttpRequest(), samples = [];
    var line = $(".ollama-upload-progress", importDialog), bar = $("progress", importDialog);
    function progress(sent, total) {
      var now = Date.now();
      samples.push([now, sent]);
      while (samples.length > 2 && now - samples[1][0] >= 2000) samples.shift();
      var first = samples[0], seconds = (now - first[0]) / 1000;
      var speed = seconds > 0.2 ? (sent - first[1]) / seconds : 0;
      var parts = [t("ollama.progress.bytes", { done: AI.formatBytes(sent), total: AI.formatBytes(total) })];
      if (speed > 0) {
        parts.push(t("ai.tasks.speed", { speed: AI.formatBytes(speed) }));
        if (sent < total) parts.push(t("ai.tasks.seconds_left", { count: Math.ceil((total - sent) / speed) }));
      }
      line.textContent = t("ollama.import.uploading", { progress: parts.join(" · ") });
      line.hidden = false;
      line.setAttribute("data-sent", String(sent));
      bar.hidden = false;
      bar.value = total ? 100 * sent / total : 0;
    }
    var promise = new Promise(function (resolve, reject) {
      xhr.open("POST", "/api/v2/ai/ollama/imports?" + query + "&filename=" + encodeURIComponent(file.name));
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("Accept", "application/json");
      if (csrf && csrf.content) xhr.setRequestHeader("X-CSRF-Token", csrf.content);
      xhr.upload.onprogress = function (event) { progress(event.loaded, event.lengthComputable ? event.total : file.size); };
      xhr.onload = function () {
        var data = {};
        try { data = JSON.parse(xhr.responseText || "{}"); } catch (e) { data = {}; }
        if (xhr.status >= 200 && xhr.status < 300) { resolve(data); return; }
        reject((data && data.error) || { code: "http_" + xhr.status, message: xhr.statusText, details: {} });
      };
      xhr.onerror = function () { reject({ code: "network_error", message: t("ai.error.network"), details: {} }); };
      xhr.onabort = function () { reject({ code: "upload_cancelled", message: t("ollama.import.upload_cancelled"), details: {} }); };
      xhr.send(file);
    });
    sending = { abort: function () { xhr.abort(); } };
    var cancel = $("[data-action=cancel]", importDialog);
    cancel.hidden = false;
    function done() {
      sending = null;
      line.hidden = true;
      if (!followed(importDialog)) { cancel.hidden = true; bar.hidden = true; }
    }
    promise.then(done, done);
    return promise;
  }
  function startImport(button, overwrite) {
    var form = $("form", importDialog);
    unfollow(importDialog, "ollama-import");
    hideConfirm(importDialog);
    AI.clearErrors(form);
    var fields = { name: form.name.value.trim(), endpoint: state.endpoint };
    ["system", "template", "quantize"].forEach(function (key) { if (form[key].value.trim()) fields[key] = form[key].value.trim(); });
    if (overwrite) fields.overwrite = true;
    var file = form.file.files[0], path = form.path ? form.path.value.trim() : "";
    /* Nothing is sent (a large file least of all) while a field it needs is empty. */
    var missing = {};
    if (!fields.name) missing.name = [t("ai.error.field_missing")];
    if (!file && !path) missing.file = [t(form.path ? "ollama.import.source_missing" : "ai.error.field_missing")];
    if (Object.keys(missing).length) {
      AI.showError(form, { code: "validation_error", message: "", details: { fields: missing } });
      return Promise.resolve();
    }
    var existing = file && !overwrite && fields.name ? findModel(fields.name) : null;
    if (existing) {
      /* Ask before sending a large file that would replace a model. */
      askToReplace(importDialog, existing, function () { startImport($("[data-action=start]", importDialog), true); });
      return Promise.resolve();
    }
    var started;
    if (file) {
      started = uploadImport(file, fields);
    } else {
      fields.path = path;
      started = AI.api("/ollama/imports", { method: "POST", body: fields });
    }
    return AI.busy(button, started).then(function (task) { follow(importDialog, task, "ollama-import"); }, function (e) {
      if (e.code === "upload_cancelled") {
        $(".ollama-import-state", importDialog).textContent = e.message;
      } else if (e.code === "model_exists") {
        askToReplace(importDialog, existingFrom(e, fields.name), function () { startImport($("[data-action=start]", importDialog), true); });
      } else {
        AI.showError(form, e);
      }
    });
  }
  $("form", importDialog).addEventListener("submit", function (event) {
    event.preventDefault();
    startImport($("[data-action=start]", importDialog), false);
  });
  $("[name=name]", importDialog).addEventListener("input", function () { hideConfirm(importDialog); });
  $("[data-action=cancel]", importDialog).addEventListener("click", function (event) {
    if (sending) { sending.abort(); return; }  // still sending: stop, nothing is kept
    var task = followed(importDialog);
    if (task) AI.busy(event.target, taskAction(task, "cancel"));
  });
  /* Closed while the file is still being sent: nothing else shows that upload, so it stops. */
  importDialog.addEventListener("close", function () { if (sending) sending.abort(); });

  loadEndpoints();
  refresh();
  loadTasks();
})();
