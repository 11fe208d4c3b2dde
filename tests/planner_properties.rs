//! Property tests for the pure planner, `keyrotor::domain::plan::plan`.
//!
//! Every case generates one account: IAM users with their access keys, API Gateway keys with
//! (or without) their Secrets Manager secrets, ACM certificates, a planning time around
//! 2026-11-25, a set of kinds and a policy file. The plan is then checked against the safety
//! rules. The checks are written here from the generated inputs and the policy as it was
//! written, rather than by calling the scope functions the planner itself uses, so a mistake
//! in either one shows up.
//!
//! Failing cases are not saved under `proptest-regressions/`; when one fails, proptest
//! prints the shrunk scenario (inventory, time, policy text and kinds) in the test output.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use keyrotor::domain::action::{Action, ActionType};
use keyrotor::domain::inventory::Inventory;
use keyrotor::domain::lifecycle::{KeyRecord, Stage};
use keyrotor::domain::model::{
    AccessKey, AccessKeyId, AccountId, ApiKey, CertType, Certificate, IamUser, KeyStatus, Kind,
    LastUsed, Secret, TAG_EXEMPT, TAG_MIGRATE_TO, TAG_OWNER, TAG_SECRET, Tags,
};
use keyrotor::domain::plan::{Plan, plan};
use keyrotor::domain::policy::Policy;
use proptest::prelude::*;
use proptest::sample::{Index, select, subsequence};
use proptest::test_runner::{RngAlgorithm, TestCaseError};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const DAY: i64 = 86_400;
const CASES: u32 = 256;

const PATHS: &[&str] = &["/", "/apps/", "/service/", "/legacy/"];
const API_NAME_PREFIXES: &[&str] = &["svc-", "partner-", "legacy-", ""];
/// `keyrotor:exempt` values that are not dates.
const UNREADABLE: &[&str] = &[
    "forever",
    "",
    "never",
    "permanent",
    "until further notice",
    "2026-02-30",
    "2026-13-01",
    "2026/12/31",
    "31-12-2026",
    "yes",
];
const RENEWAL_STATUSES: &[&str] = &[
    "PENDING_AUTO_RENEWAL",
    "PENDING_VALIDATION",
    "SUCCESS",
    "FAILED",
];

// ---------------------------------------------------------------------------------------
// Generated inputs, before they are turned into an inventory and a policy.
// ---------------------------------------------------------------------------------------

/// A `keyrotor:exempt` tag.
#[derive(Debug, Clone)]
enum Exempt {
    /// `YYYY-MM-DD`, this many days after the planning date (negative: before it).
    Date(i64),
    /// A value that is not a date.
    Unreadable(&'static str),
}

#[derive(Debug, Clone)]
struct KeySpec {
    id_noise: String,
    active: bool,
    /// Seconds before `now`.
    created_ago: i64,
    /// Seconds before `now`; capped at `created_ago`.
    last_used_ago: Option<i64>,
    /// keyrotor's lifecycle record: stage and seconds before `now` it was entered. Any
    /// stage at any time, including ones a correct sweep would never write: the planner must
    /// stay safe whatever the state table says.
    record: Option<(Stage, i64)>,
}

#[derive(Debug, Clone)]
struct UserSpec {
    name: String,
    path: &'static str,
    exempt: Option<Exempt>,
    owner: bool,
    migrate_to: bool,
    team: Option<&'static str>,
    is_root: bool,
    keys: Vec<KeySpec>,
}

/// What an API key's `keyrotor:secret` tag holds.
#[derive(Debug, Clone)]
enum SecretTag {
    Absent,
    /// Present but empty or blank: the key is not managed.
    Blank(&'static str),
    /// The secret's name.
    Name,
    /// The secret's ARN.
    Arn,
}

#[derive(Debug, Clone)]
struct ApiKeySpec {
    prefix: &'static str,
    secret_tag: SecretTag,
    secret_exists: bool,
    exempt: Option<Exempt>,
    enabled: bool,
    created_ago: i64,
    updated: bool,
    usage_plans: usize,
    owner: bool,
}

#[derive(Debug, Clone)]
struct CertSpec {
    /// Seconds from `now` to NotAfter (negative: expired); `None` for a never-issued one.
    expires_in: Option<i64>,
    cert_type: CertType,
    exempt: Option<Exempt>,
    in_use: bool,
    ineligible: bool,
    renewal_status: Option<&'static str>,
    owner: bool,
}

#[derive(Debug, Clone)]
struct PolicySpec {
    /// Use `Policy::default()` and ignore everything else.
    defaults: bool,
    /// Users (picked from the generated ones) listed in break_glass, by name or by ARN.
    break_glass: Vec<(Index, bool)>,
    /// Also list a name that matches no user.
    break_glass_stranger: bool,
    apps_only: bool,
    require_team: bool,
    migration: bool,
    max_age_days: u32,
    unused_days: u32,
    warn_days: u32,
    delete_after_days: u32,
    api_max_age_days: u32,
    grace_days: u32,
    name_prefixes: Vec<&'static str>,
    ladder_days: Vec<u32>,
}

// ---------------------------------------------------------------------------------------
// A generated case, and what its policy says in plain terms (for the checks).
// ---------------------------------------------------------------------------------------

/// The rules the policy was written with, read back by the checks instead of the parsed
/// policy, so the policy parser is under test as well.
#[derive(Debug, Clone)]
struct Rules {
    break_glass: Vec<String>,
    path_prefixes: Vec<String>,
    require_tags: Vec<(String, String)>,
    name_prefixes: Vec<String>,
    unused_days: u32,
    delete_after_days: u32,
}

#[derive(Debug, Clone)]
struct Scenario {
    now: DateTime<Utc>,
    kinds: Vec<Kind>,
    policy_text: String,
    rules: Rules,
    policy: Policy,
    inventory: Inventory,
}

impl Scenario {
    fn plan(&self) -> Plan {
        plan(&self.inventory, self.now, &self.policy, &self.kinds)
    }

