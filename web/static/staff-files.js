/* Files in the staff workspace: what patients sent (image thumbnails that open in a viewer,
   an audio or video player, links to PDFs and documents) and a file attached to a reply.
   staff.js calls StaffFiles.render for each message it shows and hands a reply over to
   StaffFiles.send when a file is chosen. Every file is read through /api/files/<key>, which
   checks access and audit-logs the read. */
window.StaffFiles = (function () {
  "use strict";
  var FETCHABLE = ["image", "audio", "video", "document", "sticker", "voice"];

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* ---- the viewer: one dialog for every image ---- */
  var viewer = null;
  function openViewer(url, name) {
    if (!viewer) {
      viewer = el("dialog", "file-viewer");
      viewer.setAttribute("aria-label", T("files.open"));
      var close = el("button", "file-viewer-close", T("files.close_viewer"));
      close.type = "button";
      close.addEventListener("click", function () { viewer.close(); });
      viewer.appendChild(close);
      viewer.appendChild(el("img", "file-viewer-image"));
      viewer.addEventListener("click", function (event) { if (event.target === viewer) viewer.close(); });
      document.body.appendChild(viewer);
    }
    var image = viewer.querySelector("img");
    image.src = url;
    image.alt = T("files.image_alt", { name: name });
    viewer.showModal();
  }

  function fileNode(a, base) {
    var url = base + a.file;
    var name = a.filename || T("files.kind." + (a.kind || "document"));
    if (a.kind === "image") {
      var thumb = el("button", "file-thumb");
      thumb.type = "button";
      thumb.title = T("files.open");
      var img = el("img");
      img.src = url;
      img.alt = T("files.image_alt", { name: name });
      img.loading = "lazy";
      thumb.appendChild(img);
      thumb.addEventListener("click", function () { openViewer(url, name); });
      return thumb;
    }
    if (a.kind === "audio" || a.kind === "video") {
      var player = el(a.kind, "file-player");
      player.controls = true;
      player.preload = "none";
      player.src = url;
      player.setAttribute("aria-label", T("files.kind." + a.kind) + ": " + name);
      return player;
    }
    var link = el("a", "file-link", "📄 " + name);
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener";
    return link;
  }

  /* The files of one message, under its text (`base`: the route files are read from). */
  function render(item, message, base) {
    var attachments = (message.attachments || []).filter(function (a) {
      return a.file || a.error || (message.files_pending && FETCHABLE.indexOf(a.type) >= 0);
    });
    if (!attachments.length) return;
    var box = el("div", "files");
    attachments.forEach(function (a) {
      if (a.file) box.appendChild(fileNode(a, base || "/api/files/"));
      else if (a.error) box.appendChild(el("p", "file-error", T("files.error." + a.error)));
      else box.appendChild(el("p", "file-pending", T("files.fetching")));
    });
    item.appendChild(box);
  }

  /* ---- attaching a file to a reply ---- */
  var input = null, chosenLabel = null;
  function setUp() {
    var form = document.getElementById("reply-form");
    if (!form || input) return;
    var tools = form.querySelector(".reply-tools");
    var label = el("label", "file-attach");
    input = el("input");
    input.type = "file";
    input.id = "reply-file";
    input.accept = "image/*,audio/*,video/*,application/pdf,.doc,.docx,.xls,.xlsx,.ppt,.pptx,.odt,.ods";
    label.appendChild(el("span", null, T("files.attach")));
    label.appendChild(input);
    chosenLabel = el("span", "file-chosen");
    var remove = el("button", "small secondary", T("files.remove"));
    remove.type = "button";
    remove.hidden = true;
    remove.addEventListener("click", function () { clear(); });
    input.addEventListener("change", function () {
      var file = input.files[0];
      chosenLabel.textContent = file ? file.name : "";
      remove.hidden = !file;
    });
    tools.appendChild(label);
    tools.appendChild(chosenLabel);
    tools.appendChild(remove);
    clear = function () { input.value = ""; chosenLabel.textContent = ""; remove.hidden = true; };
  }
  var clear = function () {};

  function chosen() { return !!(input && input.files && input.files[0]); }

  /* Sends the reply with its file; resolves when the server recorded it. */
  function send(conversationId, text, channel) {
    var body = new FormData();
    body.append("file", input.files[0]);
    if (text.trim()) body.append("text", text);
    if (channel) body.append("channel", channel);
    chosenLabel.textContent = T("files.sending");
    return fetch("/api/conversations/" + conversationId + "/files", { method: "POST", body: body })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) { chosenLabel.textContent = input.files[0].name; throw new Error(data.error); }
          clear();
          return data;
        });
      });
  }

  window.catalogReady.then(setUp);
  return { render: render, chosen: chosen, send: send };
})();
