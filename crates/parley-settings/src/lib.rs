//! Parley's administrator settings: typed sections with defaults and
//! validation whose errors name the field and the rule. Pure data and rules;
//! the store keeps each section as JSON, the server applies them live.

mod connection;
mod error;
mod history;
mod ice;
pub mod json_path;
mod logging;
mod mail;
mod provider;
mod rooms;
pub mod url;

pub use connection::{ConnectionSettings, MAX_ANNOUNCE, PortMode};
pub use error::{FieldError, Invalid};
pub use history::{BuddyList, HistorySettings};
pub use ice::{MAX_SERVERS, StunSettings, TransportPolicy, TurnServer, TurnSettings};
pub use logging::{LogLevel, LoggingSettings};
pub use mail::{MailSettings, SmtpSecurity, mailbox_address};
pub use provider::{CustomProvider, Header, Method, ProviderAuth, TurnProvider};
pub use rooms::{MAX_MEMBERS, MIN_MEMBERS, ReactionSettings, RoomSettings};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A settings section: one resource in the API, one row in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// STUN servers.
    Stun,
    /// TURN servers and transport policy.
    Turn,
    /// The TURN provider.
    TurnProvider,
    /// Media ports and announced addresses.
    Connection,
    /// Conferencing on/off and the member limit.
    Rooms,
    /// Allowed reactions.
    Reactions,
    /// Log level.
    Logging,
    /// History retention and buddy list.
    History,
    /// Outgoing e-mail for invitations.
    Mail,
}

impl Section {
    /// Every section, in the console's order.
    pub const ALL: [Section; 9] = [
        Section::Stun,
        Section::Turn,
        Section::TurnProvider,
        Section::Connection,
        Section::Rooms,
        Section::Reactions,
        Section::Logging,
        Section::History,
        Section::Mail,
    ];

    /// The section's name in URLs and the store.
    pub fn key(self) -> &'static str {
        match self {
            Section::Stun => "stun",
            Section::Turn => "turn",
            Section::TurnProvider => "turn_provider",
            Section::Connection => "connection",
            Section::Rooms => "rooms",
            Section::Reactions => "reactions",
            Section::Logging => "logging",
            Section::History => "history",
            Section::Mail => "mail",
        }
    }

    /// The section named `key`.
    pub fn from_key(key: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// Every setting.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Settings {
    /// STUN servers.
    pub stun: StunSettings,
    /// TURN servers.
    pub turn: TurnSettings,
    /// TURN provider.
    pub turn_provider: TurnProvider,
    /// Connection.
    pub connection: ConnectionSettings,
    /// Rooms.
    pub rooms: RoomSettings,
    /// Reactions.
    pub reactions: ReactionSettings,
    /// Logging.
    pub logging: LoggingSettings,
    /// History.
    pub history: HistorySettings,
    /// Outgoing e-mail.
    pub mail: MailSettings,
}

fn parse<T: DeserializeOwned>(value: Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // The path names the field, an unknown one included; "." is the section.
        let field = if path == "." { String::new() } else { path };
        Invalid::one(field, "shape", humane(&inner))
    })
}

/// serde's wording, for people: `invalid type: null, expected u16` becomes
/// `expected a whole number from 0 to 65535, got null`.
fn humane(serde: &str) -> String {
    let kinds = |s: &str| {
        s.replace("u16", "a whole number from 0 to 65535")
            .replace("u32", "a whole number from 0 to 4294967295")
            .replace("u64", "a whole number")
            .replace("a boolean", "true or false")
            .replace('`', "")
    };
    let text = serde.split(" at line ").next().unwrap_or(serde);
    if let Some(rest) = text.strip_prefix("invalid type: ")
        && let Some((got, expected)) = rest.split_once(", expected ")
    {
        return format!("expected {}, got {}", kinds(expected), kinds(got));
    }
    if let Some(rest) = text.strip_prefix("invalid value: ")
        && let Some((got, expected)) = rest.split_once(", expected ")
    {
        return format!("expected {}, got {}", kinds(expected), kinds(got));
    }
    if let Some(rest) = text.strip_prefix("unknown variant ")
        && let Some((got, expected)) = rest.split_once(", expected ")
    {
        return format!("{} is not allowed; use {}", kinds(got), kinds(expected));
    }
    if let Some(rest) = text.strip_prefix("unknown field ")
        && let Some((got, expected)) = rest.split_once(", expected ")
    {
        return format!(
            "there is no setting {}; the settings here are {}",
            kinds(got),
            kinds(expected)
        );
    }
    if let Some(name) = text.strip_prefix("missing field ") {
        return format!("{} is required", kinds(name));
    }
    kinds(text)
}

