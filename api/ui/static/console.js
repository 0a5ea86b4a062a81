// Stagekeeper console: live refresh over server-sent events, dialogs, sliders, screenshots.
// Plain JS on top of htmx; every page also works without it (forms post, links navigate).
(function () {
  "use strict";
  var source = null;

  var busy = false;      // a redraw is on its way
  var latest = 0;        // the newest position announced
  var drawn = 0;         // the position the last redraw asked for

  function refreshLive() {
    var parts = document.querySelectorAll("[data-live]");
    if (busy || latest <= drawn || !parts.length) return;
    busy = true;
    drawn = latest;
    var requests = [];
    var skipped = false;
    parts.forEach(function (el) {
      // Never redraw under an open confirmation dialog or a form field being filled in;
      // the next change redraws it.
      if (el.querySelector("dialog[open]") || el.contains(document.activeElement) && document.activeElement.form) {
        skipped = true;
        return;
      }
      var url = el.getAttribute("data-live");
      var sep = url.indexOf("?") < 0 ? "?" : "&";
      requests.push(htmx.ajax("GET", url + sep + "min_position=" + drawn, { target: el, swap: "outerHTML" }));
    });
    // The first change is drawn at once; changes arriving meanwhile are drawn together next.
    Promise.all(requests).then(done, done);
    function done() {
      busy = false;
      if (skipped) { drawn = 0; return; }  // redrawn at the next change, not in a loop
      refreshLive();
    }
  }

  function connect() {
    if (source || !document.querySelector("[data-live]") || !window.EventSource) return;
    source = new EventSource("/ui/events?after=" + (document.body.getAttribute("data-position") || "0"));
    source.addEventListener("changed", function (e) {
      latest = Math.max(latest, parseInt(e.data, 10));
      refreshLive();
    });
  }

  function epochLabel(input) {
    var out = document.getElementById(input.id.replace("f-", "") + "-label") || input.form && input.form.querySelector("output[for='" + input.id + "']");
    var atEnd = parseInt(input.value, 10) >= parseInt(input.getAttribute("data-now"), 10);
    var hidden = input.form && input.form.querySelector("input[type=hidden][name='" + input.getAttribute("data-target") + "']");
    if (hidden) hidden.value = atEnd ? "" : input.value;
    if (out) out.textContent = atEnd ? "now" : new Date(parseInt(input.value, 10) * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function wire(root) {
    root.querySelectorAll("input[type=range][data-target]").forEach(function (input) {
      if (input.dataset.wired) return;
      input.dataset.wired = "1";
      epochLabel(input);
      input.addEventListener("input", function () { epochLabel(input); });
    });
    root.querySelectorAll("input[type=range][data-echo]").forEach(function (input) {
      if (input.dataset.wired) return;
      input.dataset.wired = "1";
      var out = input.form && input.form.querySelector("output[for='" + input.id + "']");
      input.addEventListener("input", function () { if (out) out.value = input.value; });
    });
    root.querySelectorAll("[data-dialog]").forEach(function (button) {
      if (button.dataset.wired) return;
      button.dataset.wired = "1";
      button.addEventListener("click", function () {
        var dialog = document.getElementById(button.getAttribute("data-dialog"));
        if (dialog && dialog.showModal) { dialog.showModal(); }
      });
    });
    root.querySelectorAll("dialog [data-close]").forEach(function (button) {
      if (button.dataset.wired) return;
      button.dataset.wired = "1";
      button.addEventListener("click", function () { button.closest("dialog").close(); });
    });
    connect();
  }

  // Screenshots refresh every few seconds while the page is visible.
  setInterval(function () {
    if (document.visibilityState !== "visible") return;
    document.querySelectorAll("img[data-refresh]").forEach(function (img) {
      img.src = img.getAttribute("data-refresh") + "?t=" + Date.now();
    });
  }, 5000);

  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:load", function (e) { wire(e.target); });
})();
