use crate::helpers::app::{problem, stub_body, TestApp};
use serde_json::Value;

#[tokio::test]
async fn list_items_have_airweaves_shape_and_filter_by_collection() {
    let app = TestApp::spawn().await;
    app.create_collection("alpha").await;
    app.create_collection("beta").await;
    let mut alpha_ids = Vec::new();
    for i in 0..3 {
        let created: Value = app
            .create_connection(&stub_body("alpha", &format!("k-{i}")))
            .await
            .json()
            .await
            .unwrap();
        alpha_ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let beta: Value = app
        .create_connection(&stub_body("beta", "k-b"))
        .await
        .json()
        .await
        .unwrap();

    let all: Vec<Value> = app.get("/source-connections").await.json().await.unwrap();
    assert_eq!(all.len(), 4);
    let item = all.iter().find(|i| i["id"] == beta["id"]).unwrap();
    for key in [
        "id",
        "name",
        "short_name",
        "readable_collection_id",
        "created_at",
        "modified_at",
    ] {
        assert!(item[key].is_string(), "{key}: {item}");
    }
    assert_eq!(item["is_authenticated"], true);
    assert_eq!(item["entity_count"], 0);
    assert_eq!(item["federated_search"], false);
    assert_eq!(item["auth_method"], "direct");
    assert_eq!(item["status"], "active");

    let mut seen = Vec::new();
    let mut path = Some("/source-connections?collection=alpha&limit=2".to_owned());
    while let Some(p) = path {
        let response = app.get(&p).await;
        path = response.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.contains("collection=alpha"), "{l}");
            l.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned()
        });
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
    }
    seen.sort();
    alpha_ids.sort();
    assert_eq!(seen, alpha_ids);

    let none: Vec<Value> = app
        .get("/source-connections?collection=nowhere")
        .await
        .json()
        .await
        .unwrap();
    assert!(none.is_empty());
    let skipped: Vec<Value> = app
        .get("/source-connections?skip=3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skipped.len(), 1);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let app = TestApp::spawn().await;
    problem(app.get("/source-connections/not-a-uuid").await, 404).await;
    problem(
        app.get(&format!("/source-connections/{}", uuid::Uuid::new_v4()))
            .await,
        404,
    )
    .await;
}
