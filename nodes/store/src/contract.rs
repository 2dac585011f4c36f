//! The contract suite of the [`Store`] port (STYLE.md rule 11): one set of cases that every
//! implementation passes, so the SQLite and the MySQL store cannot drift apart.
//!
//! `contract_suite!(mod_name, fixture_future)` generates a module with one `#[tokio::test]` per case; the
//! fixture future yields `Some(Fixture)` or `None` to skip. The cases live by theme in `contract/`:
//! users, rooms, room and member pages, messages, edits and deletes, refresh tokens, signing
//! keys, the longest values the rules accept, cluster nodes and shard leases, journal fences,
//! uploads, and ingest sources (feeds).
//!
//! The MySQL fixture reads `BANTER_TEST_MYSQL_URL` (a server URL without a database, as printed by
//! `scripts/mariadb.sh start`) and gives each test its own fresh database, dropped when the test passes
//! (kept for a look when it fails). Without the variable the MySQL cases are skipped with a notice, or
//! fail when `BANTER_REQUIRE_MYSQL=1`.

use std::sync::Arc;

use banter_actors::model::{ChatMessage, NewUser, RoomId, User, UserId};
use banter_actors::ports::Store;
use uuid::Uuid;

use super::{MySqlStore, SqliteStore};

mod events;
mod feeds;
mod fences;
mod leases;
mod limits;
mod messages;
mod room_pages;
mod rooms;
mod signing_keys;
mod tokens;
mod uploads;
mod users;

pub(crate) use events::*;
pub(crate) use feeds::*;
pub(crate) use fences::*;
pub(crate) use leases::*;
pub(crate) use limits::*;
pub(crate) use messages::*;
pub(crate) use room_pages::*;
pub(crate) use rooms::*;
pub(crate) use signing_keys::*;
pub(crate) use tokens::*;
pub(crate) use uploads::*;
pub(crate) use users::*;

/// Generates `mod $suite` with one test per contract case, each on a store from `$fixture` (a future
/// yielding `Option<Fixture>`, `None` to skip).
macro_rules! contract_suite {
    ($suite:ident, $fixture:expr) => {
        $crate::contract::contract_suite!(@cases $suite, $fixture,
            create_and_get_user,
            username_uniqueness_ignores_case,
            sql_metacharacters_are_plain_data,
            search_users_matches_the_prefix_literally,
            update_profile_sets_and_clears,
            create_room_makes_the_creator_owner,
            create_room_refuses_dm,
            add_and_remove_members,
            member_role_is_a_point_lookup,
            membership_of_missing_rows_is_not_found,
            dm_room_is_one_room_per_pair,
            dm_room_races_create_one_room,
            mark_read_never_lowers,
            rooms_of_counts_unread,
            rooms_of_reports_last_activity,
            rooms_of_pages_by_room_id,
            rooms_of_forgets_removed_members,
            room_summary_is_the_listed_summary,
            members_after_pages_by_user_id,
            membership_count_counts_rooms_and_dms,
            find_dm_never_creates,
            insert_messages_is_idempotent,
            messages_keep_their_nonce,
            insert_messages_races_insert_each_row_once,
            insert_messages_chunks_large_batches,
            message_id_under_another_seq_is_a_conflict,
            reserved_seqs_count_in_last_seq,
            bodies_round_trip_byte_exact,
            attachments_round_trip,
            edits_give_the_target_the_last_body,
            deletes_erase_the_target_and_its_edits,
            redelivered_batches_apply_no_old_event,
            deletes_release_the_uploads_of_the_deleted_message,
            unread_and_last_activity_count_messages_only,
            content_types_round_trip,
            keyset_paging_has_no_gap_or_duplicate,
            paging_bounds,
            refresh_token_rotates_once,
            reused_refresh_token_revokes_its_chain,
            revoking_a_chain_logs_it_out,
            failed_rotation_changes_nothing,
            refresh_token_expires,
            refresh_token_races_have_one_winner,
            expired_refresh_tokens_are_purged,
            signing_keys_round_trip,
            signing_key_generation_is_unique,
            signing_key_races_have_one_winner,
            old_signing_keys_are_deleted,
            longest_accepted_fields_round_trip,
            cluster_nodes_register_with_increasing_ids,
            cluster_nodes_that_stop_heartbeating_drop_out,
            lease_on_a_free_shard_has_epoch_1,
            live_lease_is_not_taken,
            expired_lease_is_taken_after_expired_for,
            renewal_keeps_a_lease_for_its_owner_at_its_epoch,
            renewal_after_expiry_loses_the_lease,
            released_lease_is_taken_at_once,
            racing_takers_have_one_winner,
            ensure_shards_is_idempotent,
            ensure_shards_fills_a_large_table,
            renewals_and_takes_run_side_by_side,
            journal_fences_keep_the_highest_epoch,
            journal_fences_of_many_shards_in_one_call,
            contacts_are_the_members_of_small_rooms,
            last_seen_times_only_move_forward,
            uploads_round_trip_and_count_in_the_usage,
            upload_facts_are_kept_and_an_upload_is_used_once,
            stale_uploads_are_the_old_unused_ones_and_deletes_count,
            ensure_source_makes_one_source_and_user,
            ensure_source_never_adopts_a_taken_username,
            ensure_source_races_make_one_source,
            create_feed_room_makes_members_and_a_follow,
            source_room_is_the_unowned_room_of_that_name,
            follows_and_filters_round_trip,
            feed_events_are_upserted,
            feed_events_filter_and_order,
            feed_events_limit_defaults_and_caps,
            feed_posts_are_upserted,
            raw_frames_keep_the_newest,
        );
    };
    (@cases $suite:ident, $fixture:expr, $($case:ident),+ $(,)?) => {
        mod $suite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(fixture) = $fixture.await else {
                        return;
                    };
                    $crate::contract::$case(fixture.store()).await;
                    fixture.teardown().await;
                }
            )+
        }
    };
}

