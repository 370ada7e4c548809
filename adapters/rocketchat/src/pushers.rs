//! One pusher per portal: events of a room are stored in order, rooms are
//! stored side by side, and a slow room holds up only itself. A message
//! counts as seen (its room's catch-up point moves past it) only after the
//! store took all of its events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use brygga_core::{InboundEvent, InboundSink, RemoteRoomId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The events of one remote message (or signal), and where it leaves its room's catch-up point.
pub(crate) struct Batch {
    pub(crate) events: Vec<InboundEvent>,
    /// `(rid, ts)` of the message, once pushed.
    pub(crate) seen: Option<(String, i64)>,
}

/// Called with `(rid, ts)` after a batch was stored.
pub(crate) type SeenHook = Arc<dyn Fn(&str, i64) + Send + Sync>;

/// Routes batches to their room's pusher.
pub(crate) struct Pushers {
    sink: Arc<dyn InboundSink>,
    seen: SeenHook,
    rooms: Mutex<HashMap<RemoteRoomId, mpsc::UnboundedSender<Batch>>>,
    cancel: CancellationToken,
}

impl Pushers {
    pub(crate) fn new(sink: Arc<dyn InboundSink>, seen: SeenHook, cancel: CancellationToken) -> Arc<Self> {
        Arc::new(Self { sink, seen, rooms: Mutex::default(), cancel })
    }

    /// Queues a batch behind the earlier ones of its portal room.
    pub(crate) fn route(self: &Arc<Self>, room: &RemoteRoomId, batch: Batch) {
        let mut rooms = self.rooms.lock().expect("pushers poisoned");
        let tx = match rooms.get(room) {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(self.clone().run(rx));
                rooms.insert(room.clone(), tx.clone());
                tx
            }
        };
        if tx.send(batch).is_err() {
            tracing::warn!(room = %room, "a Rocket.Chat event was dropped: its pusher ended");
        }
    }

    async fn run(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Batch>) {
        loop {
            let batch = tokio::select! {
                _ = self.cancel.cancelled() => return,
                batch = rx.recv() => match batch { Some(b) => b, None => return },
            };
            for event in batch.events {
                if !brygga_core::push_until_stored(self.sink.as_ref(), event, &self.cancel).await {
                    return;
                }
            }
            if let Some((rid, ts)) = batch.seen {
                (self.seen)(&rid, ts);
            }
        }
    }
}
