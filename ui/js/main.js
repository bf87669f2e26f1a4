// Amparo's screens. Each screen asks the core for what it shows and draws it with
// elements and text nodes only. Shortcuts: Alt+L switches language, Alt+N starts a
// new intake, Ctrl+S saves the form, Ctrl+Shift+L locks, Esc twice is quick exit.
import { call } from "./api.js";
import { h, fill, debounce, painted } from "./dom.js";
import { load, current, t, tx, tattr, has, codeKey, retranslate, tableFor, tIn } from "./i18n.js";
import { IntakeForm } from "./form.js";
import { errorText, fieldRow, setFieldError, freshAttempt, showIssues } from "./fields.js";
import { lock, startIdle, onLeave, setPrivacy, privacyOn, onPrivacy } from "./safety.js";
import { adminScreen, auditScreen, accountScreen, ROLE_RANK } from "./admin.js";
import { syncScreen, conflictsSection } from "./sync.js";
import { reportScreen } from "./report.js";
import { directoryScreen } from "./directory.js";
import { clientLanguage, rightsDocument, referralSlip } from "./documents.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const live = document.getElementById("status");
let status = null;
let definition = null;
let leaveGuard = null; // flushes the open form's draft before leaving it
let redraw = null; // redraws the current screen (privacy mode changes what it shows)
// Locking or a quick exit keep the open form's draft first.
onLeave(async () => { if (leaveGuard) await leaveGuard(); });

function announce(key, args) {
  tx(live, key, args);
}

/** Put a screen in <main> and move focus to its heading. */
async function show(screen, ...children) {
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

// ---------------------------------------------------------------- language

async function switchLanguage(locale) {
  await load(locale);
  try { await call("set_locale", { locale }); } catch { /* the choice still applies to this session */ }
  document.getElementById("lang-toggle").setAttribute("lang", locale === "es" ? "en" : "es");
  announce(`lang.${locale}`);
}

document.getElementById("lang-toggle").addEventListener("click", () => switchLanguage(current() === "es" ? "en" : "es"));
document.addEventListener("keydown", (e) => {
  if (e.altKey && !e.ctrlKey && e.code === "KeyL") { e.preventDefault(); switchLanguage(current() === "es" ? "en" : "es"); }
  if (e.altKey && !e.ctrlKey && e.code === "KeyN" && status?.unlocked) { e.preventDefault(); intakeScreen({}); }
  if (e.ctrlKey && e.shiftKey && !e.altKey && e.code === "KeyL" && status?.unlocked) { e.preventDefault(); lock(); }
});

// ---------------------------------------------------------------- first start

function welcomeScreen() {
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

function setupScreen() {
  const min = status.passphrase_min;
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
      status.initialized = true;
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
  const go = h("button", { type: "button", class: "primary", id: "recovery-continue", i18n: "recovery.continue", disabled: true,
    onclick: () => { status.unlocked = true; enterApp(unlocked); } });
  done.addEventListener("change", () => { go.disabled = !done.checked; });
  return show("recovery-key", h("div", { class: "card narrow printable", id: "recovery-card" },
    h("h1", { i18n: "recovery.title" }),
    h("p", { i18n: "recovery.intro" }),
    h("p", { class: "recovery-key", id: "recovery-key", lang: "en" }, unlocked.recovery_key || ""),
    h("p", { class: "notice", i18n: "recovery.warning" }),
    h("p", { class: "meter", i18n: ["recovery.for", { org: unlocked.session.org, device: unlocked.session.device_code }] }),
    h("div", { class: "actions no-print" },
      h("button", { type: "button", class: "quiet", id: "recovery-print", i18n: "recovery.print", onclick: () => window.print() }),
      h("label", { for: "recovery-done", class: "check" }, done, tx(h("span"), "recovery.confirm")),
      go)));
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

function unlockScreen() {
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
      status.unlocked = true;
      enterApp(unlocked);
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
  const pass = fieldRow("recover-passphrase", "recover.passphrase", h("input", { type: "password", autocomplete: "new-password" }), { help: "setup.passphrase_help", helpArgs: { min: status.passphrase_min } });
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
      status.unlocked = true;
      enterApp(unlocked);
    } catch (err) {
      showIssues(err, fields, failure);
    } finally {
      submit.disabled = false;
    }
  });
  return show("recover", h("div", { class: "card narrow" }, h("h1", { i18n: "recover.title" }), h("p", { class: "intro", i18n: "recover.intro" }), form));
}

async function enterApp(unlocked) {
  status.session = unlocked.session;
  definition = definition || await call("form_definition");
  nav.hidden = false;
  const rank = ROLE_RANK[status.session.role] ?? 0;
  document.getElementById("nav-audit").hidden = rank < ROLE_RANK.Supervisor;
  document.getElementById("nav-admin").hidden = rank < ROLE_RANK.Administrator;
  for (const id of ["lock", "privacy-toggle"]) document.getElementById(id).hidden = false;
  tx(who, "nav.signed_in_role", { user: status.session.user_name, org: status.session.org, role: t(`user.role.${status.session.role}`) });
  tattr(nav, "aria-label", "nav.main");
  startIdle(unlocked.idle_lock_seconds);
  listScreen();
}

