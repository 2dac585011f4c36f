//! The journal record: key, value and partition of one chat message.
//!
//! - key: the room id in decimal (a short string every Kafka tool can show);
//! - value: the `banter.v1.ChatMessage` protobuf, encoded straight from the domain message into one
//!   buffer of the exact size (no intermediate proto struct, no copy of the body);
//! - partition: Kafka's default (Java) partitioner, `murmur2(key) & 0x7fffffff % partitions`, the same
//!   as librdkafka's `murmur2_random`: the journal computes it itself, because reading a room's tail
//!   means reading the one partition that holds the room.

use banter_actors::model::{ChatMessage, Marks, MessageKind, RoomId};
use banter_actors::rules;
use banter_actors::shard::{Epoch, ShardId, Term};
use prost::Message as _;
use prost::encoding::{self, WireType};

/// Largest body a record may carry: what a MySQL `TEXT` column holds (the node itself caps bodies far
/// lower, `limits.max_body_bytes`). A longer one could never be stored.
pub(crate) const MAX_BODY_BYTES: usize = 65_535;

/// Most bytes of a room id in decimal (`-9223372036854775808`).
const KEY_CAP: usize = 20;

/// A room id in decimal, without allocating.
#[derive(Clone, Copy)]
pub(crate) struct RoomKey {
    buf: [u8; KEY_CAP],
    len: usize,
}

impl RoomKey {
    /// Returns the key of a room.
    pub(crate) fn new(room: RoomId) -> RoomKey {
        let mut buf = [0u8; KEY_CAP];
        let mut len = 0;
        let negative = room.0 < 0;
        let mut n = room.0.unsigned_abs();
        loop {
            buf[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if negative {
            buf[len] = b'-';
            len += 1;
        }
        buf[..len].reverse();
        RoomKey { buf, len }
    }

    /// Returns the key's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Returns the partition of `key` among `partitions`, as Kafka's default partitioner picks it.
pub(crate) fn partition_for(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 1 {
        return 0;
    }
    ((murmur2(key) & 0x7fff_ffff) as i32) % partitions
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed `0x9747b28c`.
pub(crate) fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// Returns the `banter.v1.ChatMessage` encoding of `m` under a single node's term; see
/// [`encode_into`].
#[cfg(test)]
pub(crate) fn encode(m: &ChatMessage) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_into(m, Term::SINGLE, &mut buf);
    buf
}

/// Appends the `banter.v1.ChatMessage` encoding of `m` written under `term` to `buf`, byte for byte
/// what prost writes for `m.to_proto()` with the term's `epoch` and `shard`, without building the
/// proto struct (no copy of the body).
pub(crate) fn encode_into(m: &ChatMessage, term: Term, buf: &mut Vec<u8>) {
    let (epoch, shard) = (term.epoch.0, term.shard.0);
    let plain = m.attachments.is_empty()
        && m.kind == MessageKind::Post
        && m.content_type.is_none()
        && m.marks == Marks::default();
    if !plain {
        // Attachments, edits, deletes and typed bodies are rare: prost writes them.
        let mut p = m.to_proto();
        (p.epoch, p.shard) = (epoch, shard);
        buf.extend_from_slice(&p.encode_to_vec());
        return;
    }
    let id = m.message_id.as_bytes();
    let len = encoding::int64::encoded_len(1, &m.room_id.0) * usize::from(m.room_id.0 != 0)
        + encoding::uint64::encoded_len(2, &m.seq) * usize::from(m.seq != 0)
        + encoding::key_len(3)
        + encoding::encoded_len_varint(id.len() as u64)
        + id.len()
        + encoding::int64::encoded_len(4, &m.sender_id.0) * usize::from(m.sender_id.0 != 0)
        + encoding::string::encoded_len(5, &m.body) * usize::from(!m.body.is_empty())
        + encoding::int64::encoded_len(6, &m.created_at_ms) * usize::from(m.created_at_ms != 0)
        + encoding::uint64::encoded_len(7, &epoch) * usize::from(epoch != 0)
        + m.nonce
            .as_ref()
            .map_or(0, |n| encoding::string::encoded_len(8, n))
        + encoding::uint32::encoded_len(9, &shard) * usize::from(shard != 0);
    buf.reserve(len);
    let start = buf.len();
    // proto3: fields holding their default value are not written, as prost does.
    if m.room_id.0 != 0 {
        encoding::int64::encode(1, &m.room_id.0, buf);
    }
    if m.seq != 0 {
        encoding::uint64::encode(2, &m.seq, buf);
    }
    encoding::encode_key(3, WireType::LengthDelimited, buf);
    encoding::encode_varint(id.len() as u64, buf);
    buf.extend_from_slice(id);
    if m.sender_id.0 != 0 {
        encoding::int64::encode(4, &m.sender_id.0, buf);
    }
    if !m.body.is_empty() {
        encoding::string::encode(5, &m.body, buf);
    }
    if m.created_at_ms != 0 {
        encoding::int64::encode(6, &m.created_at_ms, buf);
    }
    if epoch != 0 {
        encoding::uint64::encode(7, &epoch, buf);
    }
    // An optional field is written whenever present, even empty, as prost does.
    if let Some(nonce) = &m.nonce {
        encoding::string::encode(8, nonce, buf);
    }
    if shard != 0 {
        encoding::uint32::encode(9, &shard, buf);
    }
    debug_assert_eq!(buf.len() - start, len);
}

/// Why a record cannot become a message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// The value is not a `banter.v1.ChatMessage` (or is missing).
    #[error("undecodable: {0}")]
    Undecodable(String),
    /// The value decodes but breaks a rule no store would accept.
    #[error("invalid: {0}")]
    Invalid(String),
}

impl RecordError {
    /// Every [`RecordError::reason`].
    pub(crate) const REASONS: [&'static str; 2] = ["undecodable", "invalid"];

    /// Returns the short reason used in the `dlq-reason` header and the metric label.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            RecordError::Undecodable(_) => "undecodable",
            RecordError::Invalid(_) => "invalid",
        }
    }
}

/// A journal record as readers see it.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A chat message and the term it was written under.
    Message(ChatMessage, Term),
    /// A fence (see [`super::fence`]): the shards and their new epochs.
    Fence(Vec<Term>),
}

