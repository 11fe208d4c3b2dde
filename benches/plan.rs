//! Benchmarks of the pure core on large, deterministic synthetic accounts.
//!
//! - `plan/100k_credentials` and `plan/10k_credentials`: the planner over an inventory of
//!   that many credentials (IAM access keys + API keys + certificates), all kinds, with
//!   migration planning enabled;
//! - `credential_report/parse_5000_users`: decoding a 5,000-user IAM credential report.
//!
//! Inputs are generated once, outside the timed loops, by a small linear congruential
//! generator with fixed seeds, and planned at a fixed time, so every run measures the same
//! work. Run with `cargo bench --bench plan`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use keyrotor::domain::credential_report;
use keyrotor::domain::inventory::{DiscoveryProblem, Inventory};
use keyrotor::domain::model::{
    AccessKey, AccessKeyId, AccountId, ApiKey, CertType, Certificate, IamUser, KeyStatus, Kind,
    LastUsed, Secret, TAG_EXEMPT, TAG_MIGRATE_TO, TAG_OWNER, TAG_SECRET, TAG_TYPE, Tags,
};
use keyrotor::domain::plan::{Plan, plan};
use keyrotor::domain::policy::Policy;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
/// Users listed in `[exemptions] break_glass`; the generator creates them first.
const BREAK_GLASS_USERS: usize = 10;

/// The time every plan is made at.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .expect("fixed time is valid")
}

/// Knuth's MMIX linear congruential generator; the high half of the state is the output.
struct Lcg(u64);

impl Lcg {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    fn bits(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 32
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.bits() % n
    }

    /// Uniform in `lo..hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// A time `days` whole days before `from`, minus a random part of a day.
    fn before(&mut self, from: DateTime<Utc>, days: i64) -> DateTime<Utc> {
        from - TimeDelta::days(days) - TimeDelta::seconds(self.between(0, 86_400))
    }

    /// A time between `lo` and `hi` whole days before `from`.
    fn days_before(&mut self, from: DateTime<Utc>, lo: i64, hi: i64) -> DateTime<Utc> {
        let days = self.between(lo, hi);
        self.before(from, days)
    }
}

fn break_glass_name(i: usize) -> String {
    format!("breakglass-{i:02}")
}

/// Default policy, with migration planning on, path selectors that leave `/legacy/` users
/// out of scope, and the generated break-glass users listed.
fn bench_policy() -> Policy {
    let break_glass: Vec<String> = (0..BREAK_GLASS_USERS)
        .map(|i| format!("{:?}", break_glass_name(i)))
        .collect();
    let text = format!(
        "[iam_keys]\npath_prefixes = [\"/apps/\", \"/services/\", \"/ci/\", \"/ops/\"]\n\n\
         [migration]\nenabled = true\n\n\
         [exemptions]\nbreak_glass = [{}]\n",
        break_glass.join(", ")
    );
    let policy = Policy::from_toml(&text, "bench.toml").expect("bench policy is valid");
    assert!(policy.migration.enabled);
    policy
}

/// Counts of what an inventory holds.
struct Shape {
    users: usize,
    access_keys: usize,
    api_keys: usize,
    certificates: usize,
    secrets: usize,
}

impl Shape {
    fn of(inv: &Inventory) -> Self {
        Self {
            users: inv.iam_users.len(),
            access_keys: inv.iam_users.iter().map(|u| u.keys.len()).sum(),
            api_keys: inv.api_keys.len(),
            certificates: inv.certificates.len(),
            secrets: inv.secrets.len(),
        }
    }

    fn credentials(&self) -> usize {
        self.access_keys + self.api_keys + self.certificates
    }
}

