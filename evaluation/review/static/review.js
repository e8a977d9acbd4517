// The blinded review page. Model outputs are untrusted text: they go into the page with
// textContent only. "A" is always the left output of a pair and "B" the right one; a
// preference of "A" means the rater found the left output better.
"use strict";

const CRITERIA = JSON.parse(document.body.dataset.criteria);
// Rated once the pair is revealed: its latency names the bigger model, so it is hidden
// (and the stars off) until then; the server refuses it earlier too.
const AFTER_REVEAL = JSON.parse(document.body.dataset.afterReveal || "[]");
const $ = (id) => document.getElementById(id);
let shown = null;
let cursor = 0; // which star cell the digit keys fill: criterion by criterion, A then B
const cells = []; // [criterion, side] in keyboard order

function buildCriteria() {
  const body = $("criteria");
  for (const criterion of CRITERIA) {
    const row = document.createElement("tr");
    row.className = AFTER_REVEAL.includes(criterion) ? "after-reveal" : "blind";
    const name = document.createElement("th");
    name.textContent = criterion;
    row.appendChild(name);
    for (const side of ["A", "B"]) {
      const index = cells.length;
      cells.push([criterion, side]);
      const cell = document.createElement("td");
      cell.id = "cell-" + side + "-" + criterion;
      cell.addEventListener("click", () => setCursor(index));
      const stars = document.createElement("span");
      stars.className = "stars";
      for (let n = 1; n <= 5; n++) {
        const label = document.createElement("label");
        const input = document.createElement("input");
        input.type = "radio";
        input.name = side + "-" + criterion;
        input.value = String(n);
        label.appendChild(input);
        label.appendChild(document.createTextNode(n + "\u2605"));
        stars.appendChild(label);
      }
      cell.appendChild(stars);
      if (AFTER_REVEAL.includes(criterion)) {
        const latency = document.createElement("span");
        latency.className = "latency";
        latency.id = "latency-" + side;
        cell.appendChild(latency);
      }
      row.appendChild(cell);
    }
    body.appendChild(row);
  }
}

function fastMode() {
  return $("fast").checked;
}

function blindNow(criterion) {
  return AFTER_REVEAL.includes(criterion) && !(shown && shown.identities);
}

// Fast mode asks the preference, and once the pair is revealed its speed (AFTER_REVEAL):
// a pair rated fast had no way to its speed but with every blind criterion's stars.
function asked(criterion) {
  return !fastMode() || AFTER_REVEAL.includes(criterion);
}

function applyMode() {
  document.body.classList.toggle("fast", fastMode());
  document.body.classList.toggle("revealed", Boolean(shown && shown.identities));
  for (const [criterion, side] of cells) {
    const deferred = AFTER_REVEAL.includes(criterion);
    for (const input of document.getElementsByName(side + "-" + criterion)) {
      // a rated pair keeps its blind stars unless all are given again (the server's rule)
      input.required = !fastMode() && !deferred && !(shown && shown.rating);
      input.disabled = blindNow(criterion);
    }
  }
}

function setCursor(index) {
  for (const td of document.querySelectorAll("td.current")) td.classList.remove("current");
  const skipped = ([criterion]) => blindNow(criterion) || !asked(criterion);
  while (index < cells.length - 1 && skipped(cells[index])) index++;  // skip the deferred
  cursor = Math.max(0, Math.min(cells.length - 1, index));
  const [criterion, side] = cells[cursor];
  $("cell-" + side + "-" + criterion).classList.add("current");
}

function setProgress(progress) {
  $("progress").textContent = progress.rated + " of " + progress.total + " pairs rated";
}

function renderTurns(pair) {
  const list = $("turns");
  list.replaceChildren();
  const turns = pair.system ? [{role: "system", content: pair.system}, ...pair.turns] : pair.turns;
  for (const turn of turns) {
    const item = document.createElement("li");
    item.className = "turn " + turn.role;
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = turn.role;
    const text = document.createElement("pre");
    text.textContent = turn.content;
    item.append(role, text);
    list.appendChild(item);
  }
  if (pair.input_note) {
    const note = document.createElement("li");
    note.className = "muted";
    note.id = "input-note";
    note.textContent = pair.input_note;
    list.appendChild(note);
  }
}

