//! Faults at the AWS requests, for tests and the soak benchmark (never in a deployed
//! function): an interceptor on the adapters' three SDK clients counts every call, in order,
//! and breaks the one it is armed for, or a random share of them, in one of the ways a real
//! service breaks. The adapters stay the real ones, against the emulator.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type InterceptResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// How the armed call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Refused before it is applied, at every attempt: 400 ThrottlingException until the
    /// SDK's retries give up.
    Throttled,
    /// Applied, then answered 500: the SDK retries, so the request arrives twice.
    ServerError,
    /// Applied, then no answer: the caller gets an error it cannot tell from a request that
    /// never arrived, and the SDK does not retry it.
    Timeout,
    /// Refused by its condition as if another writer had come first (only requests with a
    /// condition: DynamoDB writes with a ConditionExpression, transactions holding one).
    ConditionFailed,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Throttled,
        Kind::ServerError,
        Kind::Timeout,
        Kind::ConditionFailed,
    ];
}

/// One call (its retries are not counted again) as the counting run saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `x-amz-target`, e.g. `DynamoDB_20120810.TransactWriteItems`.
    pub operation: String,
    /// The request carries a condition a `ConditionFailed` fault can fail.
    pub conditional: bool,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    armed: Option<(usize, Kind)>,
    /// Fail this share of all requests, drawn from this xorshift state, until then (if set).
    random: Option<(f64, u64)>,
    random_until: Option<std::time::Instant>,
    injected_total: usize,
    injected: Option<(Call, Kind)>,
}

/// Shared by the clients of one platform; cloning shares the count.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<State>>);

impl Faults {
    /// Starts counting from zero; `fault` (the index of the request, how it fails) is injected
    /// once when the count reaches it.
    pub fn arm(&self, fault: Option<(usize, Kind)>) {
        let mut state = self.0.lock().unwrap();
        state.calls.clear();
        state.armed = fault;
        state.injected = None;
    }

    /// Fails about `rate` (0..1) of all requests from now on, each in a kind drawn at random
    /// among those that apply to it; `seed` makes the draw repeatable. The count is not kept.
    pub fn random(rate: f64, seed: u64) -> Self {
        let faults = Self::default();
        faults.0.lock().unwrap().random = Some((rate, seed.max(1)));
        faults
    }

    /// Faults injected since the start.
    pub fn injected_total(&self) -> usize {
        self.0.lock().unwrap().injected_total
    }

    /// Stops injecting (the count goes on).
    pub fn disarm(&self) {
        self.0.lock().unwrap().armed = None;
    }

    /// The requests since `arm`.
    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().calls.clone()
    }

    /// The request that was failed, if the count reached it.
    pub fn injected(&self) -> Option<(Call, Kind)> {
        self.0.lock().unwrap().injected.clone()
    }

    /// The client with this interceptor added; in the matrix (not at a random rate), with a
    /// short retry backoff too.
    pub fn dynamodb(&self, base: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        let mut config = base.config().to_builder().interceptor(self.clone());
        if !self.is_random() {
            config = config.retry_config(quick_retries());
        }
        aws_sdk_dynamodb::Client::from_conf(config.build())
    }

    pub fn secrets(&self, base: &aws_sdk_secretsmanager::Client) -> aws_sdk_secretsmanager::Client {
        let mut config = base.config().to_builder().interceptor(self.clone());
        if !self.is_random() {
            config = config.retry_config(quick_retries());
        }
        aws_sdk_secretsmanager::Client::from_conf(config.build())
    }

    pub fn sqs(&self, base: &aws_sdk_sqs::Client) -> aws_sdk_sqs::Client {
        let mut config = base.config().to_builder().interceptor(self.clone());
        if !self.is_random() {
            config = config.retry_config(quick_retries());
        }
        aws_sdk_sqs::Client::from_conf(config.build())
    }

    fn is_random(&self) -> bool {
        self.0.lock().unwrap().random.is_some()
    }
}

/// The SDK's standard retries (three attempts, the same errors retried) with a short backoff,
/// so that a matrix of a few hundred faults does not spend its time sleeping.
fn quick_retries() -> aws_sdk_dynamodb::config::retry::RetryConfig {
    aws_sdk_dynamodb::config::retry::RetryConfig::standard()
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(20))
}

fn xorshift(mut x: u64) -> (u64, u64) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x, x)
}

/// The first item of a transaction that has a condition, and how many items there are.
fn transaction_items(body: &serde_json::Value) -> Option<(usize, usize)> {
    let items = body["TransactItems"].as_array()?;
    let first = items.iter().position(|item| {
        item.as_object()
            .and_then(|o| o.values().next())
            .is_some_and(|action| action.get("ConditionExpression").is_some())
    })?;
    Some((first, items.len()))
}

fn error_body(code: &str, extra: serde_json::Value) -> String {
    let mut body = serde_json::json!({"__type": code, "message": "injected fault"});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body.to_string()
}

/// The fault planned for one call (all its attempts), kept in the call's own config bag.
#[derive(Debug, Clone)]
struct Planned {
    kind: Kind,
    /// A transaction's cancellation reasons, for `ConditionFailed`.
    reasons: Option<serde_json::Value>,
    attempts: u32,
}

impl Storable for Planned {
    type Storer = StoreReplace<Self>;
}

/// The attempt in flight is one to answer with the planned fault.
#[derive(Debug, Clone)]
struct Answer;

impl Storable for Answer {
    type Storer = StoreReplace<Self>;
}

