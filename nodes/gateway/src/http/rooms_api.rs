//! Rooms: create, list, join, leave, members, DMs and history.
//!
//! Creating a room, opening a new DM and joining spend the caller's budgets ([`super::budget`]) and
//! respect `limits.max_rooms_per_user`; asking again for what one has already (a room one is in, an
//! existing DM) spends nothing. The room list and the member list are keyset pages.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use banter_actors::model::{Role, RoomId, RoomKind, UserId};
use banter_actors::room::RoomMessage;
use banter_actors::rules;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::budget::{Refusal, Spend};
use super::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, clamped_limit, parse_digits};
use super::views::{MemberView, MessageView, RoomSummaryView, RoomView};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// New group room.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// 1–100 characters once surrounding spaces are trimmed, no control characters.
    /// Else a 400 `invalid_room_name`.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028-\u202F\u205F\u2066-\u2069\u3000]([^\x00-\x1F\x7F-\x9F\u2028-\u202E\u2066-\u2069]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028-\u202F\u205F\u2066-\u2069\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub name: String,
}

/// Default page size of the room list.
pub const ROOMS_PAGE_DEFAULT: u32 = 100;
/// Largest page size of the room list.
pub const ROOMS_PAGE_MAX: u32 = 500;
/// Default page size of the member list.
pub const MEMBERS_PAGE_DEFAULT: u32 = 100;
/// Largest page size of the member list.
pub const MEMBERS_PAGE_MAX: u32 = 1000;

/// A page of the caller's rooms.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RoomList {
    /// The page's rooms, most recently active first. Pages go by room id: this page holds the
    /// caller's rooms with the lowest ids above `after`.
    pub rooms: Vec<RoomSummaryView>,
    /// `after` for the next page: the highest room id of this page; null on the last page.
    pub next_after: Option<i64>,
}

/// A page of the members of a room.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    /// Ordered by user id.
    pub members: Vec<MemberView>,
    /// `after` for the next page: the last user id of this page; null on the last page.
    pub next_after: Option<i64>,
}

/// Room list query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoomListQuery {
    /// Only rooms with a larger id: the `next_after` of the previous page (default: from the first).
    /// Anything but a non-negative integer is a 400 `invalid_cursor`.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub after: Option<String>,
    /// Page size, 1–500 (default 100); outside it, a 400 `invalid_limit`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
}

/// Member list query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberListQuery {
    /// Only members with a larger user id: the `next_after` of the previous page (default: from the
    /// first). Anything but a non-negative integer is a 400 `invalid_cursor`.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100); outside it, a 400 `invalid_limit`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// DM request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDm {
    /// The other user's id (an integer; `42.0` counts as one).
    #[serde(deserialize_with = "super::extract::integral_i64")]
    pub user_id: i64,
}

/// History query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only messages with a smaller seq (default: the newest): a `next_before`. Anything but a
    /// non-negative integer is a 400 `invalid_cursor`.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub before: Option<String>,
    /// Page size (default 50): a larger number is taken as 200, 0 as 1. Anything but a
    /// non-negative integer is a 400 `invalid_limit`.
    #[param(value_type = Option<i32>, minimum = 0)]
    pub limit: Option<String>,
}

/// A page of history.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct HistoryPage {
    /// Newest first.
    pub messages: Vec<MessageView>,
    /// `before` for the next (older) page; null on the last page.
    pub next_before: Option<u64>,
}

/// Succeeds when `me` is a member of `room`: 404 when the room does not exist, 403 when not a member.
pub(crate) async fn require_member(state: &AppState, room: RoomId, me: UserId) -> ApiResult<()> {
    if state.store().member_role(room, me).await?.is_some() {
        return Ok(());
    }
    if state.store().room(room).await?.is_none() {
        return Err(ApiError::not_found(format!("room {room} does not exist")));
    }
    Err(ApiError::forbidden(format!("not a member of room {room}")))
}

