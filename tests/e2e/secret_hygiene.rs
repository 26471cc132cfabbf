//! Secret hygiene over the whole test binary: every secret a test hands the API is registered
//! (helpers/hygiene.rs) and every response body and header, and every log line any test's code
//! writes, is scanned for all of them as it happens; a hit fails the test that sees it. This
//! test adds the paths where a secret is most likely to slip out (a refused credential, a
//! failing store, an update of the credentials) and reports the figures so far.

use crate::helpers::app::{stub_body, TestApp};
use crate::helpers::hygiene;
use crate::helpers::sdk::{FailCalls, WithInterceptor};
use aws_adapters::DynamoStore;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn no_secret_reaches_a_response_a_header_or_a_log_line() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    // Created, read back, listed, updated with new credentials.
    let created: serde_json::Value = app
        .create_connection(&stub_body("docs", "sk-hygiene-created-0001"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    app.get(&format!("/source-connections/{id}")).await;
    app.get("/source-connections").await;
    let patched = app
        .request(
            reqwest::Method::PATCH,
            &format!("/source-connections/{id}"),
            Some(&app.api_key),
            Some(
                &json!({"authentication": {"credentials": {"api_key": "sk-hygiene-rotated-0002"}}}),
            ),
            &[],
        )
        .await;
    assert_eq!(patched.status(), 200);
    // Refused by the source: a 4xx that names the problem, not the credential.
    let refused = app
        .create_connection(&json!({
            "short_name": "github",
            "readable_collection_id": "docs",
            "config": {"repo_name": "octo-org/hello-world"},
            "authentication": {"credentials": {"personal_access_token": "ghp_hygieneRefused00000000000000000003"}},
        }))
        .await;
    assert!(refused.status().is_client_error(), "{}", refused.status());
    // A store failure after the secret was written: a 500 with a request id, the cause logged.
    let failing = TestApp::spawn_with(|p| {
        *p = app.platform.clone();
        let dynamodb = FailCalls::new("DynamoDB_20120810.TransactWriteItems", "hygiene")
            .dynamodb(&app.aws.clients.dynamodb);
        p.store = Arc::new(DynamoStore::new(dynamodb, &app.aws.state_table));
    })
    .await;
    let failed = failing
        .request(
            reqwest::Method::POST,
            "/source-connections",
            Some(&app.api_key),
            Some(&stub_body("docs", "sk-hygiene-failed-0004")),
            &[],
        )
        .await;
    assert_eq!(failed.status(), 500);

    hygiene::assert_clean();
    let (registered, scanned) = hygiene::figures();
    assert!(registered >= 5, "{registered}");
    crate::helpers::figures(&format!(
        "secret hygiene: {registered} secrets registered by the tests so far, {scanned} responses, \
         headers and log lines scanned, 0 hits"
    ));
}
