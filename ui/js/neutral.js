// The neutral screen after a quick exit. It shows nothing and names nothing; the way
// back (Ctrl+Shift+U) leads to the unlock screen, since the store is locked.
document.addEventListener("keydown", async (e) => {
  if (e.ctrlKey && e.shiftKey && e.code === "KeyU") {
    e.preventDefault();
    try { await window.__TAURI_INTERNALS__?.invoke("restore_title"); } catch { /* the title is cosmetic */ }
    location.replace("index.html");
  }
});