    fn access_key(&self, id: &str) -> Option<(&IamUser, &AccessKey)> {
        self.inventory.iam_users.iter().find_map(|user| {
            user.keys
                .iter()
                .find(|key| key.id.as_str() == id)
                .map(|key| (user, key))
        })
    }

    fn user(&self, name: &str) -> Option<&IamUser> {
        self.inventory.iam_users.iter().find(|u| u.name == name)
    }

    fn api_key(&self, id: &str) -> Option<&ApiKey> {
        self.inventory.api_keys.iter().find(|k| k.id == id)
    }

    fn certificate(&self, arn: &str) -> Option<&Certificate> {
        self.inventory.certificates.iter().find(|c| c.arn == arn)
    }

    /// Why `user` must be left alone at `now`, if it must.
    fn user_exclusion(&self, user: &IamUser) -> Option<&'static str> {
        if user.is_root {
            return Some("the root user");
        }
        if self
            .rules
            .break_glass
            .iter()
            .any(|p| *p == user.name || *p == user.arn)
        {
            return Some("listed in break_glass");
        }
        if exempt_at(&user.tags, self.now) {
            return Some("exempt (tag in force)");
        }
        if !self
            .rules
            .path_prefixes
            .iter()
            .any(|p| user.path.starts_with(p.as_str()))
        {
            return Some("path outside path_prefixes");
        }
        if self
            .rules
            .require_tags
            .iter()
            .any(|(k, v)| user.tags.get(k) != Some(v))
        {
            return Some("lacks a required tag");
        }
        None
    }

    /// Why the API key must be left alone at `now`, if it must.
    fn api_key_exclusion(&self, key: &ApiKey) -> Option<&'static str> {
        if exempt_at(&key.tags, self.now) {
            return Some("exempt (tag in force)");
        }
        let prefixes = &self.rules.name_prefixes;
        if !prefixes.is_empty() && !prefixes.iter().any(|p| key.name.starts_with(p.as_str())) {
            return Some("name outside name_prefixes");
        }
        None
    }
}

/// `[exemptions] max_exemption_days` of every generated policy (the default).
const MAX_EXEMPTION_DAYS: i64 = 365;

/// Whether `tags` exempt their resource at `now`: a `keyrotor:exempt` tag whose value is a
/// `YYYY-MM-DD` date not yet over (through the end of that day, UTC) and no later than
/// `MAX_EXEMPTION_DAYS` from now. An unreadable value or a farther date exempts nothing.
fn exempt_at(tags: &Tags, now: DateTime<Utc>) -> bool {
    match tags.get(TAG_EXEMPT).and_then(|value| calendar_date(value)) {
        None => false,
        Some(last_day) => {
            now.date_naive() <= last_day
                && last_day <= (now + Duration::days(MAX_EXEMPTION_DAYS)).date_naive()
        }
    }
}

