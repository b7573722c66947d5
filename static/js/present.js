// Presentation mode (P, ?present=1), full screen (F) and the help dialog (?): the same on every page.
const root = document.documentElement;

export function isPresent() { return root.classList.contains("present"); }

export function setPresent(on) {
  root.classList.toggle("present", on);
  const url = new URL(window.location.href);
  if (on) url.searchParams.set("present", "1"); else url.searchParams.delete("present");
  history.replaceState(history.state, "", url);
  document.dispatchEvent(new CustomEvent("bpv:present", { detail: { on } }));
  window.dispatchEvent(new Event("resize"));  // Plotly charts re-measure their containers
}

export function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen();
  else if (root.requestFullscreen) root.requestFullscreen().catch(() => {});
}

export function showHelp() { document.getElementById("help-dialog")?.showModal(); }

document.addEventListener("click", (event) => {
  const action = event.target.closest("[data-action]")?.dataset.action;
  if (action === "present") setPresent(!isPresent());
  else if (action === "fullscreen") toggleFullscreen();
  else if (action === "help") showHelp();
});
