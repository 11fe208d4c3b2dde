//! Fault injection for keyrotor's own AWS calls, through the real SDK.
//!
//! [`Faults`] is two halves sharing one state:
//! - an SDK interceptor (added with `Aws::with_interceptor`, so only keyrotor's clients are
//!   counted, never the test's checking clients) that numbers every operation (not retry
//!   attempt) and, on the chosen operation's attempts, marks the outgoing request with a
//!   header; it also keeps a trace of every operation and how it ended, with the audit
//!   phase of every DynamoDB `PutItem` to the audit table;
//! - an HTTP client wrapping the ordinary one, which acts on marked requests: a synthetic
//!   protocol-correct error response (throttling, HTTP 500, AccessDenied) or a connector
//!   error (timeout, connection reset) without sending anything, or — for a lost response —
//!   sending the request to the emulator and then reporting the connection as reset.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, Metadata};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

const HEADER: &str = "x-keyrotor-test-fault";

/// What goes wrong with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The service's throttling error (not applied).
    Throttle,
    /// HTTP 500 InternalFailure (not applied).
    Http500,
    /// The attempt times out before a response (not applied).
    Timeout,
    /// The connection is reset before the request is sent (not applied).
    ConnectionReset,
    /// The service's AccessDenied error (not applied).
    AccessDenied,
    /// AWS applies the call, the response is lost (connection reset on the way back).
    LostResponse,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Throttle,
        Kind::Http500,
        Kind::Timeout,
        Kind::ConnectionReset,
        Kind::AccessDenied,
        Kind::LostResponse,
    ];
    /// The kinds whose call never reaches AWS.
    pub const REJECTED: [Kind; 5] = [
        Kind::Throttle,
        Kind::Http500,
        Kind::Timeout,
        Kind::ConnectionReset,
        Kind::AccessDenied,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Kind::Throttle => "throttle",
            Kind::Http500 => "http500",
            Kind::Timeout => "timeout",
            Kind::ConnectionReset => "reset",
            Kind::AccessDenied => "access-denied",
            Kind::LostResponse => "lost-response",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Which attempts of the chosen operation fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// Only the first: the SDK's retry layer absorbs it (when retries are on).
    First,
    /// Every attempt: the workflow sees the failure.
    Every,
}

/// One operation keyrotor called.
#[derive(Debug, Clone)]
pub struct Call {
    /// `service:Operation`, e.g. `apigateway:CreateApiKey`.
    pub op: String,
    /// For DynamoDB PutItem on the audit table: the record's phase.
    pub audit_phase: Option<String>,
    /// For DynamoDB PutItem, DeleteItem, GetItem and Query: the table.
    pub table: Option<String>,
    /// Whether the operation returned a response (after retries).
    pub ok: bool,
    /// Whether a fault was injected into it.
    pub faulted: bool,
}

impl Call {
    /// A read or write of the audit table (an append is a read of the chain's last record,
    /// then a conditional put).
    pub fn is_audit(&self) -> bool {
        self.table.as_deref().is_some_and(|t| t.contains("audit"))
    }

    /// The release of a lease (the only delete on the state table).
    pub fn is_lease_release(&self) -> bool {
        self.op == "dynamodb:DeleteItem"
            && self.table.as_deref().is_some_and(|t| t.contains("state"))
    }

    /// A call that changes AWS resources other than keyrotor's own tables.
    pub fn is_mutation(&self) -> bool {
        let name = self.op.split(':').nth(1).unwrap_or_default();
        !self.op.starts_with("dynamodb:")
            && ![
                "Get", "List", "Describe", "Query", "Scan", "Generate", "Batch", "Lookup",
            ]
            .iter()
            .any(|p| name.starts_with(p))
    }
}

#[derive(Debug, Default)]
struct State {
    target: Option<(usize, Kind, Attempts)>,
    calls: Vec<Call>,
}

/// The fault plan of one workflow run, and the trace of its calls.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

/// The index of the operation a config bag belongs to.
#[derive(Debug, Clone, Copy)]
struct OpIndex(usize);

impl Storable for OpIndex {
    type Storer = StoreReplace<Self>;
}