/// Strict `YYYY-MM-DD`.
fn calendar_date(value: &str) -> Option<NaiveDate> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let (y, rest) = value.split_once('-')?;
    let (m, d) = rest.split_once('-')?;
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

fn fail(action: &Action, why: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(format!("{why}\naction: {action:#?}"))
}

// ---------------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------------

fn base_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

/// Noon on 2026-11-25, a midnight near it (where date exemptions end), or any second within
/// a month of it.
fn now_strategy() -> impl Strategy<Value = DateTime<Utc>> {
    let noon = base_now();
    let midnight = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
    prop_oneof![
        Just(noon),
        (-30i64..=30).prop_map(move |d| midnight + Duration::days(d)),
        (-30 * DAY..=30 * DAY).prop_map(move |s| noon + Duration::seconds(s)),
    ]
}

/// A duration in seconds up to `max_days`, often a whole number of days so that thresholds
/// are hit exactly.
fn ago(max_days: i64) -> impl Strategy<Value = i64> {
    prop_oneof![(0..=max_days).prop_map(|d| d * DAY), 0..=max_days * DAY,]
}

fn exempt_strategy() -> impl Strategy<Value = Exempt> {
    prop_oneof![
        (-400i64..=-1).prop_map(Exempt::Date),
        (0i64..=400).prop_map(Exempt::Date),
        // The last day of an exemption, the day after, the day before.
        (-1i64..=1).prop_map(Exempt::Date),
        select(UNREADABLE).prop_map(Exempt::Unreadable),
    ]
}

fn maybe_exempt() -> impl Strategy<Value = Option<Exempt>> {
    prop::option::weighted(0.3, exempt_strategy())
}

fn key_spec() -> impl Strategy<Value = KeySpec> {
    (
        "[A-Z0-9]{12}",
        any::<bool>(),
        ago(500),
        prop::option::weighted(0.7, ago(500)),
        prop::option::weighted(
            0.4,
            (
                select(
                    &[
                        Stage::Active,
                        Stage::Warned,
                        Stage::Deactivated,
                        Stage::Reactivated,
                        Stage::Escalated,
                        Stage::Deleted,
                    ][..],
                ),
                ago(200),
            ),
        ),
    )
        .prop_map(
            |(id_noise, active, created_ago, last_used_ago, record)| KeySpec {
                id_noise,
                active,
                created_ago,
                last_used_ago,
                record,
            },
        )
}

fn user_spec() -> impl Strategy<Value = UserSpec> {
    (
        "[a-zA-Z][a-zA-Z0-9+=,.@_-]{0,15}",
        select(PATHS),
        maybe_exempt(),
        any::<bool>(),
        prop::bool::weighted(0.3),
        prop_oneof![
            2 => Just(None),
            2 => Just(Some("payments")),
            1 => Just(Some("platform")),
        ],
        prop::bool::weighted(0.08),
        prop::collection::vec(key_spec(), 0..=2),
    )
        .prop_map(
            |(name, path, exempt, owner, migrate_to, team, is_root, keys)| UserSpec {
                name,
                path,
                exempt,
                owner,
                migrate_to,
                team,
                is_root,
                keys,
            },
        )
}

fn api_key_spec() -> impl Strategy<Value = ApiKeySpec> {
    (
        select(API_NAME_PREFIXES),
        prop_oneof![
            2 => Just(SecretTag::Absent),
            1 => select(&["", " ", "\t "][..]).prop_map(SecretTag::Blank),
            3 => Just(SecretTag::Name),
            2 => Just(SecretTag::Arn),
        ],
        prop::bool::weighted(0.75),
        maybe_exempt(),
        prop::bool::weighted(0.8),
        ago(500),
        any::<bool>(),
        0usize..=3,
        any::<bool>(),
    )
        .prop_map(
            |(
                prefix,
                secret_tag,
                secret_exists,
                exempt,
                enabled,
                created_ago,
                updated,
                usage_plans,
                owner,
            )| {
                ApiKeySpec {
                    prefix,
                    secret_tag,
                    secret_exists,
                    exempt,
                    enabled,
                    created_ago,
                    updated,
                    usage_plans,
                    owner,
                }
            },
        )
}

