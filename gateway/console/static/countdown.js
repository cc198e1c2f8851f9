// Live countdowns: every <time class="countdown" data-expires-ms="..."> shows the time left.
(function () {
  "use strict";
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-expires-ms]").forEach(function (el) {
      var left = Math.floor((Number(el.dataset.expiresMs) - now) / 1000);
      if (left <= 0) { el.textContent = el.dataset.doneText || "0:00:00"; return; }
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = h + ":" + pad(m) + ":" + pad(s);
    });
  }
  tick();
  setInterval(tick, 1000);
})();
