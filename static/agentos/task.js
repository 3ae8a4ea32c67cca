/* The task page: append steps as they commit and keep the status panel current. */
(function () {
  "use strict";
  var live = window.AgentOSLive;
  var configNode = document.getElementById("live-config");
  if (!live || !configNode) { return; }
  var config = JSON.parse(configNode.textContent);
  var timeline = document.getElementById("timeline");
  var empty = document.getElementById("timeline-empty");
  var stateNode = document.getElementById("live-state");
  var lastIndex = config.last_index;
  var liveUrl = "/tasks/" + encodeURIComponent(config.task_id) + "/live";
  var watcher = null;

  function label(key) {
    var node = document.querySelector('#live-labels [data-key="' + key + '"]');
    return node ? node.textContent : key;
  }

  function showState(key) {
    stateNode.textContent = label(key);
    stateNode.className = "live-state " + key;
  }

  /* True while the person is typing an answer: do not replace the form under them. */
  function editingPanel(panel) {
    var active = document.activeElement;
    return active && panel.contains(active) && (active.tagName === "TEXTAREA" || active.tagName === "INPUT") &&
      active.value !== "";
  }

  function applyPanel(data) {
    var panel = document.getElementById("task-panel");
    if (!panel || panel.dataset.version === data.version) { return; }
    if (editingPanel(panel) && panel.dataset.status === data.status) { return; }
    var fresh = live.parseFragment(data.panel_html);
    if (fresh) { panel.replaceWith(fresh); }
  }

  function appendSteps(steps) {
    steps.forEach(function (entry) {
      if (entry.index <= lastIndex) { return; } // already shown: never double-count
      if (entry.group_html) {
        var group = live.parseFragment(entry.group_html);
        if (group) { timeline.appendChild(group); }
      }
      var lists = timeline.querySelectorAll(".group > .steps");
      var step = live.parseFragment(entry.html);
      if (step && lists.length) {
        lists[lists.length - 1].appendChild(step);
        lastIndex = entry.index;
      }
    });
    if (empty && lastIndex >= 0) { empty.hidden = true; }
  }

  var refresh = live.serialised(function () {
    return live.getJSON(liveUrl + "?after=" + lastIndex).then(function (data) {
      appendSteps(data.steps);
      applyPanel(data);
      if (data.finished && !data.more) {
        showState("finished");
        if (watcher) { watcher.close(); watcher = null; }
      }
      return data.more;
    });
  });

  if (config.finished) { // nothing more will happen to this task
    showState("finished");
    return;
  }
  watcher = live.watchTask(config.task_id, {
    afterIndex: function () { return lastIndex; },
    onChange: refresh,
    onState: showState
  });
})();
