/* OllamaServerPage: how the local Ollama server runs (systemd, supervised, or not managed here
   and why), its state and version (with the version check's feature warnings), start, stop and
   restart, its settings (each with its meaning and default; GPUs chosen by UUID), applied as a
   task that is followed until it ends, and its log. Everything that changes is pushed over
   Socket.IO, nothing is read on a timer: the state on "ollama:server", the apply task on
   "tasks", new log lines on "ollama:server:logs" (shown while "follow" is on). */
(function () {
  "use strict";
  var AI = window.AI, t = AI.t;
  var page = document.getElementById("ollama-server-page");
  if (!page) return;
  var form = document.getElementById("server-settings-form");
  var state = { managed: false, task: null, status: null };
  var MAX_LOG_LINES = 2000;

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }
  function banner(message) {
    var box = $("server-banner");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function input(setting, gpus) {
    var name = "settings." + setting.name;
    var value = setting.value === null || setting.value === undefined ? "" : setting.value;
    if (setting.kind === "boolean") {
      var select = el("select", { name: name, "aria-label": setting.name });
      [["", t("ollama.server.use_default")], ["1", t("ollama.server.on")], ["0", t("ollama.server.off")]].forEach(function (pair) {
        var option = el("option", { value: pair[0], text: pair[1] });
        if (pair[0] === value) option.selected = true;
        select.appendChild(option);
      });
      return select;
    }
    if (setting.kind === "choice") {
      var choice = el("select", { name: name, "aria-label": setting.name });
      [""].concat(setting.choices).forEach(function (item) {
        var option = el("option", { value: item, text: item || t("ollama.server.use_default") });
        if (item === value) option.selected = true;
        choice.appendChild(option);
      });
      return choice;
    }
    if (setting.kind === "gpus") {
      var chosen = value ? value.split(",") : [];
      var box = el("fieldset", { "class": "ollama-server-gpus", name: name });
      box.appendChild(el("legend", { text: t("ollama.server.gpus_legend") }));
      if (!gpus.length) box.appendChild(el("p", { "class": "muted", text: t("ollama.server.no_gpus") }));
      gpus.forEach(function (gpu) {
        var check = el("input", { type: "checkbox", value: gpu.uuid, "data-gpu": "" });
        if (chosen.indexOf(gpu.uuid) >= 0) check.checked = true;
        box.appendChild(el("label", {}, [check, document.createTextNode(" " + (gpu.index !== null ? gpu.index + " · " : "") + gpu.name + " (" + gpu.uuid + ")")]));
      });
      var none = el("input", { type: "checkbox", value: "-1", "data-gpu-none": "" });
      if (value === "-1") none.checked = true;
      box.appendChild(el("label", {}, [none, document.createTextNode(" " + t("ollama.server.cpu_only"))]));
      var hidden = el("input", { type: "hidden", name: name, value: value });
      box.appendChild(hidden);
      return box;
    }
    var attrs = { name: name, value: value, "aria-label": setting.name, placeholder: setting.inherited || setting.default };
    if (setting.kind === "integer") { attrs.inputmode = "numeric"; }
    return el("input", attrs);
  }

  function renderSettings(data) {
    var body = form.querySelector("tbody");
    body.textContent = "";
    data.settings.forEach(function (setting) {
      var shownDefault = setting.inherited || setting.default || t("ollama.server.all_gpus");
      body.appendChild(el("tr", { "data-setting": setting.name }, [
        el("th", { scope: "row" }, [el("code", { text: setting.name }), el("div", { "class": "muted", text: setting.meaning })]),
        el("td", {}, [input(setting, data.gpus)]),
        el("td", { text: shownDefault })
      ]));
    });
  }

  function renderState(st) {
    state.status = st ? st.status : null;
    $("server-state").textContent = st
      ? t("ollama.server.status." + st.status) + (st.pid ? " · pid " + st.pid : "") + (st.restarts ? " · " + t("ollama.server.restarts", { count: st.restarts }) : "")
      : "—";
    $("server-state").setAttribute("data-status", st ? st.status : "");
    var last = $("server-last-error");
    last.hidden = !(st && st.last_error && st.status !== "running");
    last.textContent = last.hidden ? "" : AI.text(st.last_error, st.last_error_i18n);
  }

  function render(data) {
    state.managed = data.managed;
    var modes = { systemd: "ollama.server.mode.systemd", supervised: "ollama.server.mode.supervised", unmanaged: "ollama.server.mode.unmanaged" };
    $("server-mode").textContent = modes[data.mode] ? t(modes[data.mode]) : data.mode;
    $("server-url").textContent = data.url;
    var reason = $("server-reason");
    reason.hidden = data.managed;
    reason.textContent = data.managed ? "" : (data.reason || "") + (data.fix ? " " + data.fix : "");
    renderState(data.state);
    $("server-version").textContent = data.version || t("ollama.server.unreachable");
    var warnings = $("server-warnings");
    warnings.textContent = "";
    (data.warnings || []).forEach(function (warning) { warnings.appendChild(el("li", { text: warning })); });
    warnings.hidden = !(data.warnings || []).length;
    page.querySelectorAll("#server-controls button, #server-settings-form button").forEach(function (button) {
      button.disabled = !data.managed;
    });
    if (!form.contains(document.activeElement)) renderSettings(data);
    if (data.apply_task && !state.task) follow(data.apply_task);
  }

  function load() {
    return AI.api("/ollama/server").then(function (data) { banner(""); render(data); },
      function (error) { banner(error.message); });
  }

  function collect() {
    var values = {};
    form.querySelectorAll("tbody tr").forEach(function (row) {
      var name = row.getAttribute("data-setting");
      var gpus = row.querySelector(".ollama-server-gpus");
      if (gpus) {
        var none = gpus.querySelector("[data-gpu-none]");
        var picked = Array.prototype.filter.call(gpus.querySelectorAll("[data-gpu]"), function (c) { return c.checked; })
          .map(function (c) { return c.value; });
        values[name] = none.checked ? "-1" : picked.join(",");
        return;
      }
      var field = row.querySelector("[name]");
      values[name] = field.value.trim() === "" ? null : field.value.trim();
    });
    return values;
  }

  function showTask(task) {
    var line = $("server-apply-status");
    line.hidden = false;
    var text = t("ollama.server.task." + task.status);
    if (task.message) text += " · " + AI.text(task.message, task.message_i18n);
    if (task.error && task.error.message) text += " · " + AI.text(task.error.message, task.error.i18n);
    line.textContent = text;
    line.setAttribute("data-status", task.status);
  }

  /* The apply task arrives over Socket.IO on the "tasks" topic, subscribed to from the start
     so no event is missed; one that came before the answer that started it is kept. */
  var recent = {};
  function onTask(task) {
    if (!task || task.kind !== "ollama.server.apply") return;
    recent = {};
    recent[task.id] = task;
    if (task.id !== state.task) return;
    showTask(task);
    ended(task);
  }
  function ended(task) {
    if (task.status === "queued" || task.status === "running") return;
    state.task = null;
    load();
  }
  AI.live("tasks", "task", onTask);

  function follow(task) {
    var seen = recent[task.id];
    if (seen && (seen.updated_at || "") >= (task.updated_at || "")) task = seen;
    state.task = task.id;
    showTask(task);
    ended(task);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    AI.clearErrors(form);
    var body = { settings: collect(), unload: form.elements.unload.checked, move_models: form.elements.move_models.checked };
    var button = form.querySelector("button[type=submit]");
    AI.busy(button, AI.api("/ollama/server/settings", { method: "PUT", body: body }).then(follow, function (error) {
      AI.showError(form, error);
    }));
  });

  $("server-controls").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) return;
    var action = button.getAttribute("data-action");
    var path = "/ollama/server/" + action;
    if (action === "restart" && $("server-unload-restart").checked) path += "?unload=true";
    AI.busy(button, AI.api(path, { method: "POST" }).then(load, function (error) { banner(error.message); }));
  });

  /* -- the log: its last lines once, then each new line as it is written -------------- */
  var pre = $("server-log"), followBox = $("server-log-follow");

  function showLines(lines, replace) {
    var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    var shown = replace ? lines : (pre.textContent ? pre.textContent.split("\n") : []).concat(lines);
    if (shown.length > MAX_LOG_LINES) shown = shown.slice(shown.length - MAX_LOG_LINES);
    pre.textContent = shown.join("\n");
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  function readLog() {
    if (!state.managed || !followBox.checked) return;
    AI.api("/ollama/server/logs?tail=300").then(function (data) { showLines(data.lines, true); }, function () {});
  }

  AI.live("ollama:server:logs", "ollama_server_log", function (event) {
    if (!followBox.checked || !event) return;
    var lines = event.lines || [];
    if (event.skipped) lines = [t("ollama.server.log_skipped")].concat(lines);
    if (lines.length) showLines(lines, false);
  });
  followBox.addEventListener("change", readLog);  // back on: what was written meanwhile

  AI.live("ollama:server", "ollama_server", function (event) {
    if (!event) return;
    var before = state.status;
    renderState(event.state);
    if (before !== state.status) load();  // a start or an end: the version and settings too
  });
  AI.connection(function (up, cameBack) {
    if (up && cameBack) load().then(readLog);  // what changed while the link was down
  });

  load().then(readLog);
})();
