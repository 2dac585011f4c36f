//! What a source sends for an event, and the event's GeoJSON.

use super::*;
use crate::ports::{BBox, SourceId};

fn event(id: &str, mag: f64, lon: f64, lat: f64) -> FeedEvent {
    FeedEvent {
        source: SourceId(1),
        id: id.to_owned(),
        time_ms: 1_700_000_000_000,
        lat,
        lon,
        depth_km: Some(10.0),
        magnitude: Some(mag),
        magnitude_type: Some("ml".into()),
        region: Some("CRETE, GREECE".into()),
        deleted_at_ms: None,
        updated_at_ms: 0,
    }
}

fn follow(min_magnitude: Option<f64>, bbox: Option<BBox>) -> Follow {
    Follow {
        room: RoomId(5),
        source: SourceId(1),
        min_magnitude,
        bbox,
    }
}

#[test]
fn a_new_event_is_posted_where_the_filters_show_it() {
    let e = event("q1", 4.2, 25.0, 35.0);
    let item = plan(&follow(None, None), None, &e, true, "{}").expect("posted");
    assert_eq!((item.kind, item.nonce.as_str()), (MessageKind::Post, "q1"));
    assert!(plan(&follow(Some(4.5), None), None, &e, true, "{}").is_none());
    let greece = BBox {
        min_lon: 19.0,
        min_lat: 34.0,
        max_lon: 30.0,
        max_lat: 42.0,
    };
    assert!(plan(&follow(Some(4.0), Some(greece)), None, &e, true, "{}").is_some());
    let japan = BBox {
        min_lon: 128.0,
        min_lat: 30.0,
        max_lon: 146.0,
        max_lat: 46.0,
    };
    assert!(plan(&follow(None, Some(japan)), None, &e, true, "{}").is_none());
    // A box across the antimeridian.
    let pacific = BBox {
        min_lon: 170.0,
        min_lat: -60.0,
        max_lon: -170.0,
        max_lat: 60.0,
    };
    assert!(pacific.contains(179.5, 0.0) && pacific.contains(-175.0, 10.0));
    assert!(!pacific.contains(0.0, 0.0));
    let mut no_mag = e.clone();
    no_mag.magnitude = None;
    assert!(plan(&follow(Some(1.0), None), None, &no_mag, true, "{}").is_none());
}

#[test]
fn a_change_is_an_edit_a_withdrawal_a_delete_and_a_repeat_nothing() {
    let e = event("q1", 4.2, 25.0, 35.0);
    let f = follow(None, None);
    let edit = plan(&f, Some(7), &e, true, "{\"v\":2}").expect("an edit");
    assert_eq!(edit.kind, MessageKind::Edit(7));
    let again = plan(&f, Some(7), &e, true, "{\"v\":2}").expect("the same edit");
    assert_eq!(edit.nonce, again.nonce, "the same values: the same nonce");
    let other = plan(&f, Some(7), &e, true, "{\"v\":3}").expect("another edit");
    assert_ne!(edit.nonce, other.nonce);
    assert!(plan(&f, Some(7), &e, false, "{}").is_none(), "unchanged");
    let mut gone = e.clone();
    gone.deleted_at_ms = Some(1);
    let delete = plan(&f, Some(7), &gone, true, "{}").expect("a delete");
    assert_eq!(
        (delete.kind, delete.nonce.as_str()),
        (MessageKind::Delete(7), "q1#delete")
    );
    assert!(
        plan(&f, None, &gone, true, "{}").is_none(),
        "never posted here"
    );
    // An update of a posted event is edited in, whatever the filters say now.
    let small = event("q1", 1.0, 25.0, 35.0);
    assert!(plan(&follow(Some(4.0), None), Some(7), &small, true, "{}").is_some());
    assert!(same_values(&e, &event("q1", 4.2, 25.0, 35.0)));
    // Nonces fit the 64 bytes a nonce may have, whatever the id.
    let long = "x".repeat(64);
    let n = plan(&f, Some(7), &event(&long, 4.2, 25.0, 35.0), true, "{}").expect("an edit");
    assert!(
        n.nonce.len() <= crate::rules::NONCE_MAX_BYTES,
        "{}",
        n.nonce
    );
    assert_eq!(nonce("q1", "#delete"), "q1#delete");
    assert!(!same_values(&e, &small));
}

#[test]
fn an_event_is_a_geojson_point_feature() {
    let f = feature("emsc", &event("q1", 4.2, 25.5, 35.25));
    assert_eq!(f["type"], "Feature");
    assert_eq!(f["id"], "q1");
    assert_eq!(f["geometry"]["coordinates"], json!([25.5, 35.25, -10.0]));
    assert_eq!(f["properties"]["magnitude"], 4.2);
    assert_eq!(f["properties"]["source"], "emsc");
    assert_eq!(f["properties"]["region"], "CRETE, GREECE");
}
