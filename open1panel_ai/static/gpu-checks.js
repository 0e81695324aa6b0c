/* The GPU compatibility check in GPUMonitorWidget: what was checked, what it found, and the
   fixes; the summary line counts the problems. */
(function () {
  "use strict";
  var t = window.AI.t;
  var body = document.querySelector("#gpu-checks tbody");
  var RESULTS = { "true": "gpu.checks.ok", "false": "gpu.checks.failed", "null": "gpu.checks.unknown" };

  function row(check) {
    var tr = document.createElement("tr");
    tr.dataset.check = check.name;
    tr.dataset.ok = String(check.ok);
    var name = document.createElement("th");
    name.scope = "row";
    name.textContent = check.name;
    var result = document.createElement("td");
    result.textContent = t(RESULTS[String(check.ok)]);
    var detail = document.createElement("td");
    detail.textContent = check.detail;
    if (check.fix && check.ok !== true) {
      var fix = document.createElement("p");
      fix.className = "muted";
      fix.textContent = t("gpu.fix", { fix: check.fix });
      detail.appendChild(fix);
    }
    tr.append(name, result, detail);
    return tr;
  }

  function load() {
    window.AI.api("/gpu/checks").then(function (report) {
      body.textContent = "";
      report.checks.forEach(function (check) { body.appendChild(row(check)); });
      var problems = report.checks.filter(function (check) { return check.ok === false; }).length;
      document.querySelector("#gpu-checks .gpu-checks-summary").textContent = problems
        ? t("gpu.checks.problems", { count: problems }) : t("gpu.checks.all_ok");
    }, function (error) {
      body.textContent = "";
      var tr = document.createElement("tr");
      tr.className = "gpu-checks-error";
      var td = document.createElement("td");
      td.colSpan = 3;
      td.textContent = error.message;
      tr.appendChild(td);
      body.appendChild(tr);
    });
  }

  load();
  // A reading that failed while the panel could not be reached is taken again once it can.
  window.AI.connection(function (up, cameBack) {
    if (cameBack && body.querySelector(".gpu-checks-error")) load();
  });
})();
