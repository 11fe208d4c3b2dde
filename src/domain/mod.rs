//! The pure core: no AWS SDK, no I/O, no clock reads.
//!
//! Everything here takes its inputs (inventory, time, policy) as arguments, so every decision
//! keyrotor makes can be unit- and property-tested without an AWS account.

pub mod action;
pub mod api_rotation;
pub mod audit_record;
pub mod binding;
pub mod cert;
pub mod credential_report;
pub mod inventory;
pub mod lifecycle;
pub mod migration;
pub mod model;
pub mod plan;
pub mod policy;
pub mod posture;
pub mod removal;
pub mod respond;
pub mod schedule;
pub mod scope;
