// The grade book: a spreadsheet feel on a server-rendered table.
// Each cell saves on its own when it changes. Two kinds of failure, told apart by the answer:
// - not reached, or not answered (network error, 5xx, 408, 429): the value stays visible and
//   pending and is retried with backoff until it goes through;
// - refused (any other 4xx, or a page instead of the JSON answer, e.g. the login page after the
//   session ended): the server's message is shown in the cell and the value is not retried
//   (retrying a refusal changes nothing, and would hide it as "offline" forever).
// Arrow keys, Enter and Tab move between cells.
(function () {
  "use strict";
  const messagesNode = document.getElementById("gradebook-messages");
  if (!messagesNode) return;
  const messages = JSON.parse(messagesNode.textContent);
  document.querySelectorAll("table[data-save-url]").forEach((table) => setUp(table, messages));
})();

function setUp(table, messages) {
  "use strict";
  const status = document.getElementById("save-status");
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  const pending = new Map(); // input -> value waiting to be (re)sent
  let selected = null;

  function cellOf(input) {
    const row = input.closest("tr");
    return { row, enrolment: row.dataset.enrolment, field: input.dataset.field };
  }

  function showStatus() {
    status.textContent = pending.size ? `${pending.size} ${messages.pending}` : "";
  }

  async function save(input, attempt = 0) {
    const { row, enrolment, field } = cellOf(input);
    const value = input.value;
    input.dataset.sent = value;
    const td = input.closest(".cell") || input.closest("td");
    td.classList.remove("error", "saved");
    td.classList.add("saving");
    td.querySelector(".msg").textContent = "";
    pending.set(input, value);
    showStatus();
    const body = new URLSearchParams({ enrolment, field, value, term: table.dataset.term, period: table.dataset.period });
    function retryLater(message) {
      td.classList.remove("saving");
      td.classList.add("offline");
      td.querySelector(".msg").textContent = message;
      const delay = Math.min(30000, 1000 * 2 ** attempt);
      setTimeout(() => { if (pending.get(input) === value) save(input, attempt + 1); }, delay);
    }
    let response;
    try {
      response = await fetch(table.dataset.saveUrl, {
        method: "POST",
        headers: {
          "X-CSRFToken": csrf,
          "Content-Type": "application/x-www-form-urlencoded",
          Accept: "application/json",
        },
        body,
        credentials: "same-origin",
      });
    } catch (err) {
      retryLater(messages.offline);
      return;
    }
    if (pending.get(input) !== value) return; // a newer edit of this cell is on its way
    if (response.status >= 500 || response.status === 408 || response.status === 429) {
      // Not answered: a proxy without its server (502-504), or the server failing (500).
      retryLater(response.status >= 502 || response.status < 500 ? messages.offline : messages.server_error);
      return;
    }
    let data = null;
    if ((response.headers.get("Content-Type") || "").startsWith("application/json")) {
      try { data = await response.json(); } catch (err) { data = null; }
    }
    if (pending.get(input) !== value) return;
    td.classList.remove("saving", "offline");
    pending.delete(input);
    showStatus();
    if (!response.ok || data === null || data.error !== undefined) {
      // Refused: say why, in the cell, and do not send it again. The typed value stays in the
      // input, so that the teacher sees what was refused and can correct it.
      let reason = data && data.error;
      if (!reason) reason = response.redirected ? messages.signed_out : `${messages.refused} (${response.status})`;
      td.classList.add("error");
      td.querySelector(".msg").textContent = reason;
      input.setAttribute("aria-invalid", "true");
      return;
    }
    input.removeAttribute("aria-invalid");
    input.value = data.value;
    input.dataset.saved = data.value;
    td.classList.add("saved");
    td.title = messages.saved;
    const avg = row.querySelector("[data-average]");
    // Saves of one row may answer out of order: keep the average of the newest version.
    if (avg && data.average !== null && data.average !== undefined && data.version >= (row.dataset.version || "")) {
      row.dataset.version = data.version;
      avg.textContent = data.average;
    }
  }

  function move(input, dRow, dCol) {
    const { row } = cellOf(input);
    const cells = Array.from(row.querySelectorAll("input"));
    const col = cells.indexOf(input);
    const rows = Array.from(table.querySelectorAll("tbody tr"));
    const r = rows.indexOf(row) + dRow;
    if (r < 0 || r >= rows.length) return;
    const target = rows[r].querySelectorAll("input")[Math.max(0, Math.min(cells.length - 1, col + dCol))];
    if (target) { target.focus(); target.select(); }
  }

  table.addEventListener("focusin", (e) => {
    if (e.target.tagName !== "INPUT") return;
    selected = e.target;
    if (selected.dataset.saved === undefined) selected.dataset.saved = selected.value;
    // As in a spreadsheet: entering a cell selects its content, so typing replaces it.
    selected.select();
    if (historyButton && table.dataset.historyUrl) historyButton.disabled = false;
  });
  // A value is sent when it is committed: Enter, Tab or an arrow key, or leaving the cell.
  // (Enter on the last row moves nowhere, so waiting for the change event would lose it.)
  function commit(input) {
    if (!input.readOnly && input.value !== (input.dataset.sent ?? input.dataset.saved ?? input.defaultValue)) save(input);
  }
  table.addEventListener("change", (e) => {
    if (e.target.tagName === "INPUT") commit(e.target);
  });
  table.addEventListener("keydown", (e) => {
    const input = e.target;
    if (input.tagName !== "INPUT") return;
    const atStart = input.selectionStart === 0 && input.selectionEnd === 0;
    const atEnd = input.selectionStart === input.value.length;
    if (["Enter", "Tab", "ArrowDown", "ArrowUp"].includes(e.key)) commit(input);
    if (e.key === "ArrowDown" || (e.key === "Enter" && !e.shiftKey)) { e.preventDefault(); move(input, 1, 0); }
    else if (e.key === "ArrowUp" || (e.key === "Enter" && e.shiftKey)) { e.preventDefault(); move(input, -1, 0); }
    else if (e.key === "ArrowRight" && (atEnd || input.selectionStart !== input.selectionEnd)) { e.preventDefault(); move(input, 0, 1); }
    else if (e.key === "ArrowLeft" && (atStart || input.selectionStart !== input.selectionEnd)) { e.preventDefault(); move(input, 0, -1); }
    else if (e.key === "Escape") { input.value = input.dataset.saved || ""; }
  });

  const historyButton = document.getElementById("show-history");
  if (historyButton && table.dataset.historyUrl) historyButton.addEventListener("click", async () => {
    if (!selected) return;
    const { enrolment, field } = cellOf(selected);
    const params = new URLSearchParams({ enrolment, field, term: table.dataset.term, period: table.dataset.period });
    const response = await fetch(`${table.dataset.historyUrl}?${params}`, { credentials: "same-origin" });
    document.getElementById("history").innerHTML = await response.text();
  });

  window.addEventListener("beforeunload", (e) => { if (pending.size) { e.preventDefault(); e.returnValue = ""; } });
}
