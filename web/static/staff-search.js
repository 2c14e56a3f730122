/* Staff search and past conversations: one box for patients (name, phone, CPF, e-mail) and
   words of any message; the conversations that ended, by period, channel and attendant; and
   a read-only transcript of any of them. A panel of its own in the workspace, which gives
   way as soon as staff.js shows a conversation ("staff:conversation-shown"). What the
   server answers is already limited to the patients the user may look up. */
(function () {
  "use strict";
  var CHANNELS = ["webchat", "whatsapp", "twilio", "messenger", "instagram", "telegram", "email"];
  var team = {};
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function when(iso) {
    return new Date(iso).toLocaleString("pt-BR", { timeZone: "America/Sao_Paulo", day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit" });
  }
  function nameOf(id) { return id === null || id === undefined ? "" : (team[id] || "#" + id); }
  function patientName(name, id) { return name || T("staff.unknown_patient") + " #" + id; }
  function showError(error) { $("search-error").textContent = error.message; }

  // One view of the panel at a time: "search-results", "past" or "transcript".
  function show(view, title) {
    ["search-results", "past", "transcript"].forEach(function (id) { $(id).hidden = id !== view; });
    $("search-title").textContent = title;
    $("search-error").textContent = "";
    $("search-panel").hidden = false;
  }
  function item(list, title, meta, open) {
    var button = el("button", "", undefined);
    button.type = "button";
    button.appendChild(el("div", "title", title));
    button.appendChild(el("div", "meta", meta));
    button.addEventListener("click", open);
    var li = el("li");
    li.appendChild(button);
    list.appendChild(li);
  }
  function fill(list, rows, render, emptyKey) {
    list.innerHTML = "";
    rows.forEach(render);
    if (!rows.length) list.appendChild(el("li", "empty", T(emptyKey || "search.nothing")));
  }

  /* ---- the search box ---- */
  function search(query) {
    api("GET", "/api/search?" + new URLSearchParams({ q: query })).then(function (found) {
      show("search-results", T("search.label") + ": " + query);
      fill($("search-patients"), found.patients, function (p) {
        var contacts = [p.cpf, p.phone, p.email].filter(Boolean).join(" · ");
        item($("search-patients"), patientName(p.name, p.id), contacts, function () {
          openPast({ patient_id: p.id, open: p.open_conversations }, patientName(p.name, p.id));
        });
      });
      fill($("search-messages"), found.messages, function (m) {
        var author = m.internal ? T("search.internal") : T("author." + m.author_kind);
        var meta = [patientName(m.patient_name, m.patient_id), T("channel." + m.channel), author, when(m.created_at)].join(" · ");
        item($("search-messages"), m.text, meta, function () { openTranscript(m.conversation_id); });
      });
    }).catch(showError);
  }

  /* ---- a patient's conversations: the open ones (in the workspace), then the past ---- */
  var openOnes = [];  // the open conversations of the patient the list is narrowed to
  function openMeta(c) {
    var whom = c.owner === "queued" ? T("search.open.queued")
      : c.owner === "bot" ? T("search.open.bot") : T("search.open.with", { nome: nameOf(c.assigned_attendant_id) });
    return [T("channel." + c.channel), whom].join(" · ");
  }
  function renderOpen() {
    var list = $("open-list");
    list.innerHTML = "";
    openOnes.forEach(function (c) {
      item(list, T("search.open.title"), openMeta(c), function () {
        document.dispatchEvent(new CustomEvent("staff:open-conversation", { detail: { conversationId: c.id } }));  // staff.js
      });
    });
    $("open-conversations").hidden = !openOnes.length;
  }

  /* ---- past conversations ---- */
  function filters() {
    var values = {};
    new FormData($("past-filters")).forEach(function (value, key) { if (value) values[key] = value; });
    return values;
  }
  function loadPast() {
    api("GET", "/api/past-conversations?" + new URLSearchParams(filters())).then(function (rows) {
      $("search-error").textContent = "";
      fill($("past-list"), rows, function (c) {
        var meta = [T("channel." + c.channel), T("search.closed_at", { data: when(c.closed_at) })];
        if (c.resolver_id) meta.push(T("search.resolved_by", { nome: nameOf(c.resolver_id) }));
        item($("past-list"), patientName(c.patient_name, c.patient_id), meta.join(" · "), function () {
          openTranscript(c.id);
        });
      }, "search.past_empty");
    }).catch(showError);
  }
  // Open the list, narrowed to one patient when `only` names one.
  function openPast(only, patientLabel) {
    var form = $("past-filters");
    form.elements.patient_id.value = only.patient_id || "";
    openOnes = only.open || [];
    renderOpen();
    $("past-patient").hidden = !only.patient_id;
    if (only.patient_id) {
      $("past-patient").textContent = T("search.filter.patient", { nome: patientLabel }) + " · " + T("search.filter.clear_patient");
    }
    show("past", only.patient_id ? T("search.patient_title", { nome: patientLabel }) : T("search.past"));
    loadPast();
  }

  /* ---- a transcript, read-only ---- */
  function entryText(e) {
    if (e.entry === "change") {
      var d = e.details || {};
      return T("change." + e.kind, {
        to: nameOf(e.to_attendant_id), from: nameOf(e.from_attendant_id),
        actor: nameOf(e.actor_id) || T("author.system"),
        reason: TOr("reason." + d.reason, d.reason || ""), priority: d.priority ? T("priority." + d.priority) : ""
      });
    }
    return T("done." + e.kind) + (e.details.note ? ": " + e.details.note : "");
  }
  function renderEntry(e) {
    var node;
    if (e.entry === "message") {
      node = el("li", "entry author-" + e.author_kind + (e.internal ? " internal" : "") + (e.direction === "in" ? " inbound" : " outbound"));
      var author = e.author_kind === "attendant" ? nameOf(e.author_id) : T("author." + e.author_kind);
      node.appendChild(el("div", "meta", [T("channel." + e.channel), author, when(e.created_at)].join(" · ")));
      node.appendChild(el("div", "text", e.text));
    } else {
      node = el("li", "entry author-system", entryText(e) + " · " + when(e.created_at));
    }
    $("transcript-timeline").appendChild(node);
  }
  function openTranscript(conversationId) {
    api("GET", "/api/transcripts/" + conversationId).then(function (data) {
      var c = data.conversation;
      show("transcript", patientName(c.patient_name, c.patient_id) + " · " + T("channel." + c.channel));
      $("transcript-head").textContent = T(c.status === "open" ? "search.read_only_open" : "search.read_only");
      $("transcript-timeline").innerHTML = "";
      data.timeline.forEach(renderEntry);
    }).catch(showError);
  }

  function fillFilterOptions() {
    var channel = $("past-filters").elements.channel;
    CHANNELS.forEach(function (slug) {
      var option = el("option", "", T("channel." + slug));
      option.value = slug;
      channel.appendChild(option);
    });
    api("GET", "/api/labels").then(function (labels) {
      var label = $("past-filters").elements.label_id;
      labels.forEach(function (l) {
        var option = el("option", "", l.name);
        option.value = l.id;
        label.appendChild(option);
      });
    });
    return api("GET", "/api/attendants").then(function (members) {
      var attendant = $("past-filters").elements.attendant_id;
      members.forEach(function (m) {
        team[m.id] = m.name;
        var option = el("option", "", m.name);
        option.value = m.id;
        attendant.appendChild(option);
      });
    });
  }

  // The box is enabled only once this script handles it (submitted natively, a search
  // would reload the page and vanish); what it shows waits for the catalog.
  function whenReady(act) {
    return function (event) {
      event.preventDefault();
      catalogReady.then(act);
    };
  }
  $("search-form").addEventListener("submit", whenReady(function () {
    var query = $("search-q").value.trim();
    if (query.length >= 2) search(query);
  }));
  $("search-q").disabled = false;
  $("search-form").querySelector("button[type=submit]").disabled = false;
  $("past-open").addEventListener("click", whenReady(function () { openPast({}); }));
  $("past-patient").addEventListener("click", whenReady(function () { openPast({}); }));
  $("past-filters").addEventListener("submit", whenReady(loadPast));
  $("search-close").addEventListener("click", function () { $("search-panel").hidden = true; });
  document.addEventListener("staff:conversation-shown", function () { $("search-panel").hidden = true; });
  catalogReady.then(function () { fillFilterOptions().catch(showError); });
})();
