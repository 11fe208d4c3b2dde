//! Trust boundaries of the deployment templates (issue #20: no weak permission may become a
//! strong one through keyrotor), read from `infra/template.yaml` and `infra/member-role.yaml`
//! as CloudFormation would deploy them: each template is evaluated (parameters with their
//! defaults or given values, pseudo parameters, `!Sub`, `!Ref`, `!GetAtt`, `!If`, `!Join`,
//! `!Split`, conditions) into plain JSON, and the checks compare ARNs, not spellings.
//!
//! What is checked: the member role trusts exactly the central roles that assume it, by ARN
//! and with an external id; no role writes inline user policies (but the respond workflow's
//! containment role, which puts `keyrotor-revoke-sessions` and can be held to no policy
//! name: the one named exception) and users can be given only
//! the migration guard, whose document is the one the code checks; state machines get log
//! delivery, not managed full-access policies; the state and audit tables, the plan bucket,
//! the event bus and the topic deny every writer but keyrotor's own roles; Secrets Manager may
//! invoke the rotation hook only for the rotated secret prefix; every `sts:AssumeRole` stays in
//! the caller's organization; secrets are reached only through keyrotor's tags; access keys
//! are created only for users bound to a secret; the external id never enters an environment;
//! migrated roles live outside keyrotor's path.

use std::collections::{BTreeMap, BTreeSet};

use keyrotor::domain::binding::TAG_API_KEY;
use keyrotor::domain::migration::{
    GUARD_POLICY_NAME, GUARD_POLICY_PATH, ROLE_PATH, guard_policy, guard_policy_arn,
};
use keyrotor::domain::model::{TAG_SECRET, TAG_TYPE};
use keyrotor::domain::policy::EXTERNAL_ID_SECRET_ENV;
use keyrotor::steps::secret_rotation::{TYPE_API_KEY, TYPE_IAM};
use serde_json::{Value as Json, json};
use serde_yaml::Value;

const CENTRAL: &str = "111111111111";
const MEMBER: &str = "222222222222";
const REGION: &str = "eu-west-1";
/// What an evaluated `!Ref AWS::NoValue` leaves behind until its container drops it.
const NO_VALUE: &str = "\u{0}AWS::NoValue";

// ------------------------------------------------------------------------- the evaluator

/// A template as deployed in `account` with `params` (other parameters take their default).
struct Stack {
    doc: Value,
    account: String,
    params: BTreeMap<String, String>,
}

impl Stack {
    fn load(path: &str, account: &str, params: &[(&str, &str)]) -> Self {
        Self::parse(&read(path), account, params)
    }

    fn parse(text: &str, account: &str, params: &[(&str, &str)]) -> Self {
        Self {
            doc: serde_yaml::from_str(text).expect("template is YAML"),
            account: account.to_owned(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn central() -> Self {
        Self::load("infra/template.yaml", CENTRAL, &[])
    }

    fn member() -> Self {
        Self::load(
            "infra/member-role.yaml",
            MEMBER,
            &[
                ("CentralAccountId", CENTRAL),
                ("ExternalId", "shared-external-id"),
            ],
        )
    }

    fn raw(&self, id: &str) -> &Value {
        self.doc
            .get("Resources")
            .and_then(|r| r.get(id))
            .unwrap_or_else(|| panic!("no resource {id}"))
    }

    /// Logical ids of the resources of `kind` that this deployment creates.
    fn ids(&self, kind: &str) -> Vec<String> {
        self.doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .filter(|(_, r)| {
                r.get("Condition")
                    .and_then(Value::as_str)
                    .is_none_or(|c| self.condition(c))
            })
            .map(|(id, _)| id.as_str().unwrap().to_owned())
            .collect()
    }

    fn exists(&self, id: &str) -> bool {
        self.doc
            .get("Resources")
            .and_then(|r| r.get(id))
            .is_some_and(|r| {
                r.get("Condition")
                    .and_then(Value::as_str)
                    .is_none_or(|c| self.condition(c))
            })
    }

    /// A resource's properties, evaluated.
    fn props(&self, id: &str) -> Json {
        self.raw(id)
            .get("Properties")
            .map(|p| self.eval(p))
            .unwrap_or(Json::Null)
    }

    fn param(&self, name: &str) -> Option<Json> {
        let declared = self.doc.get("Parameters").and_then(|p| p.get(name))?;
        let text = match self.params.get(name) {
            Some(v) => v.clone(),
            None => match declared.get("Default") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(other) => panic!("default of {name}: {other:?}"),
                None => panic!("parameter {name} has no default and no value"),
            },
        };
        let list = declared.get("Type").and_then(Value::as_str) == Some("CommaDelimitedList");
        Some(if list {
            Json::Array(text.split(',').map(|s| json!(s)).collect())
        } else {
            json!(text)
        })
    }

    fn condition(&self, name: &str) -> bool {
        let expr = self
            .doc
            .get("Conditions")
            .and_then(|c| c.get(name))
            .unwrap_or_else(|| panic!("no condition {name}"));
        self.eval(expr)
            .as_bool()
            .unwrap_or_else(|| panic!("condition {name} is not a boolean"))
    }

    /// What `!Ref id` gives.
    fn reference(&self, id: &str) -> Json {
        match id {
            "AWS::Partition" => return json!("aws"),
            "AWS::AccountId" => return json!(self.account),
            "AWS::Region" => return json!(REGION),
            "AWS::StackName" => return json!("keyrotor"),
            "AWS::NoValue" => return json!(NO_VALUE),
            _ => {}
        }
        if let Some(value) = self.param(id) {
            return value;
        }
        let kind = self.raw(id).get("Type").and_then(Value::as_str).unwrap();
        let props = self.props(id);
        let text = |key: &str| props[key].as_str().unwrap_or_default().to_owned();
        match kind {
            "AWS::IAM::Role" => json!(text("RoleName")),
            "AWS::IAM::ManagedPolicy" => json!(format!(
                "arn:aws:iam::{}:policy{}{}",
                self.account,
                text("Path"),
                text("ManagedPolicyName")
            )),
            "AWS::SecretsManager::Secret" => json!(format!(
                "arn:aws:secretsmanager:{REGION}:{}:secret:{}-AbCdEf",
                self.account,
                text("Name")
            )),
            "AWS::SNS::Topic" => json!(format!(
                "arn:aws:sns:{REGION}:{}:{}",
                self.account,
                text("TopicName")
            )),
            "AWS::DynamoDB::Table" => json!(text("TableName")),
            "AWS::Logs::LogGroup" => json!(text("LogGroupName")),
            "AWS::Events::EventBus" => json!(text("Name")),
            "AWS::Serverless::Function" => json!(text("FunctionName")),
            _ => json!(format!("<ref {id}>")),
        }
    }

    /// What `!GetAtt id.attribute` gives.
    fn attribute(&self, id: &str, attribute: &str) -> Json {
        let kind = self.raw(id).get("Type").and_then(Value::as_str).unwrap();
        let props = self.props(id);
        let text = |key: &str| props[key].as_str().unwrap_or_default().to_owned();
        let account = &self.account;
        match (kind, attribute) {
            ("AWS::IAM::Role", "Arn") => json!(format!(
                "arn:aws:iam::{account}:role{}{}",
                text("Path"),
                text("RoleName")
            )),
            ("AWS::DynamoDB::Table", "Arn") => json!(format!(
                "arn:aws:dynamodb:{REGION}:{account}:table/{}",
                text("TableName")
            )),
            ("AWS::Events::EventBus", "Arn") => json!(format!(
                "arn:aws:events:{REGION}:{account}:event-bus/{}",
                text("Name")
            )),
            ("AWS::Logs::LogGroup", "Arn") => json!(format!(
                "arn:aws:logs:{REGION}:{account}:log-group:{}:*",
                text("LogGroupName")
            )),
            ("AWS::S3::Bucket", "Arn") => json!(format!("arn:aws:s3:::bucket-{id}")),
            ("AWS::KMS::Key", "Arn") => json!(format!("arn:aws:kms:{REGION}:{account}:key/{id}")),
            ("AWS::Serverless::Function", "Arn") => json!(format!(
                "arn:aws:lambda:{REGION}:{account}:function:{}",
                text("FunctionName")
            )),
            _ => json!(format!("<{id}.{attribute}>")),
        }
    }

    fn sub(&self, body: &str, vars: &serde_json::Map<String, Json>) -> String {
        let mut out = String::new();
        let mut rest = body;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = start + rest[start..].find('}').expect("closed ${");
            let name = &rest[start + 2..end];
            rest = &rest[end + 1..];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
                continue;
            }
            let value = match vars.get(name) {
                Some(v) => v.clone(),
                None => match name.split_once('.') {
                    Some((id, attribute)) => self.attribute(id, attribute),
                    None => self.reference(name),
                },
            };
            out.push_str(
                value
                    .as_str()
                    .unwrap_or_else(|| panic!("${{{name}}}: {value}")),
            );
        }
        out.push_str(rest);
        out
    }

