// The intake form, drawn from the definition the core sends (sections, fields,
// kinds, codes, PII marks) and the fields the core hides (skip logic). This file
// decides nothing: it collects what was typed, and shows the issues the core
// returns next to the fields they name.
import { h } from "./dom.js";
import { tx, tattr, codeKey, t, current } from "./i18n.js";


const domId = (prefix, path) => `${prefix}-${path.replace(/\./g, "-")}`;

/**
 * The "identifying" mark beside a label: shown, but not part of the field's
 * name (a screen reader said "Aliasidentificable"); the control is described by
 * it instead.
 */
function piiMark(path) {
  return tx(h("span", { class: "pii", id: domId("p", path), "aria-hidden": "true" }), "form.pii");
}

/** Label, PII mark, help and error slot around a control. */
function wrap(field, path, control, { labelFor = true } = {}) {
  // Derived values all share one explanation of where they come from.
  const helpKey = field.kind === "derived" ? "form.derived" : field.help;
  const id = domId("f", path);
  const helpId = domId("h", path);
  const errId = domId("e", path);
  const label = h(labelFor ? "label" : "span", labelFor ? { for: id } : { class: "label", id: domId("l", path) });
  label.append(tx(h("span"), field.label));
  if (field.pii) label.append(piiMark(path));
  const help = tx(h("p", { class: "help", id: helpId }), helpKey);
  const err = h("p", { class: "error", id: errId });
  const described = field.pii ? [domId("p", path), errId] : [errId];
  // Help texts are optional: a key missing from the table shows nothing.
  const hasHelp = wrap.hasHelp(helpKey);
  if (hasHelp) described.push(helpId);
  else help.hidden = true;
  control.setAttribute?.("aria-describedby", described.join(" "));
  // Privacy mode masks what is marked PII, except the alias (what staff say aloud).
  const masked = field.pii && field.key !== "alias" ? "true" : null;
  return { el: h("div", { class: "field", "data-path": path, "data-pii": masked }, label, control, help, err), err };
}
wrap.hasHelp = () => false;

class Leaf {
  constructor(field, value, path, ctx) {
    this.field = field;
    this.path = path;
    this.ctx = ctx;
    this.shown = true;
    this.control = this.build(value);
    const w = wrap(field, path, this.control.focusable || this.control, { labelFor: !this.control.group });
    this.el = w.el;
    this.errEl = w.err;
    if (this.control.group) {
      // A group of checkboxes is a fieldset with a legend.
      const legend = h("legend");
      legend.append(tx(h("span"), field.label));
      if (field.pii) legend.append(piiMark(path));
      const help = w.el.querySelector(".help");
      const described = [field.pii ? domId("p", path) : null, this.errEl.id, help.hidden ? null : help.id];
      this.el = h("fieldset", { class: "checks field", "data-path": path, "aria-describedby": described.filter(Boolean).join(" ") },
        legend, this.control, help, this.errEl);
    }
    ctx.register(path, this);
    const mark = () => { this.touched = true; ctx.changed(); };
    this.el.addEventListener("change", mark);
    this.el.addEventListener("input", () => ctx.typed());
  }

