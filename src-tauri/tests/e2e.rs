//! End-to-end: the real app binary in a real window (Xvfb), driven through
//! tauri-driver and WebKitWebDriver as a caseworker would use it. Every screen is
//! checked with axe-core and saved as a screenshot in `artifacts/e2e/`.
//!
//! These tests never skip: without a display, tauri-driver or axe-core they fail
//! and say what is missing. `scripts/test.sh` provides all three.

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASS: &str = "girasol luna montaña 27";
const WAIT: Duration = Duration::from_secs(30);

/// One app at a time: two WebKit windows on two cores only slow each other down.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn artifacts() -> PathBuf {
    let dir = repo_root().join("artifacts/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn require_environment() {
    assert!(
        std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty()),
        "DISPLAY is not set: the end-to-end tests need an X display (scripts/test.sh starts Xvfb)"
    );
    assert!(
        axe_path().is_file(),
        "axe-core is missing at {}: run scripts/test.sh (it installs it with npm)",
        axe_path().display()
    );
}

fn axe_path() -> PathBuf {
    std::env::var_os("AXE_CORE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/e2e/node_modules/axe-core/axe.min.js"))
}

fn tauri_driver() -> PathBuf {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        return p.into();
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"));
    let p = home.join("bin/tauri-driver");
    if p.is_file() {
        p
    } else {
        "tauri-driver".into()
    }
}

/// tauri-driver with the app's data folder in its environment (it passes its
/// environment on to the app).
struct Driver {
    child: Child,
    port: u16,
}

/// Two consecutive free local ports (tauri-driver's and WebKitWebDriver's).
fn free_ports() -> u16 {
    for _ in 0..100 {
        let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", 0)) else {
            continue;
        };
        let Ok(port) = l.local_addr().map(|a| a.port()) else {
            continue;
        };
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two free local ports");
}

impl Driver {
    fn start(data_dir: &Path) -> Driver {
        Driver::start_with(data_dir, &[])
    }

