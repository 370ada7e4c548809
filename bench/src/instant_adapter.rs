//! An instant adapter: `send` returns at once after recording the arrival,
//! and the sink its context carries is handed to the benchmark to push into.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use brygga_core::{
    Adapter, AdapterContext, AdapterFactory, AdapterKind, BridgeError, Capabilities, EventBody, InboundSink,
    OutboundEvent, RemoteMessageId, SendReceipt,
};

use crate::stats::Probe;

/// The adapter kind.
pub const KIND: &str = "bench";

/// Builds instant adapters and keeps the sink of the last one built.
#[derive(Default)]
pub struct InstantFactory {
    /// Records the `#<seq>` bodies of outbound messages as they arrive.
    pub probe: Arc<Probe>,
    sink: Mutex<Option<Arc<dyn InboundSink>>>,
}

impl InstantFactory {
    /// The sink the bridge gave the adapter (`ctx.sink`), once it is built.
    pub fn sink(&self) -> Option<Arc<dyn InboundSink>> {
        self.sink.lock().expect("sink slot poisoned").clone()
    }
}

impl AdapterFactory for InstantFactory {
    fn kind(&self) -> AdapterKind {
        AdapterKind::new(KIND).expect("valid kind")
    }

    fn validate(&self, _config: &serde_json::Value) -> Result<(), String> {
        Ok(())
    }

    fn build(&self, ctx: AdapterContext) -> Result<Arc<dyn Adapter>, BridgeError> {
        *self.sink.lock().expect("sink slot poisoned") = Some(ctx.sink.clone());
        Ok(Arc::new(InstantAdapter { probe: self.probe.clone() }))
    }
}

struct InstantAdapter {
    probe: Arc<Probe>,
}

#[async_trait]
impl Adapter for InstantAdapter {
    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    async fn start(&self) -> Result<(), BridgeError> {
        Ok(())
    }

    async fn stop(&self) {}

    async fn send(&self, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
        let body = match &event.body {
            EventBody::Message(message) => Some(message.text.body.as_str()),
            _ => None,
        };
        self.probe.received(body);
        let id = RemoteMessageId::new(event.txn_id.clone()).map_err(|e| BridgeError::permanent(e.to_string()))?;
        Ok(SendReceipt::one(id))
    }
}
