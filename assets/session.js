// One participant, one session code, across reloads. The server takes the session code
// from the page URL (?session=CODE, aigc_demo/ui/common.py::session_of); a facilitator's
// link carries one. Without it, Gradio's per-page-load session hash was used, so a reload
// split one participant into two sessions. This head script runs before Gradio's client
// starts: if the URL has no code, it puts this browser's own one there (kept in
// localStorage, made once), so every request of the page carries it.
(function () {
  var KEY = "aigc-session";
  var params = new URLSearchParams(window.location.search);
  if (/^[A-Za-z0-9_-]{1,40}$/.test(params.get("session") || "")) return;
  var code = null;
  try { code = localStorage.getItem(KEY); } catch (e) { code = null; }
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(code || "")) {
    var random = (window.crypto && crypto.getRandomValues)
      ? Array.prototype.map.call(crypto.getRandomValues(new Uint8Array(6)), function (b) {
          return ("0" + b.toString(16)).slice(-2);
        }).join("")
      : Math.random().toString(16).slice(2, 14);
    code = "b-" + random;
    try { localStorage.setItem(KEY, code); } catch (e) { /* private mode: this page load only */ }
  }
  params.set("session", code);
  history.replaceState(null, "", "?" + params.toString() + window.location.hash);
})();
