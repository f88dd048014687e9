//! Names that come from users, parsed once at the edge and valid afterwards.

use std::fmt;

/// A room name: 1–64 characters of `a-z`, `0-9`, `-`, `_`, `.`, starting with a
/// letter or digit. Upper case folds to lower case, so `/r/Weekly` and
/// `/r/weekly` are the same room.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

/// The longest room name, in characters.
pub const MAX_ROOM_NAME: usize = 64;
/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 64;

impl RoomName {
    /// Validates and normalises a room name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err("must not be empty".into());
        }
        if name.chars().count() > MAX_ROOM_NAME {
            return Err(format!("must be at most {MAX_ROOM_NAME} characters"));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(*c)))
        {
            return Err(format!(
                "may only contain a-z, 0-9, '-', '_' and '.' (found {bad:?})"
            ));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err("must start with a letter or digit".into());
        }
        Ok(RoomName(name))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomName({})", self.0)
    }
}

/// A participant's display name: 1–64 characters after trimming, no control characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// Validates and trims a display name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("must not be empty".into());
        }
        if name.chars().count() > MAX_DISPLAY_NAME {
            return Err(format!("must be at most {MAX_DISPLAY_NAME} characters"));
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(DisplayName(name.to_owned()))
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DisplayName({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_fold_case_and_trim() {
        assert_eq!(
            RoomName::parse(" Weekly-Sync ").unwrap().as_str(),
            "weekly-sync"
        );
        assert_eq!(RoomName::parse("a").unwrap().as_str(), "a");
        assert_eq!(RoomName::parse("team.42_x").unwrap().as_str(), "team.42_x");
    }

    #[test]
    fn room_names_refuse_what_a_url_path_cannot_carry_plainly() {
        for bad in [
            "",
            "   ",
            "-lead",
            ".hidden",
            "a/b",
            "a b",
            "späti",
            "x?y",
            &"a".repeat(65),
        ] {
            assert!(RoomName::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(RoomName::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn display_names_allow_any_script_but_no_control_characters() {
        assert_eq!(
            DisplayName::parse("  Zoë Ñ 李 ").unwrap().as_str(),
            "Zoë Ñ 李"
        );
        assert!(DisplayName::parse("").is_err());
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert!(DisplayName::parse("a\nb").is_err());
        assert!(DisplayName::parse(&"é".repeat(65)).is_err());
        assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
    }
}
