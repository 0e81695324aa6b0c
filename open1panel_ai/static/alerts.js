/* AlertsPage: the alert history (live, with acknowledge), the built-in rules with their
   settings, and the channels with how their messages fare, a test button and the dialog. */
(function () {
  "use strict";
  var AI = window.AI, t = AI.t;
  var banner = document.getElementById("alerts-banner");
  var table = document.getElementById("alerts-table");
  var rows = table.querySelector("tbody");
  var empty = document.getElementById("alerts-empty");
  var filter = document.getElementById("alerts-filter");
  var counts = document.getElementById("alerts-counts");
  var live = document.querySelector("#alerts-history .ai-live");
  var ruleList = document.getElementById("alerts-rule-list");
  var channelTable = document.getElementById("alerts-channel-table");
  var channelRows = channelTable.querySelector("tbody");
  var channelsEmpty = document.getElementById("alerts-channels-empty");
  var dialog = document.getElementById("alerts-channel-dialog");
  var form = document.getElementById("alerts-channel-form");
  var SEVERITIES = ["info", "warning", "critical"];
  var WEBHOOKS = ["webhook", "slack", "feishu", "dingtalk", "wecom"];
  var SIGNED = ["webhook", "feishu", "dingtalk"];
  var editing = null;  // the channel the dialog edits; null: a new one

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function button(text, action) {
    var node = el("button", text);
    node.type = "button";
    node.dataset.action = action;
    return node;
  }

  function showBanner(error) {
    banner.textContent = (error && error.message) || String(error);
    banner.hidden = false;
  }

  function when(value) { return value ? AI.formatDateTime(value) : ""; }

  // -- the history ------------------------------------------------------------------------

  function loadAlerts() {
    var query = "?limit=200" + (filter.value ? "&status=" + filter.value : "");
    return AI.api("/alerts" + query).then(function (data) {
      renderAlerts(data.alerts);
      renderCounts(data);
    }, showBanner);
  }

  function renderCounts(data) {
    counts.textContent = t("alerts.history.counts", { unread: data.unread, firing: data.firing });
    document.getElementById("alerts-ack-all").disabled = data.unread === 0;
  }

  function renderAlerts(alerts) {
    rows.textContent = "";
    empty.hidden = alerts.length > 0;
    table.hidden = alerts.length === 0;
    alerts.forEach(function (alert) {
      var tr = el("tr");
      tr.dataset.alert = alert.id;
      tr.dataset.status = alert.status;
      tr.dataset.read = alert.acknowledged_at ? "yes" : "no";
      var severity = el("td");
      severity.appendChild(el("span", t("alerts.severity." + alert.severity), "alerts-severity"))
        .dataset.severity = alert.severity;
      tr.appendChild(severity);
      var what = el("td");
      what.appendChild(el("strong", t("alerts.rule." + alert.rule) + ": " + alert.subject, "alerts-title"));
      what.appendChild(el("div", AI.text(alert.summary, alert.summary_i18n), "alerts-summary"));
      tr.appendChild(what);
      var status = el("td");
      status.appendChild(el("span", t("alerts.status." + alert.status), "alerts-status")).dataset.status = alert.status;
      tr.appendChild(status);
      var times = el("td", null, "alerts-times");
      times.appendChild(el("div", t("alerts.history.since", { time: when(alert.started_at) })));
      if (alert.resolved_at) times.appendChild(el("div", t("alerts.history.resolved_at", { time: when(alert.resolved_at) })));
      tr.appendChild(times);
      var actions = el("td");
      if (alert.acknowledged_at) {
        actions.appendChild(el("span", t("alerts.history.acknowledged", {
          time: when(alert.acknowledged_at), who: alert.acknowledged_by || "-" }), "muted alerts-acked"));
      } else {
        var ack = button(t("alerts.history.ack"), "ack");
        ack.addEventListener("click", function () {
          AI.busy(ack, AI.api("/alerts/" + alert.id + "/acknowledge", { method: "POST" })).then(loadAlerts, showBanner);
        });
        actions.appendChild(ack);
      }
      tr.appendChild(actions);
      rows.appendChild(tr);
    });
  }

  filter.addEventListener("change", loadAlerts);
  document.getElementById("alerts-ack-all").addEventListener("click", function (event) {
    AI.busy(event.target, AI.api("/alerts/acknowledge", { method: "POST" })).then(loadAlerts, showBanner);
  });

  // -- the rules --------------------------------------------------------------------------

  function paramLabel(rule, name) {
    if (name === "threshold") return t(rule === "gpu_temperature" ? "alerts.param.threshold_celsius" : "alerts.param.threshold_percent");
    return t("alerts.param." + name);
  }

  function numberField(label, name, value) {
    var wrap = el("label", label + " ");
    var input = el("input");
    input.type = "number";
    input.name = name;
    input.min = "0";
    input.step = "any";
    input.value = value;
    wrap.appendChild(input);
    return wrap;
  }

  function checkbox(label, name, checked) {
    var wrap = el("label", null, "alerts-inline");
    var input = el("input");
    input.type = "checkbox";
    input.name = name;
    input.checked = checked;
    wrap.appendChild(input);
    wrap.appendChild(document.createTextNode(" " + label));
    return wrap;
  }

  function ruleState(rule) {
    if (rule.firing) return t("alerts.rules.firing", { count: rule.firing });
    if (rule.pending) return t("alerts.rules.pending", { count: rule.pending });
    return t("alerts.rules.quiet_now");
  }

  function renderRule(rule) {
    var ruleForm = el("form", null, "alerts-rule");
    ruleForm.noValidate = true;
    ruleForm.dataset.rule = rule.id;
    ruleForm.dataset.enabled = rule.enabled ? "yes" : "no";
    var head = el("h3");
    head.appendChild(checkbox(t("alerts.rule." + rule.id), "enabled", rule.enabled));
    var state = el("span", ruleState(rule), "alerts-rule-state muted");
    state.dataset.firing = rule.firing;
    head.appendChild(state);
    ruleForm.appendChild(head);
    ruleForm.appendChild(el("p", t("alerts.rule." + rule.id + ".about"), "muted alerts-rule-about"));
    var fields = el("div", null, "alerts-rule-fields");
    var severity = el("label", t("alerts.rules.severity") + " ");
    var select = el("select");
    select.name = "severity";
    SEVERITIES.forEach(function (name) {
      var option = el("option", t("alerts.severity." + name));
      option.value = name;
      option.selected = name === rule.severity;
      select.appendChild(option);
    });
    severity.appendChild(select);
    fields.appendChild(severity);
    Object.keys(rule.params).forEach(function (name) {
      fields.appendChild(numberField(paramLabel(rule.id, name), "params." + name, rule.params[name]));
    });
    fields.appendChild(numberField(t("alerts.rules.for_seconds"), "for_seconds", rule.for_seconds));
    fields.appendChild(numberField(t("alerts.rules.quiet_seconds"), "quiet_seconds", rule.quiet_seconds));
    fields.appendChild(checkbox(t("alerts.rules.notify_resolved"), "notify_resolved", rule.notify_resolved));
    var save = el("button", t("alerts.rules.save"));
    save.type = "submit";
    fields.appendChild(save);
    fields.appendChild(el("span", "", "alerts-rule-saved muted")).setAttribute("role", "status");
    ruleForm.appendChild(fields);
    var error = el("p", null, "alerts-rule-error");
    error.setAttribute("data-form-error", "");
    error.hidden = true;
    ruleForm.appendChild(error);
    ruleForm.addEventListener("submit", function (event) {
      event.preventDefault();
      saveRule(ruleForm, save);
    });
    return ruleForm;
  }

  function saveRule(ruleForm, save) {
    var body = {
      enabled: ruleForm.elements.enabled.checked,
      severity: ruleForm.elements.severity.value,
      notify_resolved: ruleForm.elements.notify_resolved.checked,
      params: {}
    };
    var numbers = ["for_seconds", "quiet_seconds"];
    Array.prototype.forEach.call(ruleForm.querySelectorAll('input[type="number"]'), function (input) {
      var value = input.value.trim() === "" ? null : Number(input.value);
      if (input.name.indexOf("params.") === 0) body.params[input.name.slice(7)] = value;
      else if (numbers.indexOf(input.name) >= 0) body[input.name] = value;
    });
    AI.clearErrors(ruleForm);
    var note = ruleForm.querySelector(".alerts-rule-saved");
    note.textContent = "";
    AI.busy(save, AI.api("/alerts/rules/" + ruleForm.dataset.rule, { method: "PUT", body: body })).then(function (rule) {
      var fresh = renderRule(rule);
      ruleForm.replaceWith(fresh);
      fresh.querySelector(".alerts-rule-saved").textContent = t("alerts.rules.saved");
    }, function (error) { AI.showError(ruleForm, error); });
  }

  function loadRules() {
    return AI.api("/alerts/rules").then(function (data) {
      ruleList.textContent = "";
      data.rules.forEach(function (rule) { ruleList.appendChild(renderRule(rule)); });
    }, showBanner);
  }

  /* The firing and pending counts of each rule, without touching what is being edited. */
  function refreshRuleStates() {
    AI.api("/alerts/rules").then(function (data) {
      data.rules.forEach(function (rule) {
        var state = ruleList.querySelector('form[data-rule="' + rule.id + '"] .alerts-rule-state');
        if (state) { state.textContent = ruleState(rule); state.dataset.firing = rule.firing; }
      });
    }, function () {});
  }

  // -- the channels -----------------------------------------------------------------------

  function channelTarget(channel) {
    if (channel.kind === "email") return channel.email ? channel.email.to.join(", ") : "";
    return channel.url || "";
  }

  function deliveryCell(channel) {
    var cell = el("td", null, "alerts-delivery");
    var d = channel.delivery;
    var state = "ok";
    if (d.last_error) {
      state = "failing";
      cell.appendChild(el("div", t("alerts.delivery.failing", { error: AI.text(d.last_error, d.last_error_i18n) }), "alerts-delivery-error"));
      if (d.next_attempt_at) cell.appendChild(el("div", t("alerts.delivery.next_try", { time: when(d.next_attempt_at) }), "muted alerts-next-try"));
    } else if (d.last_success_at) {
      cell.appendChild(el("div", t("alerts.delivery.last_sent", { time: when(d.last_success_at) }), "alerts-delivery-ok"));
    } else {
      state = "idle";
      cell.appendChild(el("div", t("alerts.delivery.nothing_yet"), "muted"));
    }
    if (d.waiting) cell.appendChild(el("div", t("alerts.delivery.waiting", { count: d.waiting }), "muted alerts-waiting"));
    if (d.failed) {
      state = "failed";
      var line = el("div", t("alerts.delivery.given_up", { count: d.failed }), "alerts-given-up");
      var retry = button(t("alerts.delivery.retry"), "retry");
      retry.addEventListener("click", function () {
        AI.busy(retry, AI.api("/alerts/channels/" + channel.id + "/retry", { method: "POST" })).then(renderChannelRow, showBanner);
      });
      line.appendChild(document.createTextNode(" "));
      line.appendChild(retry);
      cell.appendChild(line);
    }
    cell.dataset.state = state;
    return cell;
  }

  function channelRow(channel) {
    var tr = el("tr");
    tr.dataset.channel = channel.id;
    tr.dataset.enabled = channel.enabled ? "yes" : "no";
    var name = el("td");
    name.appendChild(el("strong", channel.name));
    if (!channel.enabled) name.appendChild(el("span", t("alerts.channel.off"), "alerts-off"));
    tr.appendChild(name);
    tr.appendChild(el("td", t("alerts.kind." + channel.kind)));
    var target = el("td");
    target.appendChild(el("code", channelTarget(channel)));
    if (channel.has_secret) target.appendChild(el("div", t("alerts.channel.signed"), "muted"));
    tr.appendChild(target);
    tr.appendChild(deliveryCell(channel));
    var actions = el("td", null, "alerts-actions");
    var test = button(t("alerts.channel.test"), "test");
    var result = el("div", null, "alerts-test-result");
    result.setAttribute("role", "status");
    test.addEventListener("click", function () {
      result.textContent = "";
      result.dataset.ok = "";
      AI.busy(test, AI.api("/alerts/channels/" + channel.id + "/test", { method: "POST" })).then(function (answer) {
        result.dataset.ok = "yes";
        result.textContent = t("alerts.channel.test_ok", { answer: answer.answer });
      }, function (error) {
        result.dataset.ok = "no";
        result.textContent = error.message;
      });
    });
    var edit = button(t("alerts.channel.edit"), "edit");
    edit.addEventListener("click", function () { openChannel(channel); });
    var remove = button(t("alerts.channel.delete"), "delete");
    remove.addEventListener("click", function () {
      if (!window.confirm(t("alerts.channel.delete_confirm", { name: channel.name }))) return;
      AI.busy(remove, AI.api("/alerts/channels/" + channel.id, { method: "DELETE" })).then(loadChannels, showBanner);
    });
    actions.appendChild(test);
    actions.appendChild(edit);
    actions.appendChild(remove);
    actions.appendChild(result);
    tr.appendChild(actions);
    return tr;
  }

  function renderChannelRow(channel) {
    var old = channelRows.querySelector('tr[data-channel="' + channel.id + '"]');
    if (old) {
      var result = old.querySelector(".alerts-test-result");
      var fresh = channelRow(channel);
      fresh.querySelector(".alerts-test-result").replaceWith(result);  // keep the test's answer
      old.replaceWith(fresh);
    }
  }

  function loadChannels() {
    return AI.api("/alerts/channels").then(function (data) {
      channelRows.textContent = "";
      channelsEmpty.hidden = data.channels.length > 0;
      channelTable.hidden = data.channels.length === 0;
      data.channels.forEach(function (channel) { channelRows.appendChild(channelRow(channel)); });
    }, showBanner);
  }

  function showKind() {
    var kind = form.elements.kind.value;
    var webhook = WEBHOOKS.indexOf(kind) >= 0;
    form.querySelector(".alerts-when-webhook").hidden = !webhook;
    form.querySelector(".alerts-when-signed").hidden = SIGNED.indexOf(kind) < 0;
    form.querySelector(".alerts-when-email").hidden = webhook;
    form.querySelector(".alerts-kind-hint").textContent = t("alerts.kind." + kind + ".hint");
  }

  function kept(name, text) {
    var node = form.querySelector('[data-kept="' + name + '"]');
    node.textContent = text;
    node.hidden = !text;
  }

  function openChannel(channel) {
    editing = channel;
    AI.openDialog(dialog);
    var title = document.getElementById("alerts-channel-dialog-title");
    title.textContent = channel ? title.dataset.titleEdit : title.dataset.titleNew;
    form.elements.kind.disabled = !!channel;
    var removeSecret = form.elements.remove_secret.closest("label");
    removeSecret.hidden = !(channel && channel.has_secret);
    if (channel) {
      form.elements.name.value = channel.name;
      form.elements.kind.value = channel.kind;
      form.elements.language.value = channel.language;
      form.elements.min_severity.value = channel.min_severity;
      form.elements.send_resolved.checked = channel.send_resolved;
      form.elements.enabled.checked = channel.enabled;
      if (channel.url) kept("url", t("alerts.channel.url_kept", { url: channel.url }));
      if (channel.has_secret) kept("secret", t("alerts.channel.secret_kept"));
      if (channel.email) {
        ["host", "port", "security", "username", "from_address"].forEach(function (name) {
          form.elements["email." + name].value = channel.email[name] === null ? "" : channel.email[name];
        });
        form.elements["email.verify_tls"].checked = channel.email.verify_tls;
        form.elements["email.to"].value = channel.email.to.join(", ");
        if (channel.email.has_password) kept("password", t("alerts.channel.password_kept"));
      }
    }
    showKind();
  }

  function channelBody() {
    var f = form.elements;
    var kind = f.kind.value;
    var body = { name: f.name.value.trim(), language: f.language.value, min_severity: f.min_severity.value,
                 send_resolved: f.send_resolved.checked, enabled: f.enabled.checked };
    if (!editing) body.kind = kind;
    if (WEBHOOKS.indexOf(kind) >= 0) {
      if (f.url.value.trim() || !editing) body.url = f.url.value.trim();
      if (SIGNED.indexOf(kind) >= 0) {
        if (f.secret.value) body.secret = f.secret.value;
        else if (f.remove_secret.checked) body.secret = null;
      }
    } else {
      var email = {
        host: f["email.host"].value.trim(), port: Number(f["email.port"].value || 587),
        security: f["email.security"].value, verify_tls: f["email.verify_tls"].checked,
        username: f["email.username"].value.trim() || null, from_address: f["email.from_address"].value.trim(),
        to: f["email.to"].value.split(/[\s,;]+/).filter(Boolean)
      };
      if (f["email.password"].value) email.password = f["email.password"].value;
      body.email = email;
    }
    return body;
  }

  form.elements.kind.addEventListener("change", showKind);
  form.querySelector("[data-close]").addEventListener("click", function () { dialog.close(); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var submit = form.querySelector('button[type="submit"]');
    var request = editing
      ? AI.api("/alerts/channels/" + editing.id, { method: "PUT", body: channelBody() })
      : AI.api("/alerts/channels", { method: "POST", body: channelBody() });
    AI.busy(submit, request).then(function () {
      dialog.close();
      loadChannels();
    }, function (error) { AI.showError(form, error); });
  });
  document.getElementById("alerts-channel-new").addEventListener("click", function () { openChannel(null); });

  // -- live -------------------------------------------------------------------------------

  var pending = null;
  AI.live("alerts", "alerts", function (data) {
    renderCounts(data);
    if (pending) return;
    pending = setTimeout(function () { pending = null; loadAlerts(); refreshRuleStates(); }, 150);
  }, function () { loadAlerts(); refreshRuleStates(); });  // and once subscribed: a change before then was pushed to nobody
  AI.live("alerts", "alert_channel", renderChannelRow);
  AI.connection(function (connected, cameBack) {
    live.dataset.live = connected ? "on" : "off";
    live.textContent = t(connected ? "alerts.live_on" : "alerts.live_off");
    if (cameBack) { banner.hidden = true; loadChannels(); }  // the alerts come with the subscription
  });

  loadAlerts();
  loadRules();
  loadChannels();
})();
