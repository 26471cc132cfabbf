//! API keys: only a known, unrevoked key names an organization.

use crate::error::DomainError;
use crate::ids::OrganizationId;
use crate::ports::TenantStore;
use crate::tenancy::{ApiKeyHash, Organization};
use crate::testing::{now, platform};
use crate::usecases::tenancy::authenticate;
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
