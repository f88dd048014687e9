//! What members say and show: microphone and camera state, reactions,
//! chat, raised hands, screen shares and the sizes videos are shown at.

use std::time::Instant;

use parley_sfu::ParticipantId;

use parley_protocol::{
    ChatMessage, MAX_CHAT_CHARS, MAX_VIDEO_SIZES, Role, ServerMessage, VideoSize,
};
use parley_protocol::{ErrorCode, ProtocolError};

use super::{Hub, HubOutput, not_for};
use parley_protocol::ClientMessage;

/// Longest mid accepted for a screen track (browsers use small numbers).
const MAX_MID_CHARS: usize = 16;
/// Largest tile side passed on to the layer choice, in pixels.
const MAX_TILE_SIDE: u32 = 16_384;

impl Hub {
    /// What joined participant `id` says and shows: its media state,
    /// reactions, chat, hand, tile sizes and screen share.
    pub(crate) fn handle_conversation(
        &mut self,
        now: Instant,
        id: ParticipantId,
        message: ClientMessage,
    ) -> Result<(), ProtocolError> {
        match message {
            ClientMessage::Media { mic, camera } => self.media(now, id, mic, camera),
            ClientMessage::Reaction { emoji } => self.reaction(id, emoji),
            ClientMessage::Chat { text, to } => self.chat(id, text, to),
            ClientMessage::Hand { raised } => {
                self.hand(id, raised);
                Ok(())
            }
            ClientMessage::VideoSizes { sizes } => self.video_sizes(now, id, &sizes),
            ClientMessage::Screen { mid } => self.screen(now, id, mid),
            other => Err(not_for(&other, "conversation")),
        }
    }

    pub(crate) fn media(
        &mut self,
        now: Instant,
        id: ParticipantId,
        mic: Option<bool>,
        camera: Option<bool>,
    ) -> Result<(), ProtocolError> {
        let Some(member) = self.members.get_mut(&id) else {
            return Ok(());
        };
        if mic == Some(true) && member.mic_locked {
            return Err(ProtocolError::new(
                ErrorCode::Forbidden,
                "a moderator muted you; you can unmute once they allow it",
            ));
        }
        let before = (member.mic, member.camera);
        member.mic = mic.unwrap_or(member.mic);
        member.camera = camera.unwrap_or(member.camera);
        let reopen = mic == Some(true) && member.mic_forced;
        if reopen {
            member.mic_forced = false;
        }
        let changed = (member.mic, member.camera) != before;
        let room = member.room.clone();
        if reopen {
            self.update_gate(now, id);
        }
        if changed && let Some(info) = self.info(id) {
            self.broadcast(
                &room,
                Some(id),
                ServerMessage::ParticipantUpdated { participant: info },
            );
        }
        Ok(())
    }

    pub(crate) fn reaction(
        &mut self,
        id: ParticipantId,
        emoji: String,
    ) -> Result<(), ProtocolError> {
        check_reaction(&self.config.rooms.reactions, &emoji)?;
        if let Some(room) = self.members.get(&id).map(|m| m.room.clone()) {
            self.broadcast(
                &room,
                None,
                ServerMessage::Reaction {
                    participant: id.to_string(),
                    emoji,
                },
            );
        }
        Ok(())
    }

