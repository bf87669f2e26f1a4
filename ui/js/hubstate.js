// The hub's state in the header, at a glance: up to date, changes waiting,
// offline, syncing (with a progress bar for a large pull), or stopped. The
// background sync is the shell's; this only shows what `hub_status` says, a few
// times a minute, and never blocks anything.
import { call } from "./api.js";
import { h, fill } from "./dom.js";
import { tx, current } from "./i18n.js";

const POLL_MS = 2000;
let timer = null;
let shown = "";

/** A time the way the UI language writes it. */
export const when = (iso) => new Date(iso).toLocaleString(current(), { dateStyle: "medium", timeStyle: "short" });

/** Which state it is, its message and values, and when it last synced. */
export function describe(s) {
  const count = (s.waiting || 0).toLocaleString(current());
  const last = s.last_synced ? ["hub.state.last", { time: when(s.last_synced) }] : ["hub.state.never", {}];
  if (s.syncing) return ["syncing", "hub.state.syncing", {}, last];
  if (s.offline) return ["offline", s.waiting > 0 ? "hub.state.offline_waiting" : "hub.state.offline", { count }, last];
  if (s.error) return ["stopped", "hub.state.stopped", {}, last];
  if (s.waiting > 0) return ["waiting", "hub.state.waiting", { count }, last];
  return ["up_to_date", "hub.state.up_to_date", {}, last];
}

function render(s) {
  const el = document.getElementById("hub-state");
  const bar = document.getElementById("hub-progress");
  if (!el || !bar) return;
  el.hidden = !s.connected;
  bar.hidden = !(s.connected && s.syncing && s.total > 0);
  if (!bar.hidden) { bar.max = s.total; bar.value = s.done; }
  if (!s.connected) return;
  const [state, key, args, [lastKey, lastArgs]] = describe(s);
  // Only a change is written: a screen reader hears it once.
  const now = JSON.stringify([key, args, lastKey, lastArgs, current()]);
  if (now === shown) return;
  shown = now;
  el.dataset.state = state;
  fill(el, tx(h("span", { class: "hub-now" }), key, args), " · ", tx(h("span", { class: "hub-last" }), lastKey, lastArgs));
}

async function poll() {
  try { render(await call("hub_status")); } catch { /* locked meanwhile: the page reloads */ }
}

/** Start showing the hub's state (once unlocked). */
export function startHubState() {
  clearInterval(timer);
  poll();
  timer = setInterval(poll, POLL_MS);
}

/** Show it now (after *Sync now*, say). */
export function refreshHubState() { return poll(); }
