/* Manager analytics console: the figures of /api/analytics for a period and filters, each
   with its definition, the series of /api/analytics/series charted against the previous
   period (Chart.js, served by the app), CSV of every table, and the list behind a figure. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var TZ = "America/Sao_Paulo";
  var charts = [];
  // Series in the order charted; counts are summed for the "before" figure of the cards.
  var SERIES = ["conversations", "contained", "handoffs", "first_response_mean", "sla_breaches",
    "resolved", "reopened", "csat_mean", "booked", "reschedules", "cancellations", "no_shows",
    "reminders_sent", "reminders_failed"];
  var DEFINED = ["conversations", "containment_rate", "handoffs", "queue_wait", "first_response",
    "unanswered", "handling_time", "resolution_rate", "reopened", "csat", "sla_breaches", "booked",
    "reschedules", "cancellations", "confirmation_rate", "no_show_rate", "lead_time",
    "reminders_sent", "reminders_failed", "reminder_replies", "queue_size", "on_duty"];

  function none() { return T("metrics.none"); }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return none();
    if (seconds < 60) return Math.round(seconds) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    if (seconds < 172800) return (seconds / 3600).toFixed(1).replace(".", ",") + " h";
    return (seconds / 86400).toFixed(1).replace(".", ",") + " dias";
  }
  function percent(share) {
    return share === null || share === undefined ? none() : (share * 100).toFixed(1).replace(".", ",") + "%";
  }
  function decimal(value) { return value === null || value === undefined ? none() : String(value).replace(".", ","); }
  function spread(d) {
    return T("metrics.mean") + " " + duration(d.mean_seconds) + " · " + T("metrics.p50") + " " +
      duration(d.p50_seconds) + " · " + T("metrics.p90") + " " + duration(d.p90_seconds);
  }
  function localToday() {
    return new Intl.DateTimeFormat("en-CA", { timeZone: TZ }).format(new Date());
  }
  function shiftDays(iso, days) {
    var d = new Date(iso + "T12:00:00Z");
    d.setUTCDate(d.getUTCDate() + days);
    return d.toISOString().slice(0, 10);
  }
  function applyPreset() {
    var today = localToday(), preset = $("preset").value;
    var weekday = (new Date(today + "T12:00:00Z").getUTCDay() + 6) % 7;  // Monday = 0
    var first = { today: today, week: shiftDays(today, -weekday) }[preset] || shiftDays(today, 1 - Number(preset));
    $("from").value = first;
    $("to").value = today;
  }
  function query(extra) {
    var parts = [["from", $("from").value], ["to", $("to").value], ["channel", $("channel").value],
      ["attendant", $("attendant").value], ["label", $("label").value], ["sla_minutes", $("sla").value]];
    Object.keys(extra || {}).forEach(function (k) { parts.push([k, extra[k]]); });
    return parts.filter(function (p) { return p[1]; })
      .map(function (p) { return p[0] + "=" + encodeURIComponent(p[1]); }).join("&");
  }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function row(cells) {
    var tr = el("tr");
    cells.forEach(function (cell) {
      var td = el("td");
      if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell === null || cell === undefined ? none() : cell;
      tr.appendChild(td);
    });
    return tr;
  }
  function fill(tableId, rows) {
    var body = $(tableId).querySelector("tbody");
    body.innerHTML = "";
    rows.forEach(function (cells) { body.appendChild(row(cells)); });
  }
  function previousSum(series, name) {
    var s = series && series.series[name];
    if (!s) return null;
    return s.previous.reduce(function (sum, v) { return sum + (v || 0); }, 0);
  }

  /* A figure: its value, detail, definition (tooltip and help panel), the previous period's
     value when known, and the list behind it on click. */
  function card(container, key, value, detail, drill, before) {
    var node = el(drill ? "button" : "div", "metric-card");
    if (drill) {
      node.type = "button";
      node.setAttribute("data-figure", drill.figure);
      node.addEventListener("click", function () { openDrill(drill.figure, drill.value, T("metrics.fig." + key)); });
    }
    node.title = T("metrics.def." + key);
    node.setAttribute("data-card", key);
    node.appendChild(el("div", "value", value));
    node.appendChild(el("div", "label", T("metrics.fig." + key)));
    if (detail) node.appendChild(el("div", "detail", detail));
    if (before !== null && before !== undefined) node.appendChild(el("div", "detail", T("metrics.vs_previous", { value: before })));
    container.appendChild(node);
  }

  function renderCards(r, s) {
    var service = r.service, a = r.appointments, m = r.reminders, live = r.live;
    var box = $("live-cards");
    box.innerHTML = "";
    card(box, "queue_size", live.queue_size, duration(live.longest_wait_seconds));
    card(box, "on_duty", live.attendants.online + " " + T("metrics.presence.online"),
      live.attendants.pausa + " " + T("metrics.presence.pausa") + " · " + live.attendants.offline + " " + T("metrics.presence.offline"));
    box = $("service-cards");
    box.innerHTML = "";
    card(box, "conversations", service.conversations, null, { figure: "conversations" }, previousSum(s, "conversations"));
    card(box, "containment_rate", percent(service.containment_rate), service.contained + " / " + service.conversations, { figure: "contained" });
    card(box, "handoffs", service.handoffs, null, { figure: "handoffs" }, previousSum(s, "handoffs"));
    card(box, "queue_wait", duration(service.queue_wait.mean_seconds), spread(service.queue_wait));
    card(box, "first_response", duration(service.first_response.mean_seconds), spread(service.first_response));
    card(box, "unanswered", service.first_response.unanswered, null, { figure: "unanswered" });
    card(box, "sla_breaches", service.sla.breaches, percent(service.sla.breach_rate) + " · " + duration(service.sla.target_seconds), { figure: "sla_breaches" }, previousSum(s, "sla_breaches"));
    card(box, "handling_time", duration(service.handling_time.mean_seconds), spread(service.handling_time));
    card(box, "resolution_rate", percent(service.resolution_rate), service.resolved + " " + T("metrics.col.resolved").toLowerCase(), { figure: "resolved" });
    card(box, "reopened", service.reopened, null, { figure: "reopened" }, previousSum(s, "reopened"));
    var dist = [1, 2, 3, 4, 5].map(function (n) { return n + "★ " + service.csat.distribution[n]; }).join(" · ");
    card(box, "csat", decimal(service.csat.mean), dist + " · " + percent(service.csat.response_rate), { figure: "csat" });
    box = $("appointment-cards");
    box.innerHTML = "";
    card(box, "booked", a.booked, a.by_origin.map(function (o) { return T("metrics.origin." + o.origin) + ": " + o.booked; }).join(" · "), { figure: "booked" }, previousSum(s, "booked"));
    card(box, "reschedules", a.reschedules, null, { figure: "reschedules" }, previousSum(s, "reschedules"));
    card(box, "cancellations", a.cancellations, null, { figure: "cancellations" }, previousSum(s, "cancellations"));
    card(box, "confirmation_rate", percent(a.confirmation_rate), a.confirmed + " / " + a.visits, { figure: "confirmed" });
    card(box, "no_show_rate", percent(a.no_show_rate), String(a.no_shows), { figure: "no_shows" });
    card(box, "lead_time", duration(a.lead_time.mean_seconds), spread(a.lead_time));
    box = $("reminder-cards");
    box.innerHTML = "";
    card(box, "reminders_sent", m.sent, T("metrics.col.delivered") + ": " + m.delivered + " · " + T("metrics.col.read") + ": " + m.read, null, previousSum(s, "reminders_sent"));
    card(box, "reminders_failed", m.failed, null, null, previousSum(s, "reminders_failed"));
    card(box, "reminder_replies", m.confirmed + m.cancelled, T("metrics.col.confirmed") + ": " + m.confirmed + " · " + T("metrics.col.cancelled") + ": " + m.cancelled);
  }

  function renderTables(r) {
    fill("attendants", r.attendants.map(function (a) {
      return [a.name, a.handled, spread(a.first_response), a.sla_breaches, a.resolved, a.reopened,
        a.transfers_out, a.csat_mean === null ? none() : decimal(a.csat_mean) + " (" + a.csat_responses + ")"];
    }));
    fill("channels", r.channels.map(function (c) {
      return [c.channel, c.conversations, c.handoffs, spread(c.first_response), c.sla_breaches, c.resolved,
        c.csat_mean === null ? none() : decimal(c.csat_mean) + " (" + c.csat_responses + ")"];
    }));
    fill("reasons", r.service.handoff_reasons.map(function (item) {
      var link = el("button", "small secondary", TOr("reason." + item.reason, item.reason.replace(/_/g, " ") || none()));
      link.type = "button";
      link.addEventListener("click", function () { openDrill("reason", item.reason, link.textContent); });
      return [link, item.count];
    }));
    fill("origins", r.appointments.by_origin.map(function (o) {
      return [T("metrics.origin." + o.origin), o.channel, o.booked, o.reschedules];
    }));
    fill("reminder-channels", r.reminders.by_channel.map(function (c) {
      return [c.channel || none(), c.sent, c.delivered, c.read, c.failed, c.confirmed, c.cancelled];
    }));
    var select = $("channel"), chosen = select.value;
    r.channels.forEach(function (c) {
      if (!select.querySelector('option[value="' + c.channel + '"]')) {
        var option = el("option", null, c.channel);
        option.value = c.channel;
        select.appendChild(option);
      }
    });
    select.value = chosen;
  }

  function renderCharts(s) {
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
    var box = $("charts");
    box.innerHTML = "";
    SERIES.forEach(function (name) {
      var data = s.series[name];
      if (!data) return;
      var minutes = name === "first_response_mean";
      var scale = function (values) { return values.map(function (v) { return v === null ? null : (minutes ? Math.round(v / 6) / 10 : v); }); };
      var figure = el("figure", "metrics-chart");
      figure.setAttribute("data-series", name);
      figure.appendChild(el("h3", null, T("metrics.series." + name)));
      var holder = el("div", "canvas-box"), canvas = el("canvas");
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", T("metrics.series." + name));
      holder.appendChild(canvas);
      figure.appendChild(holder);
      box.appendChild(figure);
      charts.push(new window.Chart(canvas, {
        type: "line",
        data: {
          labels: s.granularity === "hour" ? s.buckets.map(function (h) { return h + "h"; }) : s.buckets.map(function (d) { return d.slice(8, 10) + "/" + d.slice(5, 7); }),
          datasets: [
            { label: T("metrics.current"), data: scale(data.current), borderColor: "#0b7a75", backgroundColor: "#0b7a75", tension: 0.2, spanGaps: true },
            { label: T("metrics.previous"), data: scale(data.previous), borderColor: "#8a9a9a", backgroundColor: "#8a9a9a", borderDash: [6, 4], tension: 0.2, spanGaps: true }
          ]
        },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          plugins: { legend: { display: false } },
          scales: { y: { beginAtZero: true } }
        }
      }));
    });
  }

  function renderDefinitions() {
    var list = $("definitions");
    list.innerHTML = "";
    DEFINED.forEach(function (key) {
      list.appendChild(el("dt", null, T("metrics.fig." + key)));
      list.appendChild(el("dd", null, T("metrics.def." + key)));
    });
  }

  function openDrill(figure, value, title) {
    var extra = { figure: figure };
    if (value !== undefined && value !== null) extra.value = value;
    getJson("/api/analytics/drill?" + query(extra)).then(function (d) {
      $("drill").hidden = false;
      $("drill-title").textContent = T("metrics.list_title", { figure: title });
      $("drill-total").textContent = T("metrics.list_total", { shown: d.rows.length, total: d.total });
      $("drill-csv").href = "/api/analytics/export/lista?" + query(extra);
      var head = $("drill-table").querySelector("thead");
      head.innerHTML = "";
      var conversations = d.kind === "conversations";
      var columns = conversations
        ? ["metrics.col.when", "metrics.channel", "metrics.reason", "metrics.col.first_response", "metrics.attendant", "metrics.fig.csat", ""]
        : ["metrics.col.when", "metrics.channel", "metrics.col.starts_at", "metrics.col.status", "metrics.col.doctor"];
      head.appendChild(row(columns.map(function (k) { return k ? T(k) : ""; })));
      fill("drill-table", d.rows.map(function (x) {
        if (!conversations) return [when(x.at), x.channel, when(x.starts_at), x.status, x.doctor];
        var open = el("a", null, T("metrics.open_transcript"));
        open.href = "/staff#conversa=" + x.conversation_id;
        open.target = "_blank";
        open.rel = "noopener";
        return [when(x.at), x.channel, x.reason ? TOr("reason." + x.reason, x.reason) : none(),
          duration(x.first_response_seconds), x.attendant, x.csat, open];
      }));
      $("drill").scrollIntoView();
    }).catch(showError);
  }
  function when(iso) {
    if (!iso) return none();
    return new Date(iso).toLocaleString("pt-BR", { timeZone: TZ, dateStyle: "short", timeStyle: "short" });
  }

  function getJson(url) {
    return fetch(url).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error);
        return data;
      });
    });
  }
  function showError(error) { $("error").textContent = error.message; }

  function load() {
    var q = query();
    Array.prototype.forEach.call(document.querySelectorAll("[data-csv]"), function (link) {
      link.href = "/api/analytics/export/" + link.getAttribute("data-csv") + "?" + q;
    });
    $("series-csv").href = "/api/analytics/export/series?" + q;
    getJson("/api/analytics/console?" + q).then(function (both) {
      $("error").textContent = "";
      $("from").value = both.report.period.from;
      $("to").value = both.report.period.to;
      renderCards(both.report, both.series);
      renderTables(both.report);
      renderCharts(both.series);
      document.body.setAttribute("data-loaded", q);
    }).catch(showError);
  }

  function loadAttendants() {
    return getJson("/api/attendants").then(function (team) {
      team.forEach(function (a) {
        var option = el("option", null, a.name);
        option.value = a.id;
        $("attendant").appendChild(option);
      });
    });
  }

  function loadLabels() {
    return getJson("/api/labels").then(function (labels) {
      labels.forEach(function (l) {
        var option = el("option", null, l.name);
        option.value = l.id;
        $("label").appendChild(option);
      });
    });
  }

  $("filters").addEventListener("submit", function (event) { event.preventDefault(); load(); });
  $("preset").addEventListener("change", function () { applyPreset(); load(); });
  ["channel", "attendant", "label"].forEach(function (id) { $(id).addEventListener("change", load); });
  $("drill-close").addEventListener("click", function () { $("drill").hidden = true; });
  window.catalogReady.then(function () {
    renderDefinitions();
    applyPreset();
    return Promise.all([loadAttendants(), loadLabels()]);
  }).then(load).catch(showError);
})();
