//! The [`ractor::Message`] impls of this crate's actor messages.
//!
//! ractor's `cluster` feature (on for the workspace, for ractor_cluster) drops ractor's blanket
//! `impl Message for T`, so every message type says here what it is. Each one is local: the default
//! impl is not serializable, so a reference to one of these actors cannot be used from another node.
//! Only a node's router crosses nodes (`banter-cluster`); rooms and users are reached through it, never
//! mirrored on every peer (ARCHITECTURE.md, section 2).

use ractor::Message;

use crate::directory::{DirectoryMessage, Entity};
use crate::room::RoomMessage;

impl<E: Entity> Message for DirectoryMessage<E> {}
impl Message for RoomMessage {}
