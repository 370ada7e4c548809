//! The measured scenarios: remote to Matrix through the adapter's sink, and
//! Matrix to remote through appservice transactions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use brygga_core::{
    Ack, EventBody, InboundEvent, MatrixRoomId, Message, RemoteMessageId, RemoteRoomId, RemoteSender, RemoteUserId,
    Store, TenantId, Text,
};
use brygga_store::SqlStore;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::bridge::{Bridge, HS_TOKEN};
use crate::stats::{Percentiles, Stamps, body_of};

/// Results of the inbound (remote to Matrix) run.
pub struct InboundReport {
    /// Messages per second from the first push to the last send received.
    pub msgs_per_sec: f64,
    /// Messages per second acknowledged by the sink.
    pub pushes_per_sec: f64,
    /// From just before `push` to the homeserver receiving the send.
    pub latency: Percentiles,
    /// From just before `push` to its acknowledgement (durably stored).
    pub push_ack: Percentiles,
    /// Messages that never arrived.
    pub missing: usize,
}

/// Results of the appservice (Matrix to remote) run.
pub struct AppserviceReport {
    /// Transactions acknowledged per second.
    pub txn_per_sec: f64,
    /// Events in acknowledged transactions per second.
    pub events_per_sec: f64,
    /// Round trip of one transaction `PUT`.
    pub ack: Percentiles,
    /// Events per second from the first `PUT` to the adapter receiving the last.
    pub outbound_msgs_per_sec: f64,
    /// From just before its transaction's `PUT` to the adapter receiving the event.
    pub outbound: Percentiles,
    /// Events that never arrived.
    pub missing: usize,
}

fn inbound_event(portal: usize, event_id: String, body: String) -> anyhow::Result<InboundEvent> {
    let mut sender = RemoteSender::new(RemoteUserId::new(format!("user{portal}"))?);
    sender.display_name = Some(format!("User {portal}"));
    let body = EventBody::Message(Message::text(Text::plain(body)));
    let mut event =
        InboundEvent::new(RemoteRoomId::new(format!("room{portal}"))?, RemoteMessageId::new(event_id)?, sender, body);
    event.room_name = Some(format!("Room {portal}"));
    Ok(event)
}

