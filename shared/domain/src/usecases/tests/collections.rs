//! Collections: create, read, list, delete, per organization.

use super::{assert_invalid, create, direct_body, setup};
use crate::collection::CreateCollectionInput;
use crate::error::DomainError;
use crate::ids::OrganizationId;
use crate::names::ReadableId;
use crate::page::PageRequest;
use crate::testing::{now, platform};
use crate::usecases::collections::{
    create_collection, delete_collection, get_collection, list_collections,
};

fn input(name: &str, readable_id: Option<&str>) -> CreateCollectionInput {
    CreateCollectionInput {
        name: Some(name.to_owned()),
        readable_id: readable_id.map(str::to_owned),
    }
}

#[tokio::test]
async fn a_readable_id_is_derived_from_the_name() {
    let f = platform();
    let org = OrganizationId::new();

    let a = create_collection(&f.platform, org, input("Finance Docs", None))
        .await
        .unwrap();
    let b = create_collection(&f.platform, org, input("Finance Docs", None))
        .await
        .unwrap();

    for c in [&a, &b] {
        let id = c.readable_id.as_str();
        assert!(id.starts_with("finance-docs-"), "{id}");
        assert_eq!(id.len(), "finance-docs-".len() + 6, "{id}");
        assert!(ReadableId::parse(id).is_ok(), "{id}");
        assert_eq!(c.name.as_str(), "Finance Docs");
        assert_eq!(c.organization_id, org);
        assert_eq!((c.created_at, c.modified_at), (now(), now()));
    }
    assert_ne!(
        a.readable_id, b.readable_id,
        "two collections of one name never collide"
    );
    let read = get_collection(&f.platform, org, a.readable_id.as_str())
        .await
        .unwrap();
    assert_eq!(read, a);
}

#[tokio::test]
async fn an_explicit_duplicate_is_a_conflict() {
    let f = platform();
    let org = OrganizationId::new();
    let first = create_collection(&f.platform, org, input("Docs one", Some("docs")))
        .await
        .unwrap();

    let err = create_collection(&f.platform, org, input("Docs two", Some("docs")))
        .await
        .expect_err("taken");

    assert!(matches!(err, DomainError::Conflict(_)), "{err:?}");
    let kept = get_collection(&f.platform, org, "docs").await.unwrap();
    assert_eq!(kept, first);
}

#[tokio::test]
async fn readable_ids_are_per_organization() {
    let f = platform();
    let (one, two) = (OrganizationId::new(), OrganizationId::new());

    create_collection(&f.platform, one, input("Docs one", Some("docs")))
        .await
        .unwrap();
    let theirs = create_collection(&f.platform, two, input("Docs two", Some("docs")))
        .await
        .expect("another organization may use the same readable id");

    assert_eq!(theirs.organization_id, two);
}

#[tokio::test]
async fn the_list_holds_the_organizations_collections_only() {
    let f = platform();
    let (org, other) = (OrganizationId::new(), OrganizationId::new());
    for id in ["alpha", "beta", "gamma"] {
        create_collection(&f.platform, org, input("Some docs", Some(id)))
            .await
            .unwrap();
    }
    create_collection(&f.platform, other, input("Theirs", Some("delta")))
        .await
        .unwrap();

    let page = list_collections(&f.platform, org, &PageRequest::default())
        .await
        .unwrap();
    let mut ids: Vec<&str> = page.items.iter().map(|c| c.readable_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["alpha", "beta", "gamma"]);
    assert_eq!(page.next_cursor, None);

    let first = PageRequest {
        limit: 2,
        ..PageRequest::default()
    };
    let first = list_collections(&f.platform, org, &first).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let rest = PageRequest {
        cursor: first.next_cursor.clone(),
        ..PageRequest::default()
    };
    let rest = list_collections(&f.platform, org, &rest).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(!first.items.contains(&rest.items[0]));
}

#[tokio::test]
async fn a_collection_with_connections_cannot_be_deleted() {
    let (f, org) = setup().await;
    create(&f.platform, org, direct_body()).await.unwrap();

    let err = delete_collection(&f.platform, org, "docs")
        .await
        .expect_err("not empty");

    assert!(matches!(err, DomainError::Conflict(_)), "{err:?}");
    assert!(get_collection(&f.platform, org, "docs").await.is_ok());
}

#[tokio::test]
async fn an_empty_collection_is_deleted() {
    let (f, org) = setup().await;

    let deleted = delete_collection(&f.platform, org, "docs")
        .await
        .expect("deleted");

    assert_eq!(deleted.readable_id.as_str(), "docs");
    let err = get_collection(&f.platform, org, "docs")
        .await
        .expect_err("gone");
    assert!(matches!(err, DomainError::NotFound(_)), "{err:?}");
    let err = delete_collection(&f.platform, org, "docs")
        .await
        .expect_err("gone");
    assert!(matches!(err, DomainError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn another_organizations_collection_is_not_found() {
    let (f, owner) = setup().await;
    let stranger = OrganizationId::new();

    for result in [
        get_collection(&f.platform, stranger, "docs").await,
        delete_collection(&f.platform, stranger, "docs").await,
    ] {
        assert!(
            matches!(result, Err(DomainError::NotFound(_))),
            "{result:?}"
        );
    }
    assert!(
        get_collection(&f.platform, owner, "docs").await.is_ok(),
        "still there"
    );
}

#[tokio::test]
async fn a_malformed_readable_id_is_not_found() {
    let (f, org) = setup().await;

    let err = get_collection(&f.platform, org, "Not_An_Id")
        .await
        .expect_err("unknown");

    assert!(matches!(err, DomainError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn name_is_4_to_64_characters_and_required() {
    let f = platform();
    let org = OrganizationId::new();

    for name in ["abc".to_owned(), "c".repeat(65), "    ".to_owned()] {
        assert_invalid(
            create_collection(&f.platform, org, input(&name, None)).await,
            "name",
        );
    }
    let missing = CreateCollectionInput {
        name: None,
        readable_id: Some("docs".into()),
    };
    assert_invalid(create_collection(&f.platform, org, missing).await, "name");
    let both = create_collection(&f.platform, org, input("ab", Some("Bad_Id"))).await;
    let errors = assert_invalid(both, "readable_id");
    assert!(errors.iter().any(|e| e.field == "name"), "{errors:?}");
    let page = list_collections(&f.platform, org, &PageRequest::default())
        .await
        .unwrap();
    assert!(page.items.is_empty(), "nothing was created");

    for name in ["abcd".to_owned(), "c".repeat(64)] {
        let c = create_collection(&f.platform, org, input(&name, None))
            .await
            .unwrap();
        assert_eq!(c.name.as_str(), name);
    }
}
