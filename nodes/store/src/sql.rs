//! SQL text both stores run as is (`?` placeholders, no dialect feature), so that the two cannot drift
//! apart on reads. Statements that differ by dialect (`RETURNING`, upserts, `MAX`/`GREATEST`) stay in
//! `sqlite.rs` and `mysql.rs`.

/// Selects a user by id.
pub(super) const USER_BY_ID: &str = "SELECT id, username, display_name, password_hash, avatar_ref, created_at_ms \
     FROM users WHERE id = ?";

/// Selects a user by (lowercase) username.
pub(super) const USER_BY_USERNAME: &str = "SELECT id, username, display_name, password_hash, avatar_ref, created_at_ms \
     FROM users WHERE username = ?";

/// Selects users by a `LIKE` pattern escaped with `!` (see `like_prefix`), then a limit.
pub(super) const SEARCH_USERS: &str = "SELECT id, username, display_name, password_hash, avatar_ref, created_at_ms \
     FROM users WHERE username LIKE ? ESCAPE '!' ORDER BY username LIMIT ?";

/// Selects a room by id.
pub(super) const ROOM_BY_ID: &str =
    "SELECT id, kind, name, created_by, created_at_ms FROM rooms WHERE id = ?";

/// Selects the DM room of a dm key.
pub(super) const ROOM_BY_DM_KEY: &str =
    "SELECT id, kind, name, created_by, created_at_ms FROM rooms WHERE dm_key = ?";

/// Deletes a membership (room, user).
pub(super) const REMOVE_MEMBER: &str = "DELETE FROM room_members WHERE room_id = ? AND user_id = ?";

/// Selects the role of one member.
pub(super) const MEMBER_ROLE: &str =
    "SELECT role FROM room_members WHERE room_id = ? AND user_id = ?";

/// Deletes expired refresh tokens.
pub(super) const PURGE_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE expires_at_ms <= ?";

/// Selects the users who share a room with a user (user id, then the most members a room may have
/// to count, then a limit), by id. The count runs on the primary key's range of each of the user's
/// rooms.
pub(super) const CONTACTS: &str = "SELECT DISTINCT b.user_id FROM room_members a \
     JOIN room_members b ON b.room_id = a.room_id \
     WHERE a.user_id = ? AND b.user_id <> a.user_id \
     AND (SELECT COUNT(*) FROM room_members c WHERE c.room_id = a.room_id) <= ? \
     ORDER BY b.user_id LIMIT ?";

/// Selects the members of a room with their users, by user id.
pub(super) const MEMBERS: &str = "SELECT m.user_id, u.username, u.display_name, m.role, m.last_read_seq, \
     u.last_seen_at_ms \
     FROM room_members m JOIN users u ON u.id = m.user_id \
     WHERE m.room_id = ? ORDER BY m.user_id";

/// Selects a page of the members of a room (room id, user id after, limit), by user id: a range of the
/// primary key.
pub(super) const MEMBERS_AFTER: &str = "SELECT m.user_id, u.username, u.display_name, m.role, m.last_read_seq, \
     u.last_seen_at_ms \
     FROM room_members m JOIN users u ON u.id = m.user_id \
     WHERE m.room_id = ? AND m.user_id > ? ORDER BY m.user_id LIMIT ?";

/// Expands to a query of room summaries over `$members`, a subquery of `room_members` rows (`room_id`,
/// `role`, `last_read_seq`) that bounds the rows: the correlated subqueries run for its rows only, each
/// a seek on the messages primary key (the unread count scans only the unread range).
/// `last_seq` counts every row; the unread count and the last activity count messages only (kind 0:
/// an edit or a delete is no new message, and no activity).
macro_rules! summaries_over {
    ($members:literal) => {
        concat!(
            "SELECT r.id, r.kind, r.name, r.created_by, r.created_at_ms, r.dm_key, \
                    m.role, m.last_read_seq, \
                    COALESCE((SELECT MAX(x.seq) FROM messages x WHERE x.room_id = r.id), 0) AS last_seq, \
                    (SELECT COUNT(*) FROM messages x \
                      WHERE x.room_id = r.id AND x.seq > m.last_read_seq AND x.kind = 0) AS unread, \
                    COALESCE((SELECT x.created_at_ms FROM messages x WHERE x.room_id = r.id \
                               AND x.kind = 0 ORDER BY x.seq DESC LIMIT 1), r.created_at_ms) \
                      AS last_activity_ms \
             FROM (",
            $members,
            ") m JOIN rooms r ON r.id = m.room_id ORDER BY m.room_id"
        )
    };
}

/// Selects a page of the rooms of a user (user id, room id after, limit) with their counters, by room
/// id: the page is a range of the `(user_id, room_id)` index, cut before any counter is computed.
pub(super) const ROOMS_OF: &str = summaries_over!(
    "SELECT room_id, role, last_read_seq FROM room_members \
     WHERE user_id = ? AND room_id > ? ORDER BY room_id LIMIT ?"
);

/// Selects the summary of one room (room id, user id) for one member: a primary key lookup.
pub(super) const ROOM_SUMMARY: &str = summaries_over!(
    "SELECT room_id, role, last_read_seq FROM room_members WHERE room_id = ? AND user_id = ?"
);

/// Counts the memberships of a user (a range of the `user_id` index).
pub(super) const MEMBERSHIP_COUNT: &str = "SELECT COUNT(*) FROM room_members WHERE user_id = ?";

