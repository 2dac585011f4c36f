//! Metric names this crate updates, with their help texts ([`describe_metrics`]).

/// Members of the cluster by state: `up` (a link that heartbeats), `down` (registered in the store
/// and live there, but no link) (gauge, label `state`).
pub const MEMBERS: &str = "banter_cluster_members";
/// Members the store shows as live, this node included (gauge).
pub const MEMBERS_LIVE: &str = "banter_cluster_members_live";
/// Shards this node holds a lease on (gauge).
pub const SHARDS_OWNED: &str = "banter_cluster_shards_owned";
/// Shards that changed hands at this node: `taken`, `released` (handed to a preferred member),
/// `lost` (a renewal found another owner) (counter, label `kind`).
pub const REBALANCES: &str = "banter_cluster_rebalances_total";
/// Lease rounds that failed on a store error (counter).
pub const LEASE_ERRORS: &str = "banter_cluster_lease_errors_total";
/// Takes whose journal fence failed, and which were handed back (counter).
pub const FENCE_ERRORS: &str = "banter_cluster_fence_errors_total";
/// Envelopes sent to a peer (counter, label `peer`).
pub const ENVELOPES_OUT: &str = "banter_cluster_envelopes_out_total";
/// Frames sent to a peer: each carries one envelope, or a batch of those queued while the link
/// was busy (counter, label `peer`; envelopes out / frames out is the mean batch).
pub const FRAMES_OUT: &str = "banter_cluster_frames_out_total";
/// Envelopes received from a peer (counter, label `peer`).
pub const ENVELOPES_IN: &str = "banter_cluster_envelopes_in_total";
/// Envelopes refused, by reason: `malformed` (did not decode), `unknown_node` (from a node that is
/// not a member), `unrouted` (a body this node does not take), `peer_down`, `congested` (the peer
/// confirmed too few: the link is dropped) (counter, label `reason`).
pub const ENVELOPES_REFUSED: &str = "banter_cluster_envelopes_refused_total";
/// Routed envelopes this node received, by kind: `to_room` (a command for a room it serves),
/// `room_reply`, `to_session`, `fan_out` (one per room event for all its sessions), `drop_user`,
/// `room_lost`, `to_user`, `presence`, `to_account`, `account_reply` (counter, label `kind`).
pub const ROUTED_IN: &str = "banter_cluster_routed_in_total";
/// The cross-node hop of a chat message's fan-out, seconds: from the room's node handing it to the
/// link to this node handing it to its sessions (wall clocks of two nodes: on two machines their
/// offset counts too) (histogram).
pub const FAN_OUT_HOP: &str = "banter_cluster_fan_out_hop_seconds";
/// Envelopes sent to a peer that it has not confirmed yet: the queue towards it (gauge, label
/// `peer`).
pub const PEER_UNCONFIRMED: &str = "banter_cluster_peer_unconfirmed";
/// Heartbeat round trip to a peer, seconds (histogram, label `peer`).
pub const PEER_RTT: &str = "banter_cluster_peer_rtt_seconds";
/// Links to peers dropped, by reason: `silent` (missed heartbeats), `congested`, `disconnected`
/// (counter, label `reason`).
pub const LINKS_DROPPED: &str = "banter_cluster_links_dropped_total";
/// Dials of peers that failed (counter).
pub const DIAL_ERRORS: &str = "banter_cluster_dial_errors_total";
/// Connections the cluster port refused before authentication, by reason (counter, label `reason`:
/// `refused` by a cap, `unauthenticated`, `handshake_timeout`, `tls`: a failed TLS handshake, also
/// counted as unauthenticated).
pub const PORT_REFUSED: &str = "banter_cluster_port_refused_total";