fn cert_spec() -> impl Strategy<Value = CertSpec> {
    let expires_in = prop_oneof![
        // Expired.
        ago(400).prop_map(|s| -s),
        // Within the escalation ladder.
        ago(50),
        // Far away.
        51 * DAY..=800 * DAY,
    ];
    (
        prop::option::weighted(0.85, expires_in),
        prop_oneof![
            Just(CertType::AmazonIssued),
            Just(CertType::Imported),
            Just(CertType::Private),
            Just(CertType::Unknown),
        ],
        maybe_exempt(),
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::option::of(select(RENEWAL_STATUSES)),
        any::<bool>(),
    )
        .prop_map(
            |(expires_in, cert_type, exempt, in_use, ineligible, renewal_status, owner)| CertSpec {
                expires_in,
                cert_type,
                exempt,
                in_use,
                ineligible,
                renewal_status,
                owner,
            },
        )
}

/// Days within `1..=3650`, usually one of the common values.
fn days_strategy(common: &'static [u32]) -> impl Strategy<Value = u32> {
    prop_oneof![3 => select(common), 1 => 1u32..=400, 1 => 1u32..=3650]
}

fn policy_spec() -> impl Strategy<Value = PolicySpec> {
    let selectors = (
        prop::bool::weighted(0.15),
        prop::collection::vec((any::<Index>(), any::<bool>()), 0..=4),
        any::<bool>(),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.3),
        any::<bool>(),
        prop_oneof![
            Just(Vec::new()),
            Just(vec!["svc-"]),
            Just(vec!["svc-", "partner-"]),
        ],
    );
    let thresholds = (
        days_strategy(&[1, 30, 90, 365]),
        days_strategy(&[1, 7, 45, 90]),
        0u32..=365,
        days_strategy(&[1, 7, 30]),
        days_strategy(&[1, 8, 30, 90, 365]),
        0u32..=30,
        subsequence(vec![1u32, 7, 14, 30, 45, 60, 90, 180, 365], 1..=5),
    );
    (selectors, thresholds).prop_map(
        |(
            (
                defaults,
                break_glass,
                break_glass_stranger,
                apps_only,
                require_team,
                migration,
                name_prefixes,
            ),
            (
                max_age_days,
                unused_days,
                warn_days,
                delete_after_days,
                api_max_age_days,
                grace_days,
                ladder_days,
            ),
        )| PolicySpec {
            defaults,
            break_glass,
            break_glass_stranger,
            apps_only,
            require_team,
            migration,
            max_age_days,
            // The policy rejects an unused window longer than the maximum age.
            unused_days: unused_days.min(max_age_days),
            warn_days,
            delete_after_days,
            api_max_age_days,
            // ... and a grace period not shorter than the API key maximum age.
            grace_days: grace_days.min(api_max_age_days - 1),
            name_prefixes,
            ladder_days,
        },
    )
}

fn kinds_strategy() -> impl Strategy<Value = Vec<Kind>> {
    prop_oneof![
        3 => Just(Kind::ALL.to_vec()),
        1 => subsequence(Kind::ALL.to_vec(), 0..=4),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        now_strategy(),
        prop::collection::vec(user_spec(), 0..30),
        prop::collection::vec(api_key_spec(), 0..20),
        prop::collection::vec(cert_spec(), 0..10),
        policy_spec(),
        kinds_strategy(),
    )
        .prop_map(|(now, users, api_keys, certs, policy, kinds)| {
            build(now, &users, &api_keys, &certs, &policy, kinds)
        })
}

// ---------------------------------------------------------------------------------------
// Building the inventory and the policy.
// ---------------------------------------------------------------------------------------

fn exempt_value(exempt: &Exempt, now: DateTime<Utc>) -> String {
    match exempt {
        Exempt::Date(offset) => (now.date_naive() + Duration::days(*offset))
            .format("%Y-%m-%d")
            .to_string(),
        Exempt::Unreadable(value) => (*value).to_owned(),
    }
}

