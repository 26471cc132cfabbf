use crate::helpers::app::{problem, stub_body, TestApp};
use serde_json::{json, Value};

#[tokio::test]
async fn create_read_list_and_delete() {
    let app = TestApp::spawn().await;
    let response = app
        .post("/collections", &json!({"name": "Finance Docs"}))
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["readable_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("finance-docs-"), "{id}");
    assert_eq!(created["name"], "Finance Docs");
    assert_eq!(created["organization_id"], app.org.to_string());

    let read: Value = app
        .get(&format!("/collections/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, created);

    let list: Vec<Value> = app.get("/collections").await.json().await.unwrap();
    assert_eq!(list, vec![created.clone()]);

    let deleted = app.delete(&format!("/collections/{id}")).await;
    assert_eq!(deleted.status(), 200);
    problem(app.get(&format!("/collections/{id}")).await, 404).await;
    problem(app.delete(&format!("/collections/{id}")).await, 404).await;
}

#[tokio::test]
async fn a_duplicate_readable_id_is_409() {
    let app = TestApp::spawn().await;
    app.create_collection("docs").await;
    let again = app
        .post(
            "/collections",
            &json!({"name": "Other name", "readable_id": "docs"}),
        )
        .await;
    problem(again, 409).await;
}

#[tokio::test]
async fn bad_collection_input_is_422_naming_the_field() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({"name": "abc"}), "name"),
        (json!({"name": "x".repeat(65)}), "name"),
        (json!({}), "name"),
        (
            json!({"name": "Good name", "readable_id": "Bad_Id"}),
            "readable_id",
        ),
        (
            json!({"name": "Good name", "vector_size": 3}),
            "vector_size",
        ),
    ] {
        let p = problem(app.post("/collections", &body).await, 422).await;
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    let list: Vec<Value> = app.get("/collections").await.json().await.unwrap();
    assert!(list.is_empty());
}

#[tokio::test]
async fn a_collection_with_connections_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    app.create_collection("busy").await;
    let created = app.create_connection(&stub_body("busy", "k-1")).await;
    assert_eq!(created.status(), 201);
    problem(app.delete("/collections/busy").await, 409).await;
    assert_eq!(app.get("/collections/busy").await.status(), 200);
}

#[tokio::test]
async fn collections_page_with_skip_limit_and_a_link_cursor() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.create_collection(&format!("col-{i}")).await;
    }
    let first = app.get("/collections?limit=2").await;
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let page: Vec<Value> = first.json().await.unwrap();
    assert_eq!(page.len(), 2);
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    assert!(link.ends_with("rel=\"next\""), "{link}");
    let mut seen: Vec<String> = page
        .iter()
        .map(|c| c["readable_id"].as_str().unwrap().to_owned())
        .collect();
    let mut next = Some(next);
    while let Some(path) = next {
        let response = app.get(&path).await;
        next = response.headers().get("link").map(|l| {
            l.to_str()
                .unwrap()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned()
        });
        let page: Vec<Value> = response.json().await.unwrap();
        seen.extend(
            page.iter()
                .map(|c| c["readable_id"].as_str().unwrap().to_owned()),
        );
    }
    seen.sort();
    assert_eq!(seen, ["col-0", "col-1", "col-2", "col-3", "col-4"]);

    let skipped: Vec<Value> = app
        .get("/collections?skip=3&limit=10")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skipped.len(), 2);
    problem(app.get("/collections?limit=0").await, 422).await;
    problem(app.get("/collections?limit=1001").await, 422).await;
    // A cursor we did not issue (here: base64 of "hello") is bad input, not an empty page.
    let p = problem(app.get("/collections?cursor=aGVsbG8").await, 422).await;
    assert_eq!(p["errors"][0]["field"], "cursor");
}
