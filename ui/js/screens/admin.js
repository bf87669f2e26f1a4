// Users, settings, the audit trail and one's own passphrase. The core decides who
// may do what; these screens only offer what the role allows and show its answers.
import { call } from "../api.js";
import { h, fill } from "../dom.js";
import { t, tx, current } from "../i18n.js";
import { errorText, fieldRow, setFieldError, freshAttempt, showIssues } from "../fields.js";


/** The roles, as the core lists them, lowest first. */
function roleSelect(id, value, roles) {
  const sel = h("select", { id });
  for (const r of roles) sel.append(tx(h("option", { value: r }), `user.role.${r}`));
  sel.value = value;
  return sel;
}

function passphrasePair(prefix, min) {
  const pass = fieldRow(`${prefix}-passphrase`, "admin.passphrase", h("input", { type: "password", autocomplete: "new-password" }), { help: "setup.passphrase_help", helpArgs: { min } });
  const again = fieldRow(`${prefix}-passphrase2`, "setup.passphrase_confirm", h("input", { type: "password", autocomplete: "new-password" }));
  return { pass, again };
}

export async function adminScreen(show, status) {
  const users = await call("list_users");
  const policy = await call("get_policy");
  const msg = h("div", { role: "status", id: "admin-msg" });
  const body = h("tbody");
  for (const u of users) {
    const sel = roleSelect(`role-${u.id}`, u.role, status.rights.roles);
    sel.setAttribute("aria-label", t("admin.role_of", { name: u.name }));
    sel.addEventListener("change", async () => {
      try { await call("set_role", { name: u.name, role: sel.value }); tx(msg, "admin.role_changed", { name: u.name }); }
      catch (err) { sel.value = u.role; fill(msg, errorText(err)); }
    });
    const slot = h("span");
    const remove = h("button", { type: "button", class: "quiet", i18n: "admin.remove", onclick: () => {
      const yes = h("button", { type: "button", class: "quiet", i18n: "admin.remove_yes", onclick: async () => {
        try { await call("remove_user", { name: u.name }); adminScreen(show, status); }
        catch (err) { fill(slot, errorText(err)); }
      } });
      const no = h("button", { type: "button", class: "quiet", i18n: "form.cancel", onclick: () => fill(slot, reset, " ", remove) });
      fill(slot, h("span", { role: "alert", i18n: ["admin.remove_confirm", { name: u.name }] }), " ", yes, " ", no);
      no.focus();
    } });
    remove.setAttribute("aria-label", t("admin.remove_named", { name: u.name }));
    // A forgotten passphrase: the administrator sets a new one, given in person.
    const reset = h("button", { type: "button", class: "quiet", i18n: "admin.reset", onclick: () => {
      const pp = passphrasePair(`reset-${u.id}`, status.passphrase_min);
      const out = h("div", { role: "status" });
      const form = h("form", { novalidate: true, class: "inline-form" }, pp.pass.row, pp.again.row, out,
        h("button", { type: "submit", class: "primary", i18n: "admin.reset_save" }),
        h("button", { type: "button", class: "quiet", i18n: "form.cancel", onclick: () => fill(slot, reset, " ", remove) }));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        if (!freshAttempt({ passphrase: pp.pass }, pp.pass, pp.again, out)) return;
        try {
          await call("set_passphrase", { name: u.name, passphrase: pp.pass.input.value });
          fill(slot, reset, " ", remove);
          tx(msg, "admin.reset_done", { name: u.name });
        } catch (err) { showIssues(err, { passphrase: pp.pass }, out); }
      });
      fill(slot, form);
      pp.pass.input.focus();
    } });
    reset.setAttribute("aria-label", t("admin.reset_named", { name: u.name }));
    slot.append(reset, " ", remove);
    const roleCell = h("td", {}, sel);
    // A row changed by hand: its role is not signed and gives a caseworker's rights.
    if (!u.signed) {
      const warn = h("p", { class: "field-error", id: `role-unsigned-${u.id}`,
        i18n: ["admin.role_unsigned", { role: t(`user.role.${u.claimed_role ?? "Caseworker"}`) }] });
      sel.setAttribute("aria-describedby", warn.id);
      roleCell.append(warn);
    }
    body.append(h("tr", {}, h("td", {}, u.name), roleCell, h("td", {}, slot)));
  }
  const table = h("table", { id: "users-table" },
    h("caption", { class: "visually-hidden", i18n: "admin.users" }),
    h("thead", {}, h("tr", {}, ...["admin.name", "admin.role", "admin.actions"].map((k) => h("th", { scope: "col", i18n: k })))),
    body);

  const name = fieldRow("new-user-name", "admin.name", h("input", { type: "text", autocomplete: "off" }));
  const role = fieldRow("new-user-role", "admin.role", roleSelect("new-user-role", "Caseworker", status.rights.roles));
  const pp = passphrasePair("new-user", status.passphrase_min);
  const addMsg = h("div");
  const add = h("form", { novalidate: true, id: "add-user" }, name.row, role.row, pp.pass.row, pp.again.row,
    h("p", { class: "help", i18n: "admin.add_help" }), addMsg,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "add-user-submit", i18n: "admin.add" })));
  add.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fields = { name, role, passphrase: pp.pass };
    if (!freshAttempt(fields, pp.pass, pp.again, addMsg)) return;
    try {
      await call("add_user", { name: name.input.value, role: role.input.value, passphrase: pp.pass.input.value });
      await adminScreen(show, status);
      tx(document.getElementById("admin-msg"), "admin.added", { name: name.input.value.trim() });
    } catch (err) { showIssues(err, fields, addMsg); }
  });

  const idle = fieldRow("policy-idle", "admin.idle_minutes", h("input", { type: "number", min: 1, max: 60, value: policy.idle_lock_minutes }), { help: "admin.idle_help" });
  const keep = fieldRow("policy-retention", "admin.retention_months", h("input", { type: "number", min: 1, max: 1200, value: policy.retention_months ?? "" }), { help: "admin.retention_help" });
  const policyMsg = h("div", { role: "status" });
  const settings = h("form", { novalidate: true, id: "policy-form" }, idle.row, keep.row, policyMsg,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "policy-save", i18n: "admin.save_settings" })));
  settings.addEventListener("submit", async (e) => {
    e.preventDefault();
    const months = keep.input.value.trim();
    try {
      await call("set_policy", { policy: { idle_lock_minutes: Number(idle.input.value), retention_months: months ? Number(months) : null } });
      for (const f of [idle, keep]) setFieldError(f, null);
      tx(policyMsg, "admin.settings_saved");
    } catch (err) { showIssues(err, { idle_lock_minutes: idle, retention_months: keep }, policyMsg); }
  });

  // Retention: see how many closed cases are past their time, then remove them.
  const purgeOut = h("div", { id: "purge-result", role: "status" });
  const purgeCheck = h("button", { type: "button", class: "quiet", id: "purge-check", i18n: "purge.check", onclick: async () => {
    try {
      const n = await call("purge_preview");
      if (!n) { fill(purgeOut, tx(h("p"), "purge.none")); return; }
      const yes = h("button", { type: "button", class: "quiet", id: "purge-confirm", i18n: ["purge.confirm", { count: n }], onclick: async () => {
        try {
          const r = await call("purge");
          fill(purgeOut, tx(h("p", { class: "saved" }), "purge.done", { count: r.cases }));
        } catch (err) { fill(purgeOut, errorText(err)); }
      } });
      fill(purgeOut, tx(h("p", { role: "alert" }), "purge.found", { count: n }), yes);
      yes.focus();
    } catch (err) { fill(purgeOut, errorText(err)); }
  } });

  // A new recovery key: for a lost or exposed one, or a store set up before they existed.
  const renewOut = h("div", { id: "renew-result" });
  const renew = h("button", { type: "button", class: "quiet", id: "renew-recovery", i18n: "recovery.renew", onclick: () => {
    const yes = h("button", { type: "button", class: "quiet", id: "renew-confirm", i18n: "recovery.renew_yes", onclick: async () => {
      try {
        const key = await call("renew_recovery_key");
        fill(renewOut, h("p", { i18n: "recovery.intro" }), h("p", { class: "recovery-key", id: "renewed-key", lang: "en" }, key),
          h("p", { class: "notice", i18n: "recovery.warning" }));
      } catch (err) { fill(renewOut, errorText(err)); }
    } });
    fill(renewOut, h("p", { role: "alert", i18n: "recovery.renew_confirm" }), yes);
    yes.focus();
  } });

  await show("admin", h("h1", { i18n: "admin.title" }), msg,
    h("section", { class: "card", "aria-labelledby": "users-h" }, h("h2", { id: "users-h", i18n: "admin.users" }), table),
    h("section", { class: "card", "aria-labelledby": "add-h" }, h("h2", { id: "add-h", i18n: "admin.add_title" }), add),
    h("section", { class: "card", "aria-labelledby": "policy-h" }, h("h2", { id: "policy-h", i18n: "admin.settings" }), settings),
    h("section", { class: "card", "aria-labelledby": "purge-h" }, h("h2", { id: "purge-h", i18n: "purge.heading" }),
      h("p", { class: "help", i18n: "purge.help" }), purgeCheck, purgeOut),
    h("section", { class: "card", "aria-labelledby": "renew-h" }, h("h2", { id: "renew-h", i18n: "recovery.renew_heading" }),
      h("p", { class: "help", i18n: "recovery.renew_help" }), renew, renewOut));
}

