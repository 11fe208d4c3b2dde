//! Seeding the emulator: users with keys, API keys in usage plans, and the secrets that
//! hold them, tagged the way keyrotor finds them.
//!
//! Each helper makes one thing through the real SDK and returns its identifiers (a key's
//! secret only where the test needs to call AWS with it). The clock is the caller's: move
//! it first (see [`super::timeline`]) when the creation date matters.

use chrono::{DateTime, Datelike, Utc};
use serde_json::json;

use super::{REGION, World};

/// An IAM tag.
pub fn iam_tag(key: &str, value: &str) -> aws_sdk_iam::types::Tag {
    aws_sdk_iam::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("a tag has a key and a value")
}

/// A Secrets Manager tag.
pub fn sm_tag(key: &str, value: &str) -> aws_sdk_secretsmanager::types::Tag {
    aws_sdk_secretsmanager::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
}

/// An access key as CreateAccessKey returned it.
#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub secret: String,
}

/// User `name` with `tags`.
pub async fn user(iam: &aws_sdk_iam::Client, name: &str, tags: &[(&str, &str)]) {
    let mut create = iam.create_user().user_name(name);
    if !tags.is_empty() {
        create = create.set_tags(Some(tags.iter().map(|(k, v)| iam_tag(k, v)).collect()));
    }
    create.send().await.expect("create the user");
}

/// A new access key of `user`.
pub async fn access_key(iam: &aws_sdk_iam::Client, user: &str) -> Key {
    let out = iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .expect("create the access key");
    let key = out.access_key().expect("the new key");
    Key {
        id: key.access_key_id().to_owned(),
        secret: key.secret_access_key().to_owned(),
    }
}

/// User `name` with `tags` and one access key.
pub async fn user_with_key(iam: &aws_sdk_iam::Client, name: &str, tags: &[(&str, &str)]) -> Key {
    user(iam, name, tags).await;
    access_key(iam, name).await
}

/// User `user` with one key, stored in secret `secret` (tagged `keyrotor:type` =
/// `iam-access-key`), and the user tagged `keyrotor:secret` = the secret's ARN: both halves
/// of the binding the rotation hook checks. Returns the key.
pub async fn user_with_bound_secret(
    iam: &aws_sdk_iam::Client,
    secrets: &aws_sdk_secretsmanager::Client,
    user: &str,
    secret: &str,
) -> Key {
    iam.create_user()
        .user_name(user)
        .send()
        .await
        .expect("create the user");
    let key = access_key(iam, user).await;
    let created = secrets
        .create_secret()
        .name(secret)
        .secret_string(
            json!({"userName": user, "accessKeyId": key.id, "secretAccessKey": key.secret})
                .to_string(),
        )
        .tags(sm_tag("keyrotor:type", "iam-access-key"))
        .send()
        .await
        .expect("create the secret");
    // The user names the secret that may hold its keys (the binding's other half).
    iam.tag_user()
        .user_name(user)
        .tags(iam_tag(
            "keyrotor:secret",
            created.arn().expect("the secret's ARN"),
        ))
        .send()
        .await
        .expect("tag the user");
    key
}

/// An enabled API key `name` with `tags`; returns its id and value.
pub async fn api_key(
    gateway: &aws_sdk_apigateway::Client,
    name: &str,
    tags: &[(&str, &str)],
) -> (String, String) {
    let mut create = gateway.create_api_key().name(name).enabled(true);
    for (k, v) in tags {
        create = create.tags(*k, *v);
    }
    let key = create.send().await.expect("create the API key");
    (
        key.id().expect("the key's id").to_owned(),
        key.value().expect("the key's value").to_owned(),
    )
}

/// Usage plan `name` with API key `key` in it; returns the plan's id.
pub async fn usage_plan_with(
    gateway: &aws_sdk_apigateway::Client,
    name: &str,
    key: &str,
) -> String {
    let plan = gateway
        .create_usage_plan()
        .name(name)
        .send()
        .await
        .expect("create the usage plan");
    let plan = plan.id().expect("the plan's id").to_owned();
    gateway
        .create_usage_plan_key()
        .usage_plan_id(&plan)
        .key_id(key)
        .key_type("API_KEY")
        .send()
        .await
        .expect("add the key to the plan");
    plan
}

/// Secret `name` holding `body`, with `tags` in that order; returns its ARN.
pub async fn secret(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    body: &str,
    tags: &[(&str, &str)],
) -> String {
    let mut create = secrets.create_secret().name(name).secret_string(body);
    for (k, v) in tags {
        create = create.tags(sm_tag(k, v));
    }
    let out = create.send().await.expect("create the secret");
    out.arn().expect("the secret's ARN").to_owned()
}

/// Secret `name` holding API key `key` and its `value` (`{"apiKeyId", "value"}`), with
/// `tags` in that order; returns its ARN.
pub async fn api_key_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    key: &str,
    value: &str,
    tags: &[(&str, &str)],
) -> String {
    let body = json!({"apiKeyId": key, "value": value}).to_string();
    secret(secrets, name, &body, tags).await
}

/// An STS client that signs with the given credentials (a user's key, or a role session's
/// with its `token`): what a workload holding them would call.
pub async fn sts_as(
    world: &World,
    id: &str,
    secret: &str,
    token: Option<&str>,
) -> aws_sdk_sts::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(&world.endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            id,
            secret,
            token.map(str::to_owned),
            None,
            "tests",
        ))
        .load()
        .await;
    aws_sdk_sts::Client::new(&config)
}

/// The external id the tests' member roles demand (and their policies name).
pub const EXTERNAL_ID: &str = "keyrotor-test-external-id";

/// The member role as infra/member-role.yaml makes it in `world` (`KeyRotorMember`, path
/// `/keyrotor/`), trusting account `central` with [`EXTERNAL_ID`].
pub async fn member_role(world: &World, central: &str) {
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{central}:root")},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
        }]
    });
    aws_sdk_iam::Client::new(&world.sdk().await)
        .create_role()
        .role_name("KeyRotorMember")
        .path("/keyrotor/")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("create the member role");
}

/// A self-signed certificate for `domain` (also its common name), valid from `not_before`
/// to `not_after` (dates, UTC), imported into `world`'s ACM, tagged `owner` when given;
/// returns its ARN. moto refuses a certificate that is not valid at import time: move the
/// emulator's clock into the validity first.
pub async fn certificate(
    world: &World,
    domain: &str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    owner: Option<&str>,
) -> String {
    let ymd = |t: DateTime<Utc>| rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8);
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let mut params =
        rcgen::CertificateParams::new(vec![domain.to_owned()]).expect("a valid domain");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, domain);
    params.not_before = ymd(not_before);
    params.not_after = ymd(not_after);
    let cert = params.self_signed(&key).expect("a self-signed certificate");
    let mut import = aws_sdk_acm::Client::new(&world.sdk().await)
        .import_certificate()
        .certificate(aws_sdk_acm::primitives::Blob::new(cert.pem()))
        .private_key(aws_sdk_acm::primitives::Blob::new(key.serialize_pem()));
    if let Some(owner) = owner {
        import = import.tags(
            aws_sdk_acm::types::Tag::builder()
                .key("owner")
                .value(owner)
                .build()
                .expect("a tag has a key and a value"),
        );
    }
    let out = import.send().await.expect("import the certificate");
    out.certificate_arn()
        .expect("the certificate's ARN")
        .to_owned()
}