fn build_users(now: DateTime<Utc>, specs: &[UserSpec]) -> (Vec<IamUser>, Vec<KeyRecord>) {
    let mut names = BTreeSet::new();
    let mut serial = 0u32;
    let mut users = Vec::new();
    let mut records = Vec::new();
    for spec in specs {
        if !names.insert(spec.name.clone()) {
            continue;
        }
        let mut tags = Tags::new();
        if let Some(exempt) = &spec.exempt {
            tags.insert(TAG_EXEMPT.to_owned(), exempt_value(exempt, now));
        }
        if spec.owner {
            tags.insert(TAG_OWNER.to_owned(), format!("{}@example.com", spec.name));
        }
        if spec.migrate_to {
            tags.insert(
                TAG_MIGRATE_TO.to_owned(),
                format!("role/{}-workload", spec.name),
            );
        }
        if let Some(team) = spec.team {
            tags.insert("team".to_owned(), team.to_owned());
        }
        let keys = spec
            .keys
            .iter()
            .map(|k| {
                serial += 1;
                // The serial keeps ids unique across the whole account.
                let id = format!("AKIA{}{serial:04}", k.id_noise);
                let id = AccessKeyId::parse(&id).expect("generated access key ids are valid");
                if let Some((stage, since_ago)) = k.record {
                    records.push(KeyRecord {
                        secret: None,
                        key: id.clone(),
                        user: spec.name.clone(),
                        stage,
                        since: now - Duration::seconds(since_ago),
                        version: 1,
                    });
                }
                AccessKey {
                    id,
                    status: if k.active {
                        KeyStatus::Active
                    } else {
                        KeyStatus::Inactive
                    },
                    created: now - Duration::seconds(k.created_ago),
                    last_used: k.last_used_ago.map(|ago| LastUsed {
                        at: now - Duration::seconds(ago.min(k.created_ago)),
                        service: Some("s3".to_owned()),
                        region: Some(REGION.to_owned()),
                    }),
                }
            })
            .collect();
        users.push(IamUser {
            name: spec.name.clone(),
            arn: format!("arn:aws:iam::{ACCOUNT}:user{}{}", spec.path, spec.name),
            path: spec.path.to_owned(),
            created: now - Duration::days(1000),
            tags,
            keys,
            is_root: spec.is_root,
        });
    }
    (users, records)
}

fn build_api_keys(now: DateTime<Utc>, specs: &[ApiKeySpec]) -> (Vec<ApiKey>, Vec<Secret>) {
    let mut keys = Vec::new();
    let mut secrets = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let name = format!("{}client-{i}", spec.prefix);
        let secret_name = format!("keyrotor/api-keys/{name}");
        let secret_arn =
            format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_name}-Ab12Cd");
        let mut tags = Tags::new();
        match spec.secret_tag {
            SecretTag::Absent => {}
            SecretTag::Blank(value) => {
                tags.insert(TAG_SECRET.to_owned(), value.to_owned());
            }
            SecretTag::Name => {
                tags.insert(TAG_SECRET.to_owned(), secret_name.clone());
            }
            SecretTag::Arn => {
                tags.insert(TAG_SECRET.to_owned(), secret_arn.clone());
            }
        }
        if let Some(exempt) = &spec.exempt {
            tags.insert(TAG_EXEMPT.to_owned(), exempt_value(exempt, now));
        }
        if spec.owner {
            tags.insert(TAG_OWNER.to_owned(), "api-team@example.com".to_owned());
        }
        let created = now - Duration::seconds(spec.created_ago);
        keys.push(ApiKey {
            id: format!("apikey{i:04}"),
            name,
            enabled: spec.enabled,
            created,
            last_updated: spec
                .updated
                .then_some(created + Duration::seconds(spec.created_ago / 2)),
            tags,
            usage_plans: (0..spec.usage_plans).map(|p| format!("plan-{p}")).collect(),
        });
        if spec.secret_exists {
            secrets.push(Secret {
                arn: secret_arn,
                name: secret_name,
                tags: Tags::new(),
                rotation_enabled: false,
                last_rotated: None,
            });
        }
    }
    (keys, secrets)
}

