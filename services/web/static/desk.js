// contacthub desk: search as you type and a live timeline. The pages work without it.
"use strict";
(function () {
  var q = document.querySelector("input[data-live]");
  if (q) {
    var results = document.getElementById("resultats");
    var commune = document.getElementById("commune");
    var timer = null;
    var last = q.value;
    var run = function () {
      var value = q.value.trim();
      if (value === last) { return; }
      last = value;
      var params = new URLSearchParams({ q: value, commune: commune ? commune.value : "" });
      history.replaceState(null, "", "/citoyens?" + params.toString());
      if (!value) { results.innerHTML = ""; return; }
      params.set("fragment", "true");
      fetch("/citoyens?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) { if (q.value.trim() === value) { results.innerHTML = html; } });
    };
    q.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(run, 200); });
  }
  // Choosing a validated answer puts its text into the editor (an agent's own text is kept
  // unless they agree to replace it).
  var pick = document.querySelector("select[data-fills]");
  if (pick) {
    var editor = document.getElementById(pick.dataset.fills);
    pick.addEventListener("change", function () {
      var chosen = pick.options[pick.selectedIndex];
      var text = chosen ? chosen.getAttribute("data-text") : "";
      if (!text || !editor) { return; }
      if (editor.value.trim() && editor.value !== text &&
          !window.confirm("Remplacer le texte déjà écrit par celui de la réponse validée ?")) { return; }
      editor.value = text;
    });
  }
  // The mail room picks a letter's sender among the commune's citizens, as one searches.
  var who = document.querySelector("input[data-picker]");
  if (who) {
    var chosen = document.getElementById(who.dataset.picker);
    var choices = document.getElementById(who.getAttribute("aria-controls"));
    var picked = document.getElementById(who.getAttribute("aria-describedby"));
    var wait = null;
    who.addEventListener("input", function () {
      clearTimeout(wait);
      chosen.value = "";
      picked.textContent = "";
      wait = setTimeout(function () {
        var value = who.value.trim();
        if (!value) { choices.innerHTML = ""; return; }
        var params = new URLSearchParams({ q: value, commune: who.dataset.commune, fragment: "true", choix: "true" });
        fetch("/citoyens?" + params.toString(), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : ""; })
          .then(function (html) { if (who.value.trim() === value) { choices.innerHTML = html; } });
      }, 200);
    });
    choices.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-pick-id]");
      if (!b) { return; }
      chosen.value = b.dataset.pickId;
      who.value = b.dataset.pickName;
      picked.textContent = "Expéditeur : " + b.dataset.pickName + " (" + b.dataset.pickId + ")";
      choices.innerHTML = "";
    });
  }
  var print = document.querySelector("button[data-print]");
  if (print) { print.addEventListener("click", function () { window.print(); }); }
  var timeline = document.getElementById("timeline");
  if (timeline && timeline.dataset.flux && window.EventSource) {
    var announce = document.getElementById("annonce");
    var source = new EventSource(timeline.dataset.flux);
    source.addEventListener("entry", function (e) {
      timeline.insertAdjacentHTML("afterbegin", e.data);
      if (announce) { announce.textContent = "Nouveau contact reçu : il est en tête de l'historique."; }
    });
    source.addEventListener("reload", function (e) {
      source.close();
      if (announce) { announce.textContent = e.data; }
    });
    // A page left (or kept in the back-forward cache) ends its stream: a browser holds six
    // connections per desk, and streams left open would stall the next pages.
    window.addEventListener("pagehide", function () { source.close(); });
    window.addEventListener("pageshow", function (e) { if (e.persisted) { location.reload(); } });
  }
})();
