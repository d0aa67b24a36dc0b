//! File I/O for files whose contents decide who gets in.
//!
//! Reading: open with `O_NOFOLLOW` (a symlink as last component is refused)
//! and `O_NONBLOCK` (a FIFO cannot stall a login), then check type, owner,
//! mode and size on the open descriptor, so the checks and the read concern
//! the same inode; a user's file is opened through the directories leading
//! to it, each checked on its own descriptor ([`open_user_dir`]). Writing:
//! a temporary file in the same directory, fsync, rename, fsync of the
//! directory: a crash leaves the old or the new file.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use zeroize::Zeroizing;

use crate::error::{shown_path, Error, FileProblem};

/// What a file must satisfy before its contents are used.
#[derive(Debug, Clone, Copy)]
pub struct FileRequirements {
    /// uid that must own the file.
    pub owner: u32,
    /// Mode bits that must all be clear (e.g. 0o077 for a secret, 0o022 for a config).
    pub forbidden_mode: u32,
    /// Largest size accepted, in bytes.
    pub max_size: u64,
}

impl FileRequirements {
    /// A file holding a secret: owned by `owner`, no group or other access.
    pub fn secret_of(owner: u32, max_size: u64) -> Self {
        FileRequirements {
            owner,
            forbidden_mode: 0o077,
            max_size,
        }
    }

    /// A root-owned policy file: no group or other write.
    pub fn root_policy(max_size: u64) -> Self {
        FileRequirements {
            owner: 0,
            forbidden_mode: 0o022,
            max_size,
        }
    }
}

fn io_problem(err: &io::Error) -> FileProblem {
    match err.kind() {
        io::ErrorKind::NotFound => FileProblem::Missing,
        _ => match err.raw_os_error() {
            Some(libc::ELOOP) => FileProblem::Symlink,
            Some(libc::ENXIO) => FileProblem::NotRegular("socket or device without reader"),
            _ => FileProblem::Io(describe_io_error(err)),
        },
    }
}

/// A one-line description of an I/O error without Rust's debug formatting
/// ("Permission denied", not "Os { code: 13, .. }" or "(os error 13)").
/// Errors that wrap another (tempfile's path errors do) are unwrapped.
pub fn describe_io_error(err: &io::Error) -> String {
    if let Some(code) = err.raw_os_error() {
        let text = io::Error::from_raw_os_error(code).to_string();
        return match text.find(" (os error") {
            Some(cut) => text[..cut].to_string(),
            None => text,
        };
    }
    let wrapped = err
        .get_ref()
        .and_then(|inner| inner.source())
        .and_then(|source| source.downcast_ref::<io::Error>());
    match wrapped {
        Some(inner) => describe_io_error(inner),
        None => err.to_string(),
    }
}

