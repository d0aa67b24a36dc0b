//! Whose enrollment is being changed, whether the caller may change it, and
//! becoming that user before any of their files is touched.

use std::ffi::CString;
use std::path::PathBuf;

use nix::unistd::{self, Gid, Uid, User};

use crate::error::CliError;

/// A user account as the password database describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: Uid,
    /// Primary group id.
    pub gid: Gid,
    /// Home directory (used for `%h` in the enrollment path).
    pub home: PathBuf,
    /// The name the login state is kept under, shared by every alias of
    /// the account ([`twofactor_core::state::state_name`]).
    pub state_name: String,
}

impl From<twofactor_core::account::Account> for Account {
    fn from(account: twofactor_core::account::Account) -> Self {
        Account {
            name: account.name,
            uid: Uid::from_raw(account.uid),
            gid: Gid::from_raw(account.gid),
            home: account.home,
            state_name: account.state_name,
        }
    }
}

/// The account named `name`, looked up as the module looks it up.
pub fn by_name(name: &str) -> Result<Account, CliError> {
    match twofactor_core::account::by_name(name)? {
        Some(account) => Ok(account.into()),
        None => Err(CliError::Refused(format!("unknown user {name:?}"))),
    }
}

/// The user whose enrollment to change: `requested` if given, else the
/// caller (real uid, so a set-uid installation still means the caller).
///
/// Only root may name another user. The comparison is by uid, so naming an
/// alias of oneself is allowed and naming another account is not.
pub fn resolve_target(requested: Option<&str>) -> Result<Account, CliError> {
    let caller = unistd::getuid();
    let Some(name) = requested else {
        return match twofactor_core::account::by_uid(caller.as_raw())? {
            Some(account) => Ok(account.into()),
            None => Err(CliError::Refused(format!(
                "your uid {caller} has no entry in the user database; use --user NAME"
            ))),
        };
    };
    let target = by_name(name)?;
    if target.uid != caller && !caller.is_root() {
        return Err(CliError::Refused(format!(
            "only root may act for another user (you are uid {caller}, {name:?} is uid {}); \
             run without --user to manage your own second factor",
            target.uid
        )));
    }
    Ok(target)
}

/// Is the caller root (real uid, as [`resolve_target`] judges)?
pub fn caller_is_root() -> bool {
    unistd::getuid().is_root()
}

/// Who is running the command, for audit lines: the login name of the real
/// uid, or `uid N` when it has none.
pub fn caller_name() -> String {
    let uid = unistd::getuid();
    match User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid {uid}"),
    }
}

/// Refuse unless the process runs as root (effective uid 0).
pub fn require_root(what: &str) -> Result<(), CliError> {
    if unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(CliError::Refused(format!(
            "only root may {what} (you are uid {})",
            unistd::geteuid()
        )))
    }
}

/// Become `account` for good: supplementary groups, then gid, then uid, all
/// three ids (real, effective, saved), so nothing done afterwards can act as
/// root. A symlink planted in the user's home then only ever leads to files
/// the user could write anyway, and everything created belongs to the user.
///
/// Does nothing when the process already is that user.
pub fn become_user(account: &Account) -> Result<(), CliError> {
    let (real, effective) = (unistd::getuid(), unistd::geteuid());
    if real == account.uid && effective == account.uid {
        return Ok(());
    }
    let failed = |step: &str, err: nix::Error| {
        CliError::System(format!(
            "cannot switch to user {} ({step}): {}",
            account.name,
            err.desc()
        ))
    };
    if !effective.is_root() {
        return Err(CliError::System(format!(
            "cannot switch to user {}: not running as root",
            account.name
        )));
    }
    let name = CString::new(account.name.as_str())
        .map_err(|_| CliError::System(format!("user name {:?} contains NUL", account.name)))?;
    // Groups first: once the uid is dropped, the right to change them is gone.
    unistd::initgroups(&name, account.gid).map_err(|e| failed("supplementary groups", e))?;
    unistd::setresgid(account.gid, account.gid, account.gid).map_err(|e| failed("gid", e))?;
    unistd::setresuid(account.uid, account.uid, account.uid).map_err(|e| failed("uid", e))?;
    verify_identity(account)
}

fn verify_identity(account: &Account) -> Result<(), CliError> {
    let not_dropped = |detail: String| {
        CliError::System(format!(
            "switching to user {} did not take effect ({detail})",
            account.name
        ))
    };
    let uids = unistd::getresuid().map_err(|e| not_dropped(e.desc().to_string()))?;
    let gids = unistd::getresgid().map_err(|e| not_dropped(e.desc().to_string()))?;
    if [uids.real, uids.effective, uids.saved] != [account.uid; 3] {
        return Err(not_dropped(format!(
            "uids {}/{}/{}",
            uids.real, uids.effective, uids.saved
        )));
    }
    if [gids.real, gids.effective, gids.saved] != [account.gid; 3] {
        return Err(not_dropped(format!(
            "gids {}/{}/{}",
            gids.real, gids.effective, gids.saved
        )));
    }
    // The saved ids are the usual way back to root; make sure no other is
    // left (a kernel or sandbox that ignored part of the change).
    if !account.uid.is_root() && unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(not_dropped("root could be regained".into()));
    }
    Ok(())
}
