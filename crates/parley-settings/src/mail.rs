//! Outgoing e-mail: the SMTP server invitations go through, and the
//! address links in them point to.

use serde::{Deserialize, Serialize};

use crate::error::{Errors, Invalid};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587); refused without it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same machine or network.
    None,
}

/// The mail section. Its `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// Send invitations by e-mail at all.
    #[serde(default)]
    pub enabled: bool,
    /// The SMTP server's host name.
    #[serde(default)]
    pub host: String,
    /// Its port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// How the connection is secured.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// User name for SMTP AUTH; empty sends without authenticating.
    #[serde(default)]
    pub username: String,
    /// Password for SMTP AUTH.
    #[serde(default)]
    pub password: String,
    /// The sender, `Name <address>` or a bare address.
    #[serde(default = "default_from")]
    pub from: String,
    /// The address people reach Parley at, for links in invitations
    /// (`https://meet.example.org`); empty takes it from the request that
    /// scheduled the conference.
    #[serde(default)]
    pub public_url: String,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("enabled", &self.enabled)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("from", &self.from)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

fn default_port() -> u16 {
    587
}

fn default_from() -> String {
    "Parley <parley@localhost>".to_owned()
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            enabled: false,
            host: String::new(),
            port: default_port(),
            security: SmtpSecurity::default(),
            username: String::new(),
            password: String::new(),
            from: default_from(),
            public_url: String::new(),
        }
    }
}

/// The address part of `Name <address>` or a bare address, if it looks
/// like one.
pub fn mailbox_address(from: &str) -> Option<&str> {
    let address = match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => &from[open + 1..close],
        (None, None) => from,
        _ => return None,
    };
    let address = address.trim();
    let (local, domain) = address.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@');
    ok.then_some(address)
}

impl MailSettings {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut e = Errors::default();
        let host_ok = !self.host.is_empty()
            && self.host.len() <= 253
            && self
                .host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if self.enabled && !host_ok {
            e.add(
                "host",
                "required",
                "the SMTP server's host name is needed to send e-mail",
            );
        } else if !self.host.is_empty() && !host_ok {
            e.add("host", "host", "not a host name or IP address");
        }
        if self.port == 0 {
            e.add("port", "range", "the port must be from 1 to 65535");
        }
        if mailbox_address(&self.from).is_none() {
            e.add(
                "from",
                "address",
                "the sender must be an address such as parley@example.org or Parley <parley@example.org>",
            );
        }
        if !self.username.is_empty() && self.password.is_empty() {
            e.add(
                "password",
                "required",
                "a password is needed with a user name",
            );
        }
        if !self.public_url.is_empty() {
            let ok = (self.public_url.starts_with("https://")
                || self.public_url.starts_with("http://"))
                && !self.public_url.contains(char::is_whitespace)
                && self.public_url.len() <= 200;
            if !ok {
                e.add(
                    "public_url",
                    "url",
                    "the public address must start with https:// (or http://), such as https://meet.example.org",
                );
            }
        }
        e.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_mail_needs_a_host_and_a_real_sender() {
        let on = MailSettings {
            enabled: true,
            ..MailSettings::default()
        };
        let e = on.validate().unwrap_err();
        assert_eq!(e.0[0].field, "host");
        let bad_from = MailSettings {
            host: "smtp.example.org".into(),
            from: "nobody".into(),
            ..on.clone()
        };
        assert_eq!(bad_from.validate().unwrap_err().0[0].field, "from");
        let good = MailSettings {
            host: "smtp.example.org".into(),
            from: "Parley <meet@example.org>".into(),
            public_url: "https://meet.example.org".into(),
            ..on
        };
        assert!(good.validate().is_ok());
        assert_eq!(mailbox_address(&good.from), Some("meet@example.org"));
        let url = MailSettings {
            public_url: "meet.example.org".into(),
            ..good
        };
        assert_eq!(url.validate().unwrap_err().0[0].field, "public_url");
    }
}
