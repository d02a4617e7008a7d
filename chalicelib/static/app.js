// The only scripts of the site: what SPEC §2.2 and §2.4 ask for; every page works without them.
(function () {
  "use strict";

  // Copy, cut, paste and drop are refused in the login fields (seed: "no permite copiar ni pegar").
  var blocked = ["copy", "cut", "paste", "drop"];
  document.querySelectorAll("[data-no-clipboard]").forEach(function (field) {
    blocked.forEach(function (type) {
      field.addEventListener(type, function (event) { event.preventDefault(); });
    });
  });

  // Session idle warning: shown before the server ends the session; "Continuar" keeps it alive.
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
  if (!idle) { return; }
  var warning = parseInt(body.getAttribute("data-warning-seconds") || "120", 10);
  var box = document.getElementById("session-warning");
  var counter = document.getElementById("session-warning-seconds");
  var deadline, timer;

  function restart() {
    deadline = Date.now() + idle * 1000;
    if (box) { box.hidden = true; }
  }
  function tick() {
    var left = Math.round((deadline - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(timer);
      window.location.href = body.getAttribute("data-expired-url");
      return;
    }
    if (left <= warning && box) {
      if (box.hidden) { box.hidden = false; document.getElementById("session-keepalive").focus(); }
      counter.textContent = String(left);
    }
  }
  var keep = document.getElementById("session-keepalive");
  if (keep) {
    keep.addEventListener("click", function () {
      fetch(body.getAttribute("data-keepalive-url"), { credentials: "same-origin" })
        .then(function (response) { if (response.ok) { restart(); } else { tick(); } });
    });
  }
  restart();
  timer = setInterval(tick, 1000);
})();

// Receipt: "Imprimir comprobante" (the browser's print dialog; the page has a print stylesheet).
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.addEventListener("click", function () { window.print(); });
});
