// The one way to the core: Tauri's IPC. Errors arrive as {key, args, issues}.
export async function call(cmd, args = {}) {
  const ipc = window.__TAURI_INTERNALS__;
  if (!ipc) throw { key: "error.store.bad_request", args: {}, issues: [] };
  try {
    return await ipc.invoke(cmd, args);
  } catch (e) {
    if (e && typeof e === "object" && "key" in e) throw e;
    throw { key: "error.store.bad_request", args: {}, issues: [] };
  }
}
