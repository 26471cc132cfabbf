//! A connection's secret after its create: staged, marked, promoted; older never over newer.

use super::{create, direct_body, setup};
use crate::ids::{ConnectionId, OrganizationId};
use crate::ports::{CredentialVault, SecretVersionStore, Succession};
use crate::testing::Fakes;
use crate::usecases::secrets;
use secrecy::{ExposeSecret, SecretString};

/// A stub connection: its secret's first version is its create's.
async fn connection() -> (Fakes, OrganizationId, ConnectionId) {
    let (f, org) = setup().await;
    let id = create(&f.platform, org, direct_body())
        .await
        .unwrap()
        .connection
        .id;
    (f, org, id)
}

fn value(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

/// Two refreshes of the same version: the first to mark wins, the other's tokens are kept as a
/// staged version and never become current, even when it promotes last.
#[tokio::test]
async fn a_write_that_follows_a_superseded_version_is_kept_but_never_current() {
    let (f, org, id) = connection().await;
    let read = secrets::read(&f.platform, org, id).await.unwrap().unwrap();

    let newer = secrets::write(
        &f.platform,
        org,
        id,
        &value("B"),
        Succession::Follows(&read.version),
    )
    .await
    .unwrap();
    assert!(newer.is_some());
    let older = secrets::write(
        &f.platform,
        org,
        id,
        &value("A"),
        Succession::Follows(&read.version),
    )
    .await
    .unwrap();
    assert!(older.is_none(), "tokens from a replaced version do not win");

    let now = secrets::read(&f.platform, org, id).await.unwrap().unwrap();
    assert_eq!(now.value.expose_secret(), "B");
    assert_eq!(Some(now.version), newer);
    assert_eq!(
        f.vault.staged_values(org, id),
        ["B", "A"],
        "both values are kept in the vault"
    );
}

/// A writer that stopped between its mark and its promotion: the next read returns the marked
/// version and promotes it.
#[tokio::test]
async fn a_marked_but_unpromoted_version_is_read_and_promoted() {
    let (f, org, id) = connection().await;
    let staged = f
        .vault
        .stage_connection_secret(org, id, &value("new"))
        .await
        .unwrap();
    assert!(f
        .store
        .mark_secret_version(org, id, &staged, Succession::Replaces)
        .await
        .unwrap());

    let read = secrets::read(&f.platform, org, id).await.unwrap().unwrap();
    assert_eq!(read.value.expose_secret(), "new");
    let current = f
        .vault
        .get_connection_secret(org, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.version, staged, "promoted by the read");
}

/// A promotion that lost the race to a newer mark leaves the newer version current.
#[tokio::test]
async fn a_late_promotion_never_replaces_a_newer_mark() {
    let (f, org, id) = connection().await;
    let first = f
        .vault
        .stage_connection_secret(org, id, &value("first"))
        .await
        .unwrap();
    let second = f
        .vault
        .stage_connection_secret(org, id, &value("second"))
        .await
        .unwrap();
    for version in [&first, &second] {
        f.store
            .mark_secret_version(org, id, version, Succession::Replaces)
            .await
            .unwrap();
    }
    secrets::promote(&f.platform, org, id, &second)
        .await
        .unwrap();
    secrets::promote(&f.platform, org, id, &first)
        .await
        .unwrap();
    let current = f
        .vault
        .get_connection_secret(org, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.value.expose_secret(), "second");
}
