/* AIManagePage: one card per feature with the health of what it runs (GET /overview): models
   and loaded models per Ollama server, MCP servers by state with the failing ones named, the
   GPU mode, the bindings in error. Nothing polls: the overview is fetched again (debounced)
   when a task changes state, an MCP server changes, the GPU mode changes, and on reconnect. */
(function () {
  "use strict";
  var AI = window.AI, t = AI.t;
  var REFRESH_DELAY_MS = 500;
  var BADGES = { ready: "ai.status.ready", attention: "ai.overview.attention", cpu: "gpu.cpu_badge",
                 unavailable: "ai.status.unavailable", unknown: "ai.state.unknown" };
  var latest = null;
  var timer = null;
  var inFlight = false;
  var again = false;

  function card(kind) { return document.querySelector('.ai-card[data-kind="' + kind + '"]'); }

  function item(text, detail, cls) {
    var li = document.createElement("li");
    if (cls) li.className = cls;
    li.appendChild(document.createTextNode(text));
    if (detail) {
      var small = document.createElement("small");
      small.className = "muted ai-health-detail";
      small.textContent = detail;
      li.appendChild(small);
    }
    return li;
  }

  function setState(node, state) {
    node.dataset.state = state;
    node.querySelector(".ai-badge").textContent = t(BADGES[state]);
  }

  function ollamaLines(part) {
    return part.endpoints.map(function (endpoint) {
      if (!endpoint.reachable) {
        return item(t("ai.overview.ollama.unreachable", { name: endpoint.name }), endpoint.error, "ai-health-bad");
      }
      var text = t("ai.overview.ollama.endpoint", {
        name: endpoint.name,
        models: t("ai.overview.ollama.models", { count: endpoint.models }),
        loaded: t("ai.overview.ollama.loaded", { count: endpoint.loaded })
      });
      var names = endpoint.loaded_models.length
        ? t("ai.overview.ollama.loaded_names", { names: endpoint.loaded_models.join(", ") }) : "";
      return item(text, names);
    });
  }

  function mcpLines(part) {
    if (!part.total) return [item(t("ai.overview.mcp.none"))];
    var lines = [item(t("ai.overview.mcp.counts", { running: part.running, failing: part.failing.length,
                                                    stopped: part.stopped }))];
    if (part.changing) lines.push(item(t("ai.overview.mcp.changing", { count: part.changing })));
    part.failing.forEach(function (server) {
      lines.push(item(t("ai.overview.mcp.failing", { name: server.name, status: t("ai.overview.mcp.status." + server.status) }),
                      AI.text(server.error, server.error_i18n), "ai-health-bad"));
    });
    part.unisolated.forEach(function (server) {
      var why = AI.text(server.reason, server.reason_i18n);
      if (server.fix) why += " " + t("ai.status.fix", { fix: AI.text(server.fix, server.fix_i18n) });
      lines.push(item(t("ai.overview.mcp.unisolated." + server.mode, { name: server.name }), why, "ai-health-bad"));
    });
    return lines;
  }

  function gpuLines(part) {
    if (part.mode === "cpu") return [item(t("ai.overview.gpu.cpu"), part.reason)];
    if (part.mode === "unavailable") return [item(t("gpu.unavailable"), part.reason, "ai-health-bad")];
    var lines = [item(t("ai.overview.gpu.devices", { count: part.devices }))];
    if (part.lost) lines.push(item(t("ai.overview.gpu.lost", { count: part.lost }), null, "ai-health-bad"));
    return lines;
  }

  function domainLines(part) {
    var lines = [];
    if (!part.total) lines.push(item(t("ai.overview.domain.none")));
    else {
      lines.push(item(t("ai.overview.domain.bindings", { count: part.total, provider: part.provider || "—" })));
      lines.push(item(t("ai.overview.domain.states", { online: part.online, pending: part.pending, error: part.error })));
    }
    part.failing.forEach(function (binding) {
      lines.push(item(binding.domains.join(", "), AI.text(binding.error, binding.error_i18n), "ai-health-bad"));
    });
    if (part.removals) lines.push(item(t("ai.overview.domain.removals", { count: part.removals }), null, "ai-health-bad"));
    part.warnings.forEach(function (warning) {
      lines.push(item(warning.warning, warning.fix ? t("ai.status.fix", { fix: warning.fix }) : null, "ai-health-bad"));
    });
    return lines;
  }

  var LINES = { ollama: ollamaLines, mcp: mcpLines, gpu: gpuLines, domain: domainLines };

  function render(overview) {
    latest = overview;
    overview.providers.forEach(function (provider) {
      var node = card(provider.kind);
      if (!node) return;
      var part = overview[provider.kind];
      var health = node.querySelector(".ai-health");
      health.textContent = "";
      if (!provider.usable || !part) {
        setState(node, "unavailable");
        node.querySelector(".ai-detail").textContent = provider.usable ? t("ai.overview.not_running") : (provider.reason || "");
        node.querySelector(".ai-fix").textContent = !provider.usable && provider.fix ? t("ai.status.fix", { fix: provider.fix }) : "";
        return;
      }
      setState(node, part.state);
      node.querySelector(".ai-detail").textContent = "";
      node.querySelector(".ai-fix").textContent = "";
      LINES[provider.kind](part).forEach(function (line) { health.appendChild(line); });
    });
    var errors = Object.keys(overview.plugin_errors);
    var box = document.getElementById("ai-plugin-errors");
    box.hidden = errors.length === 0;
    var list = box.querySelector("ul");
    list.textContent = "";
    errors.forEach(function (name) {
      var entry = document.createElement("li");
      entry.textContent = name + ": " + overview.plugin_errors[name];
      list.appendChild(entry);
    });
    document.getElementById("ai-banner").hidden = true;
    document.getElementById("ai-updated").textContent = t("ai.status.updated", { time: AI.formatTime(new Date()) });
  }

  /* One request at a time; a refresh asked for meanwhile runs once this one is done. */
  function refresh() {
    clearTimeout(timer);
    if (inFlight) { again = true; return; }
    inFlight = true;
    AI.api("/overview").then(render, function (error) {
      if (error.code === "network_error") return;  // the connection banner says so
      var banner = document.getElementById("ai-banner");
      banner.textContent = error.message;
      banner.hidden = false;
    }).then(function () {
      inFlight = false;
      if (again) { again = false; refresh(); }
    });
  }

  function refreshSoon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_DELAY_MS);
  }

  /* While the panel cannot be reached, nothing shown is known to be true any more. */
  function markUnknown() {
    document.querySelectorAll(".ai-card").forEach(function (node) { setState(node, "unknown"); });
  }

  var taskStatus = {};
  AI.live("tasks", "task", function (task) {
    if (taskStatus[task.id] !== task.status) refreshSoon();  // not on every progress step
    taskStatus[task.id] = task.status;
  });
  AI.live("mcp", "mcp", refreshSoon);
  AI.live("gpu", "gpu", function (sample) {
    var known = latest && latest.gpu;
    var lost = sample.devices.filter(function (device) { return device.lost; }).length;
    if (!known || known.mode !== sample.mode || known.devices !== sample.devices.length || known.lost !== lost) {
      refreshSoon();
    }
  });
  AI.connection(function (connected, cameBack) {
    if (!connected) {
      clearTimeout(timer);
      markUnknown();
    } else if (cameBack) {
      document.getElementById("ai-banner").hidden = true;
      refresh();
    }
  });
  refresh();
})();

