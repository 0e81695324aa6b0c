/* OllamaModelsPage: endpoints, models, downloads under way, running models, storage, and the
   pull (ModelDownloadDialog), import, load, copy, delete and details dialogs. Task progress
   arrives over Socket.IO on the "tasks" topic; running pulls and imports are read from
   GET /tasks when the page loads, so a reload keeps them in view. */
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
    if (cameBack) {
      banner(null);
      loadEndpoints();
      refresh();
      loadTasks();
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
      state.models = data.models;
      renderModels();
    }, function (error) {
      if (ticket !== state.ticket) return;
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
        list.appendChild(el("dd", { text: row[1] }));
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
    $(".ollama-dialog-model", loadDialog).textContent = t("ollama.load.model", { name: model.name });
  }
  $("form", loadDialog).addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    AI.clearErrors(form);
    $(".ollama-load-state", loadDialog).textContent = t("ollama.load.loading");
    var request = modelApi(loadModel.name, "/load", { method: "POST",
      body: { keep_alive: form.keep_alive.value, cpu_only: form.cpu_only.checked } });
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

  /* -- running models and storage ------------------------------------------------------- */
  function loadRunning(ticket) {
    return AI.api(q("/ollama/running")).then(function (data) {
      if (ticket !== state.ticket) return;
      var body = $("#ollama-running tbody");
      body.textContent = "";
      data.models.forEach(function (m) {
        var share = m.size ? Math.round(100 * m.size_vram / m.size) : 0;
        body.appendChild(el("tr", { "data-model": m.name }, [
          el("td", { text: m.name }), el("td", { text: AI.formatBytes(m.size) }),
          el("td", { text: share === 0 ? t("ollama.running.cpu") : share + "% (" + AI.formatBytes(m.size_vram) + ")" }),
          el("td", { text: when(m.expires_at) }),
          el("td", {}, [usable(m) ? el("button", { type: "button", "data-action": "unload", text: t("ollama.models.unload"),
            on: { click: function (event) { unload(m.name, event.target); } } }) : invalidName()])]));
      });
      $(".ollama-running-empty").hidden = data.models.length > 0;
    }, function () {
      if (ticket !== state.ticket) return;
      $("#ollama-running tbody").textContent = "";
      $(".ollama-running-empty").hidden = true;
    });
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
  function clearStorage(endpoint) {
    $(".ollama-storage-endpoint").textContent = t("ollama.storage.of", { endpoint: endpoint });
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
  AI.live("tasks", "task", onTask);

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
    }
    show.dialog = dialog;
    show.task = task;
    state.followers[task.id] = show;
    onTask(task);
    /* A task can end before the subscription is in place: read it once more then. */
    setTimeout(function () { AI.api("/tasks/" + task.id).then(onTask, function () {}); }, 1500);
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
    AI.busy($("[data-action=start]", pullDialog), request).then(function (task) {
      if (task.warnings && task.warnings.length) $(".ollama-pull-warning", pullDialog).textContent = task.warnings.join(" ");
      follow(pullDialog, task, "ollama-pull");
    }, function (e) { AI.showError(form, e); });
  });
  $("[data-action=cancel]", pullDialog).addEventListener("click", function (event) {
    var task = followed(pullDialog);
    if (task) AI.busy(event.target, taskAction(task, "cancel"));
  });
  $("[data-action=retry]", pullDialog).addEventListener("click", function (event) {
    var task = followed(pullDialog);
    if (task) AI.busy(event.target, taskAction(task, "retry"));
  });

  var importDialog = $("#ollama-import-dialog");
  closeButtons(importDialog);
  $("#ollama-import-open").addEventListener("click", function () {
    unfollow(importDialog, "ollama-import");
    AI.openDialog(importDialog);
  });
  function uploadImport(file, fields) {
    var query = Object.keys(fields).map(function (k) { return k + "=" + encodeURIComponent(fields[k]); }).join("&");
    var csrf = document.querySelector('meta[name="csrf-token"]');
    return fetch("/api/v2/ai/ollama/imports?" + query + "&filename=" + encodeURIComponent(file.name), {
      method: "POST", body: file, credentials: "same-origin",
      headers: { "Content-Type": "application/octet-stream", "Accept": "application/json",
                 "X-CSRF-Token": csrf ? csrf.content : "" }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw data.error || { code: "http_" + response.status, message: response.statusText, details: {} };
        return data;
      });
    }, function () {
      throw { code: "network_error", message: t("ai.error.network"), details: {} };
    });
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
      if (e.code === "model_exists") {
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
    var task = followed(importDialog);
    if (task) AI.busy(event.target, taskAction(task, "cancel"));
  });

  loadEndpoints();
  refresh();
  loadTasks();
})();
