//! The load generator's scenarios, each once at a tiny size, so the benchmark tooling cannot rot
//! (`scripts/bench.sh` runs them at full size). Each run must come back clean — every RECEIPTed
//! message delivered once, in order, to every subscriber — against a real node and the baseline, and
//! the write-path tools (broker ceiling, persister drain, INSERT ceiling) must measure real rows.

use std::net::SocketAddr;
use std::time::Duration;

use banter_loadgen::ceiling::{self, ProduceSpec};
use banter_loadgen::scenario::Target;
use banter_loadgen::scenario::idle::{self, IdleSpec};
use banter_loadgen::scenario::rooms::{self, RoomsReport, RoomsSpec, Step};
use banter_tests::kafka::Broker;
use banter_tests::node::mysql_url_or_skip;
use banter_tests::{Node, NodeBuilder};

/// A node with limits that let a load generator through (it sends faster than a person).
fn bench_node(name: &str) -> NodeBuilder {
    NodeBuilder::new(name)
        .env("BANTER_LIMITS__SEND_PER_SECOND", 100_000)
        .env("BANTER_LIMITS__SEND_BURST", 100_000)
        .env("BANTER_LIMITS__AUTH_PER_MINUTE", 100_000)
        // As `scripts/bench.sh`: registering many users at argon2's OWASP cost is not what is measured.
        .env("BANTER_AUTH__PASSWORD_MEMORY_KIB", 64)
        .env("BANTER_AUTH__PASSWORD_ITERATIONS", 1)
}

fn addr(node: &Node) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], node.port()))
}

async fn baseline() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(banter_loadgen::baseline::serve(listener));
    addr
}

/// The run's shape; `pid` is the server's process, measured for its CPU per message.
fn spec(
    name: &str,
    (rooms, members, senders): (usize, usize, usize),
    steps: Vec<Step>,
    pid: Option<u32>,
) -> RoomsSpec {
    RoomsSpec {
        name: name.into(),
        rooms,
        members,
        senders_per_room: senders,
        senders_subscribe: senders == members,
        steps,
        pause_secs: 0.2,
        drain_secs: 20.0,
        body_bytes: 150,
        user_prefix: format!("{name}{}", std::process::id()),
        heart_beat: (0, 0),
        server_pids: pid.into_iter().collect(),
        servers: Vec::new(),
    }
}

fn open(rate: f64) -> Step {
    Step {
        rate: Some(rate),
        window: 0,
        secs: 1.0,
    }
}

fn closed(window: u32) -> Step {
    Step {
        rate: None,
        window,
        secs: 1.0,
    }
}

/// Asserts a clean run that delivered what it promised.
fn assert_clean(r: &RoomsReport, subscribers: u64) {
    assert!(r.clean, "{}", banter_loadgen::report::rooms_table(r));
    for s in &r.steps {
        assert!(
            s.receipted > 0,
            "{}",
            banter_loadgen::report::rooms_table(r)
        );
        assert_eq!(s.delivered, s.receipted * subscribers);
        assert_eq!(s.deliver.count, s.delivered);
        assert_eq!(s.receipt.count, s.receipted);
        let cpu = s.server_cpu.expect("the server's CPU is measured");
        assert!(cpu.cores >= 0.0 && cpu.us_per_message >= 0.0, "{cpu:?}");
    }
}

#[tokio::test]
async fn fanout_and_chat_run_clean_on_banter_and_the_baseline() {
    let node = bench_node("loadgen-rooms").start().await.expect("node");
    let base = baseline().await;
    // The baseline runs in this process.
    let targets = [
        (Target::Banter(addr(&node)), node.pid()),
        (Target::Baseline(base), Some(std::process::id())),
    ];
    for (target, pid) in targets {
        // Fan-out: one room, 6 subscribers, one sender that does not subscribe.
        let steps = vec![open(50.0), open(200.0)];
        let fanout = rooms::run(target, spec("fan", (1, 7, 1), steps, pid))
            .await
            .expect("fanout");
        assert_clean(&fanout, 6);
        assert!((fanout.steps[1].receipted as f64) > 150.0, "{fanout:?}");
        // Chat: 3 rooms of 3, everyone talking; an open and a closed-loop step.
        let chat = rooms::run(
            target,
            spec("chat", (3, 3, 3), vec![open(90.0), closed(2)], pid),
        )
        .await
        .expect("chat");
        assert_clean(&chat, 3);
    }
}

