//! [`LoginLimits`]: how many login and register attempts a client address, and how many login
//! attempts an account, get per minute; and which address a request comes from.
//!
//! The client address is the socket peer's, unless the peer is one of `http.trusted_proxies`: then it
//! is the right-most address of `X-Forwarded-For` that is not itself a trusted proxy (each proxy
//! appends the address it got the request from, so everything left of the last untrusted hop may be
//! made up by the client). A header from any other peer is ignored, so a client cannot pick its own
//! budget by sending one.
//!
//! The per-account limit is keyed by the lowercase username whether or not the account exists (a 429
//! does not tell), so guesses spread over many addresses still run out. Both limiters forget keys that
//! have been quiet for a while when [`LoginLimits::trim`] runs (housekeeping does, every minute), so
//! their memory follows recent traffic only.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

/// Why an attempt was refused, and how long until the next one is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitHit {
    /// Too many attempts from this client address.
    Address(Duration),
    /// Too many login attempts for this account.
    Account(Duration),
}

/// The login and register limits of a node.
#[derive(Debug)]
pub struct LoginLimits {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
    trusted_proxies: Vec<IpNet>,
    clock: DefaultClock,
}

/// Parses `http.trusted_proxies` (IP addresses or CIDR blocks); fails on an entry that is neither.
pub fn parse_trusted(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|p| parse_net(p).ok_or_else(|| format!("not an IP address or CIDR block: {p:?}")))
        .collect()
}

impl LoginLimits {
    /// Allows `per_address_per_minute` attempts per client address and `per_account_per_minute`
    /// login attempts per account (0 counts as 1), trusting `X-Forwarded-For` from the peers in
    /// `trusted_proxies` (IP addresses or CIDR blocks). Fails on an entry that is neither.
    pub fn new(
        per_address_per_minute: u32,
        per_account_per_minute: u32,
        trusted_proxies: &[String],
    ) -> Result<LoginLimits, String> {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        let trusted_proxies = parse_trusted(trusted_proxies)?;
        Ok(LoginLimits {
            per_address: RateLimiter::keyed(quota(per_address_per_minute)),
            per_account: RateLimiter::keyed(quota(per_account_per_minute)),
            trusted_proxies,
            clock: DefaultClock::default(),
        })
    }

    /// Returns the address a request comes from: `peer`'s, or when `peer` is a trusted proxy the
    /// right-most untrusted hop of `X-Forwarded-For` (every header of that name, in order). When every
    /// hop is trusted, the left-most one; an unreadable hop ends the walk at the hop right of it.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.ip().to_canonical();
        if !self.is_trusted(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// Counts an attempt from `client`; refused when its address used up its budget.
    pub fn check_address(&self, client: IpAddr) -> Result<(), LimitHit> {
        self.per_address
            .check_key(&client)
            .map_err(|not_until| LimitHit::Address(not_until.wait_time_from(self.clock.now())))
    }

    /// Counts a login attempt for `username` (any case); refused when the account used up its budget.
    pub fn check_account(&self, username: &str) -> Result<(), LimitHit> {
        self.per_account
            .check_key(&username.to_lowercase())
            .map_err(|not_until| LimitHit::Account(not_until.wait_time_from(self.clock.now())))
    }

    /// Forgets the addresses and accounts whose budget is whole again, and frees the memory.
    pub fn trim(&self) {
        self.per_address.retain_recent();
        self.per_address.shrink_to_fit();
        self.per_account.retain_recent();
        self.per_account.shrink_to_fit();
    }

    /// Returns how many addresses and accounts the limiters remember.
    pub fn tracked(&self) -> (usize, usize) {
        (self.per_address.len(), self.per_account.len())
    }
}

/// Parses `10.0.0.1`, `10.0.0.0/8`, `::1` or `fd00::/8`.
fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Parses one `X-Forwarded-For` hop: an address, possibly with a port (`1.2.3.4:5678`,
/// `[::1]:5678`), in canonical form.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn limits(trusted: &[&str]) -> LoginLimits {
        let trusted: Vec<String> = trusted.iter().map(|s| (*s).to_owned()).collect();
        LoginLimits::new(3, 2, &trusted).expect("valid proxies")
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 40_000)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn untrusted_peers_cannot_forward() {
        let l = limits(&["10.0.0.1"]);
        let spoofed = headers(&["6.6.6.6"]);
        assert_eq!(l.client_ip(peer("1.2.3.4"), &spoofed), ip("1.2.3.4"));
        // No proxy trusted (the default): the header never counts.
        let none = limits(&[]);
        assert_eq!(none.client_ip(peer("127.0.0.1"), &spoofed), ip("127.0.0.1"));
    }

