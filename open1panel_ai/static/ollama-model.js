/* OllamaModelPage: try a model (a streamed chat with a stop button and the figures of its last
   line, or an embed test for an embedding model), build a new model from it (filled from show,
   with a preview of the request), and benchmark it against the table of every result. A load
   past the server's memory budget is asked about before anything is unloaded. */
(function () {
  "use strict";
  var t = AI.t;
  var params = new URLSearchParams(window.location.search);
  var model = params.get("name") || "";
  var endpoint = params.get("endpoint") || "local";
  var csrf = document.querySelector('meta[name="csrf-token"]');
  function $(selector, root) { return (root || document).querySelector(selector); }
  function number(value, digits) { return value === null || value === undefined ? "–" : Number(value).toFixed(digits); }

  $("#ollama-model-name").textContent = model;
  $("#ollama-model-endpoint").textContent = t("ollama.model_page.on", { endpoint: endpoint });
  $("#ollama-bench-csv").href = "/api/v2/ai/ollama/benchmarks.csv";

  function banner(error) {
    var node = $("#ollama-model-banner");
    node.textContent = error ? (error.message || String(error)) : "";
    node.hidden = !error;
  }

  /* A model route's path, one encoded segment at a time (see ollama.js for why). */
  function modelPath(name, suffix) {
    return "/ollama/models/" + name.split("/").map(encodeURIComponent).join("/") + (suffix || "") +
      "?endpoint=" + encodeURIComponent(endpoint);
  }

  /* The budget's 409: say which models would be unloaded and go on only once asked to. */
  var evictBox = $("#ollama-evict"), onEvict = null;
  function askToEvict(error, retry) {
    $(".ollama-evict-text", evictBox).textContent = error.message;
    evictBox.dataset.unload = (error.details.unload || []).join(",");
    evictBox.hidden = false;
    onEvict = retry;
  }
  $("[data-action=evict]", evictBox).addEventListener("click", function () {
    evictBox.hidden = true;
    var retry = onEvict;
    onEvict = null;
    if (retry) retry();
  });
  $("[data-action=keep]", evictBox).addEventListener("click", function () { evictBox.hidden = true; onEvict = null; });

  /* -- try it: chat ---------------------------------------------------------------------- */
  var chatForm = $("#ollama-chat-form"), log = $("#ollama-chat-log"), messages = [], controller = null;

  function turn(role, text) {
    var node = document.createElement("div");
    node.className = "ollama-turn";
    node.dataset.role = role;
    node.textContent = text;
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
    return node;
  }

  function chatOptions(form) {
    var options = {};
    ["temperature", "top_p"].forEach(function (name) { if (form[name].value !== "") options[name] = parseFloat(form[name].value); });
    ["num_ctx", "seed"].forEach(function (name) { if (form[name].value !== "") options[name] = parseInt(form[name].value, 10); });
    if (form.stop.value !== "") options.stop = [form.stop.value];
    return options;
  }

  function showFigures(figures) {
    var box = $("#ollama-chat-figures");
    box.querySelectorAll("[data-figure]").forEach(function (node) {
      var value = figures[node.dataset.figure];
      var unit = /_ms$/.test(node.dataset.figure) ? " ms" : " tok/s";
      node.textContent = number(value, 1) + (value === null || value === undefined ? "" : unit);
    });
    box.hidden = false;
  }

  function setStreaming(on) {
    $("[data-action=send]", chatForm).disabled = on;
    $("[data-action=stop]", chatForm).disabled = !on;
    chatForm.dataset.state = on ? "streaming" : "idle";
  }

  function send(evict) {
    var form = chatForm;
    AI.clearErrors(form);
    var body = { endpoint: endpoint, model: model, messages: [], options: chatOptions(form) };
    if (form.system.value.trim()) body.messages.push({ role: "system", content: form.system.value });
    body.messages = body.messages.concat(messages);
    if (form.keep_alive.value.trim()) body.keep_alive = form.keep_alive.value.trim();
    if (evict) body.evict = true;
    controller = new AbortController();
    setStreaming(true);
    var answer = null, text = "";
    var headers = { "Content-Type": "application/json", "Accept": "application/x-ndjson" };
    if (csrf && csrf.content) headers["X-CSRF-Token"] = csrf.content;
    fetch("/api/v2/ai/ollama/chat", { method: "POST", headers: headers, credentials: "same-origin",
      body: JSON.stringify(body), signal: controller.signal }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          throw (data && data.error) || { code: "http_" + response.status, message: response.statusText, details: {} };
        });
      }
      answer = turn("assistant", "");
      var reader = response.body.getReader(), decoder = new TextDecoder(), pending = "";
      function handle(line) {
        if (!line.trim()) return;
        var data = JSON.parse(line);
        if (data.error) throw { code: "ollama_error", message: data.error, details: {} };
        text += (data.message && data.message.content) || "";
        answer.textContent = text;
        if (data.done) {
          showFigures(data.figures || {});
          chatForm.dataset.doneReason = data.done_reason || "";
        }
      }
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) { handle(pending); return; }
          pending += decoder.decode(chunk.value, { stream: true });
          var lines = pending.split("\n");
          pending = lines.pop();
          lines.forEach(handle);
          return pump();
        });
      }
      return pump();
    }).then(function () {
      messages.push({ role: "assistant", content: text });
    }, function (error) {
      if (error && error.name === "AbortError") {
        if (answer) answer.dataset.stopped = "true";
        messages.push({ role: "assistant", content: text });
        return;
      }
      if (!answer) messages.pop();  // not answered: the question may be sent again
      if (error && error.code === "budget_exceeded") { askToEvict(error, function () { messages.push(lastQuestion); send(true); }); return; }
      AI.showError(form, error);
    }).then(function () { setStreaming(false); controller = null; });
  }

  var lastQuestion = null;
  chatForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = chatForm.message.value.trim();
    if (!text) return;
    lastQuestion = { role: "user", content: text };
    messages.push(lastQuestion);
    turn("user", text);
    chatForm.message.value = "";
    send(false);
  });
  $("[data-action=stop]", chatForm).addEventListener("click", function () { if (controller) controller.abort(); });
  $("[data-action=clear]", chatForm).addEventListener("click", function () {
    messages = [];
    log.textContent = "";
    $("#ollama-chat-figures").hidden = true;
  });

  /* -- try it: embed ----------------------------------------------------------------------- */
  var embedForm = $("#ollama-embed-form");
  embedForm.addEventListener("submit", function (event) {
    event.preventDefault();
    AI.clearErrors(embedForm);
    var request = AI.api("/ollama/embed", { method: "POST", body: { endpoint: endpoint, model: model, input: embedForm.input.value } });
    AI.busy($("[data-action=embed]", embedForm), request).then(function (result) {
      var node = $("#ollama-embed-result");
      node.textContent = t("ollama.embed.result", { dimensions: result.dimensions, ms: number(result.total_ms, 1) });
      node.dataset.dimensions = result.dimensions;
    }, function (error) { AI.showError(embedForm, error); });
  });

  /* Chat or embed: what the model can do decides (Ollama's capabilities). */
  AI.api(modelPath(model)).then(function (shown) {
    var embedding = (shown.capabilities || []).indexOf("embedding") >= 0 && (shown.capabilities || []).indexOf("completion") < 0;
    chatForm.hidden = embedding;
    embedForm.hidden = !embedding;
    document.body.dataset.modelKind = embedding ? "embedding" : "chat";
  }, banner);

  /* -- build ------------------------------------------------------------------------------- */
  var buildForm = $("#ollama-build-form");
  buildForm.from.value = model;

  function buildBody() {
    var form = buildForm, body = { endpoint: endpoint, name: form.name.value.trim(), from: form.from.value.trim(),
      overwrite: form.overwrite.checked };
    ["system", "template", "license"].forEach(function (name) { if (form[name].value) body[name] = form[name].value; });
    if (form.adapter && form.adapter.value.trim()) body.adapter = form.adapter.value.trim();
    if (form.parameters.value.trim()) {
      try { body.parameters = JSON.parse(form.parameters.value); } catch (e) {
        throw { code: "validation_error", message: t("ollama.build.parameters_json"), details: { fields: { parameters: [t("ollama.build.parameters_json")] } } };
      }
    }
    return body;
  }

  function withBody(action) {
    try { return action(buildBody()); } catch (error) { AI.showError(buildForm, error); return null; }
  }

  $("#ollama-build-edit").addEventListener("click", function (event) {
    AI.busy(event.target, AI.api(modelPath(model, "/recipe"))).then(function (recipe) {
      buildForm.from.value = recipe.from;
      buildForm.name.value = model.replace(/:.*$/, "") + "-custom";
      buildForm.system.value = recipe.system || "";
      buildForm.template.value = recipe.template || "";
      buildForm.license.value = recipe.license || "";
      buildForm.parameters.value = Object.keys(recipe.parameters || {}).length ? JSON.stringify(recipe.parameters, null, 2) : "";
      buildForm.dataset.filled = "true";
    }, banner);
  });

  $("[data-action=preview]", buildForm).addEventListener("click", function (event) {
    AI.clearErrors(buildForm);
    withBody(function (body) {
      return AI.busy(event.target, AI.api("/ollama/builds/preview", { method: "POST", body: body })).then(function (preview) {
        var node = $("#ollama-build-preview");
        node.textContent = preview.method + " " + preview.url + "\n" + JSON.stringify(preview.body, null, 2);
        node.hidden = false;
      }, function (error) { AI.showError(buildForm, error); });
    });
  });

  /* Tasks this page follows (a build, a benchmark), by id: their progress arrives over
     Socket.IO on the "tasks" topic, subscribed to from the start so no event is missed. A
     (re)connect reads each followed task once, for what was sent while the link was down. */
  var followed = {}, recent = {}, recentIds = [];
  function onTask(task) {
    if (!task || !task.id) return;
    if (!recent[task.id]) { recentIds.push(task.id); if (recentIds.length > 50) delete recent[recentIds.shift()]; }
    recent[task.id] = task;  // an event may come before the answer that starts the task
    var show = followed[task.id];
    if (show) show(task);
  }
  function latest(task) {
    var seen = recent[task.id];
    return seen && (seen.updated_at || "") >= (task.updated_at || "") ? seen : task;
  }
  AI.live("tasks", "task", onTask);
  AI.connection(function (up) {
    if (!up) return;
    Object.keys(followed).forEach(function (id) {
      AI.api("/tasks/" + encodeURIComponent(id)).then(onTask, function () {});
    });
  });

  /* Follows a task until it ends: progress bar, message, data-status on the form. */
  function follow(form, stateNode, task, onEnd) {
    var bar = $("progress", form);
    bar.hidden = false;
    form.dataset.status = "running";
    followed[task.id] = function (task) {
      bar.value = task.percent || 0;
      stateNode.textContent = AI.text(task.message, task.message_i18n);
      if (["queued", "running"].indexOf(task.status) >= 0) return;
      delete followed[task.id];
      form.dataset.status = task.status;
      if (task.error) stateNode.textContent = AI.text(task.error.message, task.error.i18n);
      if (onEnd) onEnd(task);
    };
    onTask(latest(task));
  }

  buildForm.addEventListener("submit", function (event) {
    event.preventDefault();
    AI.clearErrors(buildForm);
    withBody(function (body) {
      return AI.busy($("[data-action=build]", buildForm), AI.api("/ollama/builds", { method: "POST", body: body })).then(function (task) {
        follow(buildForm, $(".ollama-build-state", buildForm), task);
      }, function (error) { AI.showError(buildForm, error); });
    });
  });

  /* -- benchmark --------------------------------------------------------------------------- */
  var benchForm = $("#ollama-bench-form");

  function renderResults() {
    AI.api("/ollama/benchmarks").then(function (listing) {
      var body = $(".ollama-bench-table tbody");
      body.textContent = "";
      listing.results.forEach(function (r) {
        var row = document.createElement("tr");
        row.dataset.model = r.model;
        row.dataset.endpoint = r.endpoint;
        [r.model, r.endpoint, number(r.ttft_ms, 1) + " ms", number(r.tokens_per_second, 1), number(r.prompt_tokens_per_second, 1),
         number(r.load_ms, 1) + " ms", r.gpu ? r.gpu + " · " + AI.formatBytes(r.vram_used || 0) : t("ollama.bench.cpu"),
         AI.formatDateTime(r.created_at)].forEach(function (text) {
          var cell = document.createElement("td");
          cell.textContent = text;
          row.appendChild(cell);
        });
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "danger";
        remove.dataset.action = "delete-result";
        remove.textContent = t("ollama.bench.delete");
        remove.setAttribute("aria-label", t("ollama.bench.delete_label", { name: r.model, endpoint: r.endpoint }));
        remove.addEventListener("click", function () {
          AI.busy(remove, AI.api("/ollama/benchmarks/" + encodeURIComponent(r.id), { method: "DELETE" })).then(function () {
            row.remove();
            $(".ollama-bench-empty").hidden = body.children.length > 0;
            AI.toast(t("ollama.bench.deleted"));
          }, function (error) { AI.toast(error); });
        });
        var actions = document.createElement("td");
        actions.appendChild(remove);
        row.appendChild(actions);
        row.dataset.result = r.id;
        body.appendChild(row);
      });
      $(".ollama-bench-empty").hidden = listing.results.length > 0;
    }, banner);
  }

  function bench(evict) {
    AI.clearErrors(benchForm);
    var body = { endpoint: endpoint, model: model, runs: parseInt(benchForm.runs.value, 10) || 1 };
    if (evict) body.evict = true;
    AI.busy($("[data-action=bench]", benchForm), AI.api("/ollama/benchmarks", { method: "POST", body: body })).then(function (task) {
      follow(benchForm, $(".ollama-bench-state", benchForm), task, renderResults);
    }, function (error) {
      if (error && error.code === "budget_exceeded") { askToEvict(error, function () { bench(true); }); return; }
      AI.showError(benchForm, error);
    });
  }
  benchForm.addEventListener("submit", function (event) { event.preventDefault(); bench(false); });
  renderResults();
})();
