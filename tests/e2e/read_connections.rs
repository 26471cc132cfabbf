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

/// Forty entities of 200 KB (8 MB in all, past Lambda's 6 MB answer): every page of
/// `GET .../entities` ends before 5 MB, the cursor walk returns all forty once, and a skip
/// lands where it says.
#[tokio::test]
async fn pages_of_large_entities_stay_under_five_megabytes() {
    use domain::ids::ConnectionId;
    use domain::ports::EntityStore;
    let app = TestApp::spawn().await;
    app.create_collection("big").await;
    let mut body = stub_body("big", "k-big");
    body["sync_immediately"] = serde_json::json!(false);
    let created: Value = app.create_connection(&body).await.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let connection: ConnectionId = id.parse().unwrap();
    let writes = crate::helpers::syncing::large_documents(40, 200_000);
    app.aws.entities().write(connection, &writes).await.unwrap();

    let mut seen = Vec::new();
    let mut path = format!("/source-connections/{id}/entities?limit=1000");
    let mut pages = 0;
    loop {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200);
        let next = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|link| link.split_once('<'))
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(url, _)| url.to_owned());
        let text = response.text().await.unwrap();
        assert!(text.len() < 5_000_000, "a page of {} bytes", text.len());
        let page: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert!(!page.is_empty());
        seen.extend(
            page.iter()
                .map(|e| e["entity_id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match next {
            Some(url) => {
                path = url
                    .split_once("://")
                    .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
                    .unwrap_or(url)
            }
            None => break,
        }
    }
    let expected: Vec<String> = (0..40).map(|i| format!("doc-{i:02}")).collect();
    assert_eq!(seen, expected, "all forty, once, in key order");
    assert!(pages >= 2, "8 MB cannot be one page");

    let skipped: Vec<Value> = app
        .get(&format!(
            "/source-connections/{id}/entities?skip=37&limit=10"
        ))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = skipped
        .iter()
        .map(|e| e["entity_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["doc-37", "doc-38", "doc-39"]);
    let past: Vec<Value> = app
        .get(&format!("/source-connections/{id}/entities?skip=40"))
        .await
        .json()
        .await
        .unwrap();
    assert!(past.is_empty());
}