impl Faults {
    /// No fault: counts and traces only.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Fault `kind` on `attempts` of the operation numbered `index` (from 0).
    pub fn at(index: usize, kind: Kind, attempts: Attempts) -> Faults {
        let f = Faults::default();
        f.state.lock().unwrap().target = Some((index, kind, attempts));
        f
    }

    /// Every operation so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The operation a fault was injected into, if any.
    pub fn faulted(&self) -> Option<Call> {
        self.calls().into_iter().find(|c| c.faulted)
    }

    /// SDK configuration for keyrotor: `base` with this fault plan's HTTP client and with
    /// retries as given.
    pub fn sdk_config(&self, base: &SdkConfig, retry: aws_config::retry::RetryConfig) -> SdkConfig {
        let inner = aws_smithy_http_client::Builder::new().build_http();
        base.to_builder()
            .http_client(FaultyClient {
                inner,
                faults: self.clone(),
            })
            .retry_config(retry)
            .build()
    }

    /// Every audit-window rule broken by the trace: a mutation that is not preceded by a
    /// recorded intent (with no outcome since), in order.
    pub fn unaudited_mutations(&self) -> Vec<String> {
        let mut open = false;
        let mut problems = Vec::new();
        for (i, call) in self.calls().iter().enumerate() {
            match call.audit_phase.as_deref() {
                Some("intent") if call.ok => open = true,
                Some("outcome") | Some("decision") => open = false,
                _ => {}
            }
            if call.is_mutation() && !open {
                problems.push(format!("call {i} {} without an open intent", call.op));
            }
        }
        problems
    }
}

