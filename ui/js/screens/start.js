// The screens before a store is open: language, setup, the recovery key, unlock
// and recovery.
import { call } from "../api.js";
import { h, debounce } from "../dom.js";
import { current, tx } from "../i18n.js";
import { fieldRow, setFieldError, freshAttempt, showIssues } from "../fields.js";
import { app, show, switchLanguage, go } from "../screen.js";

export function welcomeScreen() {
  const choose = async (l) => { await switchLanguage(l); setupScreen(); };
  return show("welcome", h("div", { class: "card narrow" },
    h("h1", { i18n: "welcome.title" }),
    h("p", { i18n: "welcome.choose" }),
    h("div", { class: "row" },
      // Each button speaks its own language, whatever the page's (same text in both tables).
      h("button", { type: "button", class: "primary", id: "choose-en", lang: "en", i18n: "welcome.continue_en", onclick: () => choose("en") }),
      h("button", { type: "button", class: "primary", id: "choose-es", lang: "es", i18n: "welcome.continue_es", onclick: () => choose("es") })),
    h("p", { class: "intro", i18n: "app.offline_note" })));
}

export function setupScreen() {
  const min = app.status.passphrase_min;
  const org = fieldRow("setup-org", "setup.org", h("input", { type: "text", autocomplete: "organization" }));
  const device = fieldRow("setup-device", "setup.device_code", h("input", { type: "text", autocomplete: "off", maxlength: 8 }), { help: "setup.device_code_help" });
  const user = fieldRow("setup-user", "setup.user", h("input", { type: "text", autocomplete: "name" }));
  const pass = fieldRow("setup-passphrase", "setup.passphrase", h("input", { type: "password", autocomplete: "new-password" }), { help: "setup.passphrase_help", helpArgs: { min } });
  const again = fieldRow("setup-passphrase2", "setup.passphrase_confirm", h("input", { type: "password", autocomplete: "new-password" }));
  const meterValue = h("span", { id: "strength" });
  const meter = h("p", { class: "meter", "aria-live": "polite" }, tx(h("span"), "setup.strength.label"), ": ", meterValue);
  tx(meterValue, "setup.strength.too_short");
  pass.input.addEventListener("input", debounce(async () => {
    const s = await call("passphrase_strength", { passphrase: pass.input.value });
    tx(meterValue, s.key);
  }, 150));
  // Joining an organisation: its name comes with the invitation.
  const joinBox = h("input", { type: "checkbox", id: "setup-join" });
  const invFile = fieldRow("setup-invitation", "setup.invitation_file", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }), { help: "setup.invitation_file_help" });
  const invPass = fieldRow("setup-invitation-passphrase", "setup.invitation_passphrase", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }), { help: "setup.invitation_passphrase_help" });
  const joinFields = h("div", { hidden: true }, invFile.row, invPass.row);
  joinBox.addEventListener("change", () => { joinFields.hidden = !joinBox.checked; org.row.hidden = joinBox.checked; });
  const fields = { org, device_code: device, user, passphrase: pass, invitation_file: invFile, invitation_passphrase: invPass };
  const submit = h("button", { type: "submit", class: "primary", id: "setup-submit", i18n: "setup.submit" });
  const failure = h("div");
  const form = h("form", { novalidate: true },
    h("div", { class: "field" }, h("label", { for: "setup-join", class: "check" }, joinBox, tx(h("span"), "setup.join_toggle"))),
    joinFields, org.row, device.row, user.row, pass.row, meter, again.row,
    h("p", { class: "notice", i18n: "setup.warning" }), failure, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!freshAttempt(fields, pass, again, failure)) return;
    submit.disabled = true;
    tx(submit, "setup.creating");
    try {
      const join = joinBox.checked ? { file: invFile.input.value, passphrase: invPass.input.value } : null;
      const unlocked = await call("setup", { setup: {
        org: joinBox.checked ? "-" : org.input.value, device_code: device.input.value, user: user.input.value,
        passphrase: pass.input.value, locale: current() }, join });
      app.status.initialized = true;
      recoveryKeyScreen(unlocked);
    } catch (err) {
      // The invitation's own refusals belong next to its fields.
      const at = { "error.sync.wrong_invite_passphrase": "invitation_passphrase", "error.sync.not_an_invitation": "invitation_file" }[err.key];
      showIssues(at ? { issues: [{ path: at, error: { key: err.key, args: err.args } }] } : err, fields, failure);
    } finally {
      submit.disabled = false;
      tx(submit, "setup.submit");
    }
  });
  return show("setup", h("div", { class: "card narrow" }, h("h1", { i18n: "setup.title" }), h("p", { class: "intro", i18n: "setup.intro" }), form));
}

