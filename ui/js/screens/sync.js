// Sync: the folder bundles travel through (a USB stick or a shared folder), writing
// and reading bundles with a progress bar and a summary, what each other laptop last
// sent, and (administrators) inviting a new laptop. The core decides everything;
// this screen shows its answers.
import { call } from "../api.js";
import { h, fill } from "../dom.js";
import { t, tx, current } from "../i18n.js";
import { errorText, fieldRow, setFieldError, showIssues } from "../fields.js";
import { when as shortWhen, refreshHubState } from "../hubstate.js";

const when = (iso) => new Date(iso).toLocaleString(current());

export async function syncScreen(show, status, isAdmin) {
  const state = await call("sync_state");
  const folder = fieldRow("sync-folder", "sync.folder", h("input", { type: "text", autocomplete: "off", spellcheck: "false", value: state.folder ?? "" }), { help: "sync.folder_help" });
  const folderMsg = h("div", { role: "status" });
  const folderForm = h("form", { novalidate: true, id: "sync-folder-form", class: "row" }, folder.row,
    h("button", { type: "submit", class: "quiet", id: "sync-folder-save", i18n: "sync.folder_save" }), folderMsg);
  folderForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await call("set_sync_folder", { folder: folder.input.value });
      setFieldError(folder, null);
      tx(folderMsg, "sync.folder_saved");
    } catch (err) { showIssues(err, { folder }, folderMsg); }
  });

  const out = h("div", { id: "sync-result", role: "status" });
  const bar = h("progress", { id: "sync-progress", max: 1, value: 0, hidden: true });
  bar.setAttribute("aria-label", t("sync.progress_label"));
  const busy = (on) => { for (const b of [exportBtn, importBtn]) b.disabled = on; bar.hidden = !on; };
  const exportBtn = h("button", { type: "button", class: "primary", id: "sync-export", i18n: "sync.export", onclick: async () => {
    busy(true);
    try {
      const r = await call("sync_export");
      fill(out, tx(h("p", { class: "saved" }), "sync.exported", { changes: r.summary.changes, cases: r.summary.cases, file: r.file }));
      await refreshStatus();
    } catch (err) { fill(out, errorText(err)); }
    finally { busy(false); }
  } });
  const importBtn = h("button", { type: "button", class: "primary", id: "sync-import", i18n: "sync.import", onclick: async () => {
    busy(true);
    fill(out, tx(h("p"), "sync.importing"));
    // The import holds the store; its progress is read apart, a few times a second.
    let polling = true;
    const poll = async () => {
      while (polling) {
        const p = await call("sync_progress");
        if (p.files) { bar.max = p.files; bar.value = p.file + (p.total ? p.cases / p.total : 0); }
        await new Promise((r) => setTimeout(r, 150));
      }
    };
    const polled = poll();
    try {
      const results = await call("sync_import");
      polling = false;
      await polled;
      fill(out, results.length ? h("ul", { id: "sync-files" }, results.map(fileLine)) : tx(h("p"), "sync.no_bundles"));
      await refreshStatus();
    } catch (err) { polling = false; fill(out, errorText(err)); }
    finally { busy(false); }
  } });

  const mine = h("p", { id: "sync-mine" });
  const peersBody = h("tbody");
  const peersEmpty = h("p", { class: "meter", id: "sync-no-peers" });
  const peersTable = h("table", { id: "sync-peers" },
    h("caption", { class: "visually-hidden", i18n: "sync.peers" }),
    h("thead", {}, h("tr", {}, ...["sync.peer", "sync.peer_written", "sync.peer_imported", "sync.peer_changes"].map((k) => h("th", { scope: "col", i18n: k })))),
    peersBody);
  const refreshStatus = async (s) => {
    const st = s || (await call("sync_state")).status;
    tx(mine, "sync.mine", { device: st.device_code, count: st.unexported_changes });
    fill(peersBody, st.peers.map((p) => h("tr", {}, h("td", {}, p.device_code), h("td", {}, when(p.bundle_written_at)),
      h("td", {}, when(p.imported_at)), h("td", {}, String(p.changes_held)))));
    peersTable.hidden = !st.peers.length;
    if (st.peers.length) { peersEmpty.textContent = ""; delete peersEmpty.dataset.i18n; } else tx(peersEmpty, "sync.no_peers");
  };

  let invite = null;
  if (isAdmin) {
    const inviteOut = h("div", { id: "invite-result", role: "status" });
    invite = h("section", { class: "card", "aria-labelledby": "invite-h" }, h("h2", { id: "invite-h", i18n: "sync.invite_heading" }),
      h("p", { class: "help", i18n: "sync.invite_help" }),
      h("button", { type: "button", class: "quiet", id: "sync-invite", i18n: "sync.invite", onclick: async () => {
        try {
          const inv = await call("org_invite");
          fill(inviteOut, tx(h("p"), "sync.invited", { file: inv.file }),
            h("p", { class: "recovery-key", id: "invite-passphrase", lang: "en" }, inv.passphrase),
            h("p", { class: "notice", i18n: "sync.invite_warning" }));
        } catch (err) { fill(inviteOut, errorText(err)); }
      } }), inviteOut);
  }

  const hub = await hubCard(isAdmin, () => syncScreen(show, status, isAdmin));

  // Filled before the screen shows: text arriving after it would move the buttons
  // under a pointer (or a test driver) about to click them.
  await refreshStatus(state.status);
  // A connected hub comes first (it is how this laptop syncs); before there is
  // one, the folder does, and connecting to a hub comes after it.
  const connected = hub.dataset.connected === "true";
  await show("sync", h("h1", { i18n: "sync.title" }), h("p", { class: "intro", i18n: "sync.intro" }), connected ? hub : null,
    h("section", { class: "card", "aria-labelledby": "sync-h" }, h("h2", { id: "sync-h", i18n: "sync.exchange" }),
      folderForm, mine, h("div", { class: "row" }, exportBtn, importBtn), bar, out),
    connected ? null : hub,
    h("section", { class: "card", "aria-labelledby": "peers-h" }, h("h2", { id: "peers-h", i18n: "sync.peers" }), peersTable, peersEmpty),
    invite);
}

