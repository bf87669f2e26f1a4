// The intake form: a new intake (or a resumed draft) and the edit of a case. The
// form keeps a draft as it is typed; the core says what is valid.
import { call } from "../api.js";
import { h, fill, debounce } from "../dom.js";
import { current, tx, tattr, has } from "../i18n.js";
import { IntakeForm } from "../form.js";
import { errorText } from "../fields.js";
import { app, announce, show, go, setLeaveGuard } from "../screen.js";

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
export async function intakeScreen({ draftId = null, caseId = null, values = null, number = null }) {
  app.definition = app.definition || await call("form_definition");
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
  const form = new IntakeForm(app.definition, values, {
    hidden: await call("hidden_fields", { case: values }),
    whichHidden: (v) => call("hidden_fields", { case: v }),
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
    // Only the sections the form shows (referrals are made from the case view).
    [...app.definition.sections.filter((sec) => !sec.managed).map((sec) => [sec.key, sec.label]), ["notes", "section.notes"]].map(([key, label]) =>
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
      setLeaveGuard(null);
      announce("form.saved");
      await go("case", saved.id, { saved: true });
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
  const discard = async () => {
    saving = true;
    saveDraftSoon.cancel();
    if (draft) { await call("delete_draft", { id: draft }); draft = null; }
    dirty = false;
    setLeaveGuard(null);
    if (isNew) go("list"); else go("case", caseId);
  };
  // Nothing typed is lost in one click: with work in the form, closing asks first
  // (keeping on is the default, and leaving by the menu keeps a draft).
  cancel.addEventListener("click", () => {
    if (!dirty && !draft) { discard(); return; }
    const keep = h("button", { type: "button", class: "primary", id: "form-keep", i18n: "form.keep_editing" });
    const drop = h("button", { type: "button", class: "quiet", id: "form-discard", i18n: "form.discard", onclick: discard });
    const ask = h("div", { class: "confirm", id: "form-discard-ask", role: "alertdialog", "aria-labelledby": "form-discard-q" },
      h("p", { id: "form-discard-q", i18n: "form.discard_question" }), keep, drop);
    keep.addEventListener("click", () => { ask.replaceWith(cancel); cancel.focus(); });
    cancel.replaceWith(ask);
    keep.focus();
  });

  const title = isNew ? h("h1", { i18n: "form.new_title" }) : h("h1", { i18n: ["form.edit_title", { number: number || values.case_number }] });
  await show("intake", title, el);
  // Leaving by the menu keeps the work as a draft; only "close without saving" drops it.
  setLeaveGuard(async () => { if (dirty) await keepDraft(); });
}

