/* Staff agenda: what patients were told of changes staff made (a cancellation, a new time, a
   blocked period), and the "avisar e remarcar" flow of a block: the patients booked inside it
   are listed with whether and where they were told; one click has each told, once.
   agenda.js calls these hooks while it renders. */
(function () {
  "use strict";
  var NOTICE_KINDS = ["cancelled", "rescheduled", "blocked"];
  // What a failed notice says: no channel reached the patient, the desk must phone.
  var UNREACHED = ["no_channel", "undeliverable"];
  var WAIT_MS = 3000;
  var MAX_WAITS = 40;
  var waits = 0;
  var timer = null;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clock(iso) {
    return new Date(iso).toLocaleTimeString("pt-BR", { timeZone: "America/Sao_Paulo", hour: "2-digit", minute: "2-digit" });
  }

  function state(notice) {
    if (notice.status === "sent") return "sent";
    if (notice.status === "pending" || notice.status === "sending") return "waiting";
    if (notice.status === "failed" && UNREACHED.indexOf((notice.error || "").split(":")[0]) >= 0) return "unreached";
    return "dropped";
  }

  function describe(notice) {
    var now = state(notice);
    if (now === "sent") return T("notice.state.sent", { channel: T("channel." + notice.channel) });
    if (now === "dropped") {
      return T("notice.state.dropped", { reason: TOr("reminder.reason." + (notice.error || "").split(":")[0], notice.status) });
    }
    return T("notice.state." + now);
  }

  function noticesOf(appointment, kind) {
    return (appointment.reminders || []).filter(function (r) {
      return kind ? r.kind === kind : NOTICE_KINDS.indexOf(r.kind) >= 0;
    });
  }

  // While a notice waits for the worker, the agenda is read again a little later.
  function followUp(notices, reload) {
    if (timer || waits >= MAX_WAITS) return;
    if (!notices.some(function (n) { return state(n) === "waiting"; })) return;
    waits += 1;
    timer = window.setTimeout(function () { timer = null; reload(); }, WAIT_MS);
  }

  function line(notice) {
    var node = el("div", "notice notice-" + state(notice), T("notice.kind." + notice.kind) + ": " + describe(notice));
    node.setAttribute("data-notice-kind", notice.kind);
    node.setAttribute("data-notice-state", state(notice));
    return node;
  }

  function appointment(row, a, options) {
    var notices = noticesOf(a);
    notices.forEach(function (n) { row.appendChild(line(n)); });
    followUp(notices, options.reload);
  }

  function overlaps(a, block) {
    return new Date(a.starts_at) < new Date(block.ends_at) && new Date(a.ends_at) > new Date(block.starts_at);
  }

  function button(container, blockId, options) {
    var notify = el("button", "notify-block", T("notice.notify"));
    notify.type = "button";
    notify.setAttribute("data-action", "notify-block");
    notify.addEventListener("click", function () {
      notify.disabled = true;
      options.error("");
      api("POST", "/api/agenda/exceptions/" + blockId + "/notify").then(function (result) {
        options.done(T("notice.notified", { count: result.appointments.length }));
        waits = 0;
        return options.reload();
      }).catch(function (error) {
        notify.disabled = false;
        options.error(error.message);
      });
    });
    container.appendChild(notify);
  }

  function block(row, b, appointments, options) {
    var inside = appointments.filter(function (a) {
      return (a.status === "agendada" || a.status === "confirmada") && overlaps(a, b);
    });
    if (!inside.length) return;
    var box = el("div", "block-patients");
    box.appendChild(el("div", "block-patients-title", T("notice.affected")));
    var list = el("ul", "block-patients-list");
    var untold = false;
    inside.forEach(function (a) {
      var told = noticesOf(a, "blocked")[0];
      untold = untold || !told;
      var item = el("li", "", clock(a.starts_at) + " · " + (a.patient_name || T("staff.unknown_patient")) + " · ");
      item.setAttribute("data-appointment-id", a.id);
      item.setAttribute("data-notice-state", told ? state(told) : "untold");
      item.appendChild(el("span", "notice-state", told ? describe(told) : T("notice.not_told")));
      list.appendChild(item);
    });
    box.appendChild(list);
    if (options.manager && untold) button(box, b.id, options);
    row.appendChild(box);
  }

  window.agendaNotify = { appointment: appointment, block: block, button: button };
})();