impl Intercept for Faults {
    fn name(&self) -> &'static str {
        "keyrotor-tests::Faults"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg
            .load::<Metadata>()
            .map(|m| {
                let service: String = m.service().chars().filter(|c| !c.is_whitespace()).collect();
                format!("{}:{}", service.to_ascii_lowercase(), m.name())
            })
            .unwrap_or_default();
        let audit_phase = context
            .input()
            .downcast_ref::<aws_sdk_dynamodb::operation::put_item::PutItemInput>()
            .filter(|p| p.table_name().is_some_and(|t| t.contains("audit")))
            .and_then(|p| p.item())
            .and_then(|item| item.get("phase"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        use aws_sdk_dynamodb::operation as ddb;
        let input = context.input();
        let table = input
            .downcast_ref::<ddb::put_item::PutItemInput>()
            .and_then(|i| i.table_name())
            .or_else(|| {
                input
                    .downcast_ref::<ddb::delete_item::DeleteItemInput>()
                    .and_then(|i| i.table_name())
            })
            .or_else(|| {
                input
                    .downcast_ref::<ddb::get_item::GetItemInput>()
                    .and_then(|i| i.table_name())
            })
            .or_else(|| {
                input
                    .downcast_ref::<ddb::query::QueryInput>()
                    .and_then(|i| i.table_name())
            })
            .map(str::to_owned);
        let mut state = self.state.lock().unwrap();
        let index = state.calls.len();
        state.calls.push(Call {
            op,
            table,
            audit_phase,
            ok: false,
            faulted: false,
        });
        cfg.interceptor_state().store_put(OpIndex(index));
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(OpIndex(index)) = cfg.load::<OpIndex>().copied() else {
            return Ok(());
        };
        let mut state = self.state.lock().unwrap();
        let Some((target, kind, attempts)) = state.target else {
            return Ok(());
        };
        if target != index {
            return Ok(());
        }
        let call = &mut state.calls[index];
        if attempts == Attempts::First && call.faulted {
            return Ok(());
        }
        call.faulted = true;
        context
            .request_mut()
            .headers_mut()
            .insert(HEADER, kind.as_str());
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(OpIndex(index)) = cfg.load::<OpIndex>().copied() {
            let ok = context.output_or_error().is_some_and(|r| r.is_ok());
            self.state.lock().unwrap().calls[index].ok = ok;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct FaultyClient {
    inner: SharedHttpClient,
    faults: Faults,
}

impl HttpClient for FaultyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
}

#[derive(Clone, Copy)]
enum Protocol {
    /// IAM, STS, SNS.
    Query,
    /// DynamoDB, Secrets Manager, ACM.
    AwsJson,
    /// API Gateway.
    RestJson,
}

fn protocol(request: &HttpRequest) -> Protocol {
    if request.headers().get("x-amz-target").is_some() {
        Protocol::AwsJson
    } else if request
        .headers()
        .get("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        Protocol::Query
    } else {
        Protocol::RestJson
    }
}

/// The error response the service itself would send.
fn error_response(protocol: Protocol, status: u16, code: &str, message: &str) -> HttpResponse {
    let (body, content_type) = match protocol {
        Protocol::Query => (
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-injected</RequestId></ErrorResponse>"
            ),
            "text/xml",
        ),
        Protocol::AwsJson => (
            serde_json::json!({"__type": code, "message": message}).to_string(),
            "application/x-amz-json-1.1",
        ),
        Protocol::RestJson => (
            serde_json::json!({"message": message}).to_string(),
            "application/json",
        ),
    };
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", content_type);
    response
        .headers_mut()
        .insert("x-amzn-errortype", code.to_owned());
    response
        .headers_mut()
        .insert("x-amzn-requestid", "fault-injected");
    response
}

/// The throttling error the service sends when a request exceeds its rate.
fn throttling(protocol: Protocol) -> HttpResponse {
    let (status, code) = match protocol {
        Protocol::Query => (400, "Throttling"),
        Protocol::AwsJson => (400, "ThrottlingException"),
        Protocol::RestJson => (429, "TooManyRequestsException"),
    };
    error_response(protocol, status, code, "Rate exceeded")
}

impl HttpConnector for FaultyConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let Some(kind) = request
            .headers_mut()
            .remove(HEADER)
            .and_then(|k| Kind::parse(&k))
        else {
            return self.inner.call(request);
        };
        let protocol = protocol(&request);
        match kind {
            Kind::Throttle => HttpConnectorFuture::ready(Ok(throttling(protocol))),
            Kind::Http500 => HttpConnectorFuture::ready(Ok(error_response(
                protocol,
                500,
                "InternalFailure",
                "We encountered an internal error. Please try again.",
            ))),
            Kind::AccessDenied => {
                let (status, code) = match protocol {
                    Protocol::Query => (403, "AccessDenied"),
                    Protocol::AwsJson => (400, "AccessDeniedException"),
                    Protocol::RestJson => (403, "AccessDeniedException"),
                };
                HttpConnectorFuture::ready(Ok(error_response(
                    protocol,
                    status,
                    code,
                    "User: arn:aws:sts::000000000000:assumed-role/keyrotor/test is not authorized to perform this action",
                )))
            }
            Kind::Timeout => HttpConnectorFuture::ready(Err(ConnectorError::timeout(
                "injected: the attempt timed out".into(),
            ))),
            Kind::ConnectionReset => HttpConnectorFuture::ready(Err(ConnectorError::io(
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected: connection reset by peer",
                )
                .into(),
            ))),
            Kind::LostResponse => {
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    // AWS applies the call; its answer never arrives.
                    let _ = sent.await;
                    Err(ConnectorError::io(
                        std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "injected: connection reset while reading the response",
                        )
                        .into(),
                    ))
                })
            }
        }
    }
}

/// `World::set_clock` without a Python process per call (the matrices move the clock
/// hundreds of times): one HTTP/1.1 POST to the emulator's control route.
pub fn set_clock(world: &super::World, now: &str) {
    control(
        world,
        "/_keyrotor/clock",
        &serde_json::json!({"account": world.account, "now": now}),
    );
}

/// `World::start_rotation`, likewise.
pub fn start_rotation(world: &super::World, secret: &str, token: &str) {
    control(
        world,
        "/_keyrotor/rotation-start",
        &serde_json::json!({"account": world.account, "region": super::REGION, "secret": secret, "token": token}),
    );
}

