// Locking, quick exit, auto-lock, privacy mode and the clipboard.
//
// Quick exit (the button, or Esc twice) empties the page before anything else, so
// the neutral screen is up within a frame; then the draft in progress is kept, the
// clipboard is cleared if it still holds text copied here, the store locks, and the
// window moves to a blank page that knows nothing of what was open.
import { call } from "./api.js";
import { t } from "./i18n.js";

const copied = [];
let beforeLeave = async () => {};
let idleTimer = null;

/** What must happen before the page goes (keep the open form's draft). */
export function onLeave(fn) { beforeLeave = fn; }

// Remember what was copied from the app, to clear it at a quick exit and only it.
for (const type of ["copy", "cut"]) {
  document.addEventListener(type, () => {
    const text = String(window.getSelection() || "");
    if (text && !copied.includes(text)) copied.push(text);
  });
}

async function leave() {
  try { await beforeLeave(); } catch { /* the lock matters more than the draft */ }
}

/** Lock: keep the draft, close the store, and start over at the unlock screen. */
export async function lock() {
  stopIdle();
  await leave();
  document.getElementById("main").replaceChildren();
  try { await call("lock"); } finally { location.reload(); }
}

/** Quick exit. `started` is the event's timestamp, to measure the time to a blank window. */
export async function quickExit(started = performance.now()) {
  stopIdle();
  const title = t("quick_exit.neutral_title");
  document.body.replaceChildren();
  document.body.className = "neutral";
  document.title = "\u200b";
  await new Promise((r) => requestAnimationFrame(() => r()));
  // Only a number: how long the blank window took, for the end-to-end test.
  try { sessionStorage.setItem("amparo.quick_exit_ms", String(Math.round(performance.now() - started))); } catch { /* no storage: nothing to measure */ }
  await leave();
  try { await call("quick_exit", { title, copied: copied.splice(0) }); } catch { /* a locked store is already closed */ }
  location.replace("neutral.html");
}

// Esc twice within a second, from anywhere (also inside a field).
let lastEsc = 0;
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !e.ctrlKey && !e.altKey && !e.metaKey) {
    if (e.timeStamp - lastEsc < 1000) { e.preventDefault(); quickExit(e.timeStamp); return; }
    lastEsc = e.timeStamp;
  }
}, true);
document.getElementById("quick-exit").addEventListener("click", (e) => quickExit(e.timeStamp));

/** Lock after `seconds` without keyboard, mouse or touch. */
export function startIdle(seconds) {
  stopIdle();
  // Two clocks: the monotonic one may stand still while the laptop sleeps, and a
  // laptop closed for an hour must come back locked; the wall clock covers that.
  let last = [performance.now(), Date.now()];
  const touch = () => { last = [performance.now(), Date.now()]; };
  for (const type of ["keydown", "pointerdown", "pointermove", "wheel", "touchstart", "input"]) {
    document.addEventListener(type, touch, { passive: true, capture: true });
  }
  // The shell locks the store itself a little after this page should have (if
  // the page hangs, its timer cannot): tell it a person is here, now and then.
  let told = 0;
  idleTimer = setInterval(() => {
    const idle = Math.max(performance.now() - last[0], Date.now() - last[1]);
    if (idle >= seconds * 1000) { lock(); return; }
    if (last[0] > told) { told = performance.now(); call("activity").catch(() => {}); }
  }, Math.min(5000, Math.max(250, seconds * 250)));
}

function stopIdle() {
  if (idleTimer) clearInterval(idleTimer);
  idleTimer = null;
}

let privacy = false;
const privacyListeners = [];

export function privacyOn() { return privacy; }

/** Privacy mode: aliases instead of names, other PII hidden. */
export function setPrivacy(on) {
  privacy = on;
  document.body.classList.toggle("privacy", on);
  document.getElementById("privacy-toggle").setAttribute("aria-pressed", String(on));
  for (const f of privacyListeners) f(on);
}

export function onPrivacy(fn) { privacyListeners.push(fn); }
