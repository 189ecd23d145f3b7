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
// The accueil's live line: the hall screen's calls (announced, with a chime the commune may
// turn off) and a counter's waiting list.
(function () {
  var board = document.getElementById("tableau");
  var list = document.getElementById("file-attente");
  var el = board || list;
  if (!el || !el.dataset.flux || !window.EventSource) { return; }
  var announce = document.getElementById("annonce-appel");
  var audio = null;
  var soundButton = document.getElementById("activer-son");
  if (soundButton) {
    soundButton.addEventListener("click", function () {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx) { audio = new Ctx(); }
      soundButton.parentNode.removeChild(soundButton);
    });
  }
  var chime = function () {
    if (!audio || !board || board.dataset.son !== "oui") { return; }
    [660, 880].forEach(function (f, i) {
      var o = audio.createOscillator();
      var g = audio.createGain();
      o.frequency.value = f;
      g.gain.value = 0.2;
      o.connect(g);
      g.connect(audio.destination);
      o.start(audio.currentTime + i * 0.35);
      o.stop(audio.currentTime + i * 0.35 + 0.3);
    });
  };
  var latest = function () {
    var li = board ? board.querySelector("li.dernier") : null;
    return li ? li.dataset.appel : "";
  };
  var shown = latest();
  var source = new EventSource(el.dataset.flux);
  if (board) {
    source.addEventListener("board", function (e) {
      board.innerHTML = e.data;
      var now = latest();
      if (now && now !== shown) {
        var li = board.querySelector("li.dernier");
        if (announce && li) { announce.textContent = li.dataset.annonce; }
        chime();
      }
      shown = now;
    });
  }
  if (list) {
    source.addEventListener("file", function (e) { list.innerHTML = e.data; });
  }
  // A stream the server ended for good (a restart, a session that ended): the page loads
  // again rather than showing a line that no longer moves.
  source.addEventListener("error", function () {
    if (source.readyState === 2) { setTimeout(function () { location.reload(); }, 5000); }
  });
  window.addEventListener("pagehide", function () { source.close(); });
  window.addEventListener("pageshow", function (e) { if (e.persisted) { location.reload(); } });
})();
// The kiosk goes back to its first page by itself after a ticket, unless the person asks to
// stay (a timing they can turn off: WCAG 2.2.1).
(function () {
  var back = document.getElementById("retour");
  if (!back || !back.dataset.retour) { return; }
  var left = parseInt(back.dataset.secondes, 10) || 20;
  var timer = setInterval(function () {
    left -= 1;
    if (left <= 0) { clearInterval(timer); location.href = back.dataset.retour; return; }
    back.firstChild.textContent = "Retour à l'accueil de la borne dans " + left + " secondes. ";
  }, 1000);
  var stay = document.getElementById("rester");
  if (stay) {
    stay.addEventListener("click", function () {
      clearInterval(timer);
      back.textContent = "Vous restez sur cette page.";
    });
  }
})();
// The phone on the desk: who calls, as soon as it rings.
(function () {
  var panel = document.getElementById("appel");
  if (!panel || !panel.dataset.flux || !window.EventSource) { return; }
  var source = new EventSource(panel.dataset.flux);
  source.addEventListener("appel", function (e) { panel.innerHTML = e.data; });
  source.addEventListener("reload", function (e) { source.close(); panel.textContent = e.data; });
  window.addEventListener("pagehide", function () { source.close(); });
  window.addEventListener("pageshow", function (e) { if (e.persisted) { location.reload(); } });
})();
// At the pré-accueil, Enter in the « autre » word takes a ticket « autre », not the form's
// first motive.
(function () {
  var word = document.querySelector("input[data-default]");
  if (!word) { return; }
  word.addEventListener("keydown", function (e) {
    if (e.key !== "Enter") { return; }
    e.preventDefault();
    var b = document.getElementById(word.dataset.default);
    if (b) { b.click(); }
  });
})();
// The élu's permanence: a meeting typed is kept in this browser (localStorage) and sent,
// with its key, until the hub has it; without network it waits and leaves when the network
// is back. The hub makes one meeting of a key however often it comes.
(function () {
  var form = document.querySelector("form[data-offline]");
  if (!form || !window.localStorage || !window.fetch) { return; }
  var name = "contacthub.permanence." + form.dataset.offline;
  var box = document.querySelector("[data-queue]");
  var state = document.getElementById("etat-envoi");
  var list = document.getElementById("en-attente");
  var met = document.getElementById("liste-rencontres");
  var sending = false;
  var load = function () {
    try { return JSON.parse(localStorage.getItem(name) || "[]"); } catch (e) { return []; }
  };
  var save = function (queue) {
    if (queue.length) { localStorage.setItem(name, JSON.stringify(queue)); } else { localStorage.removeItem(name); }
  };
  var key = function () {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  };
  var show = function (note) {
    var queue = load();
    list.innerHTML = "";
    queue.forEach(function (item) {
      var li = document.createElement("li");
      li.textContent = (item.fields.nom || item.fields.telephone || item.fields.courriel) + " — " + item.fields.objet +
        (item.error ? " : refusée (" + item.error + ")" : " : en attente d'envoi");
      if (item.error) {
        var again = document.createElement("button");
        again.type = "button";
        again.textContent = "Reprendre dans le formulaire";
        // Back into the form, with the time it was met; it stays kept here until the
        // corrected one is.
        again.addEventListener("click", function () {
          if (form.elements.objet.value.trim() &&
              !window.confirm("Remplacer ce qui est en cours de saisie ?")) { return; }
          Object.keys(item.fields).forEach(function (k) {
            if (form.elements[k] && k !== "cle") { form.elements[k].value = item.fields[k]; }
          });
          form.dataset.reprise = item.fields.cle;
          form.elements.nom.focus();
        });
        li.appendChild(document.createTextNode(" "));
        li.appendChild(again);
      }
      list.appendChild(li);
    });
    var waiting = queue.filter(function (item) { return !item.error; }).length;
    box.hidden = !queue.length && !note;
    state.textContent = note || (waiting > 1 ? waiting + " rencontres attendent le réseau ; elles partiront d'elles-mêmes." :
      waiting ? "1 rencontre attend le réseau ; elle partira d'elle-même." : "");
  };
  var flush = function () {
    if (sending) { return; }
    var queue = load();
    var next = queue.filter(function (item) { return !item.error; })[0];
    if (!next) { return; }
    sending = true;
    var body = new URLSearchParams(next.fields);
    body.set("csrf", form.elements.csrf.value);
    body.set("envoi", "script");
    fetch(form.action, { method: "POST", body: body, credentials: "same-origin", redirect: "manual",
      headers: { "Accept": "application/json" } })
      .then(function (r) {
        var json = (r.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        // Signed out, or this page's form expired (a new sign-in elsewhere): kept, to send
        // from a page loaded again.
        if (!json || r.status === 401 || r.status === 403) { throw new Error("session"); }
        return r.json().then(function (answer) { return { status: r.status, answer: answer }; });
      })
      .then(function (got) {
        var q = load();
        var at = q.findIndex(function (item) { return item.fields.cle === next.fields.cle; });
        if (got.answer.ok) {
          if (at >= 0) { q.splice(at, 1); }
          var none = document.getElementById("aucune");
          if (none) { none.remove(); }
          met.insertAdjacentHTML("afterbegin", got.answer.ligne);
        } else if (got.status >= 500) {
          throw new Error("later");
        } else if (at >= 0) {
          q[at].error = got.answer.message;
        }
        save(q);
        sending = false;
        show(got.answer.ok ? "Rencontre envoyée." : "");
        flush();
      })
      .catch(function (e) {
        sending = false;
        show(e.message === "session" ? "Reconnectez-vous puis rechargez cette page : les rencontres restent sur cet appareil et partiront ensuite." : "");
      });
  };
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var fields = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && el.name !== "csrf") { fields[el.name] = el.value; }
    });
    fields.cle = key();
    fields.quand = form.elements.quand.value || String(Date.now());
    var queue = load().filter(function (item) { return item.fields.cle !== form.dataset.reprise; });
    delete form.dataset.reprise;
    queue.push({ fields: fields, error: "" });
    save(queue);
    var place = fields.lieu;
    form.reset();
    form.elements.lieu.value = place;
    show(navigator.onLine ? "Rencontre enregistrée ; envoi en cours." : "Pas de réseau : la rencontre est gardée sur cet appareil.");
    flush();
  });
  window.addEventListener("online", flush);
  setInterval(flush, 5000);
  show("");
  flush();
})();
