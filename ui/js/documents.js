// Client documents: what a survivor takes with her, in her preferred language
// whatever the UI language (Spanish, with a note for an interpreter, when Amparo
// does not have hers): rights information and the referral slip. Hotline numbers
// come from the directory's national hotlines, never from text written here.
import { h } from "./dom.js";
import { current, codeKey, tableFor, tIn } from "./i18n.js";

/** The language of a case's client documents, and the one she asked for. */
export function clientLanguage(c) {
  const primary = (c?.people || []).find((p) => p.role === "PotentialVictim") || {};
  const pref = primary.preferred_language;
  const lang = pref === "en" || pref === "es" ? pref : pref ? "es" : current();
  return { lang, pref };
}

/** A translator for `lang`, whatever the UI language. */
export async function translator(lang) {
  const tbl = await tableFor(lang);
  const T = (key, args) => tIn(tbl, key, args);
  T.code = (set, v) => T(codeKey(set, v));
  return T;
}

/** +18883737888 → +1 888 373 7888; +528005533000 → +52 800 553 3000. */
export function phone(e164) {
  const m = /^\+(1|52)(\d{3})(\d{3})(\d{4})$/.exec(e164 || "");
  return m ? `+${m[1]} ${m[2]} ${m[3]} ${m[4]}` : (e164 || "");
}

function dateIn(lang, iso) {
  return new Date(`${iso}T12:00:00`).toLocaleDateString(lang === "es" ? "es-MX" : "en-US", { year: "numeric", month: "long", day: "numeric" });
}

function interpreterNote(T, lang, pref) {
  return pref && pref !== lang ? h("p", { class: "notice" }, T("consent.doc.interpreter", { language: T.code("language", pref) })) : null;
}

/** One line per national hotline: who, the number to call, to text, when. */
function hotlineLines(T, hotlines) {
  return h("ul", { class: "hotlines" }, hotlines.map((e) => {
    const args = { name: e.name, phone: phone(e.phone), text: e.text_number };
    return h("li", { "data-entry": e.id }, T(e.text_number ? "rights.doc.hotline_text" : "rights.doc.hotline", args),
      e.hours ? ` (${e.hours})` : "");
  }));
}

/** Rights information: services without conditions, relief, hotlines on both sides. */
export async function rightsDocument({ lang, pref, hotlines, org }) {
  const T = await translator(lang);
  return h("article", { lang, id: "rights-document", class: "client-document" },
    h("h1", {}, T("rights.doc.title")),
    interpreterNote(T, lang, pref),
    h("p", {}, h("strong", {}, T("rights.doc.intro"))),
    h("h2", {}, T("rights.doc.help_h")),
    h("p", {}, T("rights.doc.services")),
    h("p", {}, T("rights.doc.police")),
    h("h2", {}, T("rights.doc.relief_h")),
    h("p", {}, T("rights.doc.relief")),
    h("p", {}, T("rights.doc.mexico")),
    h("h2", {}, T("rights.doc.safety_h")),
    h("ul", {}, ["documents", "debt", "punish", "privacy"].map((k) => h("li", {}, T(`rights.doc.${k}`)))),
    h("h2", {}, T("rights.doc.hotlines_h")),
    hotlineLines(T, hotlines),
    h("p", {}, T("rights.doc.emergency")),
    h("p", { class: "given-by" }, T("rights.doc.given_by", { org })));
}

/** The referral slip: where she is referred, how to reach them, what was shared. */
export async function referralSlip({ lang, pref, referral, entry, hotlines, org, user }) {
  const T = await translator(lang);
  const e = entry || { name: referral.organisation_name };
  const place = [e.city, e.country ? T.code("country", e.country) : null].filter(Boolean).join(", ");
  const line = (key, args) => h("p", {}, T(key, args));
  return h("article", { lang, id: "referral-slip", class: "client-document" },
    h("h1", {}, T("referral.slip.title")),
    interpreterNote(T, lang, pref),
    line("referral.slip.intro", { service: T.code("need_service", referral.service) }),
    h("section", { class: "slip-org" },
      h("h2", { id: "slip-org-name" }, e.name),
      place ? line("referral.slip.where", { place }) : null,
      e.phone ? line("referral.slip.phone", { phone: phone(e.phone) }) : null,
      e.text_number ? line("referral.slip.text", { text: e.text_number }) : null,
      e.hours ? line("referral.slip.hours", { hours: e.hours }) : null,
      e.languages?.length ? line("referral.slip.languages", { languages: e.languages.map((l) => T.code("language", l)).join(", ") }) : null),
    line("referral.slip.date", { date: dateIn(lang, referral.date) }),
    line(referral.shares_pii ? "referral.slip.shared_yes" : "referral.slip.shared_no"),
    h("p", {}, h("strong", {}, T("rights.doc.services"))),
    h("h2", {}, T("rights.doc.hotlines_h")),
    hotlineLines(T, hotlines),
    h("p", { class: "given-by" }, T("referral.slip.from", { org, user })));
}
