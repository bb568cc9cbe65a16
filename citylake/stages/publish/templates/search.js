// Client-side search and filters of the directory index. No server, works from file://.
// Query parameters (?q=&dept=&cls=&share=&cycle=&fresh=) set the initial state and follow it.
(function () {
  "use strict";
  var FILTERS = ["dept", "cls", "share", "cycle", "fresh"];
  var q = document.getElementById("q");
  var cards = Array.prototype.slice.call(document.querySelectorAll("li.card"));
  var count = document.getElementById("count");
  var empty = document.getElementById("empty");

  function norm(s) {
    s = (s || "").normalize ? (s || "").normalize("NFKC") : (s || "");
    return s.toLowerCase().replace(/\s+/g, " ").trim();
  }
  function value(id) { var el = document.getElementById(id); return el ? el.value : ""; }

  function apply() {
    var terms = norm(q.value).split(" ").filter(Boolean);
    var f = {};
    FILTERS.forEach(function (id) { f[id] = value(id); });
    var shown = 0;
    cards.forEach(function (card) {
      var d = card.dataset, ok = true;
      for (var i = 0; ok && i < terms.length; i++) ok = d.text.indexOf(terms[i]) !== -1;
      if (ok && f.dept) ok = d.dept === f.dept;
      if (ok && f.cls) ok = d.cls.indexOf(f.cls) === 0;
      if (ok && f.share) ok = d.share === f.share;
      if (ok && f.cycle) ok = d.cycle === f.cycle;
      if (ok && f.fresh) ok = d.fresh === f.fresh;
      card.hidden = !ok;
      if (ok) shown++;
    });
    count.textContent = shown;
    empty.hidden = shown !== 0;
    document.body.setAttribute("data-ready", "1");
    try {
      var params = new URLSearchParams();
      if (q.value) params.set("q", q.value);
      FILTERS.forEach(function (id) { if (f[id]) params.set(id, f[id]); });
      var s = params.toString();
      history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
    } catch (e) { /* some browsers refuse replaceState on file:// */ }
  }

  var params = new URLSearchParams(location.search);
  if (params.get("q")) q.value = params.get("q");
  FILTERS.forEach(function (id) {
    var el = document.getElementById(id), v = params.get(id);
    if (el && v) el.value = v;
    if (el) el.addEventListener("change", apply);
  });
  q.addEventListener("input", apply);
  document.getElementById("reset").addEventListener("click", function () {
    q.value = "";
    FILTERS.forEach(function (id) { var el = document.getElementById(id); if (el) el.value = ""; });
    apply();
    q.focus();
  });
  apply();
})();