    pub(crate) fn chat(
        &mut self,
        id: ParticipantId,
        text: String,
        to: Option<String>,
    ) -> Result<(), ProtocolError> {
        check_chat(&text)?;
        let Some(sender) = self.members.get(&id) else {
            return Ok(());
        };
        let room = sender.room.clone();
        let recipient = match &to {
            Some(to) => Some(
                self.members
                    .iter()
                    .find(|(other, m)| m.room == room && other.to_string() == *to)
                    .map(|(other, m)| (*other, m.conn))
                    .ok_or_else(|| {
                        ProtocolError::new(
                            ErrorCode::UnknownParticipant,
                            "chat: no participant with that id in this room",
                        )
                    })?,
            ),
            None => None,
        };
        let message = ChatMessage {
            from: id.to_string(),
            name: sender.name.as_str().to_owned(),
            text,
            to,
            at: (self.config.wall_clock)(),
        };
        let sender_conn = sender.conn;
        match recipient {
            Some((other, conn)) => {
                self.send(
                    conn,
                    ServerMessage::Chat {
                        message: message.clone(),
                    },
                );
                if other != id {
                    self.send(
                        sender_conn,
                        ServerMessage::Chat {
                            message: message.clone(),
                        },
                    );
                }
            }
            None => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.push_chat(message.clone());
                }
                self.broadcast(
                    &room,
                    None,
                    ServerMessage::Chat {
                        message: message.clone(),
                    },
                );
            }
        }
        self.outputs
            .push_back(HubOutput::StoreChat { room, message });
        Ok(())
    }

    pub(crate) fn hand(&mut self, id: ParticipantId, raised: bool) {
        let Some(room) = self.members.get(&id).map(|m| m.room.clone()) else {
            return;
        };
        let already = self.members.get(&id).is_some_and(|m| m.hand.is_some());
        if raised == already {
            return;
        }
        let place = if raised {
            self.rooms.get_mut(&room).map(|r| {
                r.next_hand += 1;
                r.next_hand
            })
        } else {
            None
        };
        if let Some(m) = self.members.get_mut(&id) {
            m.hand = place;
        }
        self.announce(id);
    }

    /// Passes the client's tile sizes on to the SFU's layer choice.
    pub(crate) fn video_sizes(
        &mut self,
        now: Instant,
        id: ParticipantId,
        sizes: &[VideoSize],
    ) -> Result<(), ProtocolError> {
        let sizes = tile_sizes(sizes)?;
        self.sfu.set_video_sizes(now, id, &sizes);
        Ok(())
    }

    pub(crate) fn screen(
        &mut self,
        now: Instant,
        id: ParticipantId,
        mid: Option<String>,
    ) -> Result<(), ProtocolError> {
        let Some(member) = self.members.get(&id) else {
            return Ok(());
        };
        let room = member.room.clone();
        if let Some(mid) = &mid {
            check_screen_mid(mid)?;
            let r = self.rooms.get(&room);
            if r.is_some_and(|r| r.presenter_mode) && self.role_of(id) < Role::Presenter {
                return Err(ProtocolError::new(
                    ErrorCode::Forbidden,
                    "only presenters can share their screen in this meeting",
                ));
            }
            let multiple = r.is_some_and(|r| r.multiple_shares);
            let other = self
                .members
                .iter()
                .find(|(other, m)| **other != id && m.room == room && m.screen.is_some());
            if !multiple && let Some((_, m)) = other {
                return Err(ProtocolError::new(
                    ErrorCode::ScreenBusy,
                    format!(
                        "{} is already sharing their screen; a moderator can allow several shares",
                        m.name.as_str()
                    ),
                ));
            }
        }
        if let Some(m) = self.members.get_mut(&id) {
            if let Some(mid) = &mid {
                m.stopped_tracks.retain(|t| t != mid);
            }
            m.screen = mid;
        }
        self.update_gate(now, id);
        self.announce(id);
        Ok(())
    }
}

/// A chat message's text: not blank, at most [`MAX_CHAT_CHARS`] characters
/// (characters, not bytes: an emoji counts once).
fn check_chat(text: &str) -> Result<(), ProtocolError> {
    let chars = text.chars().count();
    if chars > MAX_CHAT_CHARS {
        return Err(ProtocolError::new(
            ErrorCode::MessageTooLong,
            format!("chat: the message has {chars} characters; the limit is {MAX_CHAT_CHARS}"),
        ));
    }
    if text.trim().is_empty() {
        return Err(ProtocolError::new(
            ErrorCode::BadField,
            "chat: the message is empty",
        ));
    }
    Ok(())
}

/// A reaction must be one the administrator allows; the refusal names them.
fn check_reaction(allowed: &[String], emoji: &str) -> Result<(), ProtocolError> {
    if allowed.iter().any(|a| a == emoji) {
        return Ok(());
    }
    let shown: String = emoji.chars().take(16).collect();
    let allowed = if allowed.is_empty() {
        "reactions are turned off on this server".to_owned()
    } else {
        format!("allowed: {}", allowed.join(" "))
    };
    Err(ProtocolError::new(
        ErrorCode::ReactionNotAllowed,
        format!("reaction: {shown:?} is not an allowed reaction; {allowed}"),
    ))
}

