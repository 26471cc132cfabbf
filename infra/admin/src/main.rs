//! The operator's CLI: resources, organizations, API keys, redirect allowlists and the
//! platform's OAuth apps. Talks to whatever `AWS_ENDPOINT_URL` and the usual AWS variables point
//! at, with the same table names and secret prefix the functions read: the local emulator, or a
//! deployed stack. `admin --help` lists the commands and says which are for the emulator only;
//! `admin COMMAND --help` explains one.

use aws_adapters::{AwsClients, DynamoStore};
use domain::ports::TenantStore;
use domain::tenancy::{ApiKeyHash, ApiKeyId, RedirectOrigin};
use domain::usecases::tenancy::{revoke_api_key_by_id, revoke_organization_api_keys};
use local_stack::stack::{bootstrap, create_api_key, create_organization, LocalSettings};
use secrecy::{ExposeSecret, SecretString};
use std::process::ExitCode;

/// Where a command may be run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Creates what a deployed stack gets from its template: only against the emulator.
    EmulatorOnly,
    /// Reads or changes the tenants' records: safe against a deployed stack.
    Any,
}

/// Each command: its name, its arguments, where it may run, what it does.
const COMMANDS: &[(&str, &str, Target, &str)] = &[
    (
        "bootstrap",
        "",
        Target::EmulatorOnly,
        "create the tables, the queue (+DLQ) and the idempotency fingerprint key if missing (a \
         deployed stack has them from its template)",
    ),
    (
        "create-org",
        "NAME [ORIGIN...]",
        Target::Any,
        "print the new organization's id; ORIGINs are its OAuth redirect allowlist \
         (https://app.example.com, or http://localhost:* for any port); without any it uses the \
         platform's default (DEFAULT_REDIRECT_ORIGINS)",
    ),
    (
        "set-redirect-origins",
        "ORG_ID [ORIGIN...]",
        Target::Any,
        "replace an organization's redirect allowlist; with no ORIGIN it is set empty: no \
         redirect_url is accepted (reset-redirect-origins returns it to the default)",
    ),
    (
        "reset-redirect-origins",
        "ORG_ID",
        Target::Any,
        "the organization drops its own allowlist and uses the platform's default \
         (DEFAULT_REDIRECT_ORIGINS)",
    ),
    (
        "create-api-key",
        "ORG_ID",
        Target::Any,
        "print a new API key (shown once; only its SHA-256 is stored), and its id on standard \
         error: the id list-api-keys shows and revoke-api-key --id takes",
    ),
    (
        "list-api-keys",
        "ORG_ID",
        Target::Any,
        "list the organization's keys: each key's id, when it was created and revoked",
    ),
    (
        "revoke-api-key",
        "[--id KEY_ID]",
        Target::Any,
        "revoke the API key read from standard input or, with --id, the key with that id (for a \
         key nobody holds: lost, or leaked); it stops working within 5 s. An id that names no \
         key, or more than one, is an error and revokes nothing",
    ),
    (
        "revoke-api-keys",
        "--org ORG_ID",
        Target::Any,
        "revoke every key of the organization and print how many; each stops working within 5 s",
    ),
    (
        "put-oauth-app",
        "SHORT_NAME CLIENT_ID",
        Target::Any,
        "store the platform's OAuth app for a source; the client secret is read from standard input",
    ),
];

