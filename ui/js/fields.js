// Labelled form fields with an error line each, and showing a refused form's
// issues next to their fields: shared by every screen with a form.
import { call } from "./api.js";
import { h, fill } from "./dom.js";
import { tx } from "./i18n.js";

/** A message for a failed command, as an alert. */
export function errorText(e) {
  return tx(h("p", { class: "error", role: "alert" }), e.key || "error.store.bad_request", e.args);
}

export function fieldRow(id, key, input, { help, helpArgs } = {}) {
  const err = h("p", { class: "error", id: `${id}-error` });
  const described = [err.id];
  const row = h("div", { class: "field" }, tx(h("label", { for: id }), key), input);
  if (help) { row.append(tx(h("p", { class: "help", id: `${id}-help` }), help, helpArgs)); described.push(`${id}-help`); }
  row.append(err);
  input.id = id;
  input.setAttribute("aria-describedby", described.join(" "));
  return { row, input, err };
}

export function setFieldError(f, key, args) {
  if (key) { tx(f.err, key, args); f.input.setAttribute("aria-invalid", "true"); }
  else { f.err.textContent = ""; delete f.err.dataset.i18n; f.input.removeAttribute("aria-invalid"); }
}

/** Clear the last attempt's messages; false (with a message) if the passphrases differ. */
export function freshAttempt(fields, pass, again, failure) {
  for (const f of [...Object.values(fields), again]) setFieldError(f, null);
  fill(failure);
  if (pass.input.value === again.input.value) return true;
  setFieldError(again, "setup.mismatch");
  again.input.focus();
  return false;
}

/**
 * A refused import: what happened, then one line per problem, "where" (`whereKey`
 * with its arguments) followed by the message. `items`: [{ at: {...}, error }].
 */
export function importIssues(listId, refusedKey, whereKey, items) {
  return [tx(h("p", { class: "error", role: "alert" }), refusedKey, { count: items.length }),
    h("ul", { id: listId }, items.map((i) => h("li", {}, tx(h("span"), whereKey, i.at), " ", tx(h("span"), i.error.key, i.error.args))))];
}

/**
 * Import from a file on this computer (a path typed or pasted): the field, its
 * button and the outcome. `command` takes `{ file }`; `issues(r)` lists its refusals
 * as for importIssues; on success `{ count }` of `r.imported` is said, then `after()`.
 * Ids: `${id}` (button), `${id}-file`, `${id}-result`, `${id}-issues`.
 */
export function fileImport({ id, label, help, button, command, issues, refused, where, imported, after, notice }) {
  const file = fieldRow(`${id}-file`, label, h("input", { type: "text", autocomplete: "off", spellcheck: "false" }), { help });
  const result = h("div", { id: `${id}-result`, role: "status" });
  const run = h("button", { type: "button", class: "quiet", id, i18n: button, onclick: async () => {
    fill(result);
    try {
      const r = await call(command, { file: file.input.value });
      setFieldError(file, null);
      const items = issues(r);
      // Something to know either way (e.g. columns that were not read).
      const extra = notice?.(r);
      if (items.length) fill(result, importIssues(`${id}-issues`, refused, where, items), extra);
      else {
        fill(result, tx(h("p", { class: "saved" }), imported, { count: r.imported }), extra);
        await after?.();
      }
    } catch (err) { showIssues(err, { file }, result); }
  } });
  return [h("div", { class: "row" }, file.row, run), result];
}

/** A refused form: each issue next to its field, anything else in `failure`; focus the first. */
export function showIssues(err, fields, failure) {
  for (const f of Object.values(fields)) setFieldError(f, null);
  fill(failure);
  const issues = err.issues || [];
  for (const i of issues) if (fields[i.path]) setFieldError(fields[i.path], i.error.key, i.error.args);
  if (!issues.length) fill(failure, errorText(err));
  (issues.length ? fields[issues[0].path]?.input : null)?.focus();
}
