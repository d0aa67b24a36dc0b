//! Reading a user's files with that user's file-system identity.
//!
//! `setfsuid`/`setfsgid` change only the identity used for permission checks,
//! only for the calling thread, and drop root's file capabilities while they
//! are in effect: a file the user could not read (or one on a root-squashed
//! network home that only the user can read) behaves as it would for the
//! user. The guard restores root's identity on every path, panics included.
#![forbid(unsafe_code)]

use nix::unistd::{setfsgid, setfsuid, Gid, Uid};

/// The thread acts with another file-system identity until this is dropped.
pub struct FsIdentity {
    previous_uid: Uid,
    previous_gid: Gid,
}

/// The switch did not take effect (the caller lacks the privilege).
#[derive(Debug)]
pub struct SwitchFailed;

fn current_fsuid() -> Uid {
    // An invalid id changes nothing and returns the current one.
    let current = setfsuid(Uid::from_raw(u32::MAX));
    setfsuid(current);
    current
}

fn current_fsgid() -> Gid {
    let current = setfsgid(Gid::from_raw(u32::MAX));
    setfsgid(current);
    current
}

impl FsIdentity {
    /// Act as `uid`/`gid` for file access.
    pub fn switch(uid: u32, gid: u32) -> Result<Self, SwitchFailed> {
        let previous_gid = setfsgid(Gid::from_raw(gid));
        let previous_uid = setfsuid(Uid::from_raw(uid));
        let guard = FsIdentity {
            previous_uid,
            previous_gid,
        };
        if current_fsuid().as_raw() != uid || current_fsgid().as_raw() != gid {
            // Dropping the guard restores whatever did change.
            return Err(SwitchFailed);
        }
        Ok(guard)
    }
}

impl Drop for FsIdentity {
    fn drop(&mut self) {
        // uid first: restoring it gives back the capabilities needed for the gid.
        setfsuid(self.previous_uid);
        setfsgid(self.previous_gid);
    }
}
