//! File I/O for files whose contents decide who gets in.
//!
//! Reading: open with `O_NOFOLLOW` (a symlink as last component is refused)
//! and `O_NONBLOCK` (a FIFO cannot stall a login), then check type, owner,
//! mode and size on the open descriptor, so the checks and the read concern
//! the same inode. Writing: a temporary file in the same directory, fsync,
//! rename, fsync of the directory: a crash leaves the old or the new file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

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
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| fail(io_problem(&e)))?;
    let meta = file.metadata().map_err(|e| fail(io_problem(&e)))?;
    check_metadata(&meta, req).map_err(fail)?;
    check_parent(path, req.owner).map_err(fail)?;
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

/// Read a UTF-8 text file after checking it (see [`read_checked`]).
pub fn read_checked_text(path: &Path, req: &FileRequirements) -> Result<Zeroizing<String>, Error> {
    let bytes = read_checked(path, req)?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(_) => Err(Error::Parse {
            what: format!("file {}", shown_path(path)),
            why: "not valid UTF-8".into(),
        }),
    }
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
