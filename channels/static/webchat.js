/*
 * omniclinica chat widget. Embed with one tag:
 *   <script src="https://CLINIC_PLATFORM_HOST/webhooks/webchat/widget.js" async></script>
 * Optional attributes: data-title="Clínica X" data-open="true".
 * Speaks the JSON protocol documented in bot/channels/webchat.py.
 */
(function () {
  "use strict";
  var TEXT = {
    title: "Fale com a clínica",
    subtitle: "Respondemos em instantes",
    placeholder: "Digite sua mensagem…",
    send: "Enviar",
    open: "Abrir conversa",
    close: "Fechar conversa",
    offline: "Reconectando…",
    attendant: "Atendente",
    you: "Você"
  };
  var script = document.currentScript;
  var base = new URL(script.src);
  var wsUrl = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/webhooks/webchat/ws";
  var storageKey = "omniclinica.webchat.token";
  var title = script.getAttribute("data-title") || TEXT.title;

  var css = [
    ".ocw-launcher{position:fixed;right:20px;bottom:20px;width:60px;height:60px;border-radius:50%;border:0;background:#0b7a75;color:#fff;font-size:28px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000}",
    ".ocw-panel{position:fixed;right:20px;bottom:92px;width:360px;max-width:calc(100vw - 40px);height:520px;max-height:calc(100vh - 120px);display:none;flex-direction:column;background:#fff;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.25);font:14px/1.4 system-ui,sans-serif;z-index:2147483000;overflow:hidden}",
    ".ocw-panel.ocw-open{display:flex}",
    ".ocw-head{background:#0b7a75;color:#fff;padding:12px 16px}",
    ".ocw-head strong{display:block;font-size:16px}",
    ".ocw-status{font-size:12px;opacity:.85}",
    ".ocw-log{flex:1;overflow-y:auto;padding:12px;background:#f4f7f7}",
    ".ocw-msg{max-width:80%;margin:6px 0;padding:8px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}",
    ".ocw-in{background:#0b7a75;color:#fff;margin-left:auto;border-bottom-right-radius:4px}",
    ".ocw-out{background:#fff;color:#222;border:1px solid #dde5e5;border-bottom-left-radius:4px}",
    ".ocw-system{background:transparent;color:#566;font-size:12px;text-align:center;margin:8px auto}",
    ".ocw-author{display:block;font-size:11px;color:#0b7a75;font-weight:600}",
    ".ocw-buttons{display:flex;flex-wrap:wrap;gap:6px;margin:4px 0 8px}",
    ".ocw-buttons button{border:1px solid #0b7a75;background:#fff;color:#0b7a75;border-radius:16px;padding:5px 12px;cursor:pointer}",
    ".ocw-error{color:#b00020;font-size:12px;padding:4px 12px}",
    ".ocw-form{display:flex;border-top:1px solid #dde5e5}",
    ".ocw-form input{flex:1;border:0;padding:12px;font:inherit;outline:none}",
    ".ocw-form button{border:0;background:#0b7a75;color:#fff;padding:0 16px;cursor:pointer}"
  ].join("\n");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var style = el("style");
  style.textContent = css;
  document.head.appendChild(style);

  var launcher = el("button", "ocw-launcher", "💬");
  launcher.setAttribute("aria-label", TEXT.open);
  var panel = el("div", "ocw-panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  var head = el("div", "ocw-head");
  head.appendChild(el("strong", null, title));
  var status = el("span", "ocw-status", TEXT.subtitle);
  head.appendChild(status);
  var log = el("div", "ocw-log");
  log.setAttribute("aria-live", "polite");
  var errorLine = el("div", "ocw-error");
  var form = el("form", "ocw-form");
  var input = el("input");
  input.placeholder = TEXT.placeholder;
  input.setAttribute("aria-label", TEXT.placeholder);
  input.maxLength = 4000;
  var sendButton = el("button", null, TEXT.send);
  sendButton.type = "submit";
  form.appendChild(input);
  form.appendChild(sendButton);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(errorLine);
  panel.appendChild(form);
  document.body.appendChild(panel);
  document.body.appendChild(launcher);

  launcher.addEventListener("click", function () {
    var open = panel.classList.toggle("ocw-open");
    launcher.setAttribute("aria-label", open ? TEXT.close : TEXT.open);
    if (open) input.focus();
  });
  if (script.getAttribute("data-open") === "true") panel.classList.add("ocw-open");

  var ws = null;
  var ready = false;
  var welcomed = false;
  var seen = {};
  var pending = [];  // frames not yet acked: resent after a reconnect (same id, so never twice)
  var retryDelay = 500;

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }

  function render(message) {
    if (message.id && seen[message.id]) return;
    if (message.id) seen[message.id] = true;
    var kind = message.author_kind;
    var bubble;
    if (kind === "system") {
      bubble = el("div", "ocw-msg ocw-system", message.text);
    } else if (message.direction === "in") {
      bubble = el("div", "ocw-msg ocw-in", message.text);
    } else {
      bubble = el("div", "ocw-msg ocw-out");
      if (kind === "attendant") bubble.appendChild(el("span", "ocw-author", TEXT.attendant));
      bubble.appendChild(document.createTextNode(message.text));
    }
    bubble.setAttribute("data-author", kind);
    log.appendChild(bubble);
    var old = log.querySelectorAll(".ocw-buttons");
    for (var i = 0; i < old.length; i++) old[i].remove();
    if (message.buttons && message.buttons.length) {
      var row = el("div", "ocw-buttons");
      message.buttons.forEach(function (b) {
        var button = el("button", null, b.title);
        button.type = "button";
        button.addEventListener("click", function () { send(b.title, b.payload); });
        row.appendChild(button);
      });
      log.appendChild(row);
    }
    log.scrollTop = log.scrollHeight;
  }

  function transmit(frame) {
    if (ws && ready) ws.send(JSON.stringify(frame));
  }

  function send(text, payload) {
    text = (text || "").trim();
    if (!text) return;
    errorLine.textContent = "";
    var frame = { type: "message", id: newId(), text: text };
    if (payload) frame.payload = payload;
    pending.push(frame);
    render({ direction: "in", author_kind: "patient", text: text, local: frame.id });
    transmit(frame);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send(input.value);
    input.value = "";
  });

  function connect() {
    ws = new WebSocket(wsUrl);
    ws.onopen = function () {
      retryDelay = 500;
      ws.send(JSON.stringify({ type: "hello", token: localStorage.getItem(storageKey) }));
    };
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "welcome") {
        localStorage.setItem(storageKey, frame.token);
        ready = true;
        status.textContent = TEXT.subtitle;
        // After a reconnect our own messages are already on screen (echoed when typed).
        frame.history.forEach(function (m) {
          if (welcomed && m.direction === "in") seen[m.id] = true;
          else render(m);
        });
        welcomed = true;
        pending.forEach(transmit);
      } else if (frame.type === "ack") {
        if (frame.message_id) seen[frame.message_id] = true;
        pending = pending.filter(function (p) { return p.id !== frame.id; });
      } else if (frame.type === "message") {
        render(frame.message);
      } else if (frame.type === "error") {
        pending = pending.filter(function (p) { return p.id !== frame.id; });
        errorLine.textContent = frame.message;
      }
    };
    ws.onclose = function () {
      ready = false;
      status.textContent = TEXT.offline;
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    };
  }
  connect();
})();
