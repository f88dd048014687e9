//! iCalendar (RFC 5545) invitations: a VEVENT in the organizer's time zone,
//! with that zone's VTIMEZONE, for `METHOD:REQUEST` (new or updated) and
//! `METHOD:CANCEL`. Pure text; no I/O.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// What an invitation describes.
#[derive(Debug, Clone)]
pub struct Invitation<'a> {
    /// Stable across updates.
    pub uid: &'a str,
    /// 0, then +1 per update or cancellation.
    pub sequence: i64,
    /// Title.
    pub title: &'a str,
    /// When it starts, in `time_zone`.
    pub starts: &'a Zoned,
    /// Minutes.
    pub duration_min: i64,
    /// The room's address.
    pub link: &'a str,
    /// The room password, when the e-mail may carry it.
    pub password: Option<&'a str>,
    /// Organizer's name and address.
    pub organizer: (&'a str, &'a str),
    /// Invitees' addresses.
    pub attendees: &'a [String],
    /// A cancellation.
    pub cancelled: bool,
    /// When this invitation is made.
    pub stamp: Timestamp,
}

/// Parses `YYYY-MM-DDTHH:MM` in the IANA zone `tz`.
pub fn local_time(starts_local: &str, tz: &str) -> Result<Zoned, String> {
    let zone = TimeZone::get(tz).map_err(|_| format!("unknown time zone {tz:?}"))?;
    let dt: DateTime = starts_local
        .parse()
        .map_err(|_| format!("{starts_local:?} is not a date and time like 2026-12-03T15:00"))?;
    dt.to_zoned(zone).map_err(|e| e.to_string())
}

/// Escapes a TEXT value (RFC 5545 3.3.11).
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value: quoted, without characters a quoted value cannot hold.
fn param(value: &str) -> String {
    let clean: String = value
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect();
    format!("\"{clean}\"")
}

/// A URI value (`URL`, `mailto:`): what cannot be in one is left out, so
/// no value can end its line or property.
fn uri(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect()
}

/// Folds a content line at 75 octets (RFC 5545 3.1), never inside a character.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

fn local_stamp(z: &Zoned) -> String {
    z.strftime("%Y%m%dT%H%M%S").to_string()
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    format!("{sign}{:02}{:02}", s / 3600, (s % 3600) / 60)
}

