//! Least privilege of the deployment templates (`infra/*.yaml`): no role keyrotor deploys may
//! run a destructive IAM, API Gateway or Secrets Manager action, or read a secret's value, on
//! every resource without a condition that scopes it, and no role may do anything to the audit
//! table but append to it (`dynamodb:PutItem`) and read it (`dynamodb:Query`).
//!
//! "Every resource" is `*`, a whole service (`arn:aws:iam::123:*`), and also every resource of a
//! kind whose members a weaker principal can bring in: every IAM user, role, group or policy of
//! the account (`user/*`) and every secret (`secret:*`). A `${Parameter}` in an ARN may be empty
//! at deploy time, so it is read as empty (`secret:${Prefix}*` is `secret:*`). A condition
//! scopes a statement only when the caller cannot satisfy it on a resource of its choosing: a
//! resource tag that must *equal* (or match a non-trivial pattern of) a value — not one that
//! need only be present (`Null: false`), and not a tag the same role may put on that kind of
//! resource itself —, the secret's id, or an exact `iam:PolicyARN`. Issue #20: no weak
//! permission may become a strong one through keyrotor.
//!
//! One exception is named: deactivating and deleting access keys (`iam:UpdateAccessKey`,
//! `iam:DeleteAccessKey`) may run on every user of the account, because keyrotor's key hygiene
//! covers every user in scope and IAM has no condition for keyrotor's scope (selectors,
//! exemptions, break-glass), which the code re-reads before each such step. It is never
//! accepted on `*`.
//!
//! A second exception is named, for one role only: the respond workflow's containment role
//! (`RespondContainRole`) may put an inline policy on every user (`iam:PutUserPolicy`), to
//! revoke a leaked key's older sessions with `keyrotor-revoke-sessions`. IAM has no
//! condition key for an inline policy's name or document, so this cannot be narrowed: it is
//! a real escalation path (that role could grant any user anything), accepted knowingly and
//! listed in the report so a reviewer sees it. Never on `*`, never for another role.
//!
//! The checker reads every policy a role can get: the `Policies` of `AWS::Serverless::Function`
//! and `AWS::Serverless::StateMachine` (inline statements, SAM policy templates, managed policy
//! names), and the inline and managed policies of `AWS::IAM::Role`, `AWS::IAM::Policy` and
//! `AWS::IAM::ManagedPolicy` (both branches of a conditional `Fn::If` statement). Managed
//! policies and SAM policy templates are only accepted from an explicit list of ones known to
//! grant none of the guarded actions; anything else is reported so a reviewer looks at it. The
//! negative tests below run the same checker on small templates that break each rule.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

/// Verbs that make an IAM action destructive (create, change or remove something).
const IAM_DESTRUCTIVE_VERBS: &[&str] = &[
    "Create",
    "Delete",
    "Deactivate",
    "Update",
    "Put",
    "Attach",
    "Detach",
    "Add",
    "Remove",
    "Tag",
    "Untag",
    "Set",
    "Change",
    "Reset",
    "Upload",
    "Enable",
    "Resync",
    "PassRole",
];

/// API Gateway's management actions are the HTTP verbs; the named actions change policies.
const APIGATEWAY_DESTRUCTIVE_VERBS: &[&str] = &[
    "POST", "PUT", "PATCH", "DELETE", "Create", "Delete", "Update", "Put", "Add", "Remove", "Set",
];

const SECRETSMANAGER_DESTRUCTIVE_VERBS: &[&str] = &[
    "Create",
    "Delete",
    "Put",
    "Update",
    "Rotate",
    "Cancel",
    "Restore",
    "Tag",
    "Untag",
    "Remove",
    "Replicate",
    "Stop",
];

/// Concrete destructive actions a wildcard pattern (`iam:*`, `iam:Delete*`, `*Key`, `*`) is
/// matched against: a pattern that matches any of them is destructive.
const DESTRUCTIVE_ACTIONS: &[&str] = &[
    "iam:CreateAccessKey",
    "iam:DeleteAccessKey",
    "iam:UpdateAccessKey",
    "iam:CreateUser",
    "iam:DeleteUser",
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutUserPolicy",
    "iam:DeleteUserPolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:CreatePolicyVersion",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:DeactivateMFADevice",
    "iam:AddUserToGroup",
    "iam:TagUser",
    "iam:PassRole",
    "apigateway:POST",
    "apigateway:PUT",
    "apigateway:PATCH",
    "apigateway:DELETE",
    "apigateway:UpdateRestApiPolicy",
    "secretsmanager:CreateSecret",
    "secretsmanager:DeleteSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:RestoreSecret",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:TagResource",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:StopReplicationToReplica",
];

/// The only actions any role may have on the audit table.
const AUDIT_ALLOWED: &[&str] = &["dynamodb:PutItem", "dynamodb:Query"];

/// DynamoDB actions a wildcard is matched against to decide whether it reaches the audit table.
const DYNAMODB_ACTIONS: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Scan",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:DeleteTable",
    "dynamodb:UpdateTable",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:RestoreTableFromBackup",
    "dynamodb:ImportTable",
];

/// Managed policies and SAM policy templates known to grant no destructive IAM, API Gateway or
/// Secrets Manager action and no DynamoDB access. Anything not listed is reported.
const KNOWN_HARMLESS_POLICIES: &[&str] = &[
    // SAM templates: lambda:InvokeFunction on one function; states:StartExecution (+ Stop,
    // Describe) on one state machine.
    "LambdaInvokePolicy",
    "StepFunctionsExecutionPolicy",
    // AWS managed: xray writes only; logs writes only. (Not CloudWatchLogsFullAccess: logs:* on
    // every log group, resource policies included, is more than any keyrotor role needs.)
    "AWSXrayWriteOnlyAccess",
    "AWSLambdaBasicExecutionRole",
];

