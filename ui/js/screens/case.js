// A case: its values section by section, status, assignment and restriction,
// sync conflicts, referrals, sharing and client documents, and notes.
import { call } from "../api.js";
import { h, fill } from "../dom.js";
import { current, t, tx, tattr, codeKey, tableFor, tIn } from "../i18n.js";
import { errorText } from "../fields.js";
import { privacyOn } from "../safety.js";
import { clientLanguage, rightsDocument, referralSlip } from "../documents.js";
import { conflictsSection } from "./sync.js";
import { printScreen, hotlines } from "./print.js";
import { app, announce, show, switchLanguage, go, setRedraw } from "../screen.js";

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
      v.forEach((item, i) => blocks.push(h("h3", { i18n: [f.item_labels?.item ?? f.label, { n: i + 1 }] }), valuesList(f.item, item, `${p}.${i}`)));
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
  return app.definition.sections.filter((s) => !s.managed && s.fields.some((f) => c[f.key] !== undefined)).map((s) =>
    h("section", { class: "card", "aria-labelledby": `${prefix}-${s.key}` }, h("h2", { id: `${prefix}-${s.key}`, i18n: s.label }), valuesList(s.fields, c, "")));
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
  const scopes = fieldAt("consents.scope").codes;
  const decisions = (c.consents || []).map((k) => h("tr", {},
    h("td", {}, code("consent_scope", k.scope)), h("td", {}, code("consent_decision", k.decision)),
    h("td", {}, k.given_at || ""), h("td", {}, k.expires_at || "")));
  return h("article", { lang, id: "consent-document" },
    h("h1", {}, T("consent.doc.title")),
    pref && pref !== lang ? h("p", { class: "notice" }, T("consent.doc.interpreter", { language: code("language", pref) })) : null,
    h("p", {}, T("consent.doc.intro", { org: app.status.session.org })),
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

/**
 * A case's referrals: each with its organisation, service, date and status (which
 * can be moved on) and its slip; and a new referral from a need, to an organisation
 * of the directory that offers the service.
 */
async function referralsCard(c, id) {
  const entries = await call("directory_search", { query: {} });
  const byId = Object.fromEntries(entries.map((e) => [e.id, e]));
  const refs = c.referrals || [];
  const statuses = app.definition.sections.find((s) => s.key === "referrals").fields[0].item.find((f) => f.key === "status").codes;
  const services = app.definition.sections.find((s) => s.key === "needs").fields[0].item.find((f) => f.key === "service").codes;
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
        const slip = await referralSlip({ ...clientLanguage(c), referral: r, entry: byId[r.organisation], hotlines: entries.filter((e) => e.hotline), org: app.status.session.org, user: app.status.session.user_name });
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

/** The form's app.definition of the field at `path` (`people.0.alias`), if any. */
function fieldAt(path) {
  let fields = app.definition.sections.flatMap((s) => s.fields);
  let found = null;
  for (const part of path.split(".").filter((p) => !/^\d+$/.test(p))) {
    found = fields.find((f) => f.key === part);
    if (!found) return null;
    fields = found.item || found.fields || [];
  }
  return found;
}

export async function caseScreen(id, { saved = false } = {}, known = null, notice = null) {
  const c = known || await call("get_case", { id });
  const sync = await call("case_sync", { id });
  // What this person may do here, as the core decides it (it checks every save again).
  const rights = await call("case_rights", { id });
  const conflicts = conflictsSection(id, sync.conflicts, rights.resolve_conflicts, {
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
  // The case's values, shown again from what the core keeps after each change.
  const values = h("div", { id: "case-values" }, ...caseSections(c));
  // Status, assignment, restriction: the case as it is, with these changed.
  const saveCase = async (changes) => {
    const edited = { ...c, ...changes };
    delete edited.notes;
    const kept = await call("update_case", { id, case: edited, draftId: null });
    Object.assign(c, kept);
    fill(values, ...caseSections(c));
    unexported.hidden = false;
  };
  const statusField = app.definition.sections.flatMap((s) => s.fields).find((f) => f.key === "status");
  const sel = h("select", { id: "case-status" });
  for (const code of statusField.codes) sel.append(tx(h("option", { value: code }), codeKey("status", code)));
  sel.value = c.status;
  const statusMsg = h("p", { class: "saved", role: "status" });
  const changeStatus = h("button", { type: "button", class: "quiet", id: "case-status-save", i18n: "case.change_status", onclick: async () => {
    await saveCase({ status: sel.value });
    tx(statusMsg, "case.status_changed");
  } });
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
  if (rights.assign) {
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
    rights.restrict ? h("div", { class: "field" },
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
    const doc = await rightsDocument({ ...clientLanguage(c), hotlines: await hotlines(), org: app.status.session.org });
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

  // A note's time in the UI language's format (12/2 is the 12th of February in Spanish).
  const noteItem = (n) => h("li", { lang: n.language || null }, n.text,
    h("span", { class: "note-meta", i18n: ["case.note_meta", { author: n.author, time: new Date(n.created_at).toLocaleString(current()) }] }));
  const notes = h("ol", { class: "notes", id: "notes" }, (c.notes || []).map(noteItem));
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
      notes.append(noteItem(n));
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
      h("button", { type: "button", class: "primary", id: "case-edit", i18n: "case.edit", onclick: () => go("intake", { caseId: id, number: c.case_number }) }),
      h("button", { type: "button", class: "quiet", i18n: "case.back", onclick: () => go("list") }),
      print,
      statusMsg),
    restrictBox,
    values,
    referrals,
    sharing,
    h("section", { class: "card", "aria-labelledby": "v-notes" }, h("h2", { id: "v-notes", i18n: "case.notes" }),
      (c.notes || []).length ? null : h("p", { class: "meter", i18n: "case.no_notes" }), notes, noteForm));
  setRedraw(() => caseScreen(id, {}, c));
  await shown;
}

