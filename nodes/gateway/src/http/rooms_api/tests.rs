use serde_json::Value;

use super::*;

#[test]
fn cursors_are_non_negative_integers() {
    assert_eq!(parse_cursor(None).ok(), Some(None));
    assert_eq!(parse_cursor(Some("0")).ok(), Some(Some(0)));
    assert_eq!(parse_cursor(Some("42")).ok(), Some(Some(42)));
    for bad in ["", "-1", "abc", "1.5", " 1", "99999999999999999999"] {
        let e = parse_cursor(Some(bad)).expect_err(bad);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "invalid_cursor"),
            "{bad}"
        );
    }
}

#[test]
fn limits_default_and_stay_in_range() {
    assert_eq!(parse_limit(None, 100, 500).ok(), Some(100));
    assert_eq!(parse_limit(Some("1"), 100, 500).ok(), Some(1));
    assert_eq!(parse_limit(Some("500"), 100, 500).ok(), Some(500));
    for bad in ["0", "501", "-1", "x", ""] {
        let e = parse_limit(Some(bad), 100, 500).expect_err(bad);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "invalid_limit"),
            "{bad}"
        );
    }
}

#[test]
fn a_page_is_cut_at_its_limit() {
    let mut rows = vec![1, 2, 3];
    assert_eq!(
        cut_page(&mut rows, 3, |r| *r),
        None,
        "no row beyond: last page"
    );
    assert_eq!(rows, [1, 2, 3]);
    let mut rows = vec![1, 2, 3, 4];
    assert_eq!(cut_page(&mut rows, 3, |r| *r), Some(3));
    assert_eq!(rows, [1, 2, 3]);
    let mut rows: Vec<i64> = Vec::new();
    assert_eq!(cut_page(&mut rows, 3, |r| *r), None);
}

fn openapi() -> Value {
    serde_json::to_value(crate::http::openapi()).expect("openapi serialises")
}

fn param<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
}

#[test]
fn openapi_tells_the_page_parameters_and_their_bounds() {
    let doc = openapi();
    for (path, max) in [("/api/rooms", 500), ("/api/rooms/{id}/members", 1000)] {
        let limit = param(&doc, path, "get", "limit");
        assert_eq!(limit["in"], "query");
        assert_eq!(limit["schema"]["minimum"], 1, "{path}");
        assert_eq!(limit["schema"]["maximum"], max, "{path}");
        let after = param(&doc, path, "get", "after");
        assert_eq!(after["schema"]["minimum"], 0, "{path}");
        assert!(
            after["schema"]["type"].to_string().contains("integer"),
            "{path}: {after}"
        );
        assert!(
            doc["paths"][path]["get"]["responses"]["400"].is_object(),
            "{path} documents its 400"
        );
    }
    for list in ["RoomList", "MemberList"] {
        assert!(
            doc["components"]["schemas"][list]["properties"]["next_after"].is_object(),
            "{list}.next_after"
        );
    }
}

#[test]
fn openapi_tells_the_budget_answers() {
    let doc = openapi();
    for (path, statuses) in [
        ("/api/rooms", &["403", "429"][..]),
        ("/api/dms", &["401", "403", "429"][..]),
        ("/api/rooms/{id}/join", &["401", "403", "429"][..]),
    ] {
        let responses = &doc["paths"][path]["post"]["responses"];
        for status in statuses {
            assert!(
                responses[status].is_object(),
                "POST {path} documents {status}"
            );
        }
        assert!(
            responses["429"]["headers"]["Retry-After"].is_object(),
            "POST {path}: 429 has Retry-After: {}",
            responses["429"]
        );
    }
}