fn kind_name(file_type: fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else if file_type.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

/// Check an open file's metadata against `req`.
pub fn check_metadata(meta: &fs::Metadata, req: &FileRequirements) -> Result<(), FileProblem> {
    if !meta.file_type().is_file() {
        return Err(FileProblem::NotRegular(kind_name(meta.file_type())));
    }
    if meta.uid() != req.owner {
        return Err(FileProblem::WrongOwner {
            found: meta.uid(),
            expected: req.owner,
        });
    }
    if meta.mode() & req.forbidden_mode != 0 {
        return Err(FileProblem::UnsafeMode(meta.mode()));
    }
    if meta.len() > req.max_size {
        return Err(FileProblem::TooLarge {
            size: meta.len(),
            limit: req.max_size,
        });
    }
    Ok(())
}

/// The containing directory must not be writable by anyone but root or the
/// file's owner, or the file could be swapped between check and use.
pub fn check_parent(path: &Path, owner: u32) -> Result<(), FileProblem> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    // "file.toml" has the parent "", which is the current directory.
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let meta = fs::metadata(parent).map_err(|e| io_problem(&e))?;
    if meta.uid() != 0 && meta.uid() != owner {
        return Err(FileProblem::UnsafeParent(format!(
            "{} is owned by uid {}",
            shown_path(parent),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
        return Err(FileProblem::UnsafeParent(format!(
            "{} is writable by group or others",
            shown_path(parent)
        )));
    }
    Ok(())
}

/// Read a file after checking it against `req` (see the module comment).
/// The contents are wiped when the returned buffer is dropped.
pub fn read_checked(path: &Path, req: &FileRequirements) -> Result<Zeroizing<Vec<u8>>, Error> {
    let fail = |problem| Error::file(path, problem);
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| fail(io_problem(&e)))?;
    read_open(file, path, req, || check_parent(path, req.owner))
}

/// Read a UTF-8 text file after checking it (see [`read_checked`]).
pub fn read_checked_text(path: &Path, req: &FileRequirements) -> Result<Zeroizing<String>, Error> {
    into_text(read_checked(path, req)?, path)
}

/// Read a file of a user (owner `req.owner`, home `home`) after checking
/// every directory that leads to it ([`open_user_dir`]) and then the file
/// itself, opened through the checked directory: a file that is missing
/// from a safe directory is [`FileProblem::Missing`]; one whose
/// directories are unsafe is an error even when it is missing, since
/// another user could have moved it away.
pub fn read_user_file(
    path: &Path,
    home: &Path,
    req: &FileRequirements,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let fail = |problem| Error::file(path, problem);
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(fail(FileProblem::Io("is not a path to a file".into())));
    };
    let dir = open_user_dir(parent, home, req.owner).map_err(fail)?;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
    let file = rustix::fs::openat(&dir, name, flags | OFlags::CLOEXEC, Mode::empty())
        .map(File::from)
        .map_err(|e| fail(io_problem(&e.into())))?;
    read_open(file, path, req, || Ok(()))
}

/// Read a user's UTF-8 text file (see [`read_user_file`]).
pub fn read_user_file_text(
    path: &Path,
    home: &Path,
    req: &FileRequirements,
) -> Result<Zeroizing<String>, Error> {
    into_text(read_user_file(path, home, req)?, path)
}

/// Check an open file against `req` and `more`, then read it.
fn read_open(
    mut file: File,
    path: &Path,
    req: &FileRequirements,
    more: impl FnOnce() -> Result<(), FileProblem>,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let fail = |problem| Error::file(path, problem);
    let meta = file.metadata().map_err(|e| fail(io_problem(&e)))?;
    check_metadata(&meta, req).map_err(fail)?;
    more().map_err(fail)?;
    let mut contents = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    // Read one byte past the limit: the file may have grown since fstat.
    (&mut file)
        .take(req.max_size + 1)
        .read_to_end(&mut contents)
        .map_err(|e| fail(io_problem(&e)))?;
    if contents.len() as u64 > req.max_size {
        return Err(fail(FileProblem::TooLarge {
            size: contents.len() as u64,
            limit: req.max_size,
        }));
    }
    Ok(contents)
}

fn into_text(bytes: Zeroizing<Vec<u8>>, path: &Path) -> Result<Zeroizing<String>, Error> {
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(_) => Err(Error::Parse {
            what: format!("file {}", shown_path(path)),
            why: "not valid UTF-8".into(),
        }),
    }
}

/// Open the directory `dir` that holds a file of user `owner` (home
/// `home`), checking every directory from `/` down to it on the way, the
/// way sshd's StrictModes checks the path of `authorized_keys`.
///
/// The user's area starts at the home directory, or, for a path outside
/// the home, at the first directory the user owns. From there down, and
/// always for `dir` itself, a directory must be owned by root or the user
/// and must not be writable by group or others, sticky or not: otherwise
/// another user could rename a directory away, and the enrollment with it
/// (a login would then pass as "not enrolled"), or put a file of their own
/// in its place. Above the user's area (`/`, `/home`, `/tmp`) the owner
/// rule is the same, and a directory writable by others is accepted only
/// if it is sticky: there, only an entry's owner (root or the user, as
/// checked one step further) can rename or remove it.
///
/// The home directory's path is resolved first, symbolic links included
/// (sites link `/home` or single homes to other disks, and sshd follows
/// them), and its real path is then checked like any other. Below the
/// home, and on a path outside the home, a symbolic link is refused. Each
/// directory is opened from the one above it with `O_NOFOLLOW` and checked
/// on the open descriptor, so the file is then opened through exactly the
/// directories that were checked.
///
/// A directory that does not exist gives [`FileProblem::Missing`], found
/// only after every directory above it passed: nobody else could have
/// removed it.
pub fn open_user_dir(dir: &Path, home: &Path, owner: u32) -> Result<OwnedFd, FileProblem> {
    let names = path_names(dir)?;
    // The walk: the real home's names, then what lies below the home; or
    // the path itself when it is outside the home.
    let (walk, home_depth) = match path_names(home) {
        Ok(home_names) if dir.starts_with(home) => {
            let mut walk = resolve_home(&home_names)?;
            let depth = walk.len();
            walk.extend(names[home_names.len()..].iter().map(|n| n.to_os_string()));
            (walk, Some(depth))
        }
        _ => (names.iter().map(|n| n.to_os_string()).collect(), None),
    };
    let mut shown = PathBuf::from("/");
    let mut current = rustix::fs::openat(
        rustix::fs::CWD,
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_problem(&e.into()))?;
    let mut in_user_area = false;
    for depth in 0..=walk.len() {
        if depth > 0 {
            let name = &walk[depth - 1];
            current = open_below(&current, name, &shown)?;
            shown.push(name);
        }
        let stat = rustix::fs::fstat(&current).map_err(|e| io_problem(&e.into()))?;
        in_user_area |= home_depth == Some(depth) || stat.st_uid == owner;
        let strict = in_user_area || depth == walk.len();
        check_directory(stat.st_uid, stat.st_mode, &shown, owner, strict)?;
    }
    Ok(current)
}