export async function accountScreen(show, status) {
  const pp = passphrasePair("account", status.passphrase_min);
  const msg = h("div", { role: "status" });
  const form = h("form", { novalidate: true, id: "account-form" }, pp.pass.row, pp.again.row, msg,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "account-save", i18n: "account.save" })));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!freshAttempt({ passphrase: pp.pass }, pp.pass, pp.again, msg)) return;
    try {
      await call("set_passphrase", { name: null, passphrase: pp.pass.input.value });
      pp.pass.input.value = pp.again.input.value = "";
      tx(msg, "account.saved");
    } catch (err) { showIssues(err, { passphrase: pp.pass }, msg); }
  });
  await show("account", h("h1", { i18n: "account.title" }),
    h("div", { class: "card narrow" }, h("p", { class: "intro", i18n: ["account.intro", { name: status.session.user_name }] }), form));
}

export async function auditScreen(show, status) {
  const users = await call("list_users").catch(() => []);
  const action = h("select", { id: "audit-action" }, tx(h("option", { value: "" }), "audit.all_actions"));
  for (const a of status.rights.audit_actions) action.append(tx(h("option", { value: a }), `audit.action.${a}`));
  const user = h("select", { id: "audit-user" }, tx(h("option", { value: "" }), "audit.all_users"));
  for (const u of users) user.append(h("option", { value: u.id }, u.name));
  const number = h("input", { type: "text", id: "audit-case", autocomplete: "off", spellcheck: "false" });
  const from = h("input", { type: "text", id: "audit-from", placeholder: t("form.date_placeholder"), inputmode: "numeric" });
  const to = h("input", { type: "text", id: "audit-to", placeholder: t("form.date_placeholder"), inputmode: "numeric" });
  const body = h("tbody");
  const empty = h("p", { id: "audit-empty" });
  const verifyOut = h("div", { id: "audit-verify-result", role: "status" });
  const cell = (label, input) => h("div", { class: "field" }, h("label", { for: input.id, i18n: label }), input);
  const refresh = async () => {
    const rows = await call("audit_list", { query: {
      action: action.value || null, user_id: user.value || null, case_number: number.value.trim() || null,
      from: from.value.trim() || null, to: to.value.trim() || null, limit: 200 } });
    fill(body, rows.map((r) => h("tr", {},
      h("td", {}, new Date(r.at).toLocaleString(current())),
      h("td", {}, r.user_name ?? tx(h("span", { class: "meter" }), "audit.nobody")),
      h("td", {}, tx(h("span"), `audit.action.${r.action}`)),
      h("td", {}, r.case_number ?? (r.case_id ? tx(h("span", { class: "meter" }), "audit.case_gone") : "")),
      h("td", {}, `${r.device_code ?? r.device_id.slice(0, 8)} #${r.number}`))));
    if (rows.length) { empty.textContent = ""; delete empty.dataset.i18n; } else tx(empty, "audit.empty");
  };
  const filters = h("form", { class: "row card", id: "audit-filters", novalidate: true },
    cell("audit.action", action), cell("audit.user", user), cell("audit.case", number), cell("audit.from", from), cell("audit.to", to),
    h("button", { type: "submit", class: "quiet", i18n: "audit.filter" }));
  filters.addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  const verify = h("button", { type: "button", class: "quiet", id: "audit-verify", i18n: "audit.verify_button", onclick: async () => {
    try {
      const v = await call("audit_verify");
      fill(verifyOut, v.problem
        ? tx(h("p", { class: "error", role: "alert" }), `audit.verify.${v.problem.kind}`, { number: v.problem.number, device: v.problem.device })
        : tx(h("p", { class: "saved" }), "audit.verify.ok", { entries: v.entries, devices: v.devices }));
    } catch (err) { fill(verifyOut, errorText(err)); }
  } });
  const table = h("table", { id: "audit-table" },
    h("caption", { class: "visually-hidden", i18n: "audit.title" }),
    h("thead", {}, h("tr", {}, ...["audit.when", "audit.user", "audit.action", "audit.case", "audit.entry"].map((k) => h("th", { scope: "col", i18n: k })))),
    body);
  await show("audit", h("h1", { i18n: "audit.title" }), h("p", { class: "intro", i18n: "audit.intro" }),
    h("div", { class: "row" }, verify, verifyOut), filters, table, empty);
  await refresh();
}
