//! Integration tests of Banter: real `banter` processes on 127.0.0.1 (SQLite, and MariaDB when
//! `BANTER_TEST_MYSQL_URL` is set), driven over real sockets through the REST API and STOMP over
//! WebSocket, as `docs/PROTOCOL.md` describes them. One test binary; the harness is the `banter_tests`
//! library (`harness.rs`). Run everything with `scripts/test.sh`.

mod e2e;