function render(pair) {
  shown = pair;
  $("pair").hidden = false;
  $("done").hidden = true;
  $("case-id").textContent = "(case " + pair.case_id + ", pair " + pair.position + ")";
  renderTurns(pair);
  const targets = pair.references.length ? pair.references : (pair.label ? [pair.label] : []);
  $("reference-box").hidden = targets.length === 0;
  $("reference-title").textContent = pair.references.length ? "Reference" : "Label";
  $("reference").textContent = targets.join("\n\n");
  $("rating").reset();
  for (const side of ["A", "B"]) {
    const out = pair.outputs[side];
    $("output-" + side).textContent = out.text;
    // The server sends latency only once the pair is revealed (it names the bigger model).
    $("latency-" + side).textContent = !("latency_s" in out)
      ? "rated once revealed (latency hidden until then)" : out.latency_s == null
      ? "latency unknown" : "latency " + out.latency_s.toFixed(2) + " s";
  }
  if (pair.rating) {
    for (const side of ["A", "B"]) {
      for (const [criterion, stars] of Object.entries(pair.rating.stars[side] || {})) {
        const input = document.querySelector(
          'input[name="' + side + "-" + criterion + '"][value="' + stars + '"]');
        if (input) input.checked = true;
      }
    }
    const pref = document.querySelector('input[name="preference"][value="' +
      pair.rating.preference + '"]');
    if (pref) pref.checked = true;
    $("notes").value = pair.rating.notes;
  }
  reveal(pair.identities);
  applyMode();
  $("submit").textContent = pair.rating ? "Update rating" : "Save rating";
  $("next").hidden = !pair.rating;
  $("reveal-pair").hidden = !pair.rating || Boolean(pair.identities);
  setCursor(speedDue(pair) ? cells.findIndex(([c]) => AFTER_REVEAL.includes(c)) : 0);
}

// A rated, revealed pair whose speed is not rated yet: the keys start at speed.
function speedDue(pair) {
  return Boolean(pair.identities && pair.rating && AFTER_REVEAL.some(
    (c) => !(c in (pair.rating.stars.A || {}))));
}

function reveal(identities) {
  for (const side of ["A", "B"]) {
    const box = $("identity-" + side);
    box.hidden = !identities;
    box.textContent = identities
      ? side + " was " + identities[side].label + " (" + identities[side].config + ")" : "";
  }
}

function csrfToken() {  // the server's token: its writes refuse a request without it
  return document.querySelector('meta[name="csrf-token"]').content;
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail ? JSON.stringify(body.detail) : response.status);
  return body;
}

async function showSessionEnd() {
  const body = await getJSON("api/reveal");
  const rows = $("reveal").querySelector("tbody");
  rows.replaceChildren();
  for (const p of body.pairs) {
    const tr = document.createElement("tr");
    tr.dataset.pair = p.pair_id;
    const preferred = p.preferred === null ? "tie" : p.preference + ": " + p.preferred;
    for (const text of [p.position, p.case_id, p.A.label, p.B.label, preferred]) {
      const td = document.createElement("td");
      td.textContent = String(text);
      tr.appendChild(td);
    }
    // Speed is rated once revealed: every pair is now; its link opens the pair to rate it.
    const speed = document.createElement("td");
    const rated = AFTER_REVEAL.map((c) => ["A", "B"].map((side) => p.stars[side][c]));
    const link = document.createElement("a");
    link.href = "?pair=" + p.pair_id;
    link.className = "rate-speed";
    link.textContent = rated.flat().every((v) => v === undefined)
      ? "rate " + AFTER_REVEAL.join(", ")
      : rated.map(([a, b]) => "A " + (a ?? "–") + "\u2605, B " + (b ?? "–") + "\u2605").join("; ")
        + " (change)";
    speed.appendChild(link);
    tr.appendChild(speed);
    rows.appendChild(tr);
  }
  $("pair").hidden = true;
  $("done").hidden = false;
}

