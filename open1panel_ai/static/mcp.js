/* MCPServersPage: the server list (live status, why a server is down, URL with copy, actions),
   the create/edit form (the command one argument per line, checked before it is saved), the
   live logs drawer, the tools view, the client-config dialog and the import dialog. */
(function () {
  "use strict";
  var AI = window.AI;
  var t = AI.t;
  var servers = {};
  var rows = document.getElementById("mcp-rows");
  var banner = document.getElementById("mcp-banner");
  var connected = true;
  var editing = null;
  var logsFor = null;
  var configFor = null;
  var ACTIVE = ["starting", "running", "unhealthy", "restarting"];

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

  /* Copies `text` and says so on the button for a moment; resetCopy puts the label back at
     once (the snippet it copied is no longer the one shown). */
  function copy(text, button) {
    var done = function () {
      resetCopy(button);
      button.dataset.label = button.textContent;
      button.textContent = t("mcp.copied");
      button.copiedTimer = setTimeout(function () { resetCopy(button); }, 1200);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }

  function resetCopy(button) {
    clearTimeout(button.copiedTimer);
    if (button.dataset.label) button.textContent = button.dataset.label;
    delete button.dataset.label;
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
    var order = Object.keys(servers).sort(function (a, b) { return servers[a].name < servers[b].name ? -1 : 1; });
    document.querySelector(".mcp-empty").hidden = order.length > 0;
    order.forEach(function (id) { rows.appendChild(row(servers[id])); });
  }

  /* The argv as one line for reading, quoted as a POSIX shell reads it: single quotes, or
     double quotes around an argument with single quotes and nothing a shell would expand. */
  function shellJoin(argv) {
    return argv.map(function (arg) {
      if (arg === "") return "''";
      if (/^[\w@%+=:,.\/-]+$/.test(arg)) return arg;
      if (arg.indexOf("'") < 0) return "'" + arg + "'";
      if (!/["$`\\!]/.test(arg)) return '"' + arg + '"';
      return "'" + arg.replace(/'/g, "'\"'\"'") + "'";
    }).join(" ");
  }

  /* Whether the row says why the server is down: while it backs off, when it gave up, and
     while it starts again after a failure. */
  function showsReason(server) {
    return !!server.last_error && (server.status === "restarting" || server.status === "error" ||
      (server.status === "starting" && server.restarts > 0));
  }

  /* What isolation the child got: a badge, and for each layer not in effect why and how to
     fix it. */
  function isolationNote(isolation) {
    var box = el("details", { "class": "mcp-isolation", "data-mode": isolation.mode });
    var summary = el("summary", {}, t("mcp.isolation." + isolation.mode));
    box.appendChild(summary);
    var list = el("ul");
    isolation.layers.forEach(function (layer) {
      var item = el("li", { "data-layer": layer.name, "data-applied": String(layer.applied) },
        t("mcp.isolation.layer." + layer.name) + ": " + t(layer.applied ? "mcp.isolation.applied" : "mcp.isolation.not_applied"));
      if (!layer.applied) {
        item.appendChild(el("div", { "class": "muted" }, AI.text(layer.reason, layer.reason_i18n)));
        if (layer.fix) item.appendChild(el("div", { "class": "muted" }, t("ai.status.fix", { fix: AI.text(layer.fix, layer.fix_i18n) })));
      }
      list.appendChild(item);
    });
    if (isolation.uid !== null) list.appendChild(el("li", { "class": "muted" }, t("mcp.isolation.uid", { uid: isolation.uid })));
    box.appendChild(list);
    return box;
  }

  function row(server) {
    // While the panel cannot be reached nothing about a server's state is known.
    var status = connected ? server.status : "unknown";
    var tr = el("tr", { "data-id": server.id, "data-status": status });
    var name = el("td");
    name.appendChild(el("strong", {}, server.name));
    name.appendChild(el("div", { "class": "muted mcp-source" },
      server.kind === "remote" ? server.url : shellJoin(server.command)));
    tr.appendChild(name);

    var state = el("td");
    state.appendChild(el("span", { "class": "mcp-status ai-badge", "data-status": status },
      connected ? t("mcp.status." + server.status) : t("ai.state.unknown")));
    if (connected && server.restarts) {
      state.appendChild(el("div", { "class": "muted mcp-restarts" }, t("mcp.restarts", { count: server.restarts })));
    }
    if (connected && showsReason(server)) {
      state.appendChild(el("p", { "class": "mcp-reason" }, AI.text(server.last_error, server.last_error_i18n)));
    }
    if (connected && server.isolation && server.kind === "stdio") state.appendChild(isolationNote(server.isolation));
    if (connected && server.status === "stopped" && server.stopped_by_hand && server.autostart) {
      state.appendChild(el("div", { "class": "muted mcp-by-hand" }, t("mcp.stopped_by_hand")));
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
    function action(key, handler) {
      var button = el("button", { type: "button", "data-action": key }, t("mcp.action." + key));
      button.addEventListener("click", function () { handler(button); });
      actions.appendChild(button);
    }
    if (ACTIVE.indexOf(server.status) >= 0) {
      action("stop", function (button) { lifecycle(server.id, "stop", button); });
      action("restart", function (button) { lifecycle(server.id, "restart", button); });
    } else {
      action("start", function (button) { lifecycle(server.id, "start", button); });
    }
    action("edit", function () { openForm(server); });
    action("logs", function () { openLogs(server); });
    action("tools", function () { openTools(server); });
    action("config", function () { openConfig(server); });
    action("token", function () { openToken(server); });
    if (typeof AI.openDomainDialog === "function") {
      action("domain", function () { AI.openDomainDialog({ kind: "mcp", target: server.id }); });
    }
    action("delete", function (button) {
      if (!window.confirm(t("mcp.confirm_delete", { name: server.name }))) return;
      AI.busy(button, AI.api("/mcp/servers/" + server.id, { method: "DELETE" })).then(function () {
        delete servers[server.id];
        render();
      }, showError);
    });
    tr.appendChild(actions);
    return tr;
  }

  function lifecycle(id, verb, button) {
    AI.busy(button, AI.api("/mcp/servers/" + id + "/" + verb, { method: "POST" })).then(update, showError);
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
  var saveButton = document.getElementById("mcp-save");
  var commandBox = form.elements.command;
  var kept = form.querySelector(".mcp-command-kept");
  var checkLine = form.querySelector(".mcp-command-check");
  var warnedFor = null;  // the check whose warning was shown: saving it again goes ahead

  /* The command is edited one argument per line, exactly: no quoting, nothing trimmed. A
     final line break is not an argument, so an argv that ends in an empty argument is shown
     with one more line break to come back the same. */
  function argvText(argv) {
    return argv.join("\n") + (argv[argv.length - 1] === "" ? "\n" : "");
  }

  function textArgv(text) {
    if (text.slice(-1) === "\n") text = text.slice(0, -1);
    return text.split("\n");
  }

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

  /* A remote server's headers, under its URL. A stored value is never shown: left empty, it is
     kept while the URL keeps its host; once the URL points to another host, each value must be
     entered again (the panel names the empty ones beside their fields). */
  var headerRows = el("div", { id: "mcp-header-rows", "data-reset": "" });
  (function () {
    var box = el("fieldset", { "class": "mcp-when-url mcp-headers", hidden: "" });
    box.appendChild(el("legend", {}, t("mcp.form.headers")));
    box.appendChild(el("p", { "class": "muted mcp-hint" }, t("mcp.form.headers_hint")));
    box.appendChild(headerRows);
    var add = el("button", { type: "button", id: "mcp-header-add" }, t("mcp.form.header_add"));
    add.addEventListener("click", function () { addHeaderRow(null); });
    box.appendChild(add);
    form.elements.url.closest("label").after(box);
  })();

  function addHeaderRow(header) {
    var node = el("div", { "class": "mcp-env-row mcp-header-row" });
    var name = el("input", { "class": "mcp-header-name", autocomplete: "off", placeholder: t("mcp.form.header_name") });
    var value = el("input", { "class": "mcp-header-value", type: "password", autocomplete: "off",
                              placeholder: t(header ? "mcp.form.secret_kept" : "mcp.form.header_value") });
    name.value = header ? header.name : "";
    [[name, "mcp.form.header_name"], [value, "mcp.form.header_value"]].forEach(function (pair) {
      var label = el("label");
      label.appendChild(el("span", { "class": "mcp-sr-only" }, t(pair[1])));
      label.appendChild(pair[0]);
      node.appendChild(label);
    });
    node.appendChild(el("span"));
    var remove = el("button", { type: "button", "class": "mcp-header-remove", "aria-label": t("mcp.form.header_remove") }, "×");
    remove.addEventListener("click", function () { node.remove(); });
    node.appendChild(remove);
    headerRows.appendChild(node);
  }

  /* The headers of the form, named after their place in the body (headers.0.value) so that a
     field error is shown beside its input; an empty value keeps the stored one. */
  function headersBody() {
    var headers = [];
    headerRows.querySelectorAll(".mcp-header-row").forEach(function (node) {
      var name = node.querySelector(".mcp-header-name");
      var value = node.querySelector(".mcp-header-value");
      name.name = value.name = "";
      if (!name.value.trim()) return;
      name.name = "headers." + headers.length + ".name";
      value.name = "headers." + headers.length + ".value";
      var header = { name: name.value.trim() };
      if (value.value) header.value = value.value;
      headers.push(header);
    });
    return headers;
  }

  function setSource(source) {
    form.elements.source.value = source;
    form.querySelectorAll(".mcp-when-command").forEach(function (n) { n.hidden = source !== "command"; });
    form.querySelectorAll(".mcp-when-url").forEach(function (n) { n.hidden = source !== "url"; });
  }

  function setWarned(key) {
    warnedFor = key;
    saveButton.textContent = t(key ? "mcp.form.save_anyway" : "mcp.save");
  }

  function openForm(server) {
    editing = server || null;
    AI.openDialog(formDialog);
    showIsolationWarning();
    setWarned(null);
    commandBox.readOnly = false;
    document.getElementById("mcp-form-title").textContent = t(server ? "mcp.form.title_edit" : "mcp.form.title_new");
    form.querySelectorAll("[data-new-only]").forEach(function (node) { node.hidden = !!server; });
    if (server) {
      form.elements.name.value = server.name;
      if (server.command) {
        // An argument with a line break cannot be one line of its own: such a command is
        // shown, not edited, and is left out of the update so that it is kept as it is.
        var multiline = server.command.some(function (arg) { return /[\r\n]/.test(arg); });
        commandBox.value = multiline ? JSON.stringify(server.command) : argvText(server.command);
        commandBox.readOnly = multiline;
        if (multiline) { kept.textContent = t("mcp.form.command_multiline"); kept.hidden = false; }
      }
      form.elements.url.value = server.url || "";
      form.elements.cwd.value = server.cwd || "";
      form.elements.port.value = server.port;
      form.elements.bind_host.value = server.bind_host;
      form.elements.autostart.checked = server.autostart;
      form.elements.restart_policy.value = server.restart_policy;
      form.elements.sessions.value = server.sessions;
      fillProfile(server.profile);
      form.querySelectorAll('input[name="transports"]').forEach(function (box) {
        box.checked = server.transports.indexOf(box.value) >= 0;
      });
      server.env.forEach(addEnvRow);
      server.headers.forEach(addHeaderRow);
    }
    setSource(server && server.kind === "remote" ? "url" : "command");
    if (server && server.command && !commandBox.readOnly) checkCommand();
  }

  /* The env entries of the form, named after their place in the body so that a field error
     (env.1.value) is shown beside its input. Rows without a name are left out. */
  function envBody() {
    var env = [];
    envRows.querySelectorAll(".mcp-env-row").forEach(function (node) {
      var key = node.querySelector(".mcp-env-key");
      var value = node.querySelector(".mcp-env-value");
      key.name = value.name = "";
      if (!key.value.trim()) return;
      key.name = "env." + env.length + ".key";
      value.name = "env." + env.length + ".value";
      var entry = { key: key.value.trim(), secret: node.querySelector(".mcp-env-secret").checked };
      if (value.value || !entry.secret) entry.value = value.value;  // an empty secret keeps the stored one
      env.push(entry);
    });
    return env;
  }

  function fillProfile(profile) {
    form.elements["profile.read"].value = (profile.read || []).join("\n");
    form.elements["profile.write"].value = (profile.write || []).join("\n");
    form.elements["profile.network"].value = profile.network;
    form.elements["profile.memory_mb"].value = profile.memory_mb === null ? "" : profile.memory_mb;
    form.elements["profile.open_files"].value = profile.open_files === null ? "" : profile.open_files;
    form.elements["profile.processes"].value = profile.processes === null ? "" : profile.processes;
    form.elements["profile.isolation"].value = profile.isolation;
    showIsolationWarning();
  }

  function showIsolationWarning() {
    form.querySelector(".mcp-isolation-warning").hidden = form.elements["profile.isolation"].value !== "none";
  }

  /* The permission profile of the form: one path a line; an empty limit is no limit. */
  function profileBody() {
    function paths(name) {
      return form.elements[name].value.split("\n").map(function (line) { return line.trim(); })
        .filter(function (line) { return line; });
    }
    function limit(name) {
      var value = form.elements[name].value.trim();
      return value ? parseInt(value, 10) : null;
    }
    return {
      read: paths("profile.read"), write: paths("profile.write"),
      network: form.elements["profile.network"].value,
      memory_mb: limit("profile.memory_mb"), open_files: limit("profile.open_files"),
      processes: limit("profile.processes"), isolation: form.elements["profile.isolation"].value
    };
  }

  function formBody() {
    var body = {
      name: form.elements.name.value.trim(),
      transports: Array.prototype.filter.call(form.querySelectorAll('input[name="transports"]'),
        function (box) { return box.checked; }).map(function (box) { return box.value; }),
      bind_host: form.elements.bind_host.value.trim(),
      autostart: form.elements.autostart.checked,
      restart_policy: form.elements.restart_policy.value,
      env: envBody()
    };
    if (form.elements.source.value === "url") {
      body.url = form.elements.url.value.trim();
      body.headers = headersBody();
    } else {
      if (!commandBox.readOnly) body.command = textArgv(commandBox.value);
      body.cwd = form.elements.cwd.value.trim() || null;
      body.profile = profileBody();
      body.sessions = form.elements.sessions.value;
    }
    if (form.elements.port.value) body.port = parseInt(form.elements.port.value, 10);
    return body;
  }

  /* What the command check is asked, or null when there is nothing to check. */
  function checkRequest() {
    if (form.elements.source.value !== "command" || commandBox.readOnly) return null;
    var argv = textArgv(commandBox.value);
    if (!argv[0]) return null;
    return { command: argv, env: envBody().filter(function (e) { return e.value !== undefined; }),
             cwd: form.elements.cwd.value.trim() || null };
  }

  /* Asks the panel whether the program can be run as the server would run it, and says so
     under the command: where it was found, or why not and how to install it. Resolves with
     the answer (null when nothing was checked or the check itself failed). */
  function checkCommand() {
    var request = checkRequest();
    if (!request) { checkLine.hidden = true; return Promise.resolve(null); }
    return AI.api("/mcp/command-check", { method: "POST", body: request }).then(function (answer) {
      answer.key = JSON.stringify(request);
      if (JSON.stringify(checkRequest()) !== answer.key) return answer;  // changed meanwhile
      checkLine.hidden = false;
      checkLine.dataset.found = answer.warning ? "no" : "yes";
      checkLine.textContent = answer.warning ? AI.text(answer.warning, answer.warning_i18n)
        : t("mcp.form.program_found", { path: answer.found });
      return answer;
    }, function () { return null; });
  }

  function save() {
    var request = editing
      ? AI.api("/mcp/servers/" + editing.id, { method: "PUT", body: formBody() })
      : AI.api("/mcp/servers", { method: "POST", body: formBody() });
    return request.then(function (server) {
      update(server);
      formDialog.close();
    }, function (error) { AI.showError(form, error); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    AI.clearErrors(form);
    // A program that cannot be found is worth a second look before saving, not a refusal:
    // the first Save shows why, the next one saves.
    AI.busy(saveButton, checkCommand().then(function (answer) {
      if (answer && answer.warning && warnedFor !== answer.key) {
        setWarned(answer.key);
        commandBox.focus();
        return null;
      }
      return save();
    }));
  });
  [commandBox, form.elements.cwd].forEach(function (input) {
    input.addEventListener("input", function () { setWarned(null); });
    input.addEventListener("change", checkCommand);
  });
  envRows.addEventListener("change", function () { setWarned(null); checkCommand(); });
  document.getElementById("mcp-split").addEventListener("click", function (event) {
    // The panel splits the line (like a POSIX shell, as the API does) and the lines show
    // exactly what will be stored.
    var line = form.elements.command_line;
    if (!line.value.trim()) return;
    AI.clearErrors(form);
    AI.busy(event.target, AI.api("/mcp/command-check", { method: "POST", body: { command: line.value } }))
      .then(function (answer) {
        commandBox.value = argvText(answer.argv);
        line.value = "";
        setWarned(null);
        checkCommand();
      }, function (error) {
        var fields = error.details && error.details.fields;
        if (fields && fields.command) error = Object.assign({}, error, { details: { fields: { command_line: fields.command } } });
        AI.showError(form, error);
      });
  });
  form.querySelectorAll('input[name="source"]').forEach(function (radio) {
    radio.addEventListener("change", function () { setSource(radio.value); });
  });
  document.getElementById("mcp-env-add").addEventListener("click", function () { addEnvRow(null); });
  form.elements["profile.isolation"].addEventListener("change", showIsolationWarning);
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
      AI.live("mcp:" + server.id + ":logs", "mcp_log", onLog);
    }, showError);
  }

  function onLog(event) {
    if (event.server_id === logsFor) appendLog(event.lines);
  }

  var toolsDialog = document.getElementById("mcp-tools-dialog");
  function openTools(server) {
    var list = toolsDialog.querySelector(".mcp-tool-list");
    var state = toolsDialog.querySelector(".mcp-tools-state");
    AI.openDialog(toolsDialog);
    state.textContent = t("mcp.tools.loading");
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

  /* Rotating a server's bearer token: asked first; the new token is shown once, to copy. */
  var tokenDialog = document.getElementById("mcp-token-dialog");
  var tokenRotate = document.getElementById("mcp-token-rotate");
  var tokenFor = null;
  function openToken(server) {
    tokenFor = server;
    AI.openDialog(tokenDialog);
    tokenDialog.querySelector(".mcp-token-name").textContent = server.name;
    tokenDialog.querySelector(".mcp-token-ask").hidden = false;
    tokenDialog.querySelector(".mcp-token-done").hidden = true;  // the last token is not shown again
    tokenRotate.hidden = false;
  }
  tokenRotate.addEventListener("click", function () {
    var error = tokenDialog.querySelector(".mcp-form-error");
    error.hidden = true;
    AI.busy(tokenRotate, AI.api("/mcp/servers/" + encodeURIComponent(tokenFor.id) + "/token", { method: "POST" }))
      .then(function (data) {
        tokenDialog.querySelector(".mcp-token-ask").hidden = true;
        tokenRotate.hidden = true;
        tokenDialog.querySelector(".mcp-token-value").textContent = data.token;
        tokenDialog.querySelector(".mcp-token-done").hidden = false;
      }, function (failure) {
        error.textContent = failure.message;
        error.hidden = false;
      });
  });

  var configDialog = document.getElementById("mcp-config-dialog");
  var clientSelect = document.getElementById("mcp-config-client");
  var transportSelect = document.getElementById("mcp-config-transport");
  var addressSelect = document.getElementById("mcp-config-address");
  var configCopy = document.getElementById("mcp-config-copy");
  var prompt = configDialog.querySelector(".mcp-config-prompt");
  function showAddresses(data) {
    // The server's addresses, the one the snippet names chosen; the default comes first.
    addressSelect.textContent = "";
    data.addresses.forEach(function (address) {
      var option = el("option", { value: address.url },
        t("mcp.config.address." + address.kind, { url: address.url }));
      addressSelect.appendChild(option);
    });
    addressSelect.value = data.address;
  }
  function loadConfig() {
    var snippet = configDialog.querySelector(".mcp-config-snippet");
    resetCopy(configCopy);  // "Copied" was about the snippet of the last client
    var asked = encodeURIComponent(configFor.id) + "/client-config?client=" + encodeURIComponent(clientSelect.value) +
      "&transport=" + encodeURIComponent(transportSelect.value);
    if (addressSelect.value) asked += "&address=" + encodeURIComponent(addressSelect.value);
    AI.api("/mcp/servers/" + asked).then(function (data) {
      showAddresses(data);
      snippet.textContent = data.snippet;
      prompt.hidden = !data.prompt_value;
      prompt.querySelector("code").textContent = data.prompt_value || "";
      configDialog.querySelector(".mcp-config-path").textContent = data.path ? t("mcp.config.path", { path: data.path }) : "";
    }, function (error) { snippet.textContent = error.message; });
  }
  function openConfig(server) {
    configFor = server;
    AI.openDialog(configDialog);
    prompt.hidden = true;
    transportSelect.value = server.transports[0];
    addressSelect.textContent = "";  // a new dialog starts at the server's default address
    loadConfig();
  }
  clientSelect.addEventListener("change", loadConfig);
  transportSelect.addEventListener("change", loadConfig);
  addressSelect.addEventListener("change", loadConfig);
  configCopy.addEventListener("click", function () {
    copy(configDialog.querySelector(".mcp-config-snippet").textContent, configCopy);
  });

  var importDialog = document.getElementById("mcp-import-dialog");
  var importForm = document.getElementById("mcp-import-form");
  document.getElementById("mcp-import-open").addEventListener("click", function () { AI.openDialog(importDialog); });
  importForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var results = importForm.querySelector(".mcp-import-results");
    results.textContent = "";
    AI.clearErrors(importForm);
    var document_;
    try {
      document_ = JSON.parse(importForm.elements.document.value);
    } catch (error) {
      AI.showError(importForm, { code: "validation_error", message: t("mcp.import.not_json"),
                                 details: { fields: { document: [t("mcp.import.not_json")] } } });
      return;
    }
    var button = importForm.querySelector('button[type="submit"]');
    AI.busy(button, AI.api("/mcp/import", { method: "POST", body: document_ })).then(function (data) {
      data.results.forEach(function (result) {
        results.appendChild(el("li", { "class": result.ok ? "mcp-import-ok" : "mcp-import-bad" },
          result.name + ": " + (result.ok ? t("mcp.import.created") : result.error.message)));
        if (result.ok) servers[result.server.id] = result.server;
      });
      render();
    }, function (error) {
      // The body's fields are the document's: its errors are shown on the one field there is.
      var fields = error.details && error.details.fields;
      if (fields) error = Object.assign({}, error, { details: { fields: { document: flat(fields) } } });
      AI.showError(importForm, error);
    });
  });

  function flat(fields) {
    return Object.keys(fields).map(function (name) {
      var value = fields[name];
      return name + ": " + (Array.isArray(value) ? value.join(" ") : JSON.stringify(value));
    });
  }

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

  /* While the panel cannot be reached the rows show an unknown state (the shared banner says
     why); when it is back, errors the outage caused go, and the list is read again once the
     subscription is confirmed (as at first). */
  var liveBadge = document.querySelector(".ai-live");
  AI.live("mcp", "mcp", update, load);  // a change before the page subscribed was pushed to nobody
  AI.connection(function (up, cameBack) {
    connected = up;
    liveBadge.dataset.live = up ? "on" : "off";
    liveBadge.textContent = t(up ? "mcp.live_on" : "mcp.live_off");
    if (!up) {
      render();
      return;
    }
    if (cameBack) {
      banner.hidden = true;
      var shown = form.querySelector("[data-form-error]");
      if (!shown.hidden && shown.textContent === t("ai.error.network")) AI.clearErrors(form);
    }
  });
  load();
})();
