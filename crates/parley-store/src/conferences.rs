//! Scheduled conferences and their invitees.

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

/// A conference to create or the new state of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceDraft {
    /// Title.
    pub title: String,
    /// Local wall time, `YYYY-MM-DDTHH:MM`.
    pub starts_local: String,
    /// IANA time zone.
    pub time_zone: String,
    /// The same instant, unix seconds.
    pub starts_at: i64,
    /// Minutes.
    pub duration_min: i64,
    /// Invitees' e-mail addresses (lower-case).
    pub invitees: Vec<String>,
}

/// An invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitee {
    /// E-mail address.
    pub email: String,
    /// The account with that login.
    pub account_id: Option<i64>,
    /// Last e-mail's fate.
    pub delivery: String,
}

/// A stored conference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    /// Row id.
    pub id: i64,
    /// iCalendar UID.
    pub uid: String,
    /// Organizer's account.
    pub organizer_id: i64,
    /// Organizer's display name.
    pub organizer_name: String,
    /// Organizer's login (e-mail address).
    pub organizer_login: String,
    /// Title.
    pub title: String,
    /// Room name.
    pub room: String,
    /// Local wall time.
    pub starts_local: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Unix seconds.
    pub starts_at: i64,
    /// Minutes.
    pub duration_min: i64,
    /// iCalendar SEQUENCE.
    pub sequence: i64,
    /// Cancelled.
    pub cancelled: bool,
    /// Invitees.
    pub invitees: Vec<Invitee>,
}

impl Store {
    fn account_for_email(&self, email: &str) -> Result<Option<i64>, StoreError> {
        let Some((local, domain)) = email.split_once('@') else {
            return Ok(None);
        };
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM users WHERE local = ?1 AND domain = ?2 AND disabled = 0",
                params![local, domain],
                |r| r.get::<_, i64>(0),
            )
            .optional()?)
    }

    /// Creates a conference; returns it.
    pub fn create_conference(
        &self,
        uid: &str,
        organizer: i64,
        room: &str,
        draft: &ConferenceDraft,
        at: i64,
    ) -> Result<Conference, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO conferences (uid, organizer_id, title, room, starts_local, time_zone, \
               starts_at, duration_min, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![
                uid,
                organizer,
                draft.title,
                room,
                draft.starts_local,
                draft.time_zone,
                draft.starts_at,
                draft.duration_min,
                at
            ],
        )?;
        let id = tx.last_insert_rowid();
        self.set_invitees(id, &draft.invitees)?;
        tx.commit()?;
        self.conference(id)?
            .ok_or_else(|| StoreError::NotFound("conference".into()))
    }

    fn set_invitees(&self, id: i64, emails: &[String]) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM conference_invitees WHERE conference_id = ?1",
            [id],
        )?;
        for email in emails {
            let account = self.account_for_email(email)?;
            self.conn.execute(
                "INSERT OR IGNORE INTO conference_invitees (conference_id, email, account_id) \
                 VALUES (?1, ?2, ?3)",
                params![id, email, account],
            )?;
        }
        Ok(())
    }

    /// Replaces a conference's details and invitees and bumps its sequence.
    /// Returns the invitees it had before (to tell the removed ones).
    pub fn update_conference(
        &self,
        id: i64,
        draft: &ConferenceDraft,
        at: i64,
    ) -> Result<Vec<Invitee>, StoreError> {
        let before = self
            .conference(id)?
            .ok_or_else(|| StoreError::NotFound("conference".into()))?;
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE conferences SET title = ?2, starts_local = ?3, time_zone = ?4, starts_at = ?5, \
               duration_min = ?6, sequence = sequence + 1, updated_at = ?7 WHERE id = ?1",
            params![
                id,
                draft.title,
                draft.starts_local,
                draft.time_zone,
                draft.starts_at,
                draft.duration_min,
                at
            ],
        )?;
        self.set_invitees(id, &draft.invitees)?;
        tx.commit()?;
        Ok(before.invitees)
    }

    /// Marks a conference cancelled and bumps its sequence.
    pub fn cancel_conference(&self, id: i64, at: i64) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE conferences SET cancelled = 1, sequence = sequence + 1, updated_at = ?2 \
             WHERE id = ?1 AND cancelled = 0",
            params![id, at],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound("conference".into()));
        }
        Ok(())
    }

    /// Records what happened to an invitee's e-mail.
    pub fn set_delivery(&self, id: i64, email: &str, delivery: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE conference_invitees SET delivery = ?3 WHERE conference_id = ?1 AND email = ?2",
            params![id, email, delivery],
        )?;
        Ok(())
    }

    /// One conference.
    pub fn conference(&self, id: i64) -> Result<Option<Conference>, StoreError> {
        let found = self
            .conn
            .query_row(
                "SELECT c.id, c.uid, c.organizer_id, u.display_name, u.local || '@' || u.domain, \
                   c.title, c.room, c.starts_local, c.time_zone, c.starts_at, c.duration_min, \
                   c.sequence, c.cancelled \
                 FROM conferences c JOIN users u ON u.id = c.organizer_id WHERE c.id = ?1",
                [id],
                |r| {
                    Ok(Conference {
                        id: r.get(0)?,
                        uid: r.get(1)?,
                        organizer_id: r.get(2)?,
                        organizer_name: r.get(3)?,
                        organizer_login: r.get(4)?,
                        title: r.get(5)?,
                        room: r.get(6)?,
                        starts_local: r.get(7)?,
                        time_zone: r.get(8)?,
                        starts_at: r.get(9)?,
                        duration_min: r.get(10)?,
                        sequence: r.get(11)?,
                        cancelled: r.get(12)?,
                        invitees: Vec::new(),
                    })
                },
            )
            .optional()?;
        let Some(mut c) = found else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare(
            "SELECT email, account_id, delivery FROM conference_invitees \
             WHERE conference_id = ?1 ORDER BY id",
        )?;
        c.invitees = stmt
            .query_map([id], |r| {
                Ok(Invitee {
                    email: r.get(0)?,
                    account_id: r.get(1)?,
                    delivery: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(c))
    }

    /// Conferences `account` organizes or is invited to that end after
    /// `after` (unix seconds), soonest first; cancelled ones included.
    pub fn upcoming_conferences(
        &self,
        account: i64,
        after: i64,
    ) -> Result<Vec<Conference>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM conferences WHERE starts_at + duration_min * 60 > ?2 AND ( \
               organizer_id = ?1 OR id IN \
               (SELECT conference_id FROM conference_invitees WHERE account_id = ?1)) \
             ORDER BY starts_at, id LIMIT 200",
        )?;
        let ids: Vec<i64> = stmt
            .query_map(params![account, after], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(c) = self.conference(id)? {
                out.push(c);
            }
        }
        Ok(out)
    }
}
