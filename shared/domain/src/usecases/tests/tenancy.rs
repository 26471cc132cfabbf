//! API keys: only a known, unrevoked key names an organization; an operator revokes a key by
//! its id, or all of an organization's keys.

use crate::error::DomainError;
use crate::ids::OrganizationId;
use crate::ports::TenantStore;
use crate::tenancy::{ApiKeyHash, ApiKeyId, Organization};
use crate::testing::{now, platform};
use crate::usecases::tenancy::{
    authenticate, revoke_api_key_by_id, revoke_organization_api_keys, OrganizationKeysRevoked,
    RevokeError,
};
use secrecy::SecretString;

fn key(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

#[tokio::test]
async fn only_a_known_unrevoked_key_is_let_in() {
    let f = platform();
    let org = Organization {
        id: OrganizationId::new(),
        name: "Acme".into(),
        created_at: now(),
        redirect_origins: None,
    };
    f.store.insert_organization(&org).await.unwrap();
    let issued = key("sc_0123456789abcdef");
    f.store
        .insert_api_key(&ApiKeyHash::of(&issued), org.id, now())
        .await
        .unwrap();

    assert_eq!(
        authenticate(&f.platform, Some(&issued)).await.unwrap(),
        org.id
    );

    for presented in [None, Some(key("")), Some(key("sc_unknown"))] {
        let result = authenticate(&f.platform, presented.as_ref()).await;
        assert!(
            matches!(result, Err(DomainError::Unauthorized(_))),
            "{result:?}"
        );
    }

    assert!(f
        .store
        .revoke_api_key(&ApiKeyHash::of(&issued))
        .await
        .unwrap());
    let result = authenticate(&f.platform, Some(&issued)).await;
    assert!(
        matches!(result, Err(DomainError::Unauthorized(_))),
        "{result:?}"
    );
}

fn organization(name: &str) -> Organization {
    Organization {
        id: OrganizationId::new(),
        name: name.into(),
        created_at: now(),
        redirect_origins: None,
    }
}

#[tokio::test]
async fn a_key_is_revoked_by_its_id_and_an_id_naming_no_key_or_two_revokes_nothing() {
    let f = platform();
    let org = organization("Acme");
    f.store.insert_organization(&org).await.unwrap();
    let (lost, kept) = (key("sc_lost"), key("sc_kept"));
    for k in [&lost, &kept] {
        f.store
            .insert_api_key(&ApiKeyHash::of(k), org.id, now())
            .await
            .unwrap();
    }

    let unknown = ApiKeyId::parse("000000000000").unwrap();
    let result = revoke_api_key_by_id(&*f.store, &unknown).await;
    assert!(
        matches!(result, Err(RevokeError::NoSuchKey(_))),
        "{result:?}"
    );

    let revoked = revoke_api_key_by_id(&*f.store, &ApiKeyHash::of(&lost).key_id()).await;
    assert_eq!(revoked.unwrap(), org.id, "the revoked key's organization");
    assert!(authenticate(&f.platform, Some(&lost)).await.is_err());
    assert_eq!(
        authenticate(&f.platform, Some(&kept)).await.unwrap(),
        org.id
    );

    // Two keys whose hashes begin alike: neither is revoked by that id.
    let twins =
        ["a", "b"].map(|c| ApiKeyHash::parse(&format!("0123456789ab{}", c.repeat(52))).unwrap());
    for twin in &twins {
        f.store.insert_api_key(twin, org.id, now()).await.unwrap();
    }
    let result = revoke_api_key_by_id(&*f.store, &twins[0].key_id()).await;
    assert!(
        matches!(result, Err(RevokeError::AmbiguousId(_))),
        "{result:?}"
    );
    for twin in &twins {
        assert_eq!(
            f.store.organization_for_key(twin).await.unwrap(),
            Some(org.id)
        );
    }
}

#[tokio::test]
async fn an_organizations_keys_are_revoked_and_no_other_organizations() {
    let f = platform();
    let (acme, other) = (organization("Acme"), organization("Other"));
    for org in [&acme, &other] {
        f.store.insert_organization(org).await.unwrap();
    }
    let keys = [key("sc_1"), key("sc_2"), key("sc_3")];
    for k in &keys {
        f.store
            .insert_api_key(&ApiKeyHash::of(k), acme.id, now())
            .await
            .unwrap();
    }
    let others = key("sc_other");
    f.store
        .insert_api_key(&ApiKeyHash::of(&others), other.id, now())
        .await
        .unwrap();
    f.store
        .revoke_api_key(&ApiKeyHash::of(&keys[0]))
        .await
        .unwrap();
    // A key of each organization with the same id: only Acme's is revoked.
    let [acmes_twin, others_twin] =
        ["a", "b"].map(|c| ApiKeyHash::parse(&format!("fedcba987654{}", c.repeat(52))).unwrap());
    for (twin, org) in [(&acmes_twin, acme.id), (&others_twin, other.id)] {
        f.store.insert_api_key(twin, org, now()).await.unwrap();
    }

    let done = revoke_organization_api_keys(&*f.store, acme.id)
        .await
        .unwrap();
    assert_eq!(
        done,
        OrganizationKeysRevoked {
            revoked: 3,
            already_revoked: 1
        }
    );
    assert_eq!(
        f.store.organization_for_key(&acmes_twin).await.unwrap(),
        None
    );
    assert_eq!(
        f.store.organization_for_key(&others_twin).await.unwrap(),
        Some(other.id)
    );
    for k in &keys {
        assert!(authenticate(&f.platform, Some(k)).await.is_err());
    }
    assert_eq!(
        authenticate(&f.platform, Some(&others)).await.unwrap(),
        other.id
    );
    let result = revoke_organization_api_keys(&*f.store, OrganizationId::new()).await;
    assert!(
        matches!(result, Err(RevokeError::NoSuchOrganization(_))),
        "{result:?}"
    );
}
