//! `[notifications]`: where keyrotor tells people what it did or will do.

use serde::{Deserialize, Serialize};

use super::source::{Field, PolicyError, Source};
use super::validate::{is_event_bus, is_sns_topic_arn};

/// `[notifications]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationsPolicy {
    /// SNS topic that receives every notification (empty: notifications are only printed
    /// and audited).
    pub sns_topic_arn: Option<String>,
    /// EventBridge bus (name or ARN) that receives every notification as an event with
    /// `source = "keyrotor"` (empty: no events).
    pub event_bus: Option<String>,
    /// Who to tell when a resource has no `owner` tag.
    pub default_contact: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifications {
    sns_topic_arn: Field<String>,
    event_bus: Field<String>,
    default_contact: Field<String>,
}

impl NotificationsPolicy {
    /// Checks `[notifications]`; an empty topic or bus means none.
    pub(super) fn decode(
        r: &RawNotifications,
        src: &Source<'_>,
    ) -> Result<NotificationsPolicy, PolicyError> {
        let sns_topic_arn = match &r.sns_topic_arn {
            Some(arn) if arn.get_ref().is_empty() => None,
            Some(arn) if is_sns_topic_arn(arn.get_ref()) => Some(arn.get_ref().clone()),
            Some(arn) => {
                return Err(src.error(
                arn,
                "notifications.sns_topic_arn",
                format!(
                    "{:?} is not an SNS topic ARN such as \"arn:aws:sns:us-east-1:123456789012:keyrotor\"",
                    arn.get_ref()
                ),
            ));
            }
            None => None,
        };
        let event_bus = match &r.event_bus {
            Some(bus) if bus.get_ref().is_empty() => None,
            Some(bus) if is_event_bus(bus.get_ref()) => Some(bus.get_ref().clone()),
            Some(bus) => {
                return Err(src.error(
                bus,
                "notifications.event_bus",
                format!(
                    "{:?} is not an event bus name (\"default\", letters, digits, . _ - /) or ARN such as \"arn:aws:events:us-east-1:123456789012:event-bus/keyrotor\"",
                    bus.get_ref()
                ),
            ));
            }
            None => None,
        };
        Ok(NotificationsPolicy {
            sns_topic_arn,
            event_bus,
            default_contact: r
                .default_contact
                .as_ref()
                .map(|c| c.get_ref().trim().to_owned())
                .filter(|c| !c.is_empty()),
        })
    }
}
