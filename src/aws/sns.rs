//! SNS: notifications to a topic, with the event, resource and owner as message attributes
//! so subscribers can filter.

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

use super::classify;
use crate::domain::policy::NotificationsPolicy;
use crate::ports::{Notification, Notifier, PortError, PortResult};

/// The notifier a policy asks for: its `[notifications] sns_topic_arn` and `event_bus`
/// (each notification goes to both), or none (then notifications are only reported and
/// audited).
pub fn notifier_for(aws: &super::Aws, policy: &NotificationsPolicy) -> Box<dyn Notifier> {
    let mut channels: Vec<Box<dyn Notifier>> = Vec::new();
    if let Some(topic) = &policy.sns_topic_arn {
        channels.push(Box::new(SnsNotifier::new(aws.sns(), topic.clone())));
    }
    if let Some(bus) = &policy.event_bus {
        channels.push(Box::new(super::events::EventBridgeNotifier::new(
            aws.eventbridge(),
            bus.clone(),
        )));
    }
    match channels.len() {
        0 => Box::new(NoNotifier),
        1 => channels.remove(0),
        _ => Box::new(AllOf(channels)),
    }
}

/// Delivers to every channel, even when one fails; fails if any did.
pub struct AllOf(pub Vec<Box<dyn Notifier>>);

#[async_trait]
impl Notifier for AllOf {
    async fn notify(&self, n: &Notification) -> PortResult<Option<String>> {
        let mut first_id = None;
        let mut failure = None;
        for channel in &self.0 {
            match channel.notify(n).await {
                Ok(id) => first_id = first_id.or(id),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(first_id),
        }
    }
}

/// [`Notifier`] publishing to one SNS topic.
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

fn attribute(value: &str) -> PortResult<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| PortError::Other {
            operation: "sns:Publish".into(),
            message: e.to_string(),
        })
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn notify(&self, n: &Notification) -> PortResult<Option<String>> {
        let subject: String = n.subject.chars().take(100).collect();
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message(n))
            .message_attributes("event", attribute(&n.event)?)
            .message_attributes("resource", attribute(&n.resource)?);
        if let Some(owner) = &n.owner {
            req = req.message_attributes("owner", attribute(owner)?);
        }
        let out = req.send().await.map_err(|e| classify("sns:Publish", e))?;
        Ok(out.message_id().map(str::to_owned))
    }
}

/// The message body: the notification's text, then when and how to undo or postpone.
pub fn message(n: &Notification) -> String {
    let mut text = n.message.clone();
    if let Some(at) = n.at {
        text.push_str(&format!("\nWhen: {}", at.format("%Y-%m-%d %H:%M UTC")));
    }
    if let Some(undo) = &n.undo {
        text.push_str(&format!("\nUndo or postpone: {undo}"));
    }
    text
}

/// [`Notifier`] used when no topic is configured: delivers nothing; the caller still
/// audits and prints the notification.
pub struct NoNotifier;

#[async_trait]
impl Notifier for NoNotifier {
    async fn notify(&self, _n: &Notification) -> PortResult<Option<String>> {
        Ok(None)
    }
}