  build(value) {
    const f = this.field;
    const id = domId("f", this.path);
    switch (f.kind) {
      case "long_text":
        return h("textarea", { id, maxlength: f.max }, value ?? "");
      case "choice":
      case "yes_no": {
        const select = h("select", { id });
        select.append(tx(h("option", { value: "" }), "form.choose"));
        const opts = f.kind === "yes_no"
          ? [["true", "form.yes"], ["false", "form.no"], ...this.ctx.nonAnswers.map((c) => [c, codeKey("", c)])]
          : [...ordered(f), ...(f.non_answers ? this.ctx.nonAnswers : [])].map((c) => [c, codeKey(f.code_set, c)]);
        for (const [v, key] of opts) select.append(tx(h("option", { value: v }), key));
        select.value = value === undefined || value === null ? "" : String(value);
        return select;
      }
      case "multi": {
        const chosen = Array.isArray(value) ? value : [];
        const box = h("div", { class: "options" });
        const option = (c, checked) => {
          const cid = `${id}-${c}`;
          return h("label", { for: cid },
            h("input", { type: "checkbox", id: cid, value: c, checked }),
            tx(h("span"), codeKey(f.code_set, c)));
        };
        // A long list (every country) offers its common codes, and those the case
        // holds; any other is added from the list below the boxes.
        const offered = isLong(f) ? f.codes.filter((c, i) => i < f.common || chosen.includes(c)) : f.codes;
        for (const c of offered) box.append(option(c, chosen.includes(c)));
        const answers = this.ctx.nonAnswers.map((c) => option(c, chosen.includes(c)));
        box.append(...answers);
        // (Every country is the one long list: hence its label.)
        if (isLong(f)) {
          const more = h("select", { id: `${id}-more` });
          tattr(more, "aria-label", "form.add_country");
          more.append(tx(h("option", { value: "" }), "form.add_country"));
          for (const c of ordered(f).slice(f.common)) more.append(tx(h("option", { value: c }), codeKey(f.code_set, c)));
          more.addEventListener("change", () => {
            const c = more.value;
            more.value = "";
            if (!c) return;
            const existing = box.querySelector(`input[value="${c}"]`);
            if (existing) existing.checked = true;
            else box.insertBefore(option(c, true), answers[0] ?? null);
            (existing ?? box.querySelector(`input[value="${c}"]`)).focus();
            box.dispatchEvent(new Event("change", { bubbles: true }));
          });
          box.append(h("div", { class: "more" }, more));
        }
        box.group = true;
        return box;
      }
      case "derived": {
        const out = h("output", { id });
        this.setDerived(value, out);
        return out;
      }
      default: {
        const attrs = { type: "text", id, autocomplete: "off", spellcheck: "false" };
        if (f.kind === "integer" || f.kind === "phone") attrs.inputmode = f.kind === "phone" ? "tel" : "numeric";
        if (f.kind === "date" || f.kind === "expiry_date") attrs.inputmode = "numeric";
        if (f.kind === "text") attrs.maxlength = f.max;
        const input = h("input", { ...attrs, value: value ?? "" });
        if (f.kind === "date" || f.kind === "expiry_date") tattr(input, "placeholder", "form.date_placeholder");
        return input;
      }
    }
  }

  setDerived(value, out = this.control) {
    if (value) tx(out, codeKey(this.field.code_set, value));
    else tx(out, "case.not_recorded");
  }

  value() {
    const f = this.field;
    const c = this.control;
    switch (f.kind) {
      case "multi": {
        const v = [...c.querySelectorAll("input:checked")].map((i) => i.value);
        return v.length ? v : undefined;
      }
      case "yes_no":
        return c.value === "" ? undefined : c.value === "true" ? true : c.value === "false" ? false : c.value;
      case "derived":
        return undefined;
      case "integer": {
        const s = c.value.trim();
        if (s === "") return undefined;
        return /^-?\d{1,4}$/.test(s) ? Number(s) : s;
      }
      default:
        return c.value === "" ? undefined : c.value;
    }
  }

  firstControl() {
    return this.control.group ? this.control.querySelector("input") : this.control;
  }

  setError(issue) {
    if (issue) tx(this.errEl, issue.error.key, issue.error.args); else this.errEl.textContent = "";
    if (!issue) delete this.errEl.dataset.i18n;
    const targets = this.control.group ? [...this.control.querySelectorAll("input")] : [this.control];
    for (const t of targets) if (issue) t.setAttribute("aria-invalid", "true"); else t.removeAttribute("aria-invalid");
  }

  refresh() {}
}

/** A list the form offers only the first (common) codes of as choices. */
const isLong = (f) => f.common < f.codes.length;

/**
 * A code list in the order it is offered: a long one (every country) has its
 * common codes first, then the rest by their names in the UI's language.
 */
