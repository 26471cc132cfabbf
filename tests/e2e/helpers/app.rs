//! `TestApp`: the whole HTTP API behind the dev gateway on a random port, wired to a fresh
//! stack on the emulator and a fake GitHub, with one organization and its API key.

use super::aws::TestAws;
use super::github::FakeGithub;
use super::{hygiene, logs};
use domain::ids::OrganizationId;
use domain::tenancy::RedirectOrigin;
use domain::usecases::Platform;
use http_api::App;
use local_stack::{gateway, stack};
use reqwest::{Method, Response};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The response, after its headers and body were scanned for every secret the tests used.
async fn scanned(response: Response) -> Response {
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        hygiene::scan(
            &format!("the response header {name}"),
            &String::from_utf8_lossy(value.as_bytes()),
        );
        builder = builder.header(name, value);
    }
    let body = response.bytes().await.expect("the response body");
    hygiene::scan("a response body", &String::from_utf8_lossy(&body));
    hygiene::assert_clean();
    Response::from(builder.body(body).expect("the same response"))
}

/// Auth provider clients that know Composio alone, at `base_url` (a fake).
pub fn composio_clients(base_url: &str) -> sources::ProviderClients {
    let base_url = base_url.to_owned();
    sources::ProviderClients::from_lookup(|name| {
        (name == "AUTH_PROVIDER_COMPOSIO_BASE_URL").then(|| base_url.clone())
    })
    .expect("provider clients")
}

/// The token the fake GitHub accepts.
pub const GITHUB_TOKEN: &str = "ghp_e2eValidToken000000000000000000000000";

pub struct TestApp {
    pub base_url: String,
    pub aws: TestAws,
    pub github: FakeGithub,
    pub org: OrganizationId,
    pub api_key: String,
    pub platform: Platform,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Like `spawn`, letting the test replace ports of the platform (fault injection).
    pub async fn spawn_with(customize: impl FnOnce(&mut Platform)) -> Self {
        Self::spawn_customized(|p, _| customize(p)).await
    }

    /// Like `spawn_with`, handing the customization this app's stack too (to wrap its clients).
    pub async fn spawn_customized(customize: impl FnOnce(&mut Platform, &TestAws)) -> Self {
        logs::install();
        let aws = TestAws::fresh().await;
        let github = FakeGithub::start(GITHUB_TOKEN).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let mut platform = Platform {
            store: Arc::new(aws.store()),
            entities: Arc::new(aws.entities()),
            vault: Arc::new(aws.vault()),
            fingerprint_key: Arc::new(aws.fingerprint_key()),
            queue: Arc::new(aws.queue()),
            sources: Arc::new(
                sources::Catalog::with_github_base_url(&github.base_url).expect("catalog"),
            ),
            clock: Arc::new(domain::clock::SystemClock),
            tokens: Arc::new(sources::OAuthTokens::new(
                sources::http_client().expect("http client"),
            )),
            auth_providers: Arc::new(
                sources::ProviderClients::from_lookup(|_| None).expect("provider clients"),
            ),
            oauth_redirect_uri: Some(format!("{base_url}/oauth/callback")),
            default_redirect_origins: Vec::new(),
            // The OAuth suites import tokens and watch them refreshed; the domain's tests cover
            // the default, off.
            feed: Default::default(),
            refresh_imported_tokens_with_platform_app: true,
            webhooks: Arc::new(aws.webhooks()),
            webhook_secrets: Arc::new(aws.vault()),
            // Test receivers listen on loopback, as with `make dev`.
            webhook_targets: Arc::new(delivery::ports::TargetCheck {
                policy: delivery::TargetPolicy {
                    allow_private: true,
                },
            }),
            deliveries: Arc::new(aws.deliveries()),
            webhook_transport: Arc::new(
                delivery::Transport::new(
                    delivery::TargetPolicy {
                        allow_private: true,
                    },
                    delivery::DEFAULT_TIMEOUT,
                )
                .expect("webhook transport"),
            ),
        };
        let store = aws.store();
        let org = stack::create_organization(
            &store,
            "Test organization",
            Some(RedirectOrigin::loopback_any_port()),
        )
        .await
        .expect("organization");
        let api_key = stack::create_api_key(&store, org)
            .await
            .expect("api key")
            .expose_secret()
            .to_owned();
        hygiene::register(&api_key);
        hygiene::register(GITHUB_TOKEN);
        hygiene::register(&aws.fingerprint_key_value().await);
        customize(&mut platform, &aws);
        let app = App::new(platform.clone());
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(gateway::serve(listener, app, async {
            let _ = stopped.await;
        }));
        Self {
            base_url,
            aws,
            github,
            org,
            api_key,
            platform,
            http: reqwest::Client::new(),
            stop: Some(stop),
        }
    }

    /// Another organization with its own key, in the same stack.
    pub async fn other_tenant(&self) -> (OrganizationId, String) {
        let store = self.aws.store();
        let org = stack::create_organization(
            &store,
            "Other organization",
            Some(RedirectOrigin::loopback_any_port()),
        )
        .await
        .expect("organization");
        let key = stack::create_api_key(&store, org).await.expect("key");
        hygiene::register(key.expose_secret());
        (org, key.expose_secret().to_owned())
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(key) = key {
            hygiene::register(key);
            req = req.header("x-api-key", key);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            hygiene::register_body(body);
            req = req.json(body);
        }
        let response = req.send().await.expect("request reaches the gateway");
        scanned(response).await
    }

    /// The platform's OAuth app for `source`, in this stack's vault.
    pub async fn put_oauth_app(&self, source: &str, client_id: &str, client_secret: &str) {
        self.platform
            .vault
            .put_oauth_app(
                source,
                &domain::oauth::OAuthApp {
                    client_id: client_id.into(),
                    client_secret: secrecy::SecretString::from(client_secret.to_owned()),
                },
            )
            .await
            .expect("the platform's OAuth app");
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, Some(&self.api_key), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path, Some(&self.api_key), Some(body), &[])
            .await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path, Some(&self.api_key), None, &[])
            .await
    }

    pub async fn create_collection(&self, readable_id: &str) {
        let response = self
            .post(
                "/collections",
                &serde_json::json!({"name": format!("Collection {readable_id}"), "readable_id": readable_id}),
            )
            .await;
        assert_eq!(response.status(), 201, "collection {readable_id} created");
    }

    pub async fn create_connection(&self, body: &Value) -> Response {
        self.post("/source-connections", body).await
    }
}

/// A direct `stub` create body in `collection`.
pub fn stub_body(collection: &str, api_key: &str) -> Value {
    serde_json::json!({
        "short_name": "stub",
        "readable_collection_id": collection,
        "authentication": {"credentials": {"api_key": api_key}},
        "config": {"entity_count": 10, "seed": 7},
    })
}

/// The body of a problem response, after checking its content type and shape.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert!(body["detail"].is_string(), "detail is a string: {body}");
    assert!(body["title"].is_string());
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["request_id"].as_str(), request_id.as_deref());
    body
}
