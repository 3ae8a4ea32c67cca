/* The dashboard: keep the rows of unfinished tasks current (status, progress, duration). */
(function () {
  "use strict";
  var live = window.AgentOSLive;
  if (!live) { return; }
  var MAX_WATCHED = 25; // sockets per page; older unfinished rows refresh on reload

  function watchRow(row) {
    var taskId = row.dataset.taskId;
    var url = row.dataset.rowUrl;
    var watcher = null;
    var refresh = live.serialised(function () {
      return live.getText(url).then(function (html) {
        var current = document.getElementById("task-" + taskId);
        var fresh = live.parseFragment(html);
        if (!current || !fresh) { return; }
        if (current.dataset.version !== fresh.dataset.version) { current.replaceWith(fresh); }
        if (fresh.dataset.finished === "1" && watcher) { watcher.close(); watcher = null; }
      });
    });
    watcher = live.watchTask(taskId, {
      afterIndex: function () {
        var current = document.getElementById("task-" + taskId);
        return current ? Number(current.dataset.lastIndex) : -1;
      },
      onChange: refresh
    });
  }

  var rows = document.querySelectorAll('.task-row[data-finished="0"]');
  for (var i = 0; i < rows.length && i < MAX_WATCHED; i++) { watchRow(rows[i]); }
})();
