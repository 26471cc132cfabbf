//! Faults at the SDK: an interceptor that fails every request of one operation before it is
//! sent, as an unreachable service would. The adapters under test are the real ones.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Fails every request whose `x-amz-target` is `target` while armed (from the start).
#[derive(Debug, Clone)]
pub struct FailCalls {
    target: &'static str,
    detail: &'static str,
    armed: Arc<AtomicBool>,
}

impl FailCalls {
    /// `detail` goes into the error: a test checks it reaches the log and never a body.
    pub fn new(target: &'static str, detail: &'static str) -> Self {
        Self {
            target,
            detail,
            armed: Arc::new(AtomicBool::new(true)),
        }
    }

    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    /// A DynamoDB client like `base` with this fault.
    pub fn dynamodb(&self, base: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            base.config().to_builder().interceptor(self.clone()).build(),
        )
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
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let target = context.request().headers().get("x-amz-target");
        if self.armed.load(Ordering::SeqCst) && target == Some(self.target) {
            return Err(format!(
                "injected: {} failed with internal detail {}",
                self.target, self.detail
            )
            .into());
        }
        Ok(())
    }
}

/// Counts the requests of one operation (`x-amz-target`) a client sends.
#[derive(Debug, Clone, Default)]
pub struct CountCalls {
    target: &'static str,
    count: Arc<std::sync::atomic::AtomicUsize>,
}

impl CountCalls {
    pub fn new(target: &'static str) -> Self {
        Self {
            target,
            count: Arc::default(),
        }
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn dynamodb(&self, base: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            base.config().to_builder().interceptor(self.clone()).build(),
        )
    }
}

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if context.request().headers().get("x-amz-target") == Some(self.target) {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}