/// The invitation as an `.ics` file.
pub fn calendar(inv: &Invitation<'_>) -> String {
    let tz = inv.starts.time_zone();
    let tzid = tz.iana_name().unwrap_or("UTC");
    let ends = inv
        .starts
        .checked_add(jiff::Span::new().minutes(inv.duration_min))
        .unwrap_or_else(|_| inv.starts.clone());
    let info = tz.to_offset_info(inv.starts.timestamp());
    let offset = offset_text(info.offset().seconds());
    let observance = if info.dst().is_dst() {
        "DAYLIGHT"
    } else {
        "STANDARD"
    };
    let mut description = format!("Join the meeting: {}", inv.link);
    if let Some(p) = inv.password {
        description.push_str(&format!("\nPassword: {p}"));
    }
    if inv.cancelled {
        description = format!("Cancelled.\n{description}");
    }
    let mut lines: Vec<String> = vec![
        "BEGIN:VCALENDAR".into(),
        "VERSION:2.0".into(),
        "PRODID:-//Parley//Parley conferences//EN".into(),
        "CALSCALE:GREGORIAN".into(),
        format!(
            "METHOD:{}",
            if inv.cancelled { "CANCEL" } else { "REQUEST" }
        ),
        "BEGIN:VTIMEZONE".into(),
        format!("TZID:{tzid}"),
        format!("BEGIN:{observance}"),
        "DTSTART:19700101T000000".into(),
        format!("TZOFFSETFROM:{offset}"),
        format!("TZOFFSETTO:{offset}"),
        format!("TZNAME:{}", text(info.abbreviation())),
        format!("END:{observance}"),
        "END:VTIMEZONE".into(),
        "BEGIN:VEVENT".into(),
        format!("UID:{}", text(inv.uid)),
        format!("SEQUENCE:{}", inv.sequence),
        format!("DTSTAMP:{}", inv.stamp.strftime("%Y%m%dT%H%M%SZ")),
        format!("DTSTART;TZID={tzid}:{}", local_stamp(inv.starts)),
        format!("DTEND;TZID={tzid}:{}", local_stamp(&ends)),
        format!("SUMMARY:{}", text(inv.title)),
        format!("DESCRIPTION:{}", text(&description)),
        format!("LOCATION:{}", text(inv.link)),
        format!("URL:{}", uri(inv.link)),
        format!(
            "ORGANIZER;CN={}:mailto:{}",
            param(inv.organizer.0),
            uri(inv.organizer.1)
        ),
    ];
    for a in inv.attendees {
        lines.push(format!(
            "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=FALSE:mailto:{}",
            uri(a)
        ));
    }
    lines.push(format!(
        "STATUS:{}",
        if inv.cancelled {
            "CANCELLED"
        } else {
            "CONFIRMED"
        }
    ));
    lines.push("END:VEVENT".into());
    lines.push("END:VCALENDAR".into());
    let mut out = String::new();
    for line in &lines {
        fold(line, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cancelled: bool) -> String {
        let starts = local_time("2026-12-03T15:00", "Europe/Berlin").unwrap();
        let attendees = vec!["ben@example.org".to_owned()];
        calendar(&Invitation {
            uid: "abc@parley",
            sequence: 2,
            title: "Design review; budget, and \"plans\"",
            starts: &starts,
            duration_min: 90,
            link: "https://meet.example.org/r/design-review-7f3k",
            password: Some("tide pool 42"),
            organizer: ("Ada \"the\" Lovelace", "ada@example.org"),
            attendees: &attendees,
            cancelled,
            stamp: "2026-11-21T08:00:00Z".parse().unwrap(),
        })
    }

    #[test]
    fn an_invitation_is_local_time_with_its_zone_escaped_and_folded() {
        let ics = sample(false);
        assert!(
            ics.contains("DTSTART;TZID=Europe/Berlin:20261203T150000\r\n"),
            "{ics}"
        );
        assert!(ics.contains("DTEND;TZID=Europe/Berlin:20261203T163000\r\n"));
        assert!(
            ics.contains("TZOFFSETTO:+0100\r\n"),
            "December in Berlin is +01:00"
        );
        assert!(ics.contains("SUMMARY:Design review\\; budget\\, and \"plans\"\r\n"));
        assert!(ics.contains("ORGANIZER;CN=\"Ada the Lovelace\":mailto:ada@example.org"));
        assert!(ics.contains("METHOD:REQUEST") && ics.contains("SEQUENCE:2"));
        assert!(ics.lines().all(|l| l.len() <= 76), "lines are folded");
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        let cancel = sample(true);
        assert!(cancel.contains("METHOD:CANCEL") && cancel.contains("STATUS:CANCELLED"));
    }

    /// No value can end its line: a control character in an address or
    /// the link is left out rather than starting a property of its own.
    #[test]
    fn addresses_and_links_cannot_inject_lines() {
        let starts = local_time("2026-12-03T15:00", "Europe/Berlin").unwrap();
        let attendees = vec!["ben@example.org\r\nATTENDEE:mailto:eve@example.org".to_owned()];
        let ics = calendar(&Invitation {
            uid: "abc@parley",
            sequence: 0,
            title: "t",
            starts: &starts,
            duration_min: 30,
            link: "https://meet.example.org/r/x\nURL:https://evil.example",
            password: None,
            organizer: ("Ada", "ada@example.org\nX-EVIL:1"),
            attendees: &attendees,
            cancelled: false,
            stamp: "2026-11-21T08:00:00Z".parse().unwrap(),
        });
        assert_eq!(ics.matches("\r\nATTENDEE").count(), 1, "{ics}");
        assert!(
            !ics.contains("\r\nX-EVIL") && !ics.contains("\r\nURL:https://evil"),
            "{ics}"
        );
    }

    #[test]
    fn summer_time_and_bad_input_are_handled() {
        let z = local_time("2026-07-01T09:30", "America/New_York").unwrap();
        assert_eq!(z.offset().seconds(), -4 * 3600);
        assert!(local_time("2026-07-01 9am", "Europe/Berlin").is_err());
        assert!(local_time("2026-07-01T09:30", "Mars/Olympus").is_err());
    }
}
