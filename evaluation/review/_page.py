"""The review and history pages: plain HTML, CSS and JavaScript, no build step. Model
outputs are untrusted text: the scripts put them in the page with ``textContent`` only."""

from __future__ import annotations

import html
import json

from evaluation.review.store import CRITERIA

_STYLE = """
:root { font-family: system-ui, sans-serif; color: #1d2330; background: #f6f7f9; }
body { margin: 0; }
header { background: #24324a; color: #fff; padding: .7rem 1.2rem; display: flex; gap: 1.2rem;
  align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 1.1rem; margin: 0; }
header a { color: #cfe0ff; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem 1.2rem 3rem; }
.banner { background: #fff3cd; border: 1px solid #e0c36a; padding: .5rem .8rem;
  margin-bottom: 1rem; }
section, article { background: #fff; border: 1px solid #d9dde5; border-radius: 6px;
  padding: .6rem 1rem; margin-bottom: 1rem; }
h2 { font-size: .95rem; margin: .2rem 0 .5rem; color: #46506a; }
pre { white-space: pre-wrap; word-wrap: break-word; font-family: ui-monospace, monospace;
  font-size: .9rem; margin: 0; max-height: 22rem; overflow: auto; }
.outputs { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.identity { color: #0b6b3a; font-weight: 600; margin-top: .5rem; }
table.rate { border-collapse: collapse; width: 100%; }
table.rate th, table.rate td { padding: .35rem .5rem; border-bottom: 1px solid #eceef2;
  text-align: left; }
.stars { display: inline-flex; gap: .15rem; }
.stars label { cursor: pointer; padding: .1rem .35rem; border: 1px solid #c5cbd8;
  border-radius: 4px; }
.stars input { margin: 0 .15rem 0 0; }
.latency { color: #6b7385; font-size: .85rem; margin-left: .6rem; }
.pref label { margin-right: 1.2rem; }
textarea { width: 100%; min-height: 4rem; font: inherit; }
button { font: inherit; padding: .45rem 1.1rem; border-radius: 5px; border: 1px solid #24324a;
  background: #24324a; color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: #24324a; }
#status { font-weight: 600; }
.superseded { color: #8a8f9c; text-decoration: line-through; }
"""

_REVIEW_BODY = """
<main>
  <div class="banner" id="simulated" hidden>SIMULATED: these outputs come from evalflow's
    simulated backend, not from a real model.</div>
  <p id="done" hidden>Every pair of this review is rated.
    <a href="history">See your history</a>.</p>
  <div id="pair" hidden>
    <section>
      <h2>Input <span id="case-id"></span></h2>
      <pre id="input"></pre>
    </section>
    <section id="reference-box" hidden>
      <h2>Reference</h2>
      <pre id="reference"></pre>
    </section>
    <div class="outputs">
      <article><h2>Output A</h2><pre id="output-A" class="output"></pre>
        <p class="identity" id="identity-A" hidden></p></article>
      <article><h2>Output B</h2><pre id="output-B" class="output"></pre>
        <p class="identity" id="identity-B" hidden></p></article>
    </div>
    <form id="rating">
      <section>
        <table class="rate">
          <thead><tr><th>criterion</th><th>A</th><th>B</th></tr></thead>
          <tbody id="criteria"></tbody>
        </table>
      </section>
      <section class="pref">
        <h2>Which output is better overall?</h2>
        <label><input type="radio" name="preference" value="A" required> A</label>
        <label><input type="radio" name="preference" value="tie"> tie</label>
        <label><input type="radio" name="preference" value="B"> B</label>
      </section>
      <section>
        <h2><label for="notes">Notes</label></h2>
        <textarea id="notes" name="notes" maxlength="10000"></textarea>
      </section>
      <button type="submit" id="submit">Save rating</button>
      <button type="button" id="next" class="secondary" hidden>Next pair</button>
      <span id="status" role="status"></span>
    </form>
  </div>
</main>
"""

