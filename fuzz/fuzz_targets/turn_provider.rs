//! Fuzzes what a TURN provider (Metered, Twilio, Xirsys or a Custom one)
//! answers, read with the JSON paths an administrator configured: the
//! input's first line is a Custom provider's settings as JSON (or its three
//! paths, tab-separated), the rest is the provider's response body. Every
//! server an answer yields must carry a usable URL.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use parley_ice::provider::{parse, request};
use parley_settings::{CustomProvider, Method, ProviderAuth, TurnProvider};

fn custom(paths: &str) -> TurnProvider {
    let mut p = paths.split('\t');
    let mut next = |default: &str| p.next().unwrap_or(default).to_owned();
    TurnProvider::Custom(CustomProvider {
        url_template: "https://turn.example.org/${ACCOUNT}/ice".into(),
        variables: BTreeMap::from([("ACCOUNT".into(), "a b/c".into())]),
        method: Method::Post,
        headers: Vec::new(),
        auth: ProviderAuth::Basic { username: "u".into(), password: "p".into() },
        body: Some("{}".into()),
        urls_path: next("iceServers[].urls"),
        username_path: next("iceServers[].username"),
        credential_path: next("iceServers[].credential"),
        cache_seconds: 300,
    })
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let head = String::from_utf8_lossy(head);
    let configured: Option<TurnProvider> = serde_json::from_str(&head).ok();
    let mut providers = vec![
        custom(&head),
        TurnProvider::Metered { app: "app".into(), api_key: "k".into() },
        TurnProvider::Twilio { account_sid: "AC1".into(), auth_token: "t".into() },
        TurnProvider::Xirsys { ident: "i".into(), secret: "s".into(), channel: "c".into() },
    ];
    providers.extend(configured.filter(|p| p.validate().is_ok()));
    for provider in &providers {
        let _ = request(provider);
        if let Ok(answer) = parse(provider, body) {
            for server in &answer.servers {
                assert!(!server.urls.is_empty(), "a server without URLs");
                for url in &server.urls {
                    assert!(
                        ["stun:", "stuns:", "turn:", "turns:"].iter().any(|s| url.starts_with(s)),
                        "unusable URL {url:?}"
                    );
                }
            }
            assert!(answer.ttl.as_secs() <= 86_400, "ttl {:?}", answer.ttl);
        }
    }
});
