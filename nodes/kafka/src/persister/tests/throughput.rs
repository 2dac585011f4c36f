//! The throughput measurement (ignored: run by hand, not a timed test).

use super::*;

/// Throughput on this machine (not a timed test), each beside its ceiling measured in the same run:
/// pipelined appends beside rdkafka producing the same records straight to the same broker, and the
/// persister draining them into MariaDB beside plain `insert_messages` batches of the same size.
/// `cargo test -p banter-node --release --lib -- --ignored throughput --nocapture`
/// (`BANTER_THROUGHPUT_MESSAGES`, default 24000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run by hand"]
async fn throughput() {
    let Some((broker, db)) = setup("throughput", 12).await else {
        return;
    };
    let n: u64 = std::env::var("BANTER_THROUGHPUT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24_000);
    let kafka = kafka_config(&broker.brokers, 6);
    let mut config = persister_config(&kafka);
    config.batch_rows = 500;
    config.batch_ms = 100;
    let store = db.dyn_store();
    let journal = KafkaJournal::start(&kafka, &config.group_id, store.clone())
        .await
        .expect("journal");
    let (rooms, user) = (db.rooms.clone(), db.user);
    let per_room = n / rooms.len() as u64;
    let body = "x".repeat(150);
    let mut messages = Vec::with_capacity(n as usize);
    for seq in 1..=per_room {
        for &room in &rooms {
            let mut m = msg(room, seq, user);
            m.body.clone_from(&body);
            messages.push(m);
        }
    }
    let total = messages.len() as u64;
    let rate = |d: Duration| total as f64 / d.as_secs_f64();

    // Ceiling (a): the same records, keys and headers, produced by rdkafka alone (to the DLQ topic,
    // which has the same partitions), with the journal's producer settings.
    let raw: FutureProducer = crate::journal::admin::client_config(&kafka)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", kafka.linger_ms.to_string())
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    let encoded: Vec<(String, Vec<u8>)> = messages
        .iter()
        .map(|m| (m.room_id.to_string(), crate::journal::record::encode(m)))
        .collect();
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(encoded.len());
    for (key, value) in &encoded {
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: TRACEPARENT,
            value: Some(TraceParent::new_root().as_str()),
        });
        let record = FutureRecord::to(&kafka.dead_letter_topic)
            .key(key.as_str())
            .payload(value.as_slice())
            .headers(headers);
        deliveries.push(
            raw.send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueued"),
        );
    }
    for d in join_all(deliveries).await {
        d.expect("oneshot").expect("delivered");
    }
    let raw_produce = started.elapsed();

    // Banter's journal: pipelined appends.
    let started = Instant::now();
    let acks: Vec<_> = messages
        .iter()
        .map(|m| append_and_wait(&journal, m, &TraceParent::new_root()))
        .collect();
    let enqueued = started.elapsed();
    for ack in join_all(acks).await {
        ack.expect("acknowledged");
    }
    let produced = started.elapsed();

    // Reading the topic alone (no group, no store): what the broker serves to one consumer.
    let reader: BaseConsumer = crate::journal::admin::client_config(&kafka)
        .set("group.id", "throughput-reader")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let topic = kafka.topic.clone();
    let started = Instant::now();
    let read = tokio::task::spawn_blocking(move || {
        let mut tpl = TopicPartitionList::new();
        for p in 0..6 {
            tpl.add_partition_offset(&topic, p, Offset::Beginning)
                .expect("tpl");
        }
        reader.assign(&tpl).expect("assign");
        let mut read = 0;
        while read < total {
            match reader.poll(Duration::from_secs(10)) {
                Some(Ok(_)) => read += 1,
                Some(Err(e)) => panic!("read: {e}"),
                None => panic!("read stalled at {read}"),
            }
        }
        read
    })
    .await
    .expect("reader");
    assert_eq!(read, total);
    let raw_consume = started.elapsed();

    // The persister drains the topic into MariaDB.
    let started = Instant::now();
    let persister = start_persister(&kafka, &config, store.clone())
        .await
        .expect("persister");
    eventually(Duration::from_secs(600), "every row", || async {
        db.count("messages").await == total as i64
    })
    .await;
    let persisted = started.elapsed();
    persister.stop().await;

    // Ceiling (b): the same rows, in batches of the same size, straight into a fresh database.
    let server = mysql_or_skip("throughput").expect("mysql");
    let plain = Db::create(&server, rooms.len()).await;
    let mut sorted = messages.clone();
    sorted.sort_by_key(|m| (m.room_id, m.seq));
    let started = Instant::now();
    for chunk in sorted.chunks(config.batch_rows) {
        plain.store.insert_messages(chunk).await.expect("insert");
    }
    let raw_insert = started.elapsed();
    assert_eq!(plain.count("messages").await, total as i64);
    plain.drop().await;

    println!(
        "throughput, {total} messages of {} B bodies, 6 partitions, linger.ms {}, batch_rows {}:\n\
         (a) journal appends {:.0}/s ({produced:?}; enqueue loop {enqueued:?}) vs rdkafka alone {:.0}/s ({raw_produce:?}): ratio {:.2}\n\
         (b) persister {:.0} rows/s ({persisted:?}) vs plain insert_messages {:.0} rows/s ({raw_insert:?}): ratio {:.2}; \
         rdkafka consuming alone {:.0}/s ({raw_consume:?})",
        body.len(),
        kafka.linger_ms,
        config.batch_rows,
        rate(produced),
        rate(raw_produce),
        raw_produce.as_secs_f64() / produced.as_secs_f64(),
        rate(persisted),
        rate(raw_insert),
        raw_insert.as_secs_f64() / persisted.as_secs_f64(),
        rate(raw_consume),
    );
    db.drop().await;
}
