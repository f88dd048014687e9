//! Domains, users, sessions and API tokens.

use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including the admin console.
    Admin,
    /// Meetings and their own account.
    User,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    fn parse(s: &str) -> Role {
        if s == "admin" {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Part before the @.
    pub local: String,
    /// The domain.
    pub domain: String,
    /// Name shown to others.
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl User {
    /// `local@domain`.
    pub fn login(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Part before the @ (lower case).
    pub local: String,
    /// An existing domain.
    pub domain: String,
    /// Name shown to others.
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
}

/// Changes to a user; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    /// New display name.
    pub display_name: Option<String>,
    /// New password hash.
    pub password_hash: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// Disable or enable.
    pub disabled: Option<bool>,
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Whose.
    pub user: User,
    /// The token forms and API calls must echo.
    pub csrf_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A personal access token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Row id.
    pub id: i64,
    /// Whose.
    pub user_id: i64,
    /// What it is for.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, if ever used.
    pub last_used_at: Option<i64>,
}

const USER_COLUMNS: &str =
    "id, local, domain, display_name, password_hash, role, disabled, created_at";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        local: r.get(1)?,
        domain: r.get(2)?,
        display_name: r.get(3)?,
        password_hash: r.get(4)?,
        role: Role::parse(&r.get::<_, String>(5)?),
        disabled: r.get::<_, i64>(6)? != 0,
        created_at: r.get(7)?,
    })
}

