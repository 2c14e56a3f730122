/* Manager metrics: one period, the figures of /api/metrics (definitions in docs/metrics.md). */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return T("metrics.none");
    if (seconds < 60) return Math.round(seconds) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1).replace(".", ",") + " h";
  }
  function percent(share) {
    return share === null || share === undefined ? T("metrics.none") : (share * 100).toFixed(0) + "%";
  }
  function spread(stats) {
    return T("metrics.p50") + " " + duration(stats.p50_seconds) + " · " + T("metrics.p90") + " " + duration(stats.p90_seconds);
  }
  function reasonLabel(reason) {
    return TOr("reason." + reason, reason.replace(/_/g, " "));
  }
  function card(label, value, detail) {
    var node = document.createElement("div");
    node.className = "metric-card";
    [["value", value], ["label", label], ["label", detail || ""]].forEach(function (pair) {
      var line = document.createElement("div");
      line.className = pair[0];
      line.textContent = pair[1];
      node.appendChild(line);
    });
    return node;
  }
  function row(cells) {
    var tr = document.createElement("tr");
    cells.forEach(function (text) {
      var td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    });
    return tr;
  }

  function render(r) {
    var cards = $("cards");
    cards.innerHTML = "";
    cards.appendChild(card(T("metrics.conversations"), r.conversations));
    cards.appendChild(card(T("metrics.handoffs"), r.handoffs, T("metrics.handoff_rate") + ": " + percent(r.handoff_rate)));
    cards.appendChild(card(T("metrics.first_response"), duration(r.first_response.p50_seconds), spread(r.first_response) + " · " + T("metrics.unanswered") + ": " + r.first_response.unanswered));
    cards.appendChild(card(T("metrics.queue_wait"), duration(r.queue_wait.p50_seconds), spread(r.queue_wait)));
    cards.appendChild(card(T("metrics.handling_time"), duration(r.handling_time.p50_seconds), spread(r.handling_time)));
    cards.appendChild(card(T("metrics.resolved"), r.resolved, T("metrics.resolution_rate") + ": " + percent(r.resolution_rate)));
    cards.appendChild(card(T("metrics.csat"), r.csat.average === null ? T("metrics.none") : String(r.csat.average).replace(".", ","), T("metrics.csat_responses") + ": " + r.csat.responses));
    var body = $("attendants").querySelector("tbody");
    body.innerHTML = "";
    r.attendants.forEach(function (a) {
      body.appendChild(row([a.name, a.conversations, spread(a.first_response), a.resolved, a.transfers_out,
        a.csat.average === null ? T("metrics.none") : a.csat.average + " (" + a.csat.responses + ")"]));
    });
    var reasons = $("reasons").querySelector("tbody");
    reasons.innerHTML = "";
    r.handoff_reasons.forEach(function (item) { reasons.appendChild(row([reasonLabel(item.reason), item.count])); });
  }

  function load() {
    var query = [];
    if ($("from").value) query.push("from=" + $("from").value);
    if ($("to").value) query.push("to=" + $("to").value);
    fetch("/api/metrics" + (query.length ? "?" + query.join("&") : "")).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error);
        $("error").textContent = "";
        $("from").value = data.period.from;
        $("to").value = data.period.to;
        render(data);
      });
    }).catch(function (error) { $("error").textContent = error.message; });
  }

  $("period").addEventListener("submit", function (event) { event.preventDefault(); load(); });
  window.catalogReady.then(load);
})();