/// Exports every series of a cluster node that has no per-peer label at zero, so that a rate or an
/// alert over it has a series before the first event (called when the node joins).
pub fn export_at_zero() {
    for name in [LEASE_ERRORS, FENCE_ERRORS, DIAL_ERRORS] {
        metrics::counter!(name).increment(0);
    }
    for kind in ["taken", "released", "lost"] {
        metrics::counter!(REBALANCES, "kind" => kind).increment(0);
    }
    for reason in [
        "malformed",
        "unknown_node",
        "unrouted",
        "peer_down",
        "congested",
    ] {
        metrics::counter!(ENVELOPES_REFUSED, "reason" => reason).increment(0);
    }
    for reason in ["silent", "congested", "disconnected"] {
        metrics::counter!(LINKS_DROPPED, "reason" => reason).increment(0);
    }
    for reason in ["refused", "unauthenticated", "handshake_timeout", "tls"] {
        metrics::counter!(PORT_REFUSED, "reason" => reason).increment(0);
    }
    for state in ["up", "down"] {
        metrics::gauge!(MEMBERS, "state" => state).increment(0.0);
    }
}

/// Describes this crate's metrics to the installed recorder.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(MEMBERS, Unit::Count, "members of the cluster by link state");
    describe_gauge!(
        MEMBERS_LIVE,
        Unit::Count,
        "members live in the store, this node included"
    );
    describe_gauge!(
        SHARDS_OWNED,
        Unit::Count,
        "shards this node holds a lease on"
    );
    describe_counter!(
        REBALANCES,
        Unit::Count,
        "shards taken, released or lost by this node"
    );
    describe_counter!(
        LEASE_ERRORS,
        Unit::Count,
        "lease rounds failed on a store error"
    );
    describe_counter!(
        FENCE_ERRORS,
        Unit::Count,
        "shard takes handed back because the journal could not fence them"
    );
    describe_counter!(ENVELOPES_OUT, Unit::Count, "envelopes sent, by peer");
    describe_counter!(
        FRAMES_OUT,
        Unit::Count,
        "frames sent, by peer (one envelope or a batch)"
    );
    describe_counter!(ENVELOPES_IN, Unit::Count, "envelopes received, by peer");
    describe_counter!(
        ENVELOPES_REFUSED,
        Unit::Count,
        "envelopes refused, by reason"
    );
    describe_counter!(ROUTED_IN, Unit::Count, "routed envelopes received, by kind");
    describe_histogram!(
        FAN_OUT_HOP,
        Unit::Seconds,
        "a chat message's fan-out from the room's node to this node's sessions"
    );
    describe_gauge!(
        PEER_UNCONFIRMED,
        Unit::Count,
        "envelopes sent to the peer and not yet confirmed by it"
    );
    describe_histogram!(PEER_RTT, Unit::Seconds, "heartbeat round trip, by peer");
    describe_counter!(
        LINKS_DROPPED,
        Unit::Count,
        "links to peers dropped, by reason"
    );
    describe_counter!(DIAL_ERRORS, Unit::Count, "failed dials of peers");
    describe_counter!(
        PORT_REFUSED,
        Unit::Count,
        "connections refused on the cluster port before authentication, by reason"
    );
}

/// The handles of the metrics routing updates for every envelope, looked up once (a lookup hashes the
/// name and labels).
pub(crate) struct Routed {
    kinds: [metrics::Counter; Routed::KINDS.len()],
    /// [`FAN_OUT_HOP`].
    pub(crate) hop: metrics::Histogram,
}

impl Routed {
    /// The `kind` labels of [`ROUTED_IN`], by index.
    pub(crate) const KINDS: [&'static str; 11] = [
        "to_room",
        "room_reply",
        "to_session",
        "fan_out",
        "drop_user",
        "room_lost",
        "to_user",
        "presence",
        "to_account",
        "account_reply",
        "other",
    ];

    pub(crate) fn new() -> Routed {
        Routed {
            kinds: Routed::KINDS.map(|kind| metrics::counter!(ROUTED_IN, "kind" => kind)),
            hop: metrics::histogram!(FAN_OUT_HOP),
        }
    }

    /// Counts an envelope of kind `Routed::KINDS[kind]`.
    pub(crate) fn count(&self, kind: usize) {
        if let Some(c) = self.kinds.get(kind) {
            c.increment(1);
        }
    }
}
