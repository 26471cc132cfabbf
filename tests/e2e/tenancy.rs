use crate::helpers::admin::admin;
use crate::helpers::app::{problem, stub_body, TestApp};
use crate::helpers::aws::TestAws;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::ids::OrganizationId;
use domain::tenancy::ApiKeyHash;
use reqwest::Method;
use secrecy::SecretString;
use std::collections::HashMap;

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

/// The id `list-api-keys` shows for a key: the first 12 hex digits of its SHA-256.
fn id_of(key: &str) -> String {
    ApiKeyHash::of(&SecretString::from(key.to_owned())).as_str()[..12].to_owned()
}

/// The status of a request with `key` to a route that needs one.
async fn status_with(app: &TestApp, key: &str) -> u16 {
    app.request(Method::GET, "/sources", Some(key), None, &[])
        .await
        .status()
        .as_u16()
}

/// `admin list-api-keys ORG`: each key's id and whether it is revoked.
async fn listed(aws: &TestAws, org: OrganizationId) -> Vec<(String, bool)> {
    let run = admin(aws, &["list-api-keys", &org.to_string()], None).await;
    assert!(run.success, "list-api-keys: {}", run.stderr);
    run.stdout
        .lines()
        .skip(1)
        .map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            // id, created (date and time), revoked ("-" or date and time)
            (columns[0].to_owned(), columns[3] != "-")
        })
        .collect()
}

/// `admin create-api-key ORG`: the new key (the last line of its output) and the id it showed.
async fn create_key(aws: &TestAws, org: OrganizationId) -> (String, String) {
    let run = admin(aws, &["create-api-key", &org.to_string()], None).await;
    assert!(run.success, "create-api-key: {}", run.stderr);
    let key = run
        .stdout
        .lines()
        .last()
        .expect("the key")
        .trim()
        .to_owned();
    crate::helpers::hygiene::register(&key);
    let id = id_of(&key);
    assert!(
        run.stderr.contains(&format!("key id {id}")),
        "create-api-key shows the new key's id {id}: {}",
        run.stderr
    );
    (key, id)
}

/// A key as the platform stored it before keys had ids of their own: the key item and the
/// organization's listing entry, without the full hash in the entry or an id's pointer item.
async fn insert_key_written_before_ids(aws: &TestAws, org: OrganizationId, hash: &str) {
    let text = |v: &str| AttributeValue::S(v.to_owned());
    let created_at = serde_json::to_value(chrono::Utc::now()).unwrap();
    let created_at = created_at.as_str().unwrap();
    aws.put_item(HashMap::from([
        ("pk".to_owned(), text(&format!("APIKEY#{hash}"))),
        ("sk".to_owned(), text("META")),
        ("organization_id".to_owned(), text(&org.to_string())),
        ("revoked".to_owned(), AttributeValue::Bool(false)),
        ("created_at".to_owned(), text(created_at)),
    ]))
    .await;
    aws.put_item(HashMap::from([
        ("pk".to_owned(), text(&format!("ORG#{org}"))),
        ("sk".to_owned(), text(&format!("APIKEY#{}", &hash[..12]))),
        ("key_id".to_owned(), text(&hash[..12])),
        ("created_at".to_owned(), text(created_at)),
    ]))
    .await;
}

fn random_key() -> String {
    let key = format!("sc_{}", uuid::Uuid::new_v4().simple());
    crate::helpers::hygiene::register(&key);
    key
}

/// An operator who does not hold a key (lost, or leaked by the customer) revokes it by the id
/// that `create-api-key` and `list-api-keys` show; an id that names no key changes nothing.
#[tokio::test]
async fn a_key_is_revoked_by_its_id_without_its_plaintext() {
    let app = TestApp::spawn().await;
    let (lost, id) = create_key(&app.aws, app.org).await;
    let before = listed(&app.aws, app.org).await;
    assert!(before.contains(&(id.clone(), false)), "{before:?}");
    assert_eq!(status_with(&app, &lost).await, 200);
    assert_eq!(status_with(&app, &app.api_key).await, 200);

    let unknown = if id.starts_with('0') {
        "fffffffffff0"
    } else {
        "000000000000"
    };
    let run = admin(&app.aws, &["revoke-api-key", "--id", unknown], None).await;
    assert!(!run.success);
    assert!(run.stderr.contains("no API key"), "{}", run.stderr);
    for malformed in ["abc", "ABCDEF012345", &format!("{id}0"), "zzzzzzzzzzzz"] {
        let run = admin(&app.aws, &["revoke-api-key", "--id", malformed], None).await;
        assert!(!run.success, "{malformed}");
        assert!(run.stderr.contains("not a key id"), "{}", run.stderr);
    }
    assert_eq!(listed(&app.aws, app.org).await, before, "nothing changed");

    let run = admin(&app.aws, &["revoke-api-key", "--id", &id], None).await;
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("revoked the key {id} of organization {}", app.org)),
        "{}",
        run.stdout
    );
    // A fresh gateway has no cached key: the store's answer counts.
    let fresh = TestApp::spawn_with(|p| *p = app.platform.clone()).await;
    problem(
        fresh
            .request(Method::GET, "/sources", Some(&lost), None, &[])
            .await,
        401,
    )
    .await;
    assert_eq!(status_with(&fresh, &app.api_key).await, 200);
    let after = listed(&app.aws, app.org).await;
    assert!(after.contains(&(id.clone(), true)), "{after:?}");
    assert!(after.contains(&(id_of(&app.api_key), false)), "{after:?}");

    // The warm gateway that had it cached refuses it within the documented bound.
    tokio::time::sleep(http_api::app::KEY_CACHE_TTL).await;
    assert_eq!(status_with(&app, &lost).await, 401);
    assert_eq!(status_with(&app, &app.api_key).await, 200);

    // Revoking it again changes nothing; the key itself on standard input still revokes it.
    let run = admin(&app.aws, &["revoke-api-key", "--id", &id], None).await;
    assert!(run.success, "{}", run.stderr);
    let run = admin(&app.aws, &["revoke-api-key"], Some(&app.api_key)).await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(status_with(&fresh, &app.api_key).await, 401);
}

