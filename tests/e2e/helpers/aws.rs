//! The AWS side of a test: its own state and entities tables, sync queue and secret prefix (with
//! its own idempotency fingerprint key), or its own webhooks table, on the emulator (moto
//! server), created fresh through the same bootstrap code the local stack uses.

use aws_adapters::bootstrap::{
    ensure_entities_table, ensure_fingerprint_key, ensure_queue, ensure_state_table,
    ensure_webhook_queue, ensure_webhooks_table,
};
use aws_adapters::{
    AwsClients, DynamoEntities, DynamoStore, DynamoWebhooks, SecretsFingerprintKey, SecretsVault,
    SqsQueue, StreamPoller,
};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::sync::Once;

static EMULATOR_ENV: Once = Once::new();

fn set_default(name: &str, value: &str) {
    if std::env::var_os(name).is_none() {
        std::env::set_var(name, value);
    }
}

/// Points the SDK at the emulator unless the environment already says where to go. Runs once:
/// tests run on many threads, and the environment must not change under a running one.
pub fn use_emulator() {
    EMULATOR_ENV.call_once(|| {
        let port = std::env::var("EMULATOR_PORT").unwrap_or_else(|_| "4566".to_owned());
        set_default("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}"));
        set_default("AWS_REGION", "us-east-1");
        set_default("AWS_ACCESS_KEY_ID", "test");
        set_default("AWS_SECRET_ACCESS_KEY", "test");
        set_default("AWS_EC2_METADATA_DISABLED", "true");
    });
}

pub struct TestAws {
    pub clients: AwsClients,
    pub state_table: String,
    pub entities_table: String,
    pub webhooks_table: String,
    pub webhooks_stream_arn: String,
    pub queue_url: String,
    /// The webhook delivery queue.
    pub webhook_queue_url: String,
    pub secrets_prefix: String,
}

impl TestAws {
    /// Fresh, uniquely named resources. Clients are built per test: each test has its own
    /// runtime, and pooled connections must not outlive the runtime that opened them.
    pub async fn fresh() -> TestAws {
        use_emulator();
        let clients = AwsClients::from_env().await;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let state_table = format!("state-{suffix}");
        let entities_table = format!("entities-{suffix}");
        let queue_name = format!("sync-{suffix}");
        ensure_state_table(&clients.dynamodb, &state_table)
            .await
            .expect("state table (is the emulator running on AWS_ENDPOINT_URL?)");
        ensure_entities_table(&clients.dynamodb, &entities_table)
            .await
            .expect("entities table");
        let webhooks_table = format!("webhooks-{suffix}");
        let webhooks_stream_arn = ensure_webhooks_table(&clients.dynamodb, &webhooks_table)
            .await
            .expect("webhooks table");
        let queue_url = ensure_queue(&clients.sqs, &queue_name)
            .await
            .expect("sync queue");
        let webhook_queue_url = ensure_webhook_queue(&clients.sqs, &format!("deliveries-{suffix}"))
            .await
            .expect("webhook queue");
        let secrets_prefix = format!("test-{suffix}");
        ensure_fingerprint_key(&clients.secrets, &secrets_prefix)
            .await
            .expect("idempotency fingerprint key");
        TestAws {
            clients,
            state_table,
            entities_table,
            webhooks_table,
            webhooks_stream_arn,
            queue_url,
            webhook_queue_url,
            secrets_prefix,
        }
    }