fn build_certificates(now: DateTime<Utc>, specs: &[CertSpec]) -> Vec<Certificate> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut tags = Tags::new();
            if let Some(exempt) = &spec.exempt {
                tags.insert(TAG_EXEMPT.to_owned(), exempt_value(exempt, now));
            }
            if spec.owner {
                tags.insert(TAG_OWNER.to_owned(), "web-team@example.com".to_owned());
            }
            let not_after = spec.expires_in.map(|s| now + Duration::seconds(s));
            Certificate {
                arn: format!(
                    "arn:aws:acm:{REGION}:{ACCOUNT}:certificate/{i:08}-0000-4000-8000-000000000000"
                ),
                domain: format!("site{i}.example.com"),
                region: REGION.to_owned(),
                status: if not_after.is_some() {
                    "ISSUED"
                } else {
                    "PENDING_VALIDATION"
                }
                .to_owned(),
                cert_type: spec.cert_type,
                not_after,
                in_use: spec.in_use,
                renewal_eligibility: Some(
                    if spec.ineligible {
                        "INELIGIBLE"
                    } else {
                        "ELIGIBLE"
                    }
                    .to_owned(),
                ),
                renewal_status: spec.renewal_status.map(str::to_owned),
                renewal_failure_reason: None,
                validation_method: Some("DNS".to_owned()),
                key_algorithm: Some("RSA_2048".to_owned()),
                tags,
            }
        })
        .collect()
}

fn toml_list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// The policy file for `spec`, and the rules it states.
fn policy_text(spec: &PolicySpec, users: &[IamUser]) -> (String, Rules) {
    if spec.defaults {
        let rules = Rules {
            break_glass: Vec::new(),
            path_prefixes: vec!["/".to_owned()],
            require_tags: Vec::new(),
            name_prefixes: Vec::new(),
            unused_days: 45,
            delete_after_days: 30,
        };
        return (String::new(), rules);
    }
    let mut break_glass: Vec<String> = Vec::new();
    if !users.is_empty() {
        for (index, by_arn) in &spec.break_glass {
            let user = &users[index.index(users.len())];
            break_glass.push(if *by_arn {
                user.arn.clone()
            } else {
                user.name.clone()
            });
        }
    }
    if spec.break_glass_stranger {
        break_glass.push("nobody-in-this-account".to_owned());
    }
    let path_prefixes = vec![if spec.apps_only { "/apps/" } else { "/" }.to_owned()];
    let require_tags: Vec<(String, String)> = if spec.require_team {
        vec![("team".to_owned(), "payments".to_owned())]
    } else {
        Vec::new()
    };
    let require_text: Vec<String> = require_tags
        .iter()
        .map(|(k, v)| format!("{k} = \"{v}\""))
        .collect();
    let text = format!(
        "[iam_keys]\n\
         max_age_days = {}\n\
         unused_days = {}\n\
         warn_days = {}\n\
         delete_after_days = {}\n\
         path_prefixes = {}\n\
         require_tags = {{ {} }}\n\
         \n\
         [api_keys]\n\
         max_age_days = {}\n\
         grace_days = {}\n\
         name_prefixes = {}\n\
         \n\
         [certs]\n\
         ladder_days = {:?}\n\
         \n\
         [migration]\n\
         enabled = {}\n\
         \n\
         [exemptions]\n\
         break_glass = {}\n",
        spec.max_age_days,
        spec.unused_days,
        spec.warn_days,
        spec.delete_after_days,
        toml_list(&path_prefixes),
        require_text.join(", "),
        spec.api_max_age_days,
        spec.grace_days,
        toml_list(&spec.name_prefixes),
        spec.ladder_days,
        spec.migration,
        toml_list(&break_glass),
    );
    let rules = Rules {
        break_glass,
        path_prefixes,
        require_tags,
        name_prefixes: spec.name_prefixes.iter().map(|s| (*s).to_owned()).collect(),
        unused_days: spec.unused_days,
        delete_after_days: spec.delete_after_days,
    };
    (text, rules)
}

fn build(
    now: DateTime<Utc>,
    users: &[UserSpec],
    api_keys: &[ApiKeySpec],
    certs: &[CertSpec],
    policy: &PolicySpec,
    kinds: Vec<Kind>,
) -> Scenario {
    let mut inventory = Inventory::empty(AccountId::parse(ACCOUNT).unwrap(), REGION);
    (inventory.iam_users, inventory.key_records) = build_users(now, users);
    (inventory.api_keys, inventory.secrets) = build_api_keys(now, api_keys);
    inventory.certificates = build_certificates(now, certs);
    let (policy_text, rules) = policy_text(policy, &inventory.iam_users);
    let policy = if policy.defaults {
        Policy::default()
    } else {
        Policy::from_toml(&policy_text, "test.toml")
            .unwrap_or_else(|e| panic!("generated policy is invalid: {e}\n{policy_text}"))
    };
    Scenario {
        now,
        kinds,
        policy_text,
        rules,
        policy,
        inventory,
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        // Keep the one-file footprint: no proptest-regressions/ directory is written.
        failure_persistence: None,
        // The default ChaCha generator dominates the run time in unoptimised test builds.
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::with_cases(CASES)
    }
}

