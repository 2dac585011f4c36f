//! The room entity kind: how the [`crate::directory::Directory`] of rooms spawns a room, stops it, and
//! answers what it could not deliver.

use ractor::{Actor, ActorRef};

use super::{Room, RoomArguments, RoomConfig, RoomError, RoomMessage};

use crate::directory::{Entity, RouteError};
use crate::model::RoomId;
use crate::ports::Ports;

/// The room entity kind, for the [`crate::directory::Directory`] of rooms.
pub struct Rooms {
    /// Ports handed to every room.
    pub ports: Ports,
    /// Settings handed to every room.
    pub config: RoomConfig,
}

impl Entity for Rooms {
    type Key = RoomId;
    type Msg = RoomMessage;

    fn spawn(
        &self,
        key: RoomId,
        supervisor: ractor::ActorCell,
    ) -> futures::future::BoxFuture<'static, Result<ActorRef<RoomMessage>, RouteError>> {
        let args = RoomArguments {
            room_id: key,
            ports: self.ports.clone(),
            config: self.config.clone(),
            directory: ActorRef::from(supervisor.clone()),
        };
        Box::pin(async move {
            match Actor::spawn_linked(None, Room, args, supervisor).await {
                Ok((actor, _)) => Ok(actor),
                Err(ractor::SpawnErr::StartupFailed(e))
                    if matches!(e.downcast_ref::<RoomError>(), Some(RoomError::NotFound(_))) =>
                {
                    Err(RouteError::NotFound)
                }
                Err(ractor::SpawnErr::StartupFailed(e))
                    if matches!(e.downcast_ref::<RoomError>(), Some(RoomError::Moved(_))) =>
                {
                    Err(RouteError::Moved)
                }
                Err(e) => Err(RouteError::Unavailable(e.to_string())),
            }
        })
    }

    fn stop_message(&self) -> RoomMessage {
        RoomMessage::Stop
    }

    fn undeliverable(&self, room: RoomId, msg: RoomMessage, error: RouteError) {
        let error = match error {
            RouteError::NotFound => RoomError::NotFound(room),
            RouteError::Unavailable(why) => RoomError::Unavailable(room, why),
            RouteError::Moved => RoomError::Moved(room),
        };
        crate::route::fail(msg, error);
    }
}