function ordered(f) {
  if (!isLong(f)) return f.codes;
  const name = (c) => t(codeKey(f.code_set, c));
  const rest = f.codes.slice(f.common).sort((a, b) => name(a).localeCompare(name(b), current()));
  return [...f.codes.slice(0, f.common), ...rest];
}

/** The fields of one object (the case, a group, a list item). */
class Obj {
  constructor(fields, values, path, ctx) {
    values = values || {};
    this.ctx = ctx;
    this.nodes = fields.map((f) => makeNode(f, values[f.key], path ? `${path}.${f.key}` : f.key, ctx));
    this.els = this.nodes.map((n) => n.el);
  }
  all() {
    const o = {};
    for (const n of this.nodes) { const v = n.value(); if (v !== undefined) o[n.field.key] = v; }
    return o;
  }
  value() {
    const o = {};
    for (const n of this.nodes) {
      if (!n.shown) continue;
      const v = n.value();
      if (v !== undefined) o[n.field.key] = v;
    }
    return o;
  }
  refresh() {
    // Skip logic is the core's: `ctx.hidden` holds the paths it hides.
    for (const n of this.nodes) {
      n.shown = !this.ctx.hidden.has(n.path);
      n.el.hidden = !n.shown;
      n.refresh();
    }
  }
}

class Group {
  constructor(field, value, path, ctx) {
    this.field = field;
    this.path = path;
    this.shown = true;
    this.obj = new Obj(field.fields, value, path, ctx);
    this.errEl = h("p", { class: "error", id: domId("e", path) });
    this.el = h("fieldset", { class: "group", "data-path": path }, tx(h("legend"), field.label), this.errEl, ...this.obj.els);
    ctx.register(path, this);
  }
  value() { const v = this.obj.value(); return Object.keys(v).length ? v : undefined; }
  refresh() { this.obj.refresh(); }
  setError(issue) { if (issue) tx(this.errEl, issue.error.key, issue.error.args); else this.errEl.textContent = ""; }
  firstControl() { return this.el.querySelector("input, select, textarea"); }
}

class List {
  constructor(field, value, path, ctx) {
    this.field = field;
    this.path = path;
    this.ctx = ctx;
    this.shown = true;
    this.items = [];
    this.box = h("div", { class: "items" });
    this.errEl = h("p", { class: "error", id: domId("e", path) });
    this.add = tx(h("button", { type: "button", class: "quiet", id: domId("add", path), onclick: () => this.addItem() }), field.item_labels.add);
    this.el = h("div", { class: "list", role: "group", "data-path": path, "aria-labelledby": domId("l", path) },
      tx(h("h3", { id: domId("l", path) }), field.label), this.errEl, this.box, this.add);
    ctx.register(path, this);
    this.rebuild(Array.isArray(value) ? value : []);
  }
  rebuild(values) {
    this.ctx.unregisterUnder(this.path + ".");
    const { item: itemKey, remove: removeKey } = this.field.item_labels;
    this.items = values.map((v, i) => {
      const p = `${this.path}.${i}`;
      const obj = new Obj(this.field.item, v, p, this.ctx);
      obj.id = v && v.id;
      const n = { n: i + 1 };
      const remove = tattr(tx(h("button", { type: "button", class: "link", id: domId("rm", p), onclick: () => this.removeItem(i) }), removeKey, n), "aria-label", removeKey, n);
      obj.el = h("fieldset", { class: "item", "data-path": p }, tx(h("legend"), itemKey, n), ...obj.els, remove);
      return obj;
    });
    this.box.replaceChildren(...this.items.map((o) => o.el));
    this.refresh();
  }
  current() { return this.items.map((o) => { const v = o.all(); if (o.id) v.id = o.id; return v; }); }
  addItem() {
    const values = this.current();
    // A new person starts as a potential victim only when there is none yet.
    const first = this.field.key === "people" && !values.some((p) => p.role === "PotentialVictim")
      ? { role: "PotentialVictim" } : {};
    values.push(first);
    this.rebuild(values);
    this.ctx.changed();
    const last = this.items[this.items.length - 1];
    last.el.querySelector("input, select, textarea")?.focus();
  }
  removeItem(i) {
    const values = this.current();
    values.splice(i, 1);
    this.rebuild(values);
    this.ctx.changed();
    this.add.focus();
  }
  value() {
    const v = this.items.map((o) => { const x = o.value(); if (o.id) x.id = o.id; return x; })
      .filter((x) => Object.keys(x).some((k) => k !== "id"));
    return v.length ? v : undefined;
  }
  refresh() { for (const o of this.items) o.refresh(); }
  setError(issue) { if (issue) tx(this.errEl, issue.error.key, issue.error.args); else this.errEl.textContent = ""; }
  firstControl() { return this.el.querySelector("input, select, textarea, button"); }
}

