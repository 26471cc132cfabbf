//! The source directory: three catalog shapes, scripted credential checks and entity streams.

use super::lock;
use crate::auth::AuthenticationRequest;
use crate::catalog::{AuthMethod, FieldSpec, FieldType, SourceSpec};
use crate::entity::{Entity, EntityKey};
use crate::ports::{CheckError, SourceDirectory};
use crate::stream::{EntityPage, EntityStream, StreamError, StreamRequest};
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A credential check as the directory received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckCall {
    pub short_name: String,
    pub method: AuthMethod,
}

/// Three sources, each standing for a shape of the real catalog:
/// - `stub` ("Stub"): direct only, a required secret `api_key`, config `entity_count` 1-1000;
/// - `tokens` ("Tokens"): direct (`personal_access_token`) and oauth_token, federated search;
/// - `portal` ("Portal"): OAuth flows only (browser, BYOC, auth provider).
pub struct FakeSources {
    specs: Vec<SourceSpec>,
    answer: Mutex<Result<(), CheckError>>,
    calls: Mutex<Vec<CheckCall>>,
    script: Mutex<Arc<ScriptedStream>>,
    opened: Mutex<Vec<(Option<Value>, Option<Value>)>>,
    /// The access token of every stream opened with one.
    tokens: Mutex<Vec<String>>,
    /// The page budget of every stream opened.
    page_budgets: Mutex<Vec<std::time::Duration>>,
}

/// What every stream the fake opens yields: `pages` in order (the checkpoint after page `i` is
/// `{"next": i + 1}`), an error before page `i` once (`errors`), and, when `incremental` and a
/// run starts with a cursor, an incremental run. Its final cursor is `cursor`.
#[derive(Debug, Clone, Default)]
pub struct ScriptedStream {
    pub pages: Vec<Vec<Entity>>,
    pub errors: Arc<Mutex<BTreeMap<usize, StreamError>>>,
    pub incremental: bool,
    pub cursor: Option<Value>,
    /// What page `i` reports removed (`removed[i]`), for sources whose API says what is gone.
    pub removed: Vec<Vec<EntityKey>>,
}

impl ScriptedStream {
    pub fn pages(pages: Vec<Vec<Entity>>) -> Self {
        Self {
            pages,
            ..Self::default()
        }
    }

    /// Fails once, before page `index`.
    pub fn fail_before(self, index: usize, error: StreamError) -> Self {
        lock(&self.errors).insert(index, error);
        self
    }
}

struct Playing {
    script: Arc<ScriptedStream>,
    next: usize,
    incremental: bool,
}

#[async_trait]
impl EntityStream for Playing {
    async fn next_page(&mut self) -> Result<Option<EntityPage>, StreamError> {
        if let Some(error) = lock(&self.script.errors).remove(&self.next) {
            return Err(error);
        }
        let Some(entities) = self.script.pages.get(self.next).cloned() else {
            return Ok(None);
        };
        let removed = self
            .script
            .removed
            .get(self.next)
            .cloned()
            .unwrap_or_default();
        self.next += 1;
        Ok(Some(EntityPage {
            removed,
            entities,
            checkpoint: json!({"next": self.next}),
        }))
    }

    fn incremental(&self) -> bool {
        self.incremental
    }

    fn cursor(&self) -> Option<Value> {
        self.script.cursor.clone()
    }
}

impl FakeSources {
    pub fn new() -> Self {
        Self {
            specs: vec![stub_spec(), tokens_spec(), portal_spec()],
            answer: Mutex::new(Ok(())),
            calls: Mutex::new(Vec::new()),
            script: Mutex::default(),
            opened: Mutex::default(),
            tokens: Mutex::default(),
            page_budgets: Mutex::default(),
        }
    }

    /// What every later stream yields.
    pub fn stream(&self, script: ScriptedStream) {
        *lock(&self.script) = Arc::new(script);
    }

    /// `(since, resume)` of every stream opened.
    pub fn opened(&self) -> Vec<(Option<Value>, Option<Value>)> {
        lock(&self.opened).clone()
    }

    /// The page budget of every stream opened, in order.
    pub fn page_budgets(&self) -> Vec<std::time::Duration> {
        lock(&self.page_budgets).clone()
    }

    /// The access tokens streams were opened with, in order.
    pub fn stream_tokens(&self) -> Vec<String> {
        lock(&self.tokens).clone()
    }

    /// What every later credential check answers.
    pub fn answer_checks_with(&self, answer: Result<(), CheckError>) {
        *lock(&self.answer) = answer;
    }

