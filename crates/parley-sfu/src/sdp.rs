//! Finishing the SDP str0m writes before it goes to a client.
//!
//! str0m writes the SFU's ICE candidates into the first m-section only,
//! leaves the others at port 9 with `c=IN IP4 0.0.0.0`, and announces
//! `a=ice-options:trickle` without ever saying the candidates are complete.
//! Browsers take the bundle's transport from the first section, but a
//! client that looks for candidates in the section it is reading (aiortc,
//! for one) never connects. So every live section gets the candidates, the
//! default candidate's address in `m=` and `c=` (RFC 8839 §4.2.1.1), and
//! `a=end-of-candidates`: the SFU is ICE-lite and never trickles.
//!
//! Subscribe offers also offer, per video section, only the codecs the SFU
//! can deliver there: those its publisher negotiated (see [`Codecs`]).
//! Publish answers list the codecs in the order of the client's offer: the
//! SFU has no preference of its own, and a browser sends the first codec of
//! the answer, so a client that puts a codec first (because the server
//! asked it to, see `codecs.rs`) gets to send it.

use std::collections::HashMap;

/// The payload types to keep per section (by mid), with their RTX payload
/// types found through `a=fmtp:<rtx> apt=<pt>`. Sections not named keep all.
pub(crate) type Codecs = HashMap<String, Vec<u8>>;

/// One m-section's lines, `m=` first.
struct Section<'a> {
    lines: Vec<std::borrow::Cow<'a, str>>,
}

impl Section<'_> {
    fn value(&self, prefix: &str) -> Option<&str> {
        self.lines.iter().find_map(|l| l.strip_prefix(prefix))
    }

    fn mid(&self) -> Option<&str> {
        self.value("a=mid:")
    }

    /// A stopped or rejected section (port 0) needs no candidates.
    fn is_live(&self) -> bool {
        self.lines[0].split_whitespace().nth(1) != Some("0")
    }
}

/// The default candidate: the first UDP candidate, as (address, port).
fn default_candidate(candidates: &[String]) -> Option<(String, String)> {
    candidates.iter().find_map(|c| {
        // a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...
        let words: Vec<&str> = c.split_whitespace().collect();
        (words.len() >= 6 && words[2].eq_ignore_ascii_case("udp"))
            .then(|| (words[4].to_owned(), words[5].to_owned()))
    })
}

/// `sdp` with candidates in every live section and, where `codecs` names a
/// section, only those payload types offered there.
pub(crate) fn finish(sdp: &str, codecs: &Codecs) -> String {
    let mut session: Vec<&str> = Vec::new();
    let mut sections: Vec<Section<'_>> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if line.starts_with("m=") {
            sections.push(Section {
                lines: vec![line.into()],
            });
        } else if let Some(s) = sections.last_mut() {
            s.lines.push(line.into());
        } else {
            session.push(line);
        }
    }
    let mut candidates: Vec<String> = Vec::new();
    for s in &sections {
        for l in &s.lines {
            if l.starts_with("a=candidate:") && !candidates.iter().any(|c| c == l) {
                candidates.push(l.to_string());
            }
        }
    }
    let default = default_candidate(&candidates);
    for s in &mut sections {
        if let Some(keep) = s.mid().and_then(|m| codecs.get(m)).cloned() {
            keep_payload_types(s, &keep);
        }
        if !s.is_live() || candidates.is_empty() {
            continue;
        }
        if let Some((address, port)) = &default {
            let mut words: Vec<String> = s.lines[0].split(' ').map(str::to_owned).collect();
            if words.len() > 1 {
                words[1] = port.clone();
                s.lines[0] = words.join(" ").into();
            }
            let family = if address.contains(':') { "IP6" } else { "IP4" };
            for l in &mut s.lines {
                if l.starts_with("c=") {
                    *l = format!("c=IN {family} {address}").into();
                }
            }
        }
        s.lines
            .retain(|l| !l.starts_with("a=candidate:") && *l != "a=end-of-candidates");
        // After `c=` (or `m=`), where str0m puts them in the first section.
        let at = s
            .lines
            .iter()
            .position(|l| l.starts_with("c="))
            .map_or(1, |i| i + 1);
        let block = candidates
            .iter()
            .map(|c| c.clone().into())
            .chain(std::iter::once("a=end-of-candidates".into()));
        s.lines.splice(at..at, block);
    }
    let mut out = String::with_capacity(sdp.len() + 512);
    for l in session {
        out.push_str(l);
        out.push_str("\r\n");
    }
    for s in &sections {
        for l in &s.lines {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out
}

/// `answer` with each section's formats in the order the same section of
/// `offer` (matched by mid) lists them.
pub(crate) fn in_offer_order(answer: &str, offer: &str) -> String {
    let mut order: HashMap<String, Vec<String>> = HashMap::new();
    let mut formats: Option<Vec<String>> = None;
    for line in offer.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(m) = line.strip_prefix("m=") {
            formats = Some(m.split(' ').skip(3).map(str::to_owned).collect());
        } else if let Some(mid) = line.strip_prefix("a=mid:")
            && let Some(f) = formats.take()
        {
            order.insert(mid.to_owned(), f);
        }
    }
    let lines: Vec<&str> = answer.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let mut m_at = None;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("m=") {
            m_at = Some(i);
        } else if let Some(mid) = line.strip_prefix("a=mid:")
            && let Some(at) = m_at.take()
            && let Some(wanted) = order.get(mid)
        {
            let words: Vec<&str> = lines[at].split(' ').collect();
            if words.len() > 3 {
                let mut formats = words[3..].to_vec();
                formats.sort_by_key(|f| wanted.iter().position(|w| w == f).unwrap_or(usize::MAX));
                out[at] = words[..3]
                    .iter()
                    .chain(&formats)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        }
    }
    let mut text = out.join("\r\n");
    text.push_str("\r\n");
    text
}

