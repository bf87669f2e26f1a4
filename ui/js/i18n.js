// Translations come whole from the core. Every translated node remembers its key
// (data-i18n, data-i18n-args, data-i18n-attr), so a language switch re-labels the
// page in place: nothing is re-rendered, nothing typed is lost.
import { call } from "./api.js";

let locale = "en";
let table = {};
const cache = {};

export function current() { return locale; }

export async function load(l) {
  locale = l === "es" ? "es" : "en";
  table = cache[locale] || (cache[locale] = await call("translations", { locale }));
  document.documentElement.lang = locale;
  retranslate(document);
}

/** Another language's table, without switching (for client documents). */
export async function tableFor(l) {
  const want = l === "es" ? "es" : "en";
  return cache[want] || (cache[want] = await call("translations", { locale: want }));
}

/**
 * A message from `tbl` (a table from tableFor). An argument given as `{ key }`
 * is itself a message of the table, so it changes language with the sentence.
 */
export function tIn(tbl, key, args) {
  let s = Object.prototype.hasOwnProperty.call(tbl, key) ? tbl[key] : key;
  const arg = (v) => (v && typeof v === "object" && typeof v.key === "string" ? tIn(tbl, v.key) : String(v));
  if (args) for (const [k, v] of Object.entries(args)) s = s.split(`%{${k}}`).join(arg(v));
  return s;
}

export function has(key) { return Object.prototype.hasOwnProperty.call(table, key); }

export function t(key, args) {
  return tIn(table, key, args);
}

/** The label of a code: code.SET.CODE, with Unknown / Declined shared. */
export function codeKey(set, code) {
  return code === "Unknown" || code === "DeclinedToAnswer" ? `code.common.${code}` : `code.${set}.${code}`;
}

/** Set an element's text from a key, and remember it for the next switch. */
export function tx(el, key, args) {
  el.dataset.i18n = key;
  if (args) el.dataset.i18nArgs = JSON.stringify(args); else delete el.dataset.i18nArgs;
  el.textContent = t(key, args);
  return el;
}

/** Set an attribute from a key ("aria-label:list.open_case"), remembered likewise. */
export function tattr(el, attr, key, args) {
  const spec = (el.dataset.i18nAttr ? el.dataset.i18nAttr.split(";") : []).filter((s) => !s.startsWith(attr + ":"));
  spec.push(`${attr}:${key}${args ? ":" + JSON.stringify(args) : ""}`);
  el.dataset.i18nAttr = spec.join(";");
  el.setAttribute(attr, t(key, args));
  return el;
}

export function retranslate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n, el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined);
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const spec of el.dataset.i18nAttr.split(";")) {
      const [attr, key, ...rest] = spec.split(":");
      const args = rest.length ? JSON.parse(rest.join(":")) : undefined;
      el.setAttribute(attr, t(key, args));
    }
  }
}