/* The background-task list: the latest tasks, kept live by the "tasks" topic. */
(function () {
  "use strict";
  var AI = window.AI, t = AI.t;
  var SHOWN = 10;
  var tasks = {};
  var section = document.getElementById("ai-tasks");
  var list = section.querySelector(".ai-task-list");
  var liveBadge = section.querySelector(".ai-live");

  function describe(task) {
    var parts = [t("task.status." + task.status)];
    if (task.percent !== null) parts.push(task.percent.toFixed(1) + "%");
    if (task.status === "running" && task.bytes_per_second) {
      parts.push(t("ai.tasks.speed", { speed: AI.formatBytes(task.bytes_per_second) }));
    }
    if (task.status === "running" && task.eta_seconds !== null) {
      parts.push(t("ai.tasks.seconds_left", { count: Math.round(task.eta_seconds) }));
    }
    var note = task.error ? AI.text(task.error.message, task.error.i18n) : AI.text(task.message, task.message_i18n);
    if (note && note !== parts[0]) parts.push(note);
    return parts.join(" · ");
  }

  function act(task, action, button) {
    AI.busy(button, AI.api("/tasks/" + encodeURIComponent(task.id) + "/" + action, { method: "POST" }))
      .then(upsert, function (error) { window.alert(error.message); });
  }

  function row(task) {
    var entry = document.createElement("li");
    entry.className = "ai-task";
    entry.dataset.task = task.id;
    entry.dataset.status = task.status;
    entry.setAttribute("data-live-state", "");
    var title = document.createElement("strong");
    title.textContent = task.kind + " · " + task.target;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = task.percent || 0;
    var text = document.createElement("span");
    text.className = "ai-task-text muted";
    text.textContent = describe(task);
    entry.append(title, bar, text);
    var action = task.status === "queued" || task.status === "running" ? "cancel"
      : (task.status === "succeeded" ? null : "retry");
    if (action) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = t("ai.tasks." + action);
      button.addEventListener("click", function () { act(task, action, button); });
      entry.append(button);
    }
    return entry;
  }

  function render() {
    var shown = Object.keys(tasks).map(function (id) { return tasks[id]; })
      .sort(function (a, b) { return a.created_at < b.created_at ? 1 : -1; })
      .slice(0, SHOWN);
    list.textContent = "";
    shown.forEach(function (task) { list.appendChild(row(task)); });
    section.querySelector(".ai-tasks-empty").hidden = shown.length > 0;
  }

  function upsert(task) {
    var known = tasks[task.id];
    if (!known || known.updated_at <= task.updated_at) tasks[task.id] = task;
    render();
  }

  AI.live("tasks", "task", upsert);
  AI.connection(function (connected) {
    liveBadge.dataset.live = connected ? "on" : "off";
    liveBadge.textContent = t(connected ? "ai.tasks.live" : "ai.tasks.offline");
    // On every (re)connect: what changed while the link was down is fetched again.
    if (connected) AI.api("/tasks?limit=" + SHOWN).then(function (body) { body.tasks.forEach(upsert); });
  });
})();