/// Actions that reveal what a resource guards (a secret's value) without changing it: as
/// strong as a write when they reach a resource of someone else's choosing.
const REVEALING_ACTIONS: &[&str] = &["secretsmanager:GetSecretValue"];

/// Kinds of resource where "every one of the account" counts as every resource: anyone who can
/// create or tag one can bring it into reach (`(service, ARN resource prefix)`).
const EVERY_OF_A_KIND: &[(&str, &str)] = &[
    ("iam", "user/"),
    ("iam", "role/"),
    ("iam", "group/"),
    ("iam", "policy/"),
    ("secretsmanager", "secret:"),
];

/// The key hygiene actions accepted on every IAM user of the account (never on `*`).
const EVERY_USER_KEY_HYGIENE: &[&str] = &["iam:UpdateAccessKey", "iam:DeleteAccessKey"];

/// The one role, and the one action, accepted on every IAM user for revoking a leaked key's
/// sessions (never on `*`): IAM cannot hold `iam:PutUserPolicy` to one policy name.
const SESSION_REVOCATION: (&str, &str) = ("RespondContainRole", "iam:PutUserPolicy");

/// The actions that put a tag on a resource of a service: a role that holds one can satisfy a
/// resource tag condition of that service by itself.
const TAGGING_ACTIONS: &[(&str, &[&str])] = &[
    ("secretsmanager", &["secretsmanager:TagResource"]),
    (
        "iam",
        &[
            "iam:TagUser",
            "iam:TagRole",
            "iam:TagPolicy",
            "iam:TagInstanceProfile",
        ],
    ),
    // API Gateway tags with POST or PUT on /tags/...
    (
        "apigateway",
        &[
            "apigateway:POST",
            "apigateway:PUT",
            "apigateway:TagResource",
        ],
    ),
    ("acm", &["acm:AddTagsToCertificate"]),
];

/// Condition operators that require the key to be present and to match: only these can scope.
const MATCHING_OPERATORS: &[&str] = &[
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "ArnEquals",
    "ArnLike",
];

/// One rule broken, with where.
#[derive(Debug, Clone, PartialEq)]
struct Violation {
    resource: String,
    rule: &'static str,
    detail: String,
}

/// The policies of one role-bearing resource, checked.
#[derive(Debug, Default)]
struct Report {
    violations: Vec<Violation>,
    /// Logical ids of the resources whose policies were inspected.
    inspected: Vec<String>,
    /// Statements inspected, and how many of them reach the audit table.
    statements: usize,
    audit_statements: usize,
    /// Grants accepted only as the named [`SESSION_REVOCATION`] exception (`resource: action`).
    exceptions: Vec<String>,
}

/// What one resource grants, and the role (group) that receives it.
struct Grant<'a> {
    id: String,
    /// The logical id of the role the grant ends up on (its own id when it is the role or is
    /// attached to none), so tagging powers are summed per role.
    group: String,
    statements: Vec<&'a Value>,
    /// SAM policy templates (`name`, arguments) and managed policy names.
    sam_templates: Vec<(String, &'a Value)>,
    managed: Vec<&'a Value>,
}

impl<'a> Grant<'a> {
    fn new(id: &str, group: &str) -> Self {
        Self {
            id: id.to_owned(),
            group: group.to_owned(),
            statements: Vec::new(),
            sam_templates: Vec::new(),
            managed: Vec::new(),
        }
    }

    /// A SAM `Policies` property: a managed policy name, a policy document, a SAM policy
    /// template, or a list of those.
    fn add_sam_policies(&mut self, policies: Option<&'a Value>) {
        for policy in seq(policies) {
            match policy {
                Value::Mapping(map) if map.contains_key("Statement") => {
                    self.statements.extend(statements(Some(policy)))
                }
                Value::Mapping(map) => {
                    for (name, args) in map {
                        let name = name.as_str().unwrap_or("?").to_owned();
                        self.sam_templates.push((name, args));
                    }
                }
                other => self.managed.push(other),
            }
        }
    }
}

fn check_template(yaml: &str) -> Report {
    let doc: Value = serde_yaml::from_str(yaml).expect("template is YAML");
    let audit = AuditTable::find(&doc);
    let mut report = Report::default();
    let mut grants: Vec<Grant> = Vec::new();
    if let Some(globals) = doc.get("Globals").and_then(|g| g.get("Function")) {
        let mut grant = Grant::new("Globals.Function", "Globals.Function");
        grant.add_sam_policies(globals.get("Policies"));
        grants.push(grant);
    }
    for (id, resource) in doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
    {
        let id = id.as_str().unwrap_or("?");
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        let props = resource.get("Properties");
        let prop = |name: &str| props.and_then(|p| p.get(name));
        match kind {
            "AWS::Serverless::Function" | "AWS::Serverless::StateMachine" => {
                report.inspected.push(id.to_owned());
                let mut grant = Grant::new(id, id);
                grant.add_sam_policies(prop("Policies"));
                grants.push(grant);
            }
            "AWS::IAM::Role" => {
                report.inspected.push(id.to_owned());
                let mut grant = Grant::new(id, id);
                for policy in seq(prop("Policies")) {
                    grant
                        .statements
                        .extend(statements(policy.get("PolicyDocument")));
                }
                grant.managed.extend(seq(prop("ManagedPolicyArns")));
                grants.push(grant);
            }
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                report.inspected.push(id.to_owned());
                let group = seq(prop("Roles"))
                    .find_map(reference)
                    .unwrap_or(id)
                    .to_owned();
                let mut grant = Grant::new(id, &group);
                grant.statements = statements(prop("PolicyDocument"));
                grants.push(grant);
            }
            _ => {}
        }
    }

    // What each role can tag, over everything it is granted.
    let mut tagging: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for grant in &grants {
        let services = tagging.entry(grant.group.as_str()).or_default();
        for statement in &grant.statements {
            if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            for action in seq(statement.get("Action")).map(render) {
                for (service, actions) in TAGGING_ACTIONS {
                    if actions.iter().any(|a| glob(&action, a)) {
                        services.insert(*service);
                    }
                }
            }
        }
    }

    for grant in &grants {
        let can_tag = &tagging[grant.group.as_str()];
        for statement in &grant.statements {
            report.statements += 1;
            check_statement(&grant.id, statement, &audit, can_tag, &mut report);
        }
        for (name, args) in &grant.sam_templates {
            if !KNOWN_HARMLESS_POLICIES.contains(&name.as_str()) {
                let on_audit = audit.is_referenced_by(args);
                report.violations.push(Violation {
                    resource: grant.id.clone(),
                    rule: if on_audit {
                        "audit-append-only"
                    } else {
                        "unknown-policy"
                    },
                    detail: format!("SAM policy template {name} is not known harmless"),
                });
            }
        }
        for policy in &grant.managed {
            check_managed(&grant.id, policy, &mut report);
        }
    }
    report
}

