// The service directory: organisations on both sides of the border, searched by
// words, service, region and language; added, edited and imported from CSV; and
// the rights information, printed in the language the client reads.
import { call } from "../api.js";
import { h, fill, debounce } from "../dom.js";
import { tx, codeKey } from "../i18n.js";
import { fieldRow, fileImport, showIssues } from "../fields.js";
import { phone } from "../documents.js";

/** A select with "Any" first, then the codes with their labels. */
function anyOf(id, set, codes) {
  const sel = h("select", { id }, tx(h("option", { value: "" }), "directory.any"));
  for (const c of codes) sel.append(tx(h("option", { value: c }), codeKey(set, c)));
  return sel;
}

/** One organisation, as the list shows it. */
function entryCard(e, i, onEdit) {
  // Labels as translated nodes, so a language switch relabels them in place.
  const labels = (set, codes) => (codes || []).flatMap((c, n) => [n ? ", " : null, tx(h("span"), codeKey(set, c))]);
  const sep = (parts) => parts.filter(Boolean).flatMap((p, n) => [n ? ", " : null, p]);
  const place = sep([e.city, e.subdivision, e.country ? tx(h("span"), codeKey("country", e.country)) : null]);
  const line = (key, value, cls) => (Array.isArray(value) ? value.length : value) ? h("p", { class: cls }, tx(h("span", { class: "label" }), key), " ", value) : null;
  const reach = [phone(e.phone), e.text_number ? tx(h("span"), "directory.text", { text: e.text_number }) : null].filter(Boolean);
  return h("li", { class: "card entry", "data-entry": e.id },
    h("h2", {}, e.name, e.hotline ? tx(h("span", { class: "badge" }), "directory.hotline_badge") : null),
    place.length ? h("p", { class: "meter" }, place) : null,
    line("directory.services", labels("need_service", e.services), "entry-services"),
    line("directory.phone", reach.flatMap((p, n) => [n ? " · " : null, p]), "entry-phone"),
    line("directory.languages", labels("language", e.languages)),
    line("directory.hours", e.hours),
    e.notes ? h("p", { class: "entry-notes" }, e.notes) : null,
    h("button", { type: "button", class: "quiet", id: `dir-edit-${i}`, i18n: ["directory.edit", { name: e.name }], onclick: () => onEdit(e) }));
}

/** Checkboxes for a multi-valued field; `.value()` gives the codes checked. */
function checkGroup(id, labelKey, set, codes, chosen) {
  const boxes = codes.map((c) => h("input", { type: "checkbox", value: c, id: `${id}-${c}`, checked: (chosen || []).includes(c) }));
  const err = h("p", { class: "error", id: `${id}-error` });
  const row = h("fieldset", { class: "field checks", id, "aria-describedby": err.id },
    h("legend", { i18n: labelKey }),
    h("div", { class: "check-grid" }, boxes.map((b, i) => h("label", { for: b.id, class: "check" }, b, tx(h("span"), codeKey(set, codes[i]))))),
    err);
  const input = { focus: () => boxes[0]?.focus(), setAttribute: (a, v) => row.setAttribute(a, v), removeAttribute: (a) => row.removeAttribute(a) };
  return { row, err, input, value: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

/** Add (no entry) or edit an organisation. */
async function editScreen(show, definition, entry, back) {
  const def = Object.fromEntries(definition.directory.map((f) => [f.key, f]));
  const e = entry || { country: "MX" };
  const text = (key, attrs = {}) => fieldRow(`dir-f-${key}`, `field.directory.${key}`, h("input", { type: "text", autocomplete: "off", value: e[key] ?? "", ...attrs }),
    key === "phone" ? { help: "directory.phone_help" } : key === "subdivision" ? { help: "help.intake_place.subdivision" } : {});
  const country = h("select", {});
  for (const c of def.country.codes) country.append(tx(h("option", { value: c }), codeKey("country", c)));
  country.value = e.country || "MX";
  const notes = h("textarea", { maxlength: 10000 });
  notes.value = e.notes ?? "";
  const fields = {
    name: text("name", { maxlength: 200 }),
    country: fieldRow("dir-f-country", "field.directory.country", country),
    subdivision: text("subdivision"),
    city: text("city", { maxlength: 200 }),
    phone: text("phone", { inputmode: "tel" }),
    text_number: text("text_number", { inputmode: "numeric", maxlength: 20 }),
    hours: text("hours", { maxlength: 200 }),
    notes: fieldRow("dir-f-notes", "field.directory.notes", notes),
  };
  const services = checkGroup("dir-f-services", "field.directory.services", "need_service", def.services.codes, e.services);
  const languages = checkGroup("dir-f-languages", "field.directory.languages", "language", def.languages.codes, e.languages);
  const failure = h("div", { id: "dir-f-failure" });
  const form = h("form", { novalidate: true, id: "dir-form", class: "card" },
    fields.name.row, h("div", { class: "row" }, fields.country.row, fields.subdivision.row, fields.city.row),
    services.row, h("div", { class: "row" }, fields.phone.row, fields.text_number.row), languages.row, fields.hours.row, fields.notes.row,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary", id: "dir-save", i18n: "directory.save" }),
      h("button", { type: "button", class: "quiet", id: "dir-cancel", i18n: "directory.cancel", onclick: back })),
    failure);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.input.value]));
    value.services = services.value();
    value.languages = languages.value();
    if (e.hotline) value.hotline = true;
    try {
      await call("save_directory_entry", { id: entry?.id ?? null, entry: value });
      back({ saved: value.name });
    } catch (err) {
      // A list's issue ("services.1") goes next to the list.
      const issues = (err.issues || []).map((i) => ({ ...i, path: i.path.split(".")[0] }));
      showIssues({ ...err, issues }, { ...fields, services, languages }, failure);
    }
  });
  await show("directory-edit", h("h1", { i18n: entry ? ["directory.edit_title", { name: entry.name }] : "directory.add_title" }), form);
}

