// The filter forms apply as soon as a choice changes (text fields on Enter) and leave
// empty fields out of the URL, so it stays short enough to share. Only GET forms filter:
// a POST form styled like them (the monitor's "Start a run") acts, so it waits for its
// button. The keys j / k step through the listed rows, Enter opens the current one; on a
// generation's page j / k open the next / previous generation. Pages work without this
// script.
"use strict";

for (const form of document.querySelectorAll("form.filters")) {
  if (form.method !== "get") continue;
  form.addEventListener("submit", () => {
    for (const field of form.querySelectorAll("input, select")) {
      if (field.value === "" || field.value === "any") field.disabled = true;
    }
  });
  for (const select of form.querySelectorAll("select")) {
    select.addEventListener("change", () => {
      const page = form.querySelector('input[name="page"]');
      if (page) page.remove();
      form.requestSubmit();
    });
  }
}

const rows = Array.from(document.querySelectorAll("table.generations tbody tr[data-id]"));
let current = -1;

function focusRow(index) {
  if (rows.length === 0) return;
  if (current >= 0) rows[current].classList.remove("current");
  current = Math.max(0, Math.min(rows.length - 1, index));
  rows[current].classList.add("current");
  rows[current].scrollIntoView({block: "nearest"});
}

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (rows.length === 0) {  // a generation's page: j / k go to the next / previous one
    const id = {j: "g-next", k: "g-previous"}[event.key];
    const link = id && document.getElementById(id);
    if (link) link.click();
    return;
  }
  if (event.key === "j") focusRow(current + 1);
  else if (event.key === "k") focusRow(current - 1);
  else if (event.key === "Enter" && current >= 0) {
    const link = rows[current].querySelector("a");
    if (link) link.click();
  }
});

// Back from a submitted form: the browser may restore the page with fields disabled.
window.addEventListener("pageshow", () => {
  for (const field of document.querySelectorAll("form.filters [disabled]")) field.disabled = false;
});

// Dark mode: the system's preference (prefers-color-scheme, in the CSS) unless the
// reader chose with the header's button; the choice is kept in localStorage.
(function () {
  const root = document.documentElement;
  const saved = localStorage.getItem("evalflow-theme");
  if (saved) root.dataset.theme = saved;
  document.addEventListener("DOMContentLoaded", function () {
    const button = document.getElementById("theme");
    if (!button) return;
    button.addEventListener("click", function () {
      const dark = root.dataset.theme
        ? root.dataset.theme === "dark"
        : window.matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      localStorage.setItem("evalflow-theme", root.dataset.theme);
    });
  });
})();