    fn function(&self, name: &str, args: &Value) -> Json {
        let list = |v: &Value| -> Vec<Json> {
            match self.eval(v) {
                Json::Array(items) => items,
                other => panic!("{name}: not a list: {other}"),
            }
        };
        let arg = |i: usize| &args.as_sequence().unwrap_or_else(|| panic!("{name} args"))[i];
        match name {
            "Ref" => self.reference(args.as_str().unwrap()),
            "Fn::GetAtt" => {
                let (id, attribute) = match args {
                    Value::String(s) => s.split_once('.').unwrap(),
                    _ => (arg(0).as_str().unwrap(), arg(1).as_str().unwrap()),
                };
                self.attribute(id, attribute)
            }
            "Fn::Sub" => match args {
                Value::String(body) => json!(self.sub(body, &serde_json::Map::new())),
                _ => {
                    let vars = match self.eval(arg(1)) {
                        Json::Object(map) => map,
                        other => panic!("Fn::Sub variables: {other}"),
                    };
                    json!(self.sub(arg(0).as_str().unwrap(), &vars))
                }
            },
            "Fn::Join" => {
                let delimiter = arg(0).as_str().unwrap();
                let items: Vec<String> = list(arg(1))
                    .iter()
                    .map(|i| i.as_str().unwrap().to_owned())
                    .collect();
                json!(items.join(delimiter))
            }
            "Fn::Split" => {
                let delimiter = arg(0).as_str().unwrap();
                let text = self.eval(arg(1));
                Json::Array(
                    text.as_str()
                        .unwrap()
                        .split(delimiter)
                        .map(|s| json!(s))
                        .collect(),
                )
            }
            "Fn::Select" => {
                let index: usize = match self.eval(arg(0)) {
                    Json::String(s) => s.parse().unwrap(),
                    other => other.as_u64().unwrap() as usize,
                };
                list(arg(1))[index].clone()
            }
            "Fn::If" => {
                if self.condition(arg(0).as_str().unwrap()) {
                    self.eval(arg(1))
                } else {
                    self.eval(arg(2))
                }
            }
            "Fn::Equals" => json!(self.eval(arg(0)) == self.eval(arg(1))),
            "Fn::Not" => json!(!self.eval(arg(0)).as_bool().unwrap()),
            "Fn::And" => json!(list(args).iter().all(|b| b.as_bool().unwrap())),
            "Fn::Or" => json!(list(args).iter().any(|b| b.as_bool().unwrap())),
            "Condition" => json!(self.condition(args.as_str().unwrap())),
            _ => panic!("intrinsic {name} is not evaluated by this test"),
        }
    }

