//! The tenant isolation matrix: one organization owns a collection, a synced connection with
//! its job and entities, and an auth provider connection; another organization's key is sent
//! to every route of the API document with those ids. Every answer is a 404 (never a 403,
//! never the owner's data), every list is empty, nothing of the owner's changes, and the
//! owner still sees all of it.

use crate::helpers::app::{composio_clients, stub_body, TestApp};
use crate::helpers::syncing::{drain, entities, jobs};
use fakes::composio::FakeComposio;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const COMPOSIO_KEY: &str = "ak_isolationComposioKey_42";

/// Routes that name no tenant resource: public, or the other tenant's own namespace.
fn untenanted(path: &str) -> bool {
    matches!(
        path,
        "/health" | "/openapi.json" | "/oauth/callback" | "/sources" | "/sources/{short_name}"
    )
}

fn body_for(method: &Method, path: &str) -> Option<Value> {
    match (method.as_str(), path) {
        ("POST", "/source-connections") => Some(stub_body("owned-docs", "k-intruder-matrix")),
        ("POST", "/collections") | ("POST", "/auth-providers/connections") => None,
        ("PATCH", p) if p.starts_with("/webhooks/") => Some(json!({"disabled": true})),
        ("POST", p) if p.ends_with("/recover") => Some(json!({"since": "2026-01-01T00:00:00Z"})),
        ("PATCH", _) => Some(json!({"name": "taken over"})),
        ("POST", _) => Some(json!({})),
        _ => None,
    }
}

#[tokio::test]
async fn another_organization_gets_404_on_every_route_with_the_owners_ids() {
    let composio = FakeComposio::start(COMPOSIO_KEY).await;
    let clients = Arc::new(composio_clients(&composio.base_url));
    let app = TestApp::spawn_with(move |p| p.auth_providers = clients).await;
    app.create_collection("owned-docs").await;
    let created: Value = app
        .create_connection(&stub_body("owned-docs", "k-owner-matrix"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    drain(&app, Duration::from_secs(1)).await;
    let job = jobs(&app, &id).await.remove(0);
    let job_id = job["id"].as_str().unwrap().to_owned();
    let owned_entities = entities(&app, &id).await;
    assert!(!owned_entities.is_empty());
    let provider = app
        .post(
            "/auth-providers/connections",
            &json!({"name": "Owned Composio", "readable_id": "owned-composio",
                    "short_name": "composio", "auth_fields": {"api_key": COMPOSIO_KEY}}),
        )
        .await;
    assert_eq!(provider.status(), 201);
    let before = app
        .get(&format!("/source-connections/{id}"))
        .await
        .text()
        .await
        .unwrap();

    let (_, intruder) = app.other_tenant().await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let (mut checked, mut refused, mut empty) = (0, 0, 0);
    for (template, operations) in document["paths"].as_object().unwrap() {
        if untenanted(template) {
            continue;
        }
        let path = template
            .replace("{id}", &id)
            .replace("{job_id}", &job_id)
            .replace(
                "{readable_id}",
                if template.starts_with("/collections") {
                    "owned-docs"
                } else {
                    "owned-composio"
                },
            );
        for method in operations.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let response = app
                .request(
                    method.clone(),
                    &path,
                    Some(&intruder),
                    body_for(&method, template).as_ref(),
                    &[],
                )
                .await;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let what = format!("{method} {template}");
            assert_ne!(status, 403, "{what}: 403 tells the id exists");
            // The owner's data never shows: its key, its entities, its connection's details.
            assert!(
                !text.contains("k-owner-matrix")
                    && !text.contains("\"entity_id\"")
                    && !text.contains("\"short_name\":\"stub\""),
                "{what} answered the owner's data: {text}"
            );
            match (method.as_str(), template.contains('{')) {
                // An id of the other organization: not found, whatever the method.
                (_, true) => {
                    assert_eq!(status, 404, "{what}: {text}");
                    refused += 1;
                }
                // A list: the intruder's own, which is empty.
                ("GET", false) => {
                    assert_eq!(status, 200, "{what}: {text}");
                    assert_eq!(text, "[]", "{what} lists the owner's data");
                    empty += 1;
                }
                // Creating under the owner's collection: the collection is not found.
                ("POST", false) if template == "/source-connections" => {
                    assert_eq!(status, 404, "{what}: {text}")
                }
                // Creating in its own namespace is the intruder's right; nothing to check.
                _ => {}
            }
            checked += 1;
        }
    }
    crate::helpers::figures(&format!(
        "isolation: {checked} tenant operations with another organization's key: \
         {refused} ids answered 404, {empty} lists empty, 0 of the owner's data"
    ));
    assert!(checked >= 15, "the matrix covers the routes: {checked}");

    // Nothing of the owner's changed, and the owner still sees everything.
    let after = app
        .get(&format!("/source-connections/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(entities(&app, &id).await, owned_entities);
    assert_eq!(jobs(&app, &id).await.len(), 1);
    assert_eq!(app.get("/collections/owned-docs").await.status(), 200);
    assert_eq!(
        app.get("/auth-providers/connections/owned-composio")
            .await
            .status(),
        200
    );
}