// ---------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn never_deletes_an_active_key(s in scenario()) {
        for action in s.plan().actions.iter().filter(|a| a.action == ActionType::Delete) {
            prop_assert_eq!(action.kind, Kind::IamKeys, "only IAM keys are deleted: {:#?}", action);
            let (_, key) = s
                .access_key(&action.resource)
                .ok_or_else(|| fail(action, "deletes a key that is not in the inventory"))?;
            if key.status != KeyStatus::Inactive {
                return Err(fail(action, format!("deletes a key that is {:?}", key.status)));
            }
        }
    }

    #[test]
    fn never_acts_on_root_break_glass_exempt_or_out_of_scope_users(s in scenario()) {
        for action in &s.plan().actions {
            match action.kind {
                Kind::IamKeys | Kind::Migration => {
                    let user = if action.kind == Kind::IamKeys {
                        s.access_key(&action.resource).map(|(user, _)| user)
                    } else {
                        s.user(&action.resource)
                    }
                    .ok_or_else(|| fail(action, "acts on a credential that is not in the inventory"))?;
                    if action.principal.as_deref() != Some(user.name.as_str()) {
                        return Err(fail(action, format!("names principal {:?}, not {:?}", action.principal, user.name)));
                    }
                    if let Some(why) = s.user_exclusion(user) {
                        return Err(fail(action, format!("acts on user {:?}, who is {why}; tags {:?}, path {:?}", user.name, user.tags, user.path)));
                    }
                }
                Kind::ApiKeys => {
                    let key = s
                        .api_key(&action.resource)
                        .ok_or_else(|| fail(action, "acts on an API key that is not in the inventory"))?;
                    if let Some(why) = s.api_key_exclusion(key) {
                        return Err(fail(action, format!("acts on API key {:?}, which is {why}; tags {:?}", key.name, key.tags)));
                    }
                }
                Kind::Certs => {
                    let cert = s
                        .certificate(&action.resource)
                        .ok_or_else(|| fail(action, "acts on a certificate that is not in the inventory"))?;
                    if exempt_at(&cert.tags, s.now) {
                        return Err(fail(action, format!("acts on an exempt certificate; tags {:?}", cert.tags)));
                    }
                }
            }
        }
    }

    #[test]
    fn at_most_one_action_per_credential(s in scenario()) {
        let plan = s.plan();
        let mut seen = HashSet::new();
        for action in &plan.actions {
            if !seen.insert((action.kind, action.resource.as_str())) {
                return Err(fail(action, "a second action on the same credential"));
            }
        }
        let mut rotated = HashSet::new();
        for action in plan.actions.iter().filter(|a| a.action == ActionType::Rotate) {
            prop_assert!(rotated.insert(action.resource.as_str()), "rotated twice: {:#?}", action);
        }
    }

    #[test]
    fn every_action_is_due_and_explained(s in scenario()) {
        for action in &s.plan().actions {
            if action.due_at > s.now {
                return Err(fail(action, format!("due at {} but planned at {}", action.due_at, s.now)));
            }
            if action.reason.as_str().is_empty() {
                return Err(fail(action, "has an empty reason"));
            }
            if action.detail.trim().is_empty() {
                return Err(fail(action, "has an empty detail"));
            }
        }
    }

    #[test]
    fn planning_is_deterministic(s in scenario()) {
        let first = s.plan();
        // The same inputs again: a copy of the inventory and the policy file parsed afresh.
        let policy = Policy::from_toml(&s.policy_text, "test.toml")
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&policy, &s.policy);
        let second = plan(&s.inventory.clone(), s.now, &policy, &s.kinds.clone());
        prop_assert_eq!(first, second);
    }

    #[test]
    fn deletion_only_after_quiet_period(s in scenario()) {
        let quiet = Duration::days(i64::from(s.rules.unused_days) + i64::from(s.rules.delete_after_days));
        for action in s.plan().actions.iter().filter(|a| a.action == ActionType::Delete) {
            let (_, key) = s
                .access_key(&action.resource)
                .ok_or_else(|| fail(action, "deletes a key that is not in the inventory"))?;
            let last_active = key.last_used.as_ref().map_or(key.created, |u| u.at);
            if s.now - last_active < quiet {
                return Err(fail(action, format!(
                    "deletes a key last active at {last_active}, less than {} days before {}",
                    quiet.num_days(),
                    s.now
                )));
            }
        }
    }

    #[test]
    fn never_deactivates_a_key_used_within_the_unused_window(s in scenario()) {
        let window = Duration::days(i64::from(s.rules.unused_days));
        for action in s.plan().actions.iter().filter(|a| a.action == ActionType::Deactivate) {
            let (_, key) = s
                .access_key(&action.resource)
                .ok_or_else(|| fail(action, "deactivates a key that is not in the inventory"))?;
            if key.status != KeyStatus::Active {
                return Err(fail(action, "deactivates a key that is not active"));
            }
            let last_active = key.last_used.as_ref().map_or(key.created, |u| u.at);
            if s.now - last_active < window {
                return Err(fail(action, format!(
                    "deactivates a key last active at {last_active}, within {} days of {}",
                    window.num_days(),
                    s.now
                )));
            }
            let warned = s.inventory.key_records.iter().find(|r| r.key == key.id);
            if warned.is_none_or(|r| r.stage != Stage::Warned) {
                return Err(fail(action, "deactivates a key whose owner was not warned"));
            }
        }
    }

    #[test]
    fn unmanaged_api_keys_are_never_rotated(s in scenario()) {
        for action in s.plan().actions.iter().filter(|a| a.kind == Kind::ApiKeys) {
            let key = s
                .api_key(&action.resource)
                .ok_or_else(|| fail(action, "acts on an API key that is not in the inventory"))?;
            let managed = key.tags.get(TAG_SECRET).is_some_and(|v| !v.trim().is_empty());
            if !managed {
                return Err(fail(action, format!("acts on an unmanaged API key; tags {:?}", key.tags)));
            }
        }
    }
}