_REVIEW_SCRIPT = """
const CRITERIA = __CRITERIA__;
const $ = (id) => document.getElementById(id);
let shown = null;

function buildCriteria() {
  const body = $("criteria");
  for (const criterion of CRITERIA) {
    const row = document.createElement("tr");
    const name = document.createElement("th");
    name.textContent = criterion;
    row.appendChild(name);
    for (const side of ["A", "B"]) {
      const cell = document.createElement("td");
      const stars = document.createElement("span");
      stars.className = "stars";
      for (let n = 1; n <= 5; n++) {
        const label = document.createElement("label");
        const input = document.createElement("input");
        input.type = "radio";
        input.name = side + "-" + criterion;
        input.value = String(n);
        input.required = true;
        label.appendChild(input);
        label.appendChild(document.createTextNode(n + "\\u2605"));
        stars.appendChild(label);
      }
      cell.appendChild(stars);
      if (criterion === "speed") {
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

function setProgress(progress) {
  $("progress").textContent = progress.rated + " of " + progress.total + " pairs rated";
}

function render(pair) {
  shown = pair;
  $("pair").hidden = false;
  $("done").hidden = true;
  $("case-id").textContent = "(case " + pair.case_id + ", pair " + pair.position + ")";
  $("input").textContent = pair.input;
  $("reference-box").hidden = pair.references.length === 0;
  $("reference").textContent = pair.references.join("\\n\\n");
  $("rating").reset();
  for (const side of ["A", "B"]) {
    const out = pair.outputs[side];
    $("output-" + side).textContent = out.text;
    $("latency-" + side).textContent = out.latency_s == null
      ? "latency unknown" : "latency " + out.latency_s.toFixed(2) + " s";
  }
  if (pair.rating) {
    for (const side of ["A", "B"]) {
      for (const [criterion, stars] of Object.entries(pair.rating.stars[side])) {
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
  $("submit").textContent = pair.rating ? "Update rating" : "Save rating";
  $("next").hidden = !pair.rating;
}

function reveal(identities) {
  for (const side of ["A", "B"]) {
    const box = $("identity-" + side);
    box.hidden = !identities;
    box.textContent = identities
      ? side + " was " + identities[side].label + " (" + identities[side].config + ")" : "";
  }
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail ? JSON.stringify(body.detail) : response.status);
  return body;
}

async function load(pairId) {
  const body = await getJSON(pairId ? "api/pairs/" + pairId : "api/next");
  setProgress(body.progress);
  $("status").textContent = "";
  if (!body.pair) {
    $("pair").hidden = true;
    $("done").hidden = false;
    history.replaceState(null, "", "./");
    return;
  }
  history.replaceState(null, "", "?pair=" + body.pair.pair_id);
  render(body.pair);
}

async function submit(event) {
  event.preventDefault();
  const form = new FormData($("rating"));
  const stars = {A: {}, B: {}};
  for (const side of ["A", "B"]) {
    for (const criterion of CRITERIA) {
      stars[side][criterion] = Number(form.get(side + "-" + criterion));
    }
  }
  const payload = {stars, preference: form.get("preference"), notes: form.get("notes") || ""};
  try {
    const body = await getJSON("api/pairs/" + shown.pair_id + "/rating", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(payload),
    });
    render(body.pair);
    setProgress(body.progress);
    let message = body.stored === 0 ? "Nothing changed." : "Saved.";
    if (body.superseded > 0) {
      message += " It replaces your earlier rating, which stays in your history.";
    }
    $("status").textContent = message;
  } catch (error) {
    $("status").textContent = "Not saved: " + error.message;
  }
}

buildCriteria();
$("rating").addEventListener("submit", submit);
$("next").addEventListener("click", () => load(null));
$("simulated").hidden = !__SIMULATED__;
load(new URLSearchParams(location.search).get("pair"));
"""

_HISTORY_BODY = """
<main>
  <p>Every rating you gave in this experiment, newest last. A rating you changed is kept and
    struck through, with the rating that replaced it.</p>
  <section>
    <table class="rate">
      <thead><tr><th>#</th><th>time (UTC)</th><th>pair</th><th>case</th><th>output</th>
        <th>config</th><th>criterion</th><th>rating</th><th>notes</th><th>status</th></tr></thead>
      <tbody id="rows"></tbody>
    </table>
    <p id="empty" hidden>No ratings yet.</p>
  </section>
</main>
"""

_HISTORY_SCRIPT = """
async function loadHistory() {
  const response = await fetch("api/history");
  const body = await response.json();
  const rows = document.getElementById("rows");
  document.getElementById("empty").hidden = body.ratings.length > 0;
  for (const r of body.ratings) {
    const tr = document.createElement("tr");
    if (r.superseded_by !== null) tr.className = "superseded";
    const value = r.criterion === "preference" ? "prefers " + r.preference : r.stars + "\\u2605";
    const status = r.superseded_by === null ? "current" : "replaced by #" + r.superseded_by;
    for (const text of [r.id, r.created_at, r.pair_id ?? "", r.case_id, r.side ?? "",
                        r.config, r.criterion, value, r.notes, status]) {
      const td = document.createElement("td");
      td.textContent = String(text);
      tr.appendChild(td);
    }
    rows.appendChild(tr);
  }
}
loadHistory();
"""


def _document(title: str, header: str, body: str, script: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head>"
        f"<body><header>{header}</header>{body}<script>{script}</script></body></html>"
    )


def review_page(experiment: str, rater: str, *, simulated: bool) -> str:
    title = html.escape(f"Review: {experiment}")
    header = (
        f"<h1>{title}</h1><span>rater <b>{html.escape(rater)}</b></span>"
        '<span id="progress"></span><a href="history">your history</a>'
    )
    script = _REVIEW_SCRIPT.replace("__CRITERIA__", json.dumps(list(CRITERIA))).replace(
        "__SIMULATED__", "true" if simulated else "false"
    )
    return _document(title, header, _REVIEW_BODY, script)


def history_page(experiment: str, rater: str) -> str:
    title = html.escape(f"Ratings by {rater}: {experiment}")
    header = f'<h1>{title}</h1><a href="./">back to the review</a>'
    return _document(title, header, _HISTORY_BODY, _HISTORY_SCRIPT)