document.getElementById("nav-cases").addEventListener("click", () => listScreen());
document.getElementById("nav-new").addEventListener("click", () => intakeScreen({}));
document.getElementById("nav-sync").addEventListener("click", () => syncScreen(show, status, ROLE_RANK[status.session.role] >= ROLE_RANK.Administrator));
document.getElementById("nav-directory").addEventListener("click", () => directoryScreen(show, definition, { printRights }));
document.getElementById("nav-report").addEventListener("click", () => reportScreen(show, definition, ROLE_RANK[status.session.role] >= ROLE_RANK.Supervisor));
document.getElementById("nav-audit").addEventListener("click", () => auditScreen(show, status.session));
document.getElementById("nav-admin").addEventListener("click", () => adminScreen(show, status));
document.getElementById("nav-account").addEventListener("click", () => accountScreen(show, status));
document.getElementById("lock").addEventListener("click", () => lock());
document.getElementById("privacy-toggle").addEventListener("click", () => setPrivacy(!privacyOn()));
onPrivacy(() => redraw?.());

// ---------------------------------------------------------------- case list

async function listScreen() {
  const search = h("input", { type: "search", id: "search", autocomplete: "off" });
  const statusSel = h("select", { id: "status-filter" }, tx(h("option", { value: "" }), "list.all_statuses"));
  const statusField = definition.sections.flatMap((s) => s.fields).find((f) => f.key === "status");
  for (const c of statusField.codes) statusSel.append(tx(h("option", { value: c }), codeKey("status", c)));
  const body = h("tbody");
  const empty = h("p", { id: "list-empty" });
  const count = h("p", { class: "meter", id: "list-count", "aria-live": "polite" });
  const table = h("table", { id: "case-table" },
    h("caption", { class: "visually-hidden", i18n: "list.title" }),
    h("thead", {}, h("tr", {}, ...["case_number", "alias", "status", "intake_date"].map((c) => h("th", { scope: "col", i18n: `list.col.${c}` })))),
    body);
  let limit = 100;
  const more = h("button", { type: "button", class: "quiet", id: "list-more", i18n: "list.more", onclick: () => { limit += 100; refresh(); } });
  let seq = 0;
  const refresh = async () => {
    const mine = ++seq;
    const rows = await call("list_cases", { query: { text: search.value, status: statusSel.value || null, limit } });
    if (mine !== seq) return; // a newer keystroke already asked
    fill(body, rows.map((r) => {
      const open = h("button", { type: "button", class: "link", onclick: () => openFromList(r) }, r.case_number);
      tattr(open, "aria-label", "list.open_case", { number: r.case_number });
      const restricted = r.restricted ? tx(h("span", { class: "badge" }), r.locked ? "list.locked" : "list.restricted") : null;
      const unexported = r.unexported ? tx(h("span", { class: "badge quiet-badge", "data-unexported": "true" }), "sync.not_exported") : null;
      return h("tr", { "data-locked": r.locked ? "true" : null },
        h("td", {}, open, restricted ? " " : null, restricted, unexported ? " " : null, unexported),
        h("td", {}, r.alias ? r.alias : tx(h("span", { class: "meter" }), r.locked ? "list.hidden" : "list.no_alias")),
        h("td", {}, tx(h("span"), codeKey("status", r.status))),
        h("td", {}, r.intake_date || ""));
    }));
    table.hidden = rows.length === 0;
    more.hidden = rows.length < limit;
    if (rows.length === 0) tx(empty, search.value || statusSel.value ? "list.no_results" : "list.empty");
    else { empty.textContent = ""; delete empty.dataset.i18n; }
    tx(count, "list.count", { count: rows.length });
  };
  const refused = h("div", { id: "list-refused", role: "alert" });
  // A restricted case is listed by number; opening it says who can, in place.
  const openFromList = async (r) => {
    fill(refused);
    try { await caseScreen(r.id); } catch (err) { fill(refused, errorText(err)); }
  };
  search.addEventListener("input", debounce(() => { limit = 100; refresh(); }, 120));
  statusSel.addEventListener("change", () => { limit = 100; refresh(); });

  const drafts = await call("list_drafts");
  const draftBox = drafts.length ? h("section", { class: "card", "aria-labelledby": "drafts-h" },
    h("h2", { id: "drafts-h", i18n: "list.drafts" }),
    h("ul", {}, drafts.map((d) => h("li", {},
      d.alias ? h("strong", {}, d.alias) : tx(h("strong"), "list.no_alias"), " ",
      tx(h("span", { class: "meter" }), "list.draft_item", { time: new Date(d.updated_at).toLocaleString(current()) }), " ",
      h("button", { type: "button", class: "quiet", onclick: async () => intakeScreen({ draftId: d.id, caseId: d.case_id, values: await call("get_draft", { id: d.id }) }), i18n: "list.resume" }), " ",
      discardButton(d.id))))) : null;

  await show("list",
    h("h1", { i18n: "list.title" }),
    draftBox,
    h("div", { class: "row card", role: "search" },
      h("div", { class: "field" }, h("label", { for: "search", i18n: "list.search" }), search, h("p", { class: "help", id: "search-help", i18n: "list.search_help" })),
      h("div", { class: "field" }, h("label", { for: "status-filter", i18n: "list.status_filter" }), statusSel)),
    refused, count, table, empty, more);
  search.setAttribute("aria-describedby", "search-help");
  await refresh();
  await painted();
}

