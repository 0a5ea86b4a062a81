// Stagekeeper console: live refresh over server-sent events, dialogs, sliders, screenshots.
// Plain JS on top of htmx; every page also works without it (forms post, links navigate).
(function () {
  "use strict";
  var source = null;

  var busy = false;      // a redraw is on its way
  var latest = 0;        // the newest position announced
  var drawn = 0;         // the position the last redraw asked for

  var deferred = false;  // a redraw that arrived while its part was in use was not applied

  // Never redraw under an open confirmation dialog or a form field being filled in; the part is
  // redrawn when the dialog closes or at the next change.
  function inUse(el) {
    return el.querySelector("dialog[open]") || el.contains(document.activeElement) && document.activeElement.form;
  }

  // A redraw sent before a dialog opened must not land under it (it would close the dialog).
  document.addEventListener("htmx:beforeSwap", function (e) {
    var target = e.detail.target;
    if (target && target.hasAttribute && target.hasAttribute("data-live") && inUse(target)) {
      e.detail.shouldSwap = false;
      deferred = true;
    }
  });

  function refreshLive() {
    var parts = document.querySelectorAll("[data-live]");
    if (busy || latest <= drawn || !parts.length) return;
    busy = true;
    drawn = latest;
    deferred = false;
    var requests = [];
    var skipped = false;
    parts.forEach(function (el) {
      if (inUse(el)) {
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
      if (skipped || deferred) { drawn = 0; return; }  // redrawn later, not in a loop
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
    // A stage that fences every deployment checks (and locks) the fence box; one without fenced
    // networks clears it. The server decides either way; this only shows what will happen.
    root.querySelectorAll("select[data-fence-select]").forEach(function (select) {
      if (select.dataset.wired) return;
      select.dataset.wired = "1";
      var box = document.getElementById(select.getAttribute("data-fence-select"));
      function follow() {
        var option = select.options[select.selectedIndex];
        var mode = option ? option.getAttribute("data-fence") : "optional";
        if (!box) return;
        if (mode === "always") { box.checked = true; box.disabled = true; }
        else if (mode === "none") { box.checked = false; box.disabled = true; }
        else { box.disabled = false; }
      }
      select.addEventListener("change", follow);
      follow();
    });
    root.querySelectorAll("[data-dialog]").forEach(function (button) {
      if (button.dataset.wired) return;
      button.dataset.wired = "1";
      button.addEventListener("click", function () {
        var dialog = document.getElementById(button.getAttribute("data-dialog"));
        if (dialog && dialog.showModal) {
          dialog.showModal();
          // What changed while it was open is drawn once it closes (Cancel, Escape).
          dialog.addEventListener("close", function () { setTimeout(refreshLive, 0); }, { once: true });
        }
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
      var url = img.getAttribute("data-refresh");
      img.src = url + (url.indexOf("?") < 0 ? "?" : "&") + "t=" + Date.now();
    });
  }, 5000);

  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:load", function (e) { wire(e.target); });
})();
