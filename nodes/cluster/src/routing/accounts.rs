//! Users' actors across the cluster: a user's actor (uploads, attachments, avatars) lives on the
//! node that owns the user's shard, as a room lives on its shard's owner, so that a user's grant
//! rate, quota and avatar changes are one actor's wherever the requests come from.
//!
//! [`ClusterRoutes`] is the gateway's [`AccountRoutes`] on a cluster node: a request for a user
//! whose shard this node serves goes to its own directory ([`LocalAccounts`]); any other goes to
//! the owner's router as a `ToAccount` envelope and waits for its `AccountReply` (up to
//! [`ACCOUNT_WAIT`]). An owner that does not serve the shard at the sender's epoch answers
//! `moved`, and the request asks again once the view settled (up to [`ClusterRoutes::WAIT`]).
//! The requests and answers are the actor's own types, as JSON inside the envelope: a peer's
//! malformed request is counted and answered as unavailable, a malformed answer fails its request.
//! Requests served for peers share the node's bound on remote asks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use banter_actors::account::{
    ACCOUNT_WAIT, AccountRoutes, AttachError, Download, DownloadError, LocalAccounts, UploadError,
    UploadGrant, UploadRequest, UploadRules,
};
use banter_actors::delivery::NodeId;
use banter_actors::model::{Attachment, RoomId, UserId};
use banter_actors::ports::UploadPurpose;
use banter_actors::shard::{EntityKey, Epoch, ShardId, shard_of};
use banter_proto::v1::{self, Envelope, envelope};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

use super::ClusterRoutes;

/// A request to a user's actor, as it crosses the cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum AccountOp {
    Grant {
        purpose: UploadPurpose,
        request: UploadRequest,
    },
    Attach {
        room: RoomId,
        uploads: Vec<Uuid>,
    },
    Download {
        room: RoomId,
        upload: Uuid,
    },
    SetAvatar {
        upload: Option<Uuid>,
    },
    AvatarUrl {
        of: UserId,
    },
}

/// A user's actor's answer, as it crosses the cluster.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum AccountAnswer {
    Grant(Result<UploadGrant, UploadError>),
    Attach(Result<Vec<Attachment>, AttachError>),
    Download(Result<Download, DownloadError>),
    Avatar(Result<Option<Attachment>, AttachError>),
}

/// Requests waiting for an `AccountReply`, by id.
#[derive(Default)]
pub(crate) struct AccountRequests {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, (NodeId, oneshot::Sender<v1::AccountReply>)>>,
}

impl AccountRequests {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, (NodeId, oneshot::Sender<v1::AccountReply>)>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self, node: NodeId) -> (u64, oneshot::Receiver<v1::AccountReply>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, (node, tx));
        (id, rx)
    }

    fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Hands an answer to its request; `false` when none waits on `from` (late or unknown).
    fn answer(&self, from: NodeId, reply: v1::AccountReply) -> bool {
        let mut waiting = self.lock();
        match waiting.get(&reply.request_id) {
            Some((node, _)) if *node == from => {}
            _ => return false,
        }
        waiting
            .remove(&reply.request_id)
            .is_some_and(|(_, tx)| tx.send(reply).is_ok())
    }

    /// Fails every request waiting on `node` (its link went down).
    pub(crate) fn node_down(&self, node: NodeId) {
        self.lock().retain(|_, (n, _)| *n != node);
    }
}

/// Where a user's actor lives for a request.
enum AccountTarget {
    Here,
    There(NodeId, ShardId, Epoch),
}

impl ClusterRoutes {
    fn user_shard(&self, user: UserId) -> ShardId {
        shard_of(EntityKey::user(user), self.placement.shards())
    }

