// What every screen shares: the app's state, putting a screen in the page,
// announcing to screen readers, the language switch, and going to another screen
// by name (app.js says which function draws each, so screens never import each
// other in a circle).
import { call } from "./api.js";
import { fill, painted } from "./dom.js";
import { load, tx } from "./i18n.js";
import { onLeave, onPrivacy } from "./safety.js";

/**
 * `status`: what app_status said, then, once unlocked, the `session` and the
 * `rights` (what this person may do, from the core); `definition`: the form as the
 * core sends it.
 */
export const app = { status: null, definition: null };

const main = document.getElementById("main");
const live = document.getElementById("status");
let leaveGuard = null; // flushes the open form's draft before leaving it
let redraw = null; // redraws the current screen (privacy mode changes what it shows)
// Locking or a quick exit keep the open form's draft first.
onLeave(async () => { if (leaveGuard) await leaveGuard(); });
onPrivacy(() => redraw?.());

/** What to do before the current screen is left (keep the form's draft). */
export function setLeaveGuard(fn) { leaveGuard = fn; }

/** How to draw the current screen again (after privacy mode changes). */
export function setRedraw(fn) { redraw = fn; }

export function announce(key, args) {
  tx(live, key, args);
}

/** Put a screen in <main> and move focus to its heading. */
export async function show(screen, ...children) {
  redraw = null; // before any await: the caller may set the new screen's redraw right after calling
  if (leaveGuard) { await leaveGuard(); leaveGuard = null; }
  main.dataset.screen = screen;
  fill(main, ...children);
  // A new screen starts at its top, at once (an animated scroll would leave the
  // page moving under the next click).
  window.scrollTo({ top: 0, left: 0, behavior: "instant" });
  const h1 = main.querySelector("h1");
  if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); }
  await painted();
}

export async function switchLanguage(locale) {
  await load(locale);
  try { await call("set_locale", { locale }); } catch { /* the choice still applies to this session */ }
  document.getElementById("lang-toggle").setAttribute("lang", locale === "es" ? "en" : "es");
  announce(`lang.${locale}`);
}

const screens = {};

/** Say which function draws the screen `name` (app.js does, once). */
export function register(name, draw) { screens[name] = draw; }

/** Go to the screen `name`. */
export function go(name, ...args) { return screens[name](...args); }
