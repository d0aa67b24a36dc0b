//! The user accounts the module and the tool act for, looked up once, the
//! same way for both: the name a login gives, the uid's own first name
//! (under which the login state is kept, shared by every alias), and the
//! home directory `%h` stands for.

use std::path::PathBuf;

use nix::unistd::{Uid, User};

use crate::error::Error;
use crate::state::state_name;

/// A user account as the system's user database describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
    /// The name the login state is kept under: the first name the system
    /// gives the uid, so that every alias of an account (`useradd -o`)
    /// shares one replay and failure state with it.
    pub state_name: String,
}

fn lookup_failed(what: String, errno: nix::Error) -> Error {
    Error::Lookup(format!("looking up {what} failed: {}", errno.desc()))
}

fn from_user(user: User) -> Result<Account, Error> {
    // An alias resolves to the uid's first name; a uid the system cannot
    // name back (odd NSS setups) keeps the name it was found by.
    let name_of_uid = User::from_uid(user.uid)
        .map_err(|e| lookup_failed(format!("uid {}", user.uid), e))?
        .map(|u| u.name);
    Ok(Account {
        state_name: state_name(&user.name, name_of_uid),
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir,
        name: user.name,
    })
}

/// The account named `name`; `Ok(None)` when there is none. A failing user
/// database (an NSS or LDAP outage) is [`Error::Lookup`], not "no such user".
pub fn by_name(name: &str) -> Result<Option<Account>, Error> {
    match User::from_name(name) {
        Ok(Some(user)) => from_user(user).map(Some),
        Ok(None) => Ok(None),
        Err(errno) => Err(lookup_failed(
            format!("user {}", crate::audit::sanitize(name)),
            errno,
        )),
    }
}

/// The account of `uid`; `Ok(None)` when the user database has none.
pub fn by_uid(uid: u32) -> Result<Option<Account>, Error> {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => from_user(user).map(Some),
        Ok(None) => Ok(None),
        Err(errno) => Err(lookup_failed(format!("uid {uid}"), errno)),
    }
}

/// This host's name (for the default relying-party id and the issuer shown
/// in authenticator apps); `localhost` when it cannot be read.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_by_name_and_uid() {
        let root = by_name("root").unwrap().unwrap();
        assert_eq!((root.uid, root.state_name.as_str()), (0, "root"));
        assert_eq!(by_uid(0).unwrap().unwrap().name, "root");
        assert_eq!(by_name("no-such-user-x7q").unwrap(), None);
    }
}