fn per_sec(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Waits (untimed) until the tenant's outbox has nothing pending, so one
/// run's completions do not spill into the next run or past the exit.
pub async fn drain(bridge: &Bridge, timeout: Duration) -> anyhow::Result<()> {
    drain_tenant(&bridge.store, &bridge.tenant, timeout).await
}

/// Waits (untimed) until `tenant`'s outbox has nothing pending.
pub async fn drain_tenant(store: &SqlStore, tenant: &TenantId, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let queues = store.pending_queues().await?;
        if !queues.iter().any(|(portal, _)| &portal.tenant == tenant) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} queues still have pending entries", queues.len());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Creates every portal (room, ghost, join) with one untimed message each;
/// returns the portals' Matrix rooms.
pub async fn warm_up(bridge: &Bridge, portals: usize, timeout: Duration) -> anyhow::Result<Vec<MatrixRoomId>> {
    let before = bridge.homeserver.probe.total();
    for p in 0..portals {
        let ack = bridge.sink.push(inbound_event(p, format!("warm-up-{p}"), "warm-up".into())?).await?;
        if ack != Ack::Stored {
            bail!("warm-up message {p} was not stored: {ack:?}");
        }
    }
    if !bridge.homeserver.probe.wait_total(before + portals, timeout).await {
        bail!("warm-up: the homeserver received only {} sends", bridge.homeserver.probe.total() - before);
    }
    let stored = bridge.store.portals(&bridge.tenant).await?;
    (0..portals)
        .map(|p| {
            let name = format!("room{p}");
            stored
                .iter()
                .find(|portal| portal.key.room.as_str() == name)
                .and_then(|portal| portal.room_id.clone())
                .with_context(|| format!("portal {name} has no Matrix room after warm-up"))
        })
        .collect()
}

/// Pushes `messages` across `portals` from one task per portal (as fast as
/// possible, or paced to `rate` messages per second overall) and waits for
/// the homeserver to receive them all.
pub async fn inbound(
    bridge: &Bridge,
    messages: usize,
    portals: usize,
    rate: Option<f64>,
    timeout: Duration,
) -> anyhow::Result<InboundReport> {
    let base = Instant::now();
    let departed = Arc::new(Stamps::new(base, messages));
    let acked = Arc::new(Stamps::new(base, messages));
    let arrived = Arc::new(Stamps::new(base, messages));
    bridge.homeserver.probe.arm(arrived.clone());
    let barrier = Arc::new(Barrier::new(portals + 1));
    let paced_from = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut tasks = JoinSet::new();
    for p in 0..portals {
        let events = (p..messages)
            .step_by(portals)
            .map(|seq| Ok((seq, inbound_event(p, format!("m{seq}"), body_of(seq))?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (sink, barrier, departed, acked) = (bridge.sink.clone(), barrier.clone(), departed.clone(), acked.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            for (seq, event) in events {
                if let Some(rate) = rate {
                    tokio::time::sleep_until(paced_from + Duration::from_secs_f64(seq as f64 / rate)).await;
                }
                departed.mark(seq);
                let ack = sink.push(event).await?;
                acked.mark(seq);
                if ack != Ack::Stored {
                    bail!("message {seq} was not stored: {ack:?}");
                }
            }
            Ok(())
        });
    }
    let start = base.elapsed();
    barrier.wait().await;
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let pushed = base.elapsed() - start;
    arrived.wait_all(timeout).await;
    let end = arrived.last().unwrap_or(start);
    let latency = (0..messages).filter_map(|s| Some(arrived.at(s)?.saturating_sub(departed.at(s)?)));
    let push_ack = (0..messages).filter_map(|s| Some(acked.at(s)?.saturating_sub(departed.at(s)?)));
    Ok(InboundReport {
        msgs_per_sec: per_sec(arrived.count(), end.saturating_sub(start)),
        pushes_per_sec: per_sec(messages, pushed),
        latency: Percentiles::new(latency),
        push_ack: Percentiles::new(push_ack),
        missing: messages - arrived.count(),
    })
}

/// The JSON body of one transaction of `per_txn` messages by a normal user.
fn transaction_body(txn: usize, per_txn: usize, rooms: &[MatrixRoomId]) -> Vec<u8> {
    let events: Vec<serde_json::Value> = (0..per_txn)
        .map(|i| {
            let seq = txn * per_txn + i;
            serde_json::json!({
                "type": "m.room.message",
                "event_id": format!("$out{seq}"),
                "room_id": rooms[seq % rooms.len()].as_str(),
                "sender": "@alice:bench",
                "origin_server_ts": 1_700_000_000_000_i64 + seq as i64,
                "content": { "msgtype": "m.text", "body": body_of(seq) },
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "events": events })).expect("JSON values serialize")
}

/// Sends `transactions` sequentially to the appservice server, then waits for
/// the instant adapter to receive every event.
pub async fn appservice(
    bridge: &Bridge,
    rooms: &[MatrixRoomId],
    transactions: usize,
    per_txn: usize,
    timeout: Duration,
) -> anyhow::Result<AppserviceReport> {
    let bodies: Vec<Vec<u8>> = (0..transactions).map(|t| transaction_body(t, per_txn, rooms)).collect();
    let client = reqwest::Client::new();
    let events = transactions * per_txn;
    let base = Instant::now();
    let departed = Stamps::new(base, transactions);
    let acked = Stamps::new(base, transactions);
    let arrived = Arc::new(Stamps::new(base, events));
    bridge.adapter.probe.arm(arrived.clone());
    let start = base.elapsed();
    for (t, body) in bodies.into_iter().enumerate() {
        let url = format!("{}/_matrix/app/v1/transactions/{}-{t}", bridge.appservice_url, bridge.tenant);
        departed.mark(t);
        let response =
            client.put(url).bearer_auth(HS_TOKEN).header("content-type", "application/json").body(body).send().await?;
        let status = response.status();
        response.bytes().await?;
        acked.mark(t);
        if !status.is_success() {
            bail!("transaction {t} answered {status}");
        }
    }
    let acks_done = base.elapsed() - start;
    arrived.wait_all(timeout).await;
    let end = arrived.last().unwrap_or(start);
    let ack = (0..transactions).filter_map(|t| Some(acked.at(t)?.saturating_sub(departed.at(t)?)));
    let outbound = (0..events).filter_map(|s| Some(arrived.at(s)?.saturating_sub(departed.at(s / per_txn)?)));
    Ok(AppserviceReport {
        txn_per_sec: per_sec(transactions, acks_done),
        events_per_sec: per_sec(events, acks_done),
        ack: Percentiles::new(ack),
        outbound_msgs_per_sec: per_sec(arrived.count(), end.saturating_sub(start)),
        outbound: Percentiles::new(outbound),
        missing: events - arrived.count(),
    })
}
