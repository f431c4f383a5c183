// secretctl web UI: progressive enhancement only. Every page works without
// this script except revealing a value and filling a generated password.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]');
  const token = csrf ? csrf.content : "";

  // "/" focuses the search box.
  document.addEventListener("keydown", function (e) {
    const t = e.target;
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    const q = document.querySelector("[data-search]");
    if (q) { e.preventDefault(); q.focus(); q.select(); }
  });

  // Forms that ask before doing something destructive.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  });

  function post(url, form) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": token },
      body: new URLSearchParams(new FormData(form)),
      cache: "no-store",
    }).then(function (r) {
      if (!r.ok) return r.text().then(function (t) { throw new Error(t || r.statusText); });
      return r.json();
    });
  }

  // Reveal one value on click; hidden again after 30 seconds.
  document.querySelectorAll("form.reveal").forEach(function (f) {
    const out = document.getElementById(f.dataset.target);
    const button = f.querySelector("button");
    let timer = null;
    function hide() {
      out.textContent = "••••••••";
      out.className = "value masked";
      button.textContent = "Reveal";
      button.disabled = false;
      clearInterval(timer);
      timer = null;
    }
    f.addEventListener("submit", function (e) {
      e.preventDefault();
      if (timer) { hide(); return; }
      button.disabled = true;
      post(f.action, f).then(function (j) {
        out.textContent = j.value;
        out.className = "value shown";
        button.disabled = false;
        let left = 30;
        button.textContent = "Hide (" + left + ")";
        timer = setInterval(function () {
          left -= 1;
          if (left <= 0) hide(); else button.textContent = "Hide (" + left + ")";
        }, 1000);
      }).catch(function (err) {
        out.textContent = String(err.message).trim();
        out.className = "value bad";
        button.disabled = false;
      });
    });
  });

  // Fill a field with a generated password (drawn by the daemon).
  document.querySelectorAll("button[data-generate]").forEach(function (b) {
    b.addEventListener("click", function (e) {
      e.preventDefault();
      const input = document.getElementById(b.dataset.generate);
      const form = document.getElementById("generate-form");
      post(form.action, form).then(function (j) {
        input.value = j.value;
        input.type = "password";
      }).catch(function (err) { window.alert(err.message); });
    });
  });

  // Show/hide what was typed into a password field.
  document.querySelectorAll("button[data-toggle]").forEach(function (b) {
    b.addEventListener("click", function (e) {
      e.preventDefault();
      const input = document.getElementById(b.dataset.toggle);
      input.type = input.type === "password" ? "text" : "password";
    });
  });
})();
