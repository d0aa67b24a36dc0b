//! A private mount namespace for the test process and its children.
//!
//! `/dev` is replaced by a tmpfs that mirrors the host's entries by bind
//! mounts, plus a `/dev/log` socket the tests read; `/etc` is an overlay
//! whose upper layer holds `passwd`, `group` and `shadow` with the test
//! accounts. The host sees none of it, and it all disappears with the
//! process.

use std::fs;
use std::os::unix::fs::{chown, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
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

/// Mount an overlay on `/etc` whose upper layer is a tmpfs, after `fill`
/// has written into that (still empty) upper directory.
///
/// Single files bind-mounted over `/etc/passwd` would not do: the host
/// replaces those files by rename (useradd, passwd), and a rename over a
/// mount point detaches the mount in every namespace, so the test accounts
/// would vanish in the middle of a run. Files in the upper layer belong to
/// this namespace alone. They are written before the overlay exists, so a
/// failed mount leaves the host's `/etc` untouched.
pub fn private_etc(scratch: &Path, fill: impl FnOnce(&Path)) {
    let layers = scratch.join("etc-layers");
    fs::create_dir(&layers).expect("mkdir etc-layers");
    mount(
        Some("tmpfs"),
        &layers,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )
    .expect("mount tmpfs for /etc's upper layer");
    let (upper, work) = (layers.join("upper"), layers.join("work"));
    fs::create_dir(&work).expect("mkdir work");
    fs::create_dir(&upper).expect("mkdir upper");
    // The upper directory gives the merged /etc its owner and mode.
    let host = fs::metadata("/etc").expect("stat /etc");
    chown(&upper, Some(host.uid()), Some(host.gid())).expect("chown upper");
    fs::set_permissions(&upper, fs::Permissions::from_mode(host.mode() & 0o7777))
        .expect("chmod upper");
    fill(&upper);
    let options = format!(
        "lowerdir=/etc,upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        "/etc",
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .unwrap_or_else(|e| panic!("mount an overlay on /etc (needs overlayfs): {e}"));
    // The overlay keeps its own reference to the layers; the scratch
    // directory, on the host's disk, must not hold a mount point when it is
    // deleted at the end.
    umount2(&layers, MntFlags::MNT_DETACH).expect("umount etc-layers");
    fs::remove_dir(&layers).expect("rmdir etc-layers");
}

/// Exit with a message unless running as root: these tests need a real PAM
/// stack, real accounts and mounts, and are never skipped silently.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "integration tests must run as root (they use mount namespaces and real accounts)"
        );
        std::process::exit(1);
    }
}

/// Move this process into a mount namespace of its own whose mounts
/// propagate nowhere: what it mounts stays invisible to the host.
pub fn unshare_mounts() {
    unshare(CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
}

/// Enter a private mount namespace. Must run before any thread is started.
/// Exits with a message when not root (see [`require_root`]).
pub fn enter() -> TestNamespace {
    require_root();
    unshare_mounts();
    let guard = tempfile::Builder::new()
        .prefix("pam_twofactor-tests.")
        .tempdir()
        .expect("scratch dir");
    fs::set_permissions(guard.path(), fs::Permissions::from_mode(0o755)).expect("chmod scratch");
    let scratch = guard.path().to_path_buf();
    mirror_dev(&scratch);
    crate::syslog_capture::start();
    crate::users::create_homes(&scratch);
    private_etc(&scratch, crate::users::write_account_files);
    TestNamespace {
        scratch,
        _scratch_guard: guard,
    }
}