/** Shown once after setup: the recovery key, to write down or print. */
function recoveryKeyScreen(unlocked) {
  const done = h("input", { type: "checkbox", id: "recovery-done" });
  const next = h("button", { type: "button", class: "primary", id: "recovery-continue", i18n: "recovery.continue", disabled: true,
    onclick: () => { app.status.unlocked = true; go("enter", unlocked); } });
  done.addEventListener("change", () => { next.disabled = !done.checked; });
  return show("recovery-key", h("div", { class: "card narrow printable", id: "recovery-card" },
    h("h1", { i18n: "recovery.title" }),
    h("p", { i18n: "recovery.intro" }),
    h("p", { class: "recovery-key", id: "recovery-key", lang: "en" }, unlocked.recovery_key || ""),
    h("p", { class: "notice", i18n: "recovery.warning" }),
    h("p", { class: "meter", i18n: ["recovery.for", { org: unlocked.session.org, device: unlocked.session.device_code }] }),
    h("div", { class: "actions no-print" },
      h("button", { type: "button", class: "quiet", id: "recovery-print", i18n: "recovery.print", onclick: () => window.print() }),
      h("label", { for: "recovery-done", class: "check" }, done, tx(h("span"), "recovery.confirm")),
      next)));
}

/** A wait after wrong attempts: the button counts down and comes back by itself. */
function countdown(button, f, err, restKey) {
  let left = Number(err.args?.seconds || 0);
  button.disabled = true;
  const tick = () => {
    if (left <= 0) { button.disabled = false; tx(button, restKey); setFieldError(f, null); return; }
    tx(button, "unlock.wait", { seconds: left });
    left -= 1;
    setTimeout(tick, 1000);
  };
  tick();
}

export function unlockScreen() {
  const pass = fieldRow("unlock-passphrase", "unlock.passphrase", h("input", { type: "password", autocomplete: "current-password" }));
  const submit = h("button", { type: "submit", class: "primary", id: "unlock-submit", i18n: "unlock.submit" });
  const forgot = h("button", { type: "button", class: "link", id: "unlock-forgot", i18n: "recover.link", onclick: () => recoverScreen() });
  const form = h("form", { novalidate: true }, pass.row, h("div", { class: "actions" }, submit, forgot));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setFieldError(pass, null);
    submit.disabled = true;
    tx(submit, "unlock.unlocking");
    let wait = null;
    try {
      const unlocked = await call("unlock", { passphrase: pass.input.value });
      app.status.unlocked = true;
      go("enter", unlocked);
    } catch (err) {
      setFieldError(pass, err.key, err.args);
      pass.err.setAttribute("role", "alert");
      pass.input.select();
      pass.input.focus();
      if (err.key === "error.store.throttled" || err.key === "error.store.wrong_passphrase_wait") wait = err;
    } finally {
      submit.disabled = false;
      tx(submit, "unlock.submit");
      if (wait) countdown(submit, pass, wait, "unlock.submit");
    }
  });
  const shown = show("unlock", h("div", { class: "card narrow" }, h("h1", { i18n: "unlock.title" }), h("p", { class: "intro", i18n: "unlock.intro" }), form,
    h("p", { class: "meter", i18n: "unlock.shortcuts" })));
  return shown.then(() => pass.input.focus());
}

/** A forgotten passphrase: an administrator's name, the recovery key, a new passphrase. */
function recoverScreen() {
  const user = fieldRow("recover-user", "recover.user", h("input", { type: "text", autocomplete: "username" }));
  const key = fieldRow("recover-key", "recover.key", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }), { help: "recover.key_help" });
  const pass = fieldRow("recover-passphrase", "recover.passphrase", h("input", { type: "password", autocomplete: "new-password" }), { help: "setup.passphrase_help", helpArgs: { min: app.status.passphrase_min } });
  const again = fieldRow("recover-passphrase2", "setup.passphrase_confirm", h("input", { type: "password", autocomplete: "new-password" }));
  const fields = { user, recovery_key: key, passphrase: pass };
  const failure = h("div");
  const submit = h("button", { type: "submit", class: "primary", id: "recover-submit", i18n: "recover.submit" });
  const form = h("form", { novalidate: true }, user.row, key.row, pass.row, again.row, failure,
    h("div", { class: "actions" }, submit, h("button", { type: "button", class: "quiet", i18n: "form.cancel", onclick: () => unlockScreen() })));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!freshAttempt(fields, pass, again, failure)) return;
    submit.disabled = true;
    try {
      const unlocked = await call("recover", { recoveryKey: key.input.value, user: user.input.value, passphrase: pass.input.value });
      app.status.unlocked = true;
      go("enter", unlocked);
    } catch (err) {
      showIssues(err, fields, failure);
    } finally {
      submit.disabled = false;
    }
  });
  return show("recover", h("div", { class: "card narrow" }, h("h1", { i18n: "recover.title" }), h("p", { class: "intro", i18n: "recover.intro" }), form));
}