/// The logical id a `!Ref X` / `{Ref: X}` names.
fn reference(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Mapping(m) => m.get("Ref").and_then(Value::as_str),
        _ => None,
    }
}

/// The statements of a policy document, with both branches of a conditional (`Fn::If`)
/// statement and without `AWS::NoValue`.
fn statements(document: Option<&Value>) -> Vec<&Value> {
    fn branches(value: &Value) -> Vec<&Value> {
        let args = match value {
            Value::Tagged(t) if t.tag == "If" => t.value.as_sequence(),
            Value::Mapping(m) if m.len() == 1 => m.get("Fn::If").and_then(Value::as_sequence),
            _ => None,
        };
        match args {
            Some(args) => args.iter().skip(1).flat_map(branches).collect(),
            None if reference(value) == Some("AWS::NoValue") => Vec::new(),
            None => vec![value],
        }
    }
    let Some(document) = document else {
        return Vec::new();
    };
    seq(document.get("Statement")).flat_map(branches).collect()
}

fn check_managed(id: &str, policy: &Value, report: &mut Report) {
    let text = render(policy);
    let name = text.rsplit('/').next().unwrap_or(&text);
    if !KNOWN_HARMLESS_POLICIES.contains(&name) {
        report.violations.push(Violation {
            resource: id.to_owned(),
            rule: "unknown-policy",
            detail: format!("managed policy {text} is not known harmless"),
        });
    }
}

fn check_statement(
    id: &str,
    statement: &Value,
    audit: &AuditTable,
    can_tag: &BTreeSet<&str>,
    report: &mut Report,
) {
    if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
        return;
    }
    let sid = statement
        .get("Sid")
        .and_then(Value::as_str)
        .unwrap_or("(no Sid)");
    let mut violation = |rule, detail: String| {
        report.violations.push(Violation {
            resource: id.to_owned(),
            rule,
            detail: format!("{sid}: {detail}"),
        })
    };
    if statement.get("NotAction").is_some() || statement.get("NotResource").is_some() {
        violation(
            "no-not-action",
            "Allow with NotAction/NotResource grants everything not listed".into(),
        );
        return;
    }
    let actions: Vec<String> = seq(statement.get("Action")).map(render).collect();
    let resources: Vec<&Value> = seq(statement.get("Resource")).collect();
    let services: BTreeSet<&str> = actions
        .iter()
        .filter_map(|a| a.split_once(':').map(|(s, _)| s))
        .collect();
    let scoped = statement
        .get("Condition")
        .is_some_and(|c| is_scoping_condition(c, &services, can_tag));

    // Rule 1: destructive IAM / API Gateway / Secrets Manager actions, and reading a secret's
    // value, need a resource narrower than everything, or a condition that scopes them.
    let mut accepted = Vec::new();
    if !scoped {
        let everything = resources.iter().any(|r| is_unscoped_resource(r));
        let every_user_only = !everything && resources.iter().any(|r| is_every_user(r));
        let every_of_a_kind = resources.iter().any(|r| is_every_of_a_kind(r));
        for action in actions.iter().filter(|a| is_guarded(a)) {
            let hygiene = every_user_only
                && EVERY_USER_KEY_HYGIENE
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(action));
            let revocation = every_user_only
                && id == SESSION_REVOCATION.0
                && SESSION_REVOCATION.1.eq_ignore_ascii_case(action);
            if revocation && !everything {
                accepted.push(format!("{id}: {action}"));
                continue;
            }
            if everything || (every_of_a_kind && !hygiene) {
                violation(
                    "no-destructive-on-star",
                    format!("{action} on every resource without a scoping Condition"),
                );
            }
        }
    }

    report.exceptions.extend(accepted);

    // Rule 2: the audit table is append-only: PutItem and Query, nothing else.
    let reaches_audit = resources
        .iter()
        .any(|r| audit.is_referenced_by(r) || is_unscoped_table(r));
    let dynamodb: Vec<&String> = actions
        .iter()
        .filter(|a| DYNAMODB_ACTIONS.iter().any(|d| glob(a, d)))
        .collect();
    if reaches_audit && !dynamodb.is_empty() {
        report.audit_statements += 1;
        for action in dynamodb {
            if !AUDIT_ALLOWED
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(action))
            {
                report.violations.push(Violation {
                    resource: id.to_owned(),
                    rule: "audit-append-only",
                    detail: format!("{sid}: {action} on the audit table"),
                });
            }
        }
    }
}

