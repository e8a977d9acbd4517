// The monitor's live parts: ask the server every few seconds whether anything changed
// (If-None-Match: an unchanged state costs an empty 304), redraw what did, and reload
// the page only when a run starts or ends (the recent runs and the leaderboard change).
"use strict";

const tags = new Map();

async function changed(url) {
  const headers = tags.has(url) ? {"If-None-Match": tags.get(url)} : {};
  const response = await fetch(url, {headers, cache: "no-store"});
  if (response.status === 304 || !response.ok) return null;
  tags.set(url, response.headers.get("ETag"));
  return response.json();
}

function every(ms, step) {
  const tick = async () => {
    try { await step(); } catch (e) { /* the server may be restarting: try again later */ }
    setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

// as evaluation/run/_rate.format_rate: per minute below one a second ("0.0/s" said nothing)
function rate(r) {
  if (r.per_s === null) return "–";
  return r.per_s >= 1 ? `${r.per_s.toFixed(1)}/s` : `${(r.per_s * 60).toFixed(1)}/min`;
}

const running = document.querySelector("#running[data-live-url]");
if (running) {
  const body = document.querySelector("#running-rows");
  // each run shown -> whether it is starting: the recent runs show that too
  const shown = new Map(Array.from(body.querySelectorAll("tr[data-name]"),
    (tr) => [tr.dataset.name, tr.querySelector(".stage").textContent === "starting"]));
  every(Number(running.dataset.pollMs), async () => {
    const state = await changed(running.dataset.liveUrl);
    if (state === null) return;
    // a run started, began (from starting) or ended: reload, the recent runs change
    const moved = state.running.length !== shown.size
      || state.running.some((r) => shown.get(r.name) !== (r.stage === "starting"));
    if (moved) { window.location.reload(); return; }
    body.replaceChildren(...state.running.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.name = r.name;
      const link = document.createElement("a");
      link.href = `/e/${encodeURIComponent(r.name)}/live`;
      link.textContent = r.name;
      const first = document.createElement("td");
      first.append(link);
      if (r.simulated) {  // as the recent runs and the run's own page mark it
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "SIMULATED";
        first.append(" ", tag);
      }
      const flight = [
        ...Object.entries(r.in_flight).map(([h, n]) => `${h} ${n}`),
        ...Object.entries(r.waiting || {}).map(([h, w]) => `${h} ${w.lanes} waiting for a slot`),
      ].join(", ");
      const progress = cell(r.starting || `${r.done}/${r.total} (${Math.round(r.percent)}%)`);
      progress.className = "progress";
      const stage = cell(r.stage);
      stage.className = "stage";
      tr.append(first, cell(r.task_type), stage, progress, cell(rate(r)), cell(r.eta_clock || "–"), cell(flight), cell(String(r.failed)));
      return tr;
    }));
    document.querySelector("#live-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  });
}

const run = document.querySelector("#run[data-run-url]");
// a starting run (its claim held, its flow not begun) is reloaded once it runs
if (run && ["running", "starting"].includes(run.dataset.status)) {
  every(Number(run.dataset.pollMs), async () => {
    const state = await changed(run.dataset.runUrl);
    if (state === null) return;
    if (state.status !== run.dataset.status) { window.location.reload(); return; }
    if (state.live === null) return;
    const live = state.live;
    const set = (field, text) => { run.querySelector(`[data-field="${field}"]`).textContent = text; };
    set("progress", `${live.done}/${live.total} (${Math.round(live.percent)}%)`);
    set("rate", rate(live));
    set("eta", live.eta_clock || "–");
    set("failed", String(live.failed));
    set("updated", live.updated_clock);
    const bar = run.querySelector("#bar");
    bar.max = live.total || 1;
    bar.value = live.done;
    for (const li of run.querySelectorAll("ol.stages li")) {
      li.classList.toggle("current", li.dataset.stage === live.stage);
    }
    const hosts = [...new Set([...Object.keys(live.in_flight), ...Object.keys(live.slots)])].sort();
    run.querySelector("#in-flight tbody").replaceChildren(...hosts.map((h) => {
      const tr = document.createElement("tr");
      tr.dataset.host = h;
      const waiting = (live.waiting || {})[h];
      tr.append(cell(h), cell(String(live.in_flight[h] || 0)), cell(String(live.slots[h] ?? "–")), cell(waiting ? waiting.words : "–"));
      return tr;
    }));
    const reasons = Object.entries(live.failures);
    if (reasons.length) {
      run.querySelector("#failures tbody").replaceChildren(...reasons.map(([why, n]) => {
        const tr = document.createElement("tr");
        tr.append(cell(String(n)), cell(why));
        return tr;
      }));
    }
  });
}

// the notice of a run this page started says what its flow run does until it ends: one
// whose flow fails before it claims its experiment (a spec path the worker cannot read)
// is listed in no section, so the notice says it failed, and why
const startedNotice = document.querySelector("#started[data-state-url]");
if (startedNotice) {
  let ended = false;
  const follow = async () => {
    if (ended) return;
    const state = await changed(startedNotice.dataset.stateUrl);
    if (state === null) return;
    startedNotice.textContent = state.words;
    startedNotice.dataset.state = state.state || "";
    ended = state.ended;
    if (ended && ["FAILED", "CRASHED"].includes(state.state)) startedNotice.classList.add("failed");
  };
  follow().catch(() => {});
  every(Number(startedNotice.dataset.pollMs), follow);
}

// "Start a run" starts one from its button only: Enter in one of its fields (which
// applies a filter on the other pages) would submit it, under the spec's own experiment
// name before one was typed.
const startForm = document.getElementById("start-form");
if (startForm) {
  // the deployment offered is one registered on the server: `evalflow serve` registers
  // evaluate/on-demand-served, where the default (evaluate/on-demand) would be refused
  const field = startForm.querySelector('input[name="deployment"]');
  fetch(field.dataset.url, {cache: "no-store"}).then((r) => r.ok ? r.json() : null).then((known) => {
    if (!known || !known.evaluate) return;
    document.getElementById("deployments").replaceChildren(...known.evaluate.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      return option;
    }));
    // the field still holds the default, and the default is not registered: serve's, else the first
    if (field.value === known.default && !known.evaluate.includes(field.value) && known.evaluate.length) {
      const served = "evaluate/on-demand-served";
      field.value = known.evaluate.includes(served) ? served : known.evaluate[0];
    }
  }).catch(() => {});
  startForm.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target instanceof HTMLInputElement) event.preventDefault();
  });
}