    /// A YAML value as CloudFormation resolves it.
    fn eval(&self, value: &Value) -> Json {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => json!(b),
            Value::Number(n) => serde_json::to_value(n).unwrap(),
            Value::String(s) => json!(s),
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let tag = tag.trim_start_matches('!');
                let name = match tag {
                    "Ref" | "Condition" => tag.to_owned(),
                    other => format!("Fn::{other}"),
                };
                self.function(&name, &tagged.value)
            }
            Value::Sequence(items) => Json::Array(
                items
                    .iter()
                    .map(|i| self.eval(i))
                    .filter(|v| v != NO_VALUE)
                    .collect(),
            ),
            Value::Mapping(map) => {
                if map.len() == 1 {
                    let (key, args) = map.iter().next().unwrap();
                    let key = key.as_str().unwrap_or("");
                    let intrinsic = key == "Ref"
                        || key.starts_with("Fn::")
                        || (key == "Condition" && args.is_string());
                    if intrinsic {
                        return self.function(key, args);
                    }
                }
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let k = match k {
                        Value::String(s) => s.clone(),
                        Value::Null => "Null".to_owned(),
                        other => panic!("key {other:?}"),
                    };
                    let v = self.eval(v);
                    if v != NO_VALUE {
                        out.insert(k, v);
                    }
                }
                Json::Object(out)
            }
        }
    }

    // --------------------------------------------------------------------- who may do what

    /// Every identity policy statement of the deployment, with the logical id it belongs to
    /// and the ARN of the role that receives it (SAM-generated roles have none we can know).
    fn grants(&self) -> Vec<(String, Option<String>, Json)> {
        let mut out = Vec::new();
        for id in self.ids("AWS::IAM::Role") {
            let arn = self.attribute(&id, "Arn").as_str().unwrap().to_owned();
            for policy in as_list(&self.props(&id)["Policies"]) {
                for statement in as_list(&policy["PolicyDocument"]["Statement"]) {
                    out.push((id.clone(), Some(arn.clone()), statement));
                }
            }
        }
        for kind in ["AWS::Serverless::Function", "AWS::Serverless::StateMachine"] {
            for id in self.ids(kind) {
                for policy in as_list(&self.props(&id)["Policies"]) {
                    for statement in as_list(&policy["Statement"]) {
                        out.push((id.clone(), None, statement));
                    }
                }
            }
        }
        for kind in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
            for id in self.ids(kind) {
                for statement in as_list(&self.props(&id)["PolicyDocument"]["Statement"]) {
                    out.push((id.clone(), None, statement));
                }
            }
        }
        out
    }

    /// Allow statements whose actions reach `action` (IAM wildcards honoured).
    fn allowing(&self, action: &str) -> Vec<(String, Option<String>, Json)> {
        self.grants()
            .into_iter()
            .filter(|(_, _, s)| s["Effect"] == "Allow")
            .filter(|(_, _, s)| strings(&s["Action"]).iter().any(|a| glob(a, action)))
            .collect()
    }

    /// The ARNs of the roles allowed any of `actions` on `resource` (exactly that ARN).
    fn roles_allowed(&self, actions: &[&str], resource: &str) -> BTreeSet<String> {
        actions
            .iter()
            .flat_map(|a| self.allowing(a))
            .filter(|(_, _, s)| strings(&s["Resource"]).iter().any(|r| r == resource))
            .map(|(id, arn, _)| arn.unwrap_or_else(|| panic!("{id} grants {actions:?}")))
            .collect()
    }
}

