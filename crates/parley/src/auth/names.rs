//! Logins are `local@domain`, as mail addresses are; domains group users.

use parley_store::{NewUser, Role, Store, StoreError, User};

/// A parsed, lower-cased login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Before the @.
    pub local: String,
    /// After the @.
    pub domain: String,
}

/// Checks a domain name: letters, digits and hyphens in dot-separated
/// labels, as in host names. Returns it lower-cased.
pub fn parse_domain(raw: &str) -> Result<String, String> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() {
        return Err("the domain is empty".into());
    }
    if d.len() > 253 {
        return Err("the domain is longer than 253 characters".into());
    }
    for label in d.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "{raw:?} is not a domain name: each part between dots needs 1-63 characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "{raw:?} is not a domain name: use letters, digits and hyphens"
            ));
        }
    }
    Ok(d)
}

impl Login {
    /// Parses `local@domain`.
    pub fn parse(raw: &str) -> Result<Login, String> {
        let raw = raw.trim();
        let Some((local, domain)) = raw.rsplit_once('@') else {
            return Err(format!("{raw:?} is not a login: write it as name@domain"));
        };
        let local = local.to_lowercase();
        if local.is_empty() || local.len() > 64 {
            return Err("the name before @ needs 1-64 characters".into());
        }
        if !local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_+".contains(&b))
        {
            return Err("the name before @ may use letters, digits and . - _ +".into());
        }
        Ok(Login {
            local,
            domain: parse_domain(domain)?,
        })
    }
}

/// Creates the account `login` (and, with `create_domain`, its domain if
/// missing; otherwise the domain must exist).
pub fn create_account(
    store: &Store,
    login: Login,
    display_name: String,
    password_hash: String,
    role: Role,
    create_domain: bool,
    at: i64,
) -> Result<User, StoreError> {
    if create_domain {
        match store.create_domain(&login.domain, at) {
            Ok(()) | Err(StoreError::Exists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    store.create_user(
        &NewUser {
            local: login.local,
            domain: login.domain,
            display_name,
            password_hash,
            role,
        },
        at,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_fold_case_and_reject_garbage() {
        assert_eq!(
            Login::parse(" Ada.L@Example.ORG ").unwrap(),
            Login {
                local: "ada.l".into(),
                domain: "example.org".into()
            }
        );
        for bad in [
            "ada",
            "@example.org",
            "ada@",
            "a da@example.org",
            "ada@exa_mple.org",
            "ada@-x.org",
            "ada@x..org",
        ] {
            assert!(Login::parse(bad).is_err(), "{bad}");
        }
    }
}
