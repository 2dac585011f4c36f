//! Process limits and source addresses.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{Context, Result};
use tokio::net::{TcpSocket, TcpStream};

/// Raises this process's soft open-files limit to its hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}

/// Source address of connection `i` when the server is on loopback: 250 connections per address over
/// 127.1.0.1 – 127.1.249.250, so no address runs short of ephemeral ports.
pub fn source_ip(i: usize) -> Ipv4Addr {
    let host = (i % 250) as u8 + 1;
    let net = ((i / 250) % 250) as u8;
    Ipv4Addr::new(127, 1, net, host)
}

/// Opens a TCP connection to `server` from `source` (any port), with Nagle off.
pub async fn connect_from(source: Option<Ipv4Addr>, server: SocketAddr) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4().context("socket")?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip.into(), 0))
            .with_context(|| format!("bind {ip}"))?;
    }
    let stream = socket
        .connect(server)
        .await
        .with_context(|| format!("connect to {server}"))?;
    stream.set_nodelay(true).context("nodelay")?;
    Ok(stream)
}

/// Tells whether the server is on loopback, where spreading source addresses works.
pub fn is_loopback(server: SocketAddr) -> bool {
    server.ip().is_loopback()
}

/// Resident set size of process `pid` in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .with_context(|| format!("no VmRSS for pid {pid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_are_loopback_and_spread() {
        assert_eq!(source_ip(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(source_ip(249), Ipv4Addr::new(127, 1, 0, 250));
        assert_eq!(source_ip(250), Ipv4Addr::new(127, 1, 1, 1));
        assert!((0..100_000).all(|i| source_ip(i).is_loopback()));
    }

    #[test]
    fn rss_of_this_process() {
        assert!(rss_bytes(std::process::id()).expect("rss") > 1024 * 1024);
    }
}
