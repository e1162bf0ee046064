// Picket's pages work without this file; it adds the theme toggle, local
// times and live updates (Server-Sent Events from /api/v1/events).
"use strict";
(function () {
  var root = document.documentElement;
  var saved = localStorage.getItem("picket-theme");
  if (saved) root.setAttribute("data-theme", saved);

  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("theme-toggle");
    if (toggle) {
      toggle.hidden = false;
      toggle.addEventListener("click", function () {
        var dark = root.getAttribute("data-theme") === "dark" ||
          (!root.getAttribute("data-theme") && matchMedia("(prefers-color-scheme: dark)").matches);
        var next = dark ? "light" : "dark";
        root.setAttribute("data-theme", next);
        localStorage.setItem("picket-theme", next);
      });
    }
    localTimes(document);
    live();
  });

  function localTimes(scope) {
    scope.querySelectorAll("time[datetime]:not([data-keep])").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) { t.title = t.textContent; t.textContent = d.toLocaleString(); }
    });
  }

  var WORDS = { 0: ["down", "✕ Down"], 1: ["up", "✓ Up"], 2: ["pending", "… Pending"], 3: ["maintenance", "◆ Maintenance"] };

  function live() {
    var rows = document.querySelectorAll("[data-monitor]");
    if (!rows.length || !window.EventSource) return;
    var byId = {};
    rows.forEach(function (r) { (byId[r.dataset.monitor] = byId[r.dataset.monitor] || []).push(r); });
    var ids = Object.keys(byId);
    var src = new EventSource("/api/v1/events?monitors=" + ids.join(","));
    var beatsShown = parseInt(document.body.dataset.beats || "30", 10);
    src.addEventListener("beat", function (e) {
      var b = JSON.parse(e.data);
      (byId[String(b.monitorID)] || []).forEach(function (row) { apply(row, b); });
    });
    src.addEventListener("reset", function () { location.reload(); });
    // A page left open in the back/forward cache would hold its stream (and
    // one of the browser's few connections to this host); close it, and
    // show fresh figures when the page comes back.
    window.addEventListener("pagehide", function () { src.close(); });
    window.addEventListener("pageshow", function (e) { if (e.persisted) location.reload(); });

    function apply(row, b) {
      var w = WORDS[b.status];
      if (!w || row.dataset.state === "paused") return;
      var badge = row.querySelector(".st");
      if (badge && row.dataset.state !== w[0]) {
        var from = document.querySelector('[data-count="' + row.dataset.state + '"] b');
        var to = document.querySelector('[data-count="' + w[0] + '"] b');
        if (from) from.textContent = Math.max(0, parseInt(from.textContent, 10) - 1);
        if (to) to.textContent = parseInt(to.textContent, 10) + 1;
        row.dataset.state = w[0];
        badge.className = "st st-" + w[0];
        badge.textContent = w[1];
        var since = row.querySelector("[data-since]");
        if (since) { since.setAttribute("datetime", new Date(b.time).toISOString()); since.textContent = new Date(b.time).toLocaleString(); }
      }
      var bar = row.querySelector(".beats");
      if (bar) {
        var i = document.createElement("i");
        i.className = "b-" + w[0];
        i.title = new Date(b.time).toLocaleString() + " " + w[1] + (b.ping != null ? " " + Math.round(b.ping) + " ms" : "") + (b.msg ? " — " + b.msg : "");
        bar.appendChild(i);
        while (bar.children.length > beatsShown) bar.removeChild(bar.firstChild);
      }
      var ping = row.querySelector("[data-ping]");
      if (ping) ping.textContent = b.ping != null ? Math.round(b.ping) + " ms" : "–";
      var msg = row.querySelector("[data-msg]");
      if (msg) msg.textContent = b.msg || "";
    }
  }
})();
