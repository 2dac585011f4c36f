//! The service binaries the tests run, built once per machine by the scripts (`scripts/kafka.sh`,
//! `scripts/s3.sh`): where each is, and what a test does when it is missing — skip with a notice,
//! or fail when the run requires it (`scripts/test.sh` requires them all).

use std::path::PathBuf;

/// A binary a test runs.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// Variable naming the binary.
    pub var: &'static str,
    /// Its file under `$HOME/.cache/banter/tools/bin` when the variable is unset.
    pub file: &'static str,
    /// When this variable is `1`, a test that needs the binary fails instead of skipping.
    pub require_var: &'static str,
    /// The script that installs it.
    pub script: &'static str,
}

impl Tool {
    /// Returns the binary: the variable's value when set, else the cached file; `None` when that
    /// file does not exist.
    pub fn bin(&self) -> Option<PathBuf> {
        let bin = match std::env::var_os(self.var) {
            Some(bin) if !bin.is_empty() => PathBuf::from(bin),
            _ => PathBuf::from(std::env::var_os("HOME")?)
                .join(".cache/banter/tools/bin")
                .join(self.file),
        };
        bin.is_file().then_some(bin)
    }

    /// Returns the binary, `None` when it is missing. Panics (fails the test) when it is missing
    /// and required; otherwise prints a skip notice for `test`.
    pub fn bin_or_skip(&self, test: &str) -> Option<PathBuf> {
        if let Some(bin) = self.bin() {
            return Some(bin);
        }
        let wanted = std::env::var_os(self.var).map_or_else(
            || format!("$HOME/.cache/banter/tools/bin/{}", self.file),
            |b| PathBuf::from(b).display().to_string(),
        );
        if std::env::var(self.require_var).as_deref() == Ok("1") {
            panic!(
                "{test}: {wanted} is missing but {}=1 (run {} install)",
                self.require_var, self.script
            );
        }
        eprintln!(
            "SKIPPED {test}: {wanted} is missing (run scripts/test.sh, or {} install)",
            self.script
        );
        None
    }
}

/// The name of the running test (libtest names each test's thread after it).
pub fn current_test(fallback: &str) -> String {
    std::thread::current().name().unwrap_or(fallback).to_owned()
}
