//! The EMSC seismic portal's live format: each websocket text frame is
//! `{"action": "create"|"update"|"delete", "data": <GeoJSON Feature>}`, the feature's
//! `properties` holding the event (`unid`, `time`, `lat`, `lon`, `depth`, `mag`, `magtype`,
//! `flynn_region`, …). [`parse`] turns a frame into a [`SeismicEvent`] keyed by `unid`, or says
//! why it must be skipped ([`EmscError`], with a stable [`EmscError::reason`] to count by): a
//! frame too large, not JSON of that shape, an action not known, or values out of range. Fields
//! the format has and Banter does not use are ignored.

use serde::Deserialize;

/// Largest frame taken, in bytes (real events are under 2 KiB).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Longest `unid`, in bytes.
pub const MAX_UNID_BYTES: usize = 64;

/// Longest region name kept, in characters (a longer one is cut).
pub const MAX_REGION_CHARS: usize = 128;

/// What happened to an event at the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A new event.
    Create,
    /// New values of a known event.
    Update,
    /// The event was withdrawn.
    Delete,
}

/// An event's values (absent from a delete, which names the event only).
#[derive(Clone, Debug, PartialEq)]
pub struct Quake {
    /// Origin time, as the source writes it (ISO 8601, UTC).
    pub time: String,
    /// The same, in ms since the Unix epoch.
    pub time_ms: i64,
    /// Latitude in degrees (−90 to 90).
    pub lat: f64,
    /// Longitude in degrees (−180 to 180).
    pub lon: f64,
    /// Depth in km (positive down), if given.
    pub depth: Option<f64>,
    /// Magnitude, if given.
    pub mag: Option<f64>,
    /// Magnitude type (`ml`, `mb`, `mw`, …), if given.
    pub magtype: Option<String>,
    /// Flinn-Engdahl region name, if given.
    pub region: Option<String>,
}

/// One event of the feed.
#[derive(Clone, Debug, PartialEq)]
pub struct SeismicEvent {
    /// What happened to it.
    pub action: Action,
    /// The event's id at the source: every action on one event names it.
    pub unid: String,
    /// Its values; `None` for a delete.
    pub quake: Option<Quake>,
}

/// Why a frame was skipped. [`EmscError::reason`] is a stable label for metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmscError {
    /// Larger than [`MAX_EVENT_BYTES`] (its size).
    #[error("frame of {0} bytes, more than {MAX_EVENT_BYTES}")]
    Oversized(usize),
    /// Not JSON of the format's shape (the parser's message).
    #[error("malformed: {0}")]
    Malformed(String),
    /// An action other than create, update or delete.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// A value missing or out of range (which).
    #[error("invalid event: {0}")]
    Invalid(&'static str),
}

impl EmscError {
    /// The reason's label: `oversized`, `malformed`, `unknown_action` or `invalid`.
    pub fn reason(&self) -> &'static str {
        match self {
            EmscError::Oversized(_) => "oversized",
            EmscError::Malformed(_) => "malformed",
            EmscError::UnknownAction(_) => "unknown_action",
            EmscError::Invalid(_) => "invalid",
        }
    }
}

#[derive(Deserialize)]
struct Frame {
    action: String,
    data: Feature,
}

#[derive(Deserialize)]
struct Feature {
    /// The feature's id, which EMSC sets to the `unid` too.
    #[serde(default)]
    id: Option<String>,
    properties: Properties,
}

#[derive(Deserialize)]
struct Properties {
    #[serde(default)]
    unid: Option<String>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    depth: Option<f64>,
    #[serde(default)]
    mag: Option<f64>,
    #[serde(default)]
    magtype: Option<String>,
    #[serde(default)]
    flynn_region: Option<String>,
}