/// Selects the highest seq of a room, 0 when it has none.
pub(super) const LAST_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE room_id = ?";

/// Selects the reserved seq of a room (0 when it has none).
pub(super) const RESERVED_SEQ: &str =
    "SELECT COALESCE(MAX(seq), 0) FROM room_seq_reservations WHERE room_id = ?";

/// Expands to a query of the messages of a room: the columns `MessageRow` reads, then `$rest` (the
/// `WHERE`, `ORDER BY` and `LIMIT`, over `m`). An edit row's body is its target's current body (an
/// edit row keeps none: see `INSERT_MESSAGES`), so that a client applying the edit gets the latest
/// body, and a deleted message's text is nowhere.
macro_rules! messages_where {
    ($rest:literal) => {
        concat!(
            "SELECT m.room_id, m.seq, m.message_id, m.sender_id, COALESCE(t.body, m.body) AS body, \
                    m.created_at_ms, m.nonce, m.attachments, m.kind, m.target_seq, m.content_type, \
                    m.edited_at_ms, m.deleted_at_ms \
             FROM messages m LEFT JOIN messages t \
               ON m.kind = 1 AND t.room_id = m.room_id AND t.seq = m.target_seq ",
            $rest
        )
    };
}

/// Selects messages and events of a room below a seq, newest first, then a limit.
pub(super) const MESSAGES_BEFORE: &str =
    messages_where!("WHERE m.room_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?");

/// Selects messages and events of a room above a seq, oldest first, then a limit.
pub(super) const MESSAGES_AFTER: &str =
    messages_where!("WHERE m.room_id = ? AND m.seq > ? ORDER BY m.seq ASC LIMIT ?");

/// Start of a multi-row message insert; the `VALUES` follow (see `push_message_values!`). `kind` is
/// the `MessageKind` code, `target_seq` the seq an event changes (NULL for a message); an edit row
/// keeps an empty body, its new body going into its target (`APPLY_EDIT`), so that a delete erases
/// the text from one row only.
pub(super) const INSERT_MESSAGES: &str = "INSERT INTO messages (room_id, seq, message_id, sender_id, body, created_at_ms, nonce, attachments, \
     kind, target_seq, content_type) ";

/// Applies an edit to its target (new body, edit time, room id, target seq): a message (kind 0) not
/// deleted.
pub(super) const APPLY_EDIT: &str = "UPDATE messages SET body = ?, edited_at_ms = ? \
     WHERE room_id = ? AND seq = ? AND kind = 0 AND deleted_at_ms IS NULL";

/// Selects the attachments of a message a delete is about to erase (room id, target seq): a message
/// (kind 0) not deleted; no row otherwise.
pub(super) const DELETABLE_ATTACHMENTS: &str = "SELECT attachments FROM messages \
     WHERE room_id = ? AND seq = ? AND kind = 0 AND deleted_at_ms IS NULL";

/// Applies a delete to its target (delete time, room id, target seq): erases the body and the
/// attachments of a message (kind 0) not deleted yet.
pub(super) const APPLY_DELETE: &str = "UPDATE messages SET body = '', attachments = NULL, deleted_at_ms = ? \
     WHERE room_id = ? AND seq = ? AND kind = 0 AND deleted_at_ms IS NULL";

/// Releases an upload a deleted message held (upload id, room id): no longer kept, the housekeeping
/// sweeper deletes its object once it is old.
pub(super) const RELEASE_UPLOAD: &str =
    "UPDATE uploads SET kept_at_ms = NULL WHERE id = ? AND room_id = ?";

/// Inserts a refresh token id (jti, user, chain, expiry).
pub(super) const PUT_REFRESH_TOKEN: &str =
    "INSERT INTO refresh_tokens (jti, user_id, family, expires_at_ms) VALUES (?, ?, ?, ?)";

/// Selects the state of one refresh token (SQLite; MySQL's twin reads it `FOR UPDATE`).
pub(super) const REFRESH_TOKEN_STATE: &str = "SELECT user_id, family, expires_at_ms, used_at_ms, revoked_at_ms FROM refresh_tokens WHERE jti = ?";

/// Marks a refresh token used (time, jti).
pub(super) const USE_REFRESH_TOKEN: &str =
    "UPDATE refresh_tokens SET used_at_ms = ? WHERE jti = ? AND used_at_ms IS NULL";

/// Revokes the tokens of a chain not revoked yet (time, family).
pub(super) const REVOKE_REFRESH_FAMILY: &str =
    "UPDATE refresh_tokens SET revoked_at_ms = ? WHERE family = ? AND revoked_at_ms IS NULL";

/// Selects every signing key, by generation.
pub(super) const SIGNING_KEYS: &str = "SELECT generation, kid, private_key, public_key, created_at_ms, signs_from_ms \
     FROM signing_keys ORDER BY generation";

/// Inserts a signing key (generation, kid, private key, public key, creation, signing start).
pub(super) const INSERT_SIGNING_KEY: &str = "INSERT INTO signing_keys \
     (generation, kid, private_key, public_key, created_at_ms, signs_from_ms) VALUES (?, ?, ?, ?, ?, ?)";

/// Deletes the signing keys below a generation.
pub(super) const DELETE_SIGNING_KEYS_BEFORE: &str = "DELETE FROM signing_keys WHERE generation < ?";
