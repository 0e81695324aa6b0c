/* GPUMonitorWidget: a card per GPU, live uPlot charts of utilization, memory, temperature and
   power, and the GPU process table, fed by the "gpu" Socket.IO topic. In CPU mode it says so
   and shows the CPU readings instead of empty charts. */
(function () {
  "use strict";
  var root = document.getElementById("gpu-monitor");
  if (!root) return;
  var t = window.AI.t;
  var formatBytes = window.AI.formatBytes;
  var POINTS = 300; // live points kept per chart
  var WINDOW_SECONDS = 600; // the charts show the last ten minutes
  var CHARTS = {
    utilization: { unit: "%", max: 100, value: function (d) { return d.utilization_gpu; } },
    memory: { unit: "%", max: 100, value: function (d) {
      return d.memory_total ? (100 * d.memory_used) / d.memory_total : null;
    } },
    temperature: { unit: "°C", value: function (d) { return d.temperature; } },
    power: { unit: "W", value: function (d) { return d.power_draw_w; } }
  };
  var COLORS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
  var plots = {};
  var plotKeys = "";
  var times = [];
  var columns = {}; // chart → device key → values
  var waiting = null; // live samples that arrive while the history is on its way

  function $(selector) { return root.querySelector(selector); }
  function keyOf(device) { return device.uuid || "gpu" + device.index; }
  function na(value, unit) {
    return value === null || value === undefined ? t("gpu.na") : value + (unit ? " " + unit : "");
  }

  function buildPlots(devices) {
    var keys = devices.map(keyOf).join(",");
    if (keys === plotKeys) return;
    plotKeys = keys;
    times = [];
    columns = {};
    Object.keys(CHARTS).forEach(function (name) {
      var target = root.querySelector('[data-chart="' + name + '"] .gpu-chart-plot');
      if (plots[name]) plots[name].destroy();
      columns[name] = {};
      var series = [{}];
      devices.forEach(function (device, position) {
        columns[name][keyOf(device)] = [];
        series.push({ label: device.index + ": " + (device.name || "GPU"),
                      stroke: COLORS[position % COLORS.length], width: 2, spanGaps: true });
      });
      var scale = CHARTS[name].max ? { range: [0, CHARTS[name].max] } : {};
      plots[name] = new window.uPlot({
        width: Math.max(260, target.clientWidth || 320),
        height: 160,
        series: series,
        scales: { x: { time: true, range: function (u, min, max) { return [max - WINDOW_SECONDS, max]; } },
                  y: scale },
        axes: [{}, { values: function (u, ticks) {
          return ticks.map(function (v) { return v + " " + CHARTS[name].unit; });
        }, size: 60 }]
      }, [[]].concat(devices.map(function () { return []; })), target);
    });
  }

  function plotData(name) {
    var data = [times];
    plotKeys.split(",").forEach(function (key) { data.push(columns[name][key]); });
    return data;
  }

  function append(time, devices) {
    times.push(time);
    var byKey = {};
    devices.forEach(function (device) { byKey[keyOf(device)] = device; });
    Object.keys(CHARTS).forEach(function (name) {
      Object.keys(columns[name]).forEach(function (key) {
        var device = byKey[key];
        columns[name][key].push(device && !device.lost ? CHARTS[name].value(device) : null);
        if (columns[name][key].length > POINTS) columns[name][key].shift();
      });
    });
    if (times.length > POINTS) times.shift();
    Object.keys(plots).forEach(function (name) { plots[name].setData(plotData(name)); });
  }

  function appendIfNewer(time, devices) {
    if (!times.length || time > times[times.length - 1]) append(time, devices);
  }

  /* Fill the charts with the last minutes of history, so they are not empty on arrival. */
  function backfill(history) {
    var byDevice = {};
    history.devices.forEach(function (series) { byDevice[series.device] = series; });
    var first = history.devices[0];
    if (!first) return;
    first.times.forEach(function (time) {
      var devices = plotKeys.split(",").map(function (key) {
        var series = byDevice[key];
        var values = series ? series.values : {};
        var at = series ? series.times.indexOf(time) : -1;
        function pick(field) { return at >= 0 && values[field] ? values[field][at] : null; }
        return { uuid: key, utilization_gpu: pick("utilization_gpu"), memory_used: pick("memory_used"),
                 memory_total: pick("memory_total"), temperature: pick("temperature"),
                 power_draw_w: pick("power_draw_w"), lost: at < 0 };
      });
      appendIfNewer(time, devices);
    });
  }

  function card(device) {
    var item = document.createElement("article");
    item.className = "gpu-card";
    item.dataset.gpu = String(device.index);
    item.dataset.state = device.lost ? "lost" : "ok";
    var title = document.createElement("h3");
    title.textContent = device.index + ": " + (device.name || "GPU");
    item.appendChild(title);
    if (device.lost) {
      var badge = document.createElement("p");
      badge.className = "gpu-lost";
      badge.textContent = t("gpu.card.lost");
      var error = document.createElement("p");
      error.className = "muted";
      error.textContent = device.error || "";
      item.append(badge, error);
      return item;
    }
    var rows = [
      ["gpu.card.utilization", na(device.utilization_gpu, "%")],
      ["gpu.card.memory", device.memory_total === null ? t("gpu.na")
        : formatBytes(device.memory_used) + " / " + formatBytes(device.memory_total)],
      ["gpu.card.temperature", na(device.temperature, "°C")],
      ["gpu.card.power", na(device.power_draw_w === null ? null : device.power_draw_w.toFixed(0), "W") +
        (device.power_limit_w === null ? "" : " / " + device.power_limit_w.toFixed(0) + " W")],
      ["gpu.card.fan", na(device.fan_speed, "%")],
      ["gpu.card.clocks", na(device.clock_sm, "MHz") + " / " + na(device.clock_memory, "MHz")],
      ["gpu.card.pstate", na(device.pstate)],
      ["gpu.card.mig", device.mig_mode === null ? t("gpu.na") : t(device.mig_mode ? "gpu.on" : "gpu.off")]
    ];
    var list = document.createElement("dl");
    rows.forEach(function (row) {
      var pair = document.createElement("div");
      var term = document.createElement("dt");
      term.textContent = t(row[0]);
      var value = document.createElement("dd");
      value.textContent = row[1];
      pair.append(term, value);
      list.appendChild(pair);
    });
    item.appendChild(list);
    return item;
  }

  function renderProcesses(processes) {
    var body = $(".gpu-processes tbody");
    body.textContent = "";
    processes.forEach(function (process) {
      var tr = document.createElement("tr");
      tr.dataset.pid = String(process.pid);
      [String(process.pid), process.name || t("gpu.processes.hidden"), process.user || "—",
       process.gpus.join(", "), process.kinds.join(", "),
       process.used_memory === null ? t("gpu.na") : formatBytes(process.used_memory)
      ].forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    $(".gpu-processes-empty").hidden = processes.length > 0;
  }

  function renderOllamaOnCpu(models) {
    var box = $(".gpu-ollama-cpu");
    box.hidden = models.length === 0;
    var list = box.querySelector("ul");
    list.textContent = "";
    models.forEach(function (model) {
      var item = document.createElement("li");
      item.textContent = t("gpu.ollama_cpu.model", { name: model.name, endpoint: model.endpoint,
                                                      size: formatBytes(model.size || 0) });
      list.appendChild(item);
    });
  }

  function notice(text, reason, fix) {
    var box = $(".gpu-notice");
    box.hidden = false;
    box.querySelector(".gpu-notice-text").textContent = text;
    box.querySelector(".gpu-notice-reason").textContent = reason || "";
    box.querySelector(".gpu-notice-fix").textContent = fix ? t("gpu.fix", { fix: fix }) : "";
  }

  function render(sample) {
    root.dataset.mode = sample.mode;
    var cpuMode = sample.mode === "cpu";
    showLive();
    $(".gpu-cards").hidden = cpuMode;
    $(".gpu-charts").hidden = cpuMode;
    $(".gpu-processes").hidden = cpuMode;
    $(".gpu-cpu").hidden = !cpuMode;
    renderOllamaOnCpu(sample.ollama_cpu_models || []);
    if (cpuMode) {
      notice(t("gpu.cpu_mode"), window.AI.text(sample.reason, sample.reason_i18n),
             window.AI.text(sample.fix, sample.fix_i18n));
      var cpu = sample.cpu;
      $('[data-reading="utilization"]').textContent = cpu.utilization.toFixed(1) + " %";
      $('[data-reading="load"]').textContent = cpu.load.map(function (v) {
        return v === null ? "—" : v.toFixed(2);
      }).join(" · ");
      $('[data-reading="memory"]').textContent = formatBytes(cpu.memory_used) + " / " + formatBytes(cpu.memory_total);
      return;
    }
    $(".gpu-notice").hidden = true;
    var cards = $(".gpu-cards");
    cards.textContent = "";
    sample.devices.forEach(function (device) { cards.appendChild(card(device)); });
    renderProcesses(sample.processes);
    if (window.uPlot) {
      var fresh = !plotKeys;
      buildPlots(sample.devices);
      if (fresh) {
        waiting = [sample];
        window.AI.api("/gpu/history?since=" + (sample.time - WINDOW_SECONDS) + "&until=" + sample.time)
          .then(backfill, function () {})
          .then(function () {
            waiting.forEach(function (live) { appendIfNewer(live.time, live.devices); });
            waiting = null;
          });
        return;
      }
      if (waiting) waiting.push(sample);
      else appendIfNewer(sample.time, sample.devices);
    }
  }

  function unavailable(error) {
    if (error.code === "network_error") return;  // the connection banner says so
    root.dataset.mode = "unavailable";
    showLive();
    notice(t("gpu.unavailable"), error.message, error.details && error.details.fix);
  }

  /* The badge beside the title: "live" (green) while GPU samples stream in, "CPU mode" when
     no GPU is used here (the CPU readings stream, but nothing GPU is live), "not live" while
     the panel cannot be reached or GPUs cannot be read. */
  var badge = root.querySelector(".gpu-live");
  var connected = false;
  function showLive() {
    var state = !connected || root.dataset.mode === "unavailable" ? "off"
      : (root.dataset.mode === "cpu" ? "cpu" : "on");
    badge.dataset.live = state;
    badge.textContent = t({ on: "gpu.live", cpu: "gpu.cpu_badge", off: "gpu.offline" }[state]);
  }

  window.AI.api("/gpu").then(render, unavailable);
  window.AI.live("gpu", "gpu", render);
  window.AI.connection(function (up, cameBack) {
    connected = up;
    showLive();
    if (cameBack) {
      $(".gpu-notice").hidden = true;  // what the drop caused goes; a fresh reading says the rest
      window.AI.api("/gpu").then(render, unavailable);
    }
  });
})();