pub(crate) use contract_suite;

/// A store for one test, and what to clean up after it.
pub(crate) struct Fixture {
    store: Arc<dyn Store>,
    cleanup: Cleanup,
}

enum Cleanup {
    /// Removed on drop.
    TempDir(tempfile::TempDir),
    /// Dropped when the test passed.
    Database(MySqlStore, String),
}

impl Fixture {
    /// Returns the store under test.
    pub(crate) fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Cleans up after a test that passed.
    pub(crate) async fn teardown(self) {
        drop(self.store);
        match self.cleanup {
            Cleanup::TempDir(dir) => drop(dir),
            Cleanup::Database(store, name) => {
                if let Err(e) = store.drop_database(&name).await {
                    eprintln!("could not drop test database {name}: {e}");
                }
            }
        }
    }
}

/// Returns a fresh SQLite store in a temporary folder (in a subfolder the store must create itself).
pub(crate) async fn sqlite_fixture() -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("failed to create a temporary folder");
    let path = dir.path().join("nested").join("banter.db");
    let path = path.to_str().expect("temporary path is not UTF-8");
    let store = SqliteStore::open(path)
        .await
        .expect("failed to open the sqlite store");
    Some(Fixture {
        store: Arc::new(store),
        cleanup: Cleanup::TempDir(dir),
    })
}

/// Returns a MySQL store on a fresh database, or `None` (after a notice) when no server is configured.
pub(crate) async fn mysql_fixture() -> Option<Fixture> {
    let Ok(server_url) = std::env::var("BANTER_TEST_MYSQL_URL") else {
        if std::env::var("BANTER_REQUIRE_MYSQL").as_deref() == Ok("1") {
            panic!(
                "BANTER_REQUIRE_MYSQL=1 but BANTER_TEST_MYSQL_URL is unset; start a server with \
                 `eval \"$(scripts/mariadb.sh start | tail -1)\"`"
            );
        }
        eprintln!("skipped: BANTER_TEST_MYSQL_URL is unset (see scripts/mariadb.sh)");
        return None;
    };
    let (store, name) = MySqlStore::connect_fresh_database(&server_url)
        .await
        .expect("failed to create a test database on BANTER_TEST_MYSQL_URL");
    Some(Fixture {
        store: Arc::new(store.clone()),
        cleanup: Cleanup::Database(store, name),
    })
}

/// Registers a user with a placeholder hash.
async fn user(store: &Arc<dyn Store>, username: &str) -> User {
    store
        .create_user(NewUser {
            username: username.to_owned(),
            display_name: format!("{username} display"),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
            created_at_ms: 1_700_000_000_000,
        })
        .await
        .unwrap_or_else(|e| panic!("create_user({username:?}) failed: {e}"))
}

/// Returns a message of `room` at `seq`, sent at `seq * 1000` ms.
fn message(room: RoomId, seq: u64, sender: UserId, body: &str) -> ChatMessage {
    ChatMessage {
        room_id: room,
        seq,
        message_id: Uuid::now_v7(),
        sender_id: sender,
        body: body.to_owned(),
        created_at_ms: i64::try_from(seq).expect("seq fits i64") * 1000,
        nonce: None,
        attachments: Vec::new(),
        ..Default::default()
    }
}

/// Returns messages `from..=to` of `room`.
fn messages(room: RoomId, from: u64, to: u64, sender: UserId) -> Vec<ChatMessage> {
    (from..=to)
        .map(|seq| message(room, seq, sender, &format!("message {seq}")))
        .collect()
}

/// Returns the seqs of messages, in order.
fn seqs(messages: &[ChatMessage]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}
