/* The audit pages' behaviour. Served as a static file: the Content-Security-Policy allows
   no inline script and no on...= attribute, so every page's script lives here. */

/* Inbox: on a narrow screen an unfiltered inbox starts with its filters folded away. */
(function () {
  var box = document.querySelector("details.filters-box[data-collapse-narrow]");
  if (box && window.matchMedia("(max-width: 640px)").matches) box.removeAttribute("open");
})();

/* Replay, QA review: the keyboard answers categories and flags (see the "Keyboard" note). */
(function () {
  var form = document.getElementById("review-form");
  if (!form) return;
  var groups = Array.prototype.slice.call(form.querySelectorAll("fieldset.qa-cat"));
  function focusGroup(i) {
    if (i >= groups.length) { document.getElementById("review-comment").focus(); return; }
    var g = groups[i], t = g.querySelector("input:checked") || g.querySelector("input[type=radio]");
    if (t) t.focus();
  }
  groups.forEach(function (g, i) {
    g.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey || e.target.tagName === "TEXTAREA") return;
      var k = e.key.toLowerCase(), value = null;
      if (g.dataset.flag) { value = {c: "confirmed", f: "false_positive"}[k]; }
      else if (g.dataset.scale === "yes_no") { value = {y: "1", n: "0", x: "na"}[k]; }
      else { value = "12345".indexOf(k) >= 0 && k.length === 1 ? k : (k === "x" ? "na" : null); }
      if (!value) return;
      var input = g.querySelector('input[type=radio][value="' + value + '"]');
      if (!input) return;
      e.preventDefault(); input.checked = true; focusGroup(i + 1);
    });
  });
  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
      e.preventDefault(); document.getElementById("review-submit").click();
    }
  });
  var bad = form.querySelector(".invalid input, .field-error");
  if (bad && bad.focus) { var g = form.querySelector(".invalid"); if (g) focusGroup(groups.indexOf(g)); }
})();
