//! Scenarios: [`rooms`] (fan-out and chat are two shapes of it) and [`idle`].

use std::net::SocketAddr;

pub mod idle;
pub mod rooms;

/// What the load generator talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A Banter node: users are registered over REST and authenticate their STOMP sessions.
    Banter(SocketAddr),
    /// The baseline broadcast server: no users, no auth; room ids are 1..=R.
    Baseline(SocketAddr),
}

impl Target {
    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        match *self {
            Target::Banter(a) | Target::Baseline(a) => a,
        }
    }

    /// `banter` or `baseline`.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Banter(_) => "banter",
            Target::Baseline(_) => "baseline",
        }
    }
}
