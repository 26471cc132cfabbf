//! Every sample event in `events/` goes through the handler its function runs.

use crate::helpers::app::TestApp;
use domain::ports::TenantStore;
use domain::tenancy::ApiKeyHash;
use http_api::{App, Function};
use secrecy::SecretString;

const EXAMPLE_KEY: &str = "sc_example_key_replace_me";

#[tokio::test]
async fn every_sample_event_is_answered_by_its_function() {
    let app = TestApp::spawn().await;
    let store = app.aws.store();
    store
        .insert_api_key(
            &ApiKeyHash::of(&SecretString::from(EXAMPLE_KEY.to_owned())),
            app.org,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    app.create_collection("my-collection").await;
    let handler = App::new(app.platform.clone());

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{name} is an API Gateway event: {e}"));
        let (function, expected) = if name.starts_with("create-connection") {
            (Function::CreateConnection, 201)
        } else {
            (Function::Api, 200)
        };
        let response = http_api::handle(&handler, function, request).await;
        assert_eq!(response.status().as_u16(), expected, "{name}");
    }
}