    #[test]
    fn trusted_proxy_forwards_the_rightmost_untrusted_hop() {
        let l = limits(&["10.0.0.0/8", "192.168.1.7"]);
        let p = peer("10.1.2.3");
        assert_eq!(l.client_ip(p, &headers(&["1.2.3.4"])), ip("1.2.3.4"));
        // The client made up "6.6.6.6"; the proxy appended the address it saw.
        assert_eq!(
            l.client_ip(p, &headers(&["6.6.6.6, 1.2.3.4"])),
            ip("1.2.3.4")
        );
        // A chain of trusted proxies is walked through.
        let chain = headers(&["6.6.6.6, 1.2.3.4, 192.168.1.7, 10.9.9.9"]);
        assert_eq!(l.client_ip(p, &chain), ip("1.2.3.4"));
        // Several headers are one list, in order.
        let split = headers(&["6.6.6.6, 1.2.3.4", "10.0.0.5"]);
        assert_eq!(l.client_ip(p, &split), ip("1.2.3.4"));
        // Ports and IPv6.
        assert_eq!(l.client_ip(p, &headers(&["1.2.3.4:5555"])), ip("1.2.3.4"));
        assert_eq!(
            l.client_ip(p, &headers(&["[2001:db8::1]:80"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            l.client_ip(p, &headers(&["2001:db8::2"])),
            ip("2001:db8::2")
        );
    }

    #[test]
    fn odd_forwarded_headers_fall_back_to_a_trusted_hop() {
        let l = limits(&["10.0.0.0/8"]);
        let p = peer("10.1.2.3");
        assert_eq!(
            l.client_ip(p, &HeaderMap::new()),
            ip("10.1.2.3"),
            "no header"
        );
        assert_eq!(l.client_ip(p, &headers(&[""])), ip("10.1.2.3"), "empty");
        assert_eq!(l.client_ip(p, &headers(&["garbage"])), ip("10.1.2.3"));
        assert_eq!(
            l.client_ip(p, &headers(&["1.2.3.4, garbage, 10.0.0.9"])),
            ip("10.0.0.9"),
            "an unreadable hop ends the walk"
        );
        assert_eq!(
            l.client_ip(p, &headers(&["10.0.0.8, 10.0.0.9"])),
            ip("10.0.0.8"),
            "all trusted: the left-most"
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxies() {
        let l = limits(&["127.0.0.1"]);
        let mapped = SocketAddr::new(ip("::ffff:127.0.0.1"), 1);
        assert_eq!(l.client_ip(mapped, &headers(&["1.2.3.4"])), ip("1.2.3.4"));
        let mapped_client = headers(&["::ffff:1.2.3.4"]);
        assert_eq!(
            l.client_ip(peer("127.0.0.1"), &mapped_client),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn bad_proxy_entries_are_refused() {
        for bad in ["", "localhost", "10.0.0.0/33", "1.2.3"] {
            let err = LoginLimits::new(1, 1, &[bad.to_owned()]).expect_err(bad);
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn accounts_and_addresses_have_their_own_budgets() {
        let l = limits(&[]);
        for n in 0..2 {
            assert_eq!(l.check_account("Alice"), Ok(()), "attempt {n}");
        }
        let hit = l
            .check_account("ALICE")
            .expect_err("third attempt on the account");
        assert!(
            matches!(hit, LimitHit::Account(wait) if wait > Duration::ZERO),
            "{hit:?}"
        );
        assert_eq!(l.check_account("bob"), Ok(()), "another account");
        for n in 0..3 {
            assert_eq!(l.check_address(ip("1.2.3.4")), Ok(()), "attempt {n}");
        }
        assert!(matches!(
            l.check_address(ip("1.2.3.4")),
            Err(LimitHit::Address(_))
        ));
        assert_eq!(l.check_address(ip("1.2.3.5")), Ok(()));
        assert_eq!(l.tracked(), (2, 2));
    }
}