/** Discarding deletes typed work, so it asks first, in the page (no modal dialog). */
function discardButton(id) {
  const box = h("span");
  const ask = h("button", { type: "button", class: "link", i18n: "list.discard", onclick: () => {
    const yes = h("button", { type: "button", class: "quiet", i18n: "list.discard", onclick: async () => { await call("delete_draft", { id }); listScreen(); } });
    const no = h("button", { type: "button", class: "quiet", i18n: "list.resume", onclick: () => fill(box, ask) });
    fill(box, h("span", { role: "alert", i18n: "list.discard_confirm" }), " ", yes, " ", no);
    no.focus();
  } });
  box.append(ask);
  return box;
}

// ---------------------------------------------------------------- intake form

/** A new intake starts today, active, with one potential victim to describe. */
function newIntakeValues() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return {
    intake_date: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
    status: "Active",
    people: [{ role: "PotentialVictim" }],
  };
}

/** New intake (`values` from a draft) or edit of a case (`caseId`). */
async function intakeScreen({ draftId = null, caseId = null, values = null, number = null }) {
  definition = definition || await call("form_definition");
  const isNew = !caseId;
  if (!values) values = isNew ? newIntakeValues() : await call("get_case", { id: caseId });
  // A resumed edit draft holds the form only; the title needs the case number.
  if (!isNew && !number) number = values.case_number || (await call("get_case", { id: caseId })).case_number;
  let draft = draftId;
  const summary = h("div", { role: "alert", id: "form-summary" });
  const draftState = h("p", { class: "meter", id: "draft-state", "aria-live": "polite" });
  const existingNotes = isNew ? [] : (values.notes || []);
  const newNote = (values.notes || []).find((n) => !n.id);
  const note = h("textarea", { id: "f-note", maxlength: 10000 }, newNote?.text || "");
  const noteLang = h("select", { id: "f-note-language" });
  for (const l of ["es", "en"]) noteLang.append(tx(h("option", { value: l }), `code.language.${l}`));
  noteLang.value = newNote?.language || current();

  const collect = () => {
    const v = form.value();
    if (note.value.trim()) v.notes = [{ text: note.value, language: noteLang.value }];
    return v;
  };
  // Once a save starts, no draft may be written: the save deletes the draft, and a
  // late draft write would bring it back as an "unfinished" intake.
  let saving = false;
  let inflight = Promise.resolve();
  const keepDraft = async () => {
    if (saving) return;
    try {
      const write = call("save_draft", { id: draft, caseId, data: collect() });
      inflight = write.catch(() => {});
      draft = await write;
      tx(draftState, "form.draft_saved");
    } catch { /* the next change tries again; the form still holds everything */ }
  };
  const check = debounce(async () => {
    try {
      const r = await call("check_case", { case: collect() });
      form.showIssues(r.issues);
      form.showDerived(r.case);
    } catch { /* a locked or busy store: the save will say so */ }
  }, 250);
  const saveDraftSoon = debounce(keepDraft, 300);
  let dirty = false;
  const form = new IntakeForm(definition, values, {
    onChange: () => { dirty = true; check(); saveDraftSoon(); },
    onType: () => { dirty = true; saveDraftSoon(); },
    hasHelp: has,
  });
  note.addEventListener("input", () => { dirty = true; saveDraftSoon(); });
  noteLang.addEventListener("change", () => { dirty = true; saveDraftSoon(); });

  const save = h("button", { type: "submit", class: "primary", id: "form-save", i18n: isNew ? "form.save" : "form.save_changes" });
  const cancel = h("button", { type: "button", class: "quiet", id: "form-cancel", i18n: "form.cancel" });
  const notesSection = h("section", { class: "card", "aria-labelledby": "s-notes" },
    h("h2", { id: "s-notes", i18n: "section.notes" }),
    existingNotes.length ? h("p", { class: "help" }, tx(h("span"), "case.notes"), ": ", String(existingNotes.length)) : null,
    h("div", { class: "field" }, h("label", { for: "f-note", i18n: isNew ? "form.first_note" : "case.new_note" }), note,
      h("p", { class: "help", id: "f-note-help", i18n: "form.first_note_help" })),
    h("div", { class: "field" }, h("label", { for: "f-note-language", i18n: "form.note_language" }), noteLang));
  note.setAttribute("aria-describedby", "f-note-help");
  // A long form: one step to any section, by mouse or keyboard.
  const jump = tattr(h("nav", { class: "jump", id: "form-sections" }, h("ul", {},
    [...definition.sections.map((sec) => [sec.key, sec.label]), ["notes", "section.notes"]].map(([key, label]) =>
      h("li", {}, h("a", { href: `#s-${key}`, i18n: label, onclick: (e) => {
        e.preventDefault();
        const target = document.getElementById(`s-${key}`);
        target.tabIndex = -1;
        target.focus();
        target.scrollIntoView({ block: "start" });
      } }))))), "aria-label", "form.sections");
  const el = h("form", { novalidate: true, id: "intake-form" }, jump, summary, ...form.els, notesSection,
    h("div", { class: "actions" }, save, cancel, draftState));

  const submit = async () => {
    save.disabled = true;
    saving = true;
    saveDraftSoon.cancel();
    tx(save, "form.saving");
    await inflight; // a draft write already sent must land before the save removes it
    try {
      const saved = isNew
        ? await call("create_case", { case: collect(), draftId: draft })
        : await call("update_case", { id: caseId, case: collect(), draftId: draft });
      dirty = false;
      leaveGuard = null;
      announce("form.saved");
      await caseScreen(saved.id, { saved: true });
    } catch (err) {
      const shown = form.showIssues(err.issues || [], { all: true });
      fill(summary, err.issues?.length
        ? tx(h("p", { class: "summary" }), "form.errors_summary", { count: err.issues.length })
        : h("p", { class: "summary" }, errorText(err)));
      const first = shown[0]?.firstControl?.();
      (first || summary).focus?.();
      saving = false;
      saveDraftSoon();
    } finally {
      save.disabled = false;
      tx(save, isNew ? "form.save" : "form.save_changes");
    }
  };
  el.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  el.addEventListener("keydown", (e) => { if (e.ctrlKey && e.key.toLowerCase() === "s") { e.preventDefault(); submit(); } });
  cancel.addEventListener("click", async () => {
    saving = true;
    saveDraftSoon.cancel();
    if (draft) { await call("delete_draft", { id: draft }); draft = null; }
    dirty = false;
    leaveGuard = null;
    if (isNew) listScreen(); else caseScreen(caseId);
  });

  const title = isNew ? h("h1", { i18n: "form.new_title" }) : h("h1", { i18n: ["form.edit_title", { number: number || values.case_number }] });
  await show("intake", title, el);
  // Leaving by the menu keeps the work as a draft; only "close without saving" drops it.
  leaveGuard = async () => { if (dirty) await keepDraft(); };
}

