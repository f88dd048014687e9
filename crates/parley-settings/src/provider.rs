//! Where TURN credentials come from: nowhere, Parley's own TURN server, or
//! a hosted service that hands out credentials over HTTP.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Errors, Invalid};

/// The TURN provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TurnProvider {
    /// No provider: only the TURN servers listed in the TURN settings.
    None,
    /// Parley's own TURN server, with credentials minted per participant (the default).
    #[default]
    Builtin,
    /// Metered (metered.ca): `https://{app}.metered.live/api/v1/turn/credentials?apiKey={key}`.
    Metered {
        /// The app's subdomain on metered.live.
        app: String,
        /// The API key.
        api_key: String,
    },
    /// Twilio Network Traversal Service.
    Twilio {
        /// Account SID.
        account_sid: String,
        /// Auth token.
        auth_token: String,
    },
    /// Xirsys.
    Xirsys {
        /// Ident (account name).
        ident: String,
        /// Secret.
        secret: String,
        /// Channel.
        channel: String,
    },
    /// Any service that returns servers from one HTTP request.
    Custom(CustomProvider),
}

/// HTTP methods a provider may be asked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET.
    #[default]
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
}

/// How the request authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProviderAuth {
    /// No authentication (or it is in the URL or headers).
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// Username.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Token.
        token: String,
    },
    /// A header of the provider's choosing.
    Header {
        /// Header name.
        name: String,
        /// Header value.
        value: String,
    },
}

/// One extra request header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A provider described by hand (seed 001's "Custom TURN Configuration").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProvider {
    /// The endpoint, with `${NAME}` placeholders filled from `variables`.
    pub url_template: String,
    /// Values for the placeholders.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// HTTP method.
    #[serde(default)]
    pub method: Method,
    /// Extra headers.
    #[serde(default)]
    pub headers: Vec<Header>,
    /// Authentication.
    #[serde(default)]
    pub auth: ProviderAuth,
    /// Request body (JSON text) for POST, PUT and PATCH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Where the URLs are in the response, e.g. `data.iceServers[].urls`.
    pub urls_path: String,
    /// Where the username is, e.g. `data[0].username`.
    pub username_path: String,
    /// Where the password is, e.g. `v.iceServers.credential`.
    pub credential_path: String,
    /// How long a response is reused, in seconds [default: 300].
    #[serde(default = "default_ttl")]
    pub cache_seconds: u64,
}

fn default_ttl() -> u64 {
    300
}

impl TurnProvider {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut e = Errors::default();
        let required = |e: &mut Errors, field: &str, value: &str| {
            if value.trim().is_empty() {
                e.add(
                    field,
                    "required",
                    format!("the {} is required", field.replace('_', " ")),
                );
            }
        };
        match self {
            TurnProvider::None | TurnProvider::Builtin => {}
            TurnProvider::Metered { app, api_key } => {
                required(&mut e, "app", app);
                required(&mut e, "api_key", api_key);
                if !app.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    e.add(
                        "app",
                        "format",
                        "the app name is the metered.live subdomain: letters, digits and -",
                    );
                }
            }
            TurnProvider::Twilio {
                account_sid,
                auth_token,
            } => {
                required(&mut e, "account_sid", account_sid);
                required(&mut e, "auth_token", auth_token);
                if !account_sid.starts_with("AC") {
                    e.add("account_sid", "format", "Twilio account SIDs start with AC");
                }
            }
            TurnProvider::Xirsys {
                ident,
                secret,
                channel,
            } => {
                required(&mut e, "ident", ident);
                required(&mut e, "secret", secret);
                required(&mut e, "channel", channel);
            }
            TurnProvider::Custom(c) => c.check(&mut e),
        }
        e.finish()
    }
}

impl CustomProvider {
    fn check(&self, e: &mut Errors) {
        if !(self.url_template.starts_with("https://") || self.url_template.starts_with("http://"))
        {
            e.add(
                "url_template",
                "scheme",
                "the provider URL must start with https:// (or http://)",
            );
        }
        let mut rest = self.url_template.as_str();
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            match after.find('}') {
                Some(end) => {
                    let name = &after[..end];
                    if !self.variables.contains_key(name) {
                        e.add(
                            "variables",
                            "missing",
                            format!("the URL uses ${{{name}}} but no variable {name:?} is defined"),
                        );
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    e.add(
                        "url_template",
                        "syntax",
                        "a ${ in the URL is not closed with }",
                    );
                    break;
                }
            }
        }
        for (i, h) in self.headers.iter().enumerate() {
            if h.name.is_empty()
                || !h
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                e.add(
                    format!("headers[{i}].name"),
                    "format",
                    "a header name is letters, digits, - and _",
                );
            }
            if h.value.contains(['\r', '\n']) {
                e.add(
                    format!("headers[{i}].value"),
                    "format",
                    "a header value must be on one line",
                );
            }
        }
        if self.body.is_some() && self.method == Method::Get {
            e.add(
                "body",
                "method",
                "a GET request has no body; choose POST, PUT or PATCH",
            );
        }
        if let Some(body) = &self.body
            && serde_json::from_str::<serde_json::Value>(body).is_err()
        {
            e.add("body", "json", "the body must be JSON");
        }
        for (field, path) in [
            ("urls_path", &self.urls_path),
            ("username_path", &self.username_path),
            ("credential_path", &self.credential_path),
        ] {
            if let Err(why) = crate::json_path::JsonPath::parse(path) {
                e.add(field, "json_path", why);
            }
        }
        if !(30..=86_400).contains(&self.cache_seconds) {
            e.add(
                "cache_seconds",
                "range",
                "answers are reused between 30 and 86400 seconds",
            );
        }
    }
}