/**
 * The hub: where it is and *Sync now* (the app also syncs by itself), the laptops
 * enrolled and, for administrators, revoking one; or, before there is a hub,
 * connecting to one (administrators). `again()` draws the screen anew.
 */
async function hubCard(isAdmin, again) {
  const st = await call("hub_status");
  const out = h("div", { id: "hub-result", role: "status" });
  if (!st.connected) {
    if (!isAdmin) {
      return h("section", { class: "card", "aria-labelledby": "hub-h" }, h("h2", { id: "hub-h", i18n: "sync.hub_heading" }),
        h("p", { id: "hub-none", i18n: "sync.hub_none" }));
    }
    const fields = {
      url: fieldRow("hub-url", "sync.hub_url", h("input", { type: "url", autocomplete: "off", spellcheck: "false", placeholder: "https://" }), { help: "sync.hub_url_help" }),
      fingerprint: fieldRow("hub-fingerprint", "sync.hub_fingerprint", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }), { help: "sync.hub_fingerprint_help" }),
      setup_code: fieldRow("hub-setup-code", "sync.hub_setup_code", h("input", { type: "text", autocomplete: "off", spellcheck: "false" })),
    };
    const form = h("form", { novalidate: true, id: "hub-connect-form" }, ...Object.values(fields).map((f) => f.row),
      h("button", { type: "submit", class: "primary", id: "hub-connect", i18n: "sync.hub_connect" }), out);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      for (const f of Object.values(fields)) setFieldError(f, null);
      try {
        await call("hub_connect", { url: fields.url.input.value, fingerprint: fields.fingerprint.input.value, setupCode: fields.setup_code.input.value });
        await again();
      } catch (err) { showIssues(err, fields, out); }
    });
    return h("section", { class: "card", "aria-labelledby": "hub-h" }, h("h2", { id: "hub-h", i18n: "sync.hub_heading" }),
      h("p", { class: "help", i18n: "sync.hub_connect_help" }), form);
  }

  const bar = h("progress", { id: "hub-sync-progress", max: 1, value: 0, hidden: true });
  bar.setAttribute("aria-label", t("sync.progress_label"));
  const summary = (r) => tx(h("p", { class: "saved" }), "sync.hub_synced", {
    pushed: r.pushed_batches.toLocaleString(current()), pulled: r.pulled_batches.toLocaleString(current()),
    new: r.imported.new_cases.toLocaleString(current()), updated: r.imported.updated_cases.toLocaleString(current()),
    conflicts: r.imported.conflicts.toLocaleString(current()) });
  const showState = (s) => {
    if (s.error) fill(out, errorText(s.error));
    else if (s.last) fill(out, summary(s.last));
  };
  showState(st);
  const now = h("button", { type: "button", class: "primary", id: "hub-sync-now", i18n: "sync.hub_sync_now", onclick: async () => {
    now.disabled = true;
    bar.hidden = false;
    fill(out, tx(h("p"), "hub.state.syncing"));
    let polling = true;
    const polled = (async () => {
      while (polling) {
        const s = await call("hub_status");
        if (s.total) { bar.max = s.total; bar.value = s.done; }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try { fill(out, summary(await call("sync_now"))); }
    catch (err) { fill(out, errorText(err)); }
    finally { polling = false; await polled; now.disabled = false; bar.hidden = true; refreshHubState(); }
  } });

  const devicesOut = h("div", { id: "hub-devices-result", role: "status" });
  const body = h("tbody");
  const table = h("table", { id: "hub-devices" }, h("caption", { class: "visually-hidden", i18n: "sync.hub_devices" }),
    h("thead", {}, h("tr", {}, ...["sync.peer", "sync.hub_user", "sync.hub_enrolled", "sync.hub_last_seen", "sync.hub_device_state", ...(isAdmin ? ["sync.hub_actions"] : [])]
      .map((k) => h("th", { scope: "col", i18n: k })))), body);
  const date = (s) => (s ? shortWhen(new Date(s * 1000).toISOString()) : t("hub.state.never_seen"));
  const revokeButton = (d) => {
    const cell = h("td");
    const ask = h("button", { type: "button", class: "quiet", "data-revoke": d.code, i18n: "sync.hub_revoke", onclick: () => {
      const yes = h("button", { type: "button", class: "primary", "data-confirm-revoke": d.code, i18n: "sync.hub_revoke_yes", onclick: async () => {
        yes.disabled = true;
        try {
          const code = await call("hub_revoke", { code: d.code });
          fill(devicesOut, tx(h("p", { class: "saved" }), "sync.hub_revoked", { code }));
          await listDevices();
        } catch (err) { fill(devicesOut, errorText(err)); yes.disabled = false; }
      } });
      const no = h("button", { type: "button", class: "quiet", i18n: "sync.hub_revoke_cancel", onclick: () => { fill(cell, ask); ask.focus(); } });
      fill(cell, tx(h("p", { role: "alert" }), "sync.hub_revoke_confirm", { code: d.code }), yes, " ", no);
      no.focus();
    } });
    return fill(cell, ask);
  };
  const listDevices = async () => {
    try {
      const list = await call("hub_devices");
      fill(body, list.map((d) => h("tr", {}, h("td", {}, d.code, d.me ? [" ", tx(h("span", { class: "meter" }), "sync.hub_this_laptop")] : null),
        h("td", {}, d.user ?? "-"), h("td", {}, date(d.enrolled_at)), h("td", {}, date(d.last_seen)),
        tx(h("td"), d.revoked_at ? "sync.hub_device_revoked" : "sync.hub_device_active", d.revoked_at ? { time: date(d.revoked_at) } : {}),
        isAdmin ? (d.revoked_at || d.me ? h("td") : revokeButton(d)) : null)));
      table.hidden = false;
    } catch (err) {
      table.hidden = true;
      // Said once: the last sync's refusal is already shown above.
      if (err.key !== st.error?.key) fill(devicesOut, errorText(err));
    }
  };
  await listDevices();
  return h("section", { class: "card", "aria-labelledby": "hub-h", "data-connected": "true" }, h("h2", { id: "hub-h", i18n: "sync.hub_heading" }),
    tx(h("p", { id: "hub-where" }), "sync.hub_connected_to", { url: st.url, fingerprint: st.fingerprint }),
    h("div", { class: "row" }, now), bar, out,
    h("h3", { i18n: "sync.hub_devices" }), table, devicesOut);
}

/** One bundle file's outcome. */
function fileLine(r) {
  if (r.error) return h("li", {}, h("strong", {}, r.file), " ", tx(h("span", { class: "error", role: "alert" }), r.error[0], r.error[1]));
  if (r.already_here) return h("li", {}, h("strong", {}, r.file), " ", tx(h("span", { class: "meter" }), "sync.already_here"));
  const s = r.summary;
  return h("li", {}, h("strong", {}, r.file), " ", tx(h("span"), "sync.imported", {
    device: s.device_code, new: s.new_cases, updated: s.updated_cases, removed: s.removed_cases, conflicts: s.conflicts }),
    s.directory_entries ? [" ", tx(h("span"), "sync.directory_updated", { count: s.directory_entries })] : null);
}

/**
 * A case's open conflicts: each field's values with who and when; supervisors keep
 * one or type another. `label(path)` names the field, `value(path, v)` shows a value,
 * `input(path)` gives a control to type a new one (or null).
 */
export function conflictsSection(id, conflicts, mayResolve, { label, value, input, done }) {
  if (!conflicts.length) return null;
  const items = conflicts.map((c, n) => {
    const msg = h("div", { role: "status" });
    const resolve = async (args) => {
      try { await call("resolve_conflict", { id, field: c.field, ...args }); await done(); }
      catch (err) { showIssues(err, {}, msg); }
    };
    // A held value (the form here does not accept it) is never the one shown,
    // and cannot be kept as it is.
    const shown = c.values.findIndex((v) => !v.held);
    const values = h("ul", { class: "conflict-values" }, c.values.map((v, i) => h("li", {},
      h("span", { class: "conflict-value" }, value(c.path, v.value)), " ",
      tx(h("span", { class: "meter" }), v.held ? "conflict.held_by" : i === shown ? "conflict.shown_by" : "conflict.other_by",
        { device: v.device_code, user: v.user ?? "-", time: when(v.at) }), " ",
      mayResolve && !v.held ? h("button", { type: "button", class: "quiet", "data-choice": v.choice, i18n: "conflict.keep",
        "aria-label": t("conflict.keep_named", { n: i + 1 }), onclick: () => resolve({ keep: v.choice }) }) : null)));
    let typed = null;
    const control = mayResolve ? input(c.path, `conflict-${n}-new`) : null;
    if (control) {
      typed = h("form", { novalidate: true, class: "row" },
        h("div", { class: "field" }, h("label", { for: control.id, i18n: "conflict.new_value" }), control),
        h("button", { type: "submit", class: "quiet", i18n: "conflict.save_new" }));
      typed.addEventListener("submit", (e) => { e.preventDefault(); resolve({ value: control.value }); });
    }
    return h("li", { class: "conflict", "data-field": c.path }, h("h3", { i18n: label(c.path) }), values, typed, msg);
  });
  return h("section", { class: "card notice", id: "conflicts", "aria-labelledby": "conflicts-h" },
    h("h2", { id: "conflicts-h", i18n: "conflict.heading" }),
    h("p", { i18n: mayResolve ? "conflict.help_supervisor" : "conflict.help_caseworker" }),
    h("ol", { class: "conflicts" }, items));
}
