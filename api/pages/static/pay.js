// The payer's page, live: polls the order's status, keeps the numbers and the countdown up to
// date, and reloads (or leaves for the merchant's page) when there is something new to read.
// Every sentence is already in the page, in the payer's language: this script holds none.
(function () {
  "use strict";
  var page = document.getElementById("payment");
  if (!page) return;
  var rendered = {
    progress: page.dataset.progress,
    others: page.dataset.otherPayments,
    paidLate: page.dataset.paidLate
  };
  var clockOffset = Date.parse(page.dataset.serverTime) - Date.now();
  var windowEnds = Date.parse(page.dataset.windowEndsAt);

  function setFields(status) {
    var fields = page.querySelectorAll("[data-field]");
    for (var i = 0; i < fields.length; i++) {
      var name = fields[i].dataset.field;
      if (status[name] !== undefined && status[name] !== null) {
        fields[i].textContent = String(status[name]);
      }
    }
  }

  function somethingNew(status) {
    return status.paymentProgress !== rendered.progress ||
      String(status.otherPayments.length) !== rendered.others ||
      String(status.paidLate) !== rendered.paidLate;
  }

  function poll() {
    fetch(page.dataset.statusUrl, { cache: "no-store", credentials: "omit" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body === null) return;
        var status = body.data;
        if (status.redirectUrl) { window.location.replace(status.redirectUrl); return; }
        if (somethingNew(status)) { window.location.reload(); return; }
        setFields(status);
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { window.setTimeout(poll, Number(page.dataset.pollMs)); });
  }

  function tick() {
    var clock = document.getElementById("time-left");
    if (!clock) return;
    var left = Math.max(0, Math.floor((windowEnds - (Date.now() + clockOffset)) / 1000));
    var seconds = left % 60;
    clock.textContent = Math.floor(left / 60) + ":" + (seconds < 10 ? "0" : "") + seconds;
    if (left === 0) document.getElementById("window-closed").hidden = false;
  }

  function enableCopy() {
    var button = document.getElementById("copy");
    if (!button || !navigator.clipboard) return;
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      var address = document.getElementById("address").textContent;
      navigator.clipboard.writeText(address).then(function () {
        button.textContent = button.dataset.copied;
        window.setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  }

  enableCopy();
  if (document.getElementById("time-left")) {
    tick();
    window.setInterval(tick, 1000);
  }
  if (["paid", "expired", "cancelled"].indexOf(rendered.progress) < 0) {
    window.setTimeout(poll, Number(page.dataset.pollMs));
  }
})();