// ---------------------------------------------------------------- case view

function valueNode(field, v) {
  if (v === undefined || v === null) return null;
  switch (field.kind) {
    case "choice": case "derived": return tx(h("span"), codeKey(field.code_set, v));
    case "multi": return h("span", {}, v.flatMap((c, i) => [i ? ", " : null, tx(h("span"), codeKey(field.code_set, c))]));
    case "yes_no": return typeof v === "boolean" ? tx(h("span"), v ? "form.yes" : "form.no") : tx(h("span"), codeKey("", v));
    default: return h("span", {}, String(v));
  }
}

function valuesList(fields, obj, path) {
  const dl = h("dl", { class: "values" });
  const blocks = [dl];
  for (const f of fields) {
    const v = obj[f.key];
    if (v === undefined) continue;
    const p = path ? `${path}.${f.key}` : f.key;
    if (f.kind === "group") {
      blocks.push(h("h3", { i18n: f.label }), valuesList(f.fields, v, p));
    } else if (f.kind === "list") {
      const itemKey = { people: "form.person_n", needs: "form.need_n", trafficking_events: "form.event_n", consents: "form.consent_n" }[f.key];
      v.forEach((item, i) => blocks.push(h("h3", { i18n: [itemKey, { n: i + 1 }] }), valuesList(f.item, item, `${p}.${i}`)));
    } else if (f.pii && f.key !== "alias" && privacyOn()) {
      // Privacy mode: the alias stays (it is what staff may say aloud), the rest hides.
      dl.append(h("dt", { i18n: f.label }), h("dd", { "data-field": p, class: "hidden-pii" }, tx(h("span"), "privacy.hidden")));
    } else {
      dl.append(h("dt", { i18n: f.label }), h("dd", { "data-field": p }, valueNode(f, v)));
    }
  }
  return h("div", {}, ...blocks);
}

/** A case's values, section by section (only the sections it has values for). */
function caseSections(c, prefix = "v") {
  return definition.sections.filter((s) => !s.managed && s.fields.some((f) => c[f.key] !== undefined)).map((s) =>
    h("section", { class: "card", "aria-labelledby": `${prefix}-${s.key}` }, h("h2", { id: `${prefix}-${s.key}`, i18n: s.label }), valuesList(s.fields, c, "")));
}

/**
 * Print preview: the document alone, with Print and Back. Printing is recorded.
 * In privacy mode personal details stay hidden here too, and the page says so.
 */
async function printScreen({ caseId, document: doc, back, content }) {
  const printBtn = h("button", { type: "button", class: "primary", id: "print-now", i18n: "print.print", onclick: async () => {
    await call("record_print", { caseId, document: doc });
    window.print();
  } });
  await show("print",
    h("div", { class: "row no-print" }, printBtn, h("button", { type: "button", class: "quiet", id: "print-back", i18n: "print.back", onclick: back })),
    privacyOn() ? h("p", { class: "notice no-print", i18n: "print.privacy_on" }) : null,
    h("div", { class: "document", id: "printable" }, ...content));
}