impl Settings {
    /// One section as JSON.
    pub fn section(&self, section: Section) -> Value {
        let value = match section {
            Section::Stun => serde_json::to_value(&self.stun),
            Section::Turn => serde_json::to_value(&self.turn),
            Section::TurnProvider => serde_json::to_value(&self.turn_provider),
            Section::Connection => serde_json::to_value(&self.connection),
            Section::Rooms => serde_json::to_value(&self.rooms),
            Section::Reactions => serde_json::to_value(&self.reactions),
            Section::Logging => serde_json::to_value(self.logging),
            Section::History => serde_json::to_value(self.history),
            Section::Mail => serde_json::to_value(&self.mail),
        };
        value.unwrap_or(Value::Null)
    }

    /// These settings with `section` replaced by `value`, if it is valid.
    pub fn with_section(&self, section: Section, value: Value) -> Result<Settings, Invalid> {
        let mut next = self.clone();
        match section {
            Section::Stun => {
                let v: StunSettings = parse(value)?;
                v.validate()?;
                next.stun = v;
            }
            Section::Turn => {
                let v: TurnSettings = parse(value)?;
                v.validate()?;
                next.turn = v;
            }
            Section::TurnProvider => {
                let v: TurnProvider = parse(value)?;
                v.validate()?;
                next.turn_provider = v;
            }
            Section::Connection => {
                let v: ConnectionSettings = parse(value)?;
                v.validate()?;
                next.connection = v;
            }
            Section::Rooms => {
                let v: RoomSettings = parse(value)?;
                v.validate()?;
                next.rooms = v;
            }
            Section::Reactions => {
                let v: ReactionSettings = parse(value)?;
                v.validate()?;
                next.reactions = v;
            }
            Section::Logging => next.logging = parse(value)?,
            Section::History => {
                let v: HistorySettings = parse(value)?;
                v.validate()?;
                next.history = v;
            }
            Section::Mail => {
                let v: MailSettings = parse(value)?;
                v.validate()?;
                next.mail = v;
            }
        }
        Ok(next)
    }

    /// These settings with `section` back at its default.
    pub fn reset(&self, section: Section) -> Settings {
        let defaults = Settings::default();
        let mut next = self.clone();
        match section {
            Section::Stun => next.stun = defaults.stun,
            Section::Turn => next.turn = defaults.turn,
            Section::TurnProvider => next.turn_provider = defaults.turn_provider,
            Section::Connection => next.connection = defaults.connection,
            Section::Rooms => next.rooms = defaults.rooms,
            Section::Reactions => next.reactions = defaults.reactions,
            Section::Logging => next.logging = defaults.logging,
            Section::History => next.history = defaults.history,
            Section::Mail => next.mail = defaults.mail,
        }
        next
    }

    /// Every section as one JSON object keyed by section name.
    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for s in Section::ALL {
            map.insert(s.key().to_owned(), self.section(s));
        }
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(section: Section, value: Value) -> FieldError {
        let err = Settings::default()
            .with_section(section, value)
            .unwrap_err();
        err.0[0].clone()
    }

    #[test]
    fn a_sixth_stun_server_is_refused() {
        let six: Vec<String> = (1..=6)
            .map(|i| format!("stun:stun{i}.example.org"))
            .collect();
        let e = refused(Section::Stun, json!({"builtin": true, "servers": six}));
        assert_eq!((e.field.as_str(), e.rule), ("servers[5]", "max_items"));
        assert!(e.message.contains("at most 5"), "{}", e.message);
    }

    #[test]
    fn turning_the_builtin_stun_off_needs_another_server() {
        let e = refused(Section::Stun, json!({"builtin": false, "servers": []}));
        assert_eq!(e.rule, "min_items");
        let ok = Settings::default()
            .with_section(
                Section::Stun,
                json!({"builtin": false, "servers": ["stun:stun.example.org:3478"]}),
            )
            .unwrap();
        assert!(!ok.stun.builtin);
        assert_eq!(ok.reset(Section::Stun).stun, StunSettings::default());
    }

    #[test]
    fn an_http_url_is_no_turn_server() {
        let e = refused(
            Section::Turn,
            json!({"servers": [{"urls": ["http://turn.example.org"], "username": "u", "credential": "p"}]}),
        );
        assert_eq!((e.field.as_str(), e.rule), ("servers[0].urls[0]", "url"));
        assert!(e.message.contains("scheme"), "{}", e.message);
        let e = refused(
            Section::Turn,
            json!({"servers": [{"urls": ["stun:s.example.org"], "username": "u", "credential": "p"}]}),
        );
        assert_eq!(e.rule, "scheme");
        let e = refused(
            Section::Turn,
            json!({"servers": [{"urls": ["turn:t.example.org"]}]}),
        );
        assert_eq!(e.field, "servers[0].username");
        let e = refused(
            Section::Turn,
            json!({"servers": [{"urls": ["turn:t.example.org"], "username": "u", "credential": "p", "secret": "s"}]}),
        );
        assert_eq!(e.rule, "exclusive");
        let ok = Settings::default()
            .with_section(Section::Turn, json!({"servers": [{"urls": ["turns:t.example.org:443?transport=tcp"], "secret": "s"}], "transport_policy": "relay"}))
            .unwrap();
        assert_eq!(ok.turn.transport_policy, TransportPolicy::Relay);
    }

