// rust-i18n compiles locales/*.yml into the crate; tell cargo to rebuild when a
// locale changes, or an edited message would silently not ship.
fn main() {
    println!("cargo:rerun-if-changed=../../locales");
    println!("cargo:rerun-if-changed=../../locales/en.yml");
    println!("cargo:rerun-if-changed=../../locales/es.yml");
}
