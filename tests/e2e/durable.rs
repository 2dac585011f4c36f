//! The durable write path (issue #3) on a real broker (tansu, [`banter_tests::kafka::Broker`]) and a
//! real MariaDB: a message is acknowledged once the Kafka journal has it, and the persister writes it
//! into MySQL.
//!
//! - [`end_to_end`]: several clients pipeline SENDs into one room; every RECEIPTed message is in MySQL
//!   exactly once, seqs 1..N in order, with the receipts' message ids;
//! - [`persister_kill`]: a persister-only process is SIGKILLed mid-batch three times beside a
//!   gateway-only one: row count == acked count, no duplicate, no gap;
//! - [`broker_restart`]: the broker is SIGKILLed and restarted during a send loop (every SEND answered,
//!   every RECEIPTed message stored), and stopped for longer than the message timeout (an ERROR saying
//!   the message was not stored, never a hang);
//! - [`db_outage`]: a private MariaDB is stopped for several seconds under load: receipts keep coming,
//!   the persister's lag rises, then drains to 0 with nothing lost;
//! - [`node_kill`]: the node is SIGKILLed while a room is busy; after a restart the room continues at
//!   the highest seq ever receipted or stored + 1;
//! - [`history_tail`]: with the persister down, REST history still holds every receipted message
//!   (from the room's ring and the journal), paged across the store's newest message, also after the
//!   gateway restarts;
//! - [`stall`]: the broker is frozen (SIGSTOP) past the message timeout during SENDs with a `nonce`:
//!   each is RECEIPTed or reported with an unknown outcome, and a resend with the same nonce after
//!   SIGCONT is RECEIPTed and stored exactly once;
//! - [`resume_tail`]: with the persister down, a SUBSCRIBE with `since` below the room's ring gets
//!   every receipted message after it (store, journal, ring, then live), no gap, no duplicate.
//!
//! Each test owns its broker and its database, and skips with a notice when the broker (tansu) or
//! MySQL is unavailable, unless `BANTER_REQUIRE_KAFKA=1` / `BANTER_REQUIRE_MYSQL=1`. Every wait is
//! bounded; nothing asserts on timing beyond "answered within the message timeout plus a margin".
//! The poison-record → dead-letter case is tested at the node level (`nodes/kafka`, with rdkafka).

mod broker_restart;
mod db_outage;
mod end_to_end;
mod history_tail;
mod node_kill;
mod persister_kill;
mod resume_tail;
mod stall;
pub(crate) mod support;
mod tail;
