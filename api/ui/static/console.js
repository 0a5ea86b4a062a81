// Stagekeeper console: live refresh over server-sent events, dialogs, sliders, screenshots.
// Plain JS on top of htmx; every page also works without it (forms post, links navigate).
(function () {
  "use strict";
  var source = null;
  var pending = null;

  function refreshLive(position) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      // Never redraw under an open confirmation dialog or a focused form field.
      if (el.querySelector("dialog[open]") || el.contains(document.activeElement) && document.activeElement.form) return;
      var url = el.getAttribute("data-live");
      var sep = url.indexOf("?") < 0 ? "?" : "&";
      htmx.ajax("GET", url + sep + "min_position=" + position, { target: el, swap: "outerHTML" });
    });
  }

  function connect() {
    if (source || !document.querySelector("[data-live]") || !window.EventSource) return;
    source = new EventSource("/ui/events?after=" + (document.body.getAttribute("data-position") || "0"));
    source.addEventListener("changed", function (e) {
      var position = parseInt(e.data, 10);
      // Many events arrive together during a deployment: redraw at most every 150 ms.
      if (pending) { pending.position = Math.max(pending.position, position); return; }
      pending = { position: position };
      setTimeout(function () { var p = pending.position; pending = null; refreshLive(p); }, 150);
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