/// `revoke-api-keys --org` revokes every key of that organization, those created before keys
/// had ids too, and none of another organization's.
#[tokio::test]
async fn all_of_an_organizations_keys_are_revoked_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let (other_org, other_key) = app.other_tenant().await;
    let (second, _) = create_key(&app.aws, app.org).await;
    let old = random_key();
    insert_key_written_before_ids(
        &app.aws,
        app.org,
        ApiKeyHash::of(&SecretString::from(old.clone())).as_str(),
    )
    .await;
    for key in [&app.api_key, &second, &old, &other_key] {
        assert_eq!(status_with(&app, key).await, 200);
    }

    let run = admin(
        &app.aws,
        &["revoke-api-keys", "--org", &app.org.to_string()],
        None,
    )
    .await;
    assert!(run.success, "{}", run.stderr);
    assert!(run.stdout.contains("revoked 3 "), "{}", run.stdout);

    let fresh = TestApp::spawn_with(|p| *p = app.platform.clone()).await;
    for key in [&app.api_key, &second, &old] {
        assert_eq!(status_with(&fresh, key).await, 401);
    }
    assert_eq!(status_with(&fresh, &other_key).await, 200);
    let mine = listed(&app.aws, app.org).await;
    assert_eq!(mine.len(), 3);
    assert!(mine.iter().all(|(_, revoked)| *revoked), "{mine:?}");
    assert_eq!(
        listed(&app.aws, other_org).await,
        vec![(id_of(&other_key), false)]
    );

    let stranger = OrganizationId::new().to_string();
    let run = admin(&app.aws, &["revoke-api-keys", "--org", &stranger], None).await;
    assert!(!run.success);
    assert!(run.stderr.contains("no organization"), "{}", run.stderr);
}

/// A key stored before keys had ids is revoked by the id its listing shows. Two such keys that
/// share that id (the first 12 hex digits of their hashes) are refused, not both revoked.
#[tokio::test]
async fn a_key_created_before_key_ids_is_revoked_by_its_listed_id() {
    let app = TestApp::spawn().await;
    let old = random_key();
    let hash = ApiKeyHash::of(&SecretString::from(old.clone()));
    insert_key_written_before_ids(&app.aws, app.org, hash.as_str()).await;
    let id = id_of(&old);
    assert!(listed(&app.aws, app.org)
        .await
        .contains(&(id.clone(), false)));
    assert_eq!(status_with(&app, &old).await, 200);

    let run = admin(&app.aws, &["revoke-api-key", "--id", &id], None).await;
    assert!(run.success, "{}", run.stderr);
    let fresh = TestApp::spawn_with(|p| *p = app.platform.clone()).await;
    assert_eq!(status_with(&fresh, &old).await, 401);
    assert_eq!(status_with(&fresh, &app.api_key).await, 200);
    assert!(listed(&app.aws, app.org).await.contains(&(id, true)));

    let shared = id_of(&random_key());
    let shared = shared.as_str();
    let twins = [
        format!("{shared}{}", "a".repeat(52)),
        format!("{shared}{}", "b".repeat(52)),
    ];
    for twin in &twins {
        insert_key_written_before_ids(&app.aws, app.org, twin).await;
    }
    let run = admin(&app.aws, &["revoke-api-key", "--id", shared], None).await;
    assert!(!run.success);
    assert!(run.stderr.contains("more than one"), "{}", run.stderr);
    for twin in &twins {
        let item = app
            .aws
            .item(&format!("APIKEY#{twin}"), "META")
            .await
            .unwrap();
        assert_eq!(item.get("revoked"), Some(&AttributeValue::Bool(false)));
    }
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
