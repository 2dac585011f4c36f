//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files at compile time
//! but only tracks the ones it already knows.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
