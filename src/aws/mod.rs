//! AWS adapters: the only code that touches the AWS SDK.
//!
//! Each submodule implements ports over one service and converts SDK types to domain types.
//! [`classify`] (in `errors`) turns any `SdkError` into a
//! [`PortError`](crate::ports::PortError). [`Aws`] loads configuration like the AWS CLI
//! (credential chain, profiles, region, `AWS_ENDPOINT_URL`) with adaptive retry, and counts
//! every operation per service through [`CallCounter`].

pub mod acm;
pub mod apigateway;
pub mod cloudtrail;
pub mod dynamodb;
mod errors;
pub mod events;
pub mod iam;
pub mod organizations;
pub mod s3;
pub mod secretsmanager;
pub mod sfn;
pub mod sns;
pub mod sts;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::domain::policy::{PacingPolicy, Rate};

pub use errors::classify;
pub(crate) use errors::to_utc;

/// Where and as whom to call AWS.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Counts AWS operations (not retry attempts) per `service:operation`.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CallCounter {
    /// A snapshot of the counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Total calls to one service (e.g. `iam`).
    pub fn service_total(&self, service: &str) -> u64 {
        let prefix = format!("{}:", service.to_ascii_lowercase());
        self.snapshot()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
            .sum()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "keyrotor::CallCounter"
    }

    // Not `read_before_execution`: client-level interceptors run that hook before the
    // operation's configuration (and its Metadata) is applied.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>()
            && let Ok(mut counts) = self.counts.lock()
        {
            let service: String = meta
                .service()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let key = format!("{}:{}", service.to_ascii_lowercase(), meta.name());
            *counts.entry(key).or_default() += 1;
        }
        Ok(())
    }
}