/// Reads a record: a fence when `fence` (its headers say so), else a message (see [`decode`]).
pub(crate) fn read(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    fence: bool,
) -> Result<Entry, RecordError> {
    if fence {
        return super::fence::decode(value).map(Entry::Fence);
    }
    decode(key, value).map(|(m, term)| Entry::Message(m, term))
}

/// Decodes a record's value into a message and the term it was written under, and checks what the store would refuse anyway: a seq of 0
/// or beyond a signed 64-bit integer, a room id below 1, a message id that is not 16 bytes, a body
/// longer than [`MAX_BODY_BYTES`], a nonce longer than [`rules::NONCE_MAX_BYTES`] (the store's column
/// holds no more), and a key naming another room.
pub(crate) fn decode(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(ChatMessage, Term), RecordError> {
    let value = value.ok_or_else(|| RecordError::Undecodable("record has no value".into()))?;
    let proto = banter_proto::v1::ChatMessage::decode(value)
        .map_err(|e| RecordError::Undecodable(e.to_string()))?;
    let term = Term {
        shard: ShardId(proto.shard),
        epoch: Epoch(proto.epoch),
    };
    let m = ChatMessage::from_proto(proto)
        .map_err(|e| RecordError::Invalid(format!("message id: {e}")))?;
    if m.seq == 0 || i64::try_from(m.seq).is_err() {
        return Err(RecordError::Invalid(format!("seq {} out of range", m.seq)));
    }
    if m.room_id.0 <= 0 {
        return Err(RecordError::Invalid(format!("room id {}", m.room_id)));
    }
    if m.body.len() > MAX_BODY_BYTES {
        return Err(RecordError::Invalid(format!(
            "body of {} bytes exceeds {MAX_BODY_BYTES}",
            m.body.len()
        )));
    }
    if let Some(n) = &m.nonce
        && n.len() > rules::NONCE_MAX_BYTES
    {
        return Err(RecordError::Invalid(format!(
            "nonce of {} bytes exceeds {}",
            n.len(),
            rules::NONCE_MAX_BYTES
        )));
    }
    if let Some(key) = key
        && key != RoomKey::new(m.room_id).as_bytes()
    {
        return Err(RecordError::Invalid(format!(
            "key {:?} is not room {}",
            String::from_utf8_lossy(key),
            m.room_id
        )));
    }
    Ok((m, term))
}

#[cfg(test)]
mod tests {
    use banter_actors::model::UserId;
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;

    fn message(room: i64, seq: u64, body: &str) -> ChatMessage {
        ChatMessage {
            room_id: RoomId(room),
            seq,
            message_id: Uuid::now_v7(),
            sender_id: UserId(42),
            body: body.into(),
            created_at_ms: 1_700_000_000_000,
            nonce: None,
            attachments: Vec::new(),
            ..Default::default()
        }
    }

    #[test]
    fn murmur2_matches_kafkas_test_vectors() {
        // From Kafka's UtilsTest.testMurmur2.
        for (data, expected) in [
            (&b"21"[..], -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ] {
            assert_eq!(murmur2(data) as i32, expected, "{data:?}");
        }
    }

    #[test]
    fn room_keys_are_decimal() {
        for id in [0, 1, 9, 10, 1234567, i64::MAX, -5, i64::MIN] {
            assert_eq!(
                RoomKey::new(RoomId(id)).as_bytes(),
                id.to_string().as_bytes()
            );
        }
        assert!((0..6).contains(&partition_for(b"17", 6)));
        assert_eq!(partition_for(b"17", 1), 0);
    }

    #[test]
    fn decode_checks_key_seq_and_value() {
        let m = message(7, 3, "hi");
        let value = encode(&m);
        assert_eq!(
            decode(Some(b"7"), Some(&value)).expect("decodes"),
            (m.clone(), Term::SINGLE)
        );
        assert_eq!(decode(None, Some(&value)).expect("keyless decodes").0, m);
        let reason = |k: Option<&[u8]>, v: Option<&[u8]>| decode(k, v).err().map(|e| e.reason());
        assert_eq!(reason(Some(b"8"), Some(&value)), Some("invalid"));
        assert_eq!(reason(Some(b"7"), None), Some("undecodable"));
        assert_eq!(
            reason(Some(b"7"), Some(b"\xff\xff garbage")),
            Some("undecodable")
        );
        assert_eq!(
            reason(Some(b"7"), Some(&encode(&message(7, 0, "x")))),
            Some("invalid")
        );
        assert_eq!(
            reason(Some(b"7"), Some(&encode(&message(7, u64::MAX, "x")))),
            Some("invalid")
        );
        let mut long_nonce = m.clone();
        long_nonce.nonce = Some("n".repeat(rules::NONCE_MAX_BYTES + 1));
        assert_eq!(
            reason(Some(b"7"), Some(&encode(&long_nonce))),
            Some("invalid")
        );
        let mut with_nonce = m.clone();
        with_nonce.nonce = Some("n".repeat(rules::NONCE_MAX_BYTES));
        assert_eq!(
            decode(Some(b"7"), Some(&encode(&with_nonce)))
                .expect("decodes")
                .0,
            with_nonce
        );
        let mut short_id = m.to_proto();
        short_id.message_id = bytes::Bytes::from_static(b"abc");
        assert_eq!(
            reason(Some(b"7"), Some(&short_id.encode_to_vec())),
            Some("invalid")
        );
    }

    proptest! {
        #[test]
        fn encode_is_prosts_encoding(
            room in any::<i64>(), seq in any::<u64>(), sender in any::<i64>(),
            body in ".{0,64}", at in any::<i64>(), id in any::<u128>(),
            nonce in proptest::option::of(".{0,16}"), epoch in any::<u64>(), shard in any::<u32>(),
            kind in 0..3i32, attached in any::<bool>(), typed in any::<bool>(),
        ) {
            // An event's target is below its seq.
            let kind = MessageKind::from_code(kind, seq / 2)
                .filter(|_| seq > 1)
                .unwrap_or_default();
            let attachments = if attached {
                vec![banter_actors::model::Attachment {
                    id: Uuid::from_u128(id ^ 1),
                    name: "a.png".into(),
                    content_type: "image/png".into(),
                    size: 3,
                    dimensions: Some((2, 1)),
                    thumbnail: None,
                }]
            } else {
                Vec::new()
            };
            let m = ChatMessage {
                room_id: RoomId(room),
                seq,
                message_id: Uuid::from_u128(id),
                sender_id: UserId(sender),
                body,
                created_at_ms: at,
                nonce,
                attachments,
                kind,
                content_type: typed.then(|| "application/geo+json".to_owned()),
                ..Default::default()
            };
            let ours = encode(&m);
            prop_assert_eq!(&ours, &m.to_proto().encode_to_vec());
            let back = banter_proto::v1::ChatMessage::decode(&ours[..]).expect("decodes");
            prop_assert_eq!(ChatMessage::from_proto(back).expect("valid id"), m.clone());
            // Under a lease, the record carries its term, still byte for byte prost's encoding.
            let term = Term { shard: ShardId(shard), epoch: Epoch(epoch) };
            let mut ours = Vec::new();
            encode_into(&m, term, &mut ours);
            let mut theirs = m.to_proto();
            (theirs.epoch, theirs.shard) = (epoch, shard);
            prop_assert_eq!(&ours, &theirs.encode_to_vec());
            if seq != 0 && i64::try_from(seq).is_ok() && room > 0 {
                let key = RoomKey::new(m.room_id);
                let (back, read_term) = decode(Some(key.as_bytes()), Some(&ours)).expect("reads");
                prop_assert_eq!((back, read_term), (m, term));
            }
        }
    }
}
