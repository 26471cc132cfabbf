//! The AWS SDK's requests, watched and broken: interceptors that record every request's
//! operation (`x-amz-target`, e.g. `DynamoDB_20120810.GetItem`) or fail one operation before it
//! is sent, as an unreachable service would. The adapters under test stay the real ones.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

type InterceptResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn target<'a>(context: &'a BeforeTransmitInterceptorContextRef<'_>) -> &'a str {
    context
        .request()
        .headers()
        .get("x-amz-target")
        .unwrap_or("unknown")
}

/// Clients like the given ones with an interceptor added.
pub trait WithInterceptor: Intercept + Clone + 'static {
    fn dynamodb(&self, base: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            base.config().to_builder().interceptor(self.clone()).build(),
        )
    }

    fn secrets(&self, base: &aws_sdk_secretsmanager::Client) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::from_conf(
            base.config().to_builder().interceptor(self.clone()).build(),
        )
    }

    fn sqs(&self, base: &aws_sdk_sqs::Client) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(base.config().to_builder().interceptor(self.clone()).build())
    }
}

impl<T: Intercept + Clone + 'static> WithInterceptor for T {}

/// Records the operation of every request, in order.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    /// The operations recorded since the last `take`.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// How many requests of this operation were recorded.
    pub fn count(&self, operation: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|t| *t == operation)
            .count()
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> InterceptResult {
        self.0.lock().unwrap().push(target(context).to_owned());
        Ok(())
    }
}

/// Fails every request of one operation while armed (from the start).
#[derive(Debug, Clone)]
pub struct FailCalls {
    operation: &'static str,
    detail: &'static str,
    armed: Arc<AtomicBool>,
}

impl FailCalls {
    /// `detail` goes into the error: a test checks it reaches the log and never a body.
    pub fn new(operation: &'static str, detail: &'static str) -> Self {
        Self {
            operation,
            detail,
            armed: Arc::new(AtomicBool::new(true)),
        }
    }

    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }
}

impl Intercept for FailCalls {
    fn name(&self) -> &'static str {
        "FailCalls"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> InterceptResult {
        if self.armed.load(Ordering::SeqCst) && target(context) == self.operation {
            return Err(format!(
                "injected: {} failed with internal detail {}",
                self.operation, self.detail
            )
            .into());
        }
        Ok(())
    }
}

/// Answers the first `times` BatchWriteItem and BatchGetItem requests as DynamoDB does under
/// throttling: the request went through the emulator, but the answer hands every item (or key)
/// back as unprocessed, so the adapter must send it again.
#[derive(Debug, Clone)]
pub struct Unprocessed {
    left: Arc<Mutex<usize>>,
    /// The `RequestItems` of the request in flight, and its operation.
    pending: Arc<Mutex<Option<(String, serde_json::Value)>>>,
}

impl Unprocessed {
    pub fn new(times: usize) -> Self {
        Self {
            left: Arc::new(Mutex::new(times)),
            pending: Arc::default(),
        }
    }
}

impl Intercept for Unprocessed {
    fn name(&self) -> &'static str {
        "Unprocessed"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> InterceptResult {
        let operation = target(context).to_owned();
        let batch = operation.ends_with(".BatchWriteItem") || operation.ends_with(".BatchGetItem");
        let mut left = self.left.lock().unwrap();
        if batch && *left > 0 {
            *left -= 1;
            let body: serde_json::Value =
                serde_json::from_slice(context.request().body().bytes().unwrap_or_default())?;
            *self.pending.lock().unwrap() = Some((operation, body["RequestItems"].clone()));
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> InterceptResult {
        let Some((operation, items)) = self.pending.lock().unwrap().take() else {
            return Ok(());
        };
        let answer = if operation.ends_with(".BatchWriteItem") {
            serde_json::json!({"UnprocessedItems": items})
        } else {
            serde_json::json!({"Responses": {}, "UnprocessedKeys": items})
        };
        let response = context.response_mut();
        response.headers_mut().remove("x-amz-crc32");
        response.headers_mut().remove("content-length");
        *response.body_mut() = aws_smithy_types::body::SdkBody::from(answer.to_string());
        Ok(())
    }
}
