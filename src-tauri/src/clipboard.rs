//! Clearing what Amparo put on the clipboard, at a quick exit.
//!
//! Only text that was copied from Amparo's window is cleared: whatever the user
//! copied elsewhere afterwards stays. On X11 both the clipboard and the primary
//! selection (what middle-click pastes) are checked. GTK's clipboard lives on the
//! main thread, so the work is queued there.

use tauri::{AppHandle, Runtime};

#[cfg(target_os = "linux")]
pub fn clear_if_ours<R: Runtime>(app: &AppHandle<R>, copied: Vec<String>) {
    if copied.is_empty() {
        return;
    }
    let _ = app.run_on_main_thread(move || {
        use gtk::gdk;
        for atom in [gdk::SELECTION_CLIPBOARD, gdk::SELECTION_PRIMARY] {
            let clipboard = gtk::Clipboard::get(&atom);
            let ours = clipboard.wait_for_text().is_some_and(|t| copied.iter().any(|c| c.trim() == t.trim()));
            if ours {
                clipboard.set_text("");
                clipboard.clear();
            }
        }
    });
}

#[cfg(not(target_os = "linux"))]
pub fn clear_if_ours<R: Runtime>(_app: &AppHandle<R>, _copied: Vec<String>) {
    // Windows and macOS builds come later; their clipboards need their own code.
}