/// The generators reach the cases the properties are about (every kind of action, and
/// every exclusion standing in the way of one); without this, a generator change could
/// make the properties hold vacuously.
#[test]
fn generated_scenarios_reach_every_kind_of_action_and_exclusion() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{TestRng, TestRunner};

    let mut runner =
        TestRunner::new_with_rng(config(), TestRng::deterministic_rng(RngAlgorithm::XorShift));
    let strategy = scenario();
    let mut actions = BTreeSet::new();
    let mut exclusions = BTreeSet::new();
    let mut notices = BTreeSet::new();
    for _ in 0..CASES {
        let plan = strategy.new_tree(&mut runner).unwrap().current().plan();
        actions.extend(plan.actions.iter().map(|a| (a.kind, a.action)));
        exclusions.extend(plan.skipped.into_iter().map(|s| s.reason));
        notices.extend(plan.notices.into_iter().map(|s| s.reason));
    }
    for wanted in [
        (Kind::IamKeys, ActionType::Warn),
        (Kind::IamKeys, ActionType::Deactivate),
        (Kind::IamKeys, ActionType::Reset),
        (Kind::IamKeys, ActionType::Reconcile),
        (Kind::IamKeys, ActionType::Delete),
        (Kind::IamKeys, ActionType::Rotate),
        (Kind::Migration, ActionType::ProvisionRole),
        (Kind::ApiKeys, ActionType::Rotate),
        (Kind::Certs, ActionType::Notify),
    ] {
        assert!(
            actions.contains(&wanted),
            "no generated case planned {wanted:?}; seen {actions:?}"
        );
    }
    for wanted in [
        "root-user",
        "break-glass",
        "exempt",
        "out-of-scope",
        "unmanaged",
        "disabled",
        "secret-missing",
        "no-expiry-date",
    ] {
        assert!(
            exclusions.contains(wanted),
            "no generated case skipped something as {wanted}; seen {exclusions:?}"
        );
    }
    // Exemption tags that are not honoured leave the resource in scope and are reported.
    for wanted in ["exemption-unreadable", "exemption-too-long"] {
        assert!(
            notices.contains(wanted),
            "no generated case reported {wanted}; seen {notices:?}"
        );
        assert!(
            !exclusions.contains(wanted),
            "{wanted} was treated as an exclusion"
        );
    }
}
