// The fact sheet: how many cases, potential victims, venues, demographics (cases
// involving, non-cumulative), nationality and recruiter relation for a period and
// filters, as bar charts (SVG) each followed by the same numbers as a table, in the
// UI language and printable. The core counts; this screen only draws its answer.
import { call } from "../api.js";
import { h, fill } from "../dom.js";
import { tx, tattr, codeKey, current } from "../i18n.js";
import { fieldRow, fileImport, setFieldError, showIssues } from "../fields.js";

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element (h() makes HTML ones). */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A count as the core gives it: a number, or "<k" when shareable and small. */
const shown = (n) => (typeof n === "number" ? n.toLocaleString(current()) : String(n));

/**
 * One chart: a bar per row, its label above it (labels can be long in Spanish) and
 * its count after it, scaled to the largest exact count; a suppressed count has no
 * bar, only "<k". The table after it says the same in text.
 */
export function barChart(id, titleKey, rows) {
  const width = 640, rowH = 40, barH = 16, barMax = 520;
  const max = Math.max(1, ...rows.map((r) => (typeof r.cases === "number" ? r.cases : 0)));
  const titleId = `${id}-title`;
  const svg = s("svg", { id: `${id}-chart`, class: "chart", viewBox: `0 0 ${width} ${Math.max(rowH, rows.length * rowH)}`, role: "img", "aria-labelledby": titleId, "aria-describedby": `${id}-table` });
  rows.forEach((r, i) => {
    const y = i * rowH;
    const w = typeof r.cases === "number" ? Math.round((r.cases / max) * barMax) : 0;
    const label = s("text", { x: 0, y: y + 14, class: "chart-label" });
    tx(label, r.key, r.args);
    svg.append(label,
      s("rect", { x: 0, y: y + 19, width: Math.max(w, r.cases === 0 ? 0 : 2), height: barH, class: typeof r.cases === "number" ? "chart-bar" : "chart-bar suppressed" }),
      s("text", { x: w + 6, y: y + 32, class: "chart-value" }, shown(r.cases)));
  });
  const table = h("table", { id: `${id}-table`, class: "chart-table" },
    h("caption", { class: "visually-hidden", i18n: titleKey }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", i18n: "report.col.item" }), h("th", { scope: "col", i18n: "report.col.cases" }))),
    h("tbody", {}, rows.map((r) => h("tr", {}, h("th", { scope: "row", i18n: [r.key, r.args] }), h("td", {}, shown(r.cases))))));
  return h("figure", { class: "card report-figure", id },
    h("h2", { id: titleId, i18n: titleKey }),
    rows.length ? svg : h("p", { class: "meter", i18n: "report.none" }),
    rows.length ? table : null);
}

/** The sheet's sections, for the charts. */
function figures(sheet) {
  const ranked = (set, list) => list.map((c) => ({ key: codeKey(set, c.code), cases: c.cases }));
  const d = sheet.demographics;
  // Genders as the sheet groups them (the transgender and non-conforming codes
  // together); age groups by their codes.
  const demo = [["female", "report.group_female"], ["male", "report.group_male"],
    ["transgender_non_conforming", "report.group_transgender_non_conforming"],
    ["minor", codeKey("majority", "Minor")], ["adult", codeKey("majority", "Adult")]]
    .map(([k, key]) => ({ key, cases: d[k] }));
  const demographics = barChart("report-demographics", "report.demographics", demo);
  demographics.append(h("p", { class: "footnote", id: "report-footnote", i18n: "report.footnote" }));
  return [
    barChart("report-venues", "report.venues", ranked("venue", sheet.venues)),
    demographics,
    barChart("report-nationality", "report.nationality", ranked("country", sheet.nationality)),
    barChart("report-recruiter", "report.recruiter_relation", ranked("recruiter_relation", sheet.recruiter_relation)),
  ];
}

/** The period in words; dates as ISO 8601, which reads the same in both languages. */
function periodLine(q) {
  if (q.from && q.to) return ["report.period.between", { from: q.from, to: q.to }];
  if (q.from) return ["report.period.from", { from: q.from }];
  if (q.to) return ["report.period.to", { to: q.to }];
  return ["report.period.all"];
}

/**
 * Identified cases in the HTCDS columns for another organisation's system (those
 * of the period and filters above, and only with the survivor's consent in force),
 * saved in the same folder; which of our fields fills each column; and cases from
 * an HTCDS spreadsheet, every bad cell named.
 */
function htcdsSection(folder, queryOf, fields) {
  const format = h("select", { id: "htcds-format" }, h("option", { value: "csv" }, "CSV"), h("option", { value: "json" }, "JSON"));
  const outcome = h("div", { id: "htcds-result", role: "status" });
  const save = h("button", { type: "button", class: "quiet", id: "htcds-save", i18n: "htcds.save", onclick: async () => {
    fill(outcome);
    try {
      const r = await call("htcds_export", { query: queryOf(false), folder: folder.input.value, format: format.value });
      for (const f of [folder, ...Object.values(fields)]) setFieldError(f, null);
      fill(outcome, h("p", { class: "saved", i18n: ["htcds.saved", { file: r.file, cases: r.cases, left_out: r.left_out }] }));
    } catch (err) { showIssues(err, { ...fields, folder }, outcome); }
  } });
  // Which of our fields fills each column, in the UI's language (the list is the core's).
  const rows = h("tbody");
  call("htcds_columns").then((columns) => fill(rows, columns.map((c) => h("tr", {},
    h("th", { scope: "row" }, h("code", {}, c.column)),
    h("td", {}, c.fields.flatMap((key, i) => [i ? ", " : null, h("span", { i18n: key })]))))));
  const reference = h("details", { id: "htcds-columns" },
    h("summary", { i18n: "htcds.columns" }),
    h("p", { class: "help", i18n: "htcds.columns_help" }),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col", i18n: "htcds.column" }), h("th", { scope: "col", i18n: "htcds.from_fields" }))), rows));
  const importer = fileImport({ id: "htcds-import", label: "htcds.import_file", help: "htcds.import_help", button: "htcds.import",
    command: "htcds_import", refused: "htcds.import_refused", where: "htcds.import_cell", imported: "htcds.imported",
    issues: (r) => r.rejected.map((c) => ({ at: { line: c.line, column: c.column || "-" }, error: c.error })),
    notice: (r) => r.ignored.length
      ? h("p", { class: "help", id: "htcds-import-ignored", i18n: ["htcds.ignored", { columns: r.ignored.join(", ") }] })
      : null });
  return h("section", { class: "card no-print", "aria-labelledby": "htcds-h" },
    h("h2", { id: "htcds-h", i18n: "htcds.title" }),
    h("p", { class: "help", i18n: "htcds.help" }),
    h("div", { class: "row" }, h("div", { class: "field" }, h("label", { for: "htcds-format", i18n: "htcds.format" }), format), save),
    outcome,
    reference,
    h("h3", { i18n: "htcds.import_title" }),
    ...importer);
}

export async function reportScreen(show, definition, isSupervisor) {
  const fieldDef = (key) => definition.sections.flatMap((x) => x.fields).find((f) => f.key === key);
  const picker = (key) => {
    const sel = h("select", {}, tx(h("option", { value: "" }), "report.any"));
    for (const code of fieldDef(key).codes) sel.append(tx(h("option", { value: code }), codeKey(fieldDef(key).code_set, code)));
    return sel;
  };
  const fields = {
    from: fieldRow("report-from", "report.from", h("input", { type: "date" })),
    to: fieldRow("report-to", "report.to", h("input", { type: "date" })),
    status: fieldRow("report-status", "field.status", picker("status")),
    intake_channel: fieldRow("report-channel", "field.intake_channel", picker("intake_channel")),
    trafficking_type: fieldRow("report-type", "field.trafficking_type", picker("trafficking_type")),
    k: fieldRow("report-k", "report.k", h("input", { type: "number", min: 2, max: 1000, step: 1, value: 11, inputmode: "numeric" }), { help: "report.k_help" }),
  };
  const shareable = h("input", { type: "checkbox", id: "report-shareable" });
  const failure = h("div", { id: "report-failure" });
  const result = h("div", { id: "report-result", "aria-live": "polite" });
  const form = h("form", { novalidate: true, id: "report-form", class: "card no-print" },
    h("div", { class: "row" }, fields.from.row, fields.to.row),
    h("div", { class: "row" }, fields.status.row, fields.intake_channel.row, fields.trafficking_type.row),
    h("div", { class: "field" }, h("label", { for: "report-shareable", class: "check" }, shareable, tx(h("span"), "report.shareable")),
      h("p", { class: "help", i18n: "report.shareable_help" })),
    fields.k.row,
    h("button", { type: "submit", class: "primary", id: "report-run", i18n: "report.run" }),
    failure);

  /** The form as a query; k only when asked for (shareable, or records for partners). */
  const queryOf = (withK) => {
    const v = (f) => f.input.value || null;
    const query = { from: v(fields.from), to: v(fields.to), status: v(fields.status), intake_channel: v(fields.intake_channel), trafficking_type: v(fields.trafficking_type) };
    if (withK) {
      const k = Number(fields.k.input.value);
      // Not a whole number: sent as 0, which the core refuses next to the field.
      query.k = Number.isInteger(k) && k > 0 ? k : 0;
    }
    return query;
  };
  const run = async () => {
    const query = queryOf(shareable.checked);
    try {
      const sheet = await call("fact_sheet", { query });
      for (const f of Object.values(fields)) setFieldError(f, null);
      fill(failure);
      const printBtn = h("button", { type: "button", class: "quiet no-print", id: "report-print", i18n: "report.print", onclick: async () => {
        await call("record_print", { caseId: null, document: "report" });
        window.print();
      } });
      fill(result,
        h("section", { class: "card", "aria-labelledby": "report-summary-h" },
          h("h2", { id: "report-summary-h", i18n: "report.summary" }),
          h("p", { id: "report-period", i18n: periodLine(query) }),
          sheet.k ? h("p", { class: "notice", id: "report-suppressed", i18n: ["report.suppressed_note", { k: sheet.k, below: sheet.k - 1 }] }) : null,
          h("dl", { class: "report-totals" },
            h("dt", { i18n: "report.cases" }), h("dd", { id: "report-cases" }, shown(sheet.cases)),
            h("dt", { i18n: "report.potential_victims" }), h("dd", { id: "report-victims" }, shown(sheet.potential_victims))),
          printBtn),
        ...figures(sheet));
    } catch (err) {
      showIssues(err, fields, failure);
    }
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); run(); });

  // Records for partners: supervisors, into a folder (a USB stick, a shared drive).
  let partners = null;
  let htcds = null;
  if (isSupervisor) {
    const folder = fieldRow("deid-folder", "deid.folder", h("input", { type: "text", autocomplete: "off", spellcheck: "false", value: (await call("sync_state")).folder ?? "" }), { help: "deid.folder_help" });
    const outcome = h("div", { id: "deid-result", role: "status" });
    const save = h("button", { type: "button", class: "quiet", id: "deid-save", i18n: "deid.save", onclick: async () => {
      fill(outcome);
      save.disabled = true;
      try {
        const r = await call("deidentified_export", { query: queryOf(true), folder: folder.input.value });
        for (const f of [folder, ...Object.values(fields)]) setFieldError(f, null);
        fill(outcome, h("p", { class: "saved", i18n: ["deid.saved", { file: r.file, records: r.records, dropped: r.dropped, declined: r.declined, k: r.k }] }));
      } catch (err) { showIssues(err, { ...fields, folder }, outcome); }
      finally { save.disabled = false; }
    } });
    partners = h("section", { class: "card no-print", "aria-labelledby": "deid-h" },
      h("h2", { id: "deid-h", i18n: "deid.title" }),
      h("p", { class: "help", i18n: "deid.help" }),
      folder.row, save, outcome);
    htcds = htcdsSection(folder, queryOf, fields);
  }
  // The whole record at first, drawn before the screen shows (nothing moves under a click).
  await run();
  await show("report", h("h1", { i18n: "report.title" }), h("p", { class: "intro no-print", i18n: "report.intro" }), form, partners, htcds, result);
  tattr(result, "aria-label", "report.title");
}