/// Parses one frame of the feed.
pub fn parse(frame: &str) -> Result<SeismicEvent, EmscError> {
    if frame.len() > MAX_EVENT_BYTES {
        return Err(EmscError::Oversized(frame.len()));
    }
    let frame: Frame =
        serde_json::from_str(frame).map_err(|e| EmscError::Malformed(e.to_string()))?;
    let action = match frame.action.as_str() {
        "create" => Action::Create,
        "update" => Action::Update,
        "delete" => Action::Delete,
        other => {
            let shown: String = other.chars().take(32).collect();
            return Err(EmscError::UnknownAction(shown));
        }
    };
    let p = frame.data.properties;
    let unid = p
        .unid
        .or(frame.data.id)
        .ok_or(EmscError::Invalid("no unid"))?;
    let unid_ok = !unid.is_empty()
        && unid.len() <= MAX_UNID_BYTES
        && unid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !unid_ok {
        return Err(EmscError::Invalid("unid"));
    }
    if action == Action::Delete {
        return Ok(SeismicEvent {
            action,
            unid,
            quake: None,
        });
    }
    let time = p.time.ok_or(EmscError::Invalid("no time"))?;
    if time.is_empty() || time.len() > 40 || time.chars().any(char::is_control) {
        return Err(EmscError::Invalid("time"));
    }
    let time_ms = humantime::parse_rfc3339_weak(&time)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .ok_or(EmscError::Invalid("time"))?;
    let lat = p
        .lat
        .filter(|l| (-90.0..=90.0).contains(l))
        .ok_or(EmscError::Invalid("lat"))?;
    let lon = p
        .lon
        .filter(|l| (-180.0..=180.0).contains(l))
        .ok_or(EmscError::Invalid("lon"))?;
    let finite = |v: Option<f64>, what| match v {
        Some(x) if !x.is_finite() => Err(EmscError::Invalid(what)),
        v => Ok(v),
    };
    let depth = finite(p.depth, "depth")?;
    let mag = finite(p.mag, "mag")?;
    let short = |s: Option<String>, max: usize| {
        s.map(|s| {
            s.chars()
                .filter(|c| !c.is_control())
                .take(max)
                .collect::<String>()
        })
        .filter(|s| !s.trim().is_empty())
    };
    Ok(SeismicEvent {
        action,
        unid,
        quake: Some(Quake {
            time,
            time_ms,
            lat,
            lon,
            depth,
            mag,
            magtype: short(p.magtype, 16),
            region: short(p.flynn_region, MAX_REGION_CHARS),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = r#"{"action":"create","data":{"type":"Feature","geometry":{"type":"Point","coordinates":[26.1,38.2,-10.0]},"id":"20261130_0000123","properties":{"source_id":"1595876","source_catalog":"EMSC-RTS","lastupdate":"2026-11-30T10:02:12.1Z","time":"2026-11-30T10:00:31.2Z","flynn_region":"DODECANESE ISLANDS, GREECE","lat":38.2,"lon":26.1,"depth":10.0,"evtype":"ke","auth":"NOA","mag":3.1,"magtype":"ml","unid":"20261130_0000123"}}}"#;

    #[test]
    fn a_create_is_an_event_with_its_values() {
        let e = parse(CREATE).expect("parsed");
        assert_eq!(
            (e.action, e.unid.as_str()),
            (Action::Create, "20261130_0000123")
        );
        let q = e.quake.expect("values");
        assert_eq!(
            (q.lat, q.lon, q.depth, q.mag),
            (38.2, 26.1, Some(10.0), Some(3.1))
        );
        assert_eq!(q.magtype.as_deref(), Some("ml"));
        assert_eq!(q.region.as_deref(), Some("DODECANESE ISLANDS, GREECE"));
        assert_eq!(q.time, "2026-11-30T10:00:31.2Z");
        assert_eq!(q.time_ms, 1_796_032_831_200);
    }

    #[test]
    fn an_update_and_a_bare_delete_name_the_event() {
        let update = CREATE.replace(r#""action":"create""#, r#""action":"update""#);
        assert_eq!(parse(&update).expect("update").action, Action::Update);
        let delete = r#"{"action":"delete","data":{"type":"Feature","id":"20261130_0000123","properties":{"unid":"20261130_0000123"}}}"#;
        let e = parse(delete).expect("delete");
        assert_eq!((e.action, e.quake), (Action::Delete, None));
        let by_id = r#"{"action":"delete","data":{"id":"abc_1","properties":{}}}"#;
        assert_eq!(parse(by_id).expect("by the feature id").unid, "abc_1");
    }

    #[test]
    fn what_cannot_be_used_is_refused_with_a_reason() {
        let cases = [
            ("{\"action\":\"create\",\"data\":", "malformed"),
            ("[1,2,3]", "malformed"),
            (&*CREATE.replace("create", "explode"), "unknown_action"),
            (
                &*CREATE.replace(r#""lat":38.2"#, r#""lat":91.0"#),
                "invalid",
            ),
            (
                &*CREATE.replace(r#""lon":26.1"#, r#""lon":"east""#),
                "malformed",
            ),
            (
                &*CREATE
                    .replace(r#""unid":"20261130_0000123""#, r#""unid":"../x""#)
                    .replace(r#""id":"20261130_0000123""#, r#""id":"y""#),
                "invalid",
            ),
            (
                r#"{"action":"create","data":{"properties":{"unid":"a1","lat":1.0,"lon":2.0}}}"#,
                "invalid",
            ),
            (r#"{"action":"delete","data":{"properties":{}}}"#, "invalid"),
        ];
        for (frame, reason) in cases {
            let e = parse(frame).expect_err(frame);
            assert_eq!(e.reason(), reason, "{frame}: {e}");
        }
        let huge = format!("{}{}", CREATE, " ".repeat(MAX_EVENT_BYTES));
        assert_eq!(parse(&huge).expect_err("oversized").reason(), "oversized");
    }

    #[test]
    fn the_shipped_fixture_has_events_of_each_kind_and_two_bad_frames() {
        // Where `cargo test` runs it from (a cached binary may come from another clone).
        let dir = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
        let path = std::path::Path::new(&dir).join("fixtures/emsc.jsonl");
        let frames = crate::replay::load_fixture(&path).expect("fixture");
        let parsed: Vec<_> = frames.iter().map(|f| parse(f)).collect();
        let count = |a: Action| {
            parsed
                .iter()
                .filter(|p| p.as_ref().is_ok_and(|e| e.action == a))
                .count()
        };
        assert_eq!(
            (
                count(Action::Create),
                count(Action::Update),
                count(Action::Delete)
            ),
            (3, 2, 1)
        );
        let reasons: Vec<_> = parsed
            .iter()
            .filter_map(|p| p.as_ref().err().map(EmscError::reason))
            .collect();
        assert_eq!(reasons, ["malformed", "unknown_action"]);
    }
}