fn summary_json(summary: &RoomSummaryView) -> Bytes {
    serde_json::to_vec(summary)
        .map(Bytes::from)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "room summary not serialisable");
            Bytes::new()
        })
}

/// Tells the user's sessions about a room they are now in (`room.added`), reading that room's summary
/// only.
pub(super) async fn announce_room(state: &AppState, room: RoomId, user: UserId) -> ApiResult<()> {
    if let Some(s) = state.store().room_summary(room, user).await? {
        let body = summary_json(&RoomSummaryView::from(&s));
        state.notify_user(user, "room.added", body);
    }
    Ok(())
}

/// Refuses a new membership of `user` when they are in `limits.max_rooms_per_user` rooms already.
/// Checked before the write: concurrent requests of one user may pass it by as many as race (the
/// budgets bound how many that can be).
pub(super) async fn check_room_cap(state: &AppState, user: UserId) -> Result<(), Refusal> {
    let max = state.config.limits.max_rooms_per_user;
    if state.store().membership_count(user).await? >= max {
        return Err(Refusal::too_many_rooms(max));
    }
    Ok(())
}

/// Parses a page cursor: a non-negative integer id, else 400 `invalid_cursor`.
fn parse_cursor(raw: Option<&str>) -> ApiResult<Option<i64>> {
    match raw {
        None => Ok(None),
        Some(raw) => match parse_digits::<i64>(raw) {
            Some(id) => Ok(Some(id)),
            None => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_cursor",
                "after must be a non-negative integer id (a next_after)",
            )),
        },
    }
}

/// Parses a page size: `default` when absent, else an integer in `1..=max`, else 400 `invalid_limit`.
fn parse_limit(raw: Option<&str>, default: u32, max: u32) -> ApiResult<u32> {
    match raw {
        None => Ok(default),
        Some(raw) => match parse_digits::<u32>(raw) {
            Some(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_limit",
                format!("limit must be an integer from 1 to {max}"),
            )),
        },
    }
}

/// Cuts a page fetched with one row more than `limit`: returns the cursor of the next page when that
/// row was there (the key of the page's last row), `None` on the last page.
fn cut_page<T>(rows: &mut Vec<T>, limit: u32, key: impl Fn(&T) -> i64) -> Option<i64> {
    let limit = limit as usize;
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(key)
}

/// Creates a group room owned by the caller (spends one of `limits.rooms_per_hour`).
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", request_body = CreateRoom, security(("bearer" = [])),
    responses((status = 201, body = RoomView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "`too_many_rooms`: the caller is in `limits.max_rooms_per_user` rooms", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over `limits.rooms_per_hour`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the next room may be created")))))]
pub async fn create(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<CreateRoom>,
) -> Result<(StatusCode, Json<RoomView>), Refusal> {
    let name = rules::validate_room_name(&req.name)?;
    state.room_budgets.spend(Spend::CreateRoom, me.id)?;
    check_room_cap(&state, me.id).await?;
    let room = state
        .store()
        .create_room(RoomKind::Group, &name, me.id, state.now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(RoomView::from(&room))))
}

/// Lists a page of the caller's rooms with unread counts: keyset pages by room id (`after`), each page
/// most recently active first. Counters are computed for the page's rooms only.
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", params(RoomListQuery), security(("bearer" = [])),
    responses((status = 200, body = RoomList),
        (status = 400, description = "`invalid_cursor` or `invalid_limit`", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    me: AuthUser,
    ApiQuery(q): ApiQuery<RoomListQuery>,
) -> ApiResult<Json<RoomList>> {
    let after = parse_cursor(q.after.as_deref())?.map(RoomId);
    let limit = parse_limit(q.limit.as_deref(), ROOMS_PAGE_DEFAULT, ROOMS_PAGE_MAX)?;
    let mut rooms = state.store().rooms_of(me.id, after, limit + 1).await?;
    let next_after = cut_page(&mut rooms, limit, |s| s.room.id.0);
    rooms.sort_by_key(|s| std::cmp::Reverse((s.last_activity_ms, s.room.id)));
    Ok(Json(RoomList {
        rooms: rooms.iter().map(RoomSummaryView::from).collect(),
        next_after,
    }))
}

/// Returns a room the caller is a member of.
#[utoipa::path(get, path = "/api/rooms/{id}", tag = "rooms", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = RoomView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RoomView>> {
    require_member(&state, RoomId(id), me.id).await?;
    let room = state
        .store()
        .room(RoomId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("room does not exist"))?;
    Ok(Json(RoomView::from(&room)))
}

/// Joins a group room, or a feed room to read it (joining twice changes nothing). A join of a room the caller is not in spends
/// one of `limits.joins_per_minute`, whether it succeeds or not.
#[utoipa::path(post, path = "/api/rooms/{id}/join", tag = "rooms", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = RoomView), (status = 401, body = ErrorBody),
        (status = 403, description = "`forbidden` (not a group room) or `too_many_rooms` (the caller is in `limits.max_rooms_per_user` rooms)", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 429, description = "`rate_limited`: over `limits.joins_per_minute`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the next join may be tried")))))]
