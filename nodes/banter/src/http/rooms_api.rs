//! Rooms: create, list, join, leave, members, DMs and history.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use banter_actors::model::{Role, RoomId, RoomKind, UserId};
use banter_actors::room::RoomMessage;
use banter_actors::rules;
use banter_actors::user::UserMessage;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use super::views::{MemberView, MessageView, RoomSummaryView, RoomView};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};

/// New group room.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// 1–100 characters.
    pub name: String,
}

/// The caller's rooms.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RoomList {
    /// Most recently active first.
    pub rooms: Vec<RoomSummaryView>,
}

/// Members of a room.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    /// Ordered by user id.
    pub members: Vec<MemberView>,
}

/// DM request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDm {
    /// The other user.
    pub user_id: i64,
}

/// History query.
#[derive(Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Only messages with a smaller seq (default: the newest).
    pub before: Option<u64>,
    /// Page size (default 50, at most 200).
    pub limit: Option<u32>,
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
async fn require_member(state: &AppState, room: RoomId, me: UserId) -> ApiResult<()> {
    if state.store().member_role(room, me).await?.is_some() {
        return Ok(());
    }
    if state.store().room(room).await?.is_none() {
        return Err(ApiError::not_found(format!("room {room} does not exist")));
    }
    Err(ApiError::forbidden(format!("not a member of room {room}")))
}

fn summary_json(state: &AppState, summary: &RoomSummaryView) -> Bytes {
    serde_json::to_vec(summary)
        .map(Bytes::from)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "room summary not serialisable");
            let _ = state;
            Bytes::new()
        })
}

async fn announce_room(state: &AppState, room: RoomId, user: UserId) -> ApiResult<()> {
    let rooms = state.store().rooms_of(user).await?;
    if let Some(s) = rooms.iter().find(|s| s.room.id == room) {
        let body = summary_json(state, &RoomSummaryView::from(s));
        state.tell_user(
            user,
            UserMessage::Notify {
                event: "room.added",
                body,
            },
        );
    }
    Ok(())
}

/// Creates a group room owned by the caller.
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", request_body = CreateRoom, security(("bearer" = [])),
    responses((status = 201, body = RoomView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<CreateRoom>,
) -> ApiResult<(StatusCode, Json<RoomView>)> {
    let name = rules::validate_room_name(&req.name)?;
    let room = state
        .store()
        .create_room(RoomKind::Group, &name, me.id, state.now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(RoomView::from(&room))))
}

/// Lists the caller's rooms with unread counts.
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", security(("bearer" = [])),
    responses((status = 200, body = RoomList), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, me: AuthUser) -> ApiResult<Json<RoomList>> {
    let rooms = state.store().rooms_of(me.id).await?;
    Ok(Json(RoomList {
        rooms: rooms.iter().map(RoomSummaryView::from).collect(),
    }))
}

/// Returns a room the caller is a member of.
#[utoipa::path(get, path = "/api/rooms/{id}", tag = "rooms", params(("id" = i64, Path)), security(("bearer" = [])),
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

/// Joins a group room (joining twice changes nothing).
#[utoipa::path(post, path = "/api/rooms/{id}/join", tag = "rooms", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = RoomView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn join(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RoomView>> {
    let room_id = RoomId(id);
    let room = state
        .store()
        .room(room_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("room {room_id} does not exist")))?;
    if room.kind != RoomKind::Group {
        return Err(ApiError::forbidden("only group rooms can be joined"));
    }
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

/// Leaves a room; the caller's subscriptions to it end.
#[utoipa::path(post, path = "/api/rooms/{id}/leave", tag = "rooms", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
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

/// Lists the members of a room the caller is in.
#[utoipa::path(get, path = "/api/rooms/{id}/members", tag = "rooms", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = MemberList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<MemberList>> {
    require_member(&state, RoomId(id), me.id).await?;
    let members = state.store().members(RoomId(id)).await?;
    Ok(Json(MemberList {
        members: members.iter().map(MemberView::from).collect(),
    }))
}

/// Opens the DM room with another user: the same room every time, whoever asks.
#[utoipa::path(post, path = "/api/dms", tag = "rooms", request_body = OpenDm, security(("bearer" = [])),
    responses((status = 201, body = RoomView), (status = 200, body = RoomView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn open_dm(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(req): ApiJson<OpenDm>,
) -> ApiResult<(StatusCode, Json<RoomView>)> {
    let peer = UserId(req.user_id);
    if peer == me.id {
        return Err(ApiError::bad_request("cannot open a DM with yourself"));
    }
    if state.store().user_by_id(peer).await?.is_none() {
        return Err(ApiError::not_found(format!("user {peer} does not exist")));
    }
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

/// Pages back through a room's messages, newest first (keyset on seq): every acknowledged message,
/// also the newest ones the store may not hold yet.
#[utoipa::path(get, path = "/api/rooms/{id}/messages", tag = "rooms", params(("id" = i64, Path), HistoryQuery), security(("bearer" = [])),
    responses((status = 200, body = HistoryPage), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
    let room = RoomId(id);
    require_member(&state, room, me.id).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let page = super::history::read_page(&state.ports, &state.rooms, room, q.before, limit).await?;
    Ok(Json(HistoryPage {
        messages: page.messages.iter().map(MessageView::from).collect(),
        next_before: page.next_before,
    }))
}