/**
 * The consent explanation, in the survivor's preferred language whatever the UI
 * language (Spanish, with a note for an interpreter, when Amparo does not have
 * theirs), with the decisions recorded and lines to sign.
 */
async function consentDocument(c) {
  const { lang, pref } = clientLanguage(c);
  const tbl = await tableFor(lang);
  const T = (key, args) => tIn(tbl, key, args);
  const code = (set, v) => T(codeKey(set, v));
  const scopes = ["StoreData", "ShareWithReferralOrganisation", "ShareWithLawEnforcement", "DeidentifiedStatistics", "FollowUpContact"];
  const decisions = (c.consents || []).map((k) => h("tr", {},
    h("td", {}, code("consent_scope", k.scope)), h("td", {}, code("consent_decision", k.decision)),
    h("td", {}, k.given_at || ""), h("td", {}, k.expires_at || "")));
  return h("article", { lang, id: "consent-document" },
    h("h1", {}, T("consent.doc.title")),
    pref && pref !== lang ? h("p", { class: "notice" }, T("consent.doc.interpreter", { language: code("language", pref) })) : null,
    h("p", {}, T("consent.doc.intro", { org: status.session.org })),
    h("p", {}, h("strong", {}, T("consent.doc.services"))),
    h("h2", {}, T("consent.doc.choices")),
    h("ul", {}, scopes.map((s) => h("li", {}, h("strong", {}, code("consent_scope", s)), ": ", T(`consent.doc.scope.${s}`)))),
    h("p", {}, T("consent.doc.time_limited")),
    h("p", {}, T("consent.doc.no")),
    h("h2", {}, T("consent.doc.recorded")),
    decisions.length
      ? h("table", {}, h("thead", {}, h("tr", {}, ...["consent.doc.col.scope", "consent.doc.col.decision", "consent.doc.col.given", "consent.doc.col.until"].map((k) => h("th", { scope: "col" }, T(k))))), h("tbody", {}, decisions))
      : h("p", {}, T("consent.doc.none")),
    h("p", { class: "signature" }, T("consent.doc.sign_survivor")),
    h("p", { class: "signature" }, T("consent.doc.sign_staff")));
}

/** The national hotlines, from the directory, for client documents. */
async function hotlines() {
  return (await call("directory_search", { query: {} })).filter((e) => e.hotline);
}

/** Rights information in `lang`, printable (outreach: no case yet). */
async function printRights(lang, back) {
  const doc = await rightsDocument({ lang, pref: null, hotlines: await hotlines(), org: status.session.org });
  await printScreen({ caseId: null, document: "rights", back, content: [doc] });
}

/**
 * A case's referrals: each with its organisation, service, date and status (which
 * can be moved on) and its slip; and a new referral from a need, to an organisation
 * of the directory that offers the service.
 */