/// Client-side pacing of one service's control-plane calls: a burst of `burst` calls, then
/// at most `per_second` per second (generic cell rate algorithm). Adaptive retry only slows
/// down after AWS has throttled; pacing keeps a large sweep from being throttled at all.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    burst: Duration,
    /// Theoretical arrival time of the next call.
    tat: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pacer {
    pub fn new(per_second: u32, burst: u32) -> Pacer {
        let interval = Duration::from_secs(1) / per_second.max(1);
        Pacer {
            interval,
            burst: interval * burst.saturating_sub(1),
            tat: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits until the next call may start.
    pub async fn wait(&self) {
        let start = {
            let mut tat = self.tat.lock().await;
            let now = tokio::time::Instant::now();
            let t = (*tat).max(now);
            *tat = t + self.interval;
            t.checked_sub(self.burst).unwrap_or(now).max(now)
        };
        tokio::time::sleep_until(start).await;
    }
}

/// How long to wait before attempt `attempt + 1` of a throttled call keyrotor retries itself:
/// 0.5 s doubling each time, at most 8 s, with up to half of it jittered away so that
/// concurrent callers spread out.
pub fn throttle_backoff(attempt: u32) -> Duration {
    let full = Duration::from_millis(500) * 2u32.saturating_pow(attempt.min(4));
    let jitter = uuid::Uuid::new_v4().as_u128() % 1000;
    full - full / 2 * u32::try_from(jitter).unwrap_or(0) / 1000
}

/// A service whose calls keyrotor paces. Quotas are per account (ACM and CloudTrail: per
/// region too).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Service {
    Iam,
    ApiGateway,
    SecretsManager,
    Acm {
        region: String,
    },
    Sts,
    Organizations,
    /// CloudTrail LookupEvents: 2 requests per second per account and region.
    CloudTrailLookup {
        region: String,
    },
}

/// CloudTrail LookupEvents' quota: 2 requests per second per account and region, fixed by
/// AWS (not adjustable), so not a policy setting.
pub const CLOUDTRAIL_LOOKUP_RATE: Rate = Rate {
    per_second: 2,
    burst: 1,
};

impl Service {
    fn rate(&self, limits: &PacingPolicy) -> Rate {
        match self {
            Service::Iam => limits.iam,
            Service::ApiGateway => limits.apigateway,
            Service::SecretsManager => limits.secretsmanager,
            Service::Acm { .. } => limits.acm,
            Service::Sts => limits.sts,
            Service::Organizations => limits.organizations,
            Service::CloudTrailLookup { .. } => CLOUDTRAIL_LOOKUP_RATE,
        }
    }
}

/// One account's pacers, one per service, shared by every adapter made from the same
/// [`Aws`]: two IAM adapters of one account draw from one budget.
#[derive(Debug, Default)]
pub struct Pacers {
    limits: PacingPolicy,
    pacers: Mutex<HashMap<Service, Arc<Pacer>>>,
}

impl Pacers {
    pub fn new(limits: PacingPolicy) -> Pacers {
        Pacers {
            limits,
            pacers: Mutex::new(HashMap::new()),
        }
    }

    /// The pacer of `service`, made on first use.
    pub fn get(&self, service: Service) -> Arc<Pacer> {
        let rate = service.rate(&self.limits);
        let make = || Arc::new(Pacer::new(rate.per_second, rate.burst));
        match self.pacers.lock() {
            Ok(mut map) => map.entry(service).or_insert_with(make).clone(),
            // A poisoned map still paces: this caller alone, at the configured rate.
            Err(_) => make(),
        }
    }

    /// The limits these pacers apply.
    pub fn limits(&self) -> &PacingPolicy {
        &self.limits
    }
}

/// Shared AWS configuration, the call counter every client reports to, and the account's
/// pacers.
#[derive(Clone, Debug)]
pub struct Aws {
    pub config: SdkConfig,
    pub counter: CallCounter,
    /// More interceptors for every client (tests inject faults through this).
    interceptors: Vec<SharedInterceptor>,
    pacers: Arc<Pacers>,
}

/// Builds a service client from the shared configuration with keyrotor's interceptors.
macro_rules! client {
    ($aws:expr, $sdk:ident) => {{
        let mut conf = $sdk::config::Builder::from(&$aws.config).interceptor($aws.counter.clone());
        for extra in &$aws.interceptors {
            conf.push_interceptor(extra.clone());
        }
        conf
    }};
}

impl Aws {
    /// Loads configuration like the AWS CLI does, with adaptive retry for throttling.
    pub async fn load(conn: &Connection) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::adaptive().with_max_attempts(6))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(profile) = &conn.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &conn.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &conn.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Aws::from_config(loader.load().await)
    }

    /// Wraps an already loaded configuration (tests, or a caller with its own loader).
    pub fn from_config(config: SdkConfig) -> Aws {
        Aws {
            config,
            counter: CallCounter::default(),
            interceptors: Vec::new(),
            pacers: Arc::new(Pacers::default()),
        }
    }

    /// Paces calls at `limits` (the policy's `[pacing]`) from now on.
    pub fn with_pacing(mut self, limits: &PacingPolicy) -> Aws {
        self.pacers = Arc::new(Pacers::new(limits.clone()));
        self
    }

    /// The same interceptors, counter and limits over another account's configuration,
    /// with pacers of its own: quotas are per account.
    pub fn for_account(&self, config: SdkConfig) -> Aws {
        Aws {
            config,
            counter: self.counter.clone(),
            interceptors: self.interceptors.clone(),
            pacers: Arc::new(Pacers::new(self.pacers.limits().clone())),
        }
    }

    /// The pacer of `service` in this account.
    pub fn pacer(&self, service: Service) -> Arc<Pacer> {
        self.pacers.get(service)
    }

    /// Adds an interceptor to every client made from now on.
    pub fn with_interceptor(mut self, interceptor: impl Intercept + 'static) -> Aws {
        self.interceptors.push(SharedInterceptor::new(interceptor));
        self
    }

    /// The configured region, if any.
    pub fn region(&self) -> Option<String> {
        self.config.region().map(|r| r.to_string())
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::from_conf(client!(self, aws_sdk_iam).build())
    }

    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::from_conf(client!(self, aws_sdk_sts).build())
    }

    pub fn apigateway(&self) -> aws_sdk_apigateway::Client {
        aws_sdk_apigateway::Client::from_conf(client!(self, aws_sdk_apigateway).build())
    }

    pub fn secretsmanager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::from_conf(client!(self, aws_sdk_secretsmanager).build())
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(client!(self, aws_sdk_dynamodb).build())
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::from_conf(client!(self, aws_sdk_sns).build())
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let mut conf = client!(self, aws_sdk_s3)
            // Emulators and private endpoints serve buckets by path, not by host name.
            .force_path_style(self.config.endpoint_url().is_some());
        // S3 appends the bucket to the endpoint's path as is: an endpoint with a path
        // needs its trailing slash.
        if let Some(url) = self.config.endpoint_url()
            && !url.ends_with('/')
            && url.matches('/').count() > 2
        {
            conf = conf.endpoint_url(format!("{url}/"));
        }
        aws_sdk_s3::Client::from_conf(conf.build())
    }

    pub fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::from_conf(client!(self, aws_sdk_eventbridge).build())
    }

    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::from_conf(client!(self, aws_sdk_organizations).build())
    }

    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::from_conf(client!(self, aws_sdk_sfn).build())
    }

    /// An Account Management client (a global service).
    pub fn account(&self) -> aws_sdk_account::Client {
        aws_sdk_account::Client::from_conf(client!(self, aws_sdk_account).build())
    }

    /// An ACM client for `region` (ACM is regional).
    pub fn acm(&self, region: &str) -> aws_sdk_acm::Client {
        let conf = client!(self, aws_sdk_acm)
            .region(Region::new(region.to_owned()))
            .build();
        aws_sdk_acm::Client::from_conf(conf)
    }

    /// A CloudTrail client for `region` (event history is regional).
    pub fn cloudtrail(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        let conf = client!(self, aws_sdk_cloudtrail)
            .region(Region::new(region.to_owned()))
            .build();
        aws_sdk_cloudtrail::Client::from_conf(conf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortError;
    use aws_smithy_runtime_api::client::result::SdkError;

    use aws_sdk_iam::operation::list_access_keys::ListAccessKeysError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str, status: u16) -> SdkError<ListAccessKeysError, Response> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("User: arn:aws:iam::123456789012:user/ci is not authorized")
            .build();
        let status = StatusCode::try_from(status).unwrap();
        SdkError::service_error(
            ListAccessKeysError::generic(meta),
            Response::new(status, SdkBody::empty()),
        )
    }

    #[test]
    fn access_denied_names_the_operation_and_the_fix() {
        let e = classify("iam:ListAccessKeys", service_error("AccessDenied", 403));
        assert!(matches!(e, PortError::AccessDenied { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("iam:ListAccessKeys") && text.contains("grant"),
            "{text}"
        );
        assert_eq!(e.name(), "KeyRotor.AccessDenied");
    }

    #[test]
    fn throttling_and_rejected_credentials_are_classified() {
        let e = classify("iam:ListAccessKeys", service_error("Throttling", 400));
        assert_eq!(e.name(), "KeyRotor.Retryable");
        let e = classify(
            "iam:ListAccessKeys",
            service_error("InvalidClientTokenId", 403),
        );
        assert!(matches!(e, PortError::InvalidCredentials { .. }), "{e:?}");
        let e = classify("iam:ListAccessKeys", service_error("NoSuchEntity", 404));
        assert_eq!(e.name(), "KeyRotor.NotFound");
        let e = classify("iam:ListAccessKeys", service_error("SomethingNew", 400));
        assert!(e.to_string().contains("SomethingNew"), "{e}");
    }

    #[test]
    fn the_two_key_limit_is_a_quota_to_escalate_not_throttling_to_retry() {
        for code in ["LimitExceeded", "LimitExceededException"] {
            let e = classify("iam:CreateAccessKey", service_error(code, 409));
            assert!(matches!(e, PortError::Limit { .. }), "{code}: {e:?}");
            assert_eq!(e.name(), "KeyRotor.Blocked", "{code}");
        }
    }

    // Virtual time: the test measures the pacer's schedule, not the machine.
    #[tokio::test(start_paused = true)]
    async fn pacer_allows_a_burst_then_spaces_calls() {
        let pacer = Pacer::new(10, 3);
        let start = tokio::time::Instant::now();
        let mut starts = Vec::new();
        for _ in 0..6 {
            pacer.wait().await;
            starts.push((tokio::time::Instant::now() - start).as_millis());
        }
        assert_eq!(starts, vec![0, 0, 0, 100, 200, 300]);
    }

    #[tokio::test(start_paused = true)]
    async fn adapters_of_one_account_share_a_pacer_and_accounts_do_not() {
        let limits = PacingPolicy {
            iam: Rate {
                per_second: 2,
                burst: 1,
            },
            acm: Rate {
                per_second: 1,
                burst: 1,
            },
            ..PacingPolicy::DEFAULT
        };
        let aws = Aws::from_config(SdkConfig::builder().build()).with_pacing(&limits);
        let member = aws.for_account(SdkConfig::builder().build());
        let start = tokio::time::Instant::now();
        // Two adapters in one account: the second call waits for the first one's slot.
        aws.pacer(Service::Iam).wait().await;
        aws.pacer(Service::Iam).wait().await;
        assert_eq!((tokio::time::Instant::now() - start).as_millis(), 500);
        // Another account has its own budget: no wait.
        let before = tokio::time::Instant::now();
        member.pacer(Service::Iam).wait().await;
        assert_eq!((tokio::time::Instant::now() - before).as_millis(), 0);
        // ACM is paced per region: a shared pacer would hold this second call for 1 s.
        aws.pacer(Service::Acm {
            region: "us-east-1".into(),
        })
        .wait()
        .await;
        let before = tokio::time::Instant::now();
        aws.pacer(Service::Acm {
            region: "eu-west-1".into(),
        })
        .wait()
        .await;
        assert_eq!((tokio::time::Instant::now() - before).as_millis(), 0);
    }

    #[test]
    fn smithy_time_converts_to_chrono() {
        let t = aws_smithy_types::DateTime::from_secs(1_764_028_800);
        assert_eq!(
            to_utc(&t).unwrap().to_rfc3339(),
            "2025-11-25T00:00:00+00:00"
        );
    }
}