fn tags(pairs: &[(&str, String)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// An exemption tag value: mostly in force, some expired, some too long, a few unreadable.
fn exemption_value(rng: &mut Lcg) -> String {
    match rng.below(100) {
        0..70 => "2027-02-01".to_owned(),
        70..85 => "2025-06-30".to_owned(),
        85..95 => "2028-12-31".to_owned(),
        _ => "until-migrated".to_owned(),
    }
}

/// One IAM access key `age` days old, with a realistic mix of last use.
fn access_key(rng: &mut Lcg, serial: u64, now: DateTime<Utc>, age: i64) -> AccessKey {
    let created = rng.before(now, age);
    let last_used = if rng.chance(120) {
        None
    } else {
        // Most keys are in daily use; a tail has gone quiet for weeks or months.
        let ago = match rng.below(100) {
            0..60 => rng.between(0, 30),
            60..85 => rng.between(30, 90),
            _ => rng.between(90, 400),
        }
        .min(age);
        let at =
            (now - TimeDelta::days(ago) - TimeDelta::seconds(rng.between(0, 3_600))).max(created);
        let (service, region) = match rng.below(4) {
            0 => ("s3", "us-east-1"),
            1 => ("sts", "us-east-1"),
            2 => ("dynamodb", "eu-west-1"),
            _ => ("sqs", "eu-central-1"),
        };
        Some(LastUsed {
            at,
            service: Some(service.to_owned()),
            region: Some(region.to_owned()),
        })
    };
    let status = if rng.chance(80) {
        KeyStatus::Inactive
    } else {
        KeyStatus::Active
    };
    AccessKey {
        id: AccessKeyId::parse(&format!("AKIA{serial:016X}")).expect("generated key id is valid"),
        status,
        created,
        last_used,
    }
}

fn iam_users(rng: &mut Lcg, now: DateTime<Utc>, key_budget: usize) -> Vec<IamUser> {
    const PATHS: [&str; 4] = ["/apps/", "/services/", "/ci/", "/ops/"];
    let mut users = Vec::new();
    let mut made = 0usize;
    let mut serial = 0u64;
    while made < key_budget {
        let i = users.len();
        let left = key_budget - made;
        let count = if left >= 2 && rng.chance(450) { 2 } else { 1 };
        let break_glass = i < BREAK_GLASS_USERS;
        let name = if break_glass {
            break_glass_name(i)
        } else {
            format!("svc-user-{i:06}")
        };
        let path = if break_glass {
            "/ops/"
        } else if rng.chance(10) {
            "/legacy/"
        } else {
            PATHS[rng.below(PATHS.len() as u64) as usize]
        };
        let mut keys = Vec::with_capacity(count);
        let mut oldest = 0;
        for _ in 0..count {
            let age = rng.between(0, 400);
            oldest = oldest.max(age);
            serial += 1;
            keys.push(access_key(rng, serial, now, age));
        }
        let mut user_tags = Tags::new();
        if rng.chance(900) {
            user_tags.insert(
                TAG_OWNER.to_owned(),
                format!("team-{}@example.com", rng.below(250)),
            );
        }
        if rng.chance(50) {
            user_tags.insert(TAG_EXEMPT.to_owned(), exemption_value(rng));
        }
        if rng.chance(30) {
            user_tags.insert(
                TAG_MIGRATE_TO.to_owned(),
                format!("github-actions:example-org/repo-{}", rng.below(5_000)),
            );
        }
        if rng.chance(300) {
            user_tags.insert("cost-center".to_owned(), format!("cc-{}", rng.below(40)));
        }
        users.push(IamUser {
            arn: format!("arn:aws:iam::{ACCOUNT}:user{path}{name}"),
            name,
            path: path.to_owned(),
            created: rng.days_before(now, oldest, oldest + 60),
            tags: user_tags,
            keys,
            is_root: false,
        });
        made += count;
    }
    users
}

fn api_keys(rng: &mut Lcg, now: DateTime<Utc>, count: usize) -> (Vec<ApiKey>, Vec<Secret>) {
    let mut keys = Vec::with_capacity(count);
    let mut secrets = Vec::new();
    for i in 0..count {
        let name = format!("partner-{i:06}");
        let created = rng.days_before(now, 0, 400);
        let mut key_tags = Tags::new();
        if rng.chance(850) {
            let secret_name = format!("keyrotor/api-keys/{name}");
            let secret_arn = format!(
                "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_name}-{:06X}",
                rng.below(0x100_0000)
            );
            // Most tags name the secret, some its ARN; a few point at a secret that is gone.
            let tag = if rng.chance(100) {
                secret_arn.clone()
            } else {
                secret_name.clone()
            };
            key_tags.insert(TAG_SECRET.to_owned(), tag);
            if !rng.chance(50) {
                secrets.push(Secret {
                    arn: secret_arn,
                    name: secret_name,
                    tags: tags(&[(TAG_TYPE, "api-key".to_owned())]),
                    rotation_enabled: false,
                    last_rotated: None,
                });
            }
        }
        if rng.chance(850) {
            key_tags.insert(
                TAG_OWNER.to_owned(),
                format!("partners-{}@example.com", rng.below(100)),
            );
        }
        if rng.chance(20) {
            key_tags.insert(TAG_EXEMPT.to_owned(), exemption_value(rng));
        }
        let usage_plans = (0..=rng.below(3))
            .map(|_| format!("up{:06x}", rng.below(0x100_0000)))
            .collect();
        keys.push(ApiKey {
            id: format!("k{i:09x}"),
            name,
            enabled: !rng.chance(40),
            created,
            last_updated: rng.chance(300).then(|| created + TimeDelta::days(1)),
            tags: key_tags,
            usage_plans,
        });
    }
    (keys, secrets)
}

fn certificates(rng: &mut Lcg, now: DateTime<Utc>, count: usize) -> Vec<Certificate> {
    const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
    (0..count)
        .map(|i| {
            let region = REGIONS[rng.below(REGIONS.len() as u64) as usize];
            let cert_type = match rng.below(100) {
                0..70 => CertType::AmazonIssued,
                70..90 => CertType::Imported,
                90..99 => CertType::Private,
                _ => CertType::Unknown,
            };
            let pending = rng.chance(30);
            let not_after = (!pending).then(|| {
                now + TimeDelta::days(rng.between(-10, 400)) + TimeDelta::seconds(rng.between(0, 86_400))
            });
            let amazon = cert_type == CertType::AmazonIssued;
            let renewal_status = if !amazon {
                None
            } else {
                match rng.below(100) {
                    0..80 => None,
                    80..90 => Some("PENDING_AUTO_RENEWAL"),
                    90..95 => Some("PENDING_VALIDATION"),
                    95..98 => Some("SUCCESS"),
                    _ => Some("FAILED"),
                }
            };
            let mut cert_tags = Tags::new();
            if rng.chance(800) {
                cert_tags.insert(TAG_OWNER.to_owned(), format!("web-{}@example.com", rng.below(60)));
            }
            if rng.chance(20) {
                cert_tags.insert(TAG_EXEMPT.to_owned(), exemption_value(rng));
            }
            Certificate {
                arn: format!(
                    "arn:aws:acm:{region}:{ACCOUNT}:certificate/{i:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                    rng.below(0x1_0000),
                    rng.below(0x1000),
                    rng.below(0x1000),
                    rng.bits()
                ),
                domain: format!("svc{i}.example.com"),
                region: region.to_owned(),
                status: if pending { "PENDING_VALIDATION" } else { "ISSUED" }.to_owned(),
                cert_type,
                not_after,
                in_use: rng.chance(850),
                renewal_eligibility: amazon
                    .then(|| if rng.chance(50) { "INELIGIBLE" } else { "ELIGIBLE" }.to_owned()),
                renewal_status: renewal_status.map(str::to_owned),
                renewal_failure_reason: (renewal_status == Some("FAILED"))
                    .then(|| "CAA_ERROR".to_owned()),
                validation_method: amazon.then(|| "DNS".to_owned()),
                key_algorithm: Some(if rng.chance(300) { "EC_prime256v1" } else { "RSA_2048" }.to_owned()),
                tags: cert_tags,
            }
        })
        .collect()
}

/// An account holding exactly `total` credentials: 50% IAM access keys (spread over users
/// with one or two keys each), 40% API keys, 10% ACM certificates.
fn inventory(total: usize, seed: u64) -> Inventory {
    let now = now();
    let mut rng = Lcg::new(seed);
    let access_keys = total / 2;
    let api = total * 2 / 5;
    let certs = total - access_keys - api;
    let mut inv = Inventory::empty(AccountId::parse(ACCOUNT).expect("account id"), REGION);
    inv.iam_users = iam_users(&mut rng, now, access_keys);
    (inv.api_keys, inv.secrets) = api_keys(&mut rng, now, api);
    inv.certificates = certificates(&mut rng, now, certs);
    inv.root_active_keys = 1;
    inv.problems.push(DiscoveryProblem {
        kind: Kind::Certs,
        region: "ap-southeast-2".to_owned(),
        message: "AccessDenied: acm:ListCertificates in ap-southeast-2".to_owned(),
    });
    assert_eq!(Shape::of(&inv).credentials(), total);
    inv
}

fn run_plan(inv: &Inventory, policy: &Policy) -> Plan {
    plan(inv, now(), policy, &Kind::ALL)
}

/// Plans once, outside timing, and shows that the inventory gives the planner real work.
fn report(label: &str, inv: &Inventory, policy: &Policy) {
    let shape = Shape::of(inv);
    let planned = run_plan(inv, policy);
    let per_kind = |kind: Kind| planned.actions.iter().filter(|a| a.kind == kind).count();
    eprintln!(
        "{label}: {} credentials ({} IAM users with {} access keys, {} API keys with {} secrets, \
         {} certificates) -> {} actions planned (iam-keys {}, api-keys {}, migration {}, certs {}), \
         {} skipped",
        shape.credentials(),
        shape.users,
        shape.access_keys,
        shape.api_keys,
        shape.secrets,
        shape.certificates,
        planned.actions.len(),
        per_kind(Kind::IamKeys),
        per_kind(Kind::ApiKeys),
        per_kind(Kind::Migration),
        per_kind(Kind::Certs),
        planned.skipped.len(),
    );
    assert!(!planned.actions.is_empty(), "{label}: no actions planned");
}

fn bench_plan(c: &mut Criterion) {
    let policy = bench_policy();
    let large = inventory(100_000, 1);
    let small = inventory(10_000, 2);
    report("plan/100k_credentials", &large, &policy);
    report("plan/10k_credentials", &small, &policy);

    let mut group = c.benchmark_group("plan");

    // A 100k plan takes about a tenth of a second. Flat sampling with the minimum sample
    // count bounds the run even if the planner regresses to seconds per plan (criterion then
    // takes one iteration per sample and warns).
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(100_000));
    group.bench_function("100k_credentials", |b| {
        b.iter(|| run_plan(black_box(&large), black_box(&policy)));
    });

    group
        .sampling_mode(SamplingMode::Auto)
        .sample_size(30)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(10_000));
    group.bench_function("10k_credentials", |b| {
        b.iter(|| run_plan(black_box(&small), black_box(&policy)));
    });
    group.finish();
}