/// The client's tile sizes as the layer choice takes them: at most
/// [`MAX_VIDEO_SIZES`] entries, each naming a plausible mid, sides capped.
fn tile_sizes(sizes: &[VideoSize]) -> Result<Vec<(&str, u32, u32)>, ProtocolError> {
    if sizes.len() > MAX_VIDEO_SIZES {
        return Err(ProtocolError::new(
            ErrorCode::BadField,
            format!("video_sizes: at most {MAX_VIDEO_SIZES} entries"),
        ));
    }
    if let Some(bad) = sizes
        .iter()
        .find(|s| s.mid.is_empty() || s.mid.chars().count() > MAX_MID_CHARS)
    {
        return Err(ProtocolError::new(
            ErrorCode::BadField,
            format!("video_sizes: {:?} is not a mid", bad.mid),
        ));
    }
    Ok(sizes
        .iter()
        .map(|s| {
            let side = |v: u32| v.min(MAX_TILE_SIDE);
            (s.mid.as_str(), side(s.width), side(s.height))
        })
        .collect())
}

/// A screen track's mid as browsers write them: letters, digits, `-`, `_`.
fn check_screen_mid(mid: &str) -> Result<(), ProtocolError> {
    let plausible = !mid.is_empty()
        && mid.chars().count() <= MAX_MID_CHARS
        && mid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plausible {
        Ok(())
    } else {
        Err(ProtocolError::new(
            ErrorCode::BadField,
            "screen: mid must be the screen track's mid (letters, digits, - or _)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T: std::fmt::Debug>(r: Result<T, ProtocolError>) -> ErrorCode {
        r.expect_err("refused").code
    }

    #[test]
    fn chat_counts_characters_and_refuses_blank_text() {
        assert!(check_chat("hello").is_ok());
        assert!(check_chat(&"\u{1f600}".repeat(MAX_CHAT_CHARS)).is_ok());
        assert_eq!(
            code(check_chat(&"a".repeat(MAX_CHAT_CHARS + 1))),
            ErrorCode::MessageTooLong
        );
        assert_eq!(code(check_chat(" \n\t")), ErrorCode::BadField);
        assert_eq!(code(check_chat("")), ErrorCode::BadField);
    }

    #[test]
    fn a_reaction_not_allowed_is_refused_naming_what_is() {
        let allowed = vec!["\u{1f44d}".to_owned(), "\u{1f389}".to_owned()];
        assert!(check_reaction(&allowed, "\u{1f44d}").is_ok());
        let e = check_reaction(&allowed, "\u{1f4a9}").expect_err("not allowed");
        assert_eq!(e.code, ErrorCode::ReactionNotAllowed);
        assert!(
            e.message.contains("allowed: \u{1f44d} \u{1f389}"),
            "{}",
            e.message
        );
        let off = check_reaction(&[], "\u{1f44d}").expect_err("turned off");
        assert!(off.message.contains("turned off"), "{}", off.message);
        let long = check_reaction(&allowed, &"x".repeat(10_000)).expect_err("refused");
        assert!(
            long.message.len() < 200,
            "a long reaction is not echoed whole"
        );
    }

    #[test]
    fn tile_sizes_are_capped_and_bad_mids_refused() {
        let size = |mid: &str, width, height| VideoSize {
            mid: mid.to_owned(),
            width,
            height,
        };
        let sizes = [size("0", 320, 180), size("1", u32::MAX, 0)];
        assert_eq!(
            tile_sizes(&sizes).expect("fine"),
            vec![("0", 320, 180), ("1", MAX_TILE_SIDE, 0)]
        );
        assert_eq!(code(tile_sizes(&[size("", 1, 1)])), ErrorCode::BadField);
        assert_eq!(
            code(tile_sizes(&[size(&"9".repeat(MAX_MID_CHARS + 1), 1, 1)])),
            ErrorCode::BadField
        );
        let many: Vec<VideoSize> = (0..=MAX_VIDEO_SIZES).map(|_| size("0", 1, 1)).collect();
        assert_eq!(code(tile_sizes(&many)), ErrorCode::BadField);
    }

    #[test]
    fn a_screen_mid_is_letters_digits_dashes_and_underscores() {
        for ok in ["1", "screen-2", "a_b"] {
            assert!(check_screen_mid(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "x/y", "<script>", &"1".repeat(MAX_MID_CHARS + 1)] {
            assert_eq!(code(check_screen_mid(bad)), ErrorCode::BadField, "{bad:?}");
        }
    }
}
