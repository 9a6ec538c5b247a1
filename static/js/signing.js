// The signing batch's progress bar: asks the portal for the counts every second until the
// batch is finished. The numbers and the failures come from the database (signing.views).
(function () {
  "use strict";
  const box = document.getElementById("batch-progress");
  if (!box) return;
  const $ = (id) => document.getElementById(id);

  function show(p) {
    $("batch-state").textContent = p.state_label;
    $("batch-bar").max = p.total;
    $("batch-bar").value = p.done + p.failed;
    $("batch-done").textContent = p.done;
    $("batch-failed").textContent = p.failed;
    $("batch-remaining").textContent = p.remaining;
    $("batch-total").textContent = p.total;
    const table = $("batch-failures");
    const body = table.querySelector("tbody");
    body.replaceChildren();
    for (const f of p.failures) {
      const row = document.createElement("tr");
      for (const [text, code] of [[f.student, false], [f.record_id, true], [f.reason, false]]) {
        const cell = document.createElement("td");
        if (code) {
          const c = document.createElement("code");
          c.textContent = text;
          cell.append(c);
        } else {
          cell.textContent = text;
        }
        row.append(cell);
      }
      body.append(row);
    }
    table.hidden = p.failures.length === 0;
    $("batch-retry").hidden = p.failed === 0 || !p.finished;
    const stop = $("batch-stop");
    if (stop) stop.hidden = p.finished;
  }

  async function poll() {
    try {
      const response = await fetch(box.dataset.url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const p = await response.json();
        show(p);
        if (p.finished) return;
      }
    } catch (error) {
      // A lost request is retried at the next tick.
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
