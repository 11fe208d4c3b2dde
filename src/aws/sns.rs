//! SNS: notifications to a topic, with the event, resource and owner as message attributes
//! so subscribers can filter.

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

use super::classify;
use crate::ports::{Notification, Notifier, PortError, PortResult};

/// The notifier a policy asks for: its `[notifications] sns_topic_arn`, or none (then
/// notifications are only reported and audited).
pub fn notifier_for(aws: &super::Aws, topic: Option<&String>) -> Box<dyn Notifier> {
    match topic {
        Some(topic) => Box::new(SnsNotifier::new(aws.sns(), topic.clone())),
        None => Box::new(NoNotifier),
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
            .message(&n.message)
            .message_attributes("event", attribute(&n.event)?)
            .message_attributes("resource", attribute(&n.resource)?);
        if let Some(owner) = &n.owner {
            req = req.message_attributes("owner", attribute(owner)?);
        }
        let out = req.send().await.map_err(|e| classify("sns:Publish", e))?;
        Ok(out.message_id().map(str::to_owned))
    }
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
