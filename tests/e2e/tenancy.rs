use crate::helpers::app::{problem, stub_body, TestApp};
use reqwest::Method;

#[tokio::test]
async fn health_needs_no_key() {
    let app = TestApp::spawn().await;
    let response = app.request(Method::GET, "/health", None, None, &[]).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn the_openapi_document_needs_no_key() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::GET, "/openapi.json", None, None, &[])
        .await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/source-connections"]["post"].is_object());
}

#[tokio::test]
async fn a_missing_or_unknown_key_is_401_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let body = stub_body("docs", "k-123");
    for key in [None, Some("sc_not_a_real_key"), Some("")] {
        let response = app
            .request(Method::POST, "/source-connections", key, Some(&body), &[])
            .await;
        let p = problem(response, 401).await;
        assert!(p["detail"].as_str().unwrap().contains("key"), "{p}");
        let response = app
            .request(Method::GET, "/collections", key, None, &[])
            .await;
        problem(response, 401).await;
    }
    assert!(app.aws.secret_names_under_prefix().await.is_empty());
    let list: Vec<serde_json::Value> = app.get("/source-connections").await.json().await.unwrap();
    assert!(list.is_empty());
}

#[tokio::test]
async fn keys_are_issued_only_for_existing_organizations() {
    let app = TestApp::spawn().await;
    let store = app.aws.store();
    let stranger = domain::ids::OrganizationId::new();
    let refused = local_stack::stack::create_api_key(&store, stranger).await;
    assert!(refused.unwrap_err().to_string().contains("no organization"));
    let org = domain::ports::TenantStore::get_organization(&store, app.org)
        .await
        .unwrap()
        .expect("the test organization exists");
    assert_eq!(org.id, app.org);
}

#[tokio::test]
async fn a_revoked_key_is_refused() {
    let app = TestApp::spawn().await;
    let (_, key) = app.other_tenant().await;
    let ok = app
        .request(Method::GET, "/sources", Some(&key), None, &[])
        .await;
    assert_eq!(ok.status(), 200);
    let store = app.aws.store();
    let hash = domain::tenancy::ApiKeyHash::of(&secrecy::SecretString::from(key.clone()));
    assert!(domain::ports::TenantStore::revoke_api_key(&store, &hash)
        .await
        .unwrap());
    // A fresh gateway has no cached key: the store's answer counts.
    let fresh = TestApp::spawn_with(|p| *p = app.platform.clone()).await;
    let response = fresh
        .request(Method::GET, "/sources", Some(&key), None, &[])
        .await;
    problem(response, 401).await;
    let item = app
        .aws
        .item(&format!("APIKEY#{}", hash.as_str()), "META")
        .await
        .unwrap();
    assert!(
        item.contains_key("revoked_at"),
        "when it was revoked is kept"
    );

    // The warm gateway that had it cached refuses it within the documented bound.
    tokio::time::sleep(http_api::app::KEY_CACHE_TTL).await;
    let response = app
        .request(Method::GET, "/sources", Some(&key), None, &[])
        .await;
    problem(response, 401).await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    problem(app.get("/nope").await, 404).await;
    let response = app
        .request(Method::PUT, "/collections", Some(&app.api_key), None, &[])
        .await;
    assert_eq!(response.headers()["allow"], "GET, POST");
    problem(response, 405).await;
}

#[tokio::test]
async fn another_organizations_ids_answer_404() {
    let app = TestApp::spawn().await;
    app.create_collection("private-docs").await;
    let created: serde_json::Value = app
        .create_connection(&stub_body("private-docs", "k-owner"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let (_, other) = app.other_tenant().await;
    let get = |path: String| {
        let other = other.clone();
        let app = &app;
        async move {
            app.request(Method::GET, &path, Some(&other), None, &[])
                .await
        }
    };
    problem(get(format!("/source-connections/{id}")).await, 404).await;
    problem(get("/collections/private-docs".into()).await, 404).await;
    let list: Vec<serde_json::Value> = get("/source-connections".into())
        .await
        .json()
        .await
        .unwrap();
    assert!(list.is_empty(), "{list:?}");
    let response = app
        .request(
            Method::POST,
            "/source-connections",
            Some(&other),
            Some(&stub_body("private-docs", "k-intruder")),
            &[],
        )
        .await;
    problem(response, 404).await;
    let response = app
        .request(
            Method::DELETE,
            "/collections/private-docs",
            Some(&other),
            None,
            &[],
        )
        .await;
    problem(response, 404).await;
    // The owner still sees everything.
    assert_eq!(
        app.get(&format!("/source-connections/{id}")).await.status(),
        200
    );
}
