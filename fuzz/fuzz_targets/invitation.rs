//! Fuzzes the invitations Parley e-mails: a conference's title, password,
//! organizer and invitees as people type them (and its start time and zone,
//! as the API takes them) go into the `.ics` writer, and an iCalendar parser
//! (the `icalendar` crate, which the schedule tests read invitations with)
//! must read the result back with the title intact: no text can break a
//! line, a property or the folding.

#![no_main]

use icalendar::parser::{read_calendar, unfold};
use libfuzzer_sys::fuzz_target;
use parley::schedule::ics::{Invitation, calendar, local_time};

const ZONES: &[&str] = &["Europe/Berlin", "UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\u{1}');
    let mut next = || fields.next().unwrap_or("");
    let (title, password, name, address, when) = (next(), next(), next(), next(), next());
    let attendees: Vec<String> = next().split(',').map(str::to_owned).collect();
    let zone = ZONES[data.first().map_or(0, |b| usize::from(*b)) % ZONES.len()];
    // What the API parses: a local time in a zone (anything at all here).
    let _ = local_time(when, zone);
    let Ok(starts) = local_time("2026-03-29T02:30", zone) else {
        return;
    };
    let ics = calendar(&Invitation {
        uid: "fuzz@parley",
        sequence: i64::from(data.len() as u16),
        title,
        starts: &starts,
        duration_min: i64::from(data.get(1).copied().unwrap_or(60)) * 7,
        link: "https://meet.example.org/r/fuzz-7f3k",
        password: (!password.is_empty()).then_some(password),
        organizer: (name, address),
        attendees: &attendees,
        cancelled: data.get(2).is_some_and(|b| b % 2 == 1),
        stamp: "2026-11-21T08:00:00Z".parse().unwrap(),
    });
    assert!(ics.ends_with("END:VCALENDAR\r\n"));
    for line in ics.split("\r\n") {
        assert!(line.len() <= 75, "an unfolded line: {line:?}");
        assert!(!line.contains('\r') && !line.contains('\n'), "a stray line break: {line:?}");
    }
    let unfolded = unfold(&ics);
    let parsed = read_calendar(&unfolded).unwrap_or_else(|e| panic!("unreadable invitation: {e}\n{ics}"));
    let event = parsed
        .components
        .iter()
        .find(|c| c.name.as_str() == "VEVENT")
        .expect("a VEVENT");
    let summary = event.find_prop("SUMMARY").expect("a SUMMARY");
    let expected: String = title.chars().filter(|c| *c == '\n' || !c.is_control()).collect();
    // The parser unescapes TEXT values itself.
    assert_eq!(summary.val.as_str(), expected, "the title reads back");
    let attendees_read = event.properties.iter().filter(|p| p.name.as_str() == "ATTENDEE").count();
    assert_eq!(attendees_read, attendees.len(), "one ATTENDEE per invitee");
});
