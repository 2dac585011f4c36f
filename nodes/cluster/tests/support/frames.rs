//! ractor_cluster's wire format written by hand, for peers that misbehave.
//!
//! A frame is a big-endian u64 length and that many bytes of a protobuf `meta.NetworkMessage`
//! (ractor_cluster `src/net/session.rs`, `src/protocol/*.proto`). Only what the tests send is here.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Appends a protobuf varint.
fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-delimited protobuf field: key (`tag`, wire type 2), length, bytes.
pub fn field(tag: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    varint(&mut out, (u64::from(tag) << 3) | 2);
    varint(&mut out, bytes.len() as u64);
    out.extend_from_slice(bytes);
    out
}

/// `bytes` behind their length prefix.
pub fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u64).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// `NetworkMessage { control: ControlMessage { ping: Ping {} } }`: valid, but not a handshake
/// message, so an unauthenticated session ignores it.
pub fn control_ping() -> Vec<u8> {
    field(3, &field(3, &[]))
}

/// `NetworkMessage { control: ControlMessage { spawn: Spawn { actors: [Actor {}; n] } } }`: two bytes
/// per actor on the wire, a 32-byte `Actor` each once decoded.
pub fn control_spawn(n: usize) -> Vec<u8> {
    let mut actors = Vec::with_capacity(2 * n);
    for _ in 0..n {
        actors.extend_from_slice(&[0x0a, 0x00]);
    }
    field(3, &field(1, &actors))
}

/// How many empty actors make a `control_spawn` of at most `max` bytes.
pub fn spawn_actors_within(max: usize) -> usize {
    // Two fields of overhead (key + length, at most 1 + 10 bytes each).
    (max - 22) / 2
}

/// `NetworkMessage { auth: AuthenticationMessage { name: NameMessage { name } } }`: the first message
/// of a client's handshake.
pub fn auth_name(name: &str) -> Vec<u8> {
    field(1, &field(1, &field(1, name.as_bytes())))
}

/// Connects to `addr` and writes `bytes`.
pub async fn send(addr: std::net::SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(bytes).await.expect("writes");
    stream
}

/// Whether the node closed `stream` within `within` (reads and drops what it sends meanwhile).
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 4096];
    let reading = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, reading).await.is_ok()
}
