//! TLS on the cluster port: two nodes with certificates of the cluster's authority authenticate; a
//! peer with a certificate of another authority, and a peer speaking plain TCP, are refused before
//! the cookie handshake and counted, and the node keeps serving.

mod support;

use std::path::{Path, PathBuf};

use banter_cluster::NodeEventKind;
use banter_cluster::tls::{Tls, TlsSettings};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use support::{COOKIE, Local, Peer, WAIT, exclusive};
use tokio::io::AsyncWriteExt;

/// A certificate authority and the files of nodes it signed.
struct Authority {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).expect("self-signed").pem();
        Authority { params, key, pem }
    }

    /// Writes `<name>.crt`, `<name>.key` and `<name>-ca.crt` for a node at 127.0.0.1 into `dir`.
    fn node(&self, dir: &Path, name: &str) -> TlsSettings {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("signed");
        let file = |suffix: &str, text: &str| -> PathBuf {
            let path = dir.join(format!("{name}{suffix}"));
            std::fs::write(&path, text).expect("write");
            path
        };
        TlsSettings {
            cert_file: file(".crt", &cert.pem()),
            key_file: file(".key", &key.serialize_pem()),
            ca_file: file("-ca.crt", &self.pem),
            server_name: None,
        }
    }
}

fn peer_args(s: &TlsSettings) -> Vec<String> {
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    vec![
        "--tls-cert".into(),
        path(&s.cert_file),
        "--tls-key".into(),
        path(&s.key_file),
        "--tls-ca".into(),
        path(&s.ca_file),
    ]
}

async fn local_with(name: &str, settings: &TlsSettings) -> Local {
    let tls = Tls::load(settings).expect("TLS loads");
    Local::start(name, move |c| c.tls = Some(tls)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_certificates_of_the_cluster_authenticate_over_tls() {
    let _turn = exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Authority::new("banter test cluster");
    let b_args = peer_args(&ca.node(dir.path(), "b"));
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let mut b = Peer::start("b", COOKIE, &b_args).await;
    let mut a = local_with("a-tls", &ca.node(dir.path(), "a")).await;

    a.node.connect(b.addr).await.expect("A dials B over TLS");
    let ready = a.event(NodeEventKind::Ready).await;
    assert_eq!(ready.peer_name.as_deref(), Some("b@127.0.0.1"));
    b.line_starting("event Ready").await;
    assert_eq!(a.node.stats().tls_failures(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_a_certificate_of_the_cluster_is_refused_and_counted() {
    let _turn = exclusive().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Authority::new("banter test cluster");
    let rogue = Authority::new("someone else");
    let mut a = local_with("a-tls-guard", &ca.node(dir.path(), "a")).await;
    let addr = a.node.local_addr().to_string();

    // Plain TCP: the cookie handshake's first bytes are not a TLS hello.
    let mut plain = tokio::net::TcpStream::connect(&addr).await.expect("TCP");
    plain
        .write_all(b"\x00\x00\x00\x10not tls at all..")
        .await
        .expect("write");
    // A node whose certificate another authority signed dials A.
    let rogue_args = peer_args(&rogue.node(dir.path(), "rogue"));
    let mut rogue_args: Vec<&str> = rogue_args.iter().map(String::as_str).collect();
    rogue_args.extend(["--connect", &addr]);
    let _rogue = Peer::start("rogue", COOKIE, &rogue_args).await;

    let deadline = tokio::time::Instant::now() + WAIT;
    while a.node.stats().tls_failures() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both refused in time: {} TLS failures",
            a.node.stats().tls_failures()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(a.node.stats().unauthenticated() >= 2);

    // The node keeps serving: a peer of the cluster still gets in.
    let good = peer_args(&ca.node(dir.path(), "c"));
    let mut good: Vec<&str> = good.iter().map(String::as_str).collect();
    good.extend(["--connect", &addr]);
    let _c = Peer::start("c", COOKIE, &good).await;
    let ready = a.event(NodeEventKind::Ready).await;
    assert_eq!(ready.peer_name.as_deref(), Some("c@127.0.0.1"));
    assert_eq!(support::panics(), 0);
}
