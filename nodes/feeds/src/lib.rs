//! Banter's live feeds: external event streams whose events become messages in feed rooms
//! (issue #21).
//!
//! - [`config`]: the `[feeds]` section, the sources a node runs;
//! - [`client`]: the websocket client that keeps a connection to a feed (pings, a silence
//!   timeout, reconnects with jittered exponential backoff) and hands its raw frames over;
//! - [`emsc`]: the EMSC seismic portal's websocket format (`{action, data: GeoJSON Feature}`),
//!   parsed into [`emsc::SeismicEvent`]s keyed by `unid`, with a size bound and typed errors for
//!   what must be skipped and counted;
//! - [`source`]: the EMSC feed as an ingest source of the actors' [`banter_actors::source`]
//!   (its connection and its format);
//! - [`replay`]: a websocket server that serves a recorded fixture in that format at a chosen
//!   pace, dropping connections on purpose, for tests and demos (there is no internet here); the
//!   `banter-feed-replay` binary runs it.

pub mod client;
pub mod config;
pub mod emsc;
pub mod replay;
pub mod source;
