//! The user's login state as `status`, `verify` and `doctor` see it: read
//! without the lock (display only, never written), with a plain
//! explanation when it cannot be read instead of a failure.
//!
//! The state is root's (`/var/lib/pam_twofactor`, directory 0711, one file
//! per user, root:<user's group> 0640), so users can read their own.
//! Installs from before that change have a 0700 directory or 0600 files.
//!
//! With `state_backend = "redis"` the state is the fleet's shared one, with
//! this host's replay defences taken in, exactly as a login would decide on
//! it ([`LoginStates::peek`]), and its windows run on the server's clock.

use std::fs;
use std::io;
use std::path::Path;

use twofactor_core::config::{Config, StateBackend};
use twofactor_core::files::describe_io_error;
use twofactor_core::login_states::LoginStates;
use twofactor_core::state::{LoginState, StateStore};
use twofactor_core::Error;

/// What could be learnt about a user's login state.
#[derive(Debug, Clone)]
pub enum Found {
    /// No state recorded: no second-factor login (or failure) yet.
    Empty,
    /// The state.
    Read(LoginState),
    /// It exists (or may) but cannot be read; a sentence saying why.
    Unreadable(String),
}

/// A user's login state and the clock it is judged on.
#[derive(Debug, Clone)]
pub struct StateView {
    /// What was found.
    pub found: Found,
    /// Unix time on the state's clock: failure windows and lockouts run on
    /// it, and the times it records were taken from it. The shared
    /// server's with the Redis backend (a host whose clock is off must not
    /// show a lockout as over while the fleet still enforces it), else this
    /// host's. Which TOTP codes are current is always this host's clock.
    pub now: u64,
}

impl StateView {
    /// Read `user`'s state under `config`; `host_now` is this host's clock.
    /// Never fails: a problem is described in [`Found::Unreadable`].
    pub fn read(config: &Config, user: &str, host_now: u64) -> StateView {
        match config.state_backend {
            StateBackend::Local => StateView {
                found: read_local(config, user),
                now: host_now,
            },
            StateBackend::Redis => read_shared(config, user, host_now),
        }
    }

    /// The state to judge with: the one read, an empty one when there is
    /// none yet, `None` when unknown.
    pub fn state(&self) -> Option<LoginState> {
        match &self.found {
            Found::Empty => Some(LoginState::default()),
            Found::Read(state) => Some(state.clone()),
            Found::Unreadable(_) => None,
        }
    }

    /// Why it cannot be read, if it cannot.
    pub fn problem(&self) -> Option<&str> {
        match &self.found {
            Found::Unreadable(why) => Some(why),
            _ => None,
        }
    }

    /// True when a state was recorded (a login or a failure happened).
    pub fn is_recorded(&self) -> bool {
        matches!(self.found, Found::Read(_))
    }
}

fn read_local(config: &Config, user: &str) -> Found {
    let store = StateStore::new(&config.state_dir);
    let dir = store.dir();
    let path = store.state_path(user);
    match fs::symlink_metadata(&path) {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Found::Empty,
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
            return Found::Unreadable(dir_not_accessible(dir, &err));
        }
        Err(err) => {
            return Found::Unreadable(format!(
                "{} cannot be checked: {}",
                path.display(),
                describe_io_error(&err)
            ))
        }
    }
    // Owned by root, as the module writes it.
    match store.peek(user, 0) {
        Ok(state) => Found::Read(state),
        Err(err) => {
            let text = err.to_string();
            if text.ends_with("Permission denied") {
                Found::Unreadable(format!(
                    "{} is readable only by root (older versions wrote it with mode \
                     0600); the PAM module makes it readable to you (mode 0640) the \
                     next time it updates it",
                    path.display()
                ))
            } else {
                Found::Unreadable(text)
            }
        }
    }
}

/// The shared state, as a login would see it before deciding.
fn read_shared(config: &Config, user: &str, host_now: u64) -> StateView {
    let unreadable = |why: String| StateView {
        found: Found::Unreadable(why),
        now: host_now,
    };
    // Asked before anything is opened: the file would only be refused
    // with a bare "Permission denied" otherwise.
    if !config.redis_password_file.is_empty() && !nix::unistd::geteuid().is_root() {
        return unreadable(format!(
            "it is kept on the fleet's Redis server (state_backend = \"redis\"), whose \
             password file {} only root may read: run the command as root to see it",
            config.redis_password_file
        ));
    }
    let states = LoginStates::new(config, 0);
    match states.peek(user, host_now) {
        Ok(view) => match view.fallback {
            Some(why) => unreadable(format!(
                "the fleet's shared state on Redis cannot be reached ({why}); meanwhile \
                 logins on this host decide on its own state (redis_unavailable = \"local\")"
            )),
            None => StateView {
                found: if view.state == LoginState::default() {
                    Found::Empty
                } else {
                    Found::Read(view.state)
                },
                now: view.now,
            },
        },
        Err(Error::SharedState(why)) if why.is_unreachable() => unreadable(format!(
            "the fleet's shared state on Redis cannot be reached ({why}); logins through \
             the module fail meanwhile (redis_unavailable = \"fail\")"
        )),
        Err(err) => unreadable(err.to_string()),
    }
}

fn dir_not_accessible(dir: &Path, err: &io::Error) -> String {
    format!(
        "the state directory {} is not accessible to you ({}); older versions created \
         it with mode 0700, and 'chmod 0711 {}' (as root) lets each user see their own \
         state",
        dir.display(),
        describe_io_error(err),
        dir.display()
    )
}
