//! Feeds (issue #21): the events of an ingest source as GeoJSON for maps, feed rooms that follow a
//! source with their own filters, and the filters of a feed room.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use banter_actors::model::{Role, RoomId};
use banter_actors::ports::{BBox, EventQuery, Follow, Source};
use banter_actors::rules;
use banter_actors::source::feature;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::budget::{Refusal, Spend};
use super::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use super::rooms_api::{announce_room, check_room_cap, require_member};
use super::views::RoomView;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Events listed by default, and at most.
const EVENTS_DEFAULT: u32 = 100;
const EVENTS_MAX: u32 = 1000;

/// Which events of a source to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events that happened at or after this time (ms since the epoch); else a 400
    /// `invalid_since`.
    #[param(value_type = Option<i64>)]
    pub since: Option<String>,
    /// Only events in this box: `west,south,east,north` in degrees (GeoJSON's bbox order; west
    /// above east crosses the antimeridian); else a 400 `invalid_bbox`.
    #[param(
        pattern = r"^-?(?:180(?:\.0+)?|(?:1[0-7][0-9]|[0-9]{1,2})(?:\.[0-9]+)?),-?(?:90(?:\.0+)?|[0-8]?[0-9](?:\.[0-9]+)?),-?(?:180(?:\.0+)?|(?:1[0-7][0-9]|[0-9]{1,2})(?:\.[0-9]+)?),-?(?:90(?:\.0+)?|[0-8]?[0-9](?:\.[0-9]+)?)$"
    )]
    pub bbox: Option<String>,
    /// Only events of at least this magnitude; else a 400 `invalid_min_mag`.
    #[param(value_type = Option<f64>, minimum = -10, maximum = 20)]
    pub min_mag: Option<String>,
    /// Most events (1 to 1000, default 100), newest first; else a 400 `invalid_limit`.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// A GeoJSON FeatureCollection of events: each a Point (longitude, latitude, −depth in km) with
/// `source`, `time_ms`, `depth_km`, `magnitude`, `magnitude_type` and `region` properties — the body
/// of the event's message in its feed rooms.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct FeatureCollection {
    /// `FeatureCollection`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The events, newest first.
    #[schema(value_type = Vec<Object>)]
    pub features: Vec<serde_json::Value>,
}

/// A new feed room.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFeedRoom {
    /// Its name, as a group room's: 1–100 characters once surrounding spaces are trimmed, no
    /// control characters. Else a 400 `invalid_room_name`.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028-\u202F\u205F\u2066-\u2069\u3000]([^\x00-\x1F\x7F-\x9F\u2028-\u202E\u2066-\u2069]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028-\u202F\u205F\u2066-\u2069\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub name: String,
    /// Smallest magnitude shown (events without one are then not shown).
    #[serde(default)]
    #[schema(minimum = -2, maximum = 10)]
    pub min_magnitude: Option<f64>,
    /// Only events in this box.
    #[serde(default)]
    pub bbox: Option<BoxView>,
}

/// Which events of its source a feed room shows: those of at least `min_magnitude`, in `bbox`.
#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Smallest magnitude shown (events without one are then not shown).
    #[serde(default)]
    #[schema(minimum = -2, maximum = 10)]
    pub min_magnitude: Option<f64>,
    /// Only events in this box.
    #[serde(default)]
    pub bbox: Option<BoxView>,
}

/// A box of longitudes and latitudes, in degrees. A west above the east crosses the antimeridian;
/// the south and the north may come in either order.
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct BoxView {
    /// Western edge.
    #[schema(minimum = -180, maximum = 180)]
    pub west: f64,
    /// Southern edge.
    #[schema(minimum = -90, maximum = 90)]
    pub south: f64,
    /// Eastern edge.
    #[schema(minimum = -180, maximum = 180)]
    pub east: f64,
    /// Northern edge.
    #[schema(minimum = -90, maximum = 90)]
    pub north: f64,
}

/// What a feed room follows.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct FeedView {
    /// The source's name; `null` for a room that follows no source (a group room or a DM).
    pub source: Option<String>,
    /// Smallest magnitude shown.
    pub min_magnitude: Option<f64>,
    /// Only events in this box.
    pub bbox: Option<BoxView>,
}

/// An answer in GeoJSON.
struct GeoJson(FeatureCollection);

impl IntoResponse for GeoJson {
    fn into_response(self) -> Response {
        let mut response = Json(self.0).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/geo+json"),
        );
        response
    }
}

