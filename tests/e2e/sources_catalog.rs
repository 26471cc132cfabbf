use crate::helpers::app::{problem, TestApp};
use serde_json::Value;

fn field<'a>(fields: &'a Value, name: &str) -> &'a Value {
    fields["fields"]
        .as_array()
        .expect("fields is a list")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("field {name} in {fields}"))
}

#[tokio::test]
async fn the_catalog_lists_stub_and_github_in_airweaves_shape() {
    let app = TestApp::spawn().await;
    let response = app.get("/sources").await;
    assert_eq!(response.status(), 200);
    let sources: Vec<Value> = response.json().await.unwrap();
    let names: Vec<&str> = sources
        .iter()
        .map(|s| s["short_name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"stub") && names.contains(&"github"),
        "{names:?}"
    );
    for source in &sources {
        for key in ["name", "short_name", "class_name", "description"] {
            assert!(source[key].is_string(), "{key} in {source}");
        }
        assert!(source["auth_methods"].is_array());
        assert!(source["auth_fields"]["fields"].is_array());
        assert!(source["config_fields"]["fields"].is_array());
        assert!(source["output_entity_definitions"].is_array());
        assert!(source["supports_continuous"].is_boolean());
        assert!(source["federated_search"].is_boolean());
    }

    let github: Value = app.get("/sources/github").await.json().await.unwrap();
    assert_eq!(github["name"], "GitHub");
    let token = field(&github["auth_fields"], "personal_access_token");
    assert_eq!(token["is_secret"], true);
    assert_eq!(token["required"], true);
    assert_eq!(token["type"], "string");
    assert_eq!(
        field(&github["config_fields"], "repo_name")["required"],
        true
    );
    assert_eq!(field(&github["config_fields"], "branch")["required"], false);

    let stub: Value = app.get("/sources/stub").await.json().await.unwrap();
    assert_eq!(stub["auth_methods"], serde_json::json!(["direct"]));
    assert_eq!(
        field(&stub["config_fields"], "entity_count")["type"],
        "integer"
    );
    assert_eq!(field(&stub["auth_fields"], "api_key")["is_secret"], true);
}

#[tokio::test]
async fn an_unknown_source_is_404() {
    let app = TestApp::spawn().await;
    let p = problem(app.get("/sources/nope").await, 404).await;
    assert!(p["detail"].as_str().unwrap().contains("nope"));
}
