//! Malformed create requests: a 422 naming each bad field, and nothing written anywhere.

use super::{assert_invalid, assert_nothing_written, create, direct_body, setup, with};
use crate::error::FieldError;
use crate::usecases::create_connection::CreateConnectionInput;
use serde_json::{json, Value};

/// Creates `body` on fresh fakes, expects a 422 naming `field` and no trace of the attempt.
async fn rejects(body: Value, field: &str) -> Vec<FieldError> {
    let (f, org) = setup().await;
    let errors = assert_invalid(create(&f.platform, org, body).await, field);
    assert_nothing_written(&f);
    errors
}

/// Creates `body` on fresh fakes and expects a connection.
async fn accepts(body: Value) -> crate::connection::SourceConnection {
    let (f, org) = setup().await;
    create(&f.platform, org, body)
        .await
        .expect("accepted")
        .connection
}

#[tokio::test]
async fn name_is_4_to_42_characters() {
    rejects(with(direct_body(), json!({"name": "abc"})), "name").await;
    rejects(with(direct_body(), json!({"name": "n".repeat(43)})), "name").await;
    rejects(with(direct_body(), json!({"name": "    "})), "name").await;

    assert_eq!(
        accepts(with(direct_body(), json!({"name": "abcd"})))
            .await
            .name,
        "abcd"
    );
    let longest = "n".repeat(42);
    assert_eq!(
        accepts(with(direct_body(), json!({"name": longest})))
            .await
            .name,
        longest
    );
}

#[tokio::test]
async fn description_is_at_most_255_characters() {
    rejects(
        with(direct_body(), json!({"description": "d".repeat(256)})),
        "description",
    )
    .await;

    let longest = "d".repeat(255);
    let c = accepts(with(direct_body(), json!({"description": longest}))).await;
    assert_eq!(c.description, Some(longest));
}

#[tokio::test]
async fn short_name_is_required_and_shaped() {
    let mut body = direct_body();
    body.as_object_mut().unwrap().remove("short_name");
    rejects(body, "short_name").await;
    rejects(
        with(direct_body(), json!({"short_name": "Stub!"})),
        "short_name",
    )
    .await;
}

#[tokio::test]
async fn readable_collection_id_is_required_and_shaped() {
    let mut body = direct_body();
    body.as_object_mut()
        .unwrap()
        .remove("readable_collection_id");
    rejects(body, "readable_collection_id").await;
    rejects(
        with(direct_body(), json!({"readable_collection_id": "Docs_2"})),
        "readable_collection_id",
    )
    .await;
}

#[tokio::test]
async fn cron_must_be_five_valid_fields() {
    for cron in ["61 * * * *", "0 0 * * * *", "every day", ""] {
        rejects(
            with(direct_body(), json!({"schedule": {"cron": cron}})),
            "schedule.cron",
        )
        .await;
    }
    rejects(
        with(direct_body(), json!({"schedule": {"cron": 5}})),
        "schedule.cron",
    )
    .await;
    rejects(
        with(direct_body(), json!({"schedule": {"crn": "0 * * * *"}})),
        "schedule.crn",
    )
    .await;
    rejects(
        with(direct_body(), json!({"schedule": "daily"})),
        "schedule",
    )
    .await;
}

#[tokio::test]
async fn continuous_sync_needs_a_source_that_supports_it() {
    let (f, org) = setup().await;
    let body = with(direct_body(), json!({"schedule": {"continuous": true}}));

    let err = create(&f.platform, org, body).await.expect_err("refused");

    assert!(
        matches!(&err, crate::DomainError::BadRequest(m) if m.contains("continuous")),
        "{err:?}"
    );
    assert_nothing_written(&f);
}

#[tokio::test]
async fn config_is_checked_against_the_source_schema() {
    let field = "config.entity_count";
    rejects(
        with(direct_body(), json!({"config": {"entity_count": "ten"}})),
        field,
    )
    .await;
    rejects(
        with(direct_body(), json!({"config": {"entity_count": 2.5}})),
        field,
    )
    .await;
    rejects(
        with(direct_body(), json!({"config": {"entity_count": 0}})),
        field,
    )
    .await;
    rejects(
        with(direct_body(), json!({"config": {"entity_count": 1001}})),
        field,
    )
    .await;
    rejects(
        with(direct_body(), json!({"config": ["entity_count"]})),
        "config",
    )
    .await;

    for bound in [1, 1000] {
        let c = accepts(with(
            direct_body(),
            json!({"config": {"entity_count": bound}}),
        ))
        .await;
        assert_eq!(c.config.unwrap()["entity_count"], bound);
    }
}