    #[test]
    fn a_member_limit_of_61_is_refused() {
        let e = refused(Section::Rooms, json!({"enabled": true, "max_members": 61}));
        assert_eq!((e.field.as_str(), e.rule), ("max_members", "range"));
    }

    #[test]
    fn an_unknown_log_level_is_refused() {
        let e = refused(Section::Logging, json!({"level": "loud"}));
        assert_eq!((e.field.as_str(), e.rule), ("level", "shape"));
        assert!(e.message.contains("loud"), "{}", e.message);
        let ok = Settings::default()
            .with_section(Section::Logging, json!({"level": "debug"}))
            .unwrap();
        assert_eq!(ok.logging.level, LogLevel::Debug);
    }

    #[test]
    fn unknown_fields_are_named() {
        let e = refused(Section::Rooms, json!({"max_member": 10}));
        assert_eq!(e.field, "max_member");
        assert_eq!(e.rule, "shape");
        let e = refused(
            Section::Turn,
            json!({"servers": [{"urls": ["turn:t.example.org"], "user": "u"}]}),
        );
        assert_eq!(e.field, "servers[0].user");
        let e = refused(Section::Rooms, json!({"max_members": "many"}));
        assert_eq!(e.field, "max_members");
        assert!(e.message.contains("many"), "{}", e.message);
        let e = refused(Section::Connection, json!({"udp_port": null}));
        assert_eq!(
            e.message,
            "expected a whole number from 0 to 65535, got null"
        );
        let e = refused(Section::Rooms, json!({"max_member": 10}));
        assert!(
            e.message.starts_with("there is no setting max_member;"),
            "{}",
            e.message
        );
        let e = refused(Section::Logging, json!({"level": "loud"}));
        assert!(
            e.message
                .starts_with("loud is not allowed; use one of debug"),
            "{}",
            e.message
        );
    }

    #[test]
    fn providers_are_checked_by_kind() {
        assert!(
            Settings::default()
                .with_section(Section::TurnProvider, json!({"kind": "none"}))
                .is_ok()
        );
        let e = refused(
            Section::TurnProvider,
            json!({"kind": "twilio", "account_sid": "XX", "auth_token": "t"}),
        );
        assert_eq!((e.field.as_str(), e.rule), ("account_sid", "format"));
        let custom = json!({
            "kind": "custom",
            "url_template": "https://api.example.org/turn/${CHANNEL}",
            "variables": {"CHANNEL": "room"},
            "method": "PUT",
            "headers": [{"name": "Content-Type", "value": "application/json"}],
            "auth": {"type": "basic", "username": "ident", "password": "secret"},
            "body": "{\"format\":\"urls\"}",
            "urls_path": "v.iceServers.urls",
            "username_path": "v.iceServers.username",
            "credential_path": "v.iceServers.credential"
        });
        let ok = Settings::default()
            .with_section(Section::TurnProvider, custom.clone())
            .unwrap();
        assert!(matches!(ok.turn_provider, TurnProvider::Custom(_)));
        let mut bad = custom;
        bad["url_template"] = json!("https://api.example.org/${UNDEFINED}");
        bad["urls_path"] = json!("v..urls");
        let err = Settings::default()
            .with_section(Section::TurnProvider, bad)
            .unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert!(
            fields.contains(&"variables") && fields.contains(&"urls_path"),
            "{fields:?}"
        );
    }

    #[test]
    fn connection_rules() {
        let e = refused(
            Section::Connection,
            json!({"mode": "dynamic", "min_udp_port": 20000, "max_udp_port": 10000}),
        );
        assert_eq!(e.rule, "order");
        let five: Vec<&str> = vec![
            "192.0.2.1",
            "192.0.2.2",
            "192.0.2.3",
            "192.0.2.4",
            "192.0.2.5",
        ];
        let e = refused(Section::Connection, json!({"announce": five}));
        assert_eq!(e.rule, "max_items");
        let e = refused(Section::Connection, json!({"announce": ["0.0.0.0"]}));
        assert_eq!(e.rule, "unicast");
    }

    #[test]
    fn every_section_round_trips_its_default() {
        let defaults = Settings::default();
        for s in Section::ALL {
            let again = defaults.with_section(s, defaults.section(s)).unwrap();
            assert_eq!(again, defaults, "{s:?}");
            assert_eq!(Section::from_key(s.key()), Some(s));
        }
    }
}
