/* The manager's page of labels and canned responses: list, create, edit and delete each
   (the API refuses anyone else, and the page sends them back to the workspace). */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function field(tag, label, value) {
    var node = el(tag);
    node.value = value;
    node.setAttribute("aria-label", label);
    return node;
  }
  function button(key, className, onClick) {
    var node = el("button", "small " + (className || ""), T(key));
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }
  // After a change: the lists again, and whether it was saved (the refusal is shown).
  function done(promise) {
    $("labels-error").textContent = "";
    $("labels-status").textContent = "";
    return promise.then(function () {
      $("labels-status").textContent = T("labels.saved");
      return load().then(function () { return true; });
    }).catch(function (error) { $("labels-error").textContent = error.message; return false; });
  }

  function labelRow(label) {
    var item = el("li");
    item.setAttribute("data-label-id", label.id);
    var name = field("input", T("labels.name") + " — " + label.name, label.name);
    name.maxLength = 40;
    var colour = field("input", T("labels.colour") + " — " + label.name, label.colour);
    colour.type = "color";
    item.appendChild(name);
    item.appendChild(colour);
    item.appendChild(button("labels.save", "", function () {
      done(api("PATCH", "/api/labels/" + label.id, { name: name.value, colour: colour.value }));
    }));
    item.appendChild(button("labels.delete", "secondary", function () {
      if (window.confirm(T("labels.confirm_delete", { nome: label.name }))) done(api("DELETE", "/api/labels/" + label.id));
    }));
    return item;
  }

  function cannedRow(canned) {
    var item = el("li");
    item.setAttribute("data-canned-id", canned.id);
    var shortcut = field("input", T("labels.shortcut") + " — /" + canned.shortcut, canned.shortcut);
    shortcut.maxLength = 33;
    var text = field("textarea", T("labels.text") + " — /" + canned.shortcut, canned.text);
    text.rows = 2;
    text.maxLength = 4096;
    item.appendChild(el("span", "", "/"));
    item.appendChild(shortcut);
    item.appendChild(text);
    item.appendChild(button("labels.save", "", function () {
      done(api("PATCH", "/api/canned-responses/" + canned.id, { shortcut: shortcut.value, text: text.value }));
    }));
    item.appendChild(button("labels.delete", "secondary", function () {
      if (window.confirm(T("labels.confirm_delete_canned", { atalho: canned.shortcut }))) done(api("DELETE", "/api/canned-responses/" + canned.id));
    }));
    return item;
  }

  function fill(list, rows, render, emptyKey) {
    list.innerHTML = "";
    rows.forEach(function (row) { list.appendChild(render(row)); });
    if (!rows.length) list.appendChild(el("li", "empty", T(emptyKey)));
  }

  function load() {
    return Promise.all([api("GET", "/api/labels"), api("GET", "/api/canned-responses")]).then(function (both) {
      fill($("label-list"), both[0], labelRow, "labels.none");
      fill($("canned-list"), both[1], cannedRow, "labels.no_canned");
    });
  }

  $("label-new").addEventListener("submit", function (event) {
    event.preventDefault();
    done(api("POST", "/api/labels", { name: $("label-name").value, colour: $("label-colour").value }))
      .then(function (saved) { if (saved) $("label-name").value = ""; });
  });
  $("canned-new").addEventListener("submit", function (event) {
    event.preventDefault();
    done(api("POST", "/api/canned-responses", { shortcut: $("canned-shortcut").value, text: $("canned-text").value }))
      .then(function (saved) { if (saved) { $("canned-shortcut").value = ""; $("canned-text").value = ""; } });
  });
  window.catalogReady.then(load).catch(function (error) { $("labels-error").textContent = error.message; });
})();
