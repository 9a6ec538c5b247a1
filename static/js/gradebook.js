// The grade book: a spreadsheet feel on a server-rendered table, that survives the connection
// dropping.
//
// Every committed cell goes first into a queue kept on this device (IndexedDB), then to the
// server, one at a time and in typing order, each with the value it replaced (`expected`). So a
// value typed offline, or while the server is away, waits in the browser ("chưa gửi"), survives a
// reload or a closed tab, and is sent when the connection returns. The answers:
// - 200: saved (or already there: a repeat whose first answer was lost); off the queue;
// - 409: the cell changed on the server meanwhile: a conflict, both values shown in the cell,
//   the teacher chooses (mine: sent again over theirs; theirs: my edit dropped);
// - any other 4xx (or a page instead of the JSON answer): refused, shown in the cell, off the
//   queue, never retried (retrying a refusal changes nothing, and would hide it as "offline");
// - network error, 5xx, 408, 429: not answered; stays queued, retried with backoff and on `online`.
// The queue is keyed by user, school, save URL and cell, and before sending, the script asks the
// server who is signed in (a HEAD of the service worker's URL): one user's queue is never sent
// under another's session, nor shown on their page. Arrow keys, Enter and Tab move between cells.
(function () {
  "use strict";
  const node = document.getElementById("gradebook-messages");
  if (!node) return;
  const messages = JSON.parse(node.textContent);
  const tables = Array.from(document.querySelectorAll("table[data-save-url]"));
  const page = { user: node.dataset.user || "", school: node.dataset.school || "", sw: node.dataset.sw || "" };
  const queue = makeQueue(page, messages, tables);
  tables.forEach((table) => setUp(table, messages, queue));
  queue.start();
  if (page.sw && "serviceWorker" in navigator) registerWorker(page.sw);
})();

function registerWorker(url) {
  "use strict";
  // The worker keeps this page for a reload without network. A page that did not come through
  // it (the first visit) asks it to keep a copy.
  const served = Boolean(navigator.serviceWorker.controller);
  navigator.serviceWorker.register(url).then(() => navigator.serviceWorker.ready).then((reg) => {
    const files = Array.from(document.querySelectorAll("link[rel=stylesheet][href], script[src]"), (n) => n.href || n.src);
    if (!served && reg.active) reg.active.postMessage({ keep: [location.href].concat(files) });
  }).catch(() => {});
}