/// A destructive action (see [`is_destructive`]) or one that reveals a secret's value.
fn is_guarded(action: &str) -> bool {
    is_destructive(action) || REVEALING_ACTIONS.iter().any(|r| glob(action, r))
}

/// A literal action with a destructive verb, or a wildcard that matches a destructive action.
fn is_destructive(action: &str) -> bool {
    if DESTRUCTIVE_ACTIONS.iter().any(|d| glob(action, d)) {
        return true;
    }
    let Some((service, name)) = action.split_once(':') else {
        return false;
    };
    let verbs = match service.to_ascii_lowercase().as_str() {
        "iam" => IAM_DESTRUCTIVE_VERBS,
        "apigateway" => APIGATEWAY_DESTRUCTIVE_VERBS,
        "secretsmanager" => SECRETSMANAGER_DESTRUCTIVE_VERBS,
        _ => return false,
    };
    verbs.iter().any(|v| name.starts_with(v))
}

/// The six parts of an ARN (`!Sub` text read with every `${...}` empty), if it is one.
fn arn_parts(resource: &Value) -> Option<Vec<String>> {
    let text = without_substitutions(&render(resource));
    let parts: Vec<String> = text.splitn(6, ':').map(str::to_owned).collect();
    (parts.len() == 6).then_some(parts)
}

/// `*`, or an ARN whose resource part is a bare wildcard (`arn:aws:iam::123:*`).
fn is_unscoped_resource(resource: &Value) -> bool {
    if without_substitutions(&render(resource)) == "*" {
        return true;
    }
    arn_parts(resource).is_some_and(|parts| matches!(parts[5].as_str(), "*" | "/*" | ""))
}

/// Every resource of one of the [`EVERY_OF_A_KIND`] kinds (`user/*`, `secret:*`, `user/*/*`).
fn is_every_of_a_kind(resource: &Value) -> bool {
    let Some(parts) = arn_parts(resource) else {
        return false;
    };
    EVERY_OF_A_KIND.iter().any(|(service, prefix)| {
        parts[2].eq_ignore_ascii_case(service)
            && parts[5]
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('*'))
    })
}

/// Every IAM user of an account (`...:user/*`).
fn is_every_user(resource: &Value) -> bool {
    arn_parts(resource).is_some_and(|parts| {
        parts[2] == "iam"
            && parts[5]
                .strip_prefix("user/")
                .is_some_and(|rest| rest.starts_with('*'))
    })
}

/// `!Sub` text with each `${...}` removed: a parameter may be empty at deploy time (so
/// `secret:${Prefix}*` reads as every secret), and the colons of `${AWS::Partition}` do not
/// count as ARN separators.
fn without_substitutions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A resource that covers every DynamoDB table, the audit table among them.
fn is_unscoped_table(resource: &Value) -> bool {
    let text = render(resource);
    is_unscoped_resource(resource) || text.contains(":table/*") || text.ends_with(":table/")
}

/// A condition that narrows which resources the statement reaches in a way its caller cannot
/// arrange: a resource tag that must equal (or match a pattern other than `*`) a value, on a
/// kind of resource the role cannot tag itself; the secret's id; an exact `iam:PolicyARN`.
/// Absence or mere presence of a tag (`Null`), negated and `...IfExists` operators (true when
/// the key is missing) and set operators scope nothing.
fn is_scoping_condition(
    condition: &Value,
    services: &BTreeSet<&str>,
    can_tag: &BTreeSet<&str>,
) -> bool {
    let Some(operators) = condition.as_mapping() else {
        return false;
    };
    operators.iter().any(|(operator, keys)| {
        let operator = operator.as_str().unwrap_or("");
        if !MATCHING_OPERATORS.contains(&operator) {
            return false;
        }
        keys.as_mapping().is_some_and(|keys| {
            keys.iter().any(|(key, value)| {
                let key = key.as_str().unwrap_or("");
                let values: Vec<String> = seq(Some(value)).map(render).collect();
                let pinned = !values.is_empty()
                    && values
                        .iter()
                        .all(|v| !without_substitutions(v).trim_matches('*').is_empty());
                if let Some((service, _)) = key.split_once(":ResourceTag/") {
                    // `aws:ResourceTag/...` applies to the statement's own services.
                    let taggable = if service == "aws" {
                        services.iter().any(|s| can_tag.contains(s))
                    } else {
                        can_tag.contains(service)
                    };
                    pinned && !taggable
                } else if key.eq_ignore_ascii_case("iam:PolicyARN")
                    || key.eq_ignore_ascii_case("secretsmanager:SecretId")
                {
                    pinned && values.iter().all(|v| !v.contains(['*', '?']))
                } else {
                    false
                }
            })
        })
    })
}

/// The table(s) that hold the audit trail: DynamoDB tables whose logical id names the audit,
/// with the parameter and default name their `TableName` comes from.
struct AuditTable {
    needles: Vec<String>,
}

impl AuditTable {
    fn find(doc: &Value) -> Self {
        let mut needles = Vec::new();
        for (id, resource) in doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
        {
            let id = id.as_str().unwrap_or("");
            let is_table =
                resource.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table");
            if !is_table || !id.to_ascii_lowercase().contains("audit") {
                continue;
            }
            needles.push(id.to_owned());
            let name = resource
                .get("Properties")
                .and_then(|p| p.get("TableName"))
                .map(render)
                .unwrap_or_default();
            if let Some(param) = doc.get("Parameters").and_then(|p| p.get(&name)) {
                needles.push(name.clone());
                if let Some(default) = param.get("Default") {
                    needles.push(format!("table/{}", render(default)));
                }
            } else if !name.is_empty() {
                needles.push(format!("table/{name}"));
            }
        }
        Self { needles }
    }