/// A file of the repository. `KEYROTOR_TEMPLATES_ROOT` reads it from another checkout instead
/// (used to check that each test fails on a template that breaks its rule).
fn read(path: &str) -> String {
    let root = std::env::var_os("KEYROTOR_TEMPLATES_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let path = root.join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One item or a list of items, as a list.
fn as_list(value: &Json) -> Vec<Json> {
    match value {
        Json::Null => Vec::new(),
        Json::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// One string or a list of strings.
fn strings(value: &Json) -> Vec<String> {
    as_list(value)
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("not a string: {v}"))
                .to_owned()
        })
        .collect()
}

fn set(items: impl IntoIterator<Item = impl Into<String>>) -> BTreeSet<String> {
    items.into_iter().map(Into::into).collect()
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

fn role_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/keyrotor-service/{name}")
}

/// The one statement of a resource policy with this Sid.
fn statement_with_sid(document: &Json, sid: &str) -> Json {
    let found: Vec<Json> = as_list(&document["Statement"])
        .into_iter()
        .filter(|s| s["Sid"] == sid)
        .collect();
    assert_eq!(found.len(), 1, "statement {sid} in {document:#}");
    found[0].clone()
}

// ------------------------------------------------------------------------- the evaluator works

#[test]
fn the_evaluator_resolves_what_the_checks_rely_on() {
    let stack = Stack::parse(
        r#"
Parameters:
  Name: { Type: String, Default: plain }
  Names: { Type: CommaDelimitedList, Default: "" }
Conditions:
  NoNames: !Equals [!Join ["", !Ref Names], ""]
Resources:
  R:
    Type: AWS::IAM::Role
    Properties: { RoleName: !Sub "r-${Name}", Path: /p/ }
  X:
    Type: Custom
    Properties:
      Arn: !GetAtt R.Arn
      Subbed: !Sub ["${A}/${AWS::AccountId}/${!Literal}", { A: !Ref Name }]
      Listed: !If [NoNames, [a, !Ref AWS::NoValue, b], !Ref Names]
      Split: !Split [",", !Join [",", [x, y]]]
"#,
        CENTRAL,
        &[],
    );
    assert_eq!(
        stack.props("X"),
        json!({
            "Arn": format!("arn:aws:iam::{CENTRAL}:role/p/r-plain"),
            "Subbed": format!("plain/{CENTRAL}/${{Literal}}"),
            "Listed": ["a", "b"],
            "Split": ["x", "y"],
        })
    );
    let given = Stack::parse(
        "Parameters:\n  Names: { Type: CommaDelimitedList, Default: \"\" }\nConditions:\n  NoNames: !Equals [!Join [\"\", !Ref Names], \"\"]\n",
        CENTRAL,
        &[("Names", "a,b")],
    );
    assert!(!given.condition("NoNames"));
}

// ------------------------------------------------------------------------- member role trust

#[test]
fn central_function_roles_have_fixed_names_under_the_service_path() {
    let central = Stack::central();
    let functions = central.ids("AWS::Serverless::Function");
    assert_eq!(functions.len(), 11, "{functions:?}");
    for function in functions {
        let raw = central.raw(&function)["Properties"].clone();
        assert!(
            raw.get("Policies").is_none(),
            "{function}: SAM would generate a role with a random name"
        );
        let role = match raw.get("Role") {
            Some(Value::Tagged(t)) if t.tag == "GetAtt" => t
                .value
                .as_str()
                .unwrap()
                .trim_end_matches(".Arn")
                .to_owned(),
            other => panic!("{function}: Role is {other:?}, not !GetAtt <role>.Arn"),
        };
        let role_props = central.props(&role);
        let name = central.props(&function)["FunctionName"].clone();
        assert_eq!(role_props["Path"], "/keyrotor-service/", "{role}");
        assert_eq!(
            role_props["RoleName"], name,
            "{role}: named after its function"
        );
        assert!(
            central.raw(&role)["Properties"]["RoleName"].is_string(),
            "{role}: a literal name, so other templates can name it"
        );
    }
}

#[test]
fn the_member_role_trusts_exactly_the_central_roles_that_assume_it() {
    let central = Stack::central();
    let member = Stack::member();

    // The central roles that may assume the member role.
    let assumers: BTreeSet<String> = central
        .allowing("sts:AssumeRole")
        .into_iter()
        .filter(|(_, _, s)| {
            strings(&s["Resource"])
                .iter()
                .any(|r| r.contains(":role/keyrotor/"))
        })
        .map(|(id, arn, _)| arn.unwrap_or_else(|| panic!("{id} has no fixed role ARN")))
        .collect();
    assert_eq!(assumers.len(), 5, "{assumers:?}");

    let trust = as_list(&member.props("MemberRole")["AssumeRolePolicyDocument"]["Statement"]);
    assert_eq!(trust.len(), 1, "{trust:#?}");
    let trust = &trust[0];
    assert_eq!(trust["Effect"], "Allow");
    assert_eq!(trust["Action"], "sts:AssumeRole");
    assert_eq!(
        trust["Principal"],
        json!({ "AWS": format!("arn:aws:iam::{CENTRAL}:root") })
    );
    let condition = trust["Condition"].as_object().unwrap();
    assert_eq!(
        set(condition.keys().cloned()),
        set(["ArnEquals", "StringEquals"]),
        "only exact matches: {condition:#?}"
    );
    assert_eq!(
        condition["StringEquals"],
        json!({ "sts:ExternalId": "shared-external-id" })
    );
    let principals = &condition["ArnEquals"]["aws:PrincipalArn"];
    let trusted = set(strings(principals));
    assert_eq!(trusted, assumers);
    assert_eq!(trusted.len(), as_list(principals).len(), "duplicates");
    for arn in &trusted {
        // ArnEquals honours wildcards just as ArnLike does: none may appear.
        assert!(!arn.contains(['*', '?']), "{arn}");
    }

    // Given role ARNs replace the defaults.
    let custom = Stack::load(
        "infra/member-role.yaml",
        MEMBER,
        &[
            ("CentralAccountId", CENTRAL),
            ("ExternalId", "shared-external-id"),
            ("CentralRoleArns", "arn:aws:iam::111111111111:role/x/one"),
        ],
    );
    let trust = &as_list(&custom.props("MemberRole")["AssumeRolePolicyDocument"]["Statement"])[0];
    assert_eq!(
        trust["Condition"]["ArnEquals"]["aws:PrincipalArn"],
        json!(["arn:aws:iam::111111111111:role/x/one"])
    );
}

#[test]
fn every_assume_role_stays_in_the_callers_organization() {
    let mut checked = 0;
    for stack in [Stack::central(), Stack::member()] {
        for (id, _, statement) in stack.allowing("sts:AssumeRole") {
            assert_eq!(
                statement["Condition"]["StringEquals"]["aws:ResourceOrgID"],
                "${aws:PrincipalOrgID}",
                "{id}: {statement:#}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 5);
}

// ------------------------------------------------------------------------- users' policies

#[test]
fn no_role_writes_inline_user_policies_but_the_containment_of_a_leaked_key() {
    for stack in [Stack::central(), Stack::member()] {
        assert!(
            stack.allowing("iam:DeleteUserPolicy").is_empty(),
            "no role removes an inline policy (the revocation stays until a person removes it)"
        );
    }
    assert!(Stack::member().allowing("iam:PutUserPolicy").is_empty());
    // The respond workflow revokes a leaked key's older sessions with an inline deny
    // (keyrotor-revoke-sessions); IAM has no condition key for the policy's name or
    // document, so the grant reaches every user of the account. It is the containment
    // role's alone, and only that action in its statement.
    let found = Stack::central().allowing("iam:PutUserPolicy");
    assert_eq!(found.len(), 1, "{found:#?}");
    let (id, _, statement) = &found[0];
    assert_eq!(id, "RespondContainRole", "{found:#?}");
    assert_eq!(statement["Action"], "iam:PutUserPolicy", "{id}");
    assert_eq!(
        statement["Resource"],
        json!(format!("arn:aws:iam::{CENTRAL}:user/*")),
        "{id}: this account's users, never *"
    );
}

#[test]
fn users_can_be_given_only_the_migration_guard() {
    for (stack, account) in [(Stack::central(), CENTRAL), (Stack::member(), MEMBER)] {
        let guard = guard_policy_arn("aws", account);
        let mut found = 0;
        for action in ["iam:AttachUserPolicy", "iam:DetachUserPolicy"] {
            for (id, _, statement) in stack.allowing(action) {
                assert_eq!(
                    set(strings(&statement["Action"])),
                    set(["iam:AttachUserPolicy", "iam:DetachUserPolicy"]),
                    "{id}: nothing else under this condition"
                );
                assert_eq!(
                    statement["Condition"],
                    json!({ "ArnEquals": { "iam:PolicyARN": guard } }),
                    "{id}"
                );
                found += 1;
            }
        }
        assert_eq!(found, 2, "one statement in the template of {account}");
        // Reading the guard to check its document: that policy only.
        for (id, _, statement) in stack.allowing("iam:GetPolicyVersion") {
            assert_eq!(statement["Resource"], json!(guard), "{id}");
        }
    }
}

#[test]
fn the_guard_policy_is_the_document_the_code_checks() {
    let member_in_central = Stack::load(
        "infra/member-role.yaml",
        CENTRAL,
        &[
            ("CentralAccountId", CENTRAL),
            ("ExternalId", "shared-external-id"),
        ],
    );
    for (stack, account) in [(Stack::central(), CENTRAL), (Stack::member(), MEMBER)] {
        let policies = stack.ids("AWS::IAM::ManagedPolicy");
        let guards: Vec<&String> = policies
            .iter()
            .filter(|id| stack.props(id)["ManagedPolicyName"] == GUARD_POLICY_NAME)
            .collect();
        assert_eq!(guards.len(), 1, "{policies:?}");
        let props = stack.props(guards[0]);
        assert_eq!(props["Path"], GUARD_POLICY_PATH);
        assert_eq!(props["PolicyDocument"], guard_policy());
        assert_eq!(
            stack.reference(guards[0]),
            json!(guard_policy_arn("aws", account))
        );
    }
    // The member stack leaves the central account's guard to the central stack.
    assert!(!member_in_central.exists("MigrationGuardPolicy"));
}

#[test]
fn access_keys_are_created_only_for_users_bound_to_a_secret() {
    let stack = Stack::central();
    let found = stack.allowing("iam:CreateAccessKey");
    // The rotation hook's, and the respond workflow's containment (which replaces a leaked
    // key through the hook's own path).
    assert_eq!(found.len(), 2, "{found:#?}");
    for (id, _, statement) in found {
        assert_eq!(
            statement["Condition"],
            json!({ "StringLike": {
                format!("iam:ResourceTag/{TAG_SECRET}"):
                    format!("arn:aws:secretsmanager:*:{CENTRAL}:secret:*")
            }}),
            "{id}"
        );
    }
    assert!(Stack::member().allowing("iam:CreateAccessKey").is_empty());
}

#[test]
fn migrated_roles_live_outside_keyrotors_path() {
    for (stack, account) in [(Stack::central(), CENTRAL), (Stack::member(), MEMBER)] {
        for (id, _, statement) in stack.grants() {
            for resource in strings(&statement["Resource"]) {
                assert!(
                    !resource.contains(":role/keyrotor/*") && !resource.contains(":role/*"),
                    "{id}: {resource} reaches keyrotor's own roles"
                );
            }
        }
        let get_role: Vec<String> = stack
            .allowing("iam:GetRole")
            .iter()
            .flat_map(|(_, _, s)| strings(&s["Resource"]))
            .collect();
        assert_eq!(
            get_role,
            vec![format!("arn:aws:iam::{account}:role{ROLE_PATH}*")]
        );
    }
    assert_eq!(Stack::member().props("MemberRole")["Path"], "/keyrotor/");
}

// ------------------------------------------------------------------------- secrets

/// The values a statement's condition requires of a secret tag (`secretsmanager:` or
/// `aws:ResourceTag/...` under StringEquals), if any.
fn required_tag(statement: &Json, tag: &str) -> Option<BTreeSet<String>> {
    ["secretsmanager", "aws"].iter().find_map(|prefix| {
        let value = &statement["Condition"]["StringEquals"][format!("{prefix}:ResourceTag/{tag}")];
        (!value.is_null()).then(|| set(strings(value)))
    })
}

fn requires_tag_present(statement: &Json, tag: &str) -> bool {
    ["secretsmanager", "aws"].iter().any(|prefix| {
        statement["Condition"]["Null"][format!("{prefix}:ResourceTag/{tag}")] == "false"
    })
}

#[test]
fn secrets_are_reached_only_through_keyrotors_tags() {
    let types = set([TYPE_IAM, TYPE_API_KEY]);
    let writes = [
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ];
    for stack in [Stack::central(), Stack::member()] {
        let external_id = stack
            .exists("MemberExternalIdSecret")
            .then(|| stack.reference("MemberExternalIdSecret"));
        let mut checked = 0;
        for (id, _, statement) in stack.grants() {
            if statement["Effect"] != "Allow" {
                continue;
            }
            let actions = strings(&statement["Action"]);
            let reaches_secrets = actions.iter().any(|a| {
                a.starts_with("secretsmanager:")
                    && !a.eq_ignore_ascii_case("secretsmanager:ListSecrets")
            });
            if !reaches_secrets || Some(&statement["Resource"]) == external_id.as_ref() {
                continue;
            }
            checked += 1;
            let required = required_tag(&statement, TAG_TYPE)
                .unwrap_or_else(|| panic!("{id}: {statement:#} needs {TAG_TYPE}"));
            assert!(required.is_subset(&types), "{id}: {required:?}");
            let writes_secrets = actions.iter().any(|a| writes.iter().any(|w| glob(a, w)));
            if writes_secrets && required.contains(TYPE_API_KEY) {
                // API key secrets are written only when they name the key they hold, one type
                // per statement so the reverse binding cannot be skipped by the other type.
                assert_eq!(required, set([TYPE_API_KEY]), "{id}");
                assert!(
                    requires_tag_present(&statement, TAG_API_KEY),
                    "{id}: {statement:#}"
                );
            }
        }
        assert!(checked >= 2, "{checked}");
    }
}

// ------------------------------------------------------------------------- state machines

#[test]
fn state_machines_get_log_delivery_not_managed_policies() {
    let delivery = set([
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    ]);
    let stack = Stack::central();
    let machines = stack.ids("AWS::Serverless::StateMachine");
    // The sweep, the API key rotation, the response to a leaked key.
    assert_eq!(machines.len(), 3);
    for id in machines {
        let mut logs = BTreeSet::new();
        for policy in as_list(&stack.props(&id)["Policies"]) {
            match &policy {
                Json::String(name) => panic!("{id}: managed policy {name}"),
                Json::Object(map) if map.contains_key("Statement") => {
                    for statement in as_list(&policy["Statement"]) {
                        logs.extend(
                            strings(&statement["Action"])
                                .into_iter()
                                .filter(|a| a.starts_with("logs:")),
                        );
                    }
                }
                Json::Object(map) => {
                    for name in map.keys() {
                        assert!(
                            ["LambdaInvokePolicy", "StepFunctionsExecutionPolicy"]
                                .contains(&name.as_str()),
                            "{id}: SAM policy template {name}"
                        );
                    }
                }
                other => panic!("{id}: {other}"),
            }
        }
        assert_eq!(logs, delivery, "{id}");
    }
}

// ------------------------------------------------------------------------- resource policies

const TABLE_WRITES: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
];

/// A Deny statement for every principal (`Principal: "*"`) on `resource`.
fn assert_denies_everyone(statement: &Json, resource: &str) {
    assert_eq!(statement["Effect"], "Deny", "{statement:#}");
    assert_eq!(statement["Principal"], "*", "{statement:#}");
    assert_eq!(statement["Resource"], json!(resource), "{statement:#}");
}

/// The principals a Deny statement exempts: its whole condition must be this one list.
fn exempted(statement: &Json) -> BTreeSet<String> {
    let condition = statement["Condition"].as_object().expect("a condition");
    assert_eq!(
        set(condition.keys().cloned()),
        set(["ArnNotEquals"]),
        "{statement:#}"
    );
    let arns = strings(&condition["ArnNotEquals"]["aws:PrincipalArn"]);
    for arn in &arns {
        assert!(!arn.contains(['*', '?']), "{arn}");
    }
    set(arns)
}

#[test]
fn the_state_table_denies_every_writer_but_keyrotors_writers() {
    let stack = Stack::central();
    let table = stack.attribute("StateTable", "Arn");
    let table = table.as_str().unwrap();
    let writers = stack.roles_allowed(TABLE_WRITES, table);
    assert_eq!(
        writers,
        set([
            "keyrotor-iam-keys",
            "keyrotor-api-key",
            "keyrotor-migration",
            "keyrotor-certs",
            "keyrotor-secret-rotation",
            "keyrotor-respond-contain"
        ]
        .map(|n| role_arn(CENTRAL, n)))
    );

    let policy = &stack.props("StateTable")["ResourcePolicy"]["PolicyDocument"];
    let deny = statement_with_sid(policy, "OnlyKeyrotorWrites");
    assert_denies_everyone(&deny, table);
    assert_eq!(
        set(strings(&deny["Action"])),
        set(TABLE_WRITES.iter().copied())
    );
    assert_eq!(exempted(&deny), writers);
}

#[test]
fn the_audit_table_is_append_only_and_only_keyrotor_appends() {
    let stack = Stack::central();
    let table = stack.attribute("AuditTable", "Arn");
    let table = table.as_str().unwrap();
    let appenders = stack.roles_allowed(&["dynamodb:PutItem"], table);
    // Six, and the respond workflow's decode, contain and investigate roles.
    assert_eq!(appenders.len(), 9, "{appenders:?}");
    assert!(
        stack
            .roles_allowed(
                &[
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem"
                ],
                table
            )
            .is_empty()
    );

    let policy = &stack.props("AuditTable")["ResourcePolicy"]["PolicyDocument"];
    let append_only = statement_with_sid(policy, "AppendOnly");
    assert_denies_everyone(&append_only, table);
    assert!(
        append_only.get("Condition").is_none(),
        "no one may change a record"
    );
    assert_eq!(
        set(strings(&append_only["Action"])),
        set([
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:PartiQLUpdate",
            "dynamodb:PartiQLDelete",
        ])
    );
    let appends = statement_with_sid(policy, "OnlyKeyrotorAppends");
    assert_denies_everyone(&appends, table);
    assert_eq!(
        set(strings(&appends["Action"])),
        set(["dynamodb:PutItem", "dynamodb:PartiQLInsert"])
    );
    assert_eq!(exempted(&appends), appenders);
}

#[test]
fn only_the_plan_function_writes_plans() {
    let stack = Stack::central();
    let bucket = stack.attribute("PlanItemsBucket", "Arn");
    let objects = format!("{}/*", bucket.as_str().unwrap());
    let plan = role_arn(CENTRAL, "keyrotor-plan");
    let writers: BTreeSet<String> = stack
        .allowing("s3:PutObject")
        .into_iter()
        .map(|(id, arn, _)| arn.unwrap_or(id))
        .collect();
    assert_eq!(writers, set([plan.clone()]));

    let policies: Vec<String> = stack
        .ids("AWS::S3::BucketPolicy")
        .into_iter()
        .filter(|id| stack.props(id)["Bucket"] == stack.reference("PlanItemsBucket"))
        .collect();
    assert_eq!(policies.len(), 1);
    let deny = statement_with_sid(
        &stack.props(&policies[0])["PolicyDocument"],
        "OnlyThePlanWritesPlans",
    );
    assert_denies_everyone(&deny, &objects);
    assert_eq!(deny["Action"], "s3:PutObject");
    assert_eq!(exempted(&deny), set([plan]));
}

#[test]
fn only_keyrotor_puts_events_on_its_own_bus() {
    let stack = Stack::central();
    let buses = stack.ids("AWS::Events::EventBus");
    assert_eq!(buses, vec!["EventBus"]);
    let props = stack.props("EventBus");
    assert_eq!(props["Name"], "keyrotor");
    let bus = stack.attribute("EventBus", "Arn");
    let bus = bus.as_str().unwrap();

    // Every PutEvents grant names this bus and nothing else.
    let putters: Vec<(String, Option<String>, Json)> = stack.allowing("events:PutEvents");
    for (id, _, statement) in &putters {
        assert_eq!(statement["Resource"], json!(bus), "{id}");
    }
    let putters: BTreeSet<String> = putters
        .into_iter()
        .map(|(_, arn, _)| arn.unwrap())
        .collect();
    // Six, and the respond workflow's contain and notify roles.
    assert_eq!(putters.len(), 8, "{putters:?}");

    let deny = statement_with_sid(&props["Policy"], "OnlyKeyrotorPutsEvents");
    assert_denies_everyone(&deny, bus);
    assert_eq!(deny["Action"], "events:PutEvents");
    assert_eq!(exempted(&deny), putters);
}

#[test]
fn only_keyrotor_its_bus_rules_and_its_alarms_publish_notifications() {
    let stack = Stack::central();
    let topic = stack.reference("NotificationTopic");
    let topic = topic.as_str().unwrap();
    let publishers = stack.roles_allowed(&["sns:Publish"], topic);
    // Six, and the respond workflow's contain and notify roles.
    assert_eq!(publishers.len(), 8, "{publishers:?}");

    let policies: Vec<String> = stack
        .ids("AWS::SNS::TopicPolicy")
        .into_iter()
        .filter(|id| strings(&stack.props(id)["Topics"]) == [topic])
        .collect();
    assert_eq!(policies.len(), 1);
    let document = &stack.props(&policies[0])["PolicyDocument"];

    // Services are allowed only from this account, for keyrotor's rules and alarms.
    let mut services = BTreeSet::new();
    for statement in as_list(&document["Statement"]) {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let service = statement["Principal"]["Service"]
            .as_str()
            .unwrap_or_else(|| panic!("only service principals are allowed here: {statement:#}"));
        assert_eq!(statement["Action"], "sns:Publish");
        assert_eq!(statement["Resource"], json!(topic));
        assert_eq!(
            statement["Condition"]["StringEquals"]["aws:SourceAccount"],
            CENTRAL
        );
        let source = statement["Condition"]["ArnLike"]["aws:SourceArn"]
            .as_str()
            .unwrap();
        let expected = match service {
            "events.amazonaws.com" => format!("arn:aws:events:{REGION}:{CENTRAL}:rule/keyrotor/*"),
            "cloudwatch.amazonaws.com" => {
                format!("arn:aws:cloudwatch:{REGION}:{CENTRAL}:alarm:keyrotor-*")
            }
            other => panic!("service {other} may publish"),
        };
        assert_eq!(source, expected);
        services.insert(service.to_owned());
    }

    // Everyone else is denied.
    let deny = statement_with_sid(document, "OnlyKeyrotorPublishes");
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Principal"], "*");
    assert_eq!(deny["Action"], "sns:Publish");
    assert_eq!(deny["Resource"], json!(topic));
    let condition = deny["Condition"].as_object().unwrap();
    assert_eq!(
        set(condition.keys().cloned()),
        set(["ArnNotEquals", "StringNotEquals"])
    );
    assert_eq!(
        set(strings(&condition["ArnNotEquals"]["aws:PrincipalArn"])),
        publishers
    );
    assert_eq!(
        set(strings(
            &condition["StringNotEquals"]["aws:PrincipalServiceName"]
        )),
        services
    );
    // Alarms publish here, and they are all keyrotor-*.
    for alarm in stack.ids("AWS::CloudWatch::Alarm") {
        let name = stack.props(&alarm)["AlarmName"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(name.starts_with("keyrotor-"), "{name}");
    }
}

#[test]
fn secrets_manager_invokes_the_hook_only_for_the_rotated_prefix() {
    let stack = Stack::central();
    let hook = stack.reference("SecretRotationFunction");
    let permissions: Vec<Json> = stack
        .ids("AWS::Lambda::Permission")
        .iter()
        .map(|id| stack.props(id))
        .filter(|p| p["FunctionName"] == hook)
        .collect();
    assert_eq!(permissions.len(), 1, "{permissions:#?}");
    let permission = &permissions[0];
    let prefix = format!("arn:aws:secretsmanager:{REGION}:{CENTRAL}:secret:keyrotor/");
    assert_eq!(permission["Principal"], "secretsmanager.amazonaws.com");
    assert_eq!(permission["SourceAccount"], CENTRAL);
    assert_eq!(permission["SourceArn"], json!(format!("{prefix}*")));

    // The hook's own role reaches only secrets under the same prefix.
    for (id, _, statement) in stack.grants() {
        if id != "SecretRotationRole" {
            continue;
        }
        let actions = strings(&statement["Action"]);
        if actions.iter().any(|a| a.starts_with("secretsmanager:")) {
            for resource in strings(&statement["Resource"]) {
                assert!(resource.starts_with(&prefix), "{resource}");
            }
        }
    }
}

// ------------------------------------------------------------------------- the external id

#[test]
fn the_external_id_never_enters_an_environment() {
    const VALUE: &str = "a-shared-external-id";
    for name in ["PolicyToml", "MemberExternalId"] {
        assert_eq!(
            Stack::central().doc["Parameters"][name]["NoEcho"],
            Value::Bool(true),
            "{name}"
        );
    }
    let with = Stack::load(
        "infra/template.yaml",
        CENTRAL,
        &[("MemberExternalId", VALUE)],
    );
    let without = Stack::central();

    let secret = with.props("MemberExternalIdSecret");
    assert_eq!(secret["Name"], "keyrotor/member-external-id");
    assert_eq!(secret["SecretString"], VALUE);
    let arn = with.reference("MemberExternalIdSecret");
    assert!(!without.exists("MemberExternalIdSecret"));

    // The functions whose role assumes the member role get the secret's ARN and may read it.
    let assumers: BTreeSet<String> = with
        .allowing("sts:AssumeRole")
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(assumers.len(), 5);
    for function in with.ids("AWS::Serverless::Function") {
        let role = match &with.raw(&function)["Properties"]["Role"] {
            Value::Tagged(t) => t
                .value
                .as_str()
                .unwrap()
                .trim_end_matches(".Arn")
                .to_owned(),
            other => panic!("{other:?}"),
        };
        for (stack, expected) in [(&with, Some(&arn)), (&without, None)] {
            let env = &stack.props(&function)["Environment"]["Variables"][EXTERNAL_ID_SECRET_ENV];
            // Statements of this role that read one secret by its exact ARN.
            let readers: Vec<Json> = stack
                .allowing("secretsmanager:GetSecretValue")
                .into_iter()
                .filter(|(id, _, _)| *id == role)
                .map(|(_, _, s)| s["Resource"].clone())
                .filter(|r| !strings(r).iter().any(|r| r.contains('*')))
                .collect();
            if assumers.contains(&role) && expected.is_some() {
                assert_eq!(Some(env), expected, "{function}");
                assert_eq!(readers.iter().collect::<Vec<_>>(), vec![&arn], "{role}");
            } else {
                assert!(env.is_null(), "{function}: {env}");
                assert!(readers.is_empty(), "{role}");
            }
        }
    }
    // Nothing that reaches a function's configuration holds the value.
    for function in with.ids("AWS::Serverless::Function") {
        let props = with.props(&function).to_string();
        assert!(!props.contains(VALUE), "{function}");
    }
    let globals = with.eval(&with.doc["Globals"]).to_string();
    assert!(!globals.contains(VALUE));
    // Of everything the stack deploys, only the secret holds the value.
    let holders: Vec<String> = with.doc["Resources"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|id| id.as_str().unwrap().to_owned())
        .filter(|id| with.exists(id))
        .filter(|id| with.props(id).to_string().contains(VALUE))
        .collect();
    assert_eq!(holders, vec!["MemberExternalIdSecret"]);
}

// ------------------------------------------------------------------------- the respond rules

/// Whether `event` matches an EventBridge `pattern` (the subset the template uses: exact
/// values, `prefix`, `exists`, nested objects; an array in the event matches when any of
/// its elements does).
fn matches_pattern(pattern: &Json, event: Option<&Json>) -> bool {
    match pattern {
        Json::Object(fields) => fields.iter().all(|(name, inner)| {
            let value = event.and_then(|e| e.get(name));
            match inner {
                Json::Object(_) => matches_pattern(inner, value),
                Json::Array(alternatives) => alternatives.iter().any(|a| matches_one(a, value)),
                other => panic!("pattern field {name}: {other} is not an array or an object"),
            }
        }),
        other => panic!("pattern {other} is not an object"),
    }
}

fn matches_one(alternative: &Json, value: Option<&Json>) -> bool {
    if let Some(Json::Array(items)) = value {
        return items.iter().any(|i| matches_one(alternative, Some(i)));
    }
    match alternative {
        Json::Object(rule) => match (rule.get("prefix"), rule.get("exists")) {
            (Some(prefix), None) => value
                .and_then(Json::as_str)
                .zip(prefix.as_str())
                .is_some_and(|(v, p)| v.starts_with(p)),
            (None, Some(exists)) => exists.as_bool() == Some(value.is_some()),
            _ => panic!("unsupported pattern rule {alternative}"),
        },
        scalar => value == Some(scalar),
    }
}

fn example_event(name: &str) -> Json {
    serde_json::from_str(&read(&format!("examples/events/{name}"))).unwrap()
}

/// The names of the respond machine's rules that `event` matches.
fn respond_rules_matching(stack: &Stack, event: &Json) -> Vec<String> {
    let events = &stack.props("RespondStateMachine")["Events"];
    events
        .as_object()
        .unwrap()
        .iter()
        .inspect(|(name, rule)| assert_eq!(rule["Type"], "EventBridgeRule", "{name}"))
        .filter(|(_, rule)| matches_pattern(&rule["Properties"]["Pattern"], Some(event)))
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn the_respond_rules_start_the_machine_for_each_kind_of_exposure_event_and_no_other() {
    let stack = Stack::central();
    // The example events as EventBridge delivers them: each starts exactly one rule.
    for (file, rule) in [
        ("health-credentials-exposed.json", "HealthCredentialRisk"),
        ("health-iam-quarantine.json", "HealthCredentialRisk"),
        ("guardduty-finding.json", "GuardDutyAccessKeyFinding"),
        (
            "cloudtrail-quarantine-attach.json",
            "QuarantinePolicyAttached",
        ),
    ] {
        assert_eq!(
            respond_rules_matching(&stack, &example_event(file)),
            vec![rule],
            "{file}"
        );
    }
    // Every risk code of the issue.
    let mut health = example_event("health-credentials-exposed.json");
    for code in [
        "AWS_RISK_CREDENTIALS_EXPOSED",
        "AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED",
        "AWS_RISK_CREDENTIALS_COMPROMISED",
        "AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED",
        "AWS_RISK_IAM_QUARANTINE",
    ] {
        health["detail"]["eventTypeCode"] = json!(code);
        assert_eq!(respond_rules_matching(&stack, &health).len(), 1, "{code}");
    }
    // Not exposures: another Health event, a GuardDuty finding about a session's key or
    // with no key, another managed policy attached, another IAM call.
    health["detail"]["eventTypeCode"] = json!("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED");
    let mut session = example_event("guardduty-finding.json");
    session["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] =
        json!("ASIAIOSFODNN7EXAMPLE");
    let mut no_key = example_event("guardduty-finding.json");
    no_key["detail"]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("accessKeyDetails");
    let mut other_policy = example_event("cloudtrail-quarantine-attach.json");
    other_policy["detail"]["requestParameters"]["policyArn"] =
        json!("arn:aws:iam::aws:policy/ReadOnlyAccess");
    let mut other_call = example_event("cloudtrail-quarantine-attach.json");
    other_call["detail"]["eventName"] = json!("DetachUserPolicy");
    for (what, event) in [
        ("another Health event", health),
        ("a session key", session),
        ("a finding without a key", no_key),
        ("another policy", other_policy),
        ("another call", other_call),
    ] {
        assert_eq!(
            respond_rules_matching(&stack, &event),
            Vec::<String>::new(),
            "{what}"
        );
    }
}