    /// With more environment for the app (tauri-driver passes its own on).
    fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Driver {
        let port = free_ports();
        let child = Command::new(tauri_driver())
            .args(["--port", &port.to_string(), "--native-port", &(port + 1).to_string()])
            .env("AMPARO_DATA_DIR", data_dir)
            .env("LANG", "en_US.UTF-8")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e} (scripts/test.sh installs it)", tauri_driver().display()));
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tauri-driver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, port }
    }

    async fn session(&self) -> Client {
        let app = env!("CARGO_BIN_EXE_amparo-app");
        let caps = json!({"browserName": "wry", "tauri:options": {"application": app}});
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{}", self.port))
                .await
            {
                Ok(c) => return c,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("session not ready yet: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: tauri-driver then stops WebKitWebDriver too.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

struct Ui {
    c: Client,
    name: &'static str,
}

impl Ui {
    async fn wait(&self, css: &str) -> Element {
        // Polled by hand: a find that meets a page reloading (a lock rebuilds the
        // page) fails with another error than "no such element", and is retried too.
        let deadline = Instant::now() + WAIT;
        loop {
            match self.c.find(Locator::Css(css)).await {
                Ok(e) => return e,
                Err(e) if Instant::now() >= deadline => panic!("{}: no {css}: {e}", self.name),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn screen(&self, name: &str) {
        self.wait(&format!("main[data-screen='{name}']")).await;
    }

    async fn text(&self, css: &str) -> String {
        self.wait(css).await.text().await.unwrap()
    }

    async fn value(&self, css: &str) -> String {
        self.wait(css).await.prop("value").await.unwrap().unwrap_or_default()
    }

    async fn type_in(&self, css: &str, text: &str) {
        let el = self.wait(css).await;
        el.send_keys(text).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    async fn click(&self, css: &str) {
        // A screen drawn again between the find and the click (going to the
        // screen already shown redraws it) leaves a stale element: find it anew.
        let deadline = Instant::now() + WAIT;
        loop {
            let el = self.wait(css).await;
            // Brought to the middle of the window first, as a person scrolls to what
            // she clicks: WebKitWebDriver's own scrolling can leave it under the
            // form's sticky bar of actions.
            let arg = serde_json::to_value(&el).expect("element reference");
            let _ = self.c.execute("arguments[0].scrollIntoView({block: 'center'}); return true;", vec![arg]).await;
            match el.click().await {
                Ok(_) => return,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => {
                    // What was in the way, for whoever reads the failure.
                    self.shot("failed-click").await;
                    panic!("click {css}: {e:?} (screenshot: artifacts/e2e/failed-click.png)")
                }
            }
        }
    }

    /// Pick an option the way a keyboard user does: type the start of its label
    /// into the focused select (type-ahead). WebKitWebDriver sometimes refuses a
    /// click on an `<option>` as "not interactable", so a click is only the
    /// fallback. Either way the select's value must really change.
    async fn choose(&self, css: &str, value: &str) {
        let label = self.text(&format!("{css} option[value='{value}']")).await;
        let deadline = Instant::now() + WAIT;
        let mut attempt = 0;
        loop {
            let el = self.wait(css).await;
            let result = if attempt % 2 == 0 { el.send_keys(&label).await } else { el.select_by_value(value).await };
            if self.value(css).await == value {
                return;
            }
            eprintln!("{}: {css} did not take {value} ({result:?}), retrying", self.name);
            assert!(Instant::now() < deadline, "{}: {css} never took {value}", self.name);
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(1100)).await; // let type-ahead reset
        }
    }

    /// Poll until `f` holds; no fixed sleeps.
    async fn until(&self, what: &str, f: impl AsyncFn() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !f().await {
            assert!(Instant::now() < deadline, "{}: timed out waiting for {what}", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn until_text(&self, css: &str, expected: &str) {
        self.until(&format!("{css} = {expected:?}"), async || match self.c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.is_ok_and(|t| t == expected),
            Err(_) => false,
        })
        .await;
    }

    /// Poll until exactly `n` elements match `css`.
    async fn until_count(&self, css: &str, n: usize) {
        self.until(&format!("{n} of {css}"), async || {
            self.c.find_all(Locator::Css(css)).await.map(|r| r.len() == n).unwrap_or(false)
        })
        .await;
    }

    async fn until_contains(&self, css: &str, part: &str) {
        self.until(&format!("{css} contains {part:?}"), async || match self.c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.is_ok_and(|t| t.contains(part)),
            Err(_) => false,
        })
        .await;
    }

    /// Screenshot after two animation frames (so the change is painted).
    async fn shot(&self, file: &str) {
        self.c
            .execute_async(
                "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                vec![],
            )
            .await
            .unwrap();
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(artifacts().join(format!("{file}.png")), png).unwrap();
    }

    /// axe-core on the current screen: no violations, whatever their impact.
    async fn axe(&self, screen: &str) {
        let src = std::fs::read_to_string(axe_path()).unwrap();
        self.c.execute(&format!("{src}\n;return typeof axe;"), vec![]).await.unwrap();
        let result = self
            .c
            .execute_async(
                "const done = arguments[0];
                 axe.run(document, {resultTypes: ['violations']})
                    .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))))
                    .catch(e => done([{id: 'axe-error', help: String(e)}]));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(result, json!([]), "{}: axe-core violations on the {screen} screen", self.name);
    }

    async fn key(&self, keys: &str) {
        let el = self.c.active_element().await.unwrap();
        el.send_keys(keys).await.unwrap();
    }

    async fn active_id(&self) -> String {
        self.c
            .execute("return document.activeElement ? document.activeElement.id : ''", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Press Tab until the element with `id` has focus.
    async fn tab_to(&self, id: &str) {
        for _ in 0..400 {
            if self.active_id().await == id {
                return;
            }
            self.key(&Key::Tab.to_string()).await;
        }
        panic!("{}: Tab never reached #{id}", self.name);
    }

    /// Unlock with the passphrase and Enter, and wait for the case list.
    async fn unlock(&self) {
        self.screen("unlock").await;
        self.type_in("#unlock-passphrase", &format!("{PASS}{}", Key::Enter)).await;
        self.screen("list").await;
    }

    async fn dom_text(&self) -> String {
        self.c.execute("return document.body.innerText", vec![]).await.unwrap().as_str().unwrap_or("").to_string()
    }
}

fn alt(key: char) -> String {
    format!("{}{key}{}", Key::Alt, Key::Null)
}

#[tokio::test]
async fn spanish_setup_bilingual_intake_restart_and_find_the_case() {
    let _serial = SERIAL.lock().await;
    require_environment();
    let data = tempfile::tempdir().unwrap();
    let year = this_year();

    {
        let driver = Driver::start(data.path());
        let ui = Ui { c: driver.session().await, name: "first run" };
        ui.screen("welcome").await;
        ui.shot("01-welcome").await;
        ui.axe("welcome").await;

        // First-run setup, in Spanish.
        ui.click("#choose-es").await;
        ui.screen("setup").await;
        assert_eq!(ui.text("h1").await, "Configurar esta computadora");
        ui.type_in("#setup-org", "Casa Amparo Houston").await;
        ui.type_in("#setup-device", "TX3").await;
        ui.type_in("#setup-user", "Ana López").await;
        ui.type_in("#setup-passphrase", "corta").await;
        ui.until_text("#strength", "Demasiado corta").await;
        ui.type_in("#setup-passphrase", " pero ya no tanto 27").await;
        ui.until_text("#strength", "Fuerte").await;
        ui.type_in("#setup-passphrase2", "otra cosa").await;
        ui.click("#setup-submit").await;
        ui.until_text("#setup-passphrase2-error", "Las dos frases de contraseña no coinciden.").await;
        ui.shot("02-setup-es").await;
        ui.axe("setup").await;
        // Start again with the real passphrase.
        for id in ["#setup-passphrase", "#setup-passphrase2"] {
            ui.wait(id).await.clear().await.unwrap();
            ui.type_in(id, PASS).await;
        }
        ui.click("#setup-submit").await;
        // The recovery key, once, with the plain warning; continuing needs a yes.
        ui.screen("recovery-key").await;
        let key = ui.text("#recovery-key").await;
        assert_eq!((key.len(), key.split('-').count()), (47, 8), "{key}");
        assert!(ui.dom_text().await.contains("nadie puede recuperar los datos"));
        assert!(!ui.wait("#recovery-continue").await.is_enabled().await.unwrap());
        ui.shot("02b-recovery-key-es").await;
        ui.axe("recovery key").await;
        ui.click("#recovery-done").await;
        ui.click("#recovery-continue").await;
        ui.screen("list").await;
        assert!(!ui.dom_text().await.contains(&key), "the key is not shown again");
        assert_eq!(ui.text("h1").await, "Casos");
        ui.until_text("#list-empty", "Todavía no hay casos. Empiece con una nueva admisión.").await;
        ui.shot("03-list-empty-es").await;
        ui.axe("case list").await;

        // An intake with two people, in Spanish.
        ui.click("#nav-new").await;
        ui.screen("intake").await;
        assert_eq!(ui.text("h1").await, "Nueva admisión");
        // The date starts as today; this intake happened earlier.
        let date = ui.wait("#f-intake_date").await;
        assert_eq!(date.prop("value").await.unwrap().unwrap_or_default().len(), 10, "today is prefilled");
        date.clear().await.unwrap();
        date.send_keys("2026-03-14").await.unwrap();
        ui.choose("#f-intake_channel", "Outreach").await;
        ui.type_in("#f-intake_place-city", "Houston").await;
        ui.type_in("#f-people-0-alias", "Rosa").await;
        // Every link to a section of the form leads to one it shows.
        let dangling =
            ui.c.execute(
                "return [...document.querySelectorAll('#form-sections a')].map(a => a.getAttribute('href'))
                    .filter(h => !document.querySelector(h))",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(dangling, json!([]), "links to sections the form does not show");
        // Its "identificable" mark describes the field; it is not part of its name.
        let alias = ui.wait("#f-people-0-alias").await;
        let described = alias.attr("aria-describedby").await.unwrap().unwrap_or_default();
        assert!(described.split(' ').any(|d| d == "p-people-0-alias"), "{described}");
        let mark = ui.wait("#p-people-0-alias").await;
        assert_eq!(mark.attr("aria-hidden").await.unwrap().as_deref(), Some("true"));
        assert_eq!(mark.text().await.unwrap(), "identificable");
        ui.type_in("#f-people-0-given_name", "Xóchitl").await;
        ui.choose("#f-people-0-gender", "Feminine").await;
        // Mexico among the common countries; Cameroon from the list of every other.
        ui.click("#f-people-0-nationality-MX").await;
        let more = ui.wait("#f-people-0-nationality-more").await;
        more.select_by_value("CM").await.unwrap();
        let cameroon = "#f-people-0-nationality-CM";
        ui.until("Cameroon ticked", async || ui.wait(cameroon).await.is_selected().await.unwrap_or(false)).await;
        assert_eq!(ui.text(&format!("label[for='{}']", &cameroon[1..])).await, "Camerún");
        ui.type_in("#f-people-0-age_estimate", "17").await;
        ui.choose("#f-people-0-preferred_language", "es").await;
        // Skip logic: sexual exploitation appears only once the type includes sex.
        let sex = "#f-type_of_sex_exploitation-Prostitution";
        assert!(!ui.wait(sex).await.is_displayed().await.unwrap());
        ui.choose("#f-trafficking_type", "Sex").await;
        ui.until("sexual exploitation shown", async || ui.wait(sex).await.is_displayed().await.unwrap_or(false)).await;
        ui.click(sex).await;
        ui.click("#f-venues-ResidentialBrothel").await;
        ui.click("#f-venues-BarClubCantina").await;
        ui.click("#add-people").await;
        ui.choose("#f-people-1-role", "DependentChild").await;
        ui.type_in("#f-people-1-alias", "Beto").await;
        ui.type_in("#f-people-1-age_estimate", "3").await;
        // Bad input: a calm message next to the field, in the UI language.
        ui.type_in("#f-people-0-safe_phone", "55 1234 5678").await;
        ui.key(&Key::Tab.to_string()).await;
        ui.until_text(
            "#e-people-0-safe_phone",
            "Escriba el número en formato internacional: + código de país y número, por ejemplo +525512345678.",
        )
        .await;
        ui.until_text("#f-people-0-majority_at_intake", "Persona menor de edad").await;
        ui.shot("04-intake-es").await;
        ui.axe("intake form").await;

        // Switch to English mid-form with the keyboard shortcut: input kept, labels English.
        ui.key(&alt('l')).await;
        ui.until_text("h1", "New intake").await;
        assert_eq!(ui.text("label[for='f-people-0-given_name'] span").await, "Given name");
        assert_eq!(
            ui.text("#e-people-0-safe_phone").await.split(':').next().unwrap(),
            "Please enter the number in international format"
        );
        assert_eq!(ui.value("#f-people-0-alias").await, "Rosa");
        assert_eq!(ui.value("#f-people-0-given_name").await, "Xóchitl");
        assert_eq!(ui.value("#f-people-1-alias").await, "Beto");
        assert_eq!(ui.value("#f-intake_channel").await, "Outreach");
        assert!(ui.wait("#f-venues-BarClubCantina").await.is_selected().await.unwrap());
        assert_eq!(ui.text("#f-intake_channel option:checked").await, "Outreach");
        assert_eq!(ui.text("#f-people-0-majority_at_intake").await, "Minor");
        // Saving with the bad phone is refused and nothing typed is lost.
        ui.click("#form-save").await;
        ui.until_text(
            "#form-summary",
            "Some answers need another look (1); they are marked below. Nothing you typed was lost.",
        )
        .await;
        assert_eq!(ui.value("#f-people-0-safe_phone").await, "55 1234 5678");
        ui.shot("05-intake-en-error").await;
        let phone = ui.wait("#f-people-0-safe_phone").await;
        phone.clear().await.unwrap();
        phone.send_keys("+525512345678").await.unwrap();
        ui.click("#form-save").await;
        ui.screen("case").await;
        let number = format!("TX3-{year}-0001");
        assert_eq!(ui.text("h1").await, format!("Case {number}"));
        ui.shot("06-case-en").await;
        ui.axe("case").await;
        ui.c.close().await.unwrap();
    }

    // Quit and relaunch: the unlock screen, in the language last chosen.
    {
        let driver = Driver::start(data.path());
        let ui = Ui { c: driver.session().await, name: "relaunch" };
        ui.screen("unlock").await;
        assert_eq!(ui.text("h1").await, "Unlock Amparo");
        assert!(!ui.dom_text().await.contains("Rosa"), "nothing of the store shows before unlock");
        ui.type_in("#unlock-passphrase", "girasol luna montana 27").await;
        ui.click("#unlock-submit").await;
        ui.until_text(
            "#unlock-passphrase-error",
            "That passphrase did not open the store. Please check it and try again.",
        )
        .await;
        ui.shot("07-unlock-wrong-passphrase").await;
        ui.axe("unlock").await;
        let field = ui.wait("#unlock-passphrase").await;
        field.clear().await.unwrap();
        field.send_keys(&format!("{PASS}{}", Key::Enter)).await.unwrap();
        ui.screen("list").await;

        // The saved intake left no unfinished draft behind.
        assert!(ui.c.find(Locator::Css("#drafts-h")).await.is_err(), "a saved intake is not listed as unfinished");
        // Find the case by alias as you type.
        ui.type_in("#search", "ros").await;
        ui.until_text("#case-table tbody tr td:nth-child(2)", "Rosa").await;
        ui.type_in("#search", "x").await;
        ui.until_text("#list-empty", "No cases match this search.").await;
        ui.key(&Key::Backspace.to_string()).await;
        ui.until_text("#case-table tbody tr td:nth-child(2)", "Rosa").await;
        ui.shot("08-search-en").await;
        ui.axe("search results").await;
        ui.click("#case-table tbody tr td button").await;
        ui.screen("case").await;

        // Values with English labels; free text as typed.
        assert_eq!(ui.text("dd[data-field='intake_channel']").await, "Outreach");
        assert_eq!(ui.text("dd[data-field='trafficking_type']").await, "Sex trafficking");
        assert_eq!(ui.text("dd[data-field='venues']").await, "Residential brothel, Bar / club / cantina");
        assert_eq!(ui.text("dd[data-field='people.0.given_name']").await, "Xóchitl");
        assert_eq!(ui.text("dd[data-field='people.0.gender']").await, "Female");
        assert_eq!(ui.text("dd[data-field='people.0.nationality']").await, "Mexico, Cameroon");
        assert_eq!(ui.text("dd[data-field='people.1.role']").await, "Dependent child");
        assert_eq!(ui.text("dd[data-field='people.1.majority_at_intake']").await, "Minor");
        // She prefers Spanish: one click switches.
        assert_eq!(ui.text("#lang-offer p").await, "This person prefers Español.");
        ui.shot("09-case-after-restart-en").await;
        ui.click("#lang-offer-switch").await;
        ui.until_text("h1", &format!("Caso TX3-{year}-0001")).await;
        assert_eq!(ui.text("dd[data-field='trafficking_type']").await, "Trata con fines de explotación sexual");

        // A note is appended; the status changes.
        ui.type_in("#new-note", "Cita con la abogada el lunes.").await;
        ui.click("#add-note").await;
        ui.until_contains("#notes li:last-child", "Cita con la abogada el lunes.").await;
        assert!(ui.text("#notes li:last-child .note-meta").await.starts_with("Ana López, "));
        ui.choose("#case-status", "FollowUp").await;
        ui.click("#case-status-save").await;
        ui.until_text(".row.card .saved", "Estado cambiado.").await;
        // The case's values show the new status at once, as the core kept it.
        ui.until_text("dd[data-field='status']", "En seguimiento").await;
        ui.shot("10-case-es-note").await;

        // Edit a field from the case view; everything else stays, notes included.
        ui.click("#case-edit").await;
        ui.screen("intake").await;
        assert_eq!(ui.text("h1").await, format!("Editar el caso TX3-{year}-0001"));
        let alias = ui.wait("#f-people-0-alias").await;
        alias.clear().await.unwrap();
        alias.send_keys("Rosita").await.unwrap();
        ui.click("#form-save").await;
        ui.screen("case").await;
        assert_eq!(ui.text("dd[data-field='people.0.alias']").await, "Rosita");
        assert_eq!(ui.text("dd[data-field='people.1.alias']").await, "Beto");
        assert_eq!(ui.value("#case-status").await, "FollowUp");
        ui.until_contains("#notes", "Cita con la abogada el lunes.").await;
        ui.c.close().await.unwrap();
    }
}

fn this_year() -> String {
    // The case number carries the year the case was created on this laptop.
    amparo::repositories::cases::today().format("%Y").to_string()
}

fn prepared_store(dir: &Path) {
    let setup = amparo::store::Setup {
        org: "Casa Amparo".into(),
        device_code: "EP1".into(),
        user: "Marta".into(),
        passphrase: String::from(PASS).into(),
        locale: "en".into(),
    };
    amparo::Store::create(dir, &setup, amparo::database::keys::KdfParams::INSECURE_FOR_TESTS).unwrap();
}

#[tokio::test]
async fn a_whole_intake_with_the_keyboard_alone() {
    let _serial = SERIAL.lock().await;
    require_environment();
    let data = tempfile::tempdir().unwrap();
    prepared_store(data.path());
    let driver = Driver::start(data.path());
    let ui = Ui { c: driver.session().await, name: "keyboard" };
    ui.screen("unlock").await;
    // The passphrase field has focus: type and press Enter.
    ui.until("passphrase focused", async || ui.active_id().await == "unlock-passphrase").await;
    ui.key(&format!("{PASS}{}", Key::Enter)).await;
    ui.screen("list").await;
    // Alt+N: new intake.
    ui.key(&alt('n')).await;
    ui.screen("intake").await;
    ui.shot("11-intake-top-en").await;
    ui.tab_to("f-intake_date").await;
    // Tabbing into a field selects what is in it (today's date): typing replaces it.
    ui.key("2026-05-02").await;
    ui.until("date replaced", async || ui.value("#f-intake_date").await == "2026-05-02").await;
    ui.tab_to("f-intake_channel").await;
    // Type-ahead on a focused select picks the option, as in any GTK list.
    ui.key("Hot").await;
    ui.until("channel chosen", async || ui.value("#f-intake_channel").await == "Hotline").await;
    ui.tab_to("f-people-0-alias").await;
    ui.key("Lupita").await;
    ui.tab_to("f-venues-HotelMotel").await;
    ui.key(" ").await;
    ui.tab_to("add-people").await;
    ui.key(&Key::Enter.to_string()).await;
    // Focus moves into the new person; give a role by type-ahead.
    ui.until("new person focused", async || ui.active_id().await == "f-people-1-role").await;
    ui.key("Dep").await;
    ui.until("role chosen", async || ui.value("#f-people-1-role").await == "DependentChild").await;
    ui.tab_to("f-note").await;
    ui.key("Called from a motel; safe to text after 6 pm.").await;
    ui.tab_to("form-save").await;
    ui.key(&Key::Enter.to_string()).await;
    ui.screen("case").await;
    assert_eq!(ui.text("dd[data-field='people.0.alias']").await, "Lupita");
    assert_eq!(ui.text("dd[data-field='intake_channel']").await, "Hotline");
    assert_eq!(ui.text("dd[data-field='venues']").await, "Hotel / motel");
    assert_eq!(ui.text("dd[data-field='people.1.role']").await, "Dependent child");
    assert!(ui.text("#notes").await.contains("safe to text after 6 pm"));
    ui.shot("12-keyboard-intake-saved").await;
    ui.c.close().await.unwrap();
}

#[tokio::test]
async fn closing_mid_intake_loses_nothing() {
    let _serial = SERIAL.lock().await;
    require_environment();
    let data = tempfile::tempdir().unwrap();
    prepared_store(data.path());
    {
        let driver = Driver::start(data.path());
        let ui = Ui { c: driver.session().await, name: "draft" };
        ui.unlock().await;
        ui.click("#nav-new").await;
        ui.screen("intake").await;
        ui.type_in("#f-people-0-alias", "Chayo").await;
        ui.type_in("#f-intake_place-city", "El Paso").await;
        ui.until_text("#draft-state", "Draft kept on this laptop").await;
        // Close the window mid-intake: no save pressed.
        ui.c.close().await.unwrap();
    }
    let driver = Driver::start(data.path());
    let ui = Ui { c: driver.session().await, name: "draft after restart" };
    ui.unlock().await;
    assert!(ui.text("#drafts-h + ul").await.contains("Chayo"));
    ui.shot("13-unfinished-intake").await;
    ui.axe("list with drafts").await;
    ui.click("#drafts-h + ul li button.quiet").await;
    ui.screen("intake").await;
    assert_eq!(ui.value("#f-people-0-alias").await, "Chayo");
    assert_eq!(ui.value("#f-intake_place-city").await, "El Paso");
    // "Close without saving" asks first, and keeping on is where the focus is.
    ui.click("#form-cancel").await;
    ui.until_contains("#form-discard-ask", "cannot be brought back").await;
    assert_eq!(ui.active_id().await, "form-keep");
    ui.key(&Key::Enter.to_string()).await;
    ui.until("the form back", async || ui.active_id().await == "form-cancel").await;
    assert_eq!(ui.value("#f-people-0-alias").await, "Chayo", "nothing lost");
    // Asked again, and this time thrown away: the draft goes with it.
    ui.click("#form-cancel").await;
    ui.click("#form-discard").await;
    ui.screen("list").await;
    assert!(!ui.text_of("body").await.contains("Chayo"), "the draft is gone");
    ui.c.close().await.unwrap();
}

const LUIS: &str = "luis lee libros de noche";
const ROSA: &str = "rosa camina por el río";

/// A shared laptop: Marta (administrator), Luis and Rosa (caseworkers); a case
/// restricted to Rosa, and an open one. Returns the two case numbers.
fn shared_laptop(dir: &Path) -> (String, String, String) {
    use amparo::repositories::users::Role;
    let setup = amparo::store::Setup {
        org: "Casa Amparo".into(),
        device_code: "EP1".into(),
        user: "Marta".into(),
        passphrase: String::from(PASS).into(),
        locale: "en".into(),
    };
    let mut s = amparo::Store::create(dir, &setup, amparo::database::keys::KdfParams::INSECURE_FOR_TESTS).unwrap();
    s.add_user("Luis", Role::Caseworker, LUIS).unwrap();
    let rosa = s.add_user("Rosa", Role::Caseworker, ROSA).unwrap();
    let mut restricted = amparo::sample::full_case();
    restricted["people"][0]["alias"] = json!("Golondrina");
    restricted["people"][0]["given_name"] = json!("Itzel");
    restricted["restricted"] = json!(true);
    restricted["assigned_to"] = json!(rosa.id);
    let r = s.create_case(restricted, None).unwrap();
    let o = s.create_case(amparo::sample::full_case(), None).unwrap();
    let key = s.take_recovery_key().unwrap().to_string();
    (r["case_number"].as_str().unwrap().into(), o["case_number"].as_str().unwrap().into(), key)
}

fn clipboard() -> String {
    let out = Command::new("xclip").args(["-o", "-selection", "clipboard"]).output();
    let out =
        out.unwrap_or_else(|e| panic!("xclip is needed to read the clipboard (scripts/test.sh installs it): {e}"));
    String::from_utf8_lossy(&out.stdout).to_string()
}

impl Ui {
    async fn unlock_with(&self, passphrase: &str) {
        self.screen("unlock").await;
        self.type_in("#unlock-passphrase", &format!("{passphrase}{}", Key::Enter)).await;
        self.screen("list").await;
    }

    async fn url(&self) -> String {
        self.c.current_url().await.map(|u| u.to_string()).unwrap_or_default()
    }

    /// After a quick exit: the neutral page, nothing of Amparo in it, and how long the
    /// page took to go blank (measured in the page, from the key or click event).
    async fn neutral(&self, started: Instant, secret: &[&str]) -> (u64, u128) {
        self.until("the neutral page", async || self.url().await.ends_with("neutral.html")).await;
        let seen = started.elapsed().as_millis();
        let html = self.c.execute("return document.documentElement.outerHTML", vec![]).await.unwrap();
        let html = html.as_str().unwrap().to_string();
        for word in secret.iter().chain(&["Amparo", "Salida", "Quick exit"]) {
            assert!(!html.contains(word), "{}: {word} is still in the page: {html}", self.name);
        }
        assert_eq!(self.dom_text().await.trim(), "");
        let ms = self.c.execute("return sessionStorage.getItem('amparo.quick_exit_ms')", vec![]).await.unwrap();
        let ms: u64 = ms.as_str().and_then(|m| m.parse().ok()).expect("the page measured its quick exit");
        (ms, seen)
    }
}

#[tokio::test]
async fn quick_exit_lock_privacy_and_a_restricted_case_on_a_shared_laptop() {
    let _serial = SERIAL.lock().await;
    require_environment();
    let data = tempfile::tempdir().unwrap();
    let (restricted, open, recovery_key) = shared_laptop(data.path());
    let luis_id = {
        let s = amparo::Store::open(data.path(), PASS).unwrap();
        s.users().unwrap().into_iter().find(|u| u.name == "Luis").unwrap().id
    };
    let mut timings = Vec::new();
    {
        let driver = Driver::start(data.path());
        let ui = Ui { c: driver.session().await, name: "shared laptop" };
        ui.unlock_with(LUIS).await;
        // Luis sees the restricted case by number only, and cannot open it.
        let row = ui.wait("tr[data-locked='true']").await;
        let row_text = row.text().await.unwrap();
        assert!(row_text.contains(&restricted) && row_text.contains("(restricted)"), "{row_text}");
        assert!(!ui.dom_text().await.contains("Golondrina"));
        ui.click("tr[data-locked='true'] button").await;
        ui.until_contains("#list-refused", "This case is restricted.").await;
        assert_eq!(ui.text("main h1").await, "Cases");
        ui.shot("20-restricted-refused").await;
        ui.axe("case list with a restricted case").await;

        // Privacy mode: the alias stays, names and other personal details go.
        ui.type_in("#search", &open).await;
        ui.until_count("#case-table tbody tr", 1).await;
        ui.click("#case-table tbody tr button").await;
        ui.screen("case").await;
        assert!(ui.dom_text().await.contains("Xóchitl"));
        ui.click("#privacy-toggle").await;
        ui.until_text("dd[data-field='people.0.given_name']", "Hidden (privacy mode)").await;
        assert_eq!(ui.text("dd[data-field='people.0.alias']").await, "Rosa");
        let text = ui.dom_text().await;
        for word in ["Xóchitl", "Quetzalli", "+525512345678", "rosa@example.org"] {
            assert!(!text.contains(word), "{word} shows in privacy mode");
        }
        assert_eq!(ui.wait("#privacy-toggle").await.attr("aria-pressed").await.unwrap().as_deref(), Some("true"));
        ui.shot("21-privacy-mode").await;
        ui.axe("case in privacy mode").await;
        // In the form, personal details are masked like a passphrase.
        ui.click("#case-edit").await;
        ui.screen("intake").await;
        let masked = ui
            .c
            .execute(
                "return getComputedStyle(document.getElementById('f-people-0-given_name')).getPropertyValue('-webkit-text-security')",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(masked, json!("disc"));
        ui.shot("22-privacy-form").await;
        ui.click("#form-cancel").await;
        ui.screen("case").await;
        ui.click("#privacy-toggle").await;
        ui.until_text("dd[data-field='people.0.given_name']", "Xóchitl").await;

        // Copy the given name, then quick exit with Esc twice.
        ui.c.execute(
            "getSelection().selectAllChildren(document.querySelector(\"dd[data-field='people.0.given_name']\"))",
            vec![],
        )
        .await
        .unwrap();
        ui.key(&format!("{}c{}", Key::Control, Key::Null)).await;
        ui.until("the copy on the clipboard", async || clipboard().trim() == "Xóchitl").await;
        let started = Instant::now();
        ui.key(&format!("{}{}", Key::Escape, Key::Escape)).await;
        let (ms, seen) = ui.neutral(started, &["Xóchitl", "Rosa", &open]).await;
        assert!(ms < 100, "the window went blank after {ms} ms");
        timings.push(("Esc Esc", ms, seen));
        ui.until("the clipboard cleared", async || clipboard().trim().is_empty()).await;
        ui.shot("23-neutral").await;

        // Back: Ctrl+Shift+U, and the passphrase again.
        ui.key(&format!("{}{}u{}", Key::Control, Key::Shift, Key::Null)).await;
        ui.unlock_with(LUIS).await;
        assert_eq!(ui.text("#privacy-toggle").await, "Privacy mode");
        // Quick exit by the button.
        let started = Instant::now();
        ui.click("#quick-exit").await;
        let (ms, seen) = ui.neutral(started, &[&restricted]).await;
        assert!(ms < 100, "the window went blank after {ms} ms");
        timings.push(("button", ms, seen));
        ui.key(&format!("{}{}u{}", Key::Control, Key::Shift, Key::Null)).await;
        ui.unlock_with(LUIS).await;
        // Lock by shortcut: the unlock screen, nothing of the list left.
        ui.key(&format!("{}{}l{}", Key::Control, Key::Shift, Key::Null)).await;
        ui.screen("unlock").await;
        assert!(!ui.dom_text().await.contains(&open));
        ui.c.close().await.unwrap();
    }
    eprintln!("quick exit (in-page ms, seen by WebDriver ms): {timings:?}");

    // Auto-lock after a short idle time (here 2 s; the store's policy says 1 to 60 min).
    {
        let driver = Driver::start_with(data.path(), &[("AMPARO_IDLE_LOCK_SECONDS", "2")]);
        let ui = Ui { c: driver.session().await, name: "idle" };
        ui.unlock_with(ROSA).await;
        // Rosa, its assigned caseworker, opens the restricted case.
        ui.until_contains("#case-table", "Golondrina").await;
        let idle_from = Instant::now();
        ui.c.find(Locator::XPath("//tr[contains(., 'Golondrina')]//button")).await.unwrap().click().await.unwrap();
        ui.screen("case").await;
        assert!(ui.dom_text().await.contains("Itzel"));
        ui.screen("unlock").await;
        assert!(idle_from.elapsed() >= Duration::from_secs(2));
        let text = ui.dom_text().await;
        assert!(!text.contains("Itzel") && !text.contains("Golondrina"), "{text}");
        ui.shot("24-idle-locked").await;
        ui.c.close().await.unwrap();
    }

    // The administrator adds a user; a supervisor's view of the trail checks it.
    {
        let driver = Driver::start(data.path());
        let ui = Ui { c: driver.session().await, name: "administrator" };
        // Marta mistypes three times: the third makes her wait, with a countdown.
        ui.screen("unlock").await;
        for _ in 0..3 {
            ui.wait("#unlock-passphrase").await.clear().await.unwrap();
            ui.type_in("#unlock-passphrase", &format!("not her passphrase{}", Key::Enter)).await;
            ui.until_contains("#unlock-passphrase-error", "").await;
            ui.until("the button back", async || ui.text("#unlock-submit").await != "Unlocking…").await;
        }
        ui.until_contains("#unlock-submit", "Wait").await;
        assert!(!ui.wait("#unlock-submit").await.is_enabled().await.unwrap());
        assert!(
            ui.text("#unlock-passphrase-error").await.contains("Please wait"),
            "{}",
            ui.text("#unlock-passphrase-error").await
        );
        ui.shot("27-unlock-wait").await;
        // The wait ends by itself; then she uses the recovery key (typed loosely).
        ui.until_text("#unlock-submit", "Unlock").await;
        ui.click("#unlock-forgot").await;
        ui.screen("recover").await;
        ui.axe("recovery").await;
        ui.type_in("#recover-user", "marta").await;
        ui.type_in("#recover-key", &recovery_key.to_lowercase().replace('-', " ")).await;
        ui.type_in("#recover-passphrase", "marta tiene una frase nueva").await;
        ui.type_in("#recover-passphrase2", "marta tiene una frase nueva").await;
        ui.click("#recover-submit").await;
        ui.screen("list").await;
        ui.click("#nav-admin").await;
        ui.screen("admin").await;
        ui.shot("25-users").await;
        ui.axe("users and settings").await;
        ui.type_in("#new-user-name", "Eva").await;
        ui.type_in("#new-user-passphrase", LUIS).await;
        ui.type_in("#new-user-passphrase2", LUIS).await;
        ui.click("#add-user-submit").await;
        // Two users may not share a passphrase: the message is next to the field.
        ui.until_text(
            "#new-user-passphrase-error",
            "Another user already has this passphrase. Please choose a different one.",
        )
        .await;
        for id in ["#new-user-passphrase", "#new-user-passphrase2"] {
            ui.wait(id).await.clear().await.unwrap();
            ui.type_in(id, "eva escribe poemas al alba").await;
        }
        ui.click("#add-user-submit").await;
        ui.until_text("#admin-msg", "Eva can now unlock Amparo.").await;
        assert!(ui.text("#users-table").await.contains("Eva"));
        // Luis forgot his passphrase: Marta sets a new one.
        ui.click("button[aria-label='Set a new passphrase for Luis']").await;
        ui.type_in("form.inline-form input[id$='-passphrase']", "luis tiene otra frase ya").await;
        ui.type_in("form.inline-form input[id$='-passphrase2']", "luis tiene otra frase ya").await;
        ui.click("form.inline-form button[type='submit']").await;
        ui.until_text("#admin-msg", "Luis now unlocks with the new passphrase. Give it to them in person.").await;
        ui.axe("users, after a passphrase reset").await;
        // A new recovery key, shown once.
        ui.click("#renew-recovery").await;
        ui.click("#renew-confirm").await;
        let renewed = ui.text("#renewed-key").await;
        assert_eq!((renewed.len(), renewed.split('-').count()), (47, 8), "{renewed}");
        assert_ne!(renewed, recovery_key);
        // As a supervisor-or-more, Marta hands the restricted case to Luis.
        ui.click("#nav-cases").await;
        ui.screen("list").await;
        ui.until_contains("#case-table", "Golondrina").await;
        ui.c.find(Locator::XPath("//tr[contains(., 'Golondrina')]//button")).await.unwrap().click().await.unwrap();
        ui.screen("case").await;
        assert_eq!(ui.text("#case-assigned option:checked").await, "Rosa");
        ui.choose("#case-assigned", &luis_id).await;
        ui.until_text("#case-assigned-msg", "Assignment saved.").await;
        ui.click("#nav-audit").await;
        ui.screen("audit").await;
        ui.click("#audit-verify").await;
        ui.until_contains("#audit-verify-result", "The audit trail is intact").await;
        ui.choose("#audit-action", "QuickExit").await;
        ui.click("#audit-filters button[type='submit']").await;
        ui.until_count("#audit-table tbody tr", 2).await;
        assert!(ui.text("#audit-table tbody").await.contains("Luis"));
        ui.shot("26-audit").await;
        ui.axe("audit trail").await;
        ui.c.close().await.unwrap();
    }

    // Everything above is in the audit trail, which is intact.
    let store = amparo::Store::open(data.path(), "marta tiene una frase nueva").unwrap();
    assert!(matches!(
        amparo::Store::open(data.path(), PASS),
        Err(amparo::StoreError::Database(amparo::database::DatabaseError::WrongPassphrase))
    ));
    let rows =
        store.audit_list(&amparo::repositories::audit::AuditQuery { limit: Some(500), ..Default::default() }).unwrap();
    let count = |a: &str| rows.iter().filter(|r| r.action == a).count();
    assert_eq!((count("QuickExit"), count("Lock")), (2, 2), "{rows:?}");
    assert_eq!((count("FailedUnlock"), count("Recover"), count("RecoveryKeyRenewed")), (3, 1, 1), "{rows:?}");
    assert!(rows
        .iter()
        .any(|r| r.action == "View" && r.detail["refused"] == true && r.user_name.as_deref() == Some("Luis")));
    assert!(store.verify_audit().unwrap().problem.is_none());
    drop(store);
    // Luis, with the passphrase Marta gave him, now opens the case assigned to him.
    let luis = amparo::Store::open(data.path(), "luis tiene otra frase ya").unwrap();
    assert_eq!(luis.get_case_by_number(&restricted).unwrap()["people"][0]["alias"], "Golondrina");
}

/// Hostile text: markup, event handlers, `javascript:` URLs, SVG, broken markup.
/// Each would set `window.__xss` if the page ever treated it as HTML or code.
const PAYLOADS: [&str; 50] = [
    "<script>window.__xss=1</script>",
    "<img src=x onerror=\"window.__xss=2\">",
    "<svg onload=\"window.__xss=3\">",
    "<svg><script>window.__xss=4</script></svg>",
    "javascript:window.__xss=5",
    "<a href=\"javascript:window.__xss=6\">click</a>",
    "<iframe src=\"javascript:parent.__xss=7\"></iframe>",
    "<body onload=\"window.__xss=8\">",
    "\"><script>window.__xss=9</script>",
    "'><img src=x onerror=window.__xss=10>",
    "<div onmouseover=\"window.__xss=11\">hover</div>",
    "<input autofocus onfocus=\"window.__xss=12\">",
    "<details open ontoggle=\"window.__xss=13\">",
    "<video><source onerror=\"window.__xss=14\"></video>",
    "<audio src=x onerror=\"window.__xss=15\">",
    "<marquee onstart=\"window.__xss=16\">",
    "<object data=\"javascript:window.__xss=17\">",
    "<embed src=\"javascript:window.__xss=18\">",
    "<math><mtext><table><mglyph><style><img src=x onerror=\"window.__xss=19\">",
    "<style>@import 'javascript:window.__xss=20';</style>",
    "<img src=\"x\" onerror=\"window.__xss=21\"",
    "<scr<script>ipt>window.__xss=22</scr</script>ipt>",
    "%3Cscript%3Ewindow.__xss=23%3C/script%3E",
    "&lt;script&gt;window.__xss=24&lt;/script&gt;",
    "<svg><animate onbegin=\"window.__xss=25\" attributeName=x dur=1s>",
    "<form><button formaction=\"javascript:window.__xss=26\">x</button></form>",
    "<isindex type=image src=1 onerror=\"window.__xss=27\">",
    "<link rel=import href=\"data:text/html,<script>parent.__xss=28</script>\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:window.__xss=29\">",
    "<base href=\"javascript:window.__xss=30//\">",
    "<textarea onfocus=\"window.__xss=31\" autofocus>",
    "<select onfocus=\"window.__xss=32\" autofocus>",
    "<keygen autofocus onfocus=\"window.__xss=33\">",
    "<img srcset=\",,,,,x\" onerror=\"window.__xss=34\">",
    "<svg><a xlink:href=\"javascript:window.__xss=35\"><text>x</text></a></svg>",
    "<template><script>window.__xss=36</script></template>",
    "<noscript><img src=x onerror=\"window.__xss=37\"></noscript>",
    "<img src=x:alert(1) onerror=eval('window.__xss=38')>",
    "<IMG SRC=x OnErRoR=\"window.__xss=39\">",
    "<img/src/onerror=\"window.__xss=40\">",
    "<svg/onload=window.__xss=41>",
    "<body/onpageshow=\"window.__xss=42\">",
    "<x onclick=\"window.__xss=43\">click me</x>",
    "<img src=x onerror=\"window&#46;__xss=44\">",
    "<img src=x onerror=\"\\u0077indow.__xss=45\">",
    "data:text/html,<script>window.__xss=46</script>",
    "<!--<img src=\"--><img src=x onerror=\"window.__xss=47\">",
    "<![CDATA[<script>window.__xss=48</script>]]>",
    "${window.__xss=49}",
    "{{constructor.constructor('window.__xss=50')()}}",
];

/// Every kind of free-text field a case has, by its path in the case view.
const TEXT_FIELDS: [&str; 8] = [
    "people.0.alias",
    "people.0.given_name",
    "people.0.family_name",
    "intake_place.city",
    "trafficking_events.0.place.city",
    "safety.safe_times",
    "safety.code_word",
    "law_enforcement.agency",
];

fn hostile_case(payload: &str, consent: bool) -> Value {
    let mut c = amparo::sample::full_case();
    let today = amparo::repositories::cases::today();
    c["people"][0]["alias"] = json!(payload);
    c["people"][0]["given_name"] = json!(payload);
    c["people"][0]["family_name"] = json!(payload);
    c["intake_place"]["city"] = json!(payload);
    c["trafficking_events"] =
        json!([{ "type": "Recruitment", "date": "2025", "place": { "country": "MX", "city": payload } }]);
    c["safety"] = json!({ "safe_times": payload, "code_word": payload });
    c["law_enforcement"] = json!({ "involved": true, "agency": payload });
    c["notes"] = json!([{ "text": payload, "language": "es" }]);
    if consent {
        c["consents"] = json!([{ "scope": "ShareWithReferralOrganisation", "decision": "Granted", "explained_in": "es",
            "given_at": today.format("%Y-%m-%d").to_string(),
            "expires_at": "2099-12-31" }]);
    }
    c
}

impl Ui {
    /// No payload ran, and none became an element with a handler or a script.
    async fn nothing_ran(&self, screen: &str) {
        let r = self
            .c
            .execute(
                "return [typeof window.__xss, typeof parent.__xss,
                    document.querySelectorAll('main script, main img, main svg, main iframe, main object, main embed, main style, main a:not([href^=\"#\"])').length,
                    [...document.querySelectorAll('main *')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(r, json!(["undefined", "undefined", 0, 0]), "{}: something ran on the {screen} screen", self.name);
    }

    async fn text_of(&self, css: &str) -> String {
        let js = format!("return document.querySelector({css:?})?.textContent ?? null");
        self.c.execute(&js, vec![]).await.unwrap().as_str().unwrap_or("<missing>").to_string()
    }
}

#[tokio::test]
async fn hostile_text_shows_literally_and_consent_gates_sharing() {
    let _serial = SERIAL.lock().await;
    require_environment();
    let data = tempfile::tempdir().unwrap();
    let setup = amparo::store::Setup {
        org: "Casa Amparo".into(),
        device_code: "EP1".into(),
        user: "Marta".into(),
        passphrase: String::from(PASS).into(),
        locale: "en".into(),
    };
    let mut store =
        amparo::Store::create(data.path(), &setup, amparo::database::keys::KdfParams::INSECURE_FOR_TESTS).unwrap();
    // Newest first in the list: case i is row 49 - i.
    let numbers: Vec<String> = PAYLOADS
        .iter()
        .enumerate()
        .map(|(i, p)| store.create_case(hostile_case(p, i == 0), None).unwrap()["case_number"].as_str().unwrap().into())
        .collect();
    drop(store);

    let driver = Driver::start(data.path());
    let ui = Ui { c: driver.session().await, name: "hostile text" };
    ui.unlock_with(PASS).await;
    ui.until_count("#case-table tbody tr", 50).await;
    let aliases =
        ui.c.execute(
            "return [...document.querySelectorAll('#case-table tbody tr td:nth-child(2)')].map(td => td.textContent)",
            vec![],
        )
        .await
        .unwrap();
    let expected: Vec<Value> = PAYLOADS.iter().rev().map(|p| json!(p)).collect();
    assert_eq!(aliases, Value::Array(expected), "the list shows every alias literally");
    ui.nothing_ran("list").await;

    for (i, (payload, number)) in PAYLOADS.iter().zip(&numbers).enumerate() {
        let row = format!("#case-table tbody tr:nth-child({}) button", 50 - i);
        ui.click(&row).await;
        ui.until_text("main h1", &format!("Case {number}")).await;
        for field in TEXT_FIELDS {
            assert_eq!(ui.text_of(&format!("dd[data-field='{field}']")).await, *payload, "case {i}: {field}");
        }
        let note = ui.text_of("#notes li").await;
        assert!(note.starts_with(payload), "case {i}: the note shows {note:?}");
        ui.nothing_ran(&format!("case {i}")).await;
        if i == 0 {
            ui.shot("30-hostile-case").await;
            // The printout of the case, and the form with the text in its fields.
            ui.click("#case-print").await;
            ui.screen("print").await;
            assert_eq!(ui.text_of("#printable dd[data-field='people.0.given_name']").await, *payload);
            ui.nothing_ran("case printout").await;
            ui.click("#print-back").await;
            ui.screen("case").await;
            ui.click("#case-edit").await;
            ui.screen("intake").await;
            assert_eq!(ui.value("#f-people-0-given_name").await, *payload);
            assert_eq!(ui.value("#f-safety-safe_times").await, *payload);
            ui.nothing_ran("form").await;
            ui.click("#form-cancel").await;
            ui.screen("case").await;

            // Consent: the explanation is in the survivor's Spanish while the UI is English.
            ui.click("#consent-explain").await;
            ui.screen("print").await;
            assert_eq!(ui.wait("#consent-document").await.attr("lang").await.unwrap().as_deref(), Some("es"));
            assert_eq!(ui.text("#consent-document h1").await, "Su información y sus decisiones");
            assert!(ui.text("#consent-document").await.contains("Compartir con una organización a la que se canaliza"));
            assert_eq!(ui.text("#print-now").await, "Print");
            ui.shot("31-consent-es-ui-en").await;
            ui.axe("consent explanation").await;
            ui.click("#print-back").await;
            ui.screen("case").await;
            // With a referral consent in force, the printout with personal details opens.
            ui.click("#share-prepare").await;
            ui.screen("print").await;
            assert!(ui.text("#printable").await.contains("for a referral organization"));
            assert_eq!(ui.text_of("#printable dd[data-field='people.0.family_name']").await, *payload);
            ui.nothing_ran("referral printout").await;
            ui.shot("32-referral-printout").await;
            ui.click("#print-back").await;
            ui.screen("case").await;
        }
        if i == 1 {
            // Without consent: refused, next to the button, naming what is missing.
            ui.click("#share-prepare").await;
            ui.until_contains("#share-error", "There is no consent in force to share with a referral organization.")
                .await;
            assert!(!ui.text("main").await.contains("for a referral organization"));
            ui.choose("#share-with", "law_enforcement").await;
            ui.click("#share-prepare").await;
            ui.until_contains("#share-error", "share with law enforcement").await;
            ui.shot("33-share-refused").await;
            ui.axe("case with sharing refused").await;
        }
        ui.click("#nav-cases").await;
        ui.screen("list").await;
        ui.until_count("#case-table tbody tr", 50).await;
    }
    ui.nothing_ran("list, at the end").await;
    ui.c.close().await.unwrap();
}

/// Two laptops of one organisation (two data folders, two app windows) and one
/// sync folder, as on a USB stick: the second laptop joins with an invitation made
/// in the first one's window and gets its case; both change the case offline,
/// bundles go through the folder, the conflict shows on the case, a supervisor keeps
/// one value, and after a second exchange both laptops show the same case.
#[tokio::test]
async fn two_laptops_edit_one_case_offline_and_settle_the_conflict() {
    let _serial = SERIAL.lock().await;
    require_environment();
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b, folder) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("usb"));
    std::fs::create_dir_all(&folder).unwrap();
    let number = {
        // The first laptop, with a case and its sync folder chosen.
        let setup = amparo::store::Setup {
            org: "Casa Amparo".into(),
            device_code: "NORTE".into(),
            user: "Marta".into(),
            passphrase: String::from(PASS).into(),
            locale: "en".into(),
        };
        let a = amparo::Store::create(&dir_a, &setup, amparo::database::keys::KdfParams::INSECURE_FOR_TESTS).unwrap();
        a.set_sync_folder(folder.to_str().unwrap()).unwrap();
        let mut a = a;
        let case = a.create_case(amparo::sample::full_case(), None).unwrap();
        case["case_number"].as_str().unwrap().to_string()
    };
    let (driver_a, driver_b) = (Driver::start(&dir_a), Driver::start(&dir_b));
    let a = Ui { c: driver_a.session().await, name: "laptop NORTE" };
    let b = Ui { c: driver_b.session().await, name: "laptop SUR" };
    a.unlock().await;

    // NORTE invites a laptop and writes its changes into the folder.
    a.click("#nav-sync").await;
    a.screen("sync").await;
    a.click("#sync-invite").await;
    let code = a.text("#invite-passphrase").await;
    assert_eq!(code.len(), 23, "{code}");
    a.shot("19-invitation").await;
    a.axe("sync with an invitation").await;
    a.click("#sync-export").await;
    a.until_contains("#sync-result", "changes of 1 cases written to amparo-NORTE-").await;
    let invitation = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("amparo-invitation-"))
        .expect("the invitation is in the sync folder");

    // SUR joins at first start: a wrong invitation passphrase is refused next to
    // its field; the right one sets the laptop up in NORTE's organisation.
    b.click("#choose-en").await;
    b.screen("setup").await;
    b.click("#setup-join").await;
    b.type_in("#setup-invitation", invitation.to_str().unwrap()).await;
    b.type_in("#setup-invitation-passphrase", "AAAAA-AAAAA-AAAAA-AAAAA").await;
    b.type_in("#setup-device", "SUR").await;
    b.type_in("#setup-user", "Rita").await;
    b.type_in("#setup-passphrase", PASS).await;
    b.type_in("#setup-passphrase2", PASS).await;
    b.click("#setup-submit").await;
    b.until_contains("#setup-invitation-passphrase-error", "invitation passphrase is not correct").await;
    b.axe("setup, joining").await;
    b.shot("24-join-refused").await;
    b.wait("#setup-invitation-passphrase").await.clear().await.unwrap();
    b.type_in("#setup-invitation-passphrase", &code.to_lowercase()).await;
    b.click("#setup-submit").await;
    b.screen("recovery-key").await;
    b.click("#recovery-done").await;
    b.click("#recovery-continue").await;
    b.screen("list").await;
    assert!(b.text("#who").await.contains("Casa Amparo"));
    b.click("#nav-sync").await;
    b.screen("sync").await;
    b.type_in("#sync-folder", folder.to_str().unwrap()).await;
    b.click("#sync-folder-save").await;
    b.until_text("#sync-folder-form div[role='status']", "Sync folder saved.").await;
    b.click("#sync-import").await;
    b.until_contains("#sync-files", "From NORTE: 1 new cases, 0 updated, 0 removed, 0 conflicts to review.").await;
    b.click("#nav-cases").await;
    a.click("#nav-cases").await;

    // Offline, each laptop changes the case's status its own way.
    for (ui, status) in [(&a, "FollowUp"), (&b, "Closed")] {
        ui.until_count("#case-table tbody tr", 1).await;
        ui.click("#case-table tbody button").await;
        ui.screen("case").await;
        ui.choose("#case-status", status).await;
        ui.click("#case-status-save").await;
        ui.until_text("#case-status-save ~ p.saved", "Status changed.").await;
        assert!(ui.text("#case-unexported").await.contains("other laptops do not have yet"));
        ui.click("#nav-cases").await;
        ui.until_count("#case-table [data-unexported]", 1).await;
    }
    a.shot("20-not-yet-synced").await;

    // NORTE writes its bundle into the folder; SUR reads it.
    a.click("#nav-sync").await;
    a.screen("sync").await;
    assert_eq!(a.value("#sync-folder").await, folder.to_str().unwrap());
    a.click("#sync-export").await;
    a.until_contains("#sync-result", "changes of 1 cases written to amparo-NORTE-").await;
    a.axe("sync").await;
    b.click("#nav-sync").await;
    b.screen("sync").await;
    b.click("#sync-import").await;
    // SUR's own value is the newer one, so the case still reads the same: one
    // conflict to review, nothing overwritten.
    b.until_contains("#sync-files", "From NORTE: 0 new cases, 0 updated, 0 removed, 1 conflicts to review.").await;
    assert!(b.text("#sync-peers").await.contains("NORTE"));
    b.shot("21-sync-read").await;
    b.axe("sync after reading").await;

    // The conflict shows on the case, with both values, where and who.
    b.click("#nav-cases").await;
    b.until_count("#case-table tbody tr", 1).await;
    b.click("#case-table tbody button").await;
    b.screen("case").await;
    let conflict = b.text("#conflicts").await;
    for part in ["Two versions to review", "Follow-up", "Closed", "NORTE, Marta", "SUR, Rita"] {
        assert!(conflict.contains(part), "{part:?} not in {conflict:?}");
    }
    b.shot("22-conflict").await;
    b.axe("case with a conflict").await;
    // Rita (an administrator, so also a supervisor) keeps NORTE's value.
    let keep = b
        .c
        .execute(
            "const li = [...document.querySelectorAll('#conflicts .conflict-values li')].find(l => l.textContent.includes('NORTE'));
             return li.querySelector('button').dataset.choice;",
            vec![],
        )
        .await
        .unwrap();
    b.click(&format!("#conflicts button[data-choice='{}']", keep.as_str().unwrap())).await;
    b.screen("case").await;
    b.until("the conflict to go", async || b.c.find(Locator::Css("#conflicts")).await.is_err()).await;
    assert_eq!(b.value("#case-status").await, "FollowUp");

    // Second exchange: SUR's resolution reaches NORTE.
    b.click("#nav-sync").await;
    b.screen("sync").await;
    b.click("#sync-export").await;
    b.until("the export to end", async || b.c.find(Locator::Css("#sync-result p")).await.is_ok()).await;
    let written = b.text("#sync-result").await;
    assert!(written.contains("written to amparo-SUR-"), "{written}");
    a.click("#nav-sync").await;
    a.screen("sync").await;
    a.click("#sync-import").await;
    a.until_contains("#sync-files", "From SUR:").await;
    a.until_contains("#sync-files", "0 conflicts to review").await;
    for ui in [&a, &b] {
        ui.click("#nav-cases").await;
        ui.until_count("#case-table tbody tr", 1).await;
        ui.click("#case-table tbody button").await;
        ui.screen("case").await;
        assert_eq!(ui.value("#case-status").await, "FollowUp", "{}", ui.name);
        assert!(ui.c.find(Locator::Css("#conflicts")).await.is_err(), "{}: conflict still shown", ui.name);
        assert!(ui.text("h1").await.contains(&number));
    }
    a.shot("23-settled").await;
    a.c.close().await.unwrap();
    b.c.close().await.unwrap();
}

/// A case for the fact sheet: one potential victim, a venue, a recruiter relation.
fn report_case(status: &str, gender: &str, age: u32, nationality: &str, venue: &str, recruiter: &str) -> Value {
    json!({
        "format": "amparo.case/1", "intake_date": "2026-02-10", "intake_channel": "Hotline", "status": status,
        "trafficking_type": "Sex", "venues": [venue], "recruiter_relation": [recruiter],
        "people": [{"role": "PotentialVictim", "gender": gender, "age_estimate": age, "nationality": [nationality],
                    "preferred_language": "es"}],
    })
}

#[tokio::test]
async fn the_fact_sheet_with_its_charts_shareable_and_in_spanish() {
    let _serial = SERIAL.lock().await;
    require_environment();
    let data = tempfile::tempdir().unwrap();
    prepared_store(data.path());
    {
        let mut store = amparo::Store::open(data.path(), PASS).unwrap();
        for _ in 0..13 {
            store
                .create_case(report_case("Active", "Feminine", 24, "MX", "HotelMotel", "IntimatePartner"), None)
                .unwrap();
        }
        for _ in 0..3 {
            store
                .create_case(report_case("Closed", "Masculine", 16, "GT", "BarClubCantina", "Employer"), None)
                .unwrap();
        }
    }
    let driver = Driver::start(data.path());
    let ui = Ui { c: driver.session().await, name: "report" };
    ui.unlock().await;
    ui.click("#nav-report").await;
    ui.screen("report").await;

    // The whole record at first: totals, one bar per venue, the table saying the same.
    assert_eq!(ui.text("#report-cases").await, "16");
    assert_eq!(ui.text("#report-victims").await, "16");
    assert_eq!(ui.text("#report-period").await, "All intake dates");
    ui.until_count("#report-venues-chart rect", 2).await;
    let venue_rows = |ui: &Ui| {
        let c = ui.c.clone();
        async move {
            c.execute(
                "return [...document.querySelectorAll('#report-venues-table tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent])",
                vec![],
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(venue_rows(&ui).await, json!([["Hotel / motel", "13"], ["Bar / club / cantina", "3"]]));
    // The longer bar is the bigger count.
    let widths =
        ui.c.execute(
            "return [...document.querySelectorAll('#report-venues-chart rect')].map(r => +r.getAttribute('width'))",
            vec![],
        )
        .await
        .unwrap();
    let w: Vec<f64> = serde_json::from_value(widths).unwrap();
    assert!(w[0] > w[1] * 3.0, "bars not to scale: {w:?}");
    // Demographics as cases involving, with the footnote.
    let demo =
        ui.c.execute(
            "return [...document.querySelectorAll('#report-demographics-table tbody td')].map(c => c.textContent)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(demo, json!(["13", "3", "0", "3", "13"]));
    assert!(ui.text("#report-footnote").await.contains("do not add up"));
    // The chart is an image named by its heading and described by its table.
    let chart = ui.wait("#report-nationality-chart").await;
    assert_eq!(chart.attr("role").await.unwrap().as_deref(), Some("img"));
    assert_eq!(chart.attr("aria-describedby").await.unwrap().as_deref(), Some("report-nationality-table"));
    ui.axe("fact sheet").await;
    ui.c.execute("document.getElementById('report-venues').scrollIntoView()", vec![]).await.unwrap();
    ui.shot("40-fact-sheet").await;

    // A filter: the closed cases only.
    ui.choose("#report-status", "Closed").await;
    ui.click("#report-run").await;
    ui.until_text("#report-cases", "3").await;
    assert_eq!(venue_rows(&ui).await, json!([["Bar / club / cantina", "3"]]));

    // Shareable: small counts become "<11"; a threshold of 1 is refused next to its field.
    ui.choose("#report-status", "").await;
    ui.click("#report-shareable").await;
    let k = ui.wait("#report-k").await;
    k.clear().await.unwrap();
    k.send_keys("1").await.unwrap();
    ui.click("#report-run").await;
    ui.until_contains("#report-k-error", "from 2 to 1000").await;
    let k = ui.wait("#report-k").await;
    k.clear().await.unwrap();
    k.send_keys("11").await.unwrap();
    ui.click("#report-run").await;
    ui.until("the shareable table", async || {
        venue_rows(&ui).await == json!([["Hotel / motel", "13"], ["Bar / club / cantina", "<11"]])
    })
    .await;
    assert_eq!(ui.text("#report-k-error").await, "");
    assert!(ui.text("#report-suppressed").await.contains("<11"));

    // Records for partners: a folder that is not there is refused next to it; then
    // the file holds the 13 who share a combination, and the 3 others are left out.
    let stick = tempfile::tempdir().unwrap();
    ui.type_in("#deid-folder", "/no/such/stick").await;
    ui.click("#deid-save").await;
    ui.until_contains("#deid-folder-error", "not").await;
    let f = ui.wait("#deid-folder").await;
    f.clear().await.unwrap();
    f.send_keys(stick.path().to_str().unwrap()).await.unwrap();
    ui.click("#deid-save").await;
    ui.until_contains("#deid-result", "13 records").await;
    assert!(ui.text("#deid-result").await.contains("Left out: 3 whose combination occurs fewer than 11 times"));
    assert_eq!(ui.text("#deid-folder-error").await, "");
    let saved: Vec<_> = std::fs::read_dir(stick.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let csv = std::fs::read_to_string(&saved[0]).unwrap();
    assert_eq!(csv.lines().count(), 14);
    assert!(csv.lines().skip(1).all(|l| l.contains(",Feminine,24-26,Adult,MX,HotelMotel,")), "{csv}");

    // HTCDS: none of these survivors consented to sharing, so no case leaves.
    ui.click("#htcds-save").await;
    ui.until_contains("#htcds-result", "0 cases").await;
    assert!(ui.text("#htcds-result").await.contains("Left out for lack of consent in force: 16."));
    // From the HTCDS spreadsheet: a bad cell is named, then the file goes in.
    let sheet = stick.path().join("htcds.csv");
    std::fs::write(&sheet, "cas_Status,prs_FirstName,prs_Gender\nActive,Lupe,Mujer\nClosed,Sol,Female\n").unwrap();
    ui.type_in("#htcds-import-file", sheet.to_str().unwrap()).await;
    ui.click("#htcds-import").await;
    ui.until_contains("#htcds-import-issues", "Line 2, prs_Gender:").await;
    // As the toolkit's spreadsheet has them: its labels, and a column of its own.
    let filled = "cas_Status,prs_FirstName,prs_Gender,prs_Salutation\nActive,Lupe,Feminine,Sra.\nClosed,Sol,Not Specified/Unknown,\n";
    std::fs::write(&sheet, filled).unwrap();
    ui.click("#htcds-import").await;
    ui.until_contains("#htcds-import-result", "2 cases imported.").await;
    assert!(ui.text("#htcds-import-ignored").await.contains("Columns not read: prs_Salutation."));
    ui.click("#report-run").await;
    ui.until_text("#report-cases", "18").await;

    // Which of our fields fills each HTCDS column, in the help beside the export.
    ui.click("#htcds-columns summary").await;
    let row = "#htcds-columns tr:has(code)";
    ui.until("the column help", async || ui.text_of(row).await.contains("prs_FirstName")).await;
    let help = ui.text_of("#htcds-columns tbody").await;
    assert!(
        help.contains("vic_TraffickingStatus") && help.contains("Identified as a victim of trafficking?"),
        "{help}"
    );

    // The same screen in Spanish, switched in place.
    ui.key(&alt('l')).await;
    ui.until_contains("#report-footnote", "no suman").await;
    // The header says who is working in the language chosen, role included.
    assert!(ui.text("#who").await.contains("(Administrador(a))"), "{}", ui.text("#who").await);
    let help = ui.text_of("#htcds-columns tbody").await;
    assert!(help.contains("¿Se le identificó como víctima de trata?"), "relabelled in place: {help}");
    assert_eq!(
        ui.text_of("#report-demographics-table caption").await,
        "Casos con al menos una posible víctima que es…"
    );
    assert_eq!(ui.text("#report-run").await, "Mostrar la hoja informativa");
    ui.shot("41-fact-sheet-es").await;
    ui.c.close().await.unwrap();
}

#[tokio::test]
async fn directory_referral_slip_in_spanish_under_an_english_ui_and_rights_information() {
    let _serial = SERIAL.lock().await;
    require_environment();
    let data = tempfile::tempdir().unwrap();
    prepared_store(data.path());
    let number = {
        let mut store = amparo::Store::open(data.path(), PASS).unwrap();
        let case = json!({
            "format": "amparo.case/1", "intake_date": "2026-03-14", "intake_channel": "Outreach", "status": "Active",
            "people": [{"role": "PotentialVictim", "alias": "Rosa", "gender": "Female", "preferred_language": "es"}],
            "needs": [{"service": "Shelter", "status": "Identified"}],
        });
        store.create_case(case, None).unwrap()["case_number"].as_str().unwrap().to_string()
    };
    let driver = Driver::start(data.path());
    let ui = Ui { c: driver.session().await, name: "directory" };
    ui.unlock().await;

    // The directory starts with both national hotlines, found without accents.
    ui.click("#nav-directory").await;
    ui.screen("directory").await;
    assert_eq!(ui.text("#dir-count").await, "2 organizations");
    ui.type_in("#dir-text", "linea nacional").await;
    ui.until_count("#dir-results > li", 1).await;
    assert!(ui.text("#dir-results").await.contains("+52 800 553 3000"));

    // A shelter in Tijuana: a bad phone is refused next to the field, then saved.
    ui.click("#dir-add").await;
    ui.screen("directory-edit").await;
    ui.type_in("#dir-f-name", "Albergue Nazareth").await;
    ui.type_in("#dir-f-subdivision", "MX-BCN").await;
    ui.type_in("#dir-f-city", "Tijuana").await;
    ui.click("#dir-f-services-Shelter").await;
    ui.click("#dir-f-languages-es").await;
    ui.type_in("#dir-f-phone", "664 680").await;
    ui.click("#dir-save").await;
    ui.until_contains("#dir-f-phone-error", "+").await;
    ui.axe("directory entry form").await;
    ui.shot("49-directory-entry").await;
    let phone = ui.wait("#dir-f-phone").await;
    phone.clear().await.unwrap();
    phone.send_keys("+526646800000").await.unwrap();
    ui.click("#dir-save").await;
    ui.screen("directory").await;
    assert_eq!(ui.text("#dir-saved").await, "Albergue Nazareth was saved.");
    ui.choose("#dir-service", "Shelter").await;
    ui.until_count("#dir-results > li", 1).await;
    assert!(ui.text("#dir-results h2").await.starts_with("Albergue Nazareth"));
    ui.axe("directory").await;
    ui.shot("50-directory").await;
    // A list from a partner: the bad row is named, then both come in.
    let csv = data.path().join("orgs.csv");
    std::fs::write(
        &csv,
        "name,country,city,services,phone\nCasa Amiga,MX,Ciudad Juárez,Legal,+526566158571\nSin número,MX,,Legal,656\n",
    )
    .unwrap();
    ui.type_in("#dir-import-file", csv.to_str().unwrap()).await;
    ui.click("#dir-import").await;
    ui.until_contains("#dir-import-issues", "Line 3, phone:").await;
    std::fs::write(
        &csv,
        "name,country,city,services,phone\nCasa Amiga,MX,Ciudad Juárez,Legal,+526566158571\nOtra Casa,MX,,Legal,\n",
    )
    .unwrap();
    ui.click("#dir-import").await;
    ui.until_text("#dir-import-result", "2 organizations added.").await;
    // The same list in Spanish, relabelled in place.
    ui.key(&alt('l')).await;
    ui.until_text("#dir-count", "1 organización").await;
    assert!(ui.text("#dir-results").await.contains("Servicios: Refugio"));
    ui.shot("50b-directory-es").await;
    ui.key(&alt('l')).await;
    ui.until_text("#dir-count", "1 organization").await;

    // From the case's need to the shelter: sharing details without consent is refused.
    ui.click("#nav-cases").await;
    ui.until_count("#case-table tbody tr", 1).await;
    ui.click("#case-table tbody button").await;
    ui.screen("case").await;
    assert!(ui.text("h1").await.contains(&number));
    assert_eq!(ui.value("#ref-service").await, "Shelter");
    assert_eq!(ui.text("#ref-org option:checked").await, "Albergue Nazareth · Tijuana");
    ui.click("#ref-share").await;
    ui.click("#ref-create").await;
    ui.until_contains("#ref-error", "consent").await;
    ui.click("#ref-share").await;
    ui.click("#ref-create").await;
    ui.until_text("#case-notice", "The referral was made.").await;
    assert!(ui.text("#ref-table tbody tr").await.contains("Albergue Nazareth"));
    assert_eq!(ui.value("#ref-status-0").await, "Pending");
    ui.choose("#ref-status-0", "Accepted").await;
    ui.click("#ref-status-save-0").await;
    ui.until_text("#ref-status-msg-0", "Status changed.").await;
    ui.c.execute("document.getElementById('referrals').scrollIntoView()", vec![]).await.unwrap();
    ui.axe("case with a referral").await;
    ui.shot("50c-referrals").await;

    // The slip prints in Rosa's Spanish while the screen stays in English.
    ui.click("#ref-slip-0").await;
    ui.screen("print").await;
    let slip = ui.wait("#referral-slip").await;
    assert_eq!(slip.attr("lang").await.unwrap().as_deref(), Some("es"));
    let text = ui.text("#referral-slip").await;
    for part in [
        "Canalización",
        "Le canalizamos a esta organización para: Refugio.",
        "Albergue Nazareth",
        "Dónde: Tijuana, México",
        "Teléfono: +52 664 680 0000",
        "No le dimos su nombre ni sus datos a esta organización",
        "Línea Nacional contra la Trata de Personas: llame al +52 800 553 3000 (24/7)",
        "National Human Trafficking Hotline: llame al +1 888 373 7888 o envíe un mensaje de texto al 233733",
    ] {
        assert!(text.contains(part), "slip lacks {part:?}:\n{text}");
    }
    assert!(!text.contains("Rosa"), "the slip names nobody:\n{text}");
    assert_eq!(ui.text("#print-now").await, "Print");
    ui.axe("referral slip").await;
    ui.shot("51-referral-slip-es").await;

    // Rights information, in her language too.
    ui.click("#print-back").await;
    ui.screen("case").await;
    ui.click("#rights-show").await;
    ui.screen("print").await;
    let rights = ui.wait("#rights-document").await;
    assert_eq!(rights.attr("lang").await.unwrap().as_deref(), Some("es"));
    let text = ui.text("#rights-document").await;
    for part in
        ["Sus derechos y dónde encontrar ayuda", "no dependen de su situación migratoria", "visa T", "+1 888 373 7888"]
    {
        assert!(text.contains(part), "rights lack {part:?}:\n{text}");
    }
    ui.axe("rights information").await;
    ui.shot("52-rights-es").await;
    ui.c.close().await.unwrap();
}

/// A real hub on loopback (its own runtime, so started outside the test's).
fn start_hub(dir: &Path, listen: &str) -> amparo_hub::run::Background {
    let (dir, listen) = (dir.to_path_buf(), listen.to_string());
    std::thread::spawn(move || amparo_hub::run::Background::start(&dir, None, &listen).unwrap()).join().unwrap()
}

/// Record every state the header shows of the hub, to see it go through them.
async fn watch_hub_state(ui: &Ui) {
    ui.c.execute(
        "window.__hubStates = [];
         const el = document.getElementById('hub-state');
         const note = () => { const s = el.dataset.state; if (s && window.__hubStates.at(-1) !== s) window.__hubStates.push(s); };
         note();
         new MutationObserver(note).observe(el, { attributes: true, attributeFilter: ['data-state'] });",
        vec![],
    )
    .await
    .unwrap();
}

async fn hub_states(ui: &Ui) -> Vec<String> {
    let v = ui.c.execute("return window.__hubStates", vec![]).await.unwrap();
    serde_json::from_value(v).unwrap()
}

/// Two app windows on two data folders, syncing through a real hub on loopback
/// with nobody pressing a sync button: the administrator connects her laptop in
/// the Sync screen, the second laptop joins with an invitation and enrols by
/// itself, a change made on one arrives on the other, and while the hub is down
/// the header says so and keeps the change waiting until it is back.
#[tokio::test]
async fn two_windows_sync_through_a_hub_by_themselves() {
    let _serial = SERIAL.lock().await;
    require_environment();
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b, folder, hub_dir) =
        (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("usb"), tmp.path().join("hub"));
    std::fs::create_dir_all(&folder).unwrap();
    let hub = start_hub(&hub_dir, "127.0.0.1:0");
    let listen = hub.url.trim_start_matches("https://").to_string();
    let (url, fingerprint) = (hub.url.clone(), hub.fingerprint.clone());
    let setup_code = hub.setup_code.clone().expect("a new hub prints a setup code");
    {
        let setup = amparo::store::Setup {
            org: "Casa Amparo".into(),
            device_code: "NORTE".into(),
            user: "Marta".into(),
            passphrase: String::from(PASS).into(),
            locale: "en".into(),
        };
        let mut a =
            amparo::Store::create(&dir_a, &setup, amparo::database::keys::KdfParams::INSECURE_FOR_TESTS).unwrap();
        a.set_sync_folder(folder.to_str().unwrap()).unwrap();
        a.create_case(amparo::sample::full_case(), None).unwrap();
    }
    let fast = [("AMPARO_SYNC_INTERVAL_SECONDS", "2")];
    let driver_a = Driver::start_with(&dir_a, &fast);
    let a = Ui { c: driver_a.session().await, name: "laptop NORTE" };
    a.unlock().await;
    assert!(a.wait("#hub-state").await.attr("hidden").await.unwrap().is_some(), "no hub, nothing said of one");

    // Marta connects her laptop to the hub: a wrong setup code is refused with a
    // message, the right one connects.
    a.click("#nav-sync").await;
    a.screen("sync").await;
    a.click("#hub-connect").await;
    a.until_contains("#hub-url-error", "fill in this field").await;
    a.type_in("#hub-url", &url).await;
    a.type_in("#hub-fingerprint", &fingerprint).await;
    a.type_in("#hub-setup-code", "WRONG-CODE").await;
    a.click("#hub-connect").await;
    a.until_contains("#hub-result", "did not accept the setup code").await;
    a.axe("sync, connecting to a hub").await;
    a.wait("#hub-setup-code").await.clear().await.unwrap();
    a.type_in("#hub-setup-code", &setup_code).await;
    a.click("#hub-connect").await;
    a.until_contains("#hub-where", &url).await;
    // With nobody pressing anything, the case goes up and the header says so.
    a.until_contains("#hub-state", "Up to date · last synced").await;
    a.shot("40-hub-connected").await;
    a.axe("sync with a hub").await;

    // An invitation now carries the hub; Rita's laptop joins with it.
    a.click("#sync-invite").await;
    let code = a.text("#invite-passphrase").await;
    let invitation = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("amparo-invitation-"))
        .expect("the invitation is in the sync folder");
    {
        let setup = amparo::store::Setup {
            org: String::new(),
            device_code: "SUR".into(),
            user: "Rita".into(),
            passphrase: String::from(PASS).into(),
            locale: "en".into(),
        };
        let inv = std::fs::read(&invitation).unwrap();
        let kdf = amparo::database::keys::KdfParams::INSECURE_FOR_TESTS;
        let b = amparo::Store::join(&dir_b, &inv, &code, &setup, kdf).unwrap();
        assert!(b.hub_enrolment().unwrap().is_some(), "enrolment waits for the app");
    }
    let driver_b = Driver::start_with(&dir_b, &fast);
    let b = Ui { c: driver_b.session().await, name: "laptop SUR" };
    b.unlock().await;
    // SUR enrols and pulls NORTE's case by itself; the list shows it once opened again.
    b.until_contains("#hub-state", "Up to date · last synced").await;
    b.until("NORTE's case on SUR", async || {
        b.c.find(Locator::Css("#nav-cases")).await.unwrap().click().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.c.find_all(Locator::Css("#case-table tbody tr")).await.map(|r| r.len() == 1).unwrap_or(false)
    })
    .await;

    // The hub goes down. SUR changes the case; the header says offline, and that
    // the change waits.
    drop(hub);
    watch_hub_state(&b).await;
    b.click("#case-table tbody button").await;
    b.screen("case").await;
    b.choose("#case-status", "Closed").await;
    b.click("#case-status-save").await;
    b.until_text("#case-status-save ~ p.saved", "Status changed.").await;
    b.until_contains("#hub-state", "Offline: the hub does not answer; changes waiting to be sent: ").await;
    b.shot("41-hub-offline").await;
    b.axe("case, hub offline").await;

    // Back on the same address, with the same certificate: the change goes up and
    // arrives on NORTE, still with nobody pressing a sync button.
    let hub = start_hub(&hub_dir, &listen);
    assert_eq!(hub.fingerprint, fingerprint);
    b.until_contains("#hub-state", "Up to date · last synced").await;
    let seen = hub_states(&b).await;
    assert!(seen.contains(&"offline".to_string()) && seen.last().map(String::as_str) == Some("up_to_date"), "{seen:?}");
    a.click("#nav-cases").await;
    a.until("SUR's change on NORTE", async || {
        a.c.find(Locator::Css("#nav-cases")).await.unwrap().click().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Ok(row) = a.c.find(Locator::Css("#case-table tbody tr")).await else { return false };
        row.text().await.is_ok_and(|t| t.contains("Closed"))
    })
    .await;
    a.click("#case-table tbody button").await;
    a.screen("case").await;
    assert_eq!(a.value("#case-status").await, "Closed");
    let waits = a.wait("#case-unexported").await.attr("hidden").await.unwrap();
    assert!(waits.is_some(), "NORTE has nothing of it left to share");

    // Marta sees both laptops on the hub, and revokes SUR after confirming.
    a.click("#nav-sync").await;
    a.screen("sync").await;
    a.until_count("#hub-devices tbody tr", 2).await;
    // Whose each laptop is, as NORTE has heard it (the hub knows no names).
    a.until_contains("#hub-devices", "Rita").await;
    a.click("#hub-devices button[data-revoke='SUR']").await;
    a.until_contains("#hub-devices", "Revoke laptop SUR?").await;
    a.axe("sync, confirming a revocation").await;
    a.click("#hub-devices button[data-confirm-revoke='SUR']").await;
    a.until_contains("#hub-devices-result", "Laptop SUR is revoked").await;
    a.until_contains("#hub-devices", "Revoked").await;
    a.shot("42-hub-revoked").await;
    // SUR hears it at its next sync, in its header.
    b.until_contains("#hub-state", "Sync stopped").await;
    b.click("#nav-sync").await;
    b.screen("sync").await;
    b.until_contains("#hub-result", "revoked").await;
    b.shot("43-revoked-laptop").await;
    drop(hub);
    a.c.close().await.unwrap();
    b.c.close().await.unwrap();
}
