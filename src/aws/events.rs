//! EventBridge: every notification as an event on the policy's bus, `source = "keyrotor"`,
//! one detail-type per event ([`crate::ports::EVENT_TYPES`], docs/events.md), so rules can
//! route them to email, chat or tickets.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::json;

use super::classify;
use crate::ports::{Notification, Notifier, PortError, PortResult, detail_type};

/// The `source` of every keyrotor event.
pub const SOURCE: &str = "keyrotor";

/// [`Notifier`] putting events on one bus.
pub struct EventBridgeNotifier {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeNotifier {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

/// The event's `detail`: what happened or will happen, to what, whose, when, and the undo.
pub fn detail(n: &Notification) -> serde_json::Value {
    json!({
        "event": n.event,
        "resource": n.resource,
        "owner": n.owner,
        "summary": n.subject,
        "message": n.message,
        "at": n.at,
        "undo": n.undo,
    })
}

#[async_trait]
impl Notifier for EventBridgeNotifier {
    async fn notify(&self, n: &Notification) -> PortResult<Option<String>> {
        let mut entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(detail_type(&n.event))
            .detail(detail(n).to_string());
        // `resources` holds ARNs; key ids and user names stay in the detail.
        if n.resource.starts_with("arn:") {
            entry = entry.resources(&n.resource);
        }
        let entry = entry.build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| classify("events:PutEvents", e))?;
        match out.entries().first() {
            Some(e) if e.error_code().is_none() => Ok(e.event_id().map(str::to_owned)),
            Some(e) => Err(PortError::Other {
                operation: "events:PutEvents".into(),
                message: format!(
                    "{}: {}",
                    e.error_code().unwrap_or_default(),
                    e.error_message().unwrap_or_default()
                ),
            }),
            None => Err(PortError::InvalidResponse {
                operation: "events:PutEvents".into(),
                message: "no entry in the response".into(),
            }),
        }
    }
}
