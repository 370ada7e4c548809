//! Control API: subscriptions, lifecycle events, notification delivery,
//! throttling, settings and statistics.

use crate::GraphDouble;
use crate::control::{LifecycleEvent, Stats};
use crate::error::{DoubleError, GraphError};
use crate::notify::{Delivery, RetryPolicy};
use crate::state::{Settings, lock};
use crate::subscriptions::Subscription;

impl GraphDouble {
    /// Every subscription, expired ones included.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        let mut subs: Vec<Subscription> = self.shared.with(|w| w.subscriptions.values().cloned().collect());
        subs.sort_by_key(|s| s.expires);
        subs
    }

    /// Makes a subscription expire now: it stops delivering and can no longer be renewed.
    pub fn expire_subscription(&self, id: &str) -> Result<(), DoubleError> {
        self.shared.with(|w| {
            let sub = w.subscriptions.get_mut(id).ok_or_else(|| GraphError::not_found("Subscription"))?;
            sub.expires = crate::time::now() - chrono::Duration::seconds(1);
            Ok(())
        })
    }

    /// Sends a lifecycle notification for a subscription to its `lifecycleNotificationUrl`.
    /// `subscriptionRemoved` deletes the subscription; `reauthorizationRequired` flags it until renewed.
    pub fn fire_lifecycle(&self, id: &str, event: LifecycleEvent) -> Result<(), DoubleError> {
        let sub = self.shared.with(|w| {
            let sub = w.subscriptions.get_mut(id).ok_or_else(|| GraphError::not_found("Subscription"))?;
            match event {
                LifecycleEvent::ReauthorizationRequired => sub.needs_reauthorization = true,
                LifecycleEvent::SubscriptionRemoved => sub.expires = crate::time::now(),
                LifecycleEvent::Missed => {}
            }
            let sub = sub.clone();
            if event == LifecycleEvent::SubscriptionRemoved {
                w.subscriptions.remove(id);
            }
            Ok::<_, GraphError>(sub)
        })?;
        let url = sub
            .lifecycle_url
            .clone()
            .ok_or_else(|| GraphError::bad_request("The subscription has no lifecycleNotificationUrl."))?;
        self.shared.notifier.send(&sub.id, event.as_str(), None, &url, sub.lifecycle(event.as_str()));
        Ok(())
    }

    /// The bridge is "down": notifications made from now on are dropped (recorded as [`crate::Outcome::Dropped`]).
    pub fn pause_notifications(&self) {
        self.shared.notifier.set_paused(true);
    }

    /// Delivers notifications again (dropped ones stay lost: catch up with delta or GET).
    pub fn resume_notifications(&self) {
        self.shared.notifier.set_paused(false);
    }

    /// Every notification the double sent or tried to, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.notifier.deliveries()
    }

    /// Replaces the notification retry policy.
    pub fn set_retry_policy(&self, policy: RetryPolicy) {
        self.shared.notifier.set_retry(policy);
    }

    /// Answers the next `count` Graph requests 429 with `Retry-After: retry_after` seconds (a throttling storm).
    pub fn throttle_next(&self, count: u32, retry_after: u64) {
        let mut t = lock(&self.shared.throttle);
        t.forced = count;
        t.forced_retry_after = retry_after;
    }

    /// Carries out the next `count` message POSTs (the messages exist and
    /// notifications fire) but never answers them, as when the caller dies or
    /// the network fails after Graph committed: their requests hang until
    /// the caller gives up.
    pub fn leave_posts_unanswered(&self, count: u32) {
        self.shared.leave_posts_unanswered(count);
    }

    /// Sets the per-app, per-channel (or chat) limit in requests per second (`None`: unlimited; default 4).
    pub fn set_conversation_rate_limit(&self, per_second: Option<u32>) {
        lock(&self.shared.throttle).per_conversation = per_second;
    }

    /// Request counters.
    pub fn stats(&self) -> Stats {
        Stats { requests: self.shared.request_counts(), throttled: lock(&self.shared.throttle).throttled }
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        self.shared.settings()
    }

    /// Changes settings (token lifetime, device code interval, subscription lifetime, handshake timeout).
    pub fn update_settings(&self, f: impl FnOnce(&mut Settings)) {
        self.shared.set_settings(f);
    }
}