async function referralsCard(c, id) {
  const entries = await call("directory_search", { query: {} });
  const byId = Object.fromEntries(entries.map((e) => [e.id, e]));
  const refs = c.referrals || [];
  const statuses = definition.sections.find((s) => s.key === "referrals").fields[0].item.find((f) => f.key === "status").codes;
  const services = definition.sections.find((s) => s.key === "needs").fields[0].item.find((f) => f.key === "service").codes;
  const back = () => caseScreen(id);
  const rows = refs.map((r, i) => {
    const sel = tattr(h("select", { id: `ref-status-${i}` }), "aria-label", "referral.status_of", { name: r.organisation_name });
    for (const code of statuses) sel.append(tx(h("option", { value: code }), codeKey("referral_status", code)));
    sel.value = r.status;
    const msg = h("span", { class: "saved", role: "status", id: `ref-status-msg-${i}` });
    return h("tr", { "data-referral": r.id },
      h("td", {}, r.organisation_name),
      h("td", { i18n: codeKey("need_service", r.service) }),
      h("td", {}, new Date(`${r.date}T12:00:00`).toLocaleDateString(current())),
      h("td", {}, sel, " ", h("button", { type: "button", class: "quiet", id: `ref-status-save-${i}`, i18n: "referral.change_status", onclick: async () => {
        try {
          await call("set_referral_status", { id, referralId: r.id, status: sel.value });
          tx(msg, "referral.status_changed");
        } catch (err) { fill(msg, errorText(err)); }
      } }), msg),
      h("td", {}, h("button", { type: "button", class: "quiet", id: `ref-slip-${i}`, i18n: "referral.print_slip", onclick: async () => {
        const slip = await referralSlip({ ...clientLanguage(c), referral: r, entry: byId[r.organisation], hotlines: entries.filter((e) => e.hotline), org: status.session.org, user: status.session.user_name });
        await printScreen({ caseId: id, document: "referral_slip", back, content: [slip] });
      } })));
  });
  // A new referral: from a need (its service), to an organisation offering it.
  const need = h("select", { id: "ref-need" }, tx(h("option", { value: "" }), "referral.no_need"));
  for (const n of c.needs || []) need.append(h("option", { value: n.id, "data-service": n.service }, `${t(codeKey("need_service", n.service))} · ${t(codeKey("need_status", n.status))}`));
  const service = h("select", { id: "ref-service" });
  for (const code of services) service.append(tx(h("option", { value: code }), codeKey("need_service", code)));
  const org = h("select", { id: "ref-org" });
  const orgNote = h("p", { class: "help", id: "ref-org-note" });
  const offering = () => {
    const offer = entries.filter((e) => (e.services || []).includes(service.value));
    const list = offer.length ? offer : entries;
    fill(org, list.map((e) => h("option", { value: e.id }, [e.name, e.city].filter(Boolean).join(" · "))));
    if (offer.length) { orgNote.textContent = ""; delete orgNote.dataset.i18n; } else tx(orgNote, "referral.none_offer");
  };
  need.addEventListener("change", () => {
    const s = need.selectedOptions[0]?.dataset.service;
    if (s) { service.value = s; offering(); }
  });
  service.addEventListener("change", offering);
  const firstOpen = (c.needs || []).find((n) => n.status === "Identified");
  if (firstOpen) { need.value = firstOpen.id; service.value = firstOpen.service; }
  offering();
  const share = h("input", { type: "checkbox", id: "ref-share" });
  const err = h("div", { id: "ref-error", role: "alert" });
  const create = h("button", { type: "button", class: "primary", id: "ref-create", i18n: "referral.create", onclick: async () => {
    fill(err);
    if (!org.value) return fill(err, tx(h("p", { class: "error" }), "referral.pick_org"));
    try {
      await call("create_referral", { id, referral: { organisation: org.value, service: service.value, shares_pii: share.checked, need: need.value || null } });
      await caseScreen(id, {}, null, "referral.created");
    } catch (e) { fill(err, errorText(e)); }
  } });
  create.setAttribute("aria-describedby", "ref-error");
  const field = (forId, key, control) => h("div", { class: "field" }, h("label", { for: forId, i18n: key }), control);
  return h("section", { class: "card no-print", "aria-labelledby": "ref-h", id: "referrals" },
    h("h2", { id: "ref-h", i18n: "section.referrals" }),
    refs.length
      ? h("table", { id: "ref-table" }, h("thead", {}, h("tr", {}, ...["field.referrals.organisation", "field.referrals.service", "field.referrals.date", "field.referrals.status", "referral.slip_col"].map((k) => h("th", { scope: "col", i18n: k })))), h("tbody", {}, rows))
      : h("p", { class: "meter", i18n: "referral.none" }),
    h("h3", { i18n: "referral.new" }),
    h("div", { class: "row" }, field("ref-need", "referral.from_need", need), field("ref-service", "field.referrals.service", service), field("ref-org", "field.referrals.organisation", org)),
    orgNote,
    h("div", { class: "field" }, h("label", { for: "ref-share", class: "check" }, share, tx(h("span"), "referral.share")), h("p", { class: "help", i18n: "referral.share_help" })),
    create, err);
}

/** The form's definition of the field at `path` (`people.0.alias`), if any. */
function fieldAt(path) {
  let fields = definition.sections.flatMap((s) => s.fields);
  let found = null;
  for (const part of path.split(".").filter((p) => !/^\d+$/.test(p))) {
    found = fields.find((f) => f.key === part);
    if (!found) return null;
    fields = found.item || found.fields || [];
  }
  return found;
}

