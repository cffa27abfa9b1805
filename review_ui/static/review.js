// Keyboard shortcuts and select-all for the review UI.
// This script only clicks links, submits forms and toggles checkboxes: it never
// writes any text into the page, so nothing from a contact can become markup.
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    if (tag === "INPUT") return !/^(radio|checkbox)$/.test(target.type); // choosing is not typing
    return tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  var busy = false;
  function submit(id) {
    var form = document.getElementById(id);
    if (!form || busy) return false;
    busy = true; // one decision per key press, however fast the repeats come
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
    return true;
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (!link) return false;
    window.location.href = link.href;
    return true;
  }

  var keys = {
    c: function () { return submit("confirm-form"); },
    r: function () { return submit("reject-form"); },
    s: function () { return follow("skip-link"); },
    u: function () { return submit("undo-form"); },
    b: function () { return submit("blind-form"); },
    j: function () { return follow("next-link"); },
    k: function () { return follow("prev-link"); },
    ArrowRight: function () { return follow("next-link"); },
    ArrowLeft: function () { return follow("prev-link"); },
    Enter: function () { return follow("start-link"); }
  };

  // The case page: each group gets a person letter; digits give the highlighted group
  // one and move on, a / d preset every group, Enter decides (the browser refuses while
  // a group has no letter).
  var caseForm = document.getElementById("case-form");
  if (caseForm) {
    var groups = caseForm.querySelectorAll(".case-group");
    var current = 0;
    var highlight = function (index) {
      current = Math.max(0, Math.min(groups.length - 1, index));
      groups.forEach(function (g, i) { g.classList.toggle("current", i === current); });
    };
    var choose = function (group, person) {
      var radios = group.querySelectorAll("input[type=radio]");
      if (person < radios.length) radios[person].checked = true;
    };
    var preset = function (apart) {
      groups.forEach(function (g, i) { choose(g, apart ? i : 0); });
    };
    highlight(0);
    groups.forEach(function (g, i) {
      g.addEventListener("click", function () { highlight(i); });
    });
    document.getElementById("all-one").addEventListener("click", function () { preset(false); });
    document.getElementById("all-apart").addEventListener("click", function () { preset(true); });
    keys.a = function () { preset(false); return true; };
    keys.d = function () { preset(true); return true; };
    keys.ArrowRight = function () { highlight(current + 1); return true; };
    keys.ArrowLeft = function () { highlight(current - 1); return true; };
    keys.Enter = function () {
      if (busy || !caseForm.checkValidity()) { caseForm.reportValidity(); return true; }
      return submit("case-form");
    };
    for (var digit = 1; digit <= 9; digit++) {
      keys[String(digit)] = (function (person) {
        return function () {
          choose(groups[current], person);
          highlight(current + 1);
          return true;
        };
      })(digit - 1);
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var action = keys[event.key];
    if (action && action()) event.preventDefault();
  });

  document.addEventListener("submit", function (event) {
    var buttons = event.target.querySelectorAll("button[type=submit]");
    window.setTimeout(function () {
      for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
    }, 0);
  });

  var all = document.getElementById("select-all");
  var counter = document.getElementById("selected-count");
  function picks() { return document.querySelectorAll("input.pick"); }
  function recount() {
    if (!counter) return;
    var n = 0;
    picks().forEach(function (box) { if (box.checked) n++; });
    counter.textContent = n + " selected"; // a number we computed, not data
  }
  if (all) {
    all.addEventListener("change", function () {
      picks().forEach(function (box) { box.checked = all.checked; });
      recount();
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.classList && event.target.classList.contains("pick")) recount();
  });
})();
