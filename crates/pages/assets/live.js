// assay pages: live updates. The region marked data-live is replaced by what the server sends
// (its own rendering of that region) whenever it changes; without this script the page is the
// same, only not updated. No other script runs on the pages.
(function () {
  "use strict";
  var region = document.getElementById("live");
  if (!region || !window.EventSource) return;
  var src = region.getAttribute("data-live");
  if (!src) return;
  var note = document.getElementById("live-status");
  var say = function (text) { if (note) note.textContent = text; };
  var es = new EventSource(src);
  es.addEventListener("update", function (e) {
    region.innerHTML = e.data;
    region.setAttribute("data-updated", String(Date.now()));
    say("Updated at " + new Date().toLocaleTimeString() + ".");
  });
  es.addEventListener("end", function (e) {
    es.close();
    if (e.data === "final") say("Final result shown.");
  });
  es.onerror = function () {
    if (es.readyState === EventSource.CLOSED) say("Live updates stopped; reload for the latest.");
  };
})();
