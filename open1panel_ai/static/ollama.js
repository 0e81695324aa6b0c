/* OllamaModelsPage: endpoints, models, running models, storage, and the pull (ModelDownloadDialog),
   import, load, copy, delete and details dialogs. Task progress arrives over Socket.IO. */
(function () {
  "use strict";
  var AI = window.AI, t = AI.t;
  var page = document.getElementById("ollama-page");
  if (!page) return;
  var state = { endpoint: "local", models: [], frees: {}, tasks: {} };
  var FINAL = ["succeeded", "failed", "cancelled", "interrupted"];

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
  function modelPath(name) { return "/ollama/models/" + name.split("/").map(encodeURIComponent).join("/"); }
  function errorText(error) {
    var text = (error && error.message) || String(error);
    var fix = error && error.details && error.details.fix;
    return fix ? text + " " + fix : text;
  }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    seconds = Math.round(seconds);
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }
  function expiry(text) {
    if (!text) return "";
    var when = new Date(text);
    if (when.getFullYear() > 2200) return t("ollama.running.forever");
    return when.toLocaleString();
  }
  function banner(error) {
    var node = $("#ollama-banner");
    node.hidden = !error;
    node.textContent = error ? errorText(error) : "";
  }

  /* -- endpoints ------------------------------------------------------------------------ */
  function loadEndpoints() {
    return AI.api("/ollama/endpoints").then(function (data) {
      var body = $("#ollama-endpoints tbody"), select = $("#ollama-endpoint");
      body.textContent = "";
      select.textContent = "";
      data.endpoints.forEach(function (ep) {
        var stateCell = el("td", {}, [el("span", { "class": "ai-badge", text: ep.reachable
          ? t("ollama.endpoints.online", { version: ep.version }) : t("ollama.endpoints.offline") })]);
        if (ep.error) stateCell.appendChild(el("span", { "class": "muted", text: " " + ep.error.message }));
        (ep.warnings || []).forEach(function (w) { stateCell.appendChild(el("span", { "class": "ollama-warning", text: w })); });
        var actions = el("td");
        if (typeof window.AI.openDomainDialog === "function") {
          actions.appendChild(el("button", { type: "button", "data-action": "domain", text: t("ollama.endpoints.domain"),
            on: { click: function () { window.AI.openDomainDialog({ kind: "ollama", target: ep.name }); } } }));
        }
        if (!ep.builtin) {
          actions.appendChild(el("button", { type: "button", "data-action": "remove", text: t("ollama.endpoints.remove"),
            on: { click: function () {
              AI.api("/ollama/endpoints/" + encodeURIComponent(ep.name), { method: "DELETE" })
                .then(loadEndpoints, function (e) { banner(e); });
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
    var form = event.target, out = $(".ollama-form-error", form);
    out.textContent = "";
    AI.api("/ollama/endpoints", { method: "POST", body: {
      name: form.name.value.trim(), url: form.url.value.trim(), models_dir: form.models_dir.value.trim() || null } })
      .then(function () { form.reset(); return loadEndpoints(); }, function (e) { out.textContent = errorText(e); });
  });
  $("#ollama-endpoint").addEventListener("change", function (event) { state.endpoint = event.target.value; refresh(); });

  /* -- models --------------------------------------------------------------------------- */
  function loadModels() {
    return AI.api(q("/ollama/models")).then(function (data) {
      banner(null);
      state.models = data.models;
      renderModels();
    }, function (error) {
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
      var actions = el("td", {}, [
        el("button", { type: "button", "data-action": "details", text: t("ollama.models.details"), on: { click: function () { showDetails(m); } } }),
        el("button", { type: "button", "data-action": "copy", text: t("ollama.models.copy"), on: { click: function () { openCopy(m); } } }),
        m.loaded
          ? el("button", { type: "button", "data-action": "unload", text: t("ollama.models.unload"), on: { click: function () { unload(m.name); } } })
          : el("button", { type: "button", "data-action": "load", text: t("ollama.models.load"), on: { click: function () { openLoad(m); } } }),
        el("button", { type: "button", "data-action": "delete", text: t("ollama.models.delete"), on: { click: function () { openDelete(m); } } })
      ]);
      body.appendChild(el("tr", { "data-model": m.name }, [
        el("td", { text: m.name }), el("td", { text: AI.formatBytes(m.size || 0) }),
        el("td", { text: details.family || "" }), el("td", { text: details.quantization_level || "" }),
        el("td", { "class": "ollama-loaded", text: loaded }), actions]));
    });
    $(".ollama-empty").hidden = models.length > 0;
  }
  $("#ollama-search").addEventListener("input", renderModels);
  $("#ollama-sort").addEventListener("change", renderModels);

  function showDetails(model) {
    var dialog = $("#ollama-details-dialog"), list = $("dl", dialog);
    $("h2", dialog).textContent = model.name;
    list.textContent = "";
    AI.api(q(modelPath(model.name))).then(function (shown) {
      [["capabilities", (shown.capabilities || []).join(", ")], ["parameters", shown.parameters],
       ["template", shown.template], ["system", shown.system], ["details", JSON.stringify(shown.details, null, 1)],
       ["license", shown.license]].forEach(function (row) {
        if (!row[1]) return;
        list.appendChild(el("dt", { text: t("ollama.details." + row[0]) }));
        list.appendChild(el("dd", { text: row[1] }));
      });
    }, function (e) { list.appendChild(el("dd", { text: errorText(e) })); });
    dialog.showModal();
  }

  function openCopy(model) {
    var dialog = $("#ollama-copy-dialog"), form = $("form", dialog), out = $(".ollama-copy-error", dialog);
    form.destination.value = model.name.split(":")[0] + "-copy";
    out.textContent = "";
    $("[data-action=copy]", dialog).onclick = function () {
      AI.api(q(modelPath(model.name) + "/copy"), { method: "POST", body: { destination: form.destination.value.trim() } })
        .then(function () { dialog.close(); refresh(); }, function (e) { out.textContent = errorText(e); });
    };
    dialog.showModal();
  }

  function openLoad(model) {
    var dialog = $("#ollama-load-dialog"), form = $("form", dialog), out = $(".ollama-load-error", dialog);
    out.textContent = "";
    $("[data-action=load]", dialog).onclick = function () {
      out.textContent = t("ollama.load.loading");
      AI.api(q(modelPath(model.name) + "/load"), { method: "POST",
        body: { keep_alive: form.keep_alive.value, cpu_only: form.cpu_only.checked } })
        .then(function () { dialog.close(); refresh(); }, function (e) { out.textContent = errorText(e); });
    };
    dialog.showModal();
  }

  function unload(name) {
    AI.api(q(modelPath(name) + "/unload"), { method: "POST" }).then(refresh, banner);
  }

  function openDelete(model) {
    var dialog = $("#ollama-delete-dialog"), out = $(".ollama-delete-error", dialog);
    var frees = state.frees[model.name];
    $(".ollama-delete-text", dialog).textContent = frees === null || frees === undefined
      ? t("ollama.delete.text_unknown", { name: model.name })
      : t("ollama.delete.text", { name: model.name, frees: AI.formatBytes(frees) });
    out.textContent = "";
    $("[data-action=delete]", dialog).onclick = function () {
      AI.api(q(modelPath(model.name)), { method: "DELETE" })
        .then(function () { dialog.close(); refresh(); }, function (e) { out.textContent = errorText(e); });
    };
    dialog.showModal();
  }

  /* -- running models and storage ------------------------------------------------------- */
  function loadRunning() {
    return AI.api(q("/ollama/running")).then(function (data) {
      var body = $("#ollama-running tbody");
      body.textContent = "";
      data.models.forEach(function (m) {
        var share = m.size ? Math.round(100 * m.size_vram / m.size) : 0;
        body.appendChild(el("tr", { "data-model": m.name }, [
          el("td", { text: m.name }), el("td", { text: AI.formatBytes(m.size) }),
          el("td", { text: share === 0 ? t("ollama.running.cpu") : share + "% (" + AI.formatBytes(m.size_vram) + ")" }),
          el("td", { text: expiry(m.expires_at) }),
          el("td", {}, [el("button", { type: "button", "data-action": "unload", text: t("ollama.models.unload"),
            on: { click: function () { unload(m.name); } } })])]));
      });
      $(".ollama-running-empty").hidden = data.models.length > 0;
    }, function () {
      $("#ollama-running tbody").textContent = "";
      $(".ollama-running-empty").hidden = true;
    });
  }

  function loadStorage() {
    return AI.api(q("/ollama/storage")).then(function (report) {
      var facts = $(".ollama-storage-facts"), list = $(".ollama-suggestions");
      facts.textContent = "";
      list.textContent = "";
      state.frees = {};
      report.models.forEach(function (m) { state.frees[m.name] = m.frees; });
      var rows = [["models_dir", report.models_dir || t("ollama.storage.not_visible")],
        ["used", AI.formatBytes(report.used_by_models)], ["partial", AI.formatBytes(report.partial_bytes)]];
      if (report.visible) rows.push(["free", t("ollama.storage.free_of", { free: AI.formatBytes(report.free), total: AI.formatBytes(report.total) })]);
      rows.forEach(function (row) {
        facts.appendChild(el("dt", { text: t("ollama.storage." + row[0]) }));
        facts.appendChild(el("dd", { "data-fact": row[0], text: row[1] }));
      });
      report.suggestions.forEach(function (s) {
        var frees = s.frees === null || s.frees === undefined ? t("ollama.storage.frees_unknown") : AI.formatBytes(s.frees);
        list.appendChild(el("li", { "data-reason": s.reason, text: t("ollama.storage.reason." + s.reason,
          { name: s.name, size: AI.formatBytes(s.size), frees: frees, days: report.unused_days,
            copies: (s.copies || []).join(", ") }) }));
      });
    }, function () { $(".ollama-storage-facts").textContent = ""; });
  }

  function refresh() { return Promise.all([loadModels(), loadRunning(), loadStorage()]); }

  /* -- tasks: pulls and imports --------------------------------------------------------- */
  var listening = false;
  function onTask(update) {
    var handler = state.tasks[update.id];
    if (handler) handler(update);
  }
  function watchTask(task, show) {
    state.tasks[task.id] = show;
    if (!listening) {
      listening = true;
      AI.live("task:" + task.id, "task", onTask);
    } else {
      AI.live("task:" + task.id, "task", function () {});
    }
    show(task);
    /* A task can end before the subscription is in place: read it once more then. */
    setTimeout(function () {
      AI.api("/tasks/" + task.id).then(onTask, function () {});
    }, 1500);
  }

  function showProgress(dialog, prefix) {
    return function (task) {
      var bar = $("progress", dialog), line = $("." + prefix + "-state", dialog), out = $("." + prefix + "-error", dialog);
      bar.hidden = false;
      bar.value = task.percent || 0;
      var parts = [(task.percent || 0).toFixed(1) + "%"];
      if (task.bytes_per_second) parts.push(AI.formatBytes(task.bytes_per_second) + "/s");
      if (task.eta_seconds) parts.push(t("ollama.pull.eta", { eta: duration(task.eta_seconds) }));
      if (task.message) parts.push(task.message);
      line.textContent = parts.join(" · ");
      out.textContent = task.error ? errorText(task.error) : "";
      dialog.setAttribute("data-status", task.status);
      var running = FINAL.indexOf(task.status) < 0;
      var cancel = $("[data-action=cancel]", dialog), retry = $("[data-action=retry]", dialog);
      if (cancel) cancel.hidden = !running;
      if (retry) retry.hidden = running || task.status === "succeeded";
      if (task.status === "succeeded") refresh();
    };
  }

  var pullDialog = $("#ollama-pull-dialog"), pullTask = null;
  $("#ollama-pull-open").addEventListener("click", function () {
    pullDialog.removeAttribute("data-status");
    $("progress", pullDialog).hidden = true;
    $(".ollama-pull-state", pullDialog).textContent = "";
    $(".ollama-pull-error", pullDialog).textContent = "";
    pullDialog.showModal();
  });
  $("[data-action=start]", pullDialog).addEventListener("click", function () {
    var out = $(".ollama-pull-error", pullDialog);
    out.textContent = "";
    AI.api("/ollama/pulls", { method: "POST", body: { name: $("[name=name]", pullDialog).value, endpoint: state.endpoint } })
      .then(function (task) {
        pullTask = task;
        watchTask(task, showProgress(pullDialog, "ollama-pull"));
        if (task.warnings && task.warnings.length) out.textContent = task.warnings.join(" ");
      }, function (e) { out.textContent = errorText(e); });
  });
  $("[data-action=cancel]", pullDialog).addEventListener("click", function () {
    if (pullTask) AI.api("/tasks/" + pullTask.id + "/cancel", { method: "POST" }).catch(banner);
  });
  $("[data-action=retry]", pullDialog).addEventListener("click", function () {
    if (pullTask) AI.api("/tasks/" + pullTask.id + "/retry", { method: "POST" }).then(state.tasks[pullTask.id], banner);
  });

  var importDialog = $("#ollama-import-dialog");
  $("#ollama-import-open").addEventListener("click", function () { importDialog.showModal(); });
  $("[data-action=start]", importDialog).addEventListener("click", function () {
    var form = $("form", importDialog), out = $(".ollama-import-error", importDialog);
    var fields = { name: form.name.value.trim(), endpoint: state.endpoint };
    ["system", "template", "quantize"].forEach(function (key) { if (form[key].value.trim()) fields[key] = form[key].value.trim(); });
    out.textContent = "";
    var started;
    if (form.file.files.length) {
      var file = form.file.files[0];
      var query = Object.keys(fields).map(function (k) { return k + "=" + encodeURIComponent(fields[k]); }).join("&");
      var csrf = document.querySelector('meta[name="csrf-token"]');
      started = fetch("/api/v2/ai/ollama/imports?" + query + "&filename=" + encodeURIComponent(file.name), {
        method: "POST", body: file, credentials: "same-origin",
        headers: { "Content-Type": "application/octet-stream", "Accept": "application/json",
                   "X-CSRF-Token": csrf ? csrf.content : "" }
      }).then(function (response) {
        return response.json().then(function (data) { if (!response.ok) throw data.error; return data; });
      });
    } else {
      fields.path = form.path.value.trim();
      started = AI.api("/ollama/imports", { method: "POST", body: fields });
    }
    started.then(function (task) { watchTask(task, showProgress(importDialog, "ollama-import")); },
                 function (e) { out.textContent = errorText(e); });
  });

  loadEndpoints();
  refresh();
})();
