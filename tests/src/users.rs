//! Test accounts, visible only inside the test namespace: its private `/etc`
//! (see [`crate::namespace::private_etc`]) holds copies of `/etc/passwd`,
//! `/etc/group` and `/etc/shadow` with the accounts added.

use std::fs;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// First uid of the test accounts.
const FIRST_UID: u32 = 61000;
/// How many test accounts exist (tf-user0 ... tf-userN).
pub const ACCOUNT_COUNT: u32 = 40;

/// Every test account's password, for stacks with pam_unix.
pub const PASSWORD: &str = "s3cret pass";
/// SHA-512 crypt of [`PASSWORD`] (fixed salt, so no crypt library is needed here).
const PASSWORD_HASH: &str =
    "$6$pamtwofactortest$2lKzoXPB/lV2nTiY4z9D7t9m0cDP5e4aoHD5QlNAWJ/FqhCx6SxT60XUOpRBk6kdShKeswTs258FyQu95fqo10";

static HOMES: OnceLock<PathBuf> = OnceLock::new();

/// A test account.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// Login name.
    pub name: String,
    /// uid (= gid).
    pub uid: u32,
    /// Home directory (created, owned by the user, mode 0755).
    pub home: PathBuf,
}

/// The account number `index` (0 <= index < ACCOUNT_COUNT). Each test should
/// use its own accounts so tests can run in parallel.
pub fn user(index: u32) -> TestUser {
    assert!(index < ACCOUNT_COUNT);
    let name = format!("tf-user{index}");
    TestUser {
        home: HOMES.get().expect("namespace entered").join(&name),
        uid: FIRST_UID + index,
        name,
    }
}

/// A second name for the last test account (same uid, group and home, as
/// `useradd -o` makes), listed after it: the system names the uid by the
/// account's own name first.
pub fn alias_of_last() -> TestUser {
    TestUser {
        name: "tf-alias".to_string(),
        ..user(ACCOUNT_COUNT - 1)
    }
}

pub(crate) fn create_homes(scratch: &Path) {
    let homes = scratch.join("home");
    fs::create_dir(&homes).expect("mkdir home");
    fs::set_permissions(&homes, fs::Permissions::from_mode(0o755)).expect("chmod home");
    HOMES.set(homes).expect("accounts installed twice");
    for index in 0..ACCOUNT_COUNT {
        let u = user(index);
        fs::create_dir(&u.home).expect("mkdir home");
        chown(&u.home, Some(u.uid), Some(u.uid)).expect("chown home");
        fs::set_permissions(&u.home, fs::Permissions::from_mode(0o755)).expect("chmod home");
    }
}

/// Write the host's `passwd`, `group` and `shadow` with the test accounts
/// added into `etc` (the upper layer of the namespace's `/etc`), each with
/// the owner and mode of the host's file.
pub(crate) fn write_account_files(etc: &Path) {
    let mut passwd = fs::read_to_string("/etc/passwd").expect("read passwd");
    let mut group = fs::read_to_string("/etc/group").expect("read group");
    let mut shadow = fs::read_to_string("/etc/shadow").expect("read shadow");
    for index in 0..ACCOUNT_COUNT {
        let u = user(index);
        passwd.push_str(&format!(
            "{}:x:{}:{}:pam_twofactor test:{}:/bin/sh\n",
            u.name,
            u.uid,
            u.uid,
            u.home.display()
        ));
        group.push_str(&format!("{}:x:{}:\n", u.name, u.uid));
        shadow.push_str(&format!("{}:{PASSWORD_HASH}:19000:0:99999:7:::\n", u.name));
    }
    let alias = alias_of_last();
    passwd.push_str(&format!(
        "{}:x:{}:{}:pam_twofactor test alias:{}:/bin/sh\n",
        alias.name,
        alias.uid,
        alias.uid,
        alias.home.display()
    ));
    shadow.push_str(&format!(
        "{}:{PASSWORD_HASH}:19000:0:99999:7:::\n",
        alias.name
    ));
    for (name, contents) in [("passwd", passwd), ("group", group), ("shadow", shadow)] {
        let host = fs::metadata(Path::new("/etc").join(name)).expect("stat account file");
        let copy = etc.join(name);
        fs::write(&copy, contents).expect("write account file");
        chown(&copy, Some(host.uid()), Some(host.gid())).expect("chown account file");
        fs::set_permissions(&copy, fs::Permissions::from_mode(host.mode() & 0o7777))
            .expect("chmod account file");
    }
}
