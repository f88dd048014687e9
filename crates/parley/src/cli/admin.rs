//! `parley admin`: account housekeeping on the database directly, for the
//! first administrator, a forgotten password, or scripts. Safe while the
//! server runs (SQLite in WAL mode serialises the writes).

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use parley_store::{Role, Store, UserUpdate};

use crate::auth::names::{Login, create_account};
use crate::auth::password;

/// `parley admin`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Where the database lives [default: ./data].
    #[arg(long, env = "PARLEY_DATA_DIR", value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an account (its domain is created if needed). The password is
    /// read from the first line of standard input, or PARLEY_PASSWORD.
    CreateUser {
        /// The login, name@domain.
        login: String,
        /// Make it an administrator.
        #[arg(long)]
        admin: bool,
        /// Name shown to others [default: the part before @].
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
    },
    /// Set an account's password (read like create-user's) and enable it.
    SetPassword {
        /// The login, name@domain.
        login: String,
    },
    /// List the accounts.
    ListUsers,
}

/// Runs `parley admin ...`.
pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let dir = args.data_dir.unwrap_or_else(|| PathBuf::from("data"));
    let store = Store::open(&dir)
        .with_context(|| format!("cannot open the database in {}", dir.display()))?;
    let now = crate::clock::unix_now_i64();
    match args.command {
        AdminCommand::CreateUser {
            login,
            admin,
            display_name,
        } => {
            let login = Login::parse(&login).map_err(anyhow::Error::msg)?;
            let hash = read_password()?;
            let display_name = display_name.unwrap_or_else(|| login.local.clone());
            let role = if admin { Role::Admin } else { Role::User };
            let user = create_account(&store, login, display_name, hash, role, true, now)?;
            println!(
                "created {} ({}), id {}",
                user.login(),
                user.role.as_str(),
                user.id
            );
        }
        AdminCommand::SetPassword { login } => {
            let login = Login::parse(&login).map_err(anyhow::Error::msg)?;
            let Some(user) = store.user_by_login(&login.local, &login.domain)? else {
                bail!("no account {}@{}", login.local, login.domain);
            };
            let hash = read_password()?;
            store.update_user(
                user.id,
                &UserUpdate {
                    password_hash: Some(hash),
                    disabled: Some(false),
                    ..Default::default()
                },
            )?;
            println!("password of {} set", user.login());
        }
        AdminCommand::ListUsers => {
            for u in store.users()? {
                println!(
                    "{:>5}  {:<40} {:<6} {}{}",
                    u.id,
                    u.login(),
                    u.role.as_str(),
                    u.display_name,
                    if u.disabled { "  (disabled)" } else { "" }
                );
            }
        }
    }
    Ok(())
}

/// The new password from PARLEY_PASSWORD or standard input, checked and hashed.
fn read_password() -> anyhow::Result<String> {
    let plain = match std::env::var("PARLEY_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!("password (the line is shown as you type; or set PARLEY_PASSWORD):");
            }
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    password::check_strength(&plain).map_err(anyhow::Error::msg)?;
    password::hash(&plain).map_err(anyhow::Error::msg)
}