/// The names of an absolute path, or why it cannot be walked.
fn path_names(path: &Path) -> Result<Vec<&std::ffi::OsStr>, FileProblem> {
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        return Err(FileProblem::Io(format!(
            "{} is not an absolute path",
            shown_path(path)
        )));
    }
    let mut names = Vec::new();
    for component in components {
        match component {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            _ => {
                return Err(FileProblem::Io(format!(
                    "{} climbs up with '..'",
                    shown_path(path)
                )))
            }
        }
    }
    Ok(names)
}

/// The real path of the home directory, as names below `/`. Where it does
/// not exist, its longest existing part is resolved and the rest appended:
/// the walk then finds where it ends.
fn resolve_home(home_names: &[&std::ffi::OsStr]) -> Result<Vec<OsString>, FileProblem> {
    for existing in (0..=home_names.len()).rev() {
        let prefix: PathBuf = std::iter::once(std::ffi::OsStr::new("/"))
            .chain(home_names[..existing].iter().copied())
            .collect();
        match fs::canonicalize(&prefix) {
            Ok(real) => {
                let mut names: Vec<OsString> = path_names(&real)?
                    .into_iter()
                    .map(|n| n.to_os_string())
                    .collect();
                names.extend(home_names[existing..].iter().map(|n| n.to_os_string()));
                return Ok(names);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_problem(&e)),
        }
    }
    Err(FileProblem::Missing)
}

/// Open the directory `name` in `parent` (shown as `shown`) without
/// following a symbolic link.
fn open_below(
    parent: &OwnedFd,
    name: &std::ffi::OsStr,
    shown: &Path,
) -> Result<OwnedFd, FileProblem> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOTDIR | Errno::LOOP) => {
            let what = shown.join(name);
            let is_link = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
            if is_link {
                Err(FileProblem::UnsafeParent(format!(
                    "{} is a symbolic link (refused)",
                    shown_path(&what)
                )))
            } else {
                Err(FileProblem::Io(format!(
                    "{} is not a directory",
                    shown_path(&what)
                )))
            }
        }
        Err(e) => Err(io_problem(&e.into())),
    }
}

