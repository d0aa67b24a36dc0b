//! A private mount namespace for the test process and its children.
//!
//! `/dev` is replaced by a tmpfs that mirrors the host's entries by bind
//! mounts, plus a `/dev/log` socket the tests read; `/etc/passwd`, `group`
//! and `shadow` are replaced by copies with the test accounts. The host sees
//! none of it, and it all disappears with the process.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// The namespace's scratch directory and its pieces.
pub struct TestNamespace {
    /// Scratch space (homes, confdirs, state dirs) for this test run.
    pub scratch: PathBuf,
    _scratch_guard: tempfile::TempDir,
}

fn bind(source: &Path, target: &Path) {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .unwrap_or_else(|e| panic!("bind {} -> {}: {e}", source.display(), target.display()));
}

/// Bind-mount `source` over `target` (both must exist).
pub fn bind_file(source: &Path, target: &Path) {
    bind(source, target);
}

fn mirror_dev(scratch: &Path) {
    let original = scratch.join("host-dev");
    fs::create_dir(&original).expect("mkdir host-dev");
    bind(Path::new("/dev"), &original);
    mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    )
    .expect("mount tmpfs on /dev");
    for entry in fs::read_dir(&original).expect("read host /dev") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if name == "log" {
            continue;
        }
        if name == "ptmx" {
            // The kernel finds the pty instance through the "pts" directory
            // next to the ptmx node that was opened; a bind-mounted node's
            // neighbour is in the host's /dev, unmounted below. Point at
            // the mirrored devpts instead (pseudo-terminals for su/login).
            std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx").expect("symlink ptmx");
            continue;
        }
        let source = entry.path();
        let target = Path::new("/dev").join(&name);
        let file_type = entry.file_type().expect("file type");
        if file_type.is_symlink() {
            let link = fs::read_link(&source).expect("readlink");
            std::os::unix::fs::symlink(link, &target).expect("symlink");
        } else if file_type.is_dir() {
            fs::create_dir(&target).expect("mkdir");
            bind(&source, &target);
        } else if file_type.is_char_device() || file_type.is_block_device() || file_type.is_file() {
            fs::write(&target, b"").expect("touch");
            bind(&source, &target);
        }
    }
    fs::set_permissions("/dev", fs::Permissions::from_mode(0o755)).ok();
    // The scratch directory is deleted at the end: the host's /dev must not
    // be reachable from it by then.
    nix::mount::umount2(&original, nix::mount::MntFlags::MNT_DETACH).expect("umount host-dev");
    fs::remove_dir(&original).expect("rmdir host-dev");
}

/// Enter a private mount namespace. Must run before any thread is started.
/// Exits with a message when not root: these tests need a real PAM stack,
/// real accounts and mounts, and are never skipped silently.
pub fn enter() -> TestNamespace {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "integration tests must run as root (they use mount namespaces and real accounts)"
        );
        std::process::exit(1);
    }
    unshare(CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
    let guard = tempfile::Builder::new()
        .prefix("pam_twofactor-tests.")
        .tempdir()
        .expect("scratch dir");
    fs::set_permissions(guard.path(), fs::Permissions::from_mode(0o755)).expect("chmod scratch");
    let scratch = guard.path().to_path_buf();
    mirror_dev(&scratch);
    crate::syslog_capture::start();
    crate::users::install_account_files(&scratch);
    TestNamespace {
        scratch,
        _scratch_guard: guard,
    }
}