async fn source_named(state: &AppState, name: &str) -> ApiResult<Source> {
    state.store().source_by_name(name).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_source",
            format!("no source named {name:?}"),
        )
    })
}

fn invalid(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message.to_owned())
}

/// Checks filters and returns them as the store keeps them.
fn checked(filters: &Filters) -> ApiResult<(Option<f64>, Option<BBox>)> {
    let mag = match filters.min_magnitude {
        Some(m) if !(m.is_finite() && (-2.0..=10.0).contains(&m)) => {
            return Err(invalid(
                "invalid_filters",
                "min_magnitude must be from -2 to 10",
            ));
        }
        m => m,
    };
    let bbox = filters
        .bbox
        .map(|b| bbox_of([b.west, b.south, b.east, b.north]))
        .transpose()
        .map_err(|_| {
            invalid(
                "invalid_filters",
                "bbox: west and east from -180 to 180, south and north from -90 to 90",
            )
        })?;
    Ok((mag, bbox))
}

/// A box from `[west, south, east, north]` (south and north in either order).
fn bbox_of([min_lon, a, max_lon, b]: [f64; 4]) -> Result<BBox, ()> {
    let lon = |v: f64| v.is_finite() && (-180.0..=180.0).contains(&v);
    let lat = |v: f64| v.is_finite() && (-90.0..=90.0).contains(&v);
    if !(lon(min_lon) && lon(max_lon) && lat(a) && lat(b)) {
        return Err(());
    }
    Ok(BBox {
        min_lon,
        min_lat: a.min(b),
        max_lon,
        max_lat: a.max(b),
    })
}

fn view(source: &Source, follow: &Follow) -> FeedView {
    FeedView {
        source: Some(source.name.clone()),
        min_magnitude: follow.min_magnitude,
        bbox: follow.bbox.map(|b| BoxView {
            west: b.min_lon,
            south: b.min_lat,
            east: b.max_lon,
            north: b.max_lat,
        }),
    }
}

/// An ingest source.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SourceView {
    /// Its name: the `{source}` of its endpoints.
    pub name: String,
    /// Its own feed room (join it to read the feed), once created.
    pub room_id: Option<i64>,
}

/// Lists the ingest sources, each with its own feed room.
#[utoipa::path(get, path = "/api/feeds", tag = "feeds", security(("bearer" = [])),
    responses((status = 200, body = Vec<SourceView>), (status = 401, body = ErrorBody)))]
pub async fn sources(
    State(state): State<AppState>,
    _me: AuthUser,
) -> ApiResult<Json<Vec<SourceView>>> {
    let all = state.store().sources().await?;
    Ok(Json(
        all.into_iter()
            .map(|(s, room)| SourceView {
                name: s.name,
                room_id: room.map(|r| r.0),
            })
            .collect(),
    ))
}

/// Lists the events of a source as GeoJSON, newest first: what a map of the feed draws.
#[utoipa::path(get, path = "/api/feeds/{source}/events", tag = "feeds", params(("source" = String, Path, description = "The source's name"), EventsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = FeatureCollection, content_type = "application/geo+json"),
        (status = 400, description = "`invalid_since`, `invalid_bbox`, `invalid_min_mag` or `invalid_limit`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "`unknown_source`", body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    _me: AuthUser,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<impl IntoResponse> {
    let since_ms = match q.since.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| {
            invalid(
                "invalid_since",
                "since must be a time in ms since the epoch",
            )
        })?),
    };
    let bbox = match q.bbox.as_deref() {
        None => None,
        Some(s) => {
            let parts: Vec<f64> = s
                .split(',')
                .map(|p| p.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| invalid("invalid_bbox", "bbox must be west,south,east,north"))?;
            let four: [f64; 4] = parts
                .try_into()
                .map_err(|_| invalid("invalid_bbox", "bbox must be west,south,east,north"))?;
            Some(bbox_of(four).map_err(|()| {
                invalid(
                    "invalid_bbox",
                    "bbox must be west,south,east,north within -180..180 and -90..90",
                )
            })?)
        }
    };
    let min_magnitude = match q.min_mag.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<f64>()
                .ok()
                .filter(|m| m.is_finite())
                .ok_or_else(|| invalid("invalid_min_mag", "min_mag must be a number"))?,
        ),
    };
    let limit = match q.limit.as_deref() {
        None => EVENTS_DEFAULT,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=EVENTS_MAX).contains(l))
            .ok_or_else(|| invalid("invalid_limit", "limit must be an integer from 1 to 1000"))?,
    };
    let source = source_named(&state, &name).await?;
    let query = EventQuery {
        since_ms,
        bbox,
        min_magnitude,
        limit,
    };
    let events = state.store().feed_events(source.id, &query).await?;
    Ok(GeoJson(FeatureCollection {
        kind: "FeatureCollection".into(),
        features: events.iter().map(|e| feature(&source.name, e)).collect(),
    }))
}

