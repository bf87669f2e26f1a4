// Print preview and the client documents printed from several screens.
import { call } from "../api.js";
import { h } from "../dom.js";
import { privacyOn } from "../safety.js";
import { rightsDocument } from "../documents.js";
import { app, show } from "../screen.js";

export /**
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

export /** The national hotlines, from the directory, for client documents. */
async function hotlines() {
  return (await call("directory_search", { query: {} })).filter((e) => e.hotline);
}

/** Rights information in `lang`, printable (outreach: no case yet). */
export async function printRights(lang, back) {
  const doc = await rightsDocument({ lang, pref: null, hotlines: await hotlines(), org: app.status.session.org });
  await printScreen({ caseId: null, document: "rights", back, content: [doc] });
}