/// The owner and mode rules of [`open_user_dir`] for one directory.
fn check_directory(
    uid: u32,
    mode: u32,
    shown: &Path,
    owner: u32,
    strict: bool,
) -> Result<(), FileProblem> {
    if uid != 0 && uid != owner {
        return Err(FileProblem::UnsafeParent(format!(
            "{} is owned by uid {uid} (only root or uid {owner} may own it)",
            shown_path(shown)
        )));
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && (strict || !sticky) {
        return Err(FileProblem::UnsafeParent(format!(
            "{} is writable by group or others (mode {:04o})",
            shown_path(shown),
            mode & 0o7777
        )));
    }
    Ok(())
}

/// Replace `path` atomically with `contents`, file mode `mode`.
///
/// The data reaches the disk before the rename, and the rename before this
/// returns. On any error (disk full included) the old file is left as it was
/// and the temporary file is removed.
pub fn atomic_write(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let fail = |e: io::Error| Error::file(path, FileProblem::Io(describe_io_error(&e)));
    let dir = path
        .parent()
        .ok_or_else(|| Error::file(path, FileProblem::Io("has no parent directory".into())))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(fail)?;
    temp.write_all(contents).map_err(fail)?;
    temp.as_file().sync_all().map_err(fail)?;
    temp.persist(path).map_err(|e| fail(e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(fail)?;
    Ok(())
}

/// Replace `path` with `contents` through the temporary file `temporary`
/// (same directory), which the caller alone may write (it holds a lock).
/// A leftover from an interrupted call is truncated and reused. The group
/// is set before the rename, so the file is never visible with the wrong
/// one; fsync and rename as in [`atomic_write`].
pub fn replace_through(
    temporary: &Path,
    path: &Path,
    contents: &[u8],
    mode: u32,
    group: Option<u32>,
) -> Result<(), Error> {
    let fail = |e: io::Error| Error::file(path, FileProblem::Io(describe_io_error(&e)));
    let dir = path
        .parent()
        .ok_or_else(|| Error::file(path, FileProblem::Io("has no parent directory".into())))?;
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(temporary)?;
        if let Some(gid) = group {
            std::os::unix::fs::fchown(&file, None, Some(gid))?;
        }
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(temporary, path)?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        // Best effort: the next save truncates it anyway.
        let _ = fs::remove_file(temporary);
        return Err(fail(e));
    }
    Ok(())
}

/// Make sure `dir` is a directory owned by `owner` that nobody else can
/// change: create it with `create_mode` when missing (its parent must
/// exist), refuse a symlink, another owner, or group/other write permission.
pub fn ensure_private_dir(dir: &Path, owner: u32, create_mode: u32) -> Result<(), Error> {
    let fail = |problem| Error::file(dir, problem);
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .mode(create_mode)
                .create(dir)
                .or_else(|e| {
                    // Another login may have created it in the meantime.
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| fail(io_problem(&e)))?;
            check_dir(dir, owner)
        }
        Err(e) => Err(fail(io_problem(&e))),
        Ok(_) => check_dir(dir, owner),
    }
}

fn check_dir(dir: &Path, owner: u32) -> Result<(), Error> {
    let fail = |problem| Error::file(dir, problem);
    let meta = fs::symlink_metadata(dir).map_err(|e| fail(io_problem(&e)))?;
    if meta.file_type().is_symlink() {
        return Err(fail(FileProblem::Symlink));
    }
    if !meta.is_dir() {
        return Err(fail(FileProblem::NotRegular(kind_name(meta.file_type()))));
    }
    if meta.uid() != owner {
        return Err(fail(FileProblem::WrongOwner {
            found: meta.uid(),
            expected: owner,
        }));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(fail(FileProblem::UnsafeMode(meta.mode())));
    }
    Ok(())
}

/// An exclusive advisory lock, released when dropped (the file is closed).
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

/// Take an exclusive lock on `path` (created mode 0600 if missing), waiting at
/// most `timeout`. Waiting is bounded so a stuck process cannot hang every
/// later login; the caller fails closed when the time runs out.
pub fn lock_exclusive(path: &Path, timeout: Duration) -> Result<LockGuard, Error> {
    let fail = |problem| Error::file(path, problem);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| fail(io_problem(&e)))?;
    let meta = file.metadata().map_err(|e| fail(io_problem(&e)))?;
    if !meta.file_type().is_file() {
        return Err(fail(FileProblem::NotRegular(kind_name(meta.file_type()))));
    }
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(LockGuard { _file: file }),
            Err(fs::TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    return Err(fail(FileProblem::Io(format!(
                        "lock not acquired within {} ms",
                        timeout.as_millis()
                    ))));
                }
                sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(fs::TryLockError::Error(e)) => return Err(fail(io_problem(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn me() -> u32 {
        fs::metadata("/proc/self").map(|m| m.uid()).unwrap()
    }

    fn write(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn reads_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.path().join("f");
        write(&path, "hello", 0o600);
        let got = read_checked(&path, &FileRequirements::secret_of(me(), 100)).unwrap();
        assert_eq!(got.as_slice(), b"hello");
    }

    #[test]
    fn refuses_unsafe_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let req = FileRequirements::secret_of(me(), 10);
        let path = dir.path().join("f");

        write(&path, "x", 0o640);
        let err = read_checked(&path, &req).unwrap_err().to_string();
        assert!(err.contains("unsafe permissions 0640"), "{err}");

        write(&path, "0123456789abc", 0o600);
        let err = read_checked(&path, &req).unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");

        let link = dir.path().join("link");
        symlink(&path, &link).unwrap();
        let err = read_checked(&link, &req).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");

        let err = read_checked(dir.path(), &req).unwrap_err().to_string();
        assert!(err.contains("directory"), "{err}");

        let err = read_checked(&dir.path().join("missing"), &req).unwrap_err();
        assert!(err.is_missing_file());

        let other = FileRequirements::secret_of(me() + 1, 10);
        write(&path, "x", 0o600);
        let err = read_checked(&path, &other).unwrap_err().to_string();
        assert!(err.contains("owned by uid"), "{err}");
    }

    #[test]
    fn refuses_group_writable_parent() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o770)).unwrap();
        let path = dir.path().join("f");
        write(&path, "x", 0o600);
        let err = read_checked(&path, &FileRequirements::secret_of(me(), 10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsafe directory"), "{err}");
    }

    /// A home (owned by `USER`) with `.config/twofactor/enrollment.json`
    /// in it, inside a root-owned directory in /tmp.
    const USER: u32 = 61_999;

    struct Layout {
        _base: tempfile::TempDir,
        base: PathBuf,
        home: PathBuf,
        file: PathBuf,
    }

    fn owned_dir(path: &Path, uid: u32, mode: u32) {
        fs::create_dir_all(path).unwrap();
        std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn layout() -> Layout {
        let base_guard = tempfile::tempdir().unwrap();
        let base = base_guard.path().to_path_buf();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        let home = base.join("home");
        owned_dir(&home, USER, 0o755);
        owned_dir(&home.join(".config"), USER, 0o700);
        owned_dir(&home.join(".config/twofactor"), USER, 0o700);
        let file = home.join(".config/twofactor/enrollment.json");
        write(&file, "{}", 0o600);
        std::os::unix::fs::chown(&file, Some(USER), Some(USER)).unwrap();
        Layout {
            _base: base_guard,
            base,
            home,
            file,
        }
    }

    fn read_user(path: &Path, home: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
        read_user_file(path, home, &FileRequirements::secret_of(USER, 100))
    }

    fn refusal(path: &Path, home: &Path) -> String {
        let err = read_user(path, home).unwrap_err();
        assert!(!err.is_missing_file(), "{err}");
        err.to_string()
    }

    #[test]
    fn a_user_file_in_safe_directories_is_read() {
        let l = layout();
        assert_eq!(read_user(&l.file, &l.home).unwrap().as_slice(), b"{}");
        // Missing from a safe directory: not there, nothing worse.
        let missing = l.home.join(".config/twofactor/other.json");
        assert!(read_user(&missing, &l.home).unwrap_err().is_missing_file());
        fs::rename(
            l.home.join(".config/twofactor"),
            l.home.join(".config/gone"),
        )
        .unwrap();
        assert!(read_user(&l.file, &l.home).unwrap_err().is_missing_file());
    }

    #[test]
    fn a_directory_others_can_write_below_the_home_is_refused_even_with_the_file_gone() {
        let l = layout();
        let config = l.home.join(".config");
        fs::set_permissions(&config, fs::Permissions::from_mode(0o777)).unwrap();
        let err = refusal(&l.file, &l.home);
        assert!(
            err.contains(&format!(
                "{} is writable by group or others (mode 0777)",
                config.display()
            )),
            "{err}"
        );
        // Another user renamed the directory away: still refused, never
        // "not enrolled".
        fs::rename(config.join("twofactor"), config.join("moved")).unwrap();
        refusal(&l.file, &l.home);
        // Sticky is no excuse inside the home.
        fs::set_permissions(&config, fs::Permissions::from_mode(0o1777)).unwrap();
        let err = refusal(&l.file, &l.home);
        assert!(err.contains("(mode 1777)"), "{err}");
        fs::set_permissions(&config, fs::Permissions::from_mode(0o770)).unwrap();
        let err = refusal(&l.file, &l.home);
        assert!(err.contains("writable by group or others"), "{err}");
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        let l = layout();
        let dir = l.home.join(".config/twofactor");
        std::os::unix::fs::chown(&dir, Some(USER + 1), None).unwrap();
        let err = refusal(&l.file, &l.home);
        assert!(
            err.contains(&format!(
                "{} is owned by uid {} (only root or uid {USER} may own it)",
                dir.display(),
                USER + 1
            )),
            "{err}"
        );
        // Above the home too.
        std::os::unix::fs::chown(&dir, Some(USER), None).unwrap();
        std::os::unix::fs::chown(&l.base, Some(USER + 1), None).unwrap();
        let err = refusal(&l.file, &l.home);
        assert!(err.contains("is owned by uid"), "{err}");
    }

    #[test]
    fn symbolic_links_are_followed_to_the_home_and_refused_below_it() {
        let l = layout();
        let linked_home = l.base.join("linked-home");
        symlink(&l.home, &linked_home).unwrap();
        let through_link = linked_home.join(".config/twofactor/enrollment.json");
        assert_eq!(
            read_user(&through_link, &linked_home).unwrap().as_slice(),
            b"{}"
        );
        // The home's real path is what is checked.
        fs::set_permissions(&l.base, fs::Permissions::from_mode(0o777)).unwrap();
        let err = refusal(&through_link, &linked_home);
        assert!(err.contains(&l.base.display().to_string()), "{err}");
        fs::set_permissions(&l.base, fs::Permissions::from_mode(0o755)).unwrap();

        let config = l.home.join(".config");
        fs::rename(&config, l.home.join("real-config")).unwrap();
        symlink(l.home.join("real-config"), &config).unwrap();
        let err = refusal(&l.file, &l.home);
        assert!(
            err.contains(&format!(
                "{} is a symbolic link (refused)",
                config.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn outside_the_home_the_users_area_starts_at_their_first_directory() {
        let l = layout();
        let area = l.base.join("enroll");
        owned_dir(&area, 0, 0o755);
        owned_dir(&area.join("alice"), USER, 0o700);
        let file = area.join("alice/enrollment.json");
        write(&file, "{}", 0o600);
        std::os::unix::fs::chown(&file, Some(USER), Some(USER)).unwrap();
        // /tmp above it is sticky and writable by all: accepted there.
        assert_eq!(read_user(&file, &l.home).unwrap().as_slice(), b"{}");
        fs::set_permissions(&area, fs::Permissions::from_mode(0o1777)).unwrap();
        read_user(&file, &l.home).unwrap();
        fs::set_permissions(&area, fs::Permissions::from_mode(0o777)).unwrap();
        let err = refusal(&file, &l.home);
        assert!(err.contains("writable by group or others"), "{err}");
        // The file's own directory is always held to the strict rule.
        fs::set_permissions(&area, fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(area.join("alice"), Some(0), Some(0)).unwrap();
        fs::set_permissions(area.join("alice"), fs::Permissions::from_mode(0o1777)).unwrap();
        let err = refusal(&file, &l.home);
        assert!(err.contains("(mode 1777)"), "{err}");
        // No climbing.
        let climbing = area.join("alice/../alice/enrollment.json");
        let err = refusal(&climbing, &l.home);
        assert!(err.contains("'..'"), "{err}");
    }

    #[test]
    fn io_errors_read_as_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let err = tempfile::tempfile_in(dir.path().join("missing")).unwrap_err();
        assert_eq!(describe_io_error(&err), "No such file or directory");
        let err = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(describe_io_error(&err), "Permission denied");
    }

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        atomic_write(&path, b"one", 0o600).unwrap();
        atomic_write(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn private_dir_is_created_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        ensure_private_dir(&state, me(), 0o700).unwrap();
        assert_eq!(fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(ensure_private_dir(&state, me(), 0o700).is_err());
        let link = dir.path().join("link");
        symlink(&state, &link).unwrap();
        assert!(ensure_private_dir(&link, me(), 0o700).is_err());
    }

    #[test]
    fn lock_is_exclusive_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = lock_exclusive(&path, Duration::from_millis(10)).unwrap();
        let err = lock_exclusive(&path, Duration::from_millis(30)).unwrap_err();
        assert!(err.to_string().contains("lock not acquired"), "{err}");
        drop(held);
        lock_exclusive(&path, Duration::from_millis(10)).unwrap();
    }
}
