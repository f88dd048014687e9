//! Sending invitations through the administrator's SMTP server.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use parley_settings::{MailSettings, SmtpSecurity};

/// How long one delivery may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// One e-mail with an `.ics` invitation.
pub struct Letter {
    /// Recipient address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// The `.ics` file.
    pub ics: String,
    /// `REQUEST` or `CANCEL`.
    pub method: &'static str,
}

/// Sends `letter`; the error is for the organizer (no secrets in it).
pub async fn send(settings: &MailSettings, letter: Letter) -> Result<(), String> {
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| format!("the sender address is not valid: {e}"))?;
    let to: Mailbox = letter
        .to
        .parse()
        .map_err(|e| format!("{} is not a valid address: {e}", letter.to))?;
    let calendar = ContentType::parse(&format!(
        "text/calendar; method={}; charset=UTF-8",
        letter.method
    ))
    .map_err(|e| e.to_string())?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(letter.subject)
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(letter.body))
                .singlepart(Attachment::new("invite.ics".to_owned()).body(letter.ics, calendar)),
        )
        .map_err(|e| format!("cannot build the e-mail: {e}"))?;

    let host = settings.host.as_str();
    let builder = match settings.security {
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
    }
    .map_err(|e| format!("cannot use SMTP server {host}: {e}"))?;
    let mut builder = builder.port(settings.port).timeout(Some(SEND_TIMEOUT));
    if !settings.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            settings.username.clone(),
            settings.password.clone(),
        ));
    }
    let transport = builder.build();
    transport.send(message).await.map(|_| ()).map_err(|e| {
        format!(
            "the SMTP server {host}:{} refused or failed: {e}",
            settings.port
        )
    })
}