function makeNode(field, value, path, ctx) {
  if (field.kind === "group") return new Group(field, value, path, ctx);
  if (field.kind === "list") return new List(field, value, path, ctx);
  return new Leaf(field, value, path, ctx);
}

/**
 * The whole form. `onChange` is called after a change (for drafts and live
 * checks); `onType` on every keystroke (for drafts).
 */
export class IntakeForm {
  constructor(definition, values, { onChange, onType, hasHelp, hidden, whichHidden }) {
    wrap.hasHelp = hasHelp;
    this.byPath = new Map();
    this.whichHidden = whichHidden;
    this.asked = 0;
    const ctx = this.ctx = {
      // What the core hides for the values the form opened with.
      hidden: new Set(hidden),
      register: (p, n) => this.byPath.set(p, n),
      unregisterUnder: (prefix) => { for (const k of [...this.byPath.keys()]) if (k.startsWith(prefix)) this.byPath.delete(k); },
      changed: () => { this.askHidden(); onChange?.(); },
      typed: () => onType?.(),
      // "Unknown" and "Declined to answer": every question takes them (the core's list).
      nonAnswers: definition.non_answers,
    };
    values = values || {};
    this.sections = definition.sections.filter((s) => !s.managed).map((s) => {
      const obj = new Obj(s.fields, values, "", ctx);
      const id = `s-${s.key}`;
      return { key: s.key, obj, el: h("section", { class: "card", "aria-labelledby": id }, tx(h("h2", { id }), s.label), ...obj.els) };
    });
    this.root = { refresh: () => { for (const s of this.sections) s.obj.refresh(); } };
    this.root.refresh();
    this.els = this.sections.map((s) => s.el);
  }

  value() {
    return Object.assign({}, ...this.sections.map((s) => s.obj.value()));
  }

  /** Ask the core which fields to hide now; only the latest answer is applied. */
  async askHidden() {
    const asked = ++this.asked;
    try {
      const hidden = await this.whichHidden(Object.assign({}, ...this.sections.map((s) => s.obj.all())));
      if (asked !== this.asked) return;
      this.ctx.hidden = new Set(hidden);
      this.root.refresh();
    } catch { /* the fields stay as they were; the save keeps only what the core shows */ }
  }

  /** Show the core's issues. Unless `all`, only on fields the user has touched. */
  showIssues(issues, { all = false } = {}) {
    for (const n of this.byPath.values()) n.setError?.(null);
    const shown = [];
    for (const issue of issues || []) {
      let p = issue.path;
      let node = this.byPath.get(p);
      while (!node && p.includes(".")) { p = p.slice(0, p.lastIndexOf(".")); node = this.byPath.get(p); }
      if (!node) continue;
      if (!all && !node.touched) continue;
      node.setError(issue);
      shown.push(node);
    }
    return shown;
  }

  /** Fill in what the core derived (majority) from a checked case. */
  showDerived(prepared) {
    (prepared.people || []).forEach((p, i) => {
      for (const key of ["majority_at_intake", "majority_at_exploitation"]) {
        const n = this.byPath.get(`people.${i}.${key}`);
        if (n) n.setDerived(p[key]);
      }
    });
  }
}