fn control(world: &super::World, path: &str, body: &serde_json::Value) {
    use std::io::{Read, Write};
    let host = world.base.trim_start_matches("http://");
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the emulator");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write to the emulator");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the emulator's answer");
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
        "{path}: {response}"
    );
}

/// AWS's request quotas, emulated in front of the emulator: one token bucket per service
/// (the service of the request's SigV4 credential scope: `iam`, `apigateway`, ...), refilled
/// at `per_second` up to `burst` tokens. Every request (each retry attempt too) takes a
/// token; one that finds the bucket empty is answered with the service's own throttling
/// error and never reaches the emulator. Services without a limit pass freely.
#[derive(Debug, Clone, Default)]
pub struct Quota {
    state: Arc<Mutex<QuotaState>>,
}

#[derive(Debug, Default)]
struct QuotaState {
    /// service -> (tokens per second, burst)
    limits: BTreeMap<String, (f64, f64)>,
    /// service -> (tokens, when last refilled)
    buckets: BTreeMap<String, (f64, Instant)>,
    passed: BTreeMap<String, u64>,
    throttled: BTreeMap<String, u64>,
}

impl Quota {
    /// Quotas of `(service, per_second, burst)`.
    pub fn new(limits: &[(&str, u32, u32)]) -> Quota {
        let q = Quota::default();
        {
            let mut state = q.state.lock().unwrap();
            for (service, rate, burst) in limits {
                state
                    .limits
                    .insert((*service).to_owned(), (f64::from(*rate), f64::from(*burst)));
            }
        }
        q
    }

    /// SDK configuration whose requests go through these quotas, with retries as given.
    pub fn sdk_config(&self, base: &SdkConfig, retry: aws_config::retry::RetryConfig) -> SdkConfig {
        let inner = aws_smithy_http_client::Builder::new().build_http();
        base.to_builder()
            .http_client(QuotaClient {
                inner,
                quota: self.clone(),
            })
            .retry_config(retry)
            .build()
    }

    /// Requests answered with a throttling error, per service.
    pub fn throttled(&self) -> BTreeMap<String, u64> {
        self.state.lock().unwrap().throttled.clone()
    }

    /// Requests let through, per service.
    pub fn passed(&self) -> BTreeMap<String, u64> {
        self.state.lock().unwrap().passed.clone()
    }

    /// Takes a token of `service`'s bucket; false when it is empty.
    fn admit(&self, service: &str) -> bool {
        let mut state = self.state.lock().unwrap();
        let admitted = match state.limits.get(service).copied() {
            None => true,
            Some((rate, burst)) => {
                let now = Instant::now();
                let (tokens, at) = state.buckets.get(service).copied().unwrap_or((burst, now));
                let tokens = (tokens + rate * now.duration_since(at).as_secs_f64()).min(burst);
                let (left, admitted) = if tokens >= 1.0 {
                    (tokens - 1.0, true)
                } else {
                    (tokens, false)
                };
                state.buckets.insert(service.to_owned(), (left, now));
                admitted
            }
        };
        let counts = if admitted {
            &mut state.passed
        } else {
            &mut state.throttled
        };
        *counts.entry(service.to_owned()).or_default() += 1;
        admitted
    }
}

/// The service named in a SigV4 `Authorization` header's credential scope.
fn signing_service(request: &HttpRequest) -> String {
    request
        .headers()
        .get("authorization")
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|scope| scope.split(',').next())
        .and_then(|scope| scope.split('/').nth(3))
        .unwrap_or("unsigned")
        .to_owned()
}

#[derive(Debug)]
struct QuotaClient {
    inner: SharedHttpClient,
    quota: Quota,
}

impl HttpClient for QuotaClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(QuotaConnector {
            inner: self.inner.http_connector(settings, components),
            quota: self.quota.clone(),
        })
    }
}

#[derive(Debug)]
struct QuotaConnector {
    inner: SharedHttpConnector,
    quota: Quota,
}

impl HttpConnector for QuotaConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if self.quota.admit(&signing_service(&request)) {
            self.inner.call(request)
        } else {
            HttpConnectorFuture::ready(Ok(throttling(protocol(&request))))
        }
    }
}