    pub fn check_calls(&self) -> Vec<CheckCall> {
        lock(&self.calls).clone()
    }
}

fn spec(short_name: &'static str, name: &'static str, auth_methods: Vec<AuthMethod>) -> SourceSpec {
    SourceSpec {
        short_name,
        name,
        class_name: name,
        description: "a fake source for use-case tests",
        auth_methods,
        requires_byoc: false,
        auth_fields: Vec::new(),
        config_fields: Vec::new(),
        supported_auth_providers: Vec::new(),
        entity_types: vec!["item"],
        supports_continuous: false,
        supports_incremental: false,
        federated_search: false,
        labels: Vec::new(),
        oauth: None,
    }
}

fn stub_spec() -> SourceSpec {
    SourceSpec {
        auth_fields: vec![FieldSpec::new("api_key", "API key", FieldType::String)
            .required()
            .secret()],
        config_fields: vec![
            FieldSpec::new("entity_count", "Entity count", FieldType::Integer).range(1, 1000),
        ],
        supports_incremental: true,
        ..spec("stub", "Stub", vec![AuthMethod::Direct])
    }
}

fn tokens_spec() -> SourceSpec {
    SourceSpec {
        auth_fields: vec![FieldSpec::new(
            "personal_access_token",
            "Personal access token",
            FieldType::String,
        )
        .required()
        .secret()],
        federated_search: true,
        oauth: Some(oauth_settings(true)),
        ..spec(
            "tokens",
            "Tokens",
            vec![AuthMethod::Direct, AuthMethod::OauthToken],
        )
    }
}

/// A provider's OAuth settings; `pkce` whether it takes PKCE.
fn oauth_settings(pkce: bool) -> crate::catalog::OAuthSettings {
    crate::catalog::OAuthSettings {
        authorize_url: "https://provider.example.com/oauth/authorize",
        token_url: "https://provider.example.com/oauth/token",
        scopes: vec!["read", "offline"],
        user_scopes: Vec::new(),
        scope_separator: " ",
        pkce,
        client_auth: crate::catalog::ClientAuth::Basic,
        access_token_pointer: "/access_token",
        refresh_token_pointer: Some("/refresh_token"),
        extra_authorize_params: vec![("prompt", "consent")],
    }
}

fn portal_spec() -> SourceSpec {
    SourceSpec {
        supported_auth_providers: vec!["composio", "pipedream"],
        oauth: Some(oauth_settings(true)),
        ..spec(
            "portal",
            "Portal",
            vec![
                AuthMethod::OauthBrowser,
                AuthMethod::OauthByoc,
                AuthMethod::AuthProvider,
            ],
        )
    }
}

#[async_trait]
impl SourceDirectory for FakeSources {
    fn oauth_endpoints(&self, short_name: &str) -> Option<crate::oauth::OAuthEndpoints> {
        let settings = self.spec(short_name)?.oauth.as_ref()?;
        Some(crate::oauth::OAuthEndpoints {
            authorize_url: settings.authorize_url.to_owned(),
            token_url: settings.token_url.to_owned(),
        })
    }

    fn spec(&self, short_name: &str) -> Option<&SourceSpec> {
        self.specs.iter().find(|s| s.short_name == short_name)
    }

    fn specs(&self) -> Vec<&SourceSpec> {
        self.specs.iter().collect()
    }

    async fn check_credentials(
        &self,
        short_name: &str,
        auth: &AuthenticationRequest,
        _config: &Map<String, Value>,
    ) -> Result<(), CheckError> {
        lock(&self.calls).push(CheckCall {
            short_name: short_name.to_owned(),
            method: auth.method(),
        });
        lock(&self.answer).clone()
    }

    fn open_stream(
        &self,
        _short_name: &str,
        request: StreamRequest,
    ) -> Result<Box<dyn EntityStream>, StreamError> {
        lock(&self.opened).push((request.cursor.clone(), request.checkpoint.clone()));
        lock(&self.page_budgets).push(request.page_budget);
        if let AuthenticationRequest::OauthToken(t) = &request.auth {
            lock(&self.tokens)
                .push(secrecy::ExposeSecret::expose_secret(&t.access_token).to_owned());
        }
        let script = lock(&self.script).clone();
        let next = request
            .checkpoint
            .as_ref()
            .and_then(|r| r["next"].as_u64())
            .unwrap_or(0) as usize;
        Ok(Box::new(Playing {
            incremental: script.incremental && request.cursor.is_some(),
            script,
            next,
        }))
    }
}
