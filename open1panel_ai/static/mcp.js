/* MCPServersPage: the server list (live status, URL with copy, actions), the create/edit form,
   the live logs drawer, the tools view, the client-config dialog and the import dialog. */
(function () {
  "use strict";
  var AI = window.AI;
  var t = AI.t;
  var servers = {};
  var order = [];
  var rows = document.getElementById("mcp-rows");
  var banner = document.getElementById("mcp-banner");
  var editing = null;
  var logsFor = null;
  var configFor = null;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showError(error) {
    banner.textContent = (error && error.message) || String(error);
    banner.hidden = false;
  }

  function copy(text, button) {
    var done = function () {
      var label = button.textContent;
      button.textContent = t("mcp.copied");
      setTimeout(function () { button.textContent = label; }, 1200);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }

  function fallbackCopy(text) {
    var area = el("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }

  /* -- the list ------------------------------------------------------------------------ */

  function render() {
    rows.textContent = "";
    order = Object.keys(servers).sort(function (a, b) { return servers[a].name < servers[b].name ? -1 : 1; });
    document.querySelector(".mcp-empty").hidden = order.length > 0;
    order.forEach(function (id) { rows.appendChild(row(servers[id])); });
  }

  /* The argv as one line that the server splits back (shlex) into the same list: an argument
     with spaces, quotes or other shell characters goes in single quotes, like shlex.quote. */
  function shellJoin(argv) {
    return argv.map(function (arg) {
      if (arg === "") return "''";
      if (/^[\w@%+=:,.\/-]+$/.test(arg)) return arg;
      return "'" + arg.replace(/'/g, "'\"'\"'") + "'";
    }).join(" ");
  }

  function row(server) {
    var tr = el("tr", { "data-id": server.id, "data-status": server.status });
    var name = el("td");
    name.appendChild(el("strong", {}, server.name));
    name.appendChild(el("div", { "class": "muted mcp-source" },
      server.kind === "remote" ? server.url : shellJoin(server.command)));
    tr.appendChild(name);

    var state = el("td");
    state.appendChild(el("span", { "class": "mcp-status ai-badge", "data-status": server.status },
      t("mcp.status." + server.status)));
    if (server.restarts) state.appendChild(el("div", { "class": "muted" }, t("mcp.restarts", { count: server.restarts })));
    if (server.status === "error" && server.last_error) {
      state.appendChild(el("pre", { "class": "mcp-last-error" }, server.last_error));
    }
    tr.appendChild(state);

    var urls = el("td", { "class": "mcp-urls" });
    [["streamable_http", "mcp.form.streamable"], ["sse", "mcp.form.sse"]].forEach(function (pair) {
      var url = server.endpoints[pair[0]];
      if (!url) return;
      var line = el("div");
      line.appendChild(el("code", { "class": "mcp-url" }, url));
      var button = el("button", { type: "button", "class": "mcp-copy-url", title: t(pair[1]) }, t("mcp.copy"));
      button.addEventListener("click", function () { copy(url, button); });
      line.appendChild(button);
      urls.appendChild(line);
    });
    tr.appendChild(urls);

    var actions = el("td", { "class": "mcp-actions" });
    var active = ["starting", "running", "unhealthy", "restarting"].indexOf(server.status) >= 0;
    function action(key, handler) {
      var button = el("button", { type: "button", "data-action": key }, t("mcp.action." + key));
      button.addEventListener("click", handler);
      actions.appendChild(button);
    }
    if (active) {
      action("stop", function () { lifecycle(server.id, "stop"); });
      action("restart", function () { lifecycle(server.id, "restart"); });
    } else {
      action("start", function () { lifecycle(server.id, "start"); });
    }
    action("edit", function () { openForm(server); });
    action("logs", function () { openLogs(server); });
    action("tools", function () { openTools(server); });
    action("config", function () { openConfig(server); });
    if (typeof AI.openDomainDialog === "function") {
      action("domain", function () { AI.openDomainDialog({ kind: "mcp", target: server.id }); });
    }
    action("delete", function () {
      if (!window.confirm(t("mcp.confirm_delete", { name: server.name }))) return;
      AI.api("/mcp/servers/" + server.id, { method: "DELETE" }).then(function () {
        delete servers[server.id];
        render();
      }, showError);
    });
    tr.appendChild(actions);
    return tr;
  }

  function lifecycle(id, verb) {
    AI.api("/mcp/servers/" + id + "/" + verb, { method: "POST" }).then(update, showError);
  }

  function update(server) {
    if (server.deleted) {
      delete servers[server.id];
    } else {
      servers[server.id] = server;
    }
    render();
  }

  function load() {
    return AI.api("/mcp/servers").then(function (data) {
      servers = {};
      data.servers.forEach(function (server) { servers[server.id] = server; });
      render();
    }, showError);
  }

  /* -- the create/edit form ------------------------------------------------------------ */

  var formDialog = document.getElementById("mcp-form-dialog");
  var form = document.getElementById("mcp-form");
  var envRows = document.getElementById("mcp-env-rows");

  function addEnvRow(entry) {
    var node = document.getElementById("mcp-env-row").content.firstElementChild.cloneNode(true);
    var key = node.querySelector(".mcp-env-key");
    var value = node.querySelector(".mcp-env-value");
    var secret = node.querySelector(".mcp-env-secret");
    key.value = entry ? entry.key : "";
    secret.checked = !!(entry && entry.secret);
    value.type = secret.checked ? "password" : "text";
    if (entry && entry.secret) {
      value.placeholder = t("mcp.form.secret_kept");
    } else if (entry) {
      value.value = entry.value;
    }
    secret.addEventListener("change", function () { value.type = secret.checked ? "password" : "text"; });
    node.querySelector(".mcp-env-remove").addEventListener("click", function () { node.remove(); });
    envRows.appendChild(node);
  }

  function setSource(source) {
    form.elements.source.value = source;
    form.querySelectorAll(".mcp-when-command").forEach(function (n) { n.hidden = source !== "command"; });
    form.querySelectorAll(".mcp-when-url").forEach(function (n) { n.hidden = source !== "url"; });
  }

  function openForm(server) {
    editing = server || null;
    form.reset();
    envRows.textContent = "";
    form.querySelector(".mcp-form-error").hidden = true;
    document.getElementById("mcp-form-title").textContent = t(server ? "mcp.form.title_edit" : "mcp.form.title_new");
    if (server) {
      form.elements.name.value = server.name;
      form.elements.command.value = server.command ? shellJoin(server.command) : "";
      form.elements.url.value = server.url || "";
      form.elements.cwd.value = server.cwd || "";
      form.elements.port.value = server.port;
      form.elements.bind_host.value = server.bind_host;
      form.elements.autostart.checked = server.autostart;
      form.elements.restart_policy.value = server.restart_policy;
      form.elements["t-streamable-http"].checked = server.transports.indexOf("streamable-http") >= 0;
      form.elements["t-sse"].checked = server.transports.indexOf("sse") >= 0;
      server.env.forEach(addEnvRow);
    }
    setSource(server && server.kind === "remote" ? "url" : "command");
    formDialog.showModal();
  }

  function formBody() {
    var source = form.elements.source.value;
    var body = {
      name: form.elements.name.value.trim(),
      transports: ["streamable-http", "sse"].filter(function (name) { return form.elements["t-" + name].checked; }),
      bind_host: form.elements.bind_host.value.trim(),
      autostart: form.elements.autostart.checked,
      restart_policy: form.elements.restart_policy.value,
      env: []
    };
    if (source === "url") {
      body.url = form.elements.url.value.trim();
    } else {
      body.command = form.elements.command.value;
      body.cwd = form.elements.cwd.value.trim() || null;
    }
    if (form.elements.port.value) body.port = parseInt(form.elements.port.value, 10);
    envRows.querySelectorAll(".mcp-env-row").forEach(function (node) {
      var key = node.querySelector(".mcp-env-key").value.trim();
      if (!key) return;
      var entry = { key: key, secret: node.querySelector(".mcp-env-secret").checked };
      var value = node.querySelector(".mcp-env-value").value;
      if (value || !entry.secret) entry.value = value;  // an empty secret keeps the stored one
      body.env.push(entry);
    });
    return body;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var request = editing
      ? AI.api("/mcp/servers/" + editing.id, { method: "PUT", body: formBody() })
      : AI.api("/mcp/servers", { method: "POST", body: formBody() });
    request.then(function (server) {
      update(server);
      formDialog.close();
    }, function (error) {
      var box = form.querySelector(".mcp-form-error");
      var fields = error.details && error.details.fields;
      box.textContent = error.message + (fields ? " " + JSON.stringify(fields) : "");
      box.hidden = false;
    });
  });
  form.querySelectorAll('input[name="source"]').forEach(function (radio) {
    radio.addEventListener("change", function () { setSource(radio.value); });
  });
  document.getElementById("mcp-env-add").addEventListener("click", function () { addEnvRow(null); });
  document.getElementById("mcp-add").addEventListener("click", function () { openForm(null); });

  /* -- logs, tools, configs, import ---------------------------------------------------- */

  var drawer = document.getElementById("mcp-logs");
  var logLines = drawer.querySelector(".mcp-log-lines");

  function appendLog(lines) {
    logLines.textContent += lines.join("\n") + "\n";
    logLines.scrollTop = logLines.scrollHeight;
  }

  function openLogs(server) {
    logsFor = server.id;
    drawer.querySelector(".mcp-logs-name").textContent = server.name;
    logLines.textContent = "";
    drawer.hidden = false;
    AI.api("/mcp/servers/" + server.id + "/logs?tail=200").then(function (data) {
      if (data.lines.length) appendLog(data.lines);
      // One handler for every followed server: later topics only subscribe.
      AI.live("mcp:" + server.id + ":logs", "mcp_log", logHandlerAdded ? ignore : onLog);
      logHandlerAdded = true;
    }, showError);
  }

  var logHandlerAdded = false;
  function ignore() {}

  function onLog(event) {
    if (event.server_id === logsFor) appendLog(event.lines);
  }

  var toolsDialog = document.getElementById("mcp-tools-dialog");
  function openTools(server) {
    var list = toolsDialog.querySelector(".mcp-tool-list");
    var state = toolsDialog.querySelector(".mcp-tools-state");
    list.textContent = "";
    state.textContent = t("mcp.tools.loading");
    toolsDialog.showModal();
    AI.api("/mcp/servers/" + server.id + "/tools").then(function (data) {
      state.textContent = t("mcp.tools.count", { count: data.tools.length });
      data.tools.forEach(function (tool) {
        var item = el("li", { "class": "mcp-tool" });
        item.appendChild(el("strong", {}, tool.name));
        item.appendChild(el("p", {}, tool.description || ""));
        var details = el("details");
        details.appendChild(el("summary", {}, t("mcp.tools.schema")));
        details.appendChild(el("pre", {}, JSON.stringify(tool.input_schema, null, 2)));
        item.appendChild(details);
        list.appendChild(item);
      });
    }, function (error) { state.textContent = error.message; });
  }

  var configDialog = document.getElementById("mcp-config-dialog");
  var clientSelect = document.getElementById("mcp-config-client");
  var transportSelect = document.getElementById("mcp-config-transport");
  function loadConfig() {
    var snippet = configDialog.querySelector(".mcp-config-snippet");
    AI.api("/mcp/servers/" + configFor.id + "/client-config?client=" + clientSelect.value +
           "&transport=" + transportSelect.value).then(function (data) {
      snippet.textContent = data.snippet;
      var prompt = configDialog.querySelector(".mcp-config-prompt");
      prompt.hidden = !data.prompt_value;
      prompt.querySelector("code").textContent = data.prompt_value || "";
      configDialog.querySelector(".mcp-config-path").textContent = data.path ? t("mcp.config.path", { path: data.path }) : "";
    }, function (error) { snippet.textContent = error.message; });
  }
  function openConfig(server) {
    configFor = server;
    transportSelect.value = server.transports[0];
    configDialog.showModal();
    loadConfig();
  }
  clientSelect.addEventListener("change", loadConfig);
  transportSelect.addEventListener("change", loadConfig);
  document.getElementById("mcp-config-copy").addEventListener("click", function (event) {
    copy(configDialog.querySelector(".mcp-config-snippet").textContent, event.target);
  });

  var importDialog = document.getElementById("mcp-import-dialog");
  var importForm = document.getElementById("mcp-import-form");
  document.getElementById("mcp-import-open").addEventListener("click", function () {
    importForm.reset();
    importForm.querySelector(".mcp-import-results").textContent = "";
    importDialog.showModal();
  });
  importForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var results = importForm.querySelector(".mcp-import-results");
    results.textContent = "";
    var document_;
    try {
      document_ = JSON.parse(importForm.elements.document.value);
    } catch (error) {
      results.appendChild(el("li", { "class": "mcp-import-bad" }, t("mcp.import.not_json")));
      return;
    }
    AI.api("/mcp/import", { method: "POST", body: document_ }).then(function (data) {
      data.results.forEach(function (result) {
        results.appendChild(el("li", { "class": result.ok ? "mcp-import-ok" : "mcp-import-bad" },
          result.name + ": " + (result.ok ? t("mcp.import.created") : result.error.message)));
        if (result.ok) servers[result.server.id] = result.server;
      });
      render();
    }, function (error) {
      results.appendChild(el("li", { "class": "mcp-import-bad" }, error.message));
    });
  });

  document.querySelectorAll(".mcp-close").forEach(function (button) {
    button.addEventListener("click", function () {
      var dialog = button.closest("dialog");
      if (dialog) {
        dialog.close();
      } else {
        drawer.hidden = true;
        logsFor = null;
      }
    });
  });

  var socket = AI.live("mcp", "mcp", update);
  var liveBadge = document.querySelector(".ai-live");
  socket.on("connect", function () { liveBadge.dataset.live = "on"; liveBadge.textContent = t("mcp.live_on"); load(); });
  socket.on("disconnect", function () { liveBadge.dataset.live = "off"; liveBadge.textContent = t("mcp.live_off"); });
  load();
})();