async function caseScreen(id, { saved = false } = {}, known = null, notice = null) {
  const c = known || await call("get_case", { id });
  const sync = await call("case_sync", { id });
  const conflicts = conflictsSection(id, sync.conflicts, ROLE_RANK[status.session.role] >= ROLE_RANK.Supervisor, {
    label: (path) => fieldAt(path)?.label ?? "conflict.field_unknown",
    value: (path, v) => {
      const f = fieldAt(path);
      // Privacy mode hides conflicting personal details too, as in the values below.
      if (f?.pii && f.key !== "alias" && privacyOn()) return tx(h("span", { class: "hidden-pii" }), "privacy.hidden");
      return f ? valueNode(f, v) : h("span", {}, JSON.stringify(v));
    },
    input: (path, inputId) => {
      const f = fieldAt(path);
      if (!f || !["text", "long_text", "choice", "date", "approx_date", "expiry_date", "integer", "phone", "email", "subdivision"].includes(f.kind)) return null;
      if (f.kind === "choice") {
        const sel = h("select", { id: inputId });
        for (const code of f.codes) sel.append(tx(h("option", { value: code }), codeKey(f.code_set, code)));
        return sel;
      }
      return h("input", { type: "text", id: inputId, autocomplete: "off" });
    },
    done: () => caseScreen(id),
  });
  // Said at once after a change here, and until the next bundle is written.
  const unexported = h("p", { class: "meter", id: "case-unexported", hidden: !sync.unexported, i18n: "sync.case_not_exported" });
  // Status, assignment, restriction: the case as it is, with these changed.
  const saveCase = async (changes) => {
    const edited = { ...c, ...changes };
    delete edited.notes;
    await call("update_case", { id, case: edited, draftId: null });
    Object.assign(c, changes);
    unexported.hidden = false;
  };
  const statusField = definition.sections.flatMap((s) => s.fields).find((f) => f.key === "status");
  const sel = h("select", { id: "case-status" });
  for (const code of statusField.codes) sel.append(tx(h("option", { value: code }), codeKey("status", code)));
  sel.value = c.status;
  const statusMsg = h("p", { class: "saved", role: "status" });
  const changeStatus = h("button", { type: "button", class: "quiet", id: "case-status-save", i18n: "case.change_status", onclick: async () => {
    await saveCase({ status: sel.value });
    tx(statusMsg, "case.status_changed");
  } });
  // Restricting: for supervisors and the person the case is assigned to.
  const mayRestrict = ROLE_RANK[status.session.role] >= ROLE_RANK.Supervisor || c.assigned_to === status.session.user_id;
  const restrict = h("input", { type: "checkbox", id: "case-restricted", checked: !!c.restricted });
  const restrictMsg = h("p", { class: "saved", role: "status" });
  restrict.addEventListener("change", async () => {
    try {
      await saveCase({ restricted: restrict.checked });
      tx(restrictMsg, restrict.checked ? "case.restricted_on" : "case.restricted_off");
    } catch (err) {
      restrict.checked = !!c.restricted;
      fill(restrictMsg, errorText(err));
    }
  });
  // Who the case is assigned to: everyone sees it, supervisors change it.
  const users = await call("list_users");
  const assignedName = users.find((u) => u.id === c.assigned_to)?.name;
  const assignMsg = h("p", { class: "saved", role: "status", id: "case-assigned-msg" });
  let assignControl;
  if (ROLE_RANK[status.session.role] >= ROLE_RANK.Supervisor) {
    // A case is unassigned only when it came so (an import); it can be given, not taken away.
    assignControl = h("select", { id: "case-assigned" }, c.assigned_to ? null : tx(h("option", { value: "" }), "case.unassigned"));
    for (const u of users) assignControl.append(h("option", { value: u.id }, u.name));
    // Users are per laptop: a case assigned on another laptop names someone not here.
    if (c.assigned_to && !assignedName) assignControl.append(tx(h("option", { value: c.assigned_to }), "case.assigned_elsewhere"));
    assignControl.value = c.assigned_to || "";
    assignControl.addEventListener("change", async () => {
      try {
        await saveCase({ assigned_to: assignControl.value });
        tx(assignMsg, "case.assigned_changed");
      } catch (err) { assignControl.value = c.assigned_to || ""; fill(assignMsg, errorText(err)); }
    });
  } else {
    assignControl = h("output", { id: "case-assigned" }, assignedName ?? tx(h("span"), c.assigned_to ? "case.assigned_elsewhere" : "case.unassigned"));
  }
  const restrictBox = h("div", { class: "row card" },
    h("div", { class: "field" }, h(assignControl.tagName === "SELECT" ? "label" : "span", { for: assignControl.tagName === "SELECT" ? "case-assigned" : null, class: "label", i18n: "case.assigned_to" }), assignControl, assignMsg),
    mayRestrict ? h("div", { class: "field" },
      h("label", { for: "case-restricted", class: "check" }, restrict, tx(h("span"), "case.restricted")),
      h("p", { class: "help", i18n: "case.restricted_help" }), restrictMsg) : null);
  const print = h("button", { type: "button", class: "quiet no-print", id: "case-print", i18n: "case.print",
    onclick: () => printScreen({ caseId: id, document: "case", back: () => caseScreen(id, {}, c),
      content: [h("h1", { i18n: ["case.title", { number: c.case_number }] }), ...caseSections(c)] }) });
  // Sharing outside the organisation: only what the survivor's consent allows.
  const shareWith = h("select", { id: "share-with" });
  for (const s of ["referral", "law_enforcement"]) shareWith.append(tx(h("option", { value: s }), `share.with.${s}`));
  const shareErr = h("div", { id: "share-error", role: "alert" });
  const share = h("button", { type: "button", class: "quiet", id: "share-prepare", i18n: "share.prepare", onclick: async () => {
    fill(shareErr);
    try {
      const shared = await call("share_case", { id, sharing: shareWith.value });
      await printScreen({ caseId: id, document: shareWith.value, back: () => caseScreen(id, {}, c), content: [
        h("h1", { i18n: [`share.title.${shareWith.value}`, { number: shared.case_number }] }),
        h("p", { class: "notice", i18n: "share.notice" }), ...caseSections(shared)] });
    } catch (err) { fill(shareErr, errorText(err)); }
  } });
  share.setAttribute("aria-describedby", "share-error");
  const explain = h("button", { type: "button", class: "quiet", id: "consent-explain", i18n: "consent.show", onclick: async () => {
    const doc = await consentDocument(c);
    await printScreen({ caseId: id, document: "consent", back: () => caseScreen(id, {}, c), content: [doc] });
  } });
  const rightsBtn = h("button", { type: "button", class: "quiet", id: "rights-show", i18n: "rights.show", onclick: async () => {
    const doc = await rightsDocument({ ...clientLanguage(c), hotlines: await hotlines(), org: status.session.org });
    await printScreen({ caseId: id, document: "rights", back: () => caseScreen(id, {}, c), content: [doc] });
  } });
  const referrals = await referralsCard(c, id);
  const sharing = h("section", { class: "card no-print", "aria-labelledby": "share-h" },
    h("h2", { id: "share-h", i18n: "share.heading" }),
    h("p", { class: "help", i18n: "share.help" }),
    h("div", { class: "row" }, explain, rightsBtn),
    h("div", { class: "row" }, h("div", { class: "field" }, h("label", { for: "share-with", i18n: "share.with" }), shareWith), share),
    shareErr);

  const primary = (c.people || []).find((p) => p.role === "PotentialVictim");
  const pl = primary?.preferred_language;
  let offer = null;
  if ((pl === "es" || pl === "en") && pl !== current()) {
    const args = { language: t(`lang.${pl}`) };
    offer = h("div", { class: "notice", id: "lang-offer", role: "region", "aria-label": t("lang.toggle") },
      h("p", { i18n: ["lang.offer", args] }),
      h("button", { type: "button", class: "primary", id: "lang-offer-switch", i18n: ["lang.offer_switch", args], onclick: async () => { await switchLanguage(pl); offer.remove(); } }),
      h("button", { type: "button", class: "quiet", i18n: "lang.offer_dismiss", onclick: () => offer.remove() }));
  }

  const notes = h("ol", { class: "notes", id: "notes" }, (c.notes || []).map((n) => h("li", { lang: n.language || null }, n.text,
    h("span", { class: "note-meta", i18n: ["case.note_meta", { author: n.author, time: new Date(n.created_at).toLocaleString() }] }))));
  const noteText = h("textarea", { id: "new-note", maxlength: 10000 });
  const noteLang = h("select", { id: "new-note-language" });
  for (const l of ["es", "en"]) noteLang.append(tx(h("option", { value: l }), `code.language.${l}`));
  noteLang.value = current();
  const noteErr = h("p", { class: "error", id: "new-note-error" });
  noteText.setAttribute("aria-describedby", "new-note-error");
  const noteForm = h("form", { novalidate: true, id: "note-form" },
    h("div", { class: "field" }, h("label", { for: "new-note", i18n: "case.new_note" }), noteText, noteErr),
    h("div", { class: "field" }, h("label", { for: "new-note-language", i18n: "form.note_language" }), noteLang),
    h("button", { type: "submit", class: "quiet", id: "add-note", i18n: "case.add_note" }));
  noteForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    noteErr.textContent = "";
    try {
      const n = await call("add_note", { id, text: noteText.value, language: noteLang.value });
      c.notes = [...(c.notes || []), n];
      notes.append(h("li", { lang: n.language || null }, n.text,
        h("span", { class: "note-meta", i18n: ["case.note_meta", { author: n.author, time: new Date(n.created_at).toLocaleString() }] })));
      noteText.value = "";
      unexported.hidden = false;
      announce("case.note_added");
    } catch (err) {
      const i = err.issues?.[0];
      tx(noteErr, i ? i.error.key : err.key, i ? i.error.args : err.args);
      noteText.focus();
    }
  });

  const shown = show("case",
    h("h1", { i18n: ["case.title", { number: c.case_number }] }),
    saved ? h("p", { class: "saved", i18n: "form.saved" }) : null,
    notice ? h("p", { class: "saved", id: "case-notice", i18n: notice }) : null,
    unexported,
    conflicts,
    offer,
    h("div", { class: "row card" },
      h("div", { class: "field" }, h("label", { for: "case-status", i18n: "field.status" }), sel),
      changeStatus,
      h("button", { type: "button", class: "primary", id: "case-edit", i18n: "case.edit", onclick: () => intakeScreen({ caseId: id, number: c.case_number }) }),
      h("button", { type: "button", class: "quiet", i18n: "case.back", onclick: () => listScreen() }),
      print,
      statusMsg),
    restrictBox,
    ...caseSections(c),
    referrals,
    sharing,
    h("section", { class: "card", "aria-labelledby": "v-notes" }, h("h2", { id: "v-notes", i18n: "case.notes" }),
      (c.notes || []).length ? null : h("p", { class: "meter", i18n: "case.no_notes" }), notes, noteForm));
  redraw = () => caseScreen(id, {}, c);
  await shown;
}

// ---------------------------------------------------------------- start

async function boot() {
  status = await call("app_status");
  await load(status.locale || status.system_locale);
  document.getElementById("lang-toggle").setAttribute("lang", current() === "es" ? "en" : "es");
  if (!status.initialized && !status.locale) return welcomeScreen();
  if (!status.initialized) return setupScreen();
  // A page that starts again while the store is open (it cannot know the idle
  // time or what was shown) locks first: a new page always asks for the passphrase.
  if (status.unlocked) { await call("lock"); status.unlocked = false; }
  return unlockScreen();
}

boot().catch((e) => fill(main, errorText(e)));
retranslate(document);