/// Creates a feed room owned by the caller that follows a source with its own filters (spends
/// one of `limits.rooms_per_hour`). People read a feed room; its source posts in it.
#[utoipa::path(post, path = "/api/feeds/{source}/rooms", tag = "feeds", params(("source" = String, Path, description = "The source's name")),
    request_body = NewFeedRoom, security(("bearer" = [])),
    responses((status = 201, body = RoomView),
        (status = 400, description = "`invalid_filters`, or a bad room name", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`too_many_rooms`", body = ErrorBody),
        (status = 404, description = "`unknown_source`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the next room may be created")))))]
pub async fn create_room(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<NewFeedRoom>,
) -> Result<(StatusCode, Json<RoomView>), Refusal> {
    let room_name = rules::validate_room_name(&req.name)?;
    let (min_magnitude, bbox) = checked(&Filters {
        min_magnitude: req.min_magnitude,
        bbox: req.bbox,
    })?;
    let source = source_named(&state, &name).await?;
    state.room_budgets.spend(Spend::CreateRoom, me.id)?;
    check_room_cap(&state, me.id).await?;
    let room = state
        .store()
        .create_feed_room(
            source.id,
            &room_name,
            Some(me.id),
            min_magnitude,
            bbox,
            state.now_ms(),
        )
        .await?;
    announce_room(&state, room.id, me.id).await?;
    Ok((StatusCode::CREATED, Json(RoomView::from(&room))))
}

/// What `room` follows, `None` when it follows no source.
async fn follow_of(state: &AppState, room: RoomId) -> ApiResult<Option<(Source, Follow)>> {
    let Some(follow) = state.store().follow(room).await? else {
        return Ok(None);
    };
    Ok(state
        .store()
        .source(follow.source)
        .await?
        .map(|source| (source, follow)))
}

fn not_a_feed(room: RoomId) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "not_a_feed",
        format!("room {room} follows no source"),
    )
}

/// Returns the source a room follows and its filters (members only): all `null` for a room that
/// follows none.
#[utoipa::path(get, path = "/api/rooms/{id}/feed", tag = "feeds", params(("id" = i64, Path, description = "Room id")),
    security(("bearer" = [])),
    responses((status = 200, body = FeedView), (status = 401, body = ErrorBody),
        (status = 403, description = "not a member", body = ErrorBody),
        (status = 404, description = "no such room", body = ErrorBody)))]
pub async fn get_feed(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<FeedView>> {
    let room = RoomId(id);
    require_member(&state, room, me.id).await?;
    Ok(Json(match follow_of(&state, room).await? {
        Some((source, follow)) => view(&source, &follow),
        None => FeedView {
            source: None,
            min_magnitude: None,
            bbox: None,
        },
    }))
}

/// Sets which events a feed room shows from now on (its owner only). Messages already posted
/// stay, and are still edited and deleted as their events change.
#[utoipa::path(put, path = "/api/rooms/{id}/feed", tag = "feeds", params(("id" = i64, Path, description = "Room id")),
    request_body = Filters, security(("bearer" = [])),
    responses((status = 200, body = FeedView),
        (status = 400, description = "`invalid_filters`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`not_owner`, or not a member", body = ErrorBody),
        (status = 404, description = "no such room", body = ErrorBody),
        (status = 409, description = "`not_a_feed`: the room follows no source", body = ErrorBody)))]
pub async fn set_feed(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(filters): ApiJson<Filters>,
) -> ApiResult<Json<FeedView>> {
    let room = RoomId(id);
    let (min_magnitude, bbox) = checked(&filters)?;
    require_member(&state, room, me.id).await?;
    let (source, _) = follow_of(&state, room)
        .await?
        .ok_or_else(|| not_a_feed(room))?;
    if state.store().member_role(room, me.id).await? != Some(Role::Owner) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_owner",
            format!("only an owner of room {room} sets its filters"),
        ));
    }
    state.store().set_filters(room, min_magnitude, bbox).await?;
    let (_, follow) = follow_of(&state, room)
        .await?
        .ok_or_else(|| not_a_feed(room))?;
    Ok(Json(view(&source, &follow)))
}
