//! Admin CLI: resources, organizations and API keys. Talks to whatever `AWS_ENDPOINT_URL` and
//! the usual AWS variables point at, with the same table names the functions read.
//!
//!     admin bootstrap                 create the tables and the queue (+DLQ) if missing
//!     admin create-org NAME [ORIGIN...]
//!                                     print the new organization's id; ORIGINs are its OAuth
//!                                     redirect allowlist (`https://app.example.com`,
//!                                     `http://localhost:*` for any port)
//!     admin set-redirect-origins ORG_ID [ORIGIN...]
//!                                     replace an organization's redirect allowlist
//!     admin create-api-key ORG_ID     print a new key (shown once; only its hash is stored)
//!     admin revoke-api-key            revoke the key read from standard input
//!     admin put-oauth-app SHORT_NAME CLIENT_ID
//!                                     store the platform's OAuth app for a source; the client
//!                                     secret is read from standard input

use aws_adapters::{AwsClients, DynamoStore};
use domain::ports::TenantStore;
use domain::tenancy::{ApiKeyHash, RedirectOrigin};
use local_stack::stack::{bootstrap, create_api_key, create_organization, LocalSettings};
use secrecy::{ExposeSecret, SecretString};
use std::process::ExitCode;

const USAGE: &str = "usage: admin bootstrap | create-org NAME [ORIGIN...] | set-redirect-origins ORG_ID [ORIGIN...] | create-api-key ORG_ID | revoke-api-key (key on stdin) | put-oauth-app SHORT_NAME CLIENT_ID (secret on stdin)";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("admin: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let settings = LocalSettings::from_env()?;
    let clients = AwsClients::from_env().await;
    let store = DynamoStore::new(clients.dynamodb.clone(), settings.state_table.clone());
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bootstrap"] => {
            let config = bootstrap(&clients, &settings).await?;
            println!("state table     {}", config.state_table);
            println!("entities table  {}", config.entities_table);
            println!("sync queue      {}", config.sync_queue_url);
        }
        ["create-org", name, origins @ ..] => {
            let origins = parse_origins(origins)?;
            println!("{}", create_organization(&store, name, origins).await?)
        }
        ["set-redirect-origins", org, origins @ ..] => {
            let org = org
                .parse()
                .map_err(|_| format!("not an organization id: {org}"))?;
            let origins = parse_origins(origins)?;
            if !store.set_redirect_origins(org, &origins).await? {
                return Err(format!("no organization {org}").into());
            }
            println!("{} origin(s) allowed", origins.len());
        }
        ["create-api-key", org] => {
            let org = org
                .parse()
                .map_err(|_| format!("not an organization id: {org}"))?;
            println!("{}", create_api_key(&store, org).await?.expose_secret());
        }
        ["revoke-api-key"] => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let key = SecretString::from(line.trim().to_owned());
            if store.revoke_api_key(&ApiKeyHash::of(&key)).await? {
                println!("revoked");
            } else {
                return Err("no such key".into());
            }
        }
        ["put-oauth-app", short_name, client_id] => {
            let catalog = sources::Catalog::from_env()?;
            if domain::ports::SourceDirectory::oauth_endpoints(&catalog, short_name).is_none() {
                return Err(format!("{short_name} is not a source with OAuth").into());
            }
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let secret = line.trim();
            if secret.is_empty() {
                return Err("the client secret (on standard input) is empty".into());
            }
            let vault = aws_adapters::SecretsVault::new(
                clients.secrets.clone(),
                settings.secrets_prefix.clone(),
            );
            let app = domain::oauth::OAuthApp {
                client_id: client_id.to_string(),
                client_secret: SecretString::from(secret.to_owned()),
            };
            domain::ports::CredentialVault::put_oauth_app(&vault, short_name, &app).await?;
            println!("stored the OAuth app of {short_name}");
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}

fn parse_origins(values: &[&str]) -> Result<Vec<RedirectOrigin>, String> {
    values.iter().map(|v| RedirectOrigin::parse(v)).collect()
}