pub async fn join(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<RoomView>, Refusal> {
    let room_id = RoomId(id);
    let already = state.store().member_role(room_id, me.id).await?.is_some();
    if !already {
        state.room_budgets.spend(Spend::Join, me.id)?;
    }
    let room = state
        .store()
        .room(room_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("room {room_id} does not exist")))?;
    if room.kind == RoomKind::Dm {
        return Err(ApiError::forbidden("a DM cannot be joined").into());
    }
    if already {
        return Ok(Json(RoomView::from(&room)));
    }
    check_room_cap(&state, me.id).await?;
    if state
        .store()
        .add_member(room_id, me.id, Role::Member, state.now_ms())
        .await?
    {
        state.tell_room(
            room_id,
            RoomMessage::MemberJoined {
                user: me.id,
                username: me.username.clone(),
            },
        );
        announce_room(&state, room_id, me.id).await?;
    }
    Ok(Json(RoomView::from(&room)))
}

/// Leaves a room; the caller's subscriptions to it end. Leaving a DM is undone by opening it again
/// (`POST /api/dms`).
#[utoipa::path(post, path = "/api/rooms/{id}/leave", tag = "rooms", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn leave(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let room_id = RoomId(id);
    require_member(&state, room_id, me.id).await?;
    state.store().remove_member(room_id, me.id).await?;
    state.tell_room(room_id, RoomMessage::MemberLeft { user: me.id });
    Ok(StatusCode::NO_CONTENT)
}

/// Lists a page of the members of a room the caller is in, by user id (keyset on `after`).
#[utoipa::path(get, path = "/api/rooms/{id}/members", tag = "rooms", params(("id" = i64, Path, minimum = 1), MemberListQuery), security(("bearer" = [])),
    responses((status = 200, body = MemberList),
        (status = 400, description = "`invalid_cursor` or `invalid_limit`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<MemberListQuery>,
) -> ApiResult<Json<MemberList>> {
    let after = parse_cursor(q.after.as_deref())?.map(UserId);
    let limit = parse_limit(q.limit.as_deref(), MEMBERS_PAGE_DEFAULT, MEMBERS_PAGE_MAX)?;
    require_member(&state, RoomId(id), me.id).await?;
    let mut members = state
        .store()
        .members_after(RoomId(id), after, limit + 1)
        .await?;
    let next_after = cut_page(&mut members, limit, |m| m.user_id.0);
    Ok(Json(MemberList {
        members: members
            .iter()
            .map(|m| MemberView::new(m, state.presence.status(m.user_id)))
            .collect(),
        next_after,
    }))
}

/// Opens the DM room with another user: the same room every time, whoever asks. Reopening an existing
/// DM is free; an attempt at a new one spends one of `limits.dms_per_hour`, whether it succeeds or not.
/// Opening a DM the caller left adds them back (as a join: one of `limits.joins_per_minute`), with the
/// whole history.
#[utoipa::path(post, path = "/api/dms", tag = "rooms", request_body = OpenDm, security(("bearer" = [])),
    responses((status = 201, body = RoomView), (status = 200, body = RoomView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, description = "`dm_with_self`: `user_id` is the caller", body = ErrorBody),
        (status = 403, description = "`too_many_rooms`: the caller is in `limits.max_rooms_per_user` rooms", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 429, description = "`rate_limited`: over `limits.dms_per_hour` (a new DM) or `limits.joins_per_minute` (back into a DM the caller left)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the next DM may be opened")))))]
