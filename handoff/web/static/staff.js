/* Staff workspace: conversation lists, live timeline, reply, hand back to the bot. */
(function () {
  "use strict";
  var state = { me: null, conversations: {}, selected: null, unread: {} };
  var $ = function (id) { return document.getElementById(id); };

  function api(method, path, body) {
    var options = { method: method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 401) { window.location.href = "/login"; throw new Error("401"); }
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || response.statusText);
        return data;
      });
    });
  }

  function showError(error) { $("action-error").textContent = error.message; }

  function formatTime(iso) {
    return new Date(iso).toLocaleString("pt-BR", { timeZone: "America/Sao_Paulo", hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit" });
  }

  function listFor(c) {
    if (c.owner === "queued") return "queue";
    if (c.owner === "attendant" && c.assigned_attendant_id === state.me.id) return "mine";
    return state.me.role === "attendant" ? null : "others";
  }

  function renderLists() {
    ["mine", "queue", "others"].forEach(function (id) { $(id).innerHTML = ""; });
    Object.values(state.conversations)
      .sort(function (a, b) { return b.last_message_at.localeCompare(a.last_message_at); })
      .forEach(function (c) {
        var list = listFor(c);
        if (!list) return;
        var item = document.createElement("li");
        item.className = "conversation-item" + (c.id === state.selected ? " selected" : "") + (c.priority === "critical" ? " critical" : "");
        item.setAttribute("data-conversation-id", c.id);
        var name = document.createElement("span");
        name.className = "name";
        name.textContent = c.patient_name || T("staff.unknown_patient");
        var badge = document.createElement("span");
        badge.className = "badge channel-" + c.channel;
        badge.textContent = T("channel." + c.channel);
        item.appendChild(name);
        item.appendChild(badge);
        if (state.unread[c.id]) {
          var unread = document.createElement("span");
          unread.className = "unread";
          unread.textContent = state.unread[c.id];
          item.appendChild(unread);
        }
        item.addEventListener("click", function () { select(c.id); });
        $(list).appendChild(item);
      });
    var total = Object.values(state.unread).reduce(function (a, b) { return a + b; }, 0);
    document.title = (total ? "(" + total + ") " : "") + T("staff.title");
  }

  function renderMessage(m) {
    var item = document.createElement("li");
    item.className = "entry author-" + m.author_kind + (m.internal ? " internal" : "") + (m.direction === "in" ? " inbound" : " outbound");
    item.setAttribute("data-message-id", m.id);
    var meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = T("author." + m.author_kind) + " · " + T("channel." + m.channel) + " · " + formatTime(m.created_at) +
      (m.delivery_status === "failed" ? " · " + T("staff.delivery_failed") : "");
    var text = document.createElement("div");
    text.className = "text";
    text.textContent = m.text;
    item.appendChild(meta);
    item.appendChild(text);
    $("timeline").appendChild(item);
    $("timeline").scrollTop = $("timeline").scrollHeight;
  }

  function renderHeader(c) {
    var mine = c.owner === "attendant" && (c.assigned_attendant_id === state.me.id || state.me.role !== "attendant");
    $("conversation-meta").textContent = T("channel." + c.channel) + " · " + T("owner." + c.owner) +
      (c.priority !== "normal" ? " · " + T("priority." + c.priority) : "");
    $("resolve").disabled = !mine;
    $("reply-text").disabled = !mine;
  }

  function select(id) {
    state.selected = id;
    delete state.unread[id];
    $("action-error").textContent = "";
    api("GET", "/api/conversations/" + id).then(function (data) {
      if (state.selected !== id) return;
      $("empty").hidden = true;
      $("conversation").hidden = false;
      $("patient-name").textContent = data.patient.name || T("staff.unknown_patient");
      $("timeline").innerHTML = "";
      data.messages.forEach(renderMessage);
      state.conversations[id] = data.conversation;
      renderHeader(data.conversation);
      renderLists();
    }).catch(showError);
  }

  function onEvent(event) {
    if (event.type === "conversation") {
      var c = event.conversation;
      if (c.status === "closed") delete state.conversations[c.id];
      else state.conversations[c.id] = Object.assign(state.conversations[c.id] || {}, c);
      if (c.id === state.selected) {
        if (c.status === "closed") { state.selected = null; $("conversation").hidden = true; $("empty").hidden = false; }
        else renderHeader(state.conversations[c.id]);
      }
      renderLists();
    } else if (event.type === "conversation_gone") {
      delete state.conversations[event.conversation_id];
      renderLists();
    } else if (event.type === "message") {
      var m = event.message;
      var known = state.conversations[m.conversation_id];
      if (known) known.last_message_at = event.conversation.last_message_at;
      if (state.selected && known && known.patient_id === state.conversations[state.selected].patient_id) {
        var existing = document.querySelector('[data-message-id="' + m.id + '"]');
        if (existing) existing.remove();
        renderMessage(m);
      } else if (m.direction === "in" && known) {
        state.unread[m.conversation_id] = (state.unread[m.conversation_id] || 0) + 1;
      }
      renderLists();
    }
  }

  function connect(delay) {
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/ws");
    ws.onopen = function () {
      $("connection").textContent = T("staff.connected");
      $("connection").className = "connection online";
      loadConversations();
    };
    ws.onmessage = function (frame) { onEvent(JSON.parse(frame.data)); };
    ws.onclose = function () {
      $("connection").textContent = T("staff.reconnecting");
      $("connection").className = "connection offline";
      setTimeout(function () { connect(Math.min((delay || 500) * 2, 10000)); }, delay || 500);
    };
  }

  function loadConversations() {
    return api("GET", "/api/conversations").then(function (list) {
      state.conversations = {};
      list.forEach(function (c) { state.conversations[c.id] = c; });
      renderLists();
    });
  }

  $("reply-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = $("reply-text").value;
    if (!text.trim() || !state.selected) return;
    api("POST", "/api/conversations/" + state.selected + "/messages", { text: text })
      .then(function () { $("reply-text").value = ""; })
      .catch(showError);
  });
  $("reply-text").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("reply-form").requestSubmit(); }
  });
  $("resolve").addEventListener("click", function () {
    if (state.selected) api("POST", "/api/conversations/" + state.selected + "/resolve").catch(showError);
  });
  $("presence").addEventListener("change", function (event) {
    api("POST", "/api/presence", { presence: event.target.value }).catch(showError);
  });
  $("logout").addEventListener("click", function () {
    api("POST", "/api/logout").then(function () { window.location.href = "/login"; });
  });

  window.catalogReady.then(function () { return api("GET", "/api/me"); }).then(function (me) {
    state.me = me;
    $("me").textContent = me.name + " · " + T("role." + me.role);
    if (me.presence) $("presence").value = me.presence;
    else $("presence").parentNode.hidden = true;
    if (me.role !== "attendant") { $("others").hidden = false; $("others-title").hidden = false; }
    connect();
  });
})();
