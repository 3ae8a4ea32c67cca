/* Live updates shared by the dashboard and the task page.
 *
 * The websocket (ws/tasks/<id>/) only tells us that something changed; the HTML always
 * comes from the server's own templates, fetched from same-origin fragment endpoints and
 * parsed with DOMParser (never innerHTML with model text). When the socket drops we
 * reconnect with exponential backoff and, on every attempt, fetch what we missed, so the
 * page also keeps up (more slowly) when websockets are unavailable altogether.
 */
(function () {
  "use strict";

  var MIN_DELAY = 1000;
  var MAX_DELAY = 15000;

  function socketUrl(taskId, after) {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + "/ws/tasks/" + encodeURIComponent(taskId) +
      "/?after=" + encodeURIComponent(String(after));
  }

  /* One element from a server-rendered fragment (escaped by Django's templates). */
  function parseFragment(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var element = doc.body.firstElementChild;
    return element ? document.importNode(element, true) : null;
  }

  /* A websocket for one task that reconnects with backoff.
   * options: afterIndex() -> number, onChange(), onState(state) with state in
   * "live" | "reconnecting". Returns {close()}. */
  function watchTask(taskId, options) {
    var socket = null;
    var closed = false;
    var delay = MIN_DELAY;
    var timer = null;
    var poller = null;
    var POLL_MS = 2000;

    function state(name) { if (options.onState) { options.onState(name); } }

    /* While the socket is down, poll the fragment endpoint so the page keeps moving. */
    function startPolling() {
      if (!poller) { poller = setInterval(options.onChange, POLL_MS); }
    }
    function stopPolling() {
      clearInterval(poller);
      poller = null;
    }

    function connect() {
      if (closed) { return; }
      try {
        socket = new WebSocket(socketUrl(taskId, options.afterIndex()));
      } catch (error) {
        retry();
        return;
      }
      socket.onopen = function () {
        delay = MIN_DELAY;
        stopPolling();
        state("live");
        options.onChange(); // fill any gap since the last fetch
      };
      socket.onmessage = function () { options.onChange(); };
      socket.onclose = function () {
        socket = null;
        if (!closed) { retry(); }
      };
      socket.onerror = function () { /* onclose follows */ };
    }

    function retry() {
      state("reconnecting");
      options.onChange();
      startPolling();
      clearTimeout(timer);
      timer = setTimeout(connect, delay + Math.floor(Math.random() * 250));
      delay = Math.min(delay * 2, MAX_DELAY);
    }

    connect();
    return {
      close: function () {
        closed = true;
        clearTimeout(timer);
        stopPolling();
        if (socket) { socket.close(); socket = null; }
      }
    };
  }

  /* Run fetcher() at most once at a time; a call during a run schedules one more run. */
  function serialised(fetcher) {
    var running = false;
    var again = false;
    function run() {
      if (running) { again = true; return; }
      running = true;
      again = false;
      Promise.resolve().then(fetcher).catch(function () { /* next event retries */ }).then(function (more) {
        running = false;
        if (again || more === true) { run(); }
      });
    }
    return run;
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      });
  }

  function getText(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    });
  }

  window.AgentOSLive = {
    watchTask: watchTask,
    parseFragment: parseFragment,
    serialised: serialised,
    getJSON: getJSON,
    getText: getText
  };
})();
