/*
 * omniclinica chat widget. Embed with one tag:
 *   <script src="https://CLINIC_PLATFORM_HOST/webhooks/webchat/widget.js" async></script>
 * Optional attributes: data-title="Clínica X" data-open="true".
 * Speaks the JSON protocol documented in channels/webchat.py; files go to its upload
 * endpoint (POST /webhooks/webchat/files), documented there too.
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
    you: "Você",
    attach: "Anexar arquivo",
    messages: "Mensagens da conversa",
    file: "Arquivo",
    image: "Imagem enviada: ",
    uploadFailed: "Não foi possível enviar o arquivo. Verifique sua conexão e tente de novo."
  };
  // What the clinic accepts (the platform checks each file's content, whatever this says).
  var ACCEPT = "image/*,application/pdf,audio/*,video/*,.doc,.docx,.xls,.xlsx,.ppt,.pptx,.odt,.ods";
  var script = document.currentScript;
  var base = new URL(script.src);
  var wsUrl = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/webhooks/webchat/ws";
  var uploadUrl = base.origin + "/webhooks/webchat/files";
  var storageKey = "omniclinica.webchat.token";
  var TOO_MANY = 4029;  // the server's close code: too many new conversations from here
  var title = script.getAttribute("data-title") || TEXT.title;

  // The look comes from a file beside the script: no inline style, so the widget works under a
  // strict Content-Security-Policy (the platform's and the clinic site's).
  var stylesheet = document.createElement("link");
  stylesheet.rel = "stylesheet";
  stylesheet.href = base.origin + "/webhooks/webchat/widget.css";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Icons drawn in SVG: an emoji depends on the visitor's fonts.
  function icon(d, filled) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    var path = document.createElementNS(ns, "path");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    path.setAttribute("d", d);
    path.setAttribute("fill", filled ? "currentColor" : "none");
    if (!filled) {
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "2");
      path.setAttribute("stroke-linecap", "round");
    }
    svg.appendChild(path);
    return svg;
  }
  var BUBBLE = "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z";
  var CLIP = "M21 11l-8.5 8.5a5 5 0 0 1-7-7L14 4a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 7";

  document.head.appendChild(stylesheet);

  var launcher = el("button", "ocw-launcher");
  launcher.appendChild(icon(BUBBLE, true));
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
  // Focusable, so a keyboard scrolls back through a conversation longer than the panel.
  log.setAttribute("role", "log");
  log.setAttribute("aria-label", TEXT.messages);
  log.tabIndex = 0;
  var errorLine = el("div", "ocw-error");
  var form = el("form", "ocw-form");
  var input = el("input");
  input.placeholder = TEXT.placeholder;
  input.setAttribute("aria-label", TEXT.placeholder);
  input.maxLength = 4000;
  var sendButton = el("button", null, TEXT.send);
  sendButton.type = "submit";
  // The file picker: a labelled button opens the (hidden) file input.
  var fileInput = el("input", "ocw-file-input");
  fileInput.type = "file";
  fileInput.accept = ACCEPT;
  fileInput.tabIndex = -1;
  fileInput.setAttribute("aria-hidden", "true");
  var attachButton = el("button", "ocw-attach");
  attachButton.type = "button";
  attachButton.setAttribute("aria-label", TEXT.attach);
  attachButton.title = TEXT.attach;
  attachButton.appendChild(icon(CLIP, false));
  attachButton.addEventListener("click", function () { fileInput.click(); });
  form.appendChild(attachButton);
  form.appendChild(input);
  form.appendChild(sendButton);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(errorLine);
  panel.appendChild(form);
  // Outside the form (its text box stays the form's one input); hidden by the style sheet, not
  // display:none, which keeps some browsers from opening the file chooser.
  panel.appendChild(fileInput);
  // Shown once styled, never as a flash of bare elements at the foot of the page.
  stylesheet.addEventListener("load", function () {
    document.body.appendChild(panel);
    document.body.appendChild(launcher);
  });

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
      bubble = el("div", "ocw-msg ocw-system");
    } else if (message.direction === "in") {
      bubble = el("div", "ocw-msg ocw-in");
    } else {
      bubble = el("div", "ocw-msg ocw-out");
      if (kind === "attendant") bubble.appendChild(el("span", "ocw-author", TEXT.attendant));
    }
    if (message.text) bubble.appendChild(document.createTextNode(message.text));
    (message.attachments || []).forEach(function (a) { bubble.appendChild(fileLine(a)); });
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
    return bubble;
  }

  // A file in a message: its name, and the photo itself when the visitor is sending it from
  // this browser (`blob`: their own file; nothing is fetched).
  function fileLine(attachment) {
    var name = attachment.filename || TEXT.file;
    var line = el("span", "ocw-file");
    if (attachment.blob) {
      var img = el("img", "ocw-thumb");
      img.src = URL.createObjectURL(attachment.blob);
      img.alt = TEXT.image + name;
      line.appendChild(img);
    }
    line.appendChild(icon(CLIP, false));
    line.appendChild(el("span", "ocw-file-name", name));
    return line;
  }

  function sendFile(file) {
    errorLine.textContent = "";
    var id = newId();
    var shown = { filename: file.name };
    if (/^image\//.test(file.type)) shown.blob = file;
    var bubble = render({ direction: "in", author_kind: "patient", text: "", attachments: [shown] });
    var body = new FormData();
    var token = localStorage.getItem(storageKey);
    if (token) body.append("token", token);
    body.append("id", id);
    body.append("file", file, file.name);
    fetch(uploadUrl, { method: "POST", body: body }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.ok) {
          if (answer.message_id) seen[answer.message_id] = true;
          return;
        }
        bubble.remove();
        errorLine.textContent = answer.error || TEXT.uploadFailed;
      });
    }, function () {
      bubble.remove();
      errorLine.textContent = TEXT.uploadFailed;
    });
  }

  fileInput.addEventListener("change", function () {
    if (fileInput.files.length) sendFile(fileInput.files[0]);
    fileInput.value = "";
    attachButton.focus();
  });

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
      } else if (frame.type === "token") {
        localStorage.setItem(storageKey, frame.token);  // rotated: the old one expires
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
    ws.onclose = function (event) {
      ready = false;
      status.textContent = TEXT.offline;
      if (event.code === TOO_MANY) retryDelay = 60000;
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    };
  }
  connect();
})();
