/* The patient's card beside the conversation in the staff workspace: the record, linked
   channels, appointments, labels (filled by the labels panel, see `staff:card`) and notes;
   staff edit the record, and managers merge two records after comparing them side by side.
   The workspace (staff.js) says which patient is on screen with a `staff:patient` event; this
   panel asks it to open a conversation with `staff:open-conversation`. Everything patients
   or staff typed is shown with textContent. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var shown = { patientId: null, manager: false, card: null };

  // The panel's fixed markup (no data in it); staff.html only holds the empty <aside>.
  var MARKUP =
    '<header class="card-head"><h2 id="card-title" data-t="card.title"></h2> <span id="card-number" class="meta"></span></header>' +
    '<div class="card-buttons">' +
    '<button id="card-edit" type="button" class="small secondary" data-t="card.edit"></button>' +
    '<button id="card-merge-open" type="button" class="small secondary" data-t="card.merge.open" hidden></button></div>' +
    '<p id="card-message" class="card-message" role="status"></p>' +
    '<div id="card-body"></div>' +
    '<form id="card-edit-form" class="card-edit" hidden>' +
    '<label><span data-t="card.name"></span> <input id="card-edit-name" type="text" maxlength="160"></label>' +
    '<label><span data-t="card.phone"></span> <input id="card-edit-phone" type="tel"></label>' +
    '<p class="card-hint" data-t="card.new_phone_hint"></p>' +
    '<label><span data-t="card.email"></span> <input id="card-edit-email" type="email"></label>' +
    '<label><span data-t="card.cpf"></span> <input id="card-edit-cpf" type="text" inputmode="numeric"></label>' +
    '<label><span data-t="card.preferred_channel"></span> <select id="card-edit-preferred"></select></label>' +
    '<label class="card-inline"><input id="card-edit-reminders" type="checkbox"> <span data-t="card.reminders"></span></label>' +
    '<label><span data-t="card.notes"></span> <textarea id="card-edit-notes" rows="3" maxlength="2000"></textarea></label>' +
    '<div class="card-buttons"><button type="submit" class="small" data-t="card.save"></button>' +
    '<button id="card-edit-cancel" type="button" class="small secondary" data-t="card.cancel"></button></div></form>' +
    '<dialog id="card-merge" class="card-merge" aria-labelledby="card-merge-title">' +
    '<h2 id="card-merge-title" data-t="card.merge.open"></h2>' +
    '<div class="card-merge-pick"><label><span data-t="card.merge.other"></span> <input id="card-merge-other" type="text" inputmode="numeric"></label>' +
    '<button id="card-merge-compare" type="button" class="small secondary" data-t="card.merge.compare"></button></div>' +
    '<div id="card-merge-columns" class="card-compare"></div>' +
    '<p id="card-merge-result" class="card-message" role="status"></p>' +
    '<div class="card-buttons"><button id="card-merge-submit" type="button" class="small" data-t="card.merge.submit" disabled></button>' +
    '<button id="card-merge-close" type="button" class="small secondary" data-t="card.merge.close"></button></div></dialog>';
  var root = $("patient-card");
  root.innerHTML = MARKUP;
  window.catalogReady.then(function () {
    root.querySelectorAll("[data-t]").forEach(function (node) { node.textContent = T(node.getAttribute("data-t")); });
  });

  // The catalog's text with every occurrence of each value filled in.
  function say(key, values) {
    var text = T(key);
    Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(values[k]); });
    return text;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function formatTime(iso) {
    return new Date(iso).toLocaleString("pt-BR", { timeZone: "America/Sao_Paulo", hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit", year: "numeric" });
  }
  function channelName(channel) { return channel ? TOr("channel." + channel, channel) : T("card.no_preference"); }
  function showError(error) { $("card-message").className = "card-message error"; $("card-message").textContent = error.message; }
  function showNote(text) { $("card-message").className = "card-message"; $("card-message").textContent = text; }

  /* ---- the record: a definition list (read) and a form (edit) ---- */
  function recordRows(card) {
    return [
      ["card.name", card.name],
      ["card.phone", card.phone ? card.phone + (card.phone_proved ? "" : " (" + T("card.unproved") + ")") : "—"],
      ["card.email", card.email ? card.email + (card.email_verified ? "" : " (" + T("card.unproved") + ")") : "—"],
      ["card.cpf", card.cpf || "—"],
      ["card.preferred_channel", channelName(card.preferred_channel)],
      ["card.reminders", T(card.reminders_opt_in ? "card.yes" : "card.no")],
      ["card.has_login", T(card.has_login ? "card.yes" : "card.no")]
    ];
  }

  function renderRecord(node, card, withIds) {
    var list = el("dl", "card-record");
    recordRows(card).forEach(function (row) {
      var term = el("dt", "", T(row[0]));
      var value = el("dd", "", row[1] || "—");
      if (withIds) value.setAttribute("data-field", row[0].slice(5));
      list.appendChild(term);
      list.appendChild(value);
    });
    node.appendChild(list);
  }

  function appointmentItem(a) {
    var item = el("li", "status-" + a.status, formatTime(a.starts_at) + " · " + a.doctor_name + " (" + a.specialty_name + ") · " + T("appointment.status." + a.status));
    item.setAttribute("data-appointment-id", a.id);
    return item;
  }

  function section(titleKey, id) {
    var node = el("section", "card-section");
    if (id) node.id = id;
    node.appendChild(el("h3", "", T(titleKey)));
    return node;
  }

  function listOr(items, render) {
    if (!items.length) return el("p", "card-empty", T("card.none"));
    var list = el("ul", "card-list");
    items.forEach(function (item) { list.appendChild(render(item)); });
    return list;
  }

  function render(card) {
    shown.card = card;
    var body = $("card-body");
    body.innerHTML = "";
    $("card-number").textContent = T("card.number", { id: card.id });
    if (card.merged_into_id) body.appendChild(el("p", "card-banner", T("card.merged_into", { id: card.merged_into_id })));
    renderRecord(body, card, true);
    var notes = section("card.notes");
    notes.appendChild(el("p", "card-notes", card.notes || "—"));
    body.appendChild(notes);

    var channels = section("card.channels");
    channels.appendChild(listOr(card.channels, function (c) {
      var parts = [T("channel." + c.channel)];
      if (c.display_name) parts.push(c.display_name);
      if (c.last_inbound_at) parts.push(formatTime(c.last_inbound_at));
      return el("li", "", parts.join(" · "));
    }));
    body.appendChild(channels);

    // The labels panel (staff-labels.js) fills this section on `staff:card` with the labels
    // on the patient's conversations (hidden while there are none).
    var labels = section("card.labels", "card-labels");
    labels.hidden = true;
    body.appendChild(labels);

    var upcoming = section("card.upcoming");
    upcoming.appendChild(listOr(card.upcoming, appointmentItem));
    body.appendChild(upcoming);
    var past = section("card.past");
    past.appendChild(listOr(card.past.slice(0, 10), appointmentItem));
    body.appendChild(past);

    card.merges.filter(function (m) { return m.target_id === card.id; }).forEach(function (m) {
      body.appendChild(el("p", "card-merged-from", T("card.merged_from", { id: m.source_id, quando: formatTime(m.created_at) })));
    });

    var closed = card.merged_into_id || card.erased;
    $("card-edit").hidden = closed;
    $("card-merge-open").hidden = closed || !shown.manager;
    document.dispatchEvent(new CustomEvent("staff:card", { detail: { patientId: card.id, labels: labels, labelIds: card.label_ids } }));
  }

  function load(patientId) {
    return api("GET", "/api/patients/" + patientId + "/card").then(function (card) {
      if (shown.patientId === patientId) render(card);
      return card;
    });
  }

  /* ---- editing ---- */
  function openEdit() {
    var card = shown.card;
    $("card-edit-name").value = card.name || "";
    $("card-edit-phone").value = "";
    $("card-edit-phone").placeholder = card.phone || "";
    $("card-edit-email").value = card.email || "";
    $("card-edit-email").disabled = card.has_login;
    $("card-edit-cpf").value = "";
    $("card-edit-cpf").placeholder = card.cpf || "";
    var select = $("card-edit-preferred");
    select.innerHTML = "";
    [null].concat(card.reachable_channels).forEach(function (channel) {
      var option = el("option", "", channelName(channel));
      option.value = channel || "";
      select.appendChild(option);
    });
    select.value = card.preferred_channel || "";
    $("card-edit-reminders").checked = card.reminders_opt_in;
    $("card-edit-notes").value = card.notes || "";
    $("card-edit-form").hidden = false;
    $("card-body").hidden = true;
    $("card-edit").hidden = true;
  }

  function closeEdit() {
    $("card-edit-form").hidden = true;
    $("card-body").hidden = false;
    $("card-edit").hidden = false;
  }

  function changes() {
    var card = shown.card, body = {};
    var name = $("card-edit-name").value.trim();
    if (name && name !== card.name) body.name = name;
    if ($("card-edit-phone").value.trim()) body.phone = $("card-edit-phone").value.trim();
    var email = $("card-edit-email").value.trim();
    if (email && email !== card.email) body.email = email;
    if ($("card-edit-cpf").value.trim()) body.cpf = $("card-edit-cpf").value.trim();
    var preferred = $("card-edit-preferred").value || null;
    if (preferred !== card.preferred_channel) body.preferred_channel = preferred;
    if ($("card-edit-reminders").checked !== card.reminders_opt_in) body.reminders_opt_in = $("card-edit-reminders").checked;
    var notes = $("card-edit-notes").value.trim() || null;
    if (notes !== card.notes) body.notes = notes;
    return body;
  }

  $("card-edit").addEventListener("click", openEdit);
  $("card-edit-cancel").addEventListener("click", closeEdit);
  $("card-edit-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var patientId = shown.patientId, body = changes();
    if (!Object.keys(body).length) { closeEdit(); return; }
    api("PATCH", "/api/patients/" + patientId, body).then(function (result) {
      if (shown.patientId !== patientId) return;
      closeEdit();
      render(result.card);
      showNote(T("card.saved"));
    }).catch(showError);
  });

  /* ---- merging (managers): compare side by side, choose the record that stays, confirm ---- */
  var other = null;

  function compareColumn(card, keep) {
    var column = el("div", "card-compare-column");
    column.setAttribute("data-patient-id", card.id);
    column.appendChild(el("h3", "", T("card.number", { id: card.id })));
    renderRecord(column, card, false);
    column.appendChild(el("p", "card-compare-counts", T("card.channels") + ": " +
      (card.channels.map(function (c) { return T("channel." + c.channel); }).join(", ") || "—")));
    column.appendChild(el("p", "card-compare-counts", T("card.upcoming") + ": " + card.upcoming.length + " · " + T("card.past") + ": " + card.past.length));
    var label = el("label", "card-keep");
    var radio = el("input");
    radio.type = "radio";
    radio.name = "card-keep";
    radio.value = card.id;
    radio.checked = keep;
    label.appendChild(radio);
    label.appendChild(document.createTextNode(" " + T("card.merge.keep")));
    column.appendChild(label);
    return column;
  }

  function openMerge() {
    other = null;
    $("card-merge-other").value = "";
    $("card-merge-columns").innerHTML = "";
    $("card-merge-result").textContent = "";
    $("card-merge-submit").disabled = true;
    $("card-merge").showModal();
  }

  function compare() {
    var otherId = Number($("card-merge-other").value);
    $("card-merge-result").textContent = "";
    if (!otherId) return;
    load(shown.patientId).then(function (mine) {
      return api("GET", "/api/patients/" + otherId + "/card").then(function (theirs) {
        other = theirs;
        var columns = $("card-merge-columns");
        columns.innerHTML = "";
        columns.appendChild(compareColumn(mine, true));
        columns.appendChild(compareColumn(theirs, false));
        $("card-merge-submit").disabled = false;
      });
    }).catch(function (error) { $("card-merge-result").textContent = error.message; });
  }

  function merge() {
    var kept = document.querySelector('input[name="card-keep"]:checked');
    if (!other || !kept) return;
    var target = Number(kept.value), source = target === shown.patientId ? other.id : shown.patientId;
    var names = { origem: source, destino: target };
    if (!window.confirm(say("card.merge.confirm", names))) return;
    api("POST", "/api/patients/merge", { source_id: source, target_id: target, confirm: true }).then(function (merged) {
      var told = [say("card.merge.done", names)];
      if (merged.closed_conversation_ids.length) told.push(T("card.merge.closed", { n: merged.closed_conversation_ids.length }));
      if (merged.login !== "none") told.push(say("card.merge.login." + merged.login, names));
      $("card-merge-result").textContent = told.join(" ");
      $("card-merge-submit").disabled = true;
      other = null;
      shown.patientId = target;
      load(target).catch(showError);
      if (merged.kept_conversation_id) {
        document.dispatchEvent(new CustomEvent("staff:open-conversation", { detail: { conversationId: merged.kept_conversation_id } }));
      }
    }).catch(function (error) { $("card-merge-result").textContent = error.message; });
  }

  $("card-merge-open").addEventListener("click", openMerge);
  $("card-merge-compare").addEventListener("click", compare);
  $("card-merge-other").addEventListener("keydown", function (event) {
    if (event.key === "Enter") { event.preventDefault(); compare(); }
  });
  $("card-merge-submit").addEventListener("click", merge);
  $("card-merge-close").addEventListener("click", function () { $("card-merge").close(); });

  /* ---- which patient is on screen ---- */
  document.addEventListener("staff:patient", function (event) {
    var detail = event.detail || {};
    var same = detail.patientId === shown.patientId;
    shown.patientId = detail.patientId || null;
    shown.manager = !!detail.manager;
    if (!shown.patientId || !detail.wholeHistory) {
      $("patient-card").hidden = true;
      return;
    }
    if (!same) { closeEdit(); showNote(""); }
    $("patient-card").hidden = false;
    load(shown.patientId).catch(showError);
  });
})();
