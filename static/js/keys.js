// One keyboard handler for the whole page. Pages register keys with `bindKeys`; shortcuts are ignored while
// the user types in a field, and Escape (or a click on the page outside a control) gives the keys back.
const bindings = new Map();   // key -> [handler, ...]; later registrations run first

/** Register handlers: bindKeys({ArrowRight: next, PageDown: next}). Returns a function that unbinds them. */
export function bindKeys(map) {
  for (const [key, fn] of Object.entries(map)) bindings.set(key, [fn, ...(bindings.get(key) || [])]);
  return () => { for (const [key, fn] of Object.entries(map)) bindings.set(key, (bindings.get(key) || []).filter((f) => f !== fn)); };
}

export function typingInField(target) {
  if (!target) return false;
  if (target.isContentEditable) return true;
  if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
  if (target.tagName !== "INPUT") return false;
  return !["button", "checkbox", "radio", "range", "submit", "reset", "color", "file"].includes(target.type);
}

function isControl(el) { return !!el.closest("input, select, textarea, button, a, label, summary, [contenteditable], [tabindex]"); }

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && document.activeElement && document.activeElement !== document.body &&
      !document.querySelector("dialog[open]")) {
    document.activeElement.blur();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey || typingInField(event.target)) return;
  // a range slider keeps its own arrow keys; everything else goes to the page
  if (event.target?.type === "range" && event.key.startsWith("Arrow")) return;
  const handlers = bindings.get(event.key) || bindings.get(event.key.toLowerCase());
  if (!handlers || !handlers.length) return;
  for (const fn of handlers) {
    if (fn(event) !== false) { event.preventDefault(); return; }
  }
});

// A click on the page outside any control hands the keys back to the page.
document.addEventListener("pointerdown", (event) => {
  const active = document.activeElement;
  if (active && active !== document.body && typingInField(active) && !isControl(event.target)) active.blur();
});
