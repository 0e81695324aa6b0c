/* AIManagePage: one card per feature with its provider's live status. */
(function () {
  "use strict";
  var t = window.AI.t;
  var REFRESH_MS = 15000;

  function render(status) {
    status.providers.forEach(function (provider) {
      var card = document.querySelector('.ai-card[data-kind="' + provider.kind + '"]');
      if (!card) return;
      card.dataset.state = provider.usable ? "ready" : "unavailable";
      card.querySelector(".ai-badge").textContent = t(provider.usable ? "ai.status.ready" : "ai.status.unavailable");
      card.querySelector(".ai-detail").textContent = provider.usable
        ? t("ai.status.provider", { name: provider.provider })
        : (provider.reason || "");
      card.querySelector(".ai-fix").textContent = !provider.usable && provider.fix
        ? t("ai.status.fix", { fix: provider.fix }) : "";
    });
    var errors = Object.keys(status.plugin_errors);
    var box = document.getElementById("ai-plugin-errors");
    box.hidden = errors.length === 0;
    var list = box.querySelector("ul");
    list.textContent = "";
    errors.forEach(function (name) {
      var item = document.createElement("li");
      item.textContent = name + ": " + status.plugin_errors[name];
      list.appendChild(item);
    });
    document.getElementById("ai-banner").hidden = true;
    document.getElementById("ai-updated").textContent =
      t("ai.status.updated", { time: new Date().toLocaleTimeString() });
  }

  function refresh() {
    window.AI.api("/status").then(render, function () {
      var banner = document.getElementById("ai-banner");
      banner.textContent = t("ai.status.unreachable");
      banner.hidden = false;
    });
  }

  refresh();
  setInterval(function () { if (!document.hidden) refresh(); }, REFRESH_MS);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();

/* The background-task list: the latest tasks, kept live by the "tasks" topic. */
(function () {
  "use strict";
  var t = window.AI.t;
  var SHOWN = 10;
  var tasks = {};
  var section = document.getElementById("ai-tasks");
  var list = section.querySelector(".ai-task-list");
  var liveBadge = section.querySelector(".ai-live");

  function describe(task) {
    var parts = [t("task.status." + task.status)];
    if (task.percent !== null) parts.push(task.percent.toFixed(1) + "%");
    if (task.status === "running" && task.bytes_per_second) {
      parts.push(t("ai.tasks.speed", { speed: window.AI.formatBytes(task.bytes_per_second) }));
    }
    if (task.status === "running" && task.eta_seconds !== null) {
      parts.push(t("ai.tasks.eta", { seconds: Math.round(task.eta_seconds) }));
    }
    var note = task.error ? task.error.message : task.message;
    if (note) parts.push(note);
    return parts.join(" · ");
  }

  function act(task, action) {
    window.AI.api("/tasks/" + encodeURIComponent(task.id) + "/" + action, { method: "POST" })
      .then(upsert, function (error) { window.alert(error.message); });
  }

  function row(task) {
    var item = document.createElement("li");
    item.className = "ai-task";
    item.dataset.task = task.id;
    item.dataset.status = task.status;
    var title = document.createElement("strong");
    title.textContent = task.kind + " · " + task.target;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = task.percent || 0;
    var text = document.createElement("span");
    text.className = "ai-task-text muted";
    text.textContent = describe(task);
    item.append(title, bar, text);
    var action = task.status === "queued" || task.status === "running" ? "cancel"
      : (task.status === "succeeded" ? null : "retry");
    if (action) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = t("ai.tasks." + action);
      button.addEventListener("click", function () { act(task, action); });
      item.append(button);
    }
    return item;
  }

  function render() {
    var latest = Object.keys(tasks).map(function (id) { return tasks[id]; })
      .sort(function (a, b) { return a.created_at < b.created_at ? 1 : -1; })
      .slice(0, SHOWN);
    list.textContent = "";
    latest.forEach(function (task) { list.appendChild(row(task)); });
    section.querySelector(".ai-tasks-empty").hidden = latest.length > 0;
  }

  function upsert(task) {
    var known = tasks[task.id];
    if (!known || known.updated_at <= task.updated_at) tasks[task.id] = task;
    render();
  }

  var socket = window.AI.live("tasks", "task", upsert);
  socket.on("connect", function () {
    liveBadge.dataset.live = "on";
    liveBadge.textContent = t("ai.tasks.live");
    window.AI.api("/tasks?limit=" + SHOWN).then(function (body) { body.tasks.forEach(upsert); });
  });
  socket.on("disconnect", function () {
    liveBadge.dataset.live = "off";
    liveBadge.textContent = t("ai.tasks.offline");
  });
})();