impl Faults {
    /// Counts the call and decides whether it fails, and how.
    fn plan(&self, call: Call) -> Option<Kind> {
        let mut state = self.0.lock().unwrap();
        let kind = if let Some((rate, seed)) = state.random {
            if state
                .random_until
                .is_some_and(|until| std::time::Instant::now() >= until)
            {
                return None;
            }
            let (draw, next) = xorshift(seed);
            let (pick, next) = xorshift(next);
            state.random = Some((rate, next));
            let kinds = if call.conditional { 4 } else { 3 };
            if (draw as f64 / u64::MAX as f64) >= rate {
                return None;
            }
            Kind::ALL[(pick % kinds) as usize]
        } else {
            let index = state.calls.len();
            state.calls.push(call.clone());
            let (at, kind) = state.armed?;
            if at != index || (kind == Kind::ConditionFailed && !call.conditional) {
                return None;
            }
            state.armed = None;
            kind
        };
        state.injected_total += 1;
        state.injected = Some((call, kind));
        Some(kind)
    }
}

impl Intercept for Faults {
    fn name(&self) -> &'static str {
        "Faults"
    }

    /// Once per call, before its attempts: a throttled call is throttled at every attempt
    /// (the SDK gives up after its retries); the other kinds hit the first attempt only.
    fn modify_before_retry_loop(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> InterceptResult {
        let request = context.request();
        let operation = request
            .headers()
            .get("x-amz-target")
            .unwrap_or("unknown")
            .to_owned();
        let body: serde_json::Value =
            serde_json::from_slice(request.body().bytes().unwrap_or_default()).unwrap_or_default();
        let transaction = transaction_items(&body);
        let conditional = body.get("ConditionExpression").is_some() || transaction.is_some();
        let Some(kind) = self.plan(Call {
            operation,
            conditional,
        }) else {
            return Ok(());
        };
        let reasons = transaction.map(|(first, len)| {
            (0..len)
                .map(|i| {
                    if i == first {
                        serde_json::json!({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"})
                    } else {
                        serde_json::json!({"Code": "None"})
                    }
                })
                .collect::<Vec<_>>()
                .into()
        });
        cfg.interceptor_state().store_put(Planned {
            kind,
            reasons,
            attempts: 0,
        });
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> InterceptResult {
        let Some(planned) = cfg.load::<Planned>().cloned() else {
            return Ok(());
        };
        let hit = planned.kind == Kind::Throttled || planned.attempts == 0;
        let kind = planned.kind;
        cfg.interceptor_state().store_put(Planned {
            attempts: planned.attempts + 1,
            ..planned
        });
        if !hit {
            cfg.interceptor_state().unset::<Answer>();
            return Ok(());
        }
        if matches!(kind, Kind::Throttled | Kind::ConditionFailed) {
            // Not applied: the emulator gets an operation it does not know and changes nothing;
            // its answer is replaced below.
            context
                .request_mut()
                .headers_mut()
                .insert("x-amz-target", "Injected.NotApplied");
        }
        cfg.interceptor_state().store_put(Answer);
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> InterceptResult {
        if cfg.load::<Answer>().is_none() {
            return Ok(());
        }
        cfg.interceptor_state().unset::<Answer>();
        let Some(Planned { kind, reasons, .. }) = cfg.load::<Planned>().cloned() else {
            return Ok(());
        };
        let (status, body): (u16, String) = match (kind, reasons) {
            (Kind::Timeout, _) => {
                return Err("injected fault: the request was sent, no answer came back".into())
            }
            (Kind::Throttled, _) => (
                400,
                error_body("ThrottlingException", serde_json::json!({})),
            ),
            (Kind::ServerError, _) => (
                500,
                error_body("InternalServerError", serde_json::json!({})),
            ),
            (Kind::ConditionFailed, Some(reasons)) => (
                400,
                error_body(
                    "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    serde_json::json!({"CancellationReasons": reasons}),
                ),
            ),
            (Kind::ConditionFailed, None) => (
                400,
                error_body(
                    "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                    serde_json::json!({}),
                ),
            ),
        };
        let response = context.response_mut();
        *response.status_mut() = status.try_into()?;
        let headers = response.headers_mut();
        headers.remove("x-amz-crc32");
        headers.remove("content-length");
        headers.remove("x-amzn-query-error");
        *response.body_mut() = SdkBody::from(body);
        Ok(())
    }
}

/// The platform's clients, failing `FAULT_RATE` (0..1) of their requests at random when that
/// variable is set (`make bench-soak`), for the first `FAULT_SECONDS` seconds if that is set
/// too; else the clients as they are.
pub fn with_faults_from_env(
    clients: &aws_adapters::AwsClients,
) -> Result<aws_adapters::AwsClients, String> {
    let Ok(rate) = std::env::var("FAULT_RATE") else {
        return Ok(clients.clone());
    };
    let rate: f64 = rate
        .parse()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or("FAULT_RATE must be a number from 0 to 1")?;
    let faults = Faults::random(rate, 0x5eed);
    if let Ok(seconds) = std::env::var("FAULT_SECONDS") {
        let seconds: u64 = seconds
            .parse()
            .map_err(|_| "FAULT_SECONDS must be a number of seconds")?;
        faults.0.lock().unwrap().random_until =
            Some(std::time::Instant::now() + Duration::from_secs(seconds));
    }
    println!(
        "failing {:.1}% of the platform's AWS requests",
        rate * 100.0
    );
    Ok(aws_adapters::AwsClients {
        dynamodb: faults.dynamodb(&clients.dynamodb),
        secrets: faults.secrets(&clients.secrets).into(),
        sqs: faults.sqs(&clients.sqs).into(),
        // Reading streams is Lambda's part, not the platform's: no faults there.
        streams: clients.streams.clone(),
    })
}
