//! The user's login state as `status` and `verify` see it: read without
//! the lock (display only, never written), with a plain explanation when it
//! cannot be read instead of a failure.
//!
//! The state is root's (`/var/lib/pam_twofactor`, directory 0711, one file
//! per user, root:<user's group> 0640), so users can read their own.
//! Installs from before that change have a 0700 directory or 0600 files.

use std::fs;
use std::io;
use std::path::Path;

use twofactor_core::config::Config;
use twofactor_core::files::describe_io_error;
use twofactor_core::state::{LoginState, StateStore};

/// What could be learnt about a user's login state.
pub enum StateView {
    /// No state file: no second-factor login (or failure) recorded yet.
    Empty,
    /// The state.
    Read(LoginState),
    /// It exists (or may) but cannot be read; a sentence saying why.
    Unreadable(String),
}

impl StateView {
    /// Read `user`'s state under `config`. Never fails: a problem is
    /// described in [`StateView::Unreadable`].
    pub fn read(config: &Config, user: &str) -> StateView {
        let store = StateStore::new(&config.state_dir);
        let dir = store.dir();
        let path = store.state_path(user);
        match fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return StateView::Empty,
            Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
                return StateView::Unreadable(dir_not_accessible(dir, &err));
            }
            Err(err) => {
                return StateView::Unreadable(format!(
                    "{} cannot be checked: {}",
                    path.display(),
                    describe_io_error(&err)
                ))
            }
        }
        // Owned by root, as the module writes it.
        match store.peek(user, 0) {
            Ok(state) => StateView::Read(state),
            Err(err) => {
                let text = err.to_string();
                if text.ends_with("Permission denied") {
                    StateView::Unreadable(format!(
                        "{} is readable only by root (older versions wrote it with mode \
                         0600); the PAM module makes it readable to you (mode 0640) the \
                         next time it updates it",
                        path.display()
                    ))
                } else {
                    StateView::Unreadable(text)
                }
            }
        }
    }

    /// The state to judge with: the one read, an empty one when there is
    /// none yet, `None` when unknown.
    pub fn state(&self) -> Option<LoginState> {
        match self {
            StateView::Empty => Some(LoginState::default()),
            StateView::Read(state) => Some(state.clone()),
            StateView::Unreadable(_) => None,
        }
    }

    /// Why it cannot be read, if it cannot.
    pub fn problem(&self) -> Option<&str> {
        match self {
            StateView::Unreadable(why) => Some(why),
            _ => None,
        }
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
