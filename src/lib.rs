//! keyrotor: automated key and credential rotation for AWS.
//!
//! Layers, from the inside out (data flows one way):
//! - [`domain`]: the pure core (model, policy, planner); no SDK, no I/O, no clock reads;
//! - [`ports`]: the traits the steps need (inventories, audit store, clock, ...);
//! - [`audit`]: the hash-chained audit record, its writer and verifier;
//! - [`steps`]: the operations the CLI and Lambdas run, over ports;
//! - [`aws`]: adapters implementing the ports with the AWS SDK for Rust;
//! - [`cli`]: the `keyrotor` command;
//! - [`lambda`]: the Lambda entry points (thin wiring, stable error names);
//! - [`metrics`]: CloudWatch Embedded Metric Format documents the Lambdas print;
//! - [`wiring`]: the one place adapters are built and each job gets its ports.

pub mod audit;
pub mod aws;
pub mod cli;
pub mod domain;
pub mod lambda;
pub mod metrics;
pub mod ports;
pub mod progress;
pub mod steps;
pub mod wiring;
