//! The buddy list of a real `parley serve`: users of the caller's domain
//! only, or of every domain when the administrator allows it; search by
//! name or login; presence from open pages.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};

use support::Server;
use support::api::{Api, USER_PASSWORD};
use support::ws::{connect_with, next};

fn names(answer: &Value) -> Vec<(String, String)> {
    answer["buddies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                b["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn buddy_lists_honour_the_domain_setting() {
    let server = Server::start(&[]);
    let admin = Api::admin(&server).await;
    assert_eq!(
        admin
            .post("/api/v1/domains", json!({"name": "other.example"}))
            .await
            .status,
        StatusCode::CREATED
    );
    admin
        .create_users(&[
            ("ada@example.org", "Ada"),
            ("ben@example.org", "Ben"),
            ("cy@other.example", "Cy"),
        ])
        .await;
    let ada = Api::signed_in(&server, "ada@example.org", USER_PASSWORD).await;

    // Same domain (the default): the administrator and Ben, not Cy.
    let list = ada.get("/api/v1/buddies").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let shown = names(&list.body);
    assert!(
        shown.iter().any(|(n, s)| n == "Ben" && s == "offline"),
        "{shown:?}"
    );
    assert!(!shown.iter().any(|(n, _)| n == "Cy"), "{shown:?}");
    assert!(
        !shown.iter().any(|(n, _)| n == "Ada"),
        "the caller is not listed"
    );

    // Ben opens a page: he shows as available.
    let ben = Api::signed_in(&server, "ben@example.org", USER_PASSWORD).await;
    let mut ben_page = connect_with(&server, &[("cookie", &ben.cookie())])
        .await
        .unwrap();
    support::ws::send(&mut ben_page, r#"{"type":"presence","status":"available"}"#).await;
    let _ = tokio::time::timeout(std::time::Duration::from_millis(300), next(&mut ben_page)).await;
    let shown = names(&ada.get("/api/v1/buddies?q=BE").await.body);
    assert_eq!(shown, [("Ben".to_owned(), "available".to_owned())]);

    // All domains: Cy appears.
    let put = admin
        .put(
            "/api/v1/settings/history",
            json!({"retention_days": 30, "buddy_list": "all_domains"}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let shown = names(&ada.get("/api/v1/buddies").await.body);
    assert!(shown.iter().any(|(n, _)| n == "Cy"), "{shown:?}");

    // Guests have no buddy list.
    let guest = Api::anonymous(&server).get("/api/v1/buddies").await;
    assert_eq!(guest.status, StatusCode::UNAUTHORIZED);
    let long = ada
        .get(&format!("/api/v1/buddies?q={}", "x".repeat(101)))
        .await;
    assert_eq!(
        long.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        long.body
    );
}
