// The case list: search as you type, a status filter, unfinished intakes.
import { call } from "../api.js";
import { h, fill, debounce, painted } from "../dom.js";
import { current, tx, tattr, codeKey } from "../i18n.js";
import { errorText } from "../fields.js";
import { app, show, go } from "../screen.js";

export async function listScreen() {
  const search = h("input", { type: "search", id: "search", autocomplete: "off" });
  const statusSel = h("select", { id: "status-filter" }, tx(h("option", { value: "" }), "list.all_statuses"));
  const statusField = app.definition.sections.flatMap((s) => s.fields).find((f) => f.key === "status");
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
    try { await go("case", r.id); } catch (err) { fill(refused, errorText(err)); }
  };
  search.addEventListener("input", debounce(() => { limit = 100; refresh(); }, 120));
  statusSel.addEventListener("change", () => { limit = 100; refresh(); });

  const drafts = await call("list_drafts");
  const draftBox = drafts.length ? h("section", { class: "card", "aria-labelledby": "drafts-h" },
    h("h2", { id: "drafts-h", i18n: "list.drafts" }),
    h("ul", {}, drafts.map((d) => h("li", {},
      d.alias ? h("strong", {}, d.alias) : tx(h("strong"), "list.no_alias"), " ",
      tx(h("span", { class: "meter" }), "list.draft_item", { time: new Date(d.updated_at).toLocaleString(current()) }), " ",
      h("button", { type: "button", class: "quiet", onclick: async () => go("intake", { draftId: d.id, caseId: d.case_id, values: await call("get_draft", { id: d.id }) }), i18n: "list.resume" }), " ",
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
    const yes = h("button", { type: "button", class: "quiet", i18n: "list.discard", onclick: async () => { await call("delete_draft", { id }); go("list"); } });
    const no = h("button", { type: "button", class: "quiet", i18n: "list.resume", onclick: () => fill(box, ask) });
    fill(box, h("span", { role: "alert", i18n: "list.discard_confirm" }), " ", yes, " ", no);
    no.focus();
  } });
  box.append(ask);
  return box;
}

