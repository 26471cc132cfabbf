//! One SDK configuration per process, every client built from it.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, LazyLock};

/// The SDK's own HTTPS client (hyper, rustls on aws-lc, the system's CA certificates), with
/// one change: its TLS set-up happens at the first AWS call instead of when a client is built.
/// The stock client loads and parses the CA store while the SDK clients are created, which
/// was most of a function's cold start; TLS is the same, only later.
#[derive(Debug, Clone)]
struct OnFirstCall(SharedHttpClient);

impl HttpClient for OnFirstCall {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    // `validate_base_client_config` keeps its default (nothing), which is the point: the
    // stock client builds its connector, CA store included, there.

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

fn https_client() -> SharedHttpClient {
    let stock = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .build_https();
    SharedHttpClient::new(OnFirstCall(stock))
}

/// An SDK client built the first time it is used, then shared by every clone. Building a
/// service client parses the SDK's endpoint partitions and assembles its runtime plugins,
/// which is most of what an SDK client costs a cold start; a function whose request never
/// touches the service never pays for it.
#[derive(Clone)]
pub struct Deferred<C>(Arc<LazyLock<C, Box<dyn FnOnce() -> C + Send>>>);

impl<C> Deferred<C> {
    pub fn new(build: impl FnOnce() -> C + Send + 'static) -> Self {
        Self(Arc::new(LazyLock::new(Box::new(build))))
    }
}

/// A client that is already built.
impl<C: Send + 'static> From<C> for Deferred<C> {
    fn from(client: C) -> Self {
        Self::new(move || client)
    }
}

impl<C> Deref for Deferred<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

impl<C> fmt::Debug for Deferred<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::any::type_name::<C>())
    }
}

/// The SDK clients a function needs, cloned into handlers. DynamoDB, which every request and
/// every run reads, is built at start-up; Secrets Manager, SQS and DynamoDB Streams on first
/// use. `AWS_ENDPOINT_URL` in the environment points all of them at an emulator.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: Deferred<aws_sdk_secretsmanager::Client>,
    pub sqs: Deferred<aws_sdk_sqs::Client>,
    /// Only a local stand-in for Lambda's event source mapping reads streams
    /// ([`crate::StreamPoller`]); deployed functions are handed the records.
    pub streams: Deferred<aws_sdk_dynamodbstreams::Client>,
}

impl AwsClients {
    /// Loads the region, credentials and endpoint from the environment.
    pub async fn from_env() -> Self {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            // In Lambda the execution role's credentials and the region are always in the
            // environment: the default chain's other providers (profile files, web identity
            // and SSO with their STS clients, IMDS) would only be built to go unused.
            loader = loader
                .region(aws_config::environment::EnvironmentVariableRegionProvider::new())
                .credentials_provider(
                    aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
                );
        }
        let config = loader.load().await;
        Self::from_config(&config)
    }

    /// Every client counts its requests ([`crate::metering`]).
    pub fn from_config(config: &SdkConfig) -> Self {
        let meter = crate::metering::RequestMeter;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(config)
                    .interceptor(meter)
                    .build(),
            ),
            secrets: {
                let config =
                    aws_sdk_secretsmanager::config::Builder::from(config).interceptor(meter);
                Deferred::new(move || aws_sdk_secretsmanager::Client::from_conf(config.build()))
            },
            sqs: {
                let config = aws_sdk_sqs::config::Builder::from(config).interceptor(meter);
                Deferred::new(move || aws_sdk_sqs::Client::from_conf(config.build()))
            },
            streams: {
                let config =
                    aws_sdk_dynamodbstreams::config::Builder::from(config).interceptor(meter);
                Deferred::new(move || aws_sdk_dynamodbstreams::Client::from_conf(config.build()))
            },
        }
    }
}
