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

  // Text size and contrast (GOV.CO style). Without JavaScript the form posts and comes back;
  // here it posts in the background and applies the change at once (typed text is kept).
  var root = document.documentElement;
  var saving = window.Promise ? Promise.resolve() : null;
  document.querySelectorAll("form[data-prefs]").forEach(function (form) {
    var level = parseInt(form.getAttribute("data-level") || "0", 10);
    var contrast = root.classList.contains("contrast");
    form.addEventListener("submit", function (event) {
      var button = event.submitter;
      if (!button || !window.fetch || !window.FormData || !saving) { return; }
      event.preventDefault();
      var action = button.value;
      if (action === "mas") { level = Math.min(3, level + 1); }
      else if (action === "menos") { level = Math.max(-1, level - 1); }
      else if (action === "normal") { level = 0; }
      else if (action === "contraste") { contrast = !contrast; }
      ["text-minus-1", "text-1", "text-2", "text-3"].forEach(function (name) { root.classList.remove(name); });
      if (level) { root.classList.add(level < 0 ? "text-minus-1" : "text-" + level); }
      root.classList.toggle("contrast", contrast);
      form.setAttribute("data-level", String(level));
      form.querySelectorAll("[aria-pressed]").forEach(function (toggle) {
        toggle.setAttribute("aria-pressed", contrast ? "true" : "false");
      });
      var data = new FormData(form);
      data.append("accion", action);
      data.append("js", "1");
      data.append("nivel", String(level));  // the state wanted, not a step: clicks never drift
      data.append("alto", contrast ? "1" : "0");
      saving = saving.then(function () {  // one post at a time, in click order
        return fetch(form.action, { method: "POST", body: new URLSearchParams(data), credentials: "same-origin" })
          .catch(function () { return null; });
      });
    });
  });

  // Session idle warning (WCAG 2.2.1): shown before the server ends the session, with the time
  // the server says is left; "Continuar" asks the server to keep it and learns the new expiry.
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
  if (!idle) { return; }
  var warning = parseInt(body.getAttribute("data-warning-seconds") || "120", 10);
  var box = document.getElementById("session-warning");
  var counter = document.getElementById("session-warning-seconds");
  var live = document.getElementById("session-warning-live");
  var keep = document.getElementById("session-keepalive");
  var deadline, timer, returnFocus = null;

  function hide() {
    if (!box || box.hidden) { return; }
    box.hidden = true;
    if (live) { live.textContent = ""; }
    var target = returnFocus && document.contains(returnFocus) ? returnFocus : null;
    returnFocus = null;
    if (target) { target.focus(); }
  }
  function restart(seconds) {
    deadline = Date.now() + seconds * 1000;
    hide();
  }
  function show() {
    returnFocus = document.activeElement !== body ? document.activeElement : null;
    box.hidden = false;
    keep.focus();
  }
  function tick() {
    var left = Math.round((deadline - Date.now()) / 1000);
    if (left <= 0) {  // end it on the server too (the logout form), then say why
      clearInterval(timer);
      var reason = document.getElementById("session-expired-reason");
      if (reason && reason.form) { reason.value = "inactividad"; reason.form.submit(); }
      else { window.location.href = body.getAttribute("data-expired-url"); }
      return;
    }
    if (left <= warning && box) {
      if (box.hidden) { show(); }
      counter.textContent = String(left);
      if (live && (left === 60 || left === 30 || left === 10)) {
        live.textContent = "Quedan " + left + " segundos de sesión.";
      }
    }
  }
  function keepAlive() {
    fetch(body.getAttribute("data-keepalive-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("expired"); }
        var serverNow = Date.parse(response.headers.get("Date") || "") || Date.now();
        return response.json().then(function (me) {
          var expires = Date.parse(me.session_expires_at || "");
          restart(expires ? Math.max(1, (expires - serverNow) / 1000) : idle);
        });
      })
      .catch(function () { tick(); });
  }
  if (keep) { keep.addEventListener("click", keepAlive); }
  if (box) {
    box.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); keepAlive(); }
    });
  }
  restart(idle);
  timer = setInterval(tick, 1000);
})();

// "Mostrar contraseña": a button after each password field that switches it to text and back.
// The field is the same element, so its copy/paste rules and autocomplete stay as they were.
document.querySelectorAll("input[data-show-password]").forEach(function (field) {
  var button = document.createElement("button");
  button.type = "button";
  button.className = "secondary show-password";
  button.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-controls", field.id);
  button.textContent = field.getAttribute("data-show-password") || "Mostrar contraseña";
  button.addEventListener("click", function () {
    var shown = field.type === "password";
    field.type = shown ? "text" : "password";
    button.setAttribute("aria-pressed", shown ? "true" : "false");
  });
  field.insertAdjacentElement("afterend", button);
  var min = parseInt(field.getAttribute("data-min-length") || "0", 10);
  var count = min && field.form ? field.form.querySelector("[data-length-count]") : null;
  if (count) {  // the length rule as the member types (the server checks every rule at submit)
    field.addEventListener("input", function () {
      var length = Array.from(field.value).length;
      count.textContent = length >= min ? "Longitud suficiente (" + length + " caracteres)."
        : "Lleva " + length + " de " + min + " caracteres.";
    });
  }
});

// GOV.CO's error summary takes the focus, so a screen reader and a keyboard start from it.
var errorSummary = document.querySelector("[data-error-summary]");
if (errorSummary) {
  errorSummary.focus();
  errorSummary.querySelectorAll("a[href^='#']").forEach(function (link) {  // to the field itself
    link.addEventListener("click", function (event) {
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (!target) { return; }
      event.preventDefault();
      target.scrollIntoView({ block: "center" });
      target.focus();
    });
  });
}

// Choosing what to pay: typing another amount chooses it, choosing another option clears it,
// and the total of what is chosen follows every change (the server checks it all again).
document.querySelectorAll("form[data-selection]").forEach(function (form) {
  var total = form.querySelector("[data-total]");
  var pesos = /^\$?[ \u00a0]*([0-9]{1,3}(?:\.[0-9]{3})+|[0-9]{1,12})(?:,0{1,2})?$/;
  var format = window.Intl ? new Intl.NumberFormat("es-CO", { maximumFractionDigits: 0 }) : null;
  function amountOf(radio) {
    if (radio.value !== "other") { return parseInt(radio.getAttribute("data-amount") || "0", 10); }
    var typed = form.querySelector("[data-other-for='" + radio.id + "']");
    var match = typed && pesos.exec(typed.value.trim());
    return match ? parseInt(match[1].replace(/\./g, ""), 10) : 0;
  }
  function update() {
    var sum = 0;
    form.querySelectorAll("input[type=radio]:checked").forEach(function (radio) { sum += amountOf(radio); });
    if (total) { total.textContent = "$ " + (format ? format.format(sum) : String(sum)); }
  }
  form.querySelectorAll("[data-other-for]").forEach(function (field) {
    var radio = document.getElementById(field.getAttribute("data-other-for"));
    field.addEventListener("input", function () {
      if (field.value.trim() && radio) { radio.checked = true; }
      update();
    });
    form.querySelectorAll("input[type=radio][name='" + (radio ? radio.name : "") + "']").forEach(function (option) {
      option.addEventListener("change", function () {
        if (option !== radio && option.checked) { field.value = ""; }
        update();
      });
    });
  });
  form.addEventListener("change", update);
  update();
});

// Receipt: "Imprimir comprobante" (the browser's print dialog; the page has a print stylesheet).
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.addEventListener("click", function () { window.print(); });
});
