// Live progress of an eval run: polls the run's API every 1.5 s (session auth), updates the
// counter and the progress bar, and reloads the page once the run has finished so the
// per-item table is complete. Without JavaScript the page has a Refresh link.
(function () {
  "use strict";
  var head = document.querySelector("[data-eval-run]");
  if (!head) { return; }
  var url = head.getAttribute("data-eval-run");
  var counter = document.getElementById("run-progress");
  var bar = document.querySelector("progress");
  var status = document.getElementById("run-status");
  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (run) {
        if (!run) { return; }
        counter.textContent = run.done + "/" + run.total;
        bar.value = Math.round(run.progress * 100);
        status.textContent = run.status;
        if (run.status === "completed" || run.status === "failed") { window.location.reload(); return; }
        window.setTimeout(poll, 1500);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1500);
}());
