//! Throwaway MariaDB/MySQL databases for nodes that run on the MySQL store.
//!
//! `BANTER_TEST_MYSQL_URL` names the server without a database (`mysql://banter:banter@127.0.0.1:3307`,
//! as `scripts/mariadb.sh start` prints it). Each [`TestDatabase`] is a fresh `banter_it_<hex>`
//! database, created and dropped with the `mariadb`/`mysql` client binary, so the harness needs no
//! database driver of its own.

use std::process::Command;

use anyhow::{Context, Result, bail};
use reqwest::Url;

use crate::util::random_hex;

/// Variable naming the MySQL server the tests may use.
pub const MYSQL_URL_VAR: &str = "BANTER_TEST_MYSQL_URL";
/// When `1`, tests that need MySQL fail instead of being skipped when [`MYSQL_URL_VAR`] is unset.
pub const REQUIRE_MYSQL_VAR: &str = "BANTER_REQUIRE_MYSQL";

/// Returns the server URL from the environment, `None` when unset. Panics (fails the test) when it is
/// unset and `BANTER_REQUIRE_MYSQL=1`; otherwise prints a skip notice for `test`.
pub fn server_url_or_skip(test: &str) -> Option<String> {
    match std::env::var(MYSQL_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_owned()),
        _ => {
            if std::env::var(REQUIRE_MYSQL_VAR).as_deref() == Ok("1") {
                panic!(
                    "{test}: {MYSQL_URL_VAR} is unset but {REQUIRE_MYSQL_VAR}=1 (run scripts/mariadb.sh start)"
                );
            }
            eprintln!(
                "SKIPPED {test}: {MYSQL_URL_VAR} is unset (run scripts/test.sh, or eval \"$(scripts/mariadb.sh start | tail -1)\")"
            );
            None
        }
    }
}

/// A database created for one node; dropped when this value is.
#[derive(Debug)]
pub struct TestDatabase {
    server: Url,
    name: String,
}

impl TestDatabase {
    /// Creates `banter_it_<hex>` on the server at `server_url` (no database in the path).
    pub fn create(server_url: &str) -> Result<Self> {
        let server = Url::parse(server_url)
            .with_context(|| format!("failed to parse {MYSQL_URL_VAR}={server_url}"))?;
        if server.scheme() != "mysql" && server.scheme() != "mariadb" {
            bail!("{MYSQL_URL_VAR} must be a mysql:// URL, got {server_url}");
        }
        let db = TestDatabase {
            server,
            name: format!("banter_it_{}", random_hex(16)),
        };
        db.sql(&format!("CREATE DATABASE `{}`", db.name))?;
        Ok(db)
    }

    /// Returns the database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the URL of the database, for `BANTER_STORE__URL`.
    pub fn url(&self) -> String {
        let mut u = self.server.clone();
        u.set_path(&format!("/{}", self.name));
        u.to_string()
    }

    fn sql(&self, statement: &str) -> Result<()> {
        let host = self.server.host_str().unwrap_or("127.0.0.1");
        let port = self.server.port().unwrap_or(3306).to_string();
        let user = percent_decode(self.server.username());
        let password = percent_decode(self.server.password().unwrap_or(""));
        let mut last_err = None;
        for client in ["mariadb", "mysql"] {
            let out = Command::new(client)
                .args([
                    "--no-defaults",
                    "--protocol=TCP",
                    "--batch",
                    "-h",
                    host,
                    "-P",
                    &port,
                    "-u",
                    &user,
                ])
                .arg("-e")
                .arg(statement)
                .env("MYSQL_PWD", &password)
                .output();
            match out {
                Ok(out) if out.status.success() => return Ok(()),
                Ok(out) => bail!(
                    "{client} failed ({}) running {statement}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(e) => last_err = Some(e),
            }
        }
        bail!(
            "no mariadb/mysql client binary could be run: {last_err:?} (apt-get install mariadb-client)"
        )
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Err(e) = self.sql(&format!("DROP DATABASE IF EXISTS `{}`", self.name)) {
            eprintln!("warning: could not drop test database {}: {e:#}", self.name);
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let Some(b) = escaped {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