#[tokio::test]
async fn unknown_config_field_is_rejected() {
    let errors = rejects(
        with(
            direct_body(),
            json!({"config": {"entity_count": 3, "colour": "red"}}),
        ),
        "config.colour",
    )
    .await;
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[tokio::test]
async fn credentials_are_checked_against_the_source_auth_fields() {
    let unknown = json!({"authentication": {"credentials": {"api_key": "k", "apikey": "k"}}});
    rejects(
        with(direct_body(), unknown),
        "authentication.credentials.apikey",
    )
    .await;

    let missing = json!({"authentication": {"credentials": {"token": "k"}}});
    let errors = rejects(
        with(direct_body(), missing),
        "authentication.credentials.api_key",
    )
    .await;
    assert!(errors
        .iter()
        .any(|e| e.field == "authentication.credentials.token"));

    let empty = json!({"authentication": {"credentials": {}}});
    rejects(with(direct_body(), empty), "authentication.credentials").await;

    let unknown_field = json!({"authentication": {"api_key": "k"}});
    rejects(with(direct_body(), unknown_field), "authentication.api_key").await;
}

#[tokio::test]
async fn mixed_authentication_rows_name_both_methods() {
    let body = with(
        direct_body(),
        json!({"authentication": {"credentials": {"api_key": "k"}, "access_token": "t"}}),
    );

    let errors = rejects(body, "authentication").await;

    let message = &errors
        .iter()
        .find(|e| e.field == "authentication")
        .unwrap()
        .message;
    assert!(message.contains("direct"), "{message}");
    assert!(message.contains("oauth_token"), "{message}");
}

#[tokio::test]
async fn redirect_url_belongs_to_browser_flows_only() {
    rejects(
        with(
            direct_body(),
            json!({"redirect_url": "https://app.example.com/done"}),
        ),
        "redirect_url",
    )
    .await;
    rejects(
        with(
            direct_body(),
            json!({"redirect_url": "javascript:alert(1)"}),
        ),
        "redirect_url",
    )
    .await;
}

#[tokio::test]
async fn every_bad_field_is_reported_at_once() {
    let body = with(
        direct_body(),
        json!({
            "name": "ab",
            "description": "d".repeat(300),
            "readable_collection_id": "NO",
            "schedule": {"cron": "nope"},
            "config": {"entity_count": -1},
        }),
    );

    let errors = rejects(body, "name").await;

    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    for field in [
        "description",
        "readable_collection_id",
        "schedule.cron",
        "config.entity_count",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
}

#[test]
fn fields_outside_the_request_schema_do_not_parse() {
    let typo = with(direct_body(), json!({"nmae": "Reports"}));
    assert!(serde_json::from_value::<CreateConnectionInput>(typo).is_err());
}

/// Secrets Manager holds at most 64 KiB a secret: every credential field has a bound far inside
/// it, for direct credentials, imported tokens and a customer's OAuth app alike.
#[tokio::test]
async fn oversized_credentials_are_refused_naming_the_field() {
    let huge = "k".repeat(70_000);
    rejects(
        with(
            direct_body(),
            json!({"authentication": {"credentials": {"api_key": huge}}}),
        ),
        "authentication.credentials.api_key",
    )
    .await;
    rejects(
        with(
            direct_body(),
            json!({"authentication": {"access_token": huge}}),
        ),
        "authentication.access_token",
    )
    .await;
    rejects(
        with(
            direct_body(),
            json!({"authentication": {"access_token": "t", "refresh_token": huge}}),
        ),
        "authentication.refresh_token",
    )
    .await;
    rejects(
        with(
            direct_body(),
            json!({"authentication": {"client_id": "id", "client_secret": huge}}),
        ),
        "authentication.client_secret",
    )
    .await;

    // Each field within its bound, together more than a secret holds (4-byte characters).
    rejects(
        with(
            direct_body(),
            json!({"authentication": {"client_id": "😀".repeat(16_000), "client_secret": "😀".repeat(1_000)}}),
        ),
        "authentication",
    )
    .await;

    // The bound itself is accepted.
    let longest = "k".repeat(crate::catalog::MAX_STRING_CHARS);
    accepts(with(
        direct_body(),
        json!({"authentication": {"credentials": {"api_key": longest}}}),
    ))
    .await;
}

#[test]
fn a_secret_document_over_the_vault_limit_is_refused_naming_the_field() {
    use crate::ports::{check_secret_size, SECRET_VALUE_LIMIT};
    use secrecy::SecretString;
    let fits = SecretString::from("x".repeat(SECRET_VALUE_LIMIT));
    assert!(check_secret_size(&fits, "authentication").is_ok());
    let over = SecretString::from("x".repeat(SECRET_VALUE_LIMIT + 1));
    let error = check_secret_size(&over, "authentication").unwrap_err();
    assert_eq!(error.field, "authentication");
    assert!(error.message.contains("65537 bytes"), "{}", error.message);
    assert!(
        !error.message.contains("xxx"),
        "the value itself is never quoted"
    );
}
