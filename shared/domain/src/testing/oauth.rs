//! The providers' token endpoints and the auth providers: scripted answers and counted calls.

use super::lock;
use crate::auth::{AuthenticationRequest, OauthToken};
use crate::auth_provider::{AccountRef, ProviderCredentials, ProviderError};
use crate::catalog::{OAuthSettings, SourceSpec};
use crate::oauth::{OAuthApp, OAuthEndpoints, PkceVerifier, TokenEndpoint, TokenError, TokenSet};
use crate::ports::AuthProviders;
use async_trait::async_trait;
use chrono::{Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::collections::VecDeque;
use std::sync::Mutex;

/// What a refresh answers when nothing was scripted: new tokens numbered by the call.
#[derive(Default)]
pub struct FakeTokens {
    script: Mutex<VecDeque<Result<(), TokenError>>>,
    /// Refresh tokens the fake received, in order.
    refreshed_with: Mutex<Vec<String>>,
    /// Client ids the fake was called with.
    clients: Mutex<Vec<String>>,
    /// Whether refreshes answer without a new refresh token.
    keep_refresh_token: Mutex<bool>,
    delay: Mutex<Option<std::time::Duration>>,
}

impl FakeTokens {
    /// The next token calls fail with these, in order.
    pub fn fail_next(&self, error: TokenError) {
        lock(&self.script).push_back(Err(error));
    }

    pub fn refreshes(&self) -> Vec<String> {
        lock(&self.refreshed_with).clone()
    }

    pub fn clients(&self) -> Vec<String> {
        lock(&self.clients).clone()
    }

    /// Refreshes answer no refresh token (the provider does not rotate).
    pub fn without_rotation(&self) {
        *lock(&self.keep_refresh_token) = true;
    }

    /// Every refresh takes this long (for racing refreshers).
    pub fn slow(&self, delay: std::time::Duration) {
        *lock(&self.delay) = Some(delay);
    }
}

#[async_trait]
impl TokenEndpoint for FakeTokens {
    async fn exchange_code(
        &self,
        _settings: &OAuthSettings,
        _endpoints: &OAuthEndpoints,
        app: &OAuthApp,
        code: &str,
        _redirect_uri: &str,
        _pkce_verifier: Option<&PkceVerifier>,
    ) -> Result<TokenSet, TokenError> {
        lock(&self.clients).push(app.client_id.clone());
        lock(&self.script).pop_front().unwrap_or(Ok(()))?;
        Ok(TokenSet {
            access_token: SecretString::from(format!("access-for-{code}")),
            refresh_token: Some(SecretString::from(format!("refresh-for-{code}"))),
            expires_at: Some(Utc::now() + Duration::hours(1)),
        })
    }

    async fn refresh(
        &self,
        _settings: &OAuthSettings,
        _endpoints: &OAuthEndpoints,
        app: &OAuthApp,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, TokenError> {
        let delay = *lock(&self.delay);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        lock(&self.clients).push(app.client_id.clone());
        let n = {
            let mut calls = lock(&self.refreshed_with);
            calls.push(refresh_token.expose_secret().to_owned());
            calls.len()
        };
        lock(&self.script).pop_front().unwrap_or(Ok(()))?;
        let rotate = !*lock(&self.keep_refresh_token);
        Ok(TokenSet {
            access_token: SecretString::from(format!("access-{n}")),
            refresh_token: rotate.then(|| SecretString::from(format!("refresh-{n}"))),
            expires_at: Some(Utc::now() + Duration::hours(1)),
        })
    }
}

/// An auth provider whose accounts answer a fixed token, or a scripted failure.
#[derive(Default)]
pub struct FakeProviders {
    fetch_error: Mutex<Option<ProviderError>>,
    fetches: Mutex<usize>,
}

impl FakeProviders {
    pub fn fail_fetch(&self, error: Option<ProviderError>) {
        *lock(&self.fetch_error) = error;
    }

    pub fn fetches(&self) -> usize {
        *lock(&self.fetches)
    }
}

#[async_trait]
impl AuthProviders for FakeProviders {
    async fn verify(&self, _credentials: &ProviderCredentials) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn fetch(
        &self,
        _credentials: &ProviderCredentials,
        _source: &SourceSpec,
        account: &AccountRef,
    ) -> Result<AuthenticationRequest, ProviderError> {
        *lock(&self.fetches) += 1;
        if let Some(e) = lock(&self.fetch_error).clone() {
            return Err(e);
        }
        Ok(AuthenticationRequest::OauthToken(OauthToken {
            access_token: SecretString::from(format!("provider-token-{}", account.account_id)),
            refresh_token: None,
            expires_at: None,
        }))
    }
}
