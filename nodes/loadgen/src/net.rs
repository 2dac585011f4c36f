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

/// Clock ticks per second of `/proc/PID/stat` times: `USER_HZ`, 100 on every Linux architecture
/// this runs on (the kernel fixes it for user space whatever its own tick rate).
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system, all threads) process `pid` has used so far, from `/proc/PID/stat`;
/// 10 ms resolution.
pub fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces and parentheses: fields count from its last ')'.
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .with_context(|| format!("malformed /proc/{pid}/stat"))?;
    let mut fields = rest.split_ascii_whitespace();
    // After the name: state (3), ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt,
    // cmajflt, utime (14), stime (15).
    let mut tick = |n: usize| {
        fields
            .nth(n)
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("no CPU times in /proc/{pid}/stat"))
    };
    let utime = tick(11)?;
    let stime = tick(0)?;
    Ok((utime + stime) as f64 / USER_HZ)
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
    fn cpu_of_this_process_grows_with_work() {
        let before = cpu_secs(std::process::id()).expect("cpu");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = cpu_secs(std::process::id()).expect("cpu") - before;
        assert!(
            (0.1..10.0).contains(&used),
            "300 ms of spinning counted as {used} s"
        );
    }

    #[test]
    fn rss_of_this_process() {
        assert!(rss_bytes(std::process::id()).expect("rss") > 1024 * 1024);
    }
}