    /// The state store, recording events in this stack's webhooks table.
    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.clients.dynamodb.clone(), &self.state_table)
            .with_outbox(&self.webhooks_table)
    }

    pub fn webhooks(&self) -> DynamoWebhooks {
        DynamoWebhooks::new(self.clients.dynamodb.clone(), &self.webhooks_table)
    }

    pub fn entities(&self) -> DynamoEntities {
        DynamoEntities::new(self.clients.dynamodb.clone(), &self.entities_table)
    }

    pub fn vault(&self) -> SecretsVault {
        SecretsVault::new(self.clients.secrets.clone(), &self.secrets_prefix)
    }

    pub fn fingerprint_key(&self) -> SecretsFingerprintKey {
        SecretsFingerprintKey::new(self.clients.secrets.clone(), &self.secrets_prefix)
    }

    /// The value of this stack's idempotency fingerprint key.
    pub async fn fingerprint_key_value(&self) -> String {
        self.clients
            .secrets
            .get_secret_value()
            .secret_id(aws_adapters::fingerprint_key_name(&self.secrets_prefix))
            .send()
            .await
            .expect("the fingerprint key")
            .secret_string
            .expect("a text secret")
    }

    /// The webhook delivery queue.
    pub fn deliveries(&self) -> SqsQueue {
        self.queue_at(&self.webhook_queue_url)
    }

    pub fn queue(&self) -> SqsQueue {
        self.queue_at(&self.queue_url)
    }

    /// A queue adapter for another URL, e.g. one that does not exist, to make sends fail.
    pub fn queue_at(&self, queue_url: &str) -> SqsQueue {
        SqsQueue::new(self.clients.sqs.clone(), queue_url)
    }

    /// Names of the secrets under this test's prefix, but for the stack's own idempotency
    /// fingerprint key (which every stack has from its bootstrap, as from its template).
    pub async fn secret_names_under_prefix(&self) -> Vec<String> {
        let prefix = format!("{}/", self.secrets_prefix);
        let fingerprint_key = aws_adapters::fingerprint_key_name(&self.secrets_prefix);
        let filter = aws_sdk_secretsmanager::types::Filter::builder()
            .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
            .values(&prefix)
            .build();
        let mut names = Vec::new();
        let mut next_token = None;
        loop {
            let out = self
                .clients
                .secrets
                .list_secrets()
                .filters(filter.clone())
                .set_next_token(next_token)
                .send()
                .await
                .expect("list secrets");
            // The name filter matches prefixes of words too; keep only true prefixes.
            names.extend(
                out.secret_list()
                    .iter()
                    .filter_map(|s| s.name())
                    .filter(|name| name.starts_with(&prefix) && *name != fingerprint_key)
                    .map(str::to_owned),
            );
            match out.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => break,
            }
        }
        names.sort();
        names
    }

    /// Bodies of the messages waiting on the sync queue (received and deleted).
    pub async fn receive_messages(&self) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let out = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(if bodies.is_empty() { 1 } else { 0 })
                .send()
                .await
                .expect("receive messages");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return bodies;
            }
            for message in messages {
                if let Some(handle) = message.receipt_handle() {
                    self.clients
                        .sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete message");
                }
                bodies.extend(message.body);
            }
        }
    }

    /// Every `(pk, sk)` of the state table, sorted.
    pub async fn scan_keys(&self) -> Vec<(String, String)> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .clients
                .dynamodb
                .scan()
                .table_name(&self.state_table)
                .projection_expression("pk, sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan state table");
            for item in out.items.unwrap_or_default() {
                let text = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                keys.push((text("pk"), text("sk")));
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        keys.sort();
        keys
    }

    /// How many connection items (`ORG#o | CONN#id`) the state table holds.
    pub async fn connection_items_count(&self) -> usize {
        self.scan_keys()
            .await
            .iter()
            .filter(|(pk, sk)| pk.starts_with("ORG#") && sk.starts_with("CONN#"))
            .count()
    }

    /// Sets one attribute of a job item behind the platform's back (a cancel request, a dead
    /// holder's lease running out).
    pub async fn set_job_attribute(
        &self,
        connection: impl std::fmt::Display,
        job: impl std::fmt::Display,
        attribute: &str,
        value: AttributeValue,
    ) {
        self.clients
            .dynamodb
            .update_item()
            .table_name(&self.state_table)
            .key("pk", AttributeValue::S(format!("CONN#{connection}")))
            .key("sk", AttributeValue::S(format!("JOB#{job}")))
            .update_expression("SET #attribute = :value")
            .expression_attribute_names("#attribute", attribute)
            .expression_attribute_values(":value", value)
            .send()
            .await
            .expect("update the job item");
    }

    /// One raw item of the state table.
    pub async fn item(&self, pk: &str, sk: &str) -> Option<HashMap<String, AttributeValue>> {
        self.clients
            .dynamodb
            .get_item()
            .table_name(&self.state_table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
    }

    /// Writes one raw item of the state table, as data written by an older version would be.
    pub async fn put_item(&self, item: HashMap<String, AttributeValue>) {
        self.clients
            .dynamodb
            .put_item()
            .table_name(&self.state_table)
            .set_item(Some(item))
            .send()
            .await
            .expect("put item");
    }
}

/// A test's own webhooks table, and the stream it writes.
pub struct TestWebhooks {
    pub clients: AwsClients,
    pub table: String,
    pub stream_arn: String,
}

impl TestWebhooks {
    /// A fresh, uniquely named webhooks table.
    pub async fn fresh() -> TestWebhooks {
        use_emulator();
        let clients = AwsClients::from_env().await;
        let table = format!("webhooks-{}", uuid::Uuid::new_v4().simple());
        let stream_arn = ensure_webhooks_table(&clients.dynamodb, &table)
            .await
            .expect("webhooks table (is the emulator running on AWS_ENDPOINT_URL?)");
        TestWebhooks {
            clients,
            table,
            stream_arn,
        }
    }

    /// A poller of the table's stream from its trim horizon, as a new event source mapping.
    pub fn poller(&self) -> StreamPoller {
        StreamPoller::new(self.clients.streams.clone(), &self.stream_arn)
    }

    pub async fn put(&self, item: HashMap<String, AttributeValue>) {
        self.clients
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .expect("put item");
    }

    /// One put of a transaction on the table.
    pub fn transact_put(
        &self,
        item: HashMap<String, AttributeValue>,
    ) -> aws_sdk_dynamodb::types::TransactWriteItem {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .expect("a put");
        aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(put)
            .build()
    }
}