async function load(pairId) {
  const body = await getJSON(pairId ? "api/pairs/" + pairId : "api/next");
  setProgress(body.progress);
  $("status").textContent = "";
  if (!body.pair) {
    history.replaceState(null, "", "./");
    await showSessionEnd();
    return;
  }
  history.replaceState(null, "", "?pair=" + body.pair.pair_id);
  render(body.pair);
}

async function save() {
  const form = new FormData($("rating"));
  const stars = {};
  for (const side of ["A", "B"]) {
    stars[side] = {};
    for (const criterion of CRITERIA.filter(asked)) {
      const value = form.get(side + "-" + criterion);
      if (value !== null) stars[side][criterion] = Number(value);  // speed: once revealed
    }
  }
  const payload = {stars, preference: form.get("preference"), notes: form.get("notes") || ""};
  const body = await getJSON("api/pairs/" + shown.pair_id + "/rating", {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrfToken()},
    body: JSON.stringify(payload),
  });
  render(body.pair);
  setProgress(body.progress);
  let message = body.stored === 0 ? "Nothing changed." : "Saved.";
  if (body.superseded > 0) {
    message += " It replaces your earlier rating, which stays in your history.";
  }
  $("status").textContent = message;
  return body;
}

// One save at a time: a double click or Enter pressed twice sent two (newcomers' J1); the
// server keeps one current rating either way, and the page moves on once.
let saving = false;

async function submit(event) {
  event.preventDefault();
  if (saving) return;
  saving = true;
  try {
    await save();
  } catch (error) {
    $("status").textContent = "Not saved: " + error.message;
  } finally {
    saving = false;
  }
}

async function saveAndAdvance() {
  if (saving || !$("rating").reportValidity()) return;
  saving = true;
  try {
    await save();
    await load(null);
  } catch (error) {
    $("status").textContent = "Not saved: " + error.message;
  } finally {
    saving = false;
  }
}

async function revealPair() {
  try {
    const body = await getJSON("api/pairs/" + shown.pair_id + "/reveal", {
      method: "POST", headers: {"X-CSRF-Token": csrfToken()},
    });
    render(body.pair);
  } catch (error) {
    $("status").textContent = "Not revealed: " + error.message;
  }
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || $("pair").hidden) return;
  if (event.target === $("notes")) {
    if (event.key === "Escape") $("notes").blur();
    return;
  }
  const key = event.key.toLowerCase();
  if (key >= "1" && key <= "5") {
    const [criterion, side] = cells[cursor];
    if (!asked(criterion)) return;  // fast mode, the pair not revealed
    const input = document.querySelector(
      'input[name="' + side + "-" + criterion + '"][value="' + key + '"]');
    if (input.disabled) return;  // speed before the reveal
    input.checked = true;
    setCursor(cursor + 1);
  } else if (key === "a" || key === "b" || key === "t") {
    const value = key === "t" ? "tie" : key.toUpperCase();
    document.querySelector('input[name="preference"][value="' + value + '"]').checked = true;
  } else if (key === "n") {
    $("notes").focus();
  } else if (key === "enter") {
    if (event.target instanceof HTMLButtonElement) return; // the button's own action
    saveAndAdvance();
  } else {
    return;
  }
  event.preventDefault();
}

buildCriteria();
applyMode();
$("fast").addEventListener("change", () => {
  applyMode();
  setCursor(cursor);
});
$("rating").addEventListener("submit", submit);
$("next").addEventListener("click", () => load(null));
$("reveal-pair").addEventListener("click", revealPair);
$("keys-toggle").addEventListener("click", () => {
  $("keys").hidden = !$("keys").hidden;
  $("keys-toggle").setAttribute("aria-expanded", String(!$("keys").hidden));
});
document.addEventListener("keydown", onKey);
load(new URLSearchParams(location.search).get("pair"));