export async function directoryScreen(show, definition, { printRights, saved } = {}) {
  const def = Object.fromEntries(definition.directory.map((f) => [f.key, f]));
  const text = fieldRow("dir-text", "directory.search", h("input", { type: "search", autocomplete: "off" }));
  const service = fieldRow("dir-service", "directory.service", anyOf("dir-service", "need_service", def.services.codes));
  const region = fieldRow("dir-region", "directory.region", anyOf("dir-region", "country", def.country.codes));
  const language = fieldRow("dir-language", "directory.language", anyOf("dir-language", "language", def.languages.codes));
  const results = h("ul", { id: "dir-results", class: "entries", "aria-live": "polite" });
  const count = h("p", { id: "dir-count", class: "meter" });
  const again = () => directoryScreen(show, definition, { printRights });
  const onEdit = (e) => editScreen(show, definition, e, (r) => directoryScreen(show, definition, { printRights, saved: r?.saved }));
  const search = async () => {
    const query = { text: text.input.value, service: service.input.value, region: region.input.value, language: language.input.value };
    const entries = await call("directory_search", { query });
    // States seen in the directory become regions to pick, after the countries.
    for (const s of [...new Set(entries.map((e) => e.subdivision).filter(Boolean))].sort()) {
      if (![...region.input.options].some((o) => o.value === s)) region.input.append(h("option", { value: s }, s));
    }
    fill(results, entries.map((e, i) => entryCard(e, i, onEdit)));
    tx(count, entries.length === 1 ? "directory.count_one" : "directory.count", { count: entries.length });
  };
  const form = h("form", { novalidate: true, id: "dir-search", class: "card row", role: "search" }, text.row, service.row, region.row, language.row);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); search(); });
  const live = debounce(search, 200);
  text.input.addEventListener("input", live);
  for (const f of [service, region, language]) f.input.addEventListener("change", search);

  // Import from a CSV file on this computer: all or nothing, every bad row named.
  const importer = fileImport({ id: "dir-import", label: "directory.import_file", help: "directory.import_help", button: "directory.import",
    command: "import_directory", refused: "directory.import_refused", where: "directory.import_row", imported: "directory.imported",
    issues: (r) => r.rejected.flatMap((row) => row.issues.map((i) => ({ at: { line: row.line, field: i.path || "-" }, error: i.error }))),
    after: search });

  // Rights information for someone without a case yet (outreach): her language.
  const rightsLang = h("select", { id: "rights-language" });
  for (const l of ["es", "en"]) rightsLang.append(tx(h("option", { value: l }), `code.language.${l}`));
  const rights = h("section", { class: "card no-print", "aria-labelledby": "rights-h" },
    h("h2", { id: "rights-h", i18n: "rights.show" }),
    h("p", { class: "help", i18n: "directory.rights_help" }),
    h("div", { class: "row" }, h("div", { class: "field" }, h("label", { for: "rights-language", i18n: "directory.rights_language" }), rightsLang),
      h("button", { type: "button", class: "quiet", id: "rights-print", i18n: "directory.rights_preview", onclick: () => printRights(rightsLang.value, again) })));

  await search();
  await show("directory",
    h("h1", { i18n: "directory.title" }),
    saved ? h("p", { class: "saved", id: "dir-saved", i18n: ["directory.saved", { name: saved }] }) : null,
    form,
    h("div", { class: "row" }, count,
      h("button", { type: "button", class: "primary", id: "dir-add", i18n: "directory.add", onclick: () => editScreen(show, definition, null, (r) => directoryScreen(show, definition, { printRights, saved: r?.saved })) })),
    results,
    h("section", { class: "card no-print", "aria-labelledby": "dir-import-h" },
      h("h2", { id: "dir-import-h", i18n: "directory.import_title" }),
      ...importer),
    rights);
}
