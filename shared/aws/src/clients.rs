//! One SDK configuration per process, every client built from it.

use aws_config::{BehaviorVersion, SdkConfig};

/// The SDK clients a function needs, built once per cold start and cloned into handlers.
/// `AWS_ENDPOINT_URL` in the environment points all of them at an emulator.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Loads the region, credentials and endpoint from the environment.
    pub async fn from_env() -> Self {
        let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
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
            secrets: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(config)
                    .interceptor(meter)
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(config)
                    .interceptor(meter)
                    .build(),
            ),
        }
    }
}
