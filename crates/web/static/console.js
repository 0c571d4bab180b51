// The review queue's keyboard: j/k or arrows to move, space to play, v valid, i invalid.
// Without this script the buttons in each row do the same with a page reload.
(function () {
  "use strict";
  var table = document.querySelector("table.queue");
  if (!table) { return; }
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
  var current = 0;
  var status = document.createElement("p");
  status.setAttribute("role", "status");
  status.className = "keys-status";
  table.parentNode.insertBefore(status, table);

  function select(i) {
    if (rows.length === 0) { return; }
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, n) { r.classList.toggle("current", n === current); });
    rows[current].focus();
  }

  function judge(row, state) {
    var form = row.querySelector("form.judge");
    if (!form) { return; }
    var body = new URLSearchParams(new FormData(form));
    body.set("state", state);
    fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (res) {
      if (!res.ok) { throw new Error("HTTP " + res.status); }
      return res.json();
    }).then(function (data) {
      row.querySelector("td.state").textContent = data.state;
      status.textContent = "Signature " + data.id + " marked " + data.state + ".";
      select(rows.indexOf(row) + 1);
    }).catch(function (e) {
      status.textContent = "Not saved (" + e.message + "): reload the page and try again.";
    });
  }

  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) { return; }
    var tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") { return; }
    var row = rows[current];
    switch (e.key) {
      case "j": case "ArrowDown": select(current + 1); break;
      case "k": case "ArrowUp": select(current - 1); break;
      case " ":
        var audio = row && row.querySelector("audio");
        if (audio) { if (audio.paused) { audio.play(); } else { audio.pause(); } }
        break;
      case "v": if (row) { judge(row, "valid"); } break;
      case "i": if (row) { judge(row, "invalid"); } break;
      default: return;
    }
    e.preventDefault();
  });
  select(0);
}());
