// Amparo's window: the header, the shortcuts, which screen is which, and the start.
// Each screen (screens/*.js) asks the core for what it shows and draws it with
// elements and text nodes only. Shortcuts: Alt+L switches language, Alt+N starts a
// new intake, Ctrl+S saves the form, Ctrl+Shift+L locks, Esc twice is quick exit.
import { call } from "./api.js";
import { fill } from "./dom.js";
import { load, current, tx, tattr, retranslate } from "./i18n.js";
import { errorText } from "./fields.js";
import { lock, startIdle, setPrivacy, privacyOn } from "./safety.js";
import { app, show, switchLanguage, register, go } from "./screen.js";
import { welcomeScreen, setupScreen, unlockScreen } from "./screens/start.js";
import { listScreen } from "./screens/list.js";
import { intakeScreen } from "./screens/intake.js";
import { caseScreen } from "./screens/case.js";
import { printRights } from "./screens/print.js";
import { adminScreen, auditScreen, accountScreen } from "./screens/admin.js";
import { syncScreen } from "./screens/sync.js";
import { reportScreen } from "./screens/report.js";
import { directoryScreen } from "./screens/directory.js";
import { startHubState } from "./hubstate.js";

const nav = document.getElementById("nav");
const who = document.getElementById("who");

/** The header for the person unlocked: their name and role, what they may open. */
function signedIn() {
  const s = app.status.session;
  // The role as a message of its own, so that a language switch relabels it.
  tx(who, "nav.signed_in_role", { user: s.user_name, org: s.org, role: { key: `user.role.${s.role}` } });
}

async function enterApp(unlocked) {
  app.status.session = unlocked.session;
  app.status.rights = unlocked.rights;
  app.definition = app.definition || await call("form_definition");
  nav.hidden = false;
  document.getElementById("nav-audit").hidden = !app.status.rights.supervise;
  document.getElementById("nav-admin").hidden = !app.status.rights.administer;
  for (const id of ["lock", "privacy-toggle"]) document.getElementById(id).hidden = false;
  signedIn();
  tattr(nav, "aria-label", "nav.main");
  startIdle(unlocked.idle_lock_seconds);
  startHubState();
  listScreen();
}

register("enter", enterApp);
register("list", listScreen);
register("intake", intakeScreen);
register("case", caseScreen);

document.getElementById("lang-toggle").addEventListener("click", () => switchLanguage(current() === "es" ? "en" : "es"));
document.addEventListener("keydown", (e) => {
  if (e.altKey && !e.ctrlKey && e.code === "KeyL") { e.preventDefault(); switchLanguage(current() === "es" ? "en" : "es"); }
  if (e.altKey && !e.ctrlKey && e.code === "KeyN" && app.status?.unlocked) { e.preventDefault(); go("intake", {}); }
  if (e.ctrlKey && e.shiftKey && !e.altKey && e.code === "KeyL" && app.status?.unlocked) { e.preventDefault(); lock(); }
});
document.getElementById("nav-cases").addEventListener("click", () => go("list"));
document.getElementById("nav-new").addEventListener("click", () => go("intake", {}));
document.getElementById("nav-sync").addEventListener("click", () => syncScreen(show, app.status, app.status.rights.administer));
document.getElementById("nav-directory").addEventListener("click", () => directoryScreen(show, app.definition, { printRights }));
document.getElementById("nav-report").addEventListener("click", () => reportScreen(show, app.definition, app.status.rights.supervise));
document.getElementById("nav-audit").addEventListener("click", () => auditScreen(show, app.status));
document.getElementById("nav-admin").addEventListener("click", () => adminScreen(show, app.status));
document.getElementById("nav-account").addEventListener("click", () => accountScreen(show, app.status));
document.getElementById("lock").addEventListener("click", () => lock());
document.getElementById("privacy-toggle").addEventListener("click", () => setPrivacy(!privacyOn()));

async function boot() {
  app.status = await call("app_status");
  await load(app.status.locale || app.status.system_locale);
  document.getElementById("lang-toggle").setAttribute("lang", current() === "es" ? "en" : "es");
  if (!app.status.initialized && !app.status.locale) return welcomeScreen();
  if (!app.status.initialized) return setupScreen();
  // A page that starts again while the store is open (it cannot know the idle
  // time or what was shown) locks first: a new page always asks for the passphrase.
  if (app.status.unlocked) { await call("lock"); app.status.unlocked = false; }
  return unlockScreen();
}

boot().catch((e) => fill(document.getElementById("main"), errorText(e)));
retranslate(document);
