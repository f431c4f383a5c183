// Trades the one-time token in the URL fragment for a session cookie. The
// fragment never reaches a server; it is removed from the address bar (and
// history) before anything else happens.
"use strict";
(function () {
  const token = window.location.hash.replace(/^#/, "");
  window.history.replaceState(null, "", "/login");
  const msg = document.getElementById("login-status");
  if (!/^[0-9a-f]{64}$/.test(token)) {
    msg.textContent = "This link has no login token. Run 'secretctl ui' for a new one.";
    return;
  }
  fetch("/login", {
    method: "POST",
    credentials: "same-origin",
    body: new URLSearchParams({ token: token }),
    cache: "no-store",
  }).then(function (r) {
    if (r.ok) { window.location.replace("/"); return; }
    msg.textContent = "This login link was already used or has expired. Run 'secretctl ui' for a new one" +
      " (if you did not use it yourself, check 'secretctl audit list --action ui').";
  }).catch(function () {
    msg.textContent = "The daemon did not answer. Is it running?";
  });
})();