/// Keeps only `keep` (and the RTX payload types repairing them) in a section.
fn keep_payload_types(s: &mut Section<'_>, keep: &[u8]) {
    let mut kept: Vec<u8> = keep.to_vec();
    for l in &s.lines {
        // a=fmtp:<pt> apt=<pt>: an RTX payload type follows the one it repairs.
        if let Some(rest) = l.strip_prefix("a=fmtp:")
            && let Some((pt, params)) = rest.split_once(' ')
            && let Some(apt) = params
                .split(';')
                .find_map(|p| p.trim().strip_prefix("apt="))
            && let (Ok(pt), Ok(apt)) = (pt.parse::<u8>(), apt.parse::<u8>())
            && keep.contains(&apt)
        {
            kept.push(pt);
        }
    }
    let pt_of = |l: &str| -> Option<u8> {
        ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"]
            .iter()
            .find_map(|p| l.strip_prefix(p))
            .and_then(|rest| rest.split([' ', '/']).next())
            .and_then(|pt| pt.parse().ok())
    };
    let m: Vec<String> = s.lines[0].split(' ').map(str::to_owned).collect();
    if m.len() < 4 {
        return;
    }
    let formats: Vec<&String> = m[3..]
        .iter()
        .filter(|f| f.parse::<u8>().is_ok_and(|pt| kept.contains(&pt)))
        .collect();
    if formats.is_empty() {
        // Nothing the SFU can deliver: leave the section as it is rather
        // than write an m-line without formats; the answer tells.
        return;
    }
    let line = m[..3]
        .iter()
        .chain(formats)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    s.lines[0] = line.into();
    s.lines
        .retain(|l| pt_of(l).is_none_or(|pt| kept.contains(&pt)));
}

/// Refuses a client's SDP in which one payload type number stands for two
/// codec configurations: in a bundle, a number means the same media type,
/// codec, clock rate and parameters in every section (RFC 8843 §7.5;
/// Chromium refuses a description that breaks this). str0m would lock the
/// number to two of its configurations and assert, losing the connection,
/// so the client is told which number instead.
pub(crate) fn check_payload_types(sdp: &str) -> Result<(), String> {
    let mut seen = HashMap::new();
    // One section at a time: its media type, rtpmap and fmtp lines.
    let mut kind = "";
    let mut maps = Vec::new();
    let mut fmtps = HashMap::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            settle(&mut seen, kind, &mut maps, &mut fmtps)?;
            kind = m.split_whitespace().next().unwrap_or("");
        } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
            if let Some((pt, codec)) = map.split_once(' ') {
                maps.push((pt, codec.trim()));
            }
        } else if let Some(fmtp) = line.strip_prefix("a=fmtp:")
            && let Some((pt, params)) = fmtp.split_once(' ')
        {
            fmtps.insert(pt, params);
        }
    }
    settle(&mut seen, kind, &mut maps, &mut fmtps)
}

/// What a payload type number means: (media type, codec, sorted parameters).
type Meaning<'a> = (&'a str, String, Vec<&'a str>);

