// Media page: send the chosen ISO as the request body (streamed by the server to the datastore),
// with the form's security token as a header; show progress, then reload the list.
(function () {
  "use strict";
  var form = document.getElementById("media-upload");
  if (!form) return;
  var status = document.getElementById("media-status");
  var progress = document.getElementById("media-progress");
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var file = form.elements.file.files[0];
    if (!file) return;
    if (file.size > Number(form.dataset.max)) {
      status.textContent = "This file is larger than the server accepts (" + form.dataset.max + " bytes).";
      return;
    }
    var query = "?name=" + encodeURIComponent(form.elements.name.value);
    if (form.elements.reason.value) query += "&reason=" + encodeURIComponent(form.elements.reason.value);
    var request = new XMLHttpRequest();
    request.open("POST", form.dataset.upload + query);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    progress.hidden = false;
    request.upload.addEventListener("progress", function (p) {
      if (p.lengthComputable) progress.value = Math.round((100 * p.loaded) / p.total);
    });
    request.addEventListener("load", function () {
      var answer = {};
      try { answer = JSON.parse(request.responseText); } catch (ignored) { answer = {}; }
      if (request.status === 201) {
        window.location.assign("/ui/media?at=" + answer.position);
        return;
      }
      progress.hidden = true;
      status.textContent = (answer.error && answer.error.message) || "Upload refused (HTTP " + request.status + ").";
    });
    request.addEventListener("error", function () {
      progress.hidden = true;
      status.textContent = "The upload was interrupted.";
    });
    status.textContent = "Uploading " + file.name + "…";
    request.send(file);
  });
})();