impl Store {
    /// Adds a domain.
    pub fn create_domain(&self, name: &str, at: i64) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "INSERT INTO domains (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![name, at],
        )?;
        if n == 0 {
            return Err(StoreError::Exists(format!("domain {name}")));
        }
        Ok(())
    }

    /// Every domain, with how many users it has.
    pub fn domains(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT d.name, COUNT(u.id) FROM domains d LEFT JOIN users u ON u.domain = d.name
             GROUP BY d.name ORDER BY d.name",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes an empty domain.
    pub fn delete_domain(&self, name: &str) -> Result<(), StoreError> {
        let users: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM users WHERE domain = ?1",
            [name],
            |r| r.get(0),
        )?;
        if users > 0 {
            return Err(StoreError::Refused(format!(
                "domain {name} still has {users} user(s); delete or move them first"
            )));
        }
        if self
            .conn
            .execute("DELETE FROM domains WHERE name = ?1", [name])?
            == 0
        {
            return Err(StoreError::NotFound(format!("domain {name}")));
        }
        Ok(())
    }

    /// Creates a user; the domain must exist.
    pub fn create_user(&self, user: &NewUser, at: i64) -> Result<User, StoreError> {
        let domain_exists: bool = self
            .conn
            .query_row(
                "SELECT 1 FROM domains WHERE name = ?1",
                [&user.domain],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if !domain_exists {
            return Err(StoreError::NotFound(format!("domain {}", user.domain)));
        }
        let n = self.conn.execute(
            "INSERT INTO users (local, domain, display_name, password_hash, role, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            params![
                user.local,
                user.domain,
                user.display_name,
                user.password_hash,
                user.role.as_str(),
                at
            ],
        )?;
        if n == 0 {
            return Err(StoreError::Exists(format!(
                "user {}@{}",
                user.local, user.domain
            )));
        }
        let id = self.conn.last_insert_rowid();
        self.user(id)?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))
    }

    /// A user by id.
    pub fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [id],
                user_row,
            )
            .optional()?)
    }

    /// A user by `local` and `domain`.
    pub fn user_by_login(&self, local: &str, domain: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE local = ?1 AND domain = ?2"),
                [local, domain],
                user_row,
            )
            .optional()?)
    }

    /// Every user, by domain then name.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY domain, local"
        ))?;
        let rows = stmt.query_map([], user_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many enabled administrators there are.
    pub fn admin_count(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0",
            [],
            |r| r.get(0),
        )?)
    }

    fn is_last_admin(&self, user: &User) -> Result<bool, StoreError> {
        Ok(user.role == Role::Admin && !user.disabled && self.admin_count()? <= 1)
    }

    /// Changes a user. The last enabled administrator cannot be demoted or disabled.
    pub fn update_user(&self, id: i64, update: &UserUpdate) -> Result<User, StoreError> {
        let user = self
            .user(id)?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
        let loses_admin = update.role == Some(Role::User) || update.disabled == Some(true);
        if loses_admin && self.is_last_admin(&user)? {
            return Err(StoreError::Refused(
                "this is the last administrator; make someone else administrator first".into(),
            ));
        }
        let tx = self.conn.unchecked_transaction()?;
        if let Some(name) = &update.display_name {
            tx.execute(
                "UPDATE users SET display_name = ?1 WHERE id = ?2",
                params![name, id],
            )?;
        }
        if let Some(hash) = &update.password_hash {
            tx.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![hash, id],
            )?;
            // A new password signs out every browser of that user.
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
        }
        if let Some(role) = update.role {
            tx.execute(
                "UPDATE users SET role = ?1 WHERE id = ?2",
                params![role.as_str(), id],
            )?;
        }
        if let Some(disabled) = update.disabled {
            tx.execute(
                "UPDATE users SET disabled = ?1 WHERE id = ?2",
                params![i64::from(disabled), id],
            )?;
            if disabled {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
            }
        }
        tx.commit()?;
        self.user(id)?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))
    }

    /// Deletes a user (and their sessions and tokens). Not the last administrator.
    pub fn delete_user(&self, id: i64) -> Result<(), StoreError> {
        let user = self
            .user(id)?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
        if self.is_last_admin(&user)? {
            return Err(StoreError::Refused(
                "this is the last administrator; make someone else administrator first".into(),
            ));
        }
        self.conn.execute("DELETE FROM users WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Records a session.
    pub fn create_session(
        &self,
        token_hash: &[u8],
        user_id: i64,
        csrf: &str,
        at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token_hash, user_id, csrf, at, expires_at],
        )?;
        Ok(())
    }

    /// The live session with this token hash, if any (expired ones are not returned).
    pub fn session(&self, token_hash: &[u8], now: i64) -> Result<Option<Session>, StoreError> {
        let found: Option<(i64, String, i64)> = self
            .conn
            .query_row(
                "SELECT user_id, csrf_token, expires_at FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
                params![token_hash, now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((user_id, csrf_token, expires_at)) = found else {
            return Ok(None);
        };
        Ok(self
            .user(user_id)?
            .filter(|u| !u.disabled)
            .map(|user| Session {
                user,
                csrf_token,
                expires_at,
            }))
    }

    /// Ends a session.
    pub fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
        Ok(())
    }

    /// Forgets expired sessions.
    pub fn purge_sessions(&self, now: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?)
    }

    /// Records an API token.
    pub fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8],
        at: i64,
    ) -> Result<ApiToken, StoreError> {
        self.conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![user_id, name, token_hash, at],
        )?;
        Ok(ApiToken {
            id: self.conn.last_insert_rowid(),
            user_id,
            name: name.to_owned(),
            created_at: at,
            last_used_at: None,
        })
    }

    /// The enabled user owning the token with this hash, noting the use.
    pub fn api_token_user(&self, token_hash: &[u8], now: i64) -> Result<Option<User>, StoreError> {
        let user_id: Option<i64> = self
            .conn
            .query_row(
                "SELECT user_id FROM api_tokens WHERE token_hash = ?1",
                [token_hash],
                |r| r.get(0),
            )
            .optional()?;
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        self.conn.execute(
            "UPDATE api_tokens SET last_used_at = ?1 WHERE token_hash = ?2",
            params![now, token_hash],
        )?;
        Ok(self.user(user_id)?.filter(|u| !u.disabled))
    }

    /// A user's tokens.
    pub fn api_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, user_id, name, created_at, last_used_at FROM api_tokens WHERE user_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([user_id], |r| {
            Ok(ApiToken {
                id: r.get(0)?,
                user_id: r.get(1)?,
                name: r.get(2)?,
                created_at: r.get(3)?,
                last_used_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes one of a user's tokens.
    pub fn delete_api_token(&self, user_id: i64, id: i64) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "DELETE FROM api_tokens WHERE id = ?1 AND user_id = ?2",
            [id, user_id],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("token {id}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_domain() -> Store {
        let s = Store::open_in_memory().unwrap();
        s.create_domain("example.org", 1).unwrap();
        s
    }

    fn new_user(local: &str, role: Role) -> NewUser {
        NewUser {
            local: local.into(),
            domain: "example.org".into(),
            display_name: local.to_uppercase(),
            password_hash: "$argon2id$fake".into(),
            role,
        }
    }

    #[test]
    fn users_belong_to_existing_domains_and_are_unique() {
        let s = store_with_domain();
        let ada = s.create_user(&new_user("ada", Role::Admin), 2).unwrap();
        assert_eq!(ada.login(), "ada@example.org");
        assert!(matches!(
            s.create_user(&new_user("ada", Role::User), 3),
            Err(StoreError::Exists(_))
        ));
        let mut elsewhere = new_user("bob", Role::User);
        elsewhere.domain = "nowhere.test".into();
        assert!(matches!(
            s.create_user(&elsewhere, 3),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.user_by_login("ada", "example.org").unwrap(), Some(ada));
        assert!(matches!(
            s.create_domain("example.org", 4),
            Err(StoreError::Exists(_))
        ));
        assert!(matches!(
            s.delete_domain("example.org"),
            Err(StoreError::Refused(_))
        ));
        assert_eq!(s.domains().unwrap(), vec![("example.org".to_owned(), 1)]);
    }

    #[test]
    fn the_last_administrator_stays() {
        let s = store_with_domain();
        let ada = s.create_user(&new_user("ada", Role::Admin), 2).unwrap();
        let demote = UserUpdate {
            role: Some(Role::User),
            ..Default::default()
        };
        assert!(matches!(
            s.update_user(ada.id, &demote),
            Err(StoreError::Refused(_))
        ));
        assert!(matches!(s.delete_user(ada.id), Err(StoreError::Refused(_))));
        let grace = s.create_user(&new_user("grace", Role::Admin), 3).unwrap();
        assert_eq!(s.update_user(ada.id, &demote).unwrap().role, Role::User);
        assert!(matches!(
            s.delete_user(grace.id),
            Err(StoreError::Refused(_))
        ));
    }

    #[test]
    fn sessions_expire_and_end_with_a_password_change() {
        let s = store_with_domain();
        let ada = s.create_user(&new_user("ada", Role::User), 2).unwrap();
        s.create_session(b"hash", ada.id, "csrf", 10, 100).unwrap();
        assert_eq!(s.session(b"hash", 50).unwrap().unwrap().csrf_token, "csrf");
        assert!(s.session(b"hash", 100).unwrap().is_none(), "expired");
        assert!(s.session(b"other", 50).unwrap().is_none());
        let change = UserUpdate {
            password_hash: Some("$argon2id$new".into()),
            ..Default::default()
        };
        s.update_user(ada.id, &change).unwrap();
        assert!(
            s.session(b"hash", 50).unwrap().is_none(),
            "signed out by the password change"
        );
    }

    #[test]
    fn api_tokens_authenticate_their_owner_until_revoked() {
        let s = store_with_domain();
        let ada = s.create_user(&new_user("ada", Role::User), 2).unwrap();
        let t = s.create_api_token(ada.id, "ci", b"tokhash", 5).unwrap();
        assert_eq!(
            s.api_token_user(b"tokhash", 6).unwrap().map(|u| u.id),
            Some(ada.id)
        );
        assert_eq!(s.api_tokens(ada.id).unwrap()[0].last_used_at, Some(6));
        s.delete_api_token(ada.id, t.id).unwrap();
        assert!(s.api_token_user(b"tokhash", 7).unwrap().is_none());
        s.update_user(
            ada.id,
            &UserUpdate {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    }
}
