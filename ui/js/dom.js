// Building the page: elements and text nodes only; no string is ever parsed as markup.
import { tx } from "./i18n.js";

/** h("button", {type: "button", class: "primary", onclick: f}, child, ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "i18n") tx(el, ...(Array.isArray(v) ? v : [v]));
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replace everything in `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Two animation frames: the DOM change is painted. */
export function painted() {
  return new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
}

/** `fn` once `ms` after the last call; `.cancel()` drops a pending call. */
export function debounce(fn, ms) {
  let timer;
  const d = (...a) => { clearTimeout(timer); timer = setTimeout(() => fn(...a), ms); };
  d.cancel = () => clearTimeout(timer);
  return d;
}