/// Checks one section's numbers against what they meant before.
fn settle<'a>(
    seen: &mut HashMap<&'a str, Meaning<'a>>,
    kind: &'a str,
    maps: &mut Vec<(&'a str, &'a str)>,
    fmtps: &mut HashMap<&'a str, &'a str>,
) -> Result<(), String> {
    let describe = |(kind, codec, params): &Meaning<'_>| {
        if params.is_empty() {
            format!("{kind} {codec}")
        } else {
            format!("{kind} {codec} ({})", params.join(";"))
        }
    };
    for (pt, codec) in maps.drain(..) {
        let mut params: Vec<&str> = fmtps
            .get(pt)
            .map(|f| {
                f.split(';')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        params.sort_unstable();
        let meaning = (kind, codec.to_ascii_lowercase(), params);
        match seen.get(pt) {
            Some(earlier) if *earlier != meaning => {
                return Err(format!(
                    "payload type {pt} means {} in one section and {} in another; \
                     one number must mean one codec configuration",
                    describe(earlier),
                    describe(&meaning)
                ));
            }
            Some(_) => {}
            None => {
                seen.insert(pt, meaning);
            }
        }
    }
    fmtps.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STR0M: &str = "v=0\r\no=str0m-0.25.0 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1 2\r\na=ice-lite\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2130706175 203.0.113.7 10000 typ host\r\n\
a=candidate:2 1 tcp 1526725887 203.0.113.7 10000 typ host tcptype passive\r\n\
a=ice-ufrag:u\r\na=ice-pwd:p\r\na=ice-options:trickle\r\na=mid:0\r\na=inactive\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 127 121\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:u\r\na=ice-pwd:p\r\na=mid:1\r\na=sendonly\r\n\
a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=rtpmap:127 H264/90000\r\na=rtcp-fb:127 nack\r\na=fmtp:127 packetization-mode=1\r\n\
a=rtpmap:121 rtx/90000\r\na=fmtp:121 apt=127\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=inactive\r\n";

    fn section<'a>(sdp: &'a str, mid: &str) -> Vec<&'a str> {
        let start = sdp.find(&format!("a=mid:{mid}\r\n")).unwrap();
        let m = sdp[..start].rfind("m=").unwrap();
        let end = sdp[start..].find("m=").map_or(sdp.len(), |e| start + e);
        sdp[m..end].lines().collect()
    }

    #[test]
    fn every_live_section_gets_the_candidates_and_their_end() {
        let out = finish(STR0M, &Codecs::new());
        for mid in ["0", "1"] {
            let s = section(&out, mid);
            assert!(
                s[0].starts_with("m=") && s[0].split(' ').nth(1) == Some("10000"),
                "{s:?}"
            );
            assert!(s.contains(&"c=IN IP4 203.0.113.7"), "{s:?}");
            assert_eq!(
                s.iter().filter(|l| l.starts_with("a=candidate:")).count(),
                2,
                "{s:?}"
            );
            assert_eq!(
                s.iter().filter(|l| **l == "a=end-of-candidates").count(),
                1,
                "{s:?}"
            );
        }
        let stopped = section(&out, "2");
        assert!(stopped[0].starts_with("m=video 0 "), "{stopped:?}");
        assert!(
            !stopped.iter().any(|l| l.starts_with("a=candidate")),
            "{stopped:?}"
        );
        assert_eq!(
            finish(&out, &Codecs::new()),
            out,
            "finishing twice changes nothing"
        );
    }

    #[test]
    fn a_section_can_be_narrowed_to_its_publishers_codecs() {
        let codecs = Codecs::from([("1".to_owned(), vec![127])]);
        let out = finish(STR0M, &codecs);
        let s = section(&out, "1");
        assert!(s[0].ends_with("SAVPF 127 121"), "{s:?}");
        assert!(
            !s.iter().any(|l| l.contains(":96 ") || l.contains(":97 ")),
            "{s:?}"
        );
        assert!(s.contains(&"a=fmtp:121 apt=127"), "{s:?}");
        assert!(section(&out, "0")[0].ends_with("SAVPF 111"));
        // Nothing in common: the section is left whole.
        let none = Codecs::from([("1".to_owned(), vec![45])]);
        assert!(section(&finish(STR0M, &none), "1")[0].ends_with("96 97 127 121"));
    }

    #[test]
    fn an_answer_follows_the_offers_codec_order() {
        let offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 127 121 96 97\r\na=mid:1\r\n";
        let out = in_offer_order(STR0M, offer);
        assert!(
            section(&out, "1")[0].ends_with("SAVPF 127 121 96 97"),
            "{out}"
        );
        assert!(
            section(&out, "0")[0].ends_with("SAVPF 111"),
            "sections not in the offer stay"
        );
        assert_eq!(out.lines().count(), STR0M.lines().count());
    }

    #[test]
    fn an_ipv6_default_candidate_says_ip6() {
        let sdp = STR0M.replace("203.0.113.7", "2001:db8::7");
        let out = finish(&sdp, &Codecs::new());
        assert!(section(&out, "1").contains(&"c=IN IP6 2001:db8::7"));
    }

    #[test]
    fn one_payload_type_for_two_codecs_is_refused() {
        let fine = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 vp8/90000\r\n";
        assert_eq!(check_payload_types(fine), Ok(()));
        let twice = format!("{fine}m=video 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 H264/90000\r\n");
        let err = check_payload_types(&twice).unwrap_err();
        assert!(
            err.contains("payload type 111 means audio opus/48000/2 in one section and video h264/90000 in another"),
            "{err}"
        );
        // The same codec with other parameters, or in a section of another type.
        let params = format!(
            "{fine}m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\na=fmtp:96 max-fr=30\r\n"
        );
        let err = check_payload_types(&params).unwrap_err();
        assert!(err.contains("video vp8/90000 (max-fr=30)"), "{err}");
        let kind = format!("{fine}m=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n");
        assert!(check_payload_types(&kind).is_err());
        // Parameters in another order mean the same.
        let order = "m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n\
a=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n\
a=fmtp:102 profile-level-id=42e01f; packetization-mode=1\r\n";
        assert_eq!(check_payload_types(order), Ok(()));
    }
}