    /// Where `user`'s actor lives, waiting (until `deadline`) while its shard has no reachable
    /// owner.
    async fn account_target(
        &self,
        user: UserId,
        deadline: Instant,
    ) -> Result<AccountTarget, String> {
        let shard = self.user_shard(user);
        loop {
            if self.placement.serving(shard).is_some() {
                return Ok(AccountTarget::Here);
            }
            match self.placement.owner_epoch(shard) {
                Some((node, epoch)) if node != self.me && self.links.is_up(node) => {
                    return Ok(AccountTarget::There(node, shard, epoch));
                }
                _ if Instant::now() >= deadline => {
                    return Err("no node serves the user's actor right now; try again".into());
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    /// Runs `op` on `user`'s actor wherever it lives.
    async fn ask_account(&self, user: UserId, op: AccountOp) -> Result<AccountAnswer, String> {
        let local = self
            .accounts
            .as_ref()
            .ok_or("uploads are off on this node")?;
        let deadline = Instant::now() + Self::WAIT;
        loop {
            let (node, shard, epoch) = match self.account_target(user, deadline).await? {
                AccountTarget::Here => return Ok(serve(local, user, op).await),
                AccountTarget::There(node, shard, epoch) => (node, shard, epoch),
            };
            let (id, answer) = self.account_requests.open(node);
            let request = v1::ToAccount {
                shard: shard.0,
                epoch: epoch.0,
                user_id: user.0,
                request_id: id,
                op: serde_json::to_vec(&op).map_err(|e| e.to_string())?.into(),
            };
            let envelope = Envelope {
                from_node: self.me.0,
                body: Some(envelope::Body::ToAccount(request)),
            };
            if self.links.send(node, envelope).is_err() {
                self.account_requests.forget(id);
                return Err("the user's actor's node is unreachable; try again".into());
            }
            let reply = match tokio::time::timeout(ACCOUNT_WAIT, answer).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(_)) => return Err("the user's actor's node went away; try again".into()),
                Err(_) => {
                    self.account_requests.forget(id);
                    return Err("the user's actor's node did not answer in time".into());
                }
            };
            if reply.moved {
                if Instant::now() >= deadline {
                    return Err("the user's actor is moving; try again".into());
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            return serde_json::from_slice(&reply.answer)
                .map_err(|_| "the user's actor's node could not answer; try again".into());
        }
    }

    /// Serves a peer's request to a user's actor of this node.
    pub(super) fn on_to_account(self: &Arc<Self>, from: NodeId, request: v1::ToAccount) {
        let user = UserId(request.user_id);
        let shard = self.user_shard(user);
        let request_id = request.request_id;
        let reply = move |moved: bool, answer: Vec<u8>| v1::AccountReply {
            request_id,
            moved,
            answer: answer.into(),
        };
        let serving = self
            .placement
            .serving(shard)
            .is_some_and(|e| e.0 >= request.epoch);
        if !serving || shard.0 != request.shard {
            super::inbound::refused("moved");
            return self.send_account_reply(from, reply(true, Vec::new()));
        }
        let (Some(local), Ok(op)) = (
            self.accounts.clone(),
            serde_json::from_slice::<AccountOp>(&request.op),
        ) else {
            super::inbound::refused("malformed");
            return self.send_account_reply(from, reply(false, Vec::new()));
        };
        let Ok(permit) = self.asks.clone().try_acquire_owned() else {
            super::inbound::refused("busy");
            return self.send_account_reply(from, reply(false, Vec::new()));
        };
        let routes = self.clone();
        tokio::spawn(async move {
            let answer = serve(&local, user, op).await;
            drop(permit);
            let answer = serde_json::to_vec(&answer).unwrap_or_default();
            routes.send_account_reply(from, reply(false, answer));
        });
    }

    fn send_account_reply(&self, node: NodeId, reply: v1::AccountReply) {
        let envelope = Envelope {
            from_node: self.me.0,
            body: Some(envelope::Body::AccountReply(reply)),
        };
        let _ = self.links.send(node, envelope);
    }

    /// Hands a peer's answer to the request waiting for it.
    pub(super) fn on_account_reply(&self, from: NodeId, reply: v1::AccountReply) {
        if !self.account_requests.answer(from, reply) {
            super::inbound::refused("late_reply");
        }
    }
}

/// Runs `op` on `user`'s actor of this node.
async fn serve(local: &LocalAccounts, user: UserId, op: AccountOp) -> AccountAnswer {
    match op {
        AccountOp::Grant { purpose, request } => {
            AccountAnswer::Grant(local.grant_upload(user, purpose, request).await)
        }
        AccountOp::Attach { room, uploads } => {
            AccountAnswer::Attach(local.attach(user, room, uploads).await)
        }
        AccountOp::Download { room, upload } => {
            AccountAnswer::Download(local.download(user, room, upload).await)
        }
        AccountOp::SetAvatar { upload } => {
            AccountAnswer::Avatar(local.set_avatar(user, upload).await)
        }
        AccountOp::AvatarUrl { of } => AccountAnswer::Download(local.avatar_url(user, of).await),
    }
}

/// The answer a request of another kind got (a peer's bug): unavailable.
const MISMATCHED: &str = "the user's actor's node answered another request";

#[async_trait]
impl AccountRoutes for ClusterRoutes {
    async fn grant_upload(
        &self,
        user: UserId,
        purpose: UploadPurpose,
        request: UploadRequest,
    ) -> Result<UploadGrant, UploadError> {
        match self
            .ask_account(user, AccountOp::Grant { purpose, request })
            .await
        {
            Ok(AccountAnswer::Grant(answer)) => answer,
            Ok(_) => Err(UploadError::Unavailable(MISMATCHED.into())),
            Err(why) => Err(UploadError::Unavailable(why)),
        }
    }

    async fn attach(
        &self,
        user: UserId,
        room: RoomId,
        uploads: Vec<Uuid>,
    ) -> Result<Vec<Attachment>, AttachError> {
        match self
            .ask_account(user, AccountOp::Attach { room, uploads })
            .await
        {
            Ok(AccountAnswer::Attach(answer)) => answer,
            Ok(_) => Err(AttachError::Unavailable(MISMATCHED.into())),
            Err(why) => Err(AttachError::Unavailable(why)),
        }
    }

    async fn download(
        &self,
        user: UserId,
        room: RoomId,
        upload: Uuid,
    ) -> Result<Download, DownloadError> {
        match self
            .ask_account(user, AccountOp::Download { room, upload })
            .await
        {
            Ok(AccountAnswer::Download(answer)) => answer,
            Ok(_) => Err(DownloadError::Unavailable(MISMATCHED.into())),
            Err(why) => Err(DownloadError::Unavailable(why)),
        }
    }

    async fn set_avatar(
        &self,
        user: UserId,
        upload: Option<Uuid>,
    ) -> Result<Option<Attachment>, AttachError> {
        match self
            .ask_account(user, AccountOp::SetAvatar { upload })
            .await
        {
            Ok(AccountAnswer::Avatar(answer)) => answer,
            Ok(_) => Err(AttachError::Unavailable(MISMATCHED.into())),
            Err(why) => Err(AttachError::Unavailable(why)),
        }
    }

    async fn avatar_url(&self, user: UserId, of: UserId) -> Result<Download, DownloadError> {
        match self.ask_account(user, AccountOp::AvatarUrl { of }).await {
            Ok(AccountAnswer::Download(answer)) => answer,
            Ok(_) => Err(DownloadError::Unavailable(MISMATCHED.into())),
            Err(why) => Err(DownloadError::Unavailable(why)),
        }
    }

    fn rules(&self) -> &UploadRules {
        &self.account_rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reaches_its_request_only_from_the_node_asked() {
        let requests = AccountRequests::default();
        let (id, mut answer) = requests.open(NodeId(2));
        let reply = |request_id| v1::AccountReply {
            request_id,
            moved: false,
            answer: Default::default(),
        };
        assert!(!requests.answer(NodeId(3), reply(id)), "another node's");
        assert!(!requests.answer(NodeId(2), reply(id + 1)), "an unknown id");
        assert!(requests.answer(NodeId(2), reply(id)));
        assert!(answer.try_recv().is_ok());
        assert!(!requests.answer(NodeId(2), reply(id)), "answered once");
        let (_, mut lost) = requests.open(NodeId(2));
        requests.node_down(NodeId(2));
        assert!(
            matches!(lost.try_recv(), Err(oneshot::error::TryRecvError::Closed)),
            "failed with its node"
        );
    }

    #[test]
    fn requests_and_answers_cross_as_json() {
        let op = AccountOp::Attach {
            room: RoomId(4),
            uploads: vec![Uuid::now_v7()],
        };
        let back: AccountOp = serde_json::from_slice(&serde_json::to_vec(&op).unwrap()).unwrap();
        assert!(
            matches!(back, AccountOp::Attach { room, uploads } if room == RoomId(4) && uploads.len() == 1)
        );
        let answer = AccountAnswer::Grant(Err(UploadError::RateLimited(
            std::time::Duration::from_millis(1500),
        )));
        let back: AccountAnswer =
            serde_json::from_slice(&serde_json::to_vec(&answer).unwrap()).unwrap();
        assert!(matches!(
            back,
            AccountAnswer::Grant(Err(UploadError::RateLimited(d))) if d.as_millis() == 1500
        ));
    }
}