fn usage(only: Option<&str>) -> String {
    let mut text = String::from(
        "usage: admin COMMAND [ARGS]   (AWS_ENDPOINT_URL, STATE_TABLE, SECRETS_PREFIX and the usual AWS variables say where)\n",
    );
    for (name, args, target, what) in COMMANDS
        .iter()
        .filter(|(n, ..)| only.is_none_or(|o| o == *n))
    {
        let target = match target {
            Target::EmulatorOnly => "local emulator only",
            Target::Any => "safe against a deployed stack",
        };
        text.push_str(&format!(
            "  admin {name} {args}\n      {what}\n      [{target}]\n"
        ));
    }
    text
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] | ["help" | "--help" | "-h"] => {
            print!("{}", usage(None));
            return ExitCode::SUCCESS;
        }
        [command, rest @ ..]
            if rest.iter().any(|a| *a == "--help" || *a == "-h")
                && COMMANDS.iter().any(|(n, ..)| n == command) =>
        {
            print!("{}", usage(Some(command)));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
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
            if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
                return Err(
                    "bootstrap creates resources on the local emulator only, and \
                            AWS_ENDPOINT_URL is not set (a deployed stack has its tables and \
                            queues from its template)"
                        .into(),
                );
            }
            let config = bootstrap(&clients, &settings).await?.config;
            println!("state table     {}", config.state_table);
            println!("entities table  {}", config.entities_table);
            println!("webhooks table  {}", config.webhooks_table);
            println!("sync queue      {}", config.sync_queue_url);
            println!("webhook queue   {}", config.webhook_queue_url);
            println!(
                "idempotency key {}",
                aws_adapters::fingerprint_key_name(&config.secrets_prefix)
            );
        }
        ["create-org", name, origins @ ..] => {
            // No origins: the organization uses the platform's default allowlist.
            let origins = (!origins.is_empty())
                .then(|| parse_origins(origins))
                .transpose()?;
            println!("{}", create_organization(&store, name, origins).await?)
        }
        ["set-redirect-origins", org, origins @ ..] => {
            let org = parse_org(org)?;
            let origins = parse_origins(origins)?;
            if !store.set_redirect_origins(org, Some(&origins)).await? {
                return Err(format!("no organization {org}").into());
            }
            match origins.len() {
                0 => println!("no redirect_url accepted"),
                n => println!("{n} origin(s) allowed"),
            }
        }
        ["reset-redirect-origins", org] => {
            let org = parse_org(org)?;
            if !store.set_redirect_origins(org, None).await? {
                return Err(format!("no organization {org}").into());
            }
            println!("the platform's default allowlist (DEFAULT_REDIRECT_ORIGINS) applies");
        }
        ["create-api-key", org] => {
            let org = org
                .parse()
                .map_err(|_| format!("not an organization id: {org}"))?;
            let key = create_api_key(&store, org).await?;
            // Standard output is the key alone, for scripts that capture it.
            eprintln!("key id {}", ApiKeyHash::of(&key).key_id());
            println!("{}", key.expose_secret());
        }
        ["list-api-keys", org] => {
            let org = org
                .parse()
                .map_err(|_| format!("not an organization id: {org}"))?;
            if store.get_organization(org).await?.is_none() {
                return Err(format!("no organization {org}").into());
            }
            println!("{:<14} {:<22} revoked", "key id", "created");
            for key in store.list_api_keys(org).await? {
                let at =
                    |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
                println!(
                    "{:<14} {:<22} {}",
                    key.key_id,
                    at(key.created_at),
                    key.revoked_at.map_or_else(|| "-".to_owned(), at)
                );
            }
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
        ["revoke-api-key", "--id", id] => {
            let id = ApiKeyId::parse(id)?;
            let org = revoke_api_key_by_id(&store, &id).await?;
            println!("revoked the key {id} of organization {org}");
        }
        ["revoke-api-keys", "--org", org] => {
            let org = parse_org(org)?;
            let done = revoke_organization_api_keys(&store, org).await?;
            println!(
                "revoked {} key(s) of organization {org} ({} already revoked)",
                done.revoked, done.already_revoked
            );
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
        _ => return Err(format!("unknown command or arguments\n{}", usage(None)).into()),
    }
    Ok(())
}

fn parse_org(value: &str) -> Result<domain::ids::OrganizationId, String> {
    value
        .parse()
        .map_err(|_| format!("not an organization id: {value}"))
}

fn parse_origins(values: &[&str]) -> Result<Vec<RedirectOrigin>, String> {
    values.iter().map(|v| RedirectOrigin::parse(v)).collect()
}
