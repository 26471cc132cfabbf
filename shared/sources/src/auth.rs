//! Credentials that come from elsewhere than the caller: a provider's OAuth token endpoint (code
//! exchanges and refreshes, [`OAuthTokens`]) and the external auth providers Composio and
//! Pipedream ([`ProviderClients`]), each the domain port it implements.

mod accounts;
mod composio;
mod oauth;
mod pipedream;
mod providers;

pub use oauth::OAuthTokens;
pub use providers::ProviderClients;
