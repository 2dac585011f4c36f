//! Banter's live feeds: external event streams whose events become messages in feed rooms
//! (issue #21).
//!
//! - [`emsc`]: the EMSC seismic portal's websocket format (`{action, data: GeoJSON Feature}`),
//!   parsed into [`emsc::SeismicEvent`]s keyed by `unid`, with a size bound and typed errors for
//!   what must be skipped and counted;
//! - [`replay`]: a websocket server that serves a recorded fixture in that format at a chosen
//!   pace, dropping connections on purpose, for tests and demos (there is no internet here); the
//!   `banter-feed-replay` binary runs it.

pub mod emsc;
pub mod replay;
