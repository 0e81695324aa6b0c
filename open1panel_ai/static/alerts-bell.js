/* The alerts bell: on every AI page (static/ai.js loads it), in the header's tools beside the
   language switch, with the count of unread alerts pushed live over the /ai link. It links to
   the alert history; it stays hidden where the alerts feature does not answer. */
(function () {
  "use strict";
  var AI = window.AI, t = AI.t;
  var here = document.currentScript ? document.currentScript.src : "";
  if (document.getElementById("alerts-bell")) return;

  if (here) {
    var style = document.createElement("link");
    style.rel = "stylesheet";
    style.href = here.replace(/alerts-bell\.js(\?.*)?$/, "alerts.css");
    document.head.appendChild(style);
  }

  var bell = document.createElement("a");
  bell.id = "alerts-bell";
  bell.className = "alerts-bell";
  bell.href = "/ai/alerts/#alerts-history";
  bell.hidden = true;
  var SVG = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(SVG, "svg");
  icon.setAttribute("class", "alerts-bell-icon");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("aria-hidden", "true");
  var shape = document.createElementNS(SVG, "path");
  shape.setAttribute("d", "M12 2a6 6 0 0 0-6 6v3.6l-1.8 3.6A1 1 0 0 0 5.1 17h13.8a1 1 0 0 0 .9-1.8L18 11.6V8a6 6 0 0 0-6-6zm-2.8 16a2.9 2.9 0 0 0 5.6 0z");
  shape.setAttribute("fill", "currentColor");
  icon.appendChild(shape);
  var count = document.createElement("span");
  count.className = "alerts-bell-count";
  count.hidden = true;
  bell.appendChild(icon);
  bell.appendChild(count);

  function place() {
    var tools = document.querySelector("header .tools") || document.querySelector("header");
    if (tools) {
      tools.insertBefore(bell, tools.firstChild);
    } else {
      bell.classList.add("alerts-bell-floating");
      document.body.appendChild(bell);
    }
  }

  function show(data) {
    bell.hidden = false;
    bell.dataset.unread = data.unread;
    bell.dataset.firing = data.firing;
    count.textContent = data.unread > 99 ? "99+" : String(data.unread);
    count.hidden = data.unread === 0;
    var label = t("alerts.bell.unread", { count: data.unread });
    bell.title = label;
    bell.setAttribute("aria-label", label);
  }

  function refresh() {
    AI.api("/alerts/counts").then(show, function (error) {
      if (error.code !== "network_error") bell.hidden = true;  // no alerts feature here
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", place);
  else place();
  refresh();
  // Read again each time the subscription is confirmed (after a reconnect too): a change
  // before then was pushed to nobody.
  AI.live("alerts", "alerts", show, refresh);
})();
