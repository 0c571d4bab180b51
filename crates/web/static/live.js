// Live signature count for a campaign page: listens to the campaign's event stream and
// updates the numbers the server already rendered (the page works without this script).
(function () {
  "use strict";
  var count = document.getElementById("count");
  if (!count || !window.EventSource) {
    return;
  }
  var url = count.getAttribute("data-events");
  var unverified = document.getElementById("unverified");
  var progress = document.getElementById("progress");
  var goalText = document.getElementById("goal-text");
  // Retry after the server turned us away (503) or the stream closed for good.
  var RETRY_MS = 30000;

  function show(element, value) {
    if (element && typeof value === "number" && element.textContent !== String(value)) {
      element.textContent = String(value);
    }
  }

  // At most one update every this long: a busy campaign must not make a screen reader
  // announce every single signature. The newest count is always the one shown.
  var MIN_UPDATE_MS = 2000;
  var latest = null;
  var lastUpdate = 0;
  var timer = null;

  function apply() {
    timer = null;
    lastUpdate = Date.now();
    var data = latest;
    show(count, data.signatures);
    show(unverified, data.unverified);
    if (progress && typeof data.signatures === "number") {
      progress.value = Math.min(data.signatures, progress.max);
      progress.textContent = String(data.signatures);
      if (goalText) {
        var goal = Number(progress.max);
        goalText.textContent = goalText.getAttribute("data-template")
          .replace("{n}", String(data.signatures))
          .replace("{goal}", String(goal))
          .replace("{percent}", String(Math.floor(data.signatures * 100 / goal)));
      }
    }
  }

  function connect() {
    var source = new EventSource(url);
    source.addEventListener("count", function (event) {
      try {
        latest = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (timer === null) {
        timer = window.setTimeout(apply, Math.max(0, lastUpdate + MIN_UPDATE_MS - Date.now()));
      }
    });
    source.onerror = function () {
      // While CONNECTING the browser retries by itself; CLOSED means it gave up.
      if (source.readyState === EventSource.CLOSED) {
        window.setTimeout(connect, RETRY_MS);
      }
    };
  }

  connect();
})();