/// A report timestamp, in the format IAM writes (`2026-01-02T10:11:12+00:00`).
fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// The five cells of one access key slot of a report row.
fn report_slot(out: &mut String, rng: &mut Lcg, now: DateTime<Utc>, present: bool) {
    if !present {
        out.push_str(",false,N/A,N/A,N/A,N/A");
        return;
    }
    let age = rng.between(0, 400);
    let rotated = rng.before(now, age);
    let active = !rng.chance(100);
    let _ = write!(out, ",{active},{}", stamp(rotated));
    if rng.chance(120) {
        out.push_str(",N/A,N/A,N/A");
    } else {
        let used = (now - TimeDelta::days(rng.between(0, 120).min(age))).max(rotated);
        let (region, service) = match rng.below(3) {
            0 => ("us-east-1", "s3"),
            1 => ("eu-west-1", "sts"),
            _ => ("us-west-2", "dynamodb"),
        };
        let _ = write!(out, ",{},{region},{service}", stamp(used));
    }
}

/// An IAM credential report for `users` users plus the root row.
fn credential_report_csv(users: usize, seed: u64) -> String {
    let now = now();
    let mut rng = Lcg::new(seed);
    let mut out = String::with_capacity(users * 320);
    out.push_str(
        "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,\
         password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,\
         access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,\
         access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,\
         access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,\
         cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n",
    );
    let _ = writeln!(
        out,
        "<root_account>,arn:aws:iam::{ACCOUNT}:root,{},not_supported,{},not_supported,not_supported,true,\
         false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        stamp(rng.before(now, 2_000)),
        stamp(rng.before(now, 3)),
    );
    for i in 0..users {
        let path = ["/", "/apps/", "/services/", "/ci/"][rng.below(4) as usize];
        let name = format!("user-{i:05}");
        let _ = write!(
            out,
            "{name},arn:aws:iam::{ACCOUNT}:user{path}{name},{}",
            stamp(rng.days_before(now, 400, 1_500))
        );
        if rng.chance(300) {
            let last_used = if rng.chance(200) {
                "no_information".to_owned()
            } else {
                stamp(rng.days_before(now, 0, 90))
            };
            let _ = write!(
                out,
                ",true,{last_used},{},N/A",
                stamp(rng.days_before(now, 0, 400))
            );
        } else {
            out.push_str(",false,N/A,N/A,N/A");
        }
        let _ = write!(out, ",{}", rng.chance(250));
        let first = rng.chance(850);
        let second = rng.chance(350);
        report_slot(&mut out, &mut rng, now, first);
        report_slot(&mut out, &mut rng, now, second);
        out.push_str(",false,N/A,false,N/A\n");
    }
    out
}

fn bench_credential_report(c: &mut Criterion) {
    const USERS: usize = 5_000;
    let csv = credential_report_csv(USERS, 3);
    let rows = credential_report::parse(csv.as_bytes()).expect("generated report parses");
    assert_eq!(rows.len(), USERS + 1);
    assert!(rows.iter().any(|r| r.keys.len() == 2));

    let mut group = c.benchmark_group("credential_report");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(USERS as u64));
    group.bench_function("parse_5000_users", |b| {
        b.iter(|| credential_report::parse(black_box(csv.as_bytes())).expect("report parses"));
    });
    group.finish();
}

criterion_group!(benches, bench_plan, bench_credential_report);
criterion_main!(benches);
