/* GPUMonitorWidget: a card per GPU, live uPlot charts of utilization, memory, temperature and
   power over a chosen range (10 min to a year, from the history tiers), and the GPU process
   table, fed by the "gpu" Socket.IO topic. In CPU mode it says so and charts the CPU and
   memory instead. The charts take the page theme's colours and redraw when it changes. */
(function () {
  "use strict";
  var root = document.getElementById("gpu-monitor");
  if (!root) return;
  var t = window.AI.t;
  var formatBytes = window.AI.formatBytes;
  /* The charts of each mode: per GPU in GPU mode, the CPU and memory in CPU mode. `value`
     reads one chart's number from a reading (a live device, the live CPU, or a history row). */
  var SETS = {
    gpu: { attribute: "data-chart", charts: {
      utilization: { unit: "%", max: 100, value: function (d) { return d.utilization_gpu; } },
      memory: { unit: "%", max: 100, value: function (d) {
        return d.memory_total ? (100 * d.memory_used) / d.memory_total : null;
      } },
      temperature: { unit: "°C", value: function (d) { return d.temperature; } },
      power: { unit: "W", value: function (d) { return d.power_draw_w; } }
    } },
    cpu: { attribute: "data-cpu-chart", charts: {
      cpu_utilization: { unit: "%", max: 100, value: function (d) { return d.utilization; } },
      cpu_memory: { unit: "%", max: 100, value: function (d) {
        return d.memory_total ? (100 * d.memory_used) / d.memory_total : null;
      } }
    } }
  };
  /* The spans the range buttons offer; the history API answers each from the tier that
     covers it (every sample for an hour, per minute for 7 days, per hour for a year). */
  var RANGES = { "10m": 600, "1h": 3600, "24h": 86400, "7d": 7 * 86400, "1y": 365 * 86400 };
  var range = "10m";
  var plots = {};
  var plotKeys = "";
  var lines = [];   // [{key, label}] the series shown, one per GPU (or the CPU)
  var mode = null;  // "gpu" or "cpu": which set of charts is drawn
  var times = [];
  var columns = {}; // chart → series key → values
  var waiting = null; // live samples that arrive while the history is on its way

  function $(selector) { return root.querySelector(selector); }
  function keyOf(device) { return device.uuid || "gpu" + device.index; }
  function na(value, unit) {
    return value === null || value === undefined ? t("gpu.na") : value + (unit ? " " + unit : "");
  }

  /* What a sample charts: the series (one per GPU, or the CPU) and each one's reading. */
  function readingsOf(sample) {
    if (sample.mode === "cpu") {
      return sample.cpu ? [{ key: "cpu", label: t("gpu.cpu.series"), reading: sample.cpu }] : [];
    }
    return sample.devices.map(function (device) {
      return { key: keyOf(device), label: device.index + ": " + (device.name || "GPU"),
               reading: device.lost ? null : device };
    });
  }

  /* The page's colours for the charts (they follow the light or dark theme). */
  function palette() {
    var style = getComputedStyle(document.documentElement);
    var read = function (name, fallback) { return style.getPropertyValue(name).trim() || fallback; };
    var series = [];
    for (var n = 1; n <= 8; n += 1) series.push(read("--ai-chart-" + n, "#2563eb"));
    return { series: series, axis: read("--ai-chart-axis", "#556070"), grid: read("--ai-chart-grid", "rgba(0,0,0,.08)") };
  }

  function chartWidth(target) { return Math.max(240, target.clientWidth || 320); }

  /* (Re)draw the charts of the current mode from the data kept, in the theme's colours. */
  function draw() {
    Object.keys(plots).forEach(function (name) { plots[name].destroy(); });
    plots = {};
    if (!mode || !window.uPlot) return;
    var colours = palette();
    var span = RANGES[range];
    var set = SETS[mode];
    Object.keys(set.charts).forEach(function (name) {
      var chart = set.charts[name];
      var target = root.querySelector("[" + set.attribute + '="' + name + '"] .gpu-chart-plot');
      if (!target) return;
      var series = [{}];
      lines.forEach(function (line, position) {
        series.push({ label: line.label, stroke: colours.series[position % colours.series.length], width: 2, spanGaps: true });
      });
      var axis = { stroke: colours.axis, grid: { stroke: colours.grid }, ticks: { stroke: colours.grid } };
      plots[name] = new window.uPlot({
        width: chartWidth(target),
        height: 160,
        series: series,
        scales: { x: { time: true, range: function (u, min, max) { return [max - span, max]; } },
                  y: chart.max ? { range: [0, chart.max] } : {} },
        axes: [axis, Object.assign({ values: function (u, ticks) {
          return ticks.map(function (v) { return v + " " + chart.unit; });
        }, size: 60 }, axis)]
      }, plotData(name), target);
    });
  }

  /* Start the charts afresh for `list` in `kind` mode when the series changed. Returns
     whether it did (the history is then fetched again). */
  function buildPlots(kind, list) {
    var keys = kind + ":" + list.map(function (line) { return line.key; }).join(",");
    if (keys === plotKeys) return false;
    plotKeys = keys;
    mode = kind;
    lines = list.map(function (line) { return { key: line.key, label: line.label }; });
    clearData();
    draw();
    return true;
  }

  function clearData() {
    times = [];
    columns = {};
    Object.keys(SETS[mode].charts).forEach(function (name) {
      columns[name] = {};
      lines.forEach(function (line) { columns[name][line.key] = []; });
    });
  }

  function plotData(name) {
    var data = [times];
    lines.forEach(function (line) { data.push(columns[name][line.key]); });
    return data;
  }

  /* Adds one point in time (`readings`: series key → reading, or null for a gap), dropping
     what fell out of the range shown. */
  function append(time, readings) {
    times.push(time);
    var charts = SETS[mode].charts;
    Object.keys(charts).forEach(function (name) {
      lines.forEach(function (line) {
        var reading = readings[line.key];
        columns[name][line.key].push(reading ? charts[name].value(reading) : null);
      });
    });
    var oldest = time - RANGES[range];
    var drop = 0;
    while (drop < times.length - 1 && times[drop] < oldest) drop += 1;
    if (drop) {
      times.splice(0, drop);
      Object.keys(columns).forEach(function (name) {
        Object.keys(columns[name]).forEach(function (key) { columns[name][key].splice(0, drop); });
      });
    }
  }

  function refresh() { Object.keys(plots).forEach(function (name) { plots[name].setData(plotData(name)); }); }

  function appendLive(sample) {
    if (times.length && sample.time <= times[times.length - 1]) return;
    var readings = {};
    readingsOf(sample).forEach(function (line) { readings[line.key] = line.reading; });
    append(sample.time, readings);
    refresh();
  }

  /* Fill the charts with the range's history, so they are not empty on arrival. */
  function backfill(history) {
    var bySeries = {};
    var all = {};
    history.devices.forEach(function (series) {
      var at = {};
      series.times.forEach(function (time, position) { at[time] = position; all[time] = true; });
      bySeries[series.device] = { series: series, at: at };
    });
    Object.keys(all).map(Number).sort(function (a, b) { return a - b; }).forEach(function (time) {
      if (times.length && time <= times[times.length - 1]) return;
      var readings = {};
      lines.forEach(function (line) {
        var entry = bySeries[line.key];
        var position = entry ? entry.at[time] : undefined;
        if (position === undefined) { readings[line.key] = null; return; }
        var reading = {};
        Object.keys(entry.series.values).forEach(function (field) { reading[field] = entry.series.values[field][position]; });
        readings[line.key] = reading;
      });
      append(time, readings);
    });
    refresh();
  }

  /* Loads the history of the range shown up to `until`, then adds the live samples that came
     meanwhile. */
  function loadHistory(until, first) {
    waiting = first ? [first] : [];
    return window.AI.api("/gpu/history?since=" + (until - RANGES[range]) + "&until=" + until)
      .then(backfill, function () {})
      .then(function () {
        var pending = waiting;
        waiting = null;
        pending.forEach(appendLive);
      });
  }

  function feed(sample) {
    if (!window.uPlot) return;
    var list = readingsOf(sample);
    if (buildPlots(sample.mode, list)) { loadHistory(sample.time, sample); return; }
    if (waiting) waiting.push(sample);
    else appendLive(sample);
  }

  root.querySelectorAll(".gpu-ranges [data-range]").forEach(function (button) {
    button.addEventListener("click", function () {
      range = button.dataset.range;
      root.querySelectorAll(".gpu-ranges [data-range]").forEach(function (each) {
        each.setAttribute("aria-pressed", each === button ? "true" : "false");
      });
      root.dataset.range = range;
      if (!mode) return;
      var until = times.length ? times[times.length - 1] : Date.now() / 1000;
      clearData();
      draw();
      window.AI.busy(button, loadHistory(until, null));
    });
  });
  root.dataset.range = range;
  if (window.AI.onTheme) window.AI.onTheme(draw);
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      Object.keys(plots).forEach(function (name) {
        var target = plots[name].root.parentNode;
        plots[name].setSize({ width: chartWidth(target), height: 160 });
      });
    }, 150);
  });

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
      feed(sample);
      return;
    }
    $(".gpu-notice").hidden = true;
    var cards = $(".gpu-cards");
    cards.textContent = "";
    sample.devices.forEach(function (device) { cards.appendChild(card(device)); });
    renderProcesses(sample.processes);
    feed(sample);
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