// The device's queue: IndexedDB when the browser has it, memory otherwise (then it does not
// survive a reload, as before).
function openStore() {
  "use strict";
  const memory = new Map();
  let seq = 0;
  const fallback = {
    all: async () => Array.from(memory.values()).sort((a, b) => a.seq - b.seq),
    put: async (e) => { if (e.seq === undefined) e.seq = ++seq; memory.set(e.seq, e); return e; },
    del: async (e) => { memory.delete(e.seq); },
  };
  if (!window.indexedDB) return Promise.resolve(fallback);
  return new Promise((resolve) => {
    const open = indexedDB.open("hocba-gradebook", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("queue", { keyPath: "seq", autoIncrement: true });
    open.onerror = () => resolve(fallback);
    open.onsuccess = () => {
      const db = open.result;
      const run = (mode, work) => new Promise((ok, fail) => {
        const tx = db.transaction("queue", mode);
        const request = work(tx.objectStore("queue"));
        tx.oncomplete = () => ok(request.result);
        tx.onerror = tx.onabort = () => fail(tx.error);
      });
      resolve({
        all: () => run("readonly", (s) => s.getAll()), // in key order: typing order
        put: async (e) => {
          const copy = Object.assign({}, e);
          if (copy.seq === undefined) delete copy.seq;
          e.seq = await run("readwrite", (s) => s.put(copy));
          return e;
        },
        del: (e) => run("readwrite", (s) => s.delete(e.seq)),
      });
    };
  });
}

function makeQueue(page, messages, tables) {
  "use strict";
  const owner = `${page.user}|${page.school}`;
  const urls = new Set(tables.map((t) => t.dataset.saveUrl));
  const status = document.getElementById("save-status");
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  const store = openStore();
  let entries = []; // this page's entries, in typing order (a copy of the stored ones)
  let inFlight = null;
  let running = false;
  let paused = ""; // a message while sending is stopped (signed out, another user)
  let attempt = 0;
  let timer = null;
  let chain = Promise.resolve(); // store writes, one after the other

  const mine = (e) => e.owner === owner && urls.has(e.url);
  const write = (work) => (chain = chain.then(work).catch(() => {}));

  function inputOf(e) {
    const table = tables.find((t) => t.dataset.saveUrl === e.url);
    if (!table || (table.dataset.term || "") !== e.term || (table.dataset.period || "") !== e.period) return null;
    const row = table.querySelector(`tbody tr[data-enrolment="${CSS.escape(e.enrolment)}"]`);
    return row && row.querySelector(`input[data-field="${CSS.escape(e.field)}"]`);
  }
  const cellOf = (input) => input.closest(".cell") || input.closest("td");

  function show(e, state, text) {
    const input = inputOf(e);
    if (!input) return;
    const cell = cellOf(input);
    cell.classList.remove("pending", "saving", "offline", "saved", "error", "conflict");
    if (state) cell.classList.add(state);
    const msg = cell.querySelector(".msg");
    msg.textContent = text || "";
    if (state === "conflict") msg.append(conflictChoice(e));
    if (state === "error") input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function conflictChoice(e) {
    const box = document.createElement("span");
    box.className = "choice";
    const both = document.createElement("span");
    both.textContent = `${messages.theirs}: ${e.current || "—"} · ${messages.mine}: ${e.value || "—"}`;
    const keepMine = document.createElement("button");
    keepMine.type = "button";
    keepMine.className = "keep-mine";
    keepMine.textContent = messages.keep_mine;
    keepMine.addEventListener("click", () => resolve(e, true));
    const keepTheirs = document.createElement("button");
    keepTheirs.type = "button";
    keepTheirs.className = "keep-theirs";
    keepTheirs.textContent = messages.keep_theirs;
    keepTheirs.addEventListener("click", () => resolve(e, false));
    box.append(both, keepMine, keepTheirs);
    return box;
  }

  function showStatus() {
    const waiting = entries.filter((e) => e.state === "pending").length;
    const conflicts = entries.filter((e) => e.state === "conflict").length;
    const parts = [];
    if (waiting) parts.push(`${waiting} ${messages.pending}`);
    if (conflicts) parts.push(`${conflicts} ${messages.conflicts}`);
    if (paused && waiting) parts.push(paused);
    status.textContent = parts.join(" · ");
  }

  // A committed edit. Edits of a cell not yet sent are merged: one save, with the value the
  // cell held before the first of them.
  function add(cell, value, shown) {
    const last = entries.filter((e) => e.key === cell.key && e !== inFlight).pop();
    const before = entries.filter((e) => e.key === cell.key).pop();
    let entry = last;
    if (last && last.state === "conflict") {
      // Typing over a conflict is choosing: this value, over theirs.
      Object.assign(last, { value, expected: last.current, state: "pending", current: undefined });
    } else if (last) {
      last.value = value;
      if (value === last.expected) {
        entries.splice(entries.indexOf(last), 1);
        write(() => store.then((s) => s.del(last)));
        show(last, "", ""); // back to the value it had: nothing to send
        showStatus();
        return;
      }
    } else {
      entry = Object.assign({ owner, value, state: "pending", expected: before ? before.value : shown }, cell);
      entries.push(entry);
    }
    write(() => store.then((s) => s.put(entry)));
    show(entry, "pending", messages.unsent);
    showStatus();
    pump();
  }

  function resolve(e, keepMine) {
    if (keepMine) {
      Object.assign(e, { expected: e.current, state: "pending", current: undefined });
      write(() => store.then((s) => s.put(e)));
      show(e, "pending", messages.unsent);
      pump();
    } else {
      const input = inputOf(e);
      if (input) input.value = input.dataset.saved = input.dataset.last = e.current;
      entries.splice(entries.indexOf(e), 1);
      write(() => store.then((s) => s.del(e)));
      show(e, "saved", "");
    }
    showStatus();
  }

  // Who is signed in now, asked of the server: the page may be an offline copy, or the session
  // may have changed in another tab since it was rendered.
  async function signedInAs() {
    const response = await fetch(page.sw, { method: "HEAD", credentials: "same-origin", cache: "no-store", redirect: "manual" });
    if (response.type === "opaqueredirect") return "";
    if (response.status === 403 || response.status === 404) return "?"; // not a user of this school
    if (!response.ok) throw new Error(`status ${response.status}`);
    return response.headers.get("X-Hocba-User") || "";
  }

  function retryLater(message) {
    if (inFlight) show(inFlight, "offline", message);
    clearTimeout(timer);
    // Backoff with a ceiling; while the browser says it is offline, the `online` event wakes it.
    timer = setTimeout(pump, Math.min(30000, 1000 * 2 ** attempt));
    attempt += 1;
  }

  async function sendOne(e) {
    const body = new URLSearchParams({ enrolment: e.enrolment, field: e.field, value: e.value, expected: e.expected, term: e.term, period: e.period });
    show(e, "saving", messages.saving);
    let response;
    try {
      response = await fetch(e.url, {
        method: "POST",
        headers: { "X-CSRFToken": csrf, "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body,
        credentials: "same-origin",
      });
    } catch (err) {
      return retryLater(messages.offline) || false;
    }
    if (response.status >= 500 || response.status === 408 || response.status === 429) {
      // Not answered: a proxy without its server (502-504), or the server failing (500).
      retryLater(response.status >= 502 || response.status < 500 ? messages.offline : messages.server_error);
      return false;
    }
    let data = null;
    if ((response.headers.get("Content-Type") || "").startsWith("application/json")) {
      try { data = await response.json(); } catch (err) { data = null; }
    }
    attempt = 0;
    const input = inputOf(e);
    if (response.redirected && data === null) {
      // The session ended: keep the queue on this device; it goes when the teacher signs in again.
      paused = messages.signed_out;
      show(e, "pending", messages.signed_out);
      return false;
    }
    if (response.status === 409 && data && data.conflict) {
      // Later edits of the same cell join this conflict: one choice, with my newest value.
      entries.filter((x) => x !== e && x.key === e.key).forEach((x) => {
        e.value = x.value;
        entries.splice(entries.indexOf(x), 1);
        write(() => store.then((s) => s.del(x)));
      });
      Object.assign(e, { state: "conflict", current: data.current });
      await write(() => store.then((s) => s.put(e)));
      show(e, "conflict", data.error || messages.conflict);
      return true;
    }
    entries.splice(entries.indexOf(e), 1);
    const refused = !response.ok || data === null || data.error !== undefined;
    if (refused && !input) {
      // Refused, for a cell that is not on this page (another term or period of the book, typed
      // before moving here): the refusal stays on this device, never sent again, until the
      // cell's own page shows it (start), so that no refused value vanishes unseen.
      Object.assign(e, { state: "refused", reason: (data && data.error) || `${messages.refused} (${response.status})` });
      await write(() => store.then((s) => s.put(e)));
    } else {
      await write(() => store.then((s) => s.del(e)));
    }
    if (refused) {
      // Refused: say why, in the cell; the typed value stays in the input, so that the teacher
      // sees what was refused and can correct it.
      let reason = data && data.error;
      if (!reason) reason = `${messages.refused} (${response.status})`;
      entries.forEach((later) => { if (later.key === e.key && later.expected === e.value) later.expected = e.expected; });
      show(e, "error", reason);
      return true;
    }
    // Later edits of this cell replaced the value as typed; the server's form is the same value.
    entries.forEach((later) => { if (later.key === e.key && later.expected === e.value) later.expected = data.value; });
    if (input && !entries.some((later) => later.key === e.key)) {
      input.value = input.dataset.saved = input.dataset.last = data.value;
      show(e, "saved", "");
      cellOf(input).title = messages.saved;
    } else if (input) {
      input.dataset.saved = data.value;
    }
    const avg = input && input.closest("tr").querySelector("[data-average]");
    const row = input && input.closest("tr");
    if (avg && data.average !== null && data.average !== undefined && data.version >= (row.dataset.version || "")) {
      row.dataset.version = data.version;
      avg.textContent = data.average;
    }
    return true;
  }

  // One at a time, oldest first, across this device's tabs (a lock), until the queue is empty
  // or the server is out of reach.
  async function pump() {
    if (running) return;
    running = true;
    clearTimeout(timer);
    timer = null;
    const work = async () => {
      try {
        const user = await signedInAs();
        if (user !== page.user) {
          paused = user ? messages.other_user : messages.signed_out;
          return;
        }
        paused = "";
        // Another tab of this device may have sent some of them meanwhile.
        await chain;
        const kept = new Set((await (await store).all()).map((s) => s.seq));
        entries.filter((e) => e.seq !== undefined && !kept.has(e.seq)).forEach((e) => show(e, "", ""));
        entries = entries.filter((e) => e.seq === undefined || kept.has(e.seq));
        for (;;) {
          await chain;
          const next = entries.find((e) => e.state === "pending");
          if (!next) break;
          inFlight = next;
          const goOn = await sendOne(next);
          inFlight = null;
          showStatus();
          if (!goOn) break;
        }
      } catch (err) {
        retryLater(messages.offline);
      } finally {
        inFlight = null;
      }
    };
    try {
      if (navigator.locks) await navigator.locks.request(`hocba-gradebook|${owner}`, work);
      else await work();
    } finally {
      running = false;
      showStatus();
      // An edit committed while the last one was in flight after the loop looked.
      if (!paused && timer === null && entries.some((e) => e.state === "pending")) setTimeout(pump, 0);
    }
  }

  // Resume: what this user left unsent on this device, on this page, shown and sent again.
  async function start() {
    await chain;
    const found = (await (await store).all()).filter((s) => mine(s) && !entries.some((e) => e.seq === s.seq));
    // Refusals kept for a cell of another page: shown once on the cell's own page, then dropped.
    found.filter((e) => e.state === "refused").forEach((e) => {
      const input = inputOf(e);
      if (!input) return;
      input.value = input.dataset.last = e.value;
      show(e, "error", e.reason);
      write(() => store.then((s) => s.del(e)));
    });
    const stored = found.filter((e) => e.state !== "refused");
    entries = entries.concat(stored).sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
    stored.forEach((e) => {
      const input = inputOf(e);
      if (input) input.value = input.dataset.last = e.value;
      show(e, e.state, e.state === "conflict" ? messages.conflict : messages.unsent);
    });
    showStatus();
    window.addEventListener("online", () => { attempt = 0; pump(); });
    document.addEventListener("visibilitychange", () => { if (!document.hidden && entries.length) pump(); });
    if (entries.length) pump();
  }

  window.addEventListener("beforeunload", (e) => {
    if (entries.length) { e.preventDefault(); e.returnValue = ""; }
  });
  return { add, start };
}

function setUp(table, messages, queue) {
  "use strict";
  let selected = null;

  function cellOf(input) {
    const row = input.closest("tr");
    const term = table.dataset.term || "";
    const period = table.dataset.period || "";
    const url = table.dataset.saveUrl;
    const enrolment = row.dataset.enrolment;
    const field = input.dataset.field;
    return { row, cell: { url, enrolment, field, term, period, key: `${url}|${enrolment}|${field}|${term}|${period}` } };
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

  table.querySelectorAll("input").forEach((input) => { input.dataset.saved = input.defaultValue; });
  table.addEventListener("focusin", (e) => {
    if (e.target.tagName !== "INPUT") return;
    selected = e.target;
    // As in a spreadsheet: entering a cell selects its content, so typing replaces it.
    selected.select();
    if (historyButton && table.dataset.historyUrl) historyButton.disabled = false;
  });
  // A value is queued when it is committed: Enter, Tab or an arrow key, or leaving the cell.
  // (Enter on the last row moves nowhere, so waiting for the change event would lose it.)
  function commit(input) {
    if (input.readOnly || input.value === (input.dataset.last ?? input.dataset.saved)) return;
    input.dataset.last = input.value;
    queue.add(cellOf(input).cell, input.value, input.dataset.saved);
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
    else if (e.key === "Escape") { input.value = input.dataset.last ?? input.dataset.saved ?? ""; }
  });

  const historyButton = document.getElementById("show-history");
  if (historyButton && table.dataset.historyUrl) historyButton.addEventListener("click", async () => {
    if (!selected) return;
    const { row } = cellOf(selected);
    const params = new URLSearchParams({ enrolment: row.dataset.enrolment, field: selected.dataset.field, term: table.dataset.term, period: table.dataset.period });
    const response = await fetch(`${table.dataset.historyUrl}?${params}`, { credentials: "same-origin" });
    document.getElementById("history").innerHTML = await response.text();
  });
  table.dataset.ready = "1";
}
