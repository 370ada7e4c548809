//! One pusher per room: events of a room are stored in order, rooms are
//! stored side by side (the store's group commit batches them), and a flood
//! in one room fills only that room's queue. A room whose queue overflowed
//! is reported once it has drained, so its dropped messages can be fetched
//! again from the room's archive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brygga_core::{InboundEvent, InboundSink, RemoteRoomId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events a room may have waiting before new ones are dropped.
const ROOM_QUEUE: usize = 10_000;
/// A pusher with nothing to do this long goes away.
const IDLE: Duration = Duration::from_secs(60);

/// A room's queue and whether it dropped something since it last drained.
#[derive(Clone)]
struct RoomQueue {
    tx: mpsc::Sender<InboundEvent>,
    overflowed: Arc<AtomicBool>,
}

/// Routes events to their room's pusher.
pub(crate) struct Pushers {
    sink: Arc<dyn InboundSink>,
    rooms: Mutex<HashMap<RemoteRoomId, RoomQueue>>,
    /// Rooms whose queue overflowed and has drained since.
    drained: mpsc::UnboundedSender<RemoteRoomId>,
    cancel: CancellationToken,
}

/// The event was dropped: its room's queue is full.
#[derive(Debug)]
pub(crate) struct Overflow;

impl Pushers {
    /// Pushers into `sink`; rooms that drained after an overflow arrive on the receiver.
    pub(crate) fn new(
        sink: Arc<dyn InboundSink>,
        cancel: CancellationToken,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<RemoteRoomId>) {
        let (drained, drained_rx) = mpsc::unbounded_channel();
        (Arc::new(Self { sink, rooms: Mutex::default(), drained, cancel }), drained_rx)
    }

    /// Queues an event behind the earlier ones of its room.
    pub(crate) fn route(self: &Arc<Self>, event: InboundEvent) -> Result<(), Overflow> {
        let mut rooms = self.rooms.lock().expect("pushers poisoned");
        let queue = match rooms.get(&event.room) {
            Some(queue) if !queue.tx.is_closed() => queue.clone(),
            // New, or its pusher retired after idling.
            _ => {
                let queue = self.spawn(event.room.clone());
                rooms.insert(event.room.clone(), queue.clone());
                queue
            }
        };
        match queue.tx.try_send(event) {
            Ok(()) => Ok(()),
            Err(_) => {
                queue.overflowed.store(true, Ordering::Release);
                Err(Overflow)
            }
        }
    }

    fn spawn(self: &Arc<Self>, room: RemoteRoomId) -> RoomQueue {
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        let queue = RoomQueue { tx, overflowed: Arc::default() };
        tokio::spawn(self.clone().run(room, rx, queue.overflowed.clone()));
        queue
    }

    async fn run(
        self: Arc<Self>,
        room: RemoteRoomId,
        mut rx: mpsc::Receiver<InboundEvent>,
        overflowed: Arc<AtomicBool>,
    ) {
        loop {
            let next = tokio::select! {
                _ = self.cancel.cancelled() => return,
                next = tokio::time::timeout(IDLE, rx.recv()) => next,
            };
            let event = match next {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(_) => {
                    // Retire; whatever raced in before the close is still stored.
                    rx.close();
                    while let Ok(event) = rx.try_recv() {
                        if !self.push(event).await {
                            return;
                        }
                    }
                    return;
                }
            };
            if !self.push(event).await {
                return;
            }
            if rx.is_empty() && overflowed.swap(false, Ordering::AcqRel) {
                let _ = self.drained.send(room.clone());
            }
        }
    }

    /// Pushes until the store takes it: a stanza the server already delivered
    /// cannot be asked for again, so it is never dropped for a transient error.
    async fn push(&self, event: InboundEvent) -> bool {
        brygga_core::push_until_stored(self.sink.as_ref(), event, &self.cancel).await
    }
}
