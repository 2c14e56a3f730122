/* Staff workspace: live conversation lists, the patient's whole timeline, replies, notes,
   reception actions (booking and rescheduling the patient's appointments among them),
   transfers and (for managers) supervision. State comes from the JSON API
   and is kept current by the /api/ws event stream; a reconnect reloads it. */
(function () {
  "use strict";
  var state = {
    me: null, conversations: {}, selected: null, detail: null,
    unread: {}, team: {}, actions: [], appointmentActions: [],
    doctors: null, rescheduling: null
  };
  // Appointments shown in a conversation: upcoming, and those of the last hours (attendance).
  var APPOINTMENT_LOOKBACK_MS = 12 * 3600 * 1000;
  var APPOINTMENTS_SHOWN = 5;
  var $ = function (id) { return document.getElementById(id); };
  var ASSIGNING = ["assigned", "taken", "transferred", "reassigned", "taken_over", "linked"];
  // Panels in files of their own (staff-labels.js) extend the workspace here: `item(c, node)`
  // decorates a list item, `shows(c)` filters the lists, `opened(detail)` follows the selected
  // conversation, `events(e)` gets the live events this file does not handle, `ready(me)` starts.
  var hooks = { item: [], shows: [], opened: [], events: [], ready: [] };
  window.staffWorkspace = { state: state, hooks: hooks, renderLists: function () { renderLists(); } };


  function showError(error) { $("action-error").textContent = error.message; }
  function isManager() { return state.me.role !== "attendant"; }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function nameOf(id) {
    if (id === null || id === undefined) return "";
    if (id === state.me.id) return state.me.name;
    return state.team[id] ? state.team[id].name : "#" + id;
  }
  function formatTime(iso) {
    return new Date(iso).toLocaleString("pt-BR", { timeZone: "America/Sao_Paulo", hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit" });
  }
  function patientName(c) {
    return c.patient_name || T("staff.unknown_patient") + " #" + c.patient_id;
  }
  function reasonLabel(reason) {
    return TOr("reason." + reason, reason.replace(/_/g, " "));
  }
  function ago(iso) {
    var minutes = Math.floor((Date.now() - new Date(iso).getTime()) / 60000);
    return minutes < 1 ? T("staff.just_now") : T("staff.minutes_ago", { minutes: minutes });
  }

  /* ---- alerts: unread counts in the title, a short beep when something needs me ---- */
  var audio = null;
  function beep() {
    if (!$("sound").checked) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.35);
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(); osc.stop(audio.currentTime + 0.35);
    } catch (e) { /* audio blocked until the first click: the title still counts */ }
  }
  function updateTitle() {
    var total = Object.keys(state.unread).reduce(function (sum, id) {
      return state.conversations[id] ? sum + state.unread[id] : sum;
    }, 0);
    document.title = (total ? "(" + total + ") " : "") + T("staff.title");
  }
  function markUnread(id) {
    if (id === state.selected && !document.hidden) return;
    state.unread[id] = (state.unread[id] || 0) + 1;
    beep();
  }

  /* ---- lists ---- */
  function listFor(c) {
    if (c.owner === "queued") return "queue";
    if (c.owner === "attendant" && c.assigned_attendant_id === state.me.id) return "mine";
    return isManager() ? "others" : null;
  }
  function byQueueOrder(a, b) {
    var rank = { critical: 2, high: 1, normal: 0 };
    return (rank[b.priority] - rank[a.priority]) || a.queued_at.localeCompare(b.queued_at) || a.id - b.id;
  }

  function conversationItem(c, list, position) {
    var item = el("li", "conversation-item" + (c.id === state.selected ? " selected" : "") + " priority-" + c.priority);
    item.setAttribute("data-conversation-id", c.id);
    var main = el("div", "main");
    main.appendChild(el("span", "name", patientName(c)));
    main.appendChild(el("span", "badge channel-" + c.channel, T("channel." + c.channel)));
    if (c.priority !== "normal") main.appendChild(el("span", "badge priority", T("priority." + c.priority)));
    if (state.unread[c.id]) main.appendChild(el("span", "unread", String(state.unread[c.id])));
    item.appendChild(main);
    hooks.item.forEach(function (hook) { hook(c, item); });
    var sub = el("div", "sub");
    if (list === "queue") {
      sub.textContent = T("staff.position", { position: position }) + " · " + ago(c.queued_at) +
        (c.handoff_reason ? " · " + reasonLabel(c.handoff_reason) : "");
      if (state.me.manual_take || isManager()) {
        var take = el("button", "small take", T("staff.take"));
        take.addEventListener("click", function (event) {
          event.stopPropagation();
          api("POST", "/api/conversations/" + c.id + "/take").then(function () { select(c.id); }).catch(showError);
        });
        item.appendChild(take);
      }
    } else if (list === "others") {
      sub.textContent = c.owner === "bot" ? T("staff.with_bot") : T("staff.with", { name: nameOf(c.assigned_attendant_id) });
    } else {
      sub.textContent = ago(c.last_message_at);
    }
    item.appendChild(sub);
    item.addEventListener("click", function () {
      if (list === "queue" && !isManager()) return;  // attendants read a conversation once it is theirs
      select(c.id);
    });
    return item;
  }

  function renderLists() {
    var lists = { mine: [], queue: [], others: [] };
    Object.values(state.conversations).forEach(function (c) {
      var list = listFor(c);
      if (list && hooks.shows.every(function (shows) { return shows(c); })) lists[list].push(c);
    });
    lists.queue.sort(byQueueOrder);
    lists.mine.sort(function (a, b) { return b.last_message_at.localeCompare(a.last_message_at); });
    lists.others.sort(function (a, b) { return b.last_message_at.localeCompare(a.last_message_at); });
    Object.keys(lists).forEach(function (name) {
      var node = $(name);
      node.innerHTML = "";
      lists[name].forEach(function (c, index) { node.appendChild(conversationItem(c, name, index + 1)); });
      if (!lists[name].length) node.appendChild(el("li", "empty", T("staff.empty_list")));
    });
    $("mine-count").textContent = lists.mine.length;
    $("queue-count").textContent = lists.queue.length;
    renderTeam();
    updateTitle();
  }

  function renderTeam() {
    if (!isManager()) return;
    var load = {};
    Object.values(state.conversations).forEach(function (c) {
      if (c.owner !== "attendant") return;
      load[c.assigned_attendant_id] = load[c.assigned_attendant_id] || {};
      load[c.assigned_attendant_id][c.patient_id] = true;
    });
    var node = $("team");
    node.innerHTML = "";
    Object.values(state.team).sort(function (a, b) { return a.name.localeCompare(b.name); }).forEach(function (m) {
      var item = el("li", "member presence-" + m.presence);
      item.setAttribute("data-attendant-id", m.id);
      item.appendChild(el("span", "dot"));
      item.appendChild(el("span", "name", m.name));
      item.appendChild(el("span", "meta", T("presence." + m.presence) + " · " +
        T("staff.load", { load: Object.keys(load[m.id] || {}).length, capacity: m.capacity })));
      node.appendChild(item);
    });
  }

  /* ---- the selected conversation ---- */
  function changeText(e) {
    var d = e.details || {};
    var values = { to: nameOf(e.to_attendant_id), from: nameOf(e.from_attendant_id), actor: nameOf(e.actor_id) || T("author.system"),
      reason: e.kind === "requeued" ? T("requeue." + d.reason) : reasonLabel(d.reason || ""),
      priority: d.priority ? T("priority." + d.priority) : "" };
    // Joined while the episode waits in the queue: there is nobody to name yet.
    var key = e.kind === "linked" && !e.to_attendant_id ? "change.linked_queued" : "change." + e.kind;
    return T(key, values);
  }

  function renderEntry(entry) {
    var item;
    if (entry.entry === "change") {
      item = el("li", "entry change kind-" + entry.kind, changeText(entry) +
        (entry.csat_score ? " · " + T("staff.csat", { score: entry.csat_score }) : ""));
      item.setAttribute("data-change-id", entry.id);
    } else if (entry.entry === "action") {
      item = el("li", "entry action kind-" + entry.kind);
      item.setAttribute("data-action-id", entry.id);
      var booked = entry.details.starts_at ? formatTime(entry.details.starts_at) + " · " + entry.details.doctor_name : "";
      item.textContent = "✔ " + T("done." + entry.kind) + (booked ? ": " + booked : "") +
        (entry.details.note ? ": " + entry.details.note : "") +
        " · " + nameOf(entry.actor_id) + " · " + formatTime(entry.created_at);
    } else {
      var m = entry;
      var existing = document.querySelector('[data-message-id="' + m.id + '"]');
      if (existing) existing.remove();
      item = el("li", "entry author-" + m.author_kind + (m.internal ? " internal" : "") + (m.direction === "in" ? " inbound" : " outbound"));
      item.setAttribute("data-message-id", m.id);
      var label = m.internal
        ? (state.team[m.author_id] && state.team[m.author_id].role !== "attendant" ? T("staff.whisper_label", { name: nameOf(m.author_id) }) : T("staff.note_label") + " · " + nameOf(m.author_id))
        : (m.author_kind === "attendant" ? nameOf(m.author_id) : T("author." + m.author_kind));
      var meta = el("div", "meta");
      meta.appendChild(el("span", "badge channel-" + m.channel, T("channel." + m.channel)));
      meta.appendChild(document.createTextNode(" " + label + " · " + formatTime(m.created_at) +
        (m.delivery_status === "failed" ? " · " + T("staff.delivery_failed") : "")));
      item.appendChild(meta);
      item.appendChild(el("div", "text", m.text));
      if (window.StaffFiles) StaffFiles.render(item, m);
    }
    $("timeline").appendChild(item);
    $("timeline").scrollTop = $("timeline").scrollHeight;
  }

  function canActOn(c) {
    var mine = c.owner === "attendant" && c.assigned_attendant_id === state.me.id;
    return c.status === "open" && (mine || (isManager() && c.owner === "attendant"));
  }

  function renderHeader(c) {
    var mine = c.owner === "attendant" && c.assigned_attendant_id === state.me.id;
    var canAct = canActOn(c);
    var parts = [T("channel." + c.channel), c.owner === "attendant" ? T("staff.with", { name: nameOf(c.assigned_attendant_id) }) : T("owner." + c.owner)];
    if (c.priority !== "normal") parts.push(T("priority." + c.priority));
    if (isManager() && c.csat_score) parts.push(T("staff.csat", { score: c.csat_score }));
    $("conversation-meta").textContent = parts.join(" · ");
    $("resolve").disabled = !(canAct || (isManager() && c.owner === "queued"));
    $("reply-text").disabled = !(canAct || (isManager() && c.status === "open"));
    $("take").hidden = !(c.owner === "queued" && (isManager() || state.me.manual_take));
    $("take-over").hidden = !(isManager() && c.owner === "attendant" && !mine);
    $("raise-critical").hidden = !(isManager() && c.priority !== "critical" && c.status === "open");
    $("transfer").disabled = !(canAct || (isManager() && c.owner === "queued"));
    renderTransferTargets(c);
    Array.prototype.forEach.call(document.querySelectorAll("#actions button, #appointments button, #book-open, #booking-slots button"), function (b) { b.disabled = !canAct; });
  }

  function renderTransferTargets(c) {
    var select = $("transfer-to");
    select.innerHTML = "";
    select.appendChild(el("option", "", T("staff.transfer_to")));
    select.firstChild.value = "";
    if (isManager() && c.owner === "attendant") {
      var back = el("option", "", T("staff.to_queue"));
      back.value = "queue";
      select.appendChild(back);
    }
    Object.values(state.team).forEach(function (m) {
      if (m.id === c.assigned_attendant_id || m.role !== "attendant") return;
      var option = el("option", "", m.name + " (" + T("presence." + m.presence) + ")");
      option.value = m.id;
      option.disabled = m.presence !== "online";
      select.appendChild(option);
    });
  }

  function renderChannels(detail) {
    var select = $("reply-channel");
    select.innerHTML = "";
    var channels = detail.patient.channels.length ? detail.patient.channels : [detail.conversation.channel];
    channels.forEach(function (channel) {
      var option = el("option", "", T("channel." + channel));
      option.value = channel;
      select.appendChild(option);
    });
    select.value = detail.conversation.channel;
  }

  function select(id) {
    if (id !== state.selected) closeBooking();
    state.selected = id;
    delete state.unread[id];
    $("action-error").textContent = "";
    api("GET", "/api/conversations/" + id).then(function (data) {
      if (state.selected !== id) return;
      state.detail = data;
      $("empty").hidden = true;
      $("conversation").hidden = false;
      document.dispatchEvent(new CustomEvent("staff:conversation-shown"));  // staff-search.js
      $("patient-name").textContent = patientName(data.conversation);
      $("patient-info").textContent = [data.patient.cpf, data.patient.phone, data.patient.email].filter(Boolean).join(" · ");
      $("timeline").innerHTML = "";
      data.timeline.forEach(renderEntry);
      state.conversations[id] = Object.assign(state.conversations[id] || {}, data.conversation);
      renderChannels(data);
      renderHeader(state.conversations[id]);
      renderLists();
      hooks.opened.forEach(function (hook) { hook(data); });
      loadAppointments(id, data.patient.id);
      document.dispatchEvent(new CustomEvent("staff:conversation", { detail: data }));  // staff-templates.js
      announcePatient(data);
    }).catch(showError);
  }

  // The patient's card (staff-card.js) follows the conversation on screen, and may ask for one.
  function announcePatient(detail) {
    document.dispatchEvent(new CustomEvent("staff:patient", { detail: detail && {
      patientId: detail.patient.id, wholeHistory: detail.scope === "history", manager: isManager() } }));
  }
  document.addEventListener("staff:open-conversation", function (event) { select(event.detail.conversationId); });

  function loadAppointments(conversationId, patientId) {
    api("GET", "/api/patients/" + patientId + "/appointments").then(function (list) {
      if (state.selected !== conversationId) return;
      var node = $("appointments");
      node.innerHTML = "";
      var since = Date.now() - APPOINTMENT_LOOKBACK_MS;
      list.filter(function (a) { return new Date(a.starts_at).getTime() >= since && a.status !== "cancelada"; })
        .sort(function (a, b) { return a.starts_at.localeCompare(b.starts_at); })
        .slice(0, APPOINTMENTS_SHOWN)
        .forEach(function (a) {
          var item = el("li", "appointment status-" + a.status);
          item.setAttribute("data-appointment-id", a.id);
          item.appendChild(el("span", "what", formatTime(a.starts_at) + " · " + a.doctor_name + " (" + a.specialty_name + ") · " + T("appointment.status." + a.status)));
          state.appointmentActions.forEach(function (action) {
            var button = el("button", "small secondary", T("action." + action.kind));
            button.type = "button";
            button.setAttribute("data-action", action.kind);
            button.disabled = !canActOn(state.conversations[conversationId]);
            button.addEventListener("click", function () {
              post("/actions", { kind: action.kind, appointment_id: a.id }).then(function (done) {
                if (done) loadAppointments(conversationId, patientId);
              });
            });
            item.appendChild(button);
          });
          var move = el("button", "small secondary", T("booking.reschedule"));
          move.type = "button";
          move.setAttribute("data-action", "appointment_rescheduled");
          move.disabled = !canActOn(state.conversations[conversationId]) || new Date(a.starts_at) <= new Date();
          move.addEventListener("click", function () { openBooking(a); });
          item.appendChild(move);
          node.appendChild(item);
        });
    }).catch(function () { $("appointments").innerHTML = ""; });
  }

  /* ---- booking panel: slot search (the bot's), then book or reschedule by a click ---- */
  function fillDoctors() {
    var specialty = Number($("booking-specialty").value);
    var select = $("booking-doctor"), chosen = select.value;
    while (select.options.length > 1) select.remove(1);
    state.doctors.filter(function (d) {
      return d.specialties.some(function (s) { return s.id === specialty; });
    }).forEach(function (d) {
      var option = el("option", "", d.name);
      option.value = d.id;
      select.appendChild(option);
    });
    select.value = select.querySelector('option[value="' + chosen + '"]') ? chosen : "";
  }

  function loadDoctors() {
    if (state.doctors) return Promise.resolve();
    return api("GET", "/api/agenda/doctors").then(function (doctors) {
      state.doctors = doctors;
      var seen = {};
      doctors.forEach(function (d) {
        d.specialties.forEach(function (s) {
          if (seen[s.id]) return;
          seen[s.id] = true;
          var option = el("option", "", s.name);
          option.value = s.id;
          $("booking-specialty").appendChild(option);
        });
      });
    });
  }

  function openBooking(appointment) {
    state.rescheduling = appointment;
    loadDoctors().then(function () {
      $("booking-title").textContent = appointment
        ? T("booking.reschedule_title", { when: formatTime(appointment.starts_at) }) : T("booking.title");
      if (appointment) $("booking-specialty").value = appointment.specialty_id;
      fillDoctors();
      if (appointment) $("booking-doctor").value = appointment.doctor_id;
      $("booking-hint").textContent = "";
      $("booking-slots").innerHTML = "";
      $("booking").hidden = false;
    }).catch(showError);
  }

  function closeBooking() {
    state.rescheduling = null;
    $("booking").hidden = true;
  }

  function searchSlots() {
    var query = $("booking-doctor").value ? "doctor_id=" + $("booking-doctor").value : "specialty_id=" + $("booking-specialty").value;
    if ($("booking-day").value) query += "&day=" + $("booking-day").value;
    if ($("booking-period").value) query += "&period=" + $("booking-period").value;
    return api("GET", "/api/slots?" + query).then(function (found) {
      $("booking-hint").textContent = T(!found.slots.length ? "booking.none" : found.in_window ? "booking.pick" : "booking.next_ones");
      var node = $("booking-slots");
      node.innerHTML = "";
      var canAct = canActOn(state.conversations[state.selected]);
      found.slots.forEach(function (slot) {
        var button = el("button", "small secondary", formatTime(slot.starts_at) + " · " + slot.doctor_name);
        button.type = "button";
        button.setAttribute("data-starts-at", slot.starts_at);
        button.disabled = !canAct;
        button.addEventListener("click", function () { bookSlot(slot); });
        node.appendChild(button);
      });
    }).catch(showError);
  }

  function bookSlot(slot, overCap) {
    var moving = state.rescheduling;
    var body = { kind: moving ? "appointment_rescheduled" : "appointment_booked", doctor_id: slot.doctor_id, specialty_id: slot.specialty_id, starts_at: slot.starts_at };
    if (moving) body.appointment_id = moving.id;
    if (overCap) body.over_cap = true;
    var conversationId = state.selected, patientId = state.detail.patient.id;
    $("action-error").textContent = "";
    api("POST", "/api/conversations/" + conversationId + "/actions", body).then(function () {
      closeBooking();
      loadAppointments(conversationId, patientId);
    }).catch(function (error) {
      // The patient's cap per specialty: staff may book beyond it, on purpose (audited).
      if (error.code === "agenda.error.cap_reached" && !overCap && window.confirm(error.message + "\n\n" + T("booking.over_cap_confirm"))) {
        bookSlot(slot, true);
        return;
      }
      showError(error);
      searchSlots();  // e.g. taken meanwhile: offer what is free now
    });
  }

  $("book-open").addEventListener("click", function () { if (state.selected) openBooking(null); });
  $("booking-close").addEventListener("click", closeBooking);
  $("booking-specialty").addEventListener("change", fillDoctors);
  $("booking").addEventListener("submit", function (event) {
    event.preventDefault();
    $("action-error").textContent = "";
    searchSlots();
  });

  function closeSelected() {
    closeBooking();
    state.selected = null;
    state.detail = null;
    $("appointments").innerHTML = "";
    $("conversation").hidden = true;
    $("empty").hidden = false;
    announcePatient(null);
  }

  function showsPatient(patientId) {
    return state.detail && state.detail.patient.id === patientId;
  }

  /* ---- live events ---- */
  function onEvent(event) {
    if (event.type === "conversation") {
      var c = event.conversation, change = event.change;
      var known = state.conversations[c.id];
      if (c.patient_name === null && known) c.patient_name = known.patient_name;
      if (c.status === "closed") delete state.conversations[c.id];
      else state.conversations[c.id] = Object.assign(known || {}, c);
      if (change && ASSIGNING.indexOf(change.kind) >= 0 && change.to_attendant_id === state.me.id && change.actor_id !== state.me.id) markUnread(c.id);
      if (change && showsPatient(c.patient_id)) renderEntry(Object.assign({ entry: "change" }, change));
      if (c.id === state.selected) {
        if (c.status === "closed" || !listFor(c)) closeSelected();
        else renderHeader(state.conversations[c.id]);
      }
      renderLists();
    } else if (event.type === "conversation_gone") {
      delete state.conversations[event.conversation_id];
      if (event.conversation_id === state.selected) closeSelected();
      renderLists();
    } else if (event.type === "message") {
      var m = event.message;
      var conversation = state.conversations[m.conversation_id];
      if (conversation) conversation.last_message_at = event.conversation.last_message_at;
      else if (event.conversation.status === "open" && listFor(event.conversation)) state.conversations[m.conversation_id] = event.conversation;
      if (showsPatient(m.patient_id)) renderEntry(Object.assign({ entry: "message" }, m));
      document.dispatchEvent(new CustomEvent("staff:message", { detail: event }));  // staff-templates.js
      var forMe = event.conversation.assigned_attendant_id === state.me.id;
      if (forMe && (m.direction === "in" || (m.internal && m.author_id !== state.me.id))) markUnread(m.conversation_id);
      renderLists();
    } else if (event.type === "action") {
      if (showsPatient(event.conversation.patient_id)) renderEntry(Object.assign({ entry: "action" }, event.action));
    } else if (event.type === "presence") {
      if (state.team[event.attendant_id]) state.team[event.attendant_id].presence = event.presence;
      if (event.attendant_id === state.me.id) $("presence").value = event.presence;
      renderTeam();
      if (state.selected && state.conversations[state.selected]) renderTransferTargets(state.conversations[state.selected]);
    } else {
      hooks.events.forEach(function (hook) { hook(event); });
    }
  }

  function connect(delay) {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/ws");
    ws.onopen = function () {
      $("connection").textContent = T("staff.connected");
      $("connection").className = "connection online";
      delay = 0;
      loadState();
    };
    ws.onmessage = function (frame) {
      var event = JSON.parse(frame.data);
      // Events that arrive while the snapshot loads are applied after it, not under it.
      if (pendingEvents) pendingEvents.push(event); else onEvent(event);
    };
    ws.onclose = function (closed) {
      if (closed.code === 4001) { window.location.href = "/login"; return; }  // login ended or changed
      $("connection").textContent = T("staff.reconnecting");
      $("connection").className = "connection offline";
      var next = Math.min((delay || 250) * 2, 10000);
      setTimeout(function () { connect(next); }, next);
    };
  }

  var pendingEvents = null;

  function loadState() {
    pendingEvents = pendingEvents || [];
    return Promise.all([api("GET", "/api/attendants"), api("GET", "/api/conversations"), api("GET", "/api/me")]).then(function (results) {
      state.team = {};
      results[0].forEach(function (m) { state.team[m.id] = m; });
      state.conversations = {};
      results[1].forEach(function (c) {
        state.conversations[c.id] = c;
        if (c.waiting && c.owner === "attendant" && c.assigned_attendant_id === state.me.id && c.id !== state.selected) state.unread[c.id] = c.waiting;
      });
      if (results[2].presence) $("presence").value = results[2].presence;
      renderLists();
      if (state.selected) {
        if (state.conversations[state.selected]) select(state.selected);
        else closeSelected();
      }
    }).catch(showError).then(function () {
      var queued = pendingEvents || [];
      pendingEvents = null;
      queued.forEach(onEvent);
    });
  }

  /* ---- controls ---- */
  function post(path, body) {
    $("action-error").textContent = "";
    return api("POST", "/api/conversations/" + state.selected + path, body).catch(showError);
  }

  $("reply-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = $("reply-text").value;
    var note = $("reply-mode").value === "note";
    if (!note && state.selected && window.StaffFiles && StaffFiles.chosen()) {
      $("action-error").textContent = "";
      StaffFiles.send(state.selected, text, $("reply-channel").value)
        .then(function () { $("reply-text").value = ""; }).catch(showError);
      return;
    }
    if (!text.trim() || !state.selected) return;
    var request = note
      ? post("/notes", { text: text })
      : post("/messages", { text: text, channel: $("reply-channel").value || null });
    request.then(function (result) { if (result) $("reply-text").value = ""; });
  });
  $("reply-text").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("reply-form").requestSubmit(); }
  });
  $("reply-mode").addEventListener("change", function () {
    var note = $("reply-mode").value === "note";
    $("reply-form").classList.toggle("note-mode", note);
    $("reply-text").placeholder = T(note ? "staff.note_placeholder" : "staff.reply_placeholder");
  });
  $("resolve").addEventListener("click", function () { if (state.selected) post("/resolve"); });
  $("take").addEventListener("click", function () { if (state.selected) post("/take"); });
  $("take-over").addEventListener("click", function () { if (state.selected) post("/take-over"); });
  $("raise-critical").addEventListener("click", function () { if (state.selected) post("/priority", { priority: "critical" }); });
  $("transfer").addEventListener("click", function () {
    var target = $("transfer-to").value;
    if (!state.selected || !target) return;
    if (isManager()) post("/reassign", { attendant_id: target === "queue" ? null : Number(target) });
    else post("/transfer", { attendant_id: Number(target) });
  });
  $("presence").addEventListener("change", function (event) {
    api("POST", "/api/presence", { presence: event.target.value }).catch(showError);
  });
  $("sound").addEventListener("change", function (event) {
    localStorage.setItem("oc-sound", event.target.checked ? "on" : "off");
  });
  $("logout").addEventListener("click", function () {
    api("POST", "/api/logout").then(function () { window.location.href = "/login"; });
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && state.selected) { delete state.unread[state.selected]; renderLists(); }
  });

  function renderActionButtons() {
    var node = $("actions");
    node.innerHTML = "";
    state.actions.forEach(function (action) {
      var button = el("button", "small secondary", T("action." + action.kind));
      button.type = "button";
      button.setAttribute("data-action", action.kind);
      button.addEventListener("click", function () {
        if (state.selected) post("/actions", { kind: action.kind });
      });
      node.appendChild(button);
    });
  }

  window.catalogReady.then(function () { return api("GET", "/api/me"); }).then(function (me) {
    state.me = me;
    // Actions needing a slot are reached through the booking panel, not as plain buttons.
    var plain = (me.actions || []).filter(function (a) { return !a.slot; });
    state.actions = plain.filter(function (a) { return !a.appointment; });
    state.appointmentActions = plain.filter(function (a) { return a.appointment; });
    $("me").textContent = me.name + " · " + T("role." + me.role);
    if (me.presence) $("presence").value = me.presence;
    else $("presence").parentNode.hidden = true;
    $("sound").checked = localStorage.getItem("oc-sound") !== "off";
    if (isManager()) {
      $("manager-lists").hidden = false;
      $("metrics-link").hidden = false;
      $("note-option").textContent = T("staff.mode_whisper");
      $("transfer").textContent = T("staff.reassign");
    }
    renderActionButtons();
    // The analytics console links a conversation as /staff#conversa=ID: open its transcript.
    var linked = /^#conversa=(\d+)$/.exec(window.location.hash);
    if (linked) select(Number(linked[1]));
    hooks.ready.forEach(function (hook) { hook(me); });
    setInterval(renderLists, 30000);  // keep "há N min" current
    connect();
  });
})();