    /// Whether a resource (a `!GetAtt`, `!Ref`, `!Sub` or literal ARN, at any depth) names the
    /// audit table.
    fn is_referenced_by(&self, value: &Value) -> bool {
        let text = render(value);
        let tokens: Vec<&str> = text.split(|c: char| !c.is_ascii_alphanumeric()).collect();
        self.needles.iter().any(|needle| {
            if needle.starts_with("table/") {
                text.contains(needle.as_str())
            } else {
                tokens.contains(&needle.as_str())
            }
        })
    }
}

/// A YAML value as text: strings as is, tags (`!Sub`, `!GetAtt`) dropped, lists and maps in
/// a bracketed form, so references can be searched in any spelling.
fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        Value::Tagged(tagged) => render(&tagged.value),
        Value::Sequence(items) => {
            format!(
                "[{}]",
                items.iter().map(render).collect::<Vec<_>>().join(",")
            )
        }
        Value::Mapping(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}:{}", render(k), render(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// A value that may be one item or a list of items, as a list.
fn seq(value: Option<&Value>) -> Box<dyn Iterator<Item = &Value> + '_> {
    match value {
        None | Some(Value::Null) => Box::new(std::iter::empty()),
        Some(Value::Sequence(items)) => Box::new(items.iter()),
        Some(other) => Box::new(std::iter::once(other)),
    }
}

