// The rater's history: every rating, superseded ones struck through. Configs are named
// only for revealed pairs (the server decides); model text goes in with textContent.
"use strict";

async function loadHistory() {
  const response = await fetch("api/history");
  const body = await response.json();
  const rows = document.getElementById("rows");
  document.getElementById("empty").hidden = body.ratings.length > 0;
  document.getElementById("blinded").hidden = !body.blinded;
  for (const r of body.ratings) {
    const tr = document.createElement("tr");
    if (r.superseded_by !== null) tr.className = "superseded";
    const value = r.criterion === "preference" ? "prefers " + r.preference : r.stars + "\u2605";
    const status = r.superseded_by === null ? "current" : "replaced by #" + r.superseded_by;
    const config = r.config === null ? "hidden until the end" : r.config;
    for (const text of [r.id, r.created_at, r.pair_id ?? "", r.case_id, r.side ?? "",
                        config, r.criterion, value, r.notes, status]) {
      const td = document.createElement("td");
      td.textContent = String(text);
      tr.appendChild(td);
    }
    rows.appendChild(tr);
  }
}
loadHistory();
