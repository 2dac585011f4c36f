//! The dead-letter topic: records the persister can never store go there with their original key,
//! value and headers, plus headers telling why and where they came from, so nothing is dropped
//! silently and an operator can inspect or replay them.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Header: short reason (`undecodable`, `invalid`, `conflict`, `room-not-found`).
pub(crate) const REASON: &str = "dlq-reason";
/// Header: the full error text.
pub(crate) const ERROR: &str = "dlq-error";
/// Header: topic the record came from.
pub(crate) const TOPIC: &str = "dlq-topic";
/// Header: partition it came from (decimal).
pub(crate) const PARTITION: &str = "dlq-partition";
/// Header: offset it had there (decimal).
pub(crate) const OFFSET: &str = "dlq-offset";

/// Returns the headers of a dead letter: the original ones (minus `dlq-*` ones of an earlier trip
/// through a dead-letter topic), then the reason, error text, topic, partition and offset.
pub(crate) fn headers(
    original: Option<&impl Headers>,
    reason: &str,
    detail: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> OwnedHeaders {
    let mut out = OwnedHeaders::new_with_capacity(original.map_or(0, |h| h.count()) + 5);
    if let Some(original) = original {
        for h in original.iter().filter(|h| !h.key.starts_with("dlq-")) {
            out = out.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    let (partition, offset) = (partition.to_string(), offset.to_string());
    for (key, value) in [
        (REASON, reason),
        (ERROR, detail),
        (TOPIC, topic),
        (PARTITION, partition.as_str()),
        (OFFSET, offset.as_str()),
    ] {
        out = out.insert(Header {
            key,
            value: Some(value),
        });
    }
    out
}

/// Sends one record to the dead-letter topic `to` and waits for the broker's acknowledgement.
pub(crate) async fn send(
    producer: &FutureProducer,
    to: &str,
    source: &OwnedMessage,
    reason: &str,
    detail: &str,
    timeout: Duration,
) -> Result<(), String> {
    let headers = headers(
        source.headers(),
        reason,
        detail,
        source.topic(),
        source.partition(),
        source.offset(),
    );
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(to).headers(headers);
    if let Some(key) = source.key() {
        record = record.key(key);
    }
    if let Some(payload) = source.payload() {
        record = record.payload(payload);
    }
    producer
        .send(record, timeout)
        .await
        .map(|_| ())
        .map_err(|(e, _)| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(h: &'a OwnedHeaders, key: &str) -> Vec<Option<&'a [u8]>> {
        h.iter().filter(|x| x.key == key).map(|x| x.value).collect()
    }

    #[test]
    fn keeps_the_original_headers_and_adds_where_and_why() {
        let original = OwnedHeaders::new()
            .insert(Header {
                key: "traceparent",
                value: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            })
            .insert(Header {
                key: "empty",
                value: None::<&str>,
            })
            .insert(Header {
                key: "dlq-reason",
                value: Some("old"),
            });
        let h = headers(
            Some(&original),
            "undecodable",
            "failed to decode",
            "chat.messages",
            3,
            1234,
        );
        assert_eq!(
            get(&h, "traceparent"),
            [Some(
                &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..]
            )]
        );
        assert_eq!(get(&h, "empty"), [None]);
        assert_eq!(get(&h, REASON), [Some(&b"undecodable"[..])]);
        assert_eq!(get(&h, ERROR), [Some(&b"failed to decode"[..])]);
        assert_eq!(get(&h, TOPIC), [Some(&b"chat.messages"[..])]);
        assert_eq!(get(&h, PARTITION), [Some(&b"3"[..])]);
        assert_eq!(get(&h, OFFSET), [Some(&b"1234"[..])]);
        assert_eq!(h.count(), 7);
    }

    #[test]
    fn a_record_without_headers_gets_only_the_dead_letter_ones() {
        let h = headers(None::<&OwnedHeaders>, "conflict", "dup", "t", 0, 0);
        let keys: Vec<_> = h.iter().map(|x| x.key).collect();
        assert_eq!(keys, [REASON, ERROR, TOPIC, PARTITION, OFFSET]);
    }
}
