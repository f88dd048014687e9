//! Conference history retention and the buddy list's reach.

use serde::{Deserialize, Serialize};

use crate::error::{Errors, Invalid};

/// Who appears in a user's buddy list (seed 001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BuddyList {
    /// Users of the same domain (the default).
    #[default]
    SameDomain,
    /// Users of every domain on this server.
    AllDomains,
}

/// The history section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySettings {
    /// Days conference history is kept, 1–3650.
    #[serde(default = "default_days")]
    pub retention_days: u32,
    /// The buddy list's reach.
    #[serde(default)]
    pub buddy_list: BuddyList,
}

fn default_days() -> u32 {
    30
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            retention_days: 30,
            buddy_list: BuddyList::SameDomain,
        }
    }
}

impl HistorySettings {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut e = Errors::default();
        if !(1..=3650).contains(&self.retention_days) {
            e.add(
                "retention_days",
                "range",
                "history is kept between 1 and 3650 days",
            );
        }
        e.finish()
    }
}
