//! The canary guard: a managed policy put on the user before its keys are deactivated, so
//! a forgotten client fails visibly (and is reported) while the keys can still come back.

use serde_json::{Value, json};

/// Name of the canary guard: the managed policy attached to the user (and of the inline
/// policy earlier versions put on it, which is removed wherever it is found).
pub const GUARD_POLICY_NAME: &str = "keyrotor-migration-guard";
/// Path of the guard's managed policy (infra/template.yaml and infra/member-role.yaml
/// create it in every account).
pub const GUARD_POLICY_PATH: &str = "/keyrotor/";

/// The ARN of the guard's managed policy in `account`.
pub fn guard_policy_arn(partition: &str, account: &str) -> String {
    format!("arn:{partition}:iam::{account}:policy{GUARD_POLICY_PATH}{GUARD_POLICY_NAME}")
}

/// The canary guard: denies every call made with long-term credentials (those carry no
/// `aws:TokenIssueTime`), so a forgotten client fails visibly while the keys still exist.
pub fn guard_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "KeyrotorMigrationGuard",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"Null": {"aws:TokenIssueTime": "true"}}
        }]
    })
}