#[tokio::test]
async fn idle_connections_are_held_and_measured() {
    let node = bench_node("loadgen-idle").start().await.expect("node");
    let r = idle::run(
        Target::Banter(addr(&node)),
        IdleSpec {
            connections: 40,
            user_prefix: format!("idle{}", std::process::id()),
            pid: node.pid(),
            hold_secs: 0.5,
            heart_beat: (0, 0),
        },
    )
    .await
    .expect("idle");
    assert_eq!((r.open, r.dropped), (40, 0), "{r:?}");
    assert!(
        r.rss_after.is_some() && r.rss_per_connection.is_some(),
        "{r:?}"
    );
}

#[tokio::test]
async fn write_path_tools_measure_the_broker_the_persister_and_the_database() {
    let test = "write_path_tools_measure_the_broker_the_persister_and_the_database";
    let Some(mysql) = mysql_url_or_skip(test) else {
        return;
    };
    let Some(broker) = Broker::start().await.expect("broker") else {
        return;
    };
    let kafka = |name: &str| {
        bench_node(name)
            .env("BANTER_JOURNAL__KIND", "kafka")
            .env("BANTER_JOURNAL__KAFKA__BROKERS", broker.brokers())
            .env("BANTER_JOURNAL__KAFKA__PARTITIONS", 3)
    };
    // The broker's ceiling: rdkafka alone.
    let ceiling_spec = ProduceSpec {
        brokers: broker.brokers(),
        topic: "loadgen.ceiling".into(),
        partitions: 3,
        messages: 300,
        body_bytes: 150,
        rooms: 10,
        linger_ms: 5,
    };
    let produced = ceiling::produce(&ceiling_spec).await.expect("produce");
    assert_eq!(produced.items, 300);
    assert!(produced.per_sec > 0.0);
    // Its latency at a fixed rate.
    let at_rate = ceiling::produce_at(&ceiling_spec, 200.0, 0.5)
        .await
        .expect("produce at a rate");
    assert_eq!((at_rate.records, at_rate.ack.count), (100, 100));

    // Banter's gateway journals to Kafka with no persister running; then a persister drains it.
    let gateway = kafka("loadgen-gateway")
        .mysql(&mysql)
        .env("BANTER_NODE__ROLES", "[gateway]")
        .start()
        .await
        .expect("gateway");
    let db_url = format!("{mysql}/{}", gateway.mysql_database().expect("db"));
    let r = rooms::run(
        Target::Banter(addr(&gateway)),
        spec("wp", (4, 2, 2), vec![open(100.0), closed(4)], gateway.pid()),
    )
    .await
    .expect("write path");
    assert_clean(&r, 2);
    let receipted: u64 = r.steps.iter().map(|s| s.receipted).sum();
    let _persister = kafka("loadgen-persister")
        .env("BANTER_STORE__URL", &db_url)
        .env("BANTER_NODE__ROLES", "[persister]")
        .start()
        .await
        .expect("persister");
    let drained = ceiling::drain(&db_url, receipted, Duration::from_secs(60))
        .await
        .expect("drain");
    assert!(drained.items <= receipted, "{drained:?}");
    // The broker's read ceiling: everything on the journal topic.
    let read = ceiling::consume(&broker.brokers(), "chat.messages")
        .await
        .expect("consume");
    assert_eq!(read.items, receipted);
    // The database's ceiling: the same rows again, with plain INSERTs.
    let inserted = ceiling::insert(&db_url, 50).await.expect("insert");
    assert_eq!(inserted.items, receipted);
}