pub async fn open_dm(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<OpenDm>,
) -> Result<(StatusCode, Json<RoomView>), Refusal> {
    let peer = UserId(req.user_id);
    if peer == me.id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "dm_with_self",
            "cannot open a DM with yourself",
        )
        .into());
    }
    if let Some(room) = state.store().find_dm(me.id, peer).await? {
        rejoin_dm(&state, &me, room.id).await?;
        return Ok((StatusCode::OK, Json(RoomView::from(&room))));
    }
    state.room_budgets.spend(Spend::OpenDm, me.id)?;
    if state.store().user_by_id(peer).await?.is_none() {
        return Err(ApiError::not_found(format!("user {peer} does not exist")).into());
    }
    check_room_cap(&state, me.id).await?;
    let (room, created) = state.store().dm_room(me.id, peer, state.now_ms()).await?;
    if created {
        announce_room(&state, room.id, me.id).await?;
        announce_room(&state, room.id, peer).await?;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(RoomView::from(&room))))
}

/// Adds the caller back to a DM they left (a no-op when they are in it): leaving a DM is undone by
/// opening it again. Like a join, it spends one of `limits.joins_per_minute` and respects
/// `limits.max_rooms_per_user`. Only the caller comes back; the other user stays where they are.
async fn rejoin_dm(state: &AppState, me: &AuthUser, room: RoomId) -> Result<(), Refusal> {
    if state.store().member_role(room, me.id).await?.is_some() {
        return Ok(());
    }
    state.room_budgets.spend(Spend::Join, me.id)?;
    check_room_cap(state, me.id).await?;
    if state
        .store()
        .add_member(room, me.id, Role::Member, state.now_ms())
        .await?
    {
        state.tell_room(
            room,
            RoomMessage::MemberJoined {
                user: me.id,
                username: me.username.clone(),
            },
        );
        announce_room(state, room, me.id).await?;
    }
    Ok(())
}

/// Pages back through a room's messages, newest first (keyset on seq): every acknowledged message,
/// also the newest ones the store may not hold yet.
#[utoipa::path(get, path = "/api/rooms/{id}/messages", tag = "rooms", params(("id" = i64, Path, minimum = 1), HistoryQuery), security(("bearer" = [])),
    responses((status = 200, body = HistoryPage),
        (status = 400, description = "`invalid_cursor` or `invalid_limit`", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, description = "`history_unavailable` (with `Retry-After`): the room or the journal cannot be reached, so the newest messages cannot be known; `unavailable`: the store cannot be reached", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))))]
pub async fn history(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
    let room = RoomId(id);
    let before = match q.before.as_deref() {
        None => None,
        Some(raw) => Some(
            parse_digits::<i64>(raw)
                .map(|b| b.unsigned_abs())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_cursor",
                        "before must be a non-negative integer seq (a next_before)",
                    )
                })?,
        ),
    };
    let limit = clamped_limit(q.limit.as_deref(), 50, 200)?;
    require_member(&state, room, me.id).await?;
    let page =
        super::history::read_page(&state.ports, state.routes.as_ref(), room, before, limit).await?;
    Ok(Json(HistoryPage {
        messages: page.messages.iter().map(MessageView::from).collect(),
        next_before: page.next_before,
    }))
}

#[cfg(test)]
mod tests;
