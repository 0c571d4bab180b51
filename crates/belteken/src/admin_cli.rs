//! Console accounts from the command line: `belteken admin create|list|delete|password` and
//! `belteken admin token create|list|delete`. Passwords come from a prompt without echo or,
//! for scripts, one line on standard input (`--password-stdin`); never from an argument,
//! which other users of the machine could read in the process list.

use std::io::{BufRead, IsTerminal, Write};
use std::time::SystemTime;

use anyhow::{bail, Context as _, Result};

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create a console user (the first admin is made this way).
    Create {
        #[command(flatten)]
        common: crate::Common,
        /// The user name (letters, digits and .-_@).
        #[arg(long)]
        user: String,
        /// admin (everything) or reviewer (listen to and judge signatures).
        #[arg(long, default_value = "admin")]
        role: String,
        /// Read the password from the first line of standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the console users.
    List {
        #[command(flatten)]
        common: crate::Common,
    },
    /// Delete a console user, their sessions and API tokens.
    Delete {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        user: String,
    },
    /// Set a user's password (their open sessions end).
    Password {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        user: String,
        /// Read the password from the first line of standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// API tokens for the admin JSON endpoints (`Authorization: Bearer ...`).
    Token {
        #[command(subcommand)]
        cmd: TokenCommand,
    },
}

/// Days an API token is good for unless `--days` says otherwise.
const DEFAULT_TOKEN_DAYS: u64 = 90;

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token acting as this user; it is printed once and stored only as a hash.
    Create {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        user: String,
        /// What the token is for, e.g. "dashboard".
        #[arg(long)]
        label: String,
        /// Days the token is good for (1 to 3650); past them it is refused.
        #[arg(long, default_value_t = DEFAULT_TOKEN_DAYS, value_parser = clap::value_parser!(u64).range(1..=3650))]
        days: u64,
    },
    /// List the tokens (not their secrets).
    List {
        #[command(flatten)]
        common: crate::Common,
    },
    /// Delete a token.
    Delete {
        #[command(flatten)]
        common: crate::Common,
        #[arg(long)]
        user: String,
        #[arg(long)]
        label: String,
    },
}

impl AdminCommand {
    pub fn common(&self) -> &crate::Common {
        match self {
            AdminCommand::Create { common, .. }
            | AdminCommand::List { common }
            | AdminCommand::Delete { common, .. }
            | AdminCommand::Password { common, .. }
            | AdminCommand::Token {
                cmd:
                    TokenCommand::Create { common, .. }
                    | TokenCommand::List { common }
                    | TokenCommand::Delete { common, .. },
            } => common,
        }
    }
}

pub fn run(cmd: AdminCommand, store: &dyn store::Store) -> Result<()> {
    match cmd {
        AdminCommand::Create {
            user,
            role,
            password_stdin,
            ..
        } => {
            store::validate_user_name(&user)?;
            let Some(role) = store::Role::parse(&role) else {
                bail!("unknown role {role:?}: use admin or reviewer");
            };
            if store.console_user(&user)?.is_some() {
                bail!("user {user} exists already (use `belteken admin password` to change the password)");
            }
            let hash = store::hash_password(&read_password(password_stdin)?)?;
            if !store.add_console_user(&user, role, &hash)? {
                bail!("user {user} exists already");
            }
            println!("created {} {user}", role.as_str());
        }
        AdminCommand::List { .. } => {
            let users = store.console_users()?;
            if users.is_empty() {
                println!("no console users; create one with `belteken admin create --user NAME`");
            }
            for u in users {
                println!("{}\t{}\tcreated {}", u.name, u.role.as_str(), u.created_at);
            }
        }
        AdminCommand::Delete { user, .. } => {
            if !store.delete_console_user(&user)? {
                bail!("no user {user}");
            }
            println!("deleted {user}");
        }
        AdminCommand::Password {
            user,
            password_stdin,
            ..
        } => {
            if store.console_user(&user)?.is_none() {
                bail!("no user {user}");
            }
            let hash = store::hash_password(&read_password(password_stdin)?)?;
            if !store.set_console_password(&user, &hash)? {
                bail!("no user {user}");
            }
            println!("password of {user} changed; their sessions have ended");
        }
        AdminCommand::Token { cmd } => match cmd {
            TokenCommand::Create {
                user, label, days, ..
            } => {
                let token = store::new_token();
                let hash = store::token_hash(&token);
                let now = SystemTime::now();
                let expires = now + std::time::Duration::from_secs(days * 86_400);
                if !store.create_api_token(&hash, &user, &label, now, expires)? {
                    bail!("no user {user}, or they have a token labelled {label:?} already");
                }
                eprintln!("the token (shown only now; send it as `Authorization: Bearer TOKEN`):");
                println!("{token}");
                eprintln!("it expires {}", store::rfc3339_utc(expires));
            }
            TokenCommand::List { .. } => {
                for t in store.api_tokens()? {
                    println!(
                        "{}\t{}\tcreated {}\texpires {}",
                        t.user, t.label, t.created_at, t.expires_at
                    );
                }
            }
            TokenCommand::Delete { user, label, .. } => {
                if !store.delete_api_token(&user, &label)? {
                    bail!("no token {label:?} of {user}");
                }
                println!("deleted token {label:?} of {user}");
            }
        },
    }
    Ok(())
}

/// The new password: one line of standard input, or typed twice at a prompt without echo.
fn read_password(from_stdin: bool) -> Result<String> {
    let stdin = std::io::stdin();
    if from_stdin {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(password);
    }
    if !stdin.is_terminal() {
        bail!(
            "standard input is not a terminal: pass --password-stdin to read the password from it"
        );
    }
    let first = prompt_hidden("New password: ")?;
    let second = prompt_hidden("Repeat it: ")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

fn prompt_hidden(prompt: &str) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{prompt}");
    let _ = stderr.flush();
    let saved = tcgetattr(&stdin).context("cannot read the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("cannot turn off echo")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    let _ = writeln!(stderr);
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
