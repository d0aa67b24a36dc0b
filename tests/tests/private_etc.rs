//! The test namespace's `/etc` is its own: the host replacing its account
//! files by rename while tests run, as `useradd` does, leaves the test
//! accounts in place.
//!
//! The host is played by a process of this binary in a mount namespace of
//! its own, whose `/etc` is itself a private overlay (the real files are
//! never written); the test namespace is entered below it, as every test
//! binary enters it, and is checked before and after the host's renames.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use libtest_mimic::Failed;
use nix::unistd::{Group, User};
use twofactor_integration_tests::checks::{check, ensure};
use twofactor_integration_tests::namespace;
use twofactor_integration_tests::run_trials;
use twofactor_integration_tests::users::{alias_of_last, user, ACCOUNT_COUNT};

/// Which part a process of this binary plays: unset for the test runner.
const ROLE: &str = "TF_PRIVATE_ETC_ROLE";
/// What the host's `useradd` adds.
const HOST_ACCOUNT: &str = "tf-hostside";

/// Whether the topmost mount on `/etc` is an overlay.
fn etc_is_overlay() -> bool {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .rfind(|line| line.split(' ').nth(4) == Some("/etc"))
        .and_then(|line| line.split(" - ").nth(1))
        .is_some_and(|fs_type| fs_type.starts_with("overlay "))
}

/// Replace `/etc/<name>` the way the shadow tools do: a new file next to it,
/// renamed over it.
fn replace_by_rename(name: &str, added_line: &str) {
    let path = Path::new("/etc").join(name);
    let mut text = fs::read_to_string(&path).expect("read account file");
    text.push_str(added_line);
    let next = Path::new("/etc").join(format!("{name}+"));
    fs::write(&next, text).expect("write the new account file");
    fs::set_permissions(&next, fs::metadata(&path).expect("stat").permissions()).expect("chmod");
    fs::rename(&next, &path).expect("rename over the account file");
}

/// The host: its own /etc, a test namespace below it, and the renames
/// while that namespace is in use. Exits with the namespace's status.
fn host() -> ! {
    namespace::unshare_mounts();
    let scratch = tempfile::tempdir().expect("scratch dir");
    namespace::private_etc(scratch.path(), |_| {});
    // Nothing below may write the real account files.
    assert!(
        etc_is_overlay(),
        "the host's stand-in /etc is not an overlay"
    );
    let mut tests = Command::new(std::env::current_exe().expect("current_exe"))
        .env(ROLE, "namespace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the test namespace");
    let mut said = BufReader::new(tests.stdout.take().expect("stdout"));
    let mut ready = String::new();
    said.read_line(&mut ready)
        .expect("read from the test namespace");
    if ready == "ready\n" {
        let uid = 61990;
        replace_by_rename(
            "passwd",
            &format!("{HOST_ACCOUNT}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin\n"),
        );
        replace_by_rename("group", &format!("{HOST_ACCOUNT}:x:{uid}:\n"));
        replace_by_rename("shadow", &format!("{HOST_ACCOUNT}:!:19000::::::\n"));
        assert!(
            User::from_name(HOST_ACCOUNT).ok().flatten().is_some(),
            "the host does not see its own new account"
        );
    }
    // Tell the namespace to check again (or, on failure, to stop waiting).
    let mut stdin = tests.stdin.take().expect("stdin");
    let _ = stdin.write_all(b"replaced\n");
    drop(stdin);
    let mut rest = String::new();
    let _ = said.read_to_string(&mut rest);
    let status = tests.wait().expect("wait for the test namespace");
    print!("{ready}{rest}");
    drop(scratch);
    std::process::exit(status.code().unwrap_or(1));
}

/// Every test account, with its group, resolves through the system's
/// account lookups.
fn accounts_resolve(when: &str) -> Result<(), Failed> {
    for u in (0..ACCOUNT_COUNT).map(user).chain([alias_of_last()]) {
        let found = User::from_name(&u.name).ok().flatten();
        check(
            found.as_ref().map(|f| f.uid.as_raw()) == Some(u.uid),
            format!("{when}: account {} resolves to {found:?}", u.name),
        )?;
    }
    let group = Group::from_name(&user(0).name).ok().flatten();
    check(
        group.as_ref().map(|g| g.gid.as_raw()) == Some(user(0).uid),
        format!("{when}: group {} resolves to {group:?}", user(0).name),
    )?;
    let shadow = fs::read_to_string("/etc/shadow")?;
    check(
        shadow.contains(&format!("\n{}:", user(0).name)),
        format!("{when}: /etc/shadow has no test account"),
    )
}

/// The test namespace, as every test binary enters it.
fn in_namespace() -> ! {
    let ns = namespace::enter();
    let outcome = accounts_resolve("after setup").and_then(|()| {
        println!("ready");
        let mut replaced = String::new();
        std::io::stdin().read_line(&mut replaced)?;
        check(
            replaced == "replaced\n",
            format!("the host said {replaced:?}"),
        )?;
        accounts_resolve("after the host replaced its account files")?;
        check(
            etc_is_overlay(),
            "/etc in the test namespace is not an overlay",
        )
    });
    drop(ns);
    match outcome {
        Ok(()) => std::process::exit(0),
        Err(failed) => {
            println!("{}", failed.message().unwrap_or("failed"));
            std::process::exit(1);
        }
    }
}

fn host_side_rename_keeps_test_accounts(_: &()) -> Result<(), Failed> {
    let real_before = fs::read_to_string("/etc/passwd")?;
    let host = Command::new(std::env::current_exe()?)
        .env(ROLE, "host")
        .stdin(Stdio::null())
        .output()?;
    let said = String::from_utf8_lossy(&host.stdout);
    ensure(host.status.success(), || {
        format!(
            "{}: {said}{}",
            host.status,
            String::from_utf8_lossy(&host.stderr)
        )
    })?;
    check(
        fs::read_to_string("/etc/passwd")? == real_before,
        "the real /etc/passwd changed",
    )
}

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("host") => host(),
        Ok("namespace") => in_namespace(),
        _ => {}
    }
    namespace::require_root();
    run_trials(
        (),
        vec![(
            "host_side_rename_keeps_test_accounts",
            host_side_rename_keeps_test_accounts,
        )],
    );
}
