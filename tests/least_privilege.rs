//! Least privilege of the deployment templates (`infra/*.yaml`): no role keyrotor deploys may
//! run a destructive IAM, API Gateway or Secrets Manager action on every resource (`*`)
//! without a condition that scopes it, and no role may do anything to the audit table but
//! append to it (`dynamodb:PutItem`) and read it (`dynamodb:Query`).
//!
//! The checker reads every policy a role can get: the `Policies` of `AWS::Serverless::Function`
//! and `AWS::Serverless::StateMachine` (inline statements, SAM policy templates, managed policy
//! names), and the inline and managed policies of `AWS::IAM::Role`, `AWS::IAM::Policy` and
//! `AWS::IAM::ManagedPolicy`. Managed policies and SAM policy templates are only accepted from
//! an explicit list of ones known to grant none of the guarded actions; anything else is
//! reported so a reviewer looks at it. The negative tests below run the same checker on small
//! templates that break each rule.

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
    // AWS managed: logs:* only; xray writes only; logs writes only.
    "CloudWatchLogsFullAccess",
    "AWSXrayWriteOnlyAccess",
    "AWSLambdaBasicExecutionRole",
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
}

fn check_template(yaml: &str) -> Report {
    let doc: Value = serde_yaml::from_str(yaml).expect("template is YAML");
    let audit = AuditTable::find(&doc);
    let mut report = Report::default();
    let Some(resources) = doc.get("Resources").and_then(Value::as_mapping) else {
        return report;
    };
    if let Some(globals) = doc.get("Globals").and_then(|g| g.get("Function")) {
        check_sam_policies(
            "Globals.Function",
            globals.get("Policies"),
            &audit,
            &mut report,
        );
    }
    for (id, resource) in resources {
        let id = id.as_str().unwrap_or("?").to_owned();
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        let props = resource.get("Properties");
        match kind {
            "AWS::Serverless::Function" | "AWS::Serverless::StateMachine" => {
                report.inspected.push(id.clone());
                check_sam_policies(
                    &id,
                    props.and_then(|p| p.get("Policies")),
                    &audit,
                    &mut report,
                );
            }
            "AWS::IAM::Role" => {
                report.inspected.push(id.clone());
                let props = props.cloned().unwrap_or(Value::Null);
                for policy in seq(props.get("Policies")) {
                    check_document(&id, policy.get("PolicyDocument"), &audit, &mut report);
                }
                for arn in seq(props.get("ManagedPolicyArns")) {
                    check_managed(&id, arn, &mut report);
                }
            }
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                report.inspected.push(id.clone());
                check_document(
                    &id,
                    props.and_then(|p| p.get("PolicyDocument")),
                    &audit,
                    &mut report,
                );
            }
            _ => {}
        }
    }
    report
}

/// A SAM `Policies` property: a managed policy name, a policy document, a SAM policy template,
/// or a list of those.
fn check_sam_policies(id: &str, policies: Option<&Value>, audit: &AuditTable, report: &mut Report) {
    for policy in seq(policies) {
        match policy {
            Value::Mapping(map) if map.contains_key("Statement") => {
                check_document(id, Some(policy), audit, report)
            }
            Value::Mapping(map) => {
                for (name, args) in map {
                    let name = name.as_str().unwrap_or("?");
                    if !KNOWN_HARMLESS_POLICIES.contains(&name) {
                        let on_audit = audit.is_referenced_by(args);
                        report.violations.push(Violation {
                            resource: id.to_owned(),
                            rule: if on_audit {
                                "audit-append-only"
                            } else {
                                "unknown-policy"
                            },
                            detail: format!("SAM policy template {name} is not known harmless"),
                        });
                    }
                }
            }
            other => check_managed(id, other, report),
        }
    }
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

fn check_document(id: &str, document: Option<&Value>, audit: &AuditTable, report: &mut Report) {
    let Some(document) = document else { return };
    for statement in seq(document.get("Statement")) {
        report.statements += 1;
        check_statement(id, statement, audit, report);
    }
}

fn check_statement(id: &str, statement: &Value, audit: &AuditTable, report: &mut Report) {
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
    let scoped = statement.get("Condition").is_some_and(is_scoping_condition);

    // Rule 1: destructive IAM / API Gateway / Secrets Manager actions need a resource narrower
    // than everything, or a condition that scopes them.
    let unscoped = resources.iter().any(|r| is_unscoped_resource(r));
    if unscoped && !scoped {
        for action in actions.iter().filter(|a| is_destructive(a)) {
            violation(
                "no-destructive-on-star",
                format!("{action} on every resource without a scoping Condition"),
            );
        }
    }

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

/// `*`, or an ARN whose resource part is a bare wildcard (`arn:aws:iam::123:*`).
fn is_unscoped_resource(resource: &Value) -> bool {
    let text = without_substitutions(&render(resource));
    if text == "*" {
        return true;
    }
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    parts.len() == 6 && matches!(parts[5], "*" | "/*" | "")
}

/// `!Sub` text with each `${...}` replaced by `x`, so the colons of `${AWS::Partition}` do not
/// count as ARN separators.
fn without_substitutions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                out.push('x');
                rest = &rest[start + end + 1..];
            }
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

/// A condition that narrows which resources the statement reaches: a resource tag that must be
/// present (or equal something), or the secret's id.
fn is_scoping_condition(condition: &Value) -> bool {
    let Some(operators) = condition.as_mapping() else {
        return false;
    };
    operators.iter().any(|(operator, keys)| {
        let null = operator.as_str() == Some("Null");
        keys.as_mapping().is_some_and(|keys| {
            keys.iter().any(|(key, value)| {
                let key = key.as_str().unwrap_or("");
                let scoping_key = key.contains("ResourceTag/") || key == "secretsmanager:SecretId";
                // Null: "true" means the tag is absent, which scopes nothing.
                scoping_key && (!null || render(value) == "false")
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

fn read(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
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
    ] {
        assert!(
            report.inspected.iter().any(|i| i == id),
            "{id} not inspected"
        );
    }
    assert!(report.statements >= 40, "{report:#?}");
    assert_eq!(report.audit_statements, 6, "{report:#?}");
    assert_eq!(report.violations, vec![], "{report:#?}");
}

#[test]
fn the_member_account_role_is_least_privilege() {
    let report = check_template(&read("infra/member-role.yaml"));

    assert_eq!(report.inspected, vec!["MemberRole".to_owned()]);
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
    let known = function_with(
        "- CloudWatchLogsFullAccess\n- LambdaInvokePolicy: { FunctionName: !Ref Other }\n",
    );

    assert_eq!(rules(&admin), vec!["unknown-policy", "unknown-policy"]);
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