/// IAM wildcard matching (`*` any run, `?` one character), case-insensitive.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// A file of the repository. `KEYROTOR_TEMPLATES_ROOT` reads it from another checkout instead
/// (used to check that the real-template tests fail on a template that breaks a rule).
fn read(path: &str) -> String {
    let root = std::env::var_os("KEYROTOR_TEMPLATES_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let path = root.join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ------------------------------------------------------------------------- the real templates

#[test]
fn the_deployed_roles_are_least_privilege() {
    // GIVEN the central template
    let report = check_template(&read("infra/template.yaml"));

    // THEN every function and state machine was inspected, the audit table was recognised in
    // each function's AppendAudit statement, and no rule is broken
    for id in [
        "PlanFunction",
        "IamKeysFunction",
        "ApiKeyFunction",
        "MigrationFunction",
        "CertsFunction",
        "RecordFailureFunction",
        "SecretRotationFunction",
        "ApiKeyRotationStateMachine",
        "SweepStateMachine",
        "PlanRole",
        "IamKeysRole",
        "ApiKeyRole",
        "MigrationRole",
        "CertsRole",
        "RecordFailureRole",
        "SecretRotationRole",
        "MigrationGuardPolicy",
        "RespondDecodeFunction",
        "RespondContainFunction",
        "RespondInvestigateFunction",
        "RespondNotifyFunction",
        "RespondStateMachine",
        "RespondDecodeRole",
        "RespondContainRole",
        "RespondInvestigateRole",
        "RespondNotifyRole",
    ] {
        assert!(
            report.inspected.iter().any(|i| i == id),
            "{id} not inspected"
        );
    }
    assert!(report.statements >= 60, "{report:#?}");
    // The six sweep and hook functions, and the respond workflow's decode, contain and
    // investigate steps (notify writes no audit record).
    assert_eq!(report.audit_statements, 9, "{report:#?}");
    assert_eq!(report.violations, vec![], "{report:#?}");
    // The one named exception, and only where it is named.
    assert_eq!(
        report.exceptions,
        vec!["RespondContainRole: iam:PutUserPolicy"],
        "{report:#?}"
    );
}

#[test]
fn only_the_containment_step_of_the_respond_workflow_can_change_a_key_or_a_secret() {
    // GIVEN the central template
    let doc: Value = serde_yaml::from_str(&read("infra/template.yaml")).unwrap();
    let actions_of = |role: &str| -> Vec<String> {
        let policies = &doc["Resources"][role]["Properties"]["Policies"];
        seq(Some(policies))
            .flat_map(|p| statements(p.get("PolicyDocument")))
            .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
            .flat_map(|s| seq(s.get("Action")).map(render))
            .collect()
    };

    // THEN the roles that read the event, CloudTrail or send a notice hold no guarded
    // action (nothing destructive, no secret value) ...
    for role in [
        "RespondDecodeRole",
        "RespondInvestigateRole",
        "RespondNotifyRole",
    ] {
        let actions = actions_of(role);
        assert!(!actions.is_empty(), "{role} has no policy");
        let guarded: Vec<&String> = actions.iter().filter(|a| is_guarded(a)).collect();
        assert_eq!(guarded, Vec::<&String>::new(), "{role}");
    }
    assert!(actions_of("RespondInvestigateRole").contains(&"cloudtrail:LookupEvents".to_owned()));
    // ... and the containment role holds what containment does, and no more: keys are
    // deactivated, never deleted outside the bound-secret rotation (whose statement is
    // scoped by the user's keyrotor:secret tag, checked by the least-privilege test).
    let contain = actions_of("RespondContainRole");
    for needed in [
        "iam:GetAccessKeyLastUsed",
        "iam:ListAccessKeys",
        "iam:GetUser",
        "iam:ListUserTags",
        "iam:UpdateAccessKey",
        "iam:CreateAccessKey",
        "iam:DeleteAccessKey",
        "iam:PutUserPolicy",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ] {
        assert!(
            contain.contains(&needed.to_owned()),
            "{needed}: {contain:?}"
        );
    }
    for never in [
        "iam:DetachUserPolicy",
        "iam:DeleteUserPolicy",
        "iam:AttachUserPolicy",
        "iam:DeleteUser",
        "secretsmanager:DeleteSecret",
    ] {
        assert!(
            !contain.iter().any(|a| glob(a, never)),
            "{never}: {contain:?}"
        );
    }
}

#[test]
fn putting_an_inline_policy_on_every_user_is_accepted_only_for_the_containment_role() {
    let every_user = "!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*";
    let role = |id: &str, resource: &str| {
        check_template(&format!(
            r#"
Resources:
  AuditTable:
    Type: AWS::DynamoDB::Table
  {id}:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyDocument:
            Statement:
              - Effect: Allow
                Action: iam:PutUserPolicy
                Resource: {resource}
"#
        ))
    };

    let named = role("RespondContainRole", every_user);
    assert_eq!(rules(&named), Vec::<&str>::new());
    assert_eq!(
        named.exceptions,
        vec!["RespondContainRole: iam:PutUserPolicy"]
    );
    assert_eq!(
        rules(&role("RespondContainRole", r#""*""#)),
        vec!["no-destructive-on-star"]
    );
    assert_eq!(
        rules(&role("RespondNotifyRole", every_user)),
        vec!["no-destructive-on-star"]
    );
    assert_eq!(
        rules(&role("IamKeysRole", every_user)),
        vec!["no-destructive-on-star"]
    );
}

#[test]
fn the_member_account_role_is_least_privilege() {
    let report = check_template(&read("infra/member-role.yaml"));

    assert_eq!(report.inspected, vec!["MemberRole", "MigrationGuardPolicy"]);
    assert!(report.statements >= 6, "{report:#?}");
    assert_eq!(report.violations, vec![], "{report:#?}");
}

// ------------------------------------------------------------------------- the checker can fail

const HEADER: &str = r#"
Parameters:
  AuditTableName: { Type: String, Default: keyrotor-audit }
Resources:
  AuditTable:
    Type: AWS::DynamoDB::Table
    Properties: { TableName: !Ref AuditTableName }
  StateTable:
    Type: AWS::DynamoDB::Table
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
"#;

/// A template with one function whose `Policies` list is `policies` (indented 8 spaces).
fn function_with(policies: &str) -> Report {
    let body: String = policies
        .trim_matches('\n')
        .lines()
        .map(|l| format!("        {l}\n"))
        .collect();
    check_template(&format!("{HEADER}{body}"))
}

fn rules(report: &Report) -> Vec<&'static str> {
    report.violations.iter().map(|v| v.rule).collect()
}

fn statement(action: &str, resource: &str) -> Report {
    function_with(&format!(
        "- Statement:\n    - Effect: Allow\n      Action: {action}\n      Resource: {resource}\n"
    ))
}

#[test]
fn a_destructive_iam_action_on_every_resource_is_reported() {
    let report = statement("iam:DeleteAccessKey", r#""*""#);

    assert_eq!(rules(&report), vec!["no-destructive-on-star"]);
    assert_eq!(report.violations[0].resource, "Fn");
}

#[test]
fn service_wildcards_on_every_resource_are_reported() {
    for action in [
        "iam:*",
        "apigateway:*",
        "apigateway:DELETE",
        "apigateway:PATCH",
        "secretsmanager:*",
        "secretsmanager:Put*",
        "secretsmanager:UpdateSecretVersionStage",
        "iam:*AccessKey",
        "iam:Deactivate*",
    ] {
        let report = statement(action, r#""*""#);
        assert_eq!(
            rules(&report),
            vec!["no-destructive-on-star"],
            "{action} was not reported"
        );
    }
    // `*` is both: destructive everywhere and every action on the audit table.
    assert_eq!(
        rules(&statement(r#""*""#, r#""*""#)),
        vec!["no-destructive-on-star", "audit-append-only"]
    );
}

#[test]
fn a_whole_service_arn_counts_as_every_resource() {
    let report = statement(
        "iam:UpdateAccessKey",
        r#"!Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:*""#,
    );

    assert_eq!(rules(&report), vec!["no-destructive-on-star"]);
}

#[test]
fn read_only_actions_on_every_resource_are_allowed() {
    for action in [
        "[iam:GetCredentialReport, iam:GenerateCredentialReport]",
        "secretsmanager:ListSecrets",
        "apigateway:GET",
        "acm:ListCertificates",
    ] {
        assert_eq!(
            rules(&statement(action, r#""*""#)),
            Vec::<&str>::new(),
            "{action}"
        );
    }
}

#[test]
fn destructive_actions_on_a_scoped_resource_are_allowed() {
    let report = statement(
        "[iam:UpdateAccessKey, iam:DeleteAccessKey]",
        "!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*",
    );

    assert_eq!(rules(&report), Vec::<&str>::new());
}

#[test]
fn a_resource_tag_condition_scopes_a_destructive_action_on_every_resource() {
    let scoped = function_with(
        r#"
- Statement:
    - Effect: Allow
      Action: secretsmanager:PutSecretValue
      Resource: "*"
      Condition: { StringEquals: { "aws:ResourceTag/keyrotor:type": api-key } }
"#,
    );
    let absent_tag = function_with(
        r#"
- Statement:
    - Effect: Allow
      Action: secretsmanager:PutSecretValue
      Resource: "*"
      Condition: { "Null": { "aws:ResourceTag/keyrotor:type": "true" } }
"#,
    );
    let transport_only = function_with(
        r#"
- Statement:
    - Effect: Allow
      Action: secretsmanager:PutSecretValue
      Resource: "*"
      Condition: { Bool: { "aws:SecureTransport": "true" } }
"#,
    );

    assert_eq!(rules(&scoped), Vec::<&str>::new());
    assert_eq!(rules(&absent_tag), vec!["no-destructive-on-star"]);
    assert_eq!(rules(&transport_only), vec!["no-destructive-on-star"]);
}

#[test]
fn an_allow_with_not_action_is_reported() {
    let report = function_with(
        r#"
- Statement:
    - Effect: Allow
      NotAction: iam:*
      Resource: "*"
"#,
    );

    assert_eq!(rules(&report), vec!["no-not-action"]);
}

#[test]
fn updating_or_deleting_audit_records_is_reported_in_any_spelling() {
    for (action, resource) in [
        ("dynamodb:UpdateItem", "!GetAtt AuditTable.Arn"),
        ("dynamodb:DeleteItem", "!GetAtt [AuditTable, Arn]"),
        ("dynamodb:BatchWriteItem", r#"!Sub "${AuditTable.Arn}""#),
        ("dynamodb:*", "!GetAtt AuditTable.Arn"),
        ("dynamodb:*Item", r#"!Sub "${AuditTable.Arn}/index/*""#),
        (
            "dynamodb:DeleteItem",
            "!Sub arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${AuditTableName}",
        ),
        (
            "dynamodb:UpdateItem",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/keyrotor-audit",
        ),
        ("dynamodb:UpdateItem", r#""*""#),
        (
            "dynamodb:DeleteItem",
            "!Sub arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*",
        ),
        ("dynamodb:UpdateTimeToLive", "!GetAtt AuditTable.Arn"),
    ] {
        let report = statement(action, resource);
        assert_eq!(
            rules(&report),
            vec!["audit-append-only"],
            "{action} on {resource} was not reported"
        );
    }
}

#[test]
fn appending_to_and_querying_the_audit_table_is_allowed() {
    let report = statement(
        "[dynamodb:Query, dynamodb:PutItem]",
        "!GetAtt AuditTable.Arn",
    );

    assert_eq!(rules(&report), Vec::<&str>::new());
    assert_eq!(report.audit_statements, 1);
}

#[test]
fn writing_the_state_table_is_not_an_audit_violation() {
    let report = statement(
        "[dynamodb:UpdateItem, dynamodb:DeleteItem]",
        "!GetAtt StateTable.Arn",
    );

    assert_eq!(rules(&report), Vec::<&str>::new());
    assert_eq!(report.audit_statements, 0);
}

#[test]
fn a_sam_crud_template_on_the_audit_table_is_reported() {
    let report = function_with("- DynamoDBCrudPolicy: { TableName: !Ref AuditTable }\n");

    assert_eq!(rules(&report), vec!["audit-append-only"]);
}

#[test]
fn unknown_managed_policies_are_reported_and_known_ones_accepted() {
    let admin = function_with("- IAMFullAccess\n- arn:aws:iam::aws:policy/AdministratorAccess\n");
    let full_logs = function_with(
        "- CloudWatchLogsFullAccess\n- arn:aws:iam::aws:policy/CloudWatchLogsFullAccess\n",
    );
    let known = function_with(
        "- AWSXrayWriteOnlyAccess\n- LambdaInvokePolicy: { FunctionName: !Ref Other }\n",
    );

    assert_eq!(rules(&admin), vec!["unknown-policy", "unknown-policy"]);
    assert_eq!(rules(&full_logs), vec!["unknown-policy", "unknown-policy"]);
    assert_eq!(rules(&known), Vec::<&str>::new());
}

#[test]
fn iam_roles_inline_and_managed_policies_are_checked() {
    let report = check_template(
        r#"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      ManagedPolicyArns: [!Sub "arn:${AWS::Partition}:iam::aws:policy/SecretsManagerReadWrite"]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [apigateway:*]
                Resource: ["*"]
  Extra:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          Effect: Allow
          Action: iam:CreateAccessKey
          Resource: "*"
"#,
    );

    let mut found: Vec<(String, &str)> = report
        .violations
        .iter()
        .map(|v| (v.resource.clone(), v.rule))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("Extra".to_owned(), "no-destructive-on-star"),
            ("Role".to_owned(), "no-destructive-on-star"),
            ("Role".to_owned(), "unknown-policy"),
        ]
    );
}

#[test]
fn deny_statements_are_not_grants() {
    let report = function_with(
        r#"
- Statement:
    - Effect: Deny
      Action: iam:*
      Resource: "*"
"#,
    );

    assert_eq!(rules(&report), Vec::<&str>::new());
}

// ------------------------------------------------------------------------- what scopes (#20)

#[test]
fn every_user_and_every_secret_count_as_every_resource() {
    for (action, resource) in [
        (
            "iam:CreateAccessKey",
            "!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*",
        ),
        (
            "iam:AttachUserPolicy",
            "!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*",
        ),
        (
            "iam:PutRolePolicy",
            "!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*",
        ),
        (
            "secretsmanager:PutSecretValue",
            "!Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*",
        ),
        (
            "secretsmanager:UpdateSecretVersionStage",
            "arn:aws:secretsmanager:*:123456789012:secret:*",
        ),
        // Reading any secret's value is as strong as writing it.
        (
            "secretsmanager:GetSecretValue",
            "!Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*",
        ),
        // A parameter may be empty at deploy time.
        (
            "secretsmanager:PutSecretValue",
            "!Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${Prefix}*",
        ),
    ] {
        assert_eq!(
            rules(&statement(action, resource)),
            vec!["no-destructive-on-star"],
            "{action} on {resource} was not reported"
        );
    }
}

#[test]
fn narrower_than_every_user_or_secret_is_scoped() {
    for (action, resource) in [
        (
            "iam:CreateAccessKey",
            "!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:user/keyrotor-managed/*",
        ),
        (
            "secretsmanager:PutSecretValue",
            "!Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:keyrotor/*",
        ),
        ("secretsmanager:GetSecretValue", "!Ref ExternalIdSecret"),
    ] {
        assert_eq!(
            rules(&statement(action, resource)),
            Vec::<&str>::new(),
            "{action} on {resource}"
        );
    }
}

#[test]
fn key_hygiene_may_reach_every_user_but_not_everything() {
    let every_user = statement(
        "[iam:UpdateAccessKey, iam:DeleteAccessKey, iam:ListAccessKeys]",
        "!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*",
    );
    let everything = statement("[iam:UpdateAccessKey, iam:DeleteAccessKey]", r#""*""#);
    let every_role = statement(
        "iam:DeleteAccessKey",
        "!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*",
    );

    assert_eq!(rules(&every_user), Vec::<&str>::new());
    assert_eq!(
        rules(&everything),
        vec!["no-destructive-on-star", "no-destructive-on-star"]
    );
    assert_eq!(rules(&every_role), vec!["no-destructive-on-star"]);
}

/// One statement on every secret with `condition`, plus `more` statements of the same role.
fn on_every_secret(condition: &str, more: &str) -> Report {
    function_with(&format!(
        r#"
- Statement:
    - Effect: Allow
      Action: secretsmanager:PutSecretValue
      Resource: !Sub arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:*
      Condition: {condition}
{more}"#
    ))
}

#[test]
fn a_tag_that_need_only_be_present_scopes_nothing() {
    let presence = on_every_secret(
        r#"{ "Null": { "secretsmanager:ResourceTag/keyrotor:type": "false" } }"#,
        "",
    );
    let any_value = on_every_secret(
        r#"{ StringLike: { "secretsmanager:ResourceTag/keyrotor:type": "*" } }"#,
        "",
    );
    let if_exists = on_every_secret(
        r#"{ StringEqualsIfExists: { "secretsmanager:ResourceTag/keyrotor:type": api-key } }"#,
        "",
    );
    let negated = on_every_secret(
        r#"{ StringNotEquals: { "secretsmanager:ResourceTag/keyrotor:type": other } }"#,
        "",
    );
    let pinned = on_every_secret(
        r#"{ StringEquals: { "secretsmanager:ResourceTag/keyrotor:type": api-key }, "Null": { "secretsmanager:ResourceTag/keyrotor:api-key": "false" } }"#,
        "",
    );

    for report in [&presence, &any_value, &if_exists, &negated] {
        assert_eq!(rules(report), vec!["no-destructive-on-star"], "{report:#?}");
    }
    assert_eq!(rules(&pinned), Vec::<&str>::new());
}

#[test]
fn a_tag_the_role_can_put_itself_scopes_nothing() {
    let tags_secrets = r#"
    - Effect: Allow
      Action: secretsmanager:TagResource
      Resource: !Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:team/*"#;
    let service_key = on_every_secret(
        r#"{ StringEquals: { "secretsmanager:ResourceTag/keyrotor:type": api-key } }"#,
        tags_secrets,
    );
    let global_key = on_every_secret(
        r#"{ StringEquals: { "aws:ResourceTag/keyrotor:type": api-key } }"#,
        tags_secrets,
    );
    // Tagging another service's resources does not help.
    let tags_users = on_every_secret(
        r#"{ StringEquals: { "aws:ResourceTag/keyrotor:type": api-key } }"#,
        r#"
    - Effect: Allow
      Action: iam:TagUser
      Resource: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:user/team/*"#,
    );

    assert_eq!(rules(&service_key), vec!["no-destructive-on-star"]);
    assert_eq!(rules(&global_key), vec!["no-destructive-on-star"]);
    assert_eq!(rules(&tags_users), Vec::<&str>::new());
}

#[test]
fn a_tagging_right_granted_by_an_attached_policy_counts_for_the_role() {
    let report = check_template(
        r#"
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: iam:CreateAccessKey
                Resource: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:user/*
                Condition:
                  StringEquals: { "iam:ResourceTag/keyrotor:secret": bound }
  Extra:
    Type: AWS::IAM::Policy
    Properties:
      Roles: [!Ref Role]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: iam:Tag*
            Resource: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:user/team/*
"#,
    );

    assert_eq!(rules(&report), vec!["no-destructive-on-star"]);
    assert_eq!(report.violations[0].resource, "Role");
}

#[test]
fn only_an_exact_policy_arn_scopes_attaching_policies() {
    let attach = |condition: &str| {
        function_with(&format!(
            r#"
- Statement:
    - Effect: Allow
      Action: [iam:AttachUserPolicy, iam:DetachUserPolicy]
      Resource: !Sub arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:user/*
      Condition: {condition}
"#
        ))
    };
    let exact = attach(
        r#"{ ArnEquals: { "iam:PolicyARN": !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/keyrotor/keyrotor-migration-guard" } }"#,
    );
    let any_keyrotor_policy = attach(
        r#"{ ArnLike: { "iam:PolicyARN": !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/keyrotor/*" } }"#,
    );
    let any_policy = attach(r#"{ ArnLike: { "iam:PolicyARN": "*" } }"#);
    let transport = attach(r#"{ Bool: { "aws:SecureTransport": "true" } }"#);

    assert_eq!(rules(&exact), Vec::<&str>::new());
    for report in [&any_keyrotor_policy, &any_policy, &transport] {
        assert_eq!(
            rules(report),
            vec!["no-destructive-on-star", "no-destructive-on-star"],
            "{report:#?}"
        );
    }
}

#[test]
fn both_branches_of_a_conditional_statement_are_checked() {
    let report = function_with(
        r#"
- Statement:
    - !If
      - SomeCondition
      - Effect: Allow
        Action: secretsmanager:GetSecretValue
        Resource: !Ref OneSecret
      - Effect: Allow
        Action: secretsmanager:GetSecretValue
        Resource: "*"
    - !If [Other, !Ref AWS::NoValue, { Effect: Allow, Action: iam:PassRole, Resource: "*" }]
"#,
    );

    assert_eq!(
        rules(&report),
        vec!["no-destructive-on-star", "no-destructive-on-star"]
    );
    assert_eq!(report.statements, 3);
}
