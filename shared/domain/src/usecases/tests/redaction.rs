//! Every request type that carries a credential, OAuth code or state, through `{:?}` and
//! `{:#?}`: none of the values shows (a future `?input` in a log line must not leak them),
//! while what identifies the request still does.

use crate::usecases::auth_providers::CreateProviderConnectionInput;
use crate::usecases::create_connection::CreateConnectionInput;
use crate::usecases::oauth_flow::CallbackInput;
use crate::usecases::update_connection::UpdateConnectionInput;
use serde_json::json;

const SECRETS: [&str; 8] = [
    "sk-direct-secret-1",
    "at-access-secret-2",
    "rt-refresh-secret-3",
    "cs-client-secret-4",
    "ak-composio-secret-5",
    "pd-client-secret-6",
    "code-secret-7",
    "state-secret-8",
];

fn assert_redacted(shown: &[String]) {
    for text in shown {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

#[test]
fn debug_of_every_request_type_redacts_its_credentials() {
    let creates = [
        json!({"credentials": {"api_key": SECRETS[0]}}),
        json!({"access_token": SECRETS[1], "refresh_token": SECRETS[2]}),
        json!({"client_id": "client-id-shown", "client_secret": SECRETS[3]}),
    ]
    .map(|authentication| CreateConnectionInput {
        short_name: Some("stub".into()),
        readable_collection_id: Some("docs".into()),
        authentication: Some(authentication),
        ..Default::default()
    });
    let update = UpdateConnectionInput {
        name: Some("Renamed".into()),
        authentication: Some(json!({"credentials": {"api_key": SECRETS[0]}})),
        ..Default::default()
    };
    let providers = [
        json!({"api_key": SECRETS[4]}),
        json!({"client_id": "pd-id", "client_secret": SECRETS[5], "project_id": "proj_1"}),
    ]
    .map(|auth_fields| CreateProviderConnectionInput {
        name: Some("Composio account".into()),
        short_name: Some("composio".into()),
        auth_fields: Some(auth_fields),
        ..Default::default()
    });
    let callback = CallbackInput {
        state: Some(SECRETS[7].into()),
        code: Some(SECRETS[6].into()),
        error: Some("access_denied".into()),
    };
    let mut shown = Vec::new();
    for create in &creates {
        shown.push(format!("{create:?}"));
        shown.push(format!("{create:#?}"));
    }
    shown.push(format!("{update:?}"));
    shown.push(format!("{update:#?}"));
    for provider in &providers {
        shown.push(format!("{provider:?}"));
        shown.push(format!("{provider:#?}"));
    }
    shown.push(format!("{callback:?}"));
    shown.push(format!("{callback:#?}"));
    assert_redacted(&shown);
    assert!(shown[0].contains("stub") && shown[0].contains("docs"));
    assert!(shown[6].contains("Renamed"));
    assert!(shown[8].contains("composio"));
    assert!(shown.last().unwrap().contains("access_denied"));
}
