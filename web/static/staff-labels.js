/* Staff workspace: labels and canned responses. Labels show as coloured chips on the list
   items, filter the lists, and are put on or taken off the open conversation; canned
   responses are inserted from the select or by typing `/shortcut` in the reply box (Tab,
   space or Enter expands it; a list suggests the shortcuts that match what is typed).
   Extends staff.js through its hooks (window.staffWorkspace). */
(function () {
  "use strict";
  var workspace = window.staffWorkspace, state = workspace.state, hooks = workspace.hooks;
  var labels = {};  // id → {id, name, colour}
  var canned = [];
  var filter = null;  // the label id the lists show, or null for every conversation
  var SUGGESTIONS_SHOWN = 6;
  var $ = function (id) { return document.getElementById(id); };
  var box = $("reply-text");

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function showError(error) { $("action-error").textContent = error.message; }
  function isManager() { return state.me.role !== "attendant"; }
  function byName(a, b) { return a.name.localeCompare(b.name, "pt-BR"); }

  /* ---- labels ---- */
  // Black or white text, whichever reads better on the label's colour (WCAG luminance).
  function textColour(hex) {
    var channels = [1, 3, 5].map(function (i) {
      var c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
    return luminance > 0.179 ? "#000000" : "#ffffff";
  }
  function chip(label) {
    var node = el("span", "label-chip", label.name);
    node.style.backgroundColor = label.colour;
    node.style.color = textColour(label.colour);
    node.setAttribute("data-label-id", label.id);
    return node;
  }
  function labelsOf(c) {
    return (c.labels || []).filter(function (id) { return labels[id]; }).map(function (id) { return labels[id]; });
  }
  function mayLabel(c) {
    var mine = c.owner === "attendant" && c.assigned_attendant_id === state.me.id;
    return isManager() || (c.status === "open" && mine);
  }

  hooks.item.push(function (c, item) {
    var on = labelsOf(c);
    if (on.length) {
      var row = el("div", "labels");
      on.forEach(function (label) { row.appendChild(chip(label)); });
      item.appendChild(row);
    }
    if (c.id === state.selected) renderPicker();  // its owner may have changed
  });
  hooks.shows.push(function (c) { return filter === null || (c.labels || []).indexOf(filter) >= 0; });

  var filterSelect = el("select");
  filterSelect.id = "label-filter";
  filterSelect.addEventListener("change", function () {
    filter = filterSelect.value ? Number(filterSelect.value) : null;
    workspace.renderLists();
  });
  function renderFilter() {
    var chosen = filterSelect.value;
    filterSelect.innerHTML = "";
    var all = el("option", "", T("labels.filter_all"));
    all.value = "";
    filterSelect.appendChild(all);
    Object.values(labels).sort(byName).forEach(function (label) {
      var option = el("option", "", label.name);
      option.value = label.id;
      filterSelect.appendChild(option);
    });
    filterSelect.value = labels[chosen] ? chosen : "";
    filter = filterSelect.value ? Number(filterSelect.value) : null;
  }

  var picker = el("div", "label-picker");
  picker.id = "conversation-labels";
  var shown = null;  // what the picker shows, so that a list refresh does not rebuild it
  function renderPicker() {
    var c = state.selected && state.conversations[state.selected];
    var editable = c && mayLabel(c);
    var now = c ? [c.id, editable, (c.labels || []).join(), Object.keys(labels).join()].join("|") : "";
    if (now === shown) return;
    shown = now;
    picker.innerHTML = "";
    if (!c) return;
    labelsOf(c).forEach(function (label) {
      var node = chip(label);
      if (editable) {
        var off = el("button", "label-off", "×");
        off.type = "button";
        off.setAttribute("aria-label", T("labels.take_off", { nome: label.name }));
        off.addEventListener("click", function () { setLabel(c.id, label.id, false); });
        node.appendChild(off);
      }
      picker.appendChild(node);
    });
    var free = Object.values(labels).filter(function (l) { return (c.labels || []).indexOf(l.id) < 0; });
    if (!editable || !free.length) return;
    var add = el("select", "label-add");
    add.setAttribute("aria-label", T("labels.put_on"));
    var prompt = el("option", "", T("labels.put_on"));
    prompt.value = "";
    add.appendChild(prompt);
    free.sort(byName).forEach(function (label) {
      var option = el("option", "", label.name);
      option.value = label.id;
      add.appendChild(option);
    });
    add.addEventListener("change", function () { if (add.value) setLabel(c.id, Number(add.value), true); });
    picker.appendChild(add);
  }
  function setLabel(conversationId, labelId, on) {
    $("action-error").textContent = "";
    api(on ? "PUT" : "DELETE", "/api/conversations/" + conversationId + "/labels/" + labelId)
      .then(function (result) { applyLabels(conversationId, result.labels); })
      .catch(function (error) { showError(error); shown = null; renderPicker(); });
  }
  function applyLabels(conversationId, ids) {
    var c = state.conversations[conversationId];
    if (!c) return;
    c.labels = ids;
    workspace.renderLists();
    renderPicker();
  }

  hooks.opened.push(function (detail) {
    var c = state.conversations[detail.conversation.id];
    if (c) c.labels = detail.conversation.labels;
    renderPicker();
  });
  hooks.events.push(function (event) {
    if (event.type === "labels") applyLabels(event.conversation.id, event.labels);
  });

  /* ---- canned responses ---- */
  function fillTemplate(text) {
    var patient = (state.detail && state.detail.patient.name) || "";
    return text.replace(/\{paciente\}/g, patient.split(" ")[0]).replace(/\{atendente\}/g, state.me.name.split(" ")[0]);
  }
  function insertAt(start, end, text) {
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    box.setSelectionRange(start + text.length, start + text.length);
    box.focus();
    renderSuggestions();
  }
  // The `/word` being typed just before the caret: its start and the word.
  function typedShortcut() {
    var before = box.value.slice(0, box.selectionStart);
    var match = /(^|\s)\/([a-z0-9_-]*)$/.exec(before);
    return match ? { start: before.length - match[2].length - 1, word: match[2] } : null;
  }
  function expand(typed, chosen) {
    insertAt(typed.start, box.selectionStart, fillTemplate(chosen.text));
  }

  $("canned").addEventListener("change", function (event) {
    var chosen = canned.filter(function (c) { return c.shortcut === event.target.value; })[0];
    if (chosen) {
      box.value = fillTemplate(chosen.text);
      box.focus();
    }
    event.target.value = "";
  });
  // Before staff.js's Enter-sends handler (capture on the form): a complete shortcut expands.
  $("reply-form").addEventListener("keydown", function (event) {
    if (event.target !== box || event.shiftKey || [" ", "Tab", "Enter"].indexOf(event.key) < 0) return;
    var typed = typedShortcut();
    var chosen = typed && canned.filter(function (c) { return c.shortcut === typed.word; })[0];
    if (!chosen) return;
    event.preventDefault();
    event.stopPropagation();
    expand(typed, chosen);
  }, true);

  var suggestions = el("ul", "canned-suggestions");
  suggestions.id = "canned-suggestions";
  function renderSuggestions() {
    suggestions.innerHTML = "";
    var typed = typedShortcut();
    if (!typed) return;
    canned.filter(function (c) { return c.shortcut.indexOf(typed.word) === 0; }).slice(0, SUGGESTIONS_SHOWN).forEach(function (c) {
      var item = el("li");
      var button = el("button", "small secondary", "/" + c.shortcut + " — " + c.text.slice(0, 60));
      button.type = "button";
      button.setAttribute("data-shortcut", c.shortcut);
      button.addEventListener("click", function () {
        var now = typedShortcut();
        if (now) expand(now, c);
      });
      item.appendChild(button);
      suggestions.appendChild(item);
    });
  }
  box.addEventListener("input", renderSuggestions);

  function loadCanned() {
    return api("GET", "/api/canned-responses").then(function (found) {
      canned = found;
      var select = $("canned");
      while (select.options.length > 1) select.remove(1);
      found.forEach(function (c) {
        var option = el("option", "", "/" + c.shortcut + " — " + c.text.slice(0, 60));
        option.value = c.shortcut;
        select.appendChild(option);
      });
    });
  }

  // The patient's card shows the labels on their conversations.
  document.addEventListener("staff:card", function (event) {
    var shown = event.detail.labelIds.filter(function (id) { return labels[id]; });
    shown.forEach(function (id) { event.detail.labels.appendChild(chip(labels[id])); });
    event.detail.labels.hidden = !shown.length;
  });

  hooks.ready.push(function (me) {
    window.catalogReady.then(function () {
      var lists = document.querySelector(".staff-lists");
      var wrap = el("label", "label-filter");
      wrap.appendChild(el("span", "", T("labels.filter")));
      wrap.appendChild(filterSelect);
      lists.insertBefore(wrap, lists.firstChild);
      document.querySelector(".conversation-head .who").appendChild(picker);
      suggestions.setAttribute("aria-label", T("labels.shortcut_hint"));
      $("reply-form").appendChild(suggestions);
      if (me.role !== "attendant") {
        var link = el("a", "", T("labels.link"));
        link.href = "/staff/etiquetas";
        link.id = "labels-link";
        $("metrics-link").insertAdjacentElement("afterend", link);
      }
      return Promise.all([api("GET", "/api/labels"), loadCanned()]);
    }).then(function (results) {
      labels = {};
      results[0].forEach(function (label) { labels[label.id] = label; });
      renderFilter();
      workspace.renderLists();
      renderPicker();
    }).catch(showError);
  });
})();
