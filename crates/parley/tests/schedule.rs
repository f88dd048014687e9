//! Scheduled conferences on a real `parley serve` with a local SMTP sink:
//! the invitation e-mail carries the right link and an `.ics` that an
//! iCalendar parser reads back with the organizer's time zone; account
//! holders see the invitation in Parley; an update and a cancellation
//! follow; bad input is refused field by field.

#![allow(clippy::unwrap_used)] // test harness code: a panic is a failed test

mod support;

use icalendar::parser::{Component, read_calendar, unfold};
use reqwest::{Method, StatusCode};
use serde_json::json;

use support::Server;
use support::api::{Api, USER_PASSWORD};
use support::smtp::{Sink, part};

fn prop<'a>(c: &'a Component<'a>, name: &str) -> (String, Vec<(String, String)>) {
    let p = c
        .find_prop(name)
        .unwrap_or_else(|| panic!("no {name} in the event"));
    let params = p
        .params
        .iter()
        .map(|x| {
            (
                x.key.as_str().to_owned(),
                x.val
                    .as_ref()
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect();
    (p.val.as_str().to_owned(), params)
}

/// The calendar of an e-mail, parsed; returns (METHOD, the VEVENT's
/// DTSTART value and TZID, SEQUENCE, URL, SUMMARY, the VTIMEZONE's TZID).
fn invitation(data: &str) -> (String, String, String, String, String, String, String) {
    let ics = part(data, "text/calendar").expect("a text/calendar part");
    let unfolded = unfold(&ics);
    let calendar = read_calendar(&unfolded).expect("a valid iCalendar file");
    let method = calendar
        .properties
        .iter()
        .find(|p| p.name.as_str() == "METHOD")
        .map(|p| p.val.as_str().to_owned())
        .unwrap();
    let event = calendar
        .components
        .iter()
        .find(|c| c.name.as_str() == "VEVENT")
        .expect("a VEVENT");
    let zone = calendar
        .components
        .iter()
        .find(|c| c.name.as_str() == "VTIMEZONE")
        .expect("a VTIMEZONE");
    let (start, params) = prop(event, "DTSTART");
    let tzid = params
        .iter()
        .find(|(k, _)| k == "TZID")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    (
        method,
        start,
        tzid,
        prop(event, "SEQUENCE").0,
        prop(event, "URL").0,
        prop(event, "SUMMARY").0,
        prop(zone, "TZID").0,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_conference_is_mailed_with_a_valid_ics_and_shown_to_invitees() {
    let sink = Sink::start().await;
    let server = Server::start(&[]);
    let admin = Api::admin(&server).await;
    admin
        .create_users(&[("ada@example.org", "Ada"), ("ben@example.org", "Ben")])
        .await;
    let mail = admin
        .put(
            "/api/v1/settings/mail",
            json!({
                "enabled": true, "host": "127.0.0.1", "port": sink.port, "security": "none",
                "username": "parley", "password": "smtp secret",
                "from": "Parley <meet@example.org>", "public_url": "https://meet.example.org"
            }),
        )
        .await;
    assert_eq!(mail.status, StatusCode::OK, "{}", mail.body);

    let ada = Api::signed_in(&server, "ada@example.org", USER_PASSWORD).await;
    // Bad input: each refused with its field.
    for (body, field) in [
        (
            json!({"title": "", "starts_local": "2026-12-03T15:00", "time_zone": "Europe/Berlin", "duration_min": 60}),
            "title",
        ),
        (
            json!({"title": "x", "starts_local": "3 Dec 3pm", "time_zone": "Europe/Berlin", "duration_min": 60}),
            "starts_local",
        ),
        (
            json!({"title": "x", "starts_local": "2026-12-03T15:00", "time_zone": "Mars/Olympus", "duration_min": 60}),
            "time_zone",
        ),
        (
            json!({"title": "x", "starts_local": "2026-12-03T15:00", "time_zone": "Europe/Berlin", "duration_min": 2}),
            "duration_min",
        ),
        (
            json!({"title": "x", "starts_local": "2026-12-03T15:00", "time_zone": "Europe/Berlin", "duration_min": 60, "invitees": ["not an address"]}),
            "invitees[0]",
        ),
    ] {
        let r = ada.post("/api/v1/conferences", body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.field_error().0, field, "{}", r.body);
    }

    let created = ada
        .post(
            "/api/v1/conferences",
            json!({
                "title": "Design review, Q1", "starts_local": "2030-12-03T15:00",
                "time_zone": "Europe/Berlin", "duration_min": 90, "password": "tide pool 42",
                "lobby": true, "invitees": ["ben@example.org", "Carol@Elsewhere.example"]
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    let link = created.body["link"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with("https://meet.example.org/r/design-review-q1-"),
        "{link}"
    );

    let mails = sink.wait_for(2).await;
    let mut recipients: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        ["<ben@example.org>", "<carol@elsewhere.example>"]
    );
    for m in &mails {
        assert_eq!(
            m.auth.as_deref(),
            Some("|parley|smtp secret"),
            "SMTP AUTH used"
        );
        let text = part(&m.data, "text/plain").unwrap_or_else(|| panic!("{}", m.data));
        assert!(text.contains(&link), "{text}");
        assert!(text.contains("Password: tide pool 42"), "{text}");
        let (method, start, tzid, sequence, url, summary, zone) = invitation(&m.data);
        assert_eq!(method, "REQUEST");
        assert_eq!(
            (start.as_str(), tzid.as_str()),
            ("20301203T150000", "Europe/Berlin")
        );
        assert_eq!(zone, "Europe/Berlin");
        assert_eq!(sequence, "0");
        assert_eq!(url, link);
        assert_eq!(summary, "Design review, Q1", "TEXT escaping read back");
    }

    // Ben (an account) sees the invitation in Parley; delivery shows to Ada only.
    let ben = Api::signed_in(&server, "ben@example.org", USER_PASSWORD).await;
    let list = ben.get("/api/v1/conferences").await.body;
    assert_eq!(list["conferences"][0]["id"], id);
    assert!(
        list["conferences"][0]["invitees"][0]
            .get("delivery")
            .is_none()
    );
    let mine = ada.get("/api/v1/conferences").await.body;
    let deliveries: Vec<&str> = mine["conferences"][0]["invitees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["delivery"].as_str().unwrap())
        .collect();
    assert_eq!(deliveries, ["sent", "sent"]);
    // Ben cannot change it.
    let r = ben
        .call(Method::DELETE, &format!("/api/v1/conferences/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // An update moves it an hour and drops Carol: Ben gets SEQUENCE 1, Carol a cancellation.
    let updated = ada
        .put(
            &format!("/api/v1/conferences/{id}"),
            json!({
                "title": "Design review, Q1", "starts_local": "2030-12-03T16:00",
                "time_zone": "Europe/Berlin", "duration_min": 90, "lobby": true,
                "invitees": ["ben@example.org"]
            }),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let mails = sink.wait_for(4).await;
    for m in &mails[2..] {
        let (method, start, _, sequence, ..) = invitation(&m.data);
        if m.to == ["<carol@elsewhere.example>"] {
            assert_eq!(method, "CANCEL");
        } else {
            assert_eq!(
                (method.as_str(), start.as_str(), sequence.as_str()),
                ("REQUEST", "20301203T160000", "1")
            );
        }
    }

    // Cancelling sends METHOD:CANCEL to Ben.
    let cancelled = ada
        .call(Method::DELETE, &format!("/api/v1/conferences/{id}"), None)
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let mails = sink.wait_for(5).await;
    let (method, _, _, sequence, ..) = invitation(&mails[4].data);
    assert_eq!((method.as_str(), sequence.as_str()), ("CANCEL", "2"));
    assert!(
        mails[4]
            .data
            .contains("Subject: Cancelled: Design review, Q1")
    );

    // The .ics download parses too.
    let ics = ada.get(&format!("/api/v1/conferences/{id}/ics")).await;
    assert_eq!(ics.status, StatusCode::OK);
}
