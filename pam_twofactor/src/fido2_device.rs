//! The security key as the login flow sees it: a small trait, and its
//! implementation by a helper process.
//!
//! Why a process and not a library call with a thread: the HID library
//! blocks in `read` without a timeout; a thread stuck there could be neither
//! cancelled nor joined, and would outlive `pam_sm_authenticate` inside
//! sshd or login (and run code of an unloaded module after `dlclose`). A
//! child process can be killed. [`HelperDevice`] starts
//! `twofactor-fido2-helper`, talks to it over one socketpair (its standard
//! input and output), waits for each answer with `poll` until a deadline on
//! the calling thread, and at the end (or the deadline) kills it with
//! SIGKILL and reaps it with `wait`, in [`SecurityKeys::finish`] and again
//! in `Drop`. So when the flow returns no
//! thread was ever started and no process of ours is left. The helper gets
//! no terminal and no standard error, so the library's keep-alive messages
//! and panics cannot reach the login's terminal, and no descriptor of the
//! host application or its other modules: its socket is all it holds.
//!
//! The two directions share one socketpair rather than two pipes: a write
//! to a pipe whose reader died raises SIGPIPE, whose default action would
//! kill the host process (login, su); `send` on a socket with
//! `MSG_NOSIGNAL` returns EPIPE instead.
#![forbid(unsafe_code)]

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use twofactor_core::fido2::helper::{
    decode_line, encode_line, FailureKind, Request, Response, MAX_LINE_BYTES,
};
use twofactor_core::fido2::{encode_b64, Assertion};
use twofactor_spawn::StandardStreamsOnly;
use zeroize::Zeroize;

/// The key that holds one of the user's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Device path (for logs).
    pub device: String,
    /// Product name (for logs).
    pub product: String,
    /// Index of the credential in the list asked for.
    pub credential_index: usize,
    /// A PIN is set on the key.
    pub pin_set: bool,
    /// The key verifies users itself (fingerprint...).
    pub uv_builtin: bool,
}

/// Why no assertion came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// No attached key holds a credential of the user (or none is attached).
    NotFound {
        /// FIDO devices attached.
        devices: usize,
    },
    /// The deadline passed (the helper was killed).
    Timeout,
    /// The key refused: wrong PIN, PIN blocked, not touched...
    Refused(FailureKind, String),
    /// The helper could not be run or misbehaved.
    Failed(String),
}

/// Access to security keys, one login at a time.
pub trait SecurityKeys {
    /// Find the attached key holding one of `credential_ids` for `rp_id`,
    /// without needing a touch.
    fn find(
        &mut self,
        helper: &Path,
        rp_id: &str,
        credential_ids: &[Vec<u8>],
        deadline: Instant,
    ) -> Result<Found, DeviceError>;

    /// Ask the key found for an assertion over SHA-256(`challenge`): the
    /// user touches it (and `pin` or built-in verification when given).
    fn assert(
        &mut self,
        challenge: &[u8],
        pin: Option<&str>,
        user_verification: bool,
        deadline: Instant,
    ) -> Result<Assertion, DeviceError>;

    /// Let go of the key (end the helper).
    fn finish(&mut self);
}

/// The production implementation: the `twofactor-fido2-helper` process.
#[derive(Default)]
pub struct HelperDevice {
    helper: Option<Helper>,
}

struct Helper {
    child: Child,
    /// Our end of the socketpair (the helper's stdin and stdout are the other).
    socket: Option<UnixStream>,
    buffer: Vec<u8>,
}

/// `PATH` of the helper's environment (its only variable).
const HELPER_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The helper runs as root: it must be root's (or the caller's, for tests
/// that run as another user) and writable by nobody else.
fn check_helper(path: &Path) -> Result<(), DeviceError> {
    let meta =
        fs::metadata(path).map_err(|e| DeviceError::Failed(format!("{}: {e}", path.display())))?;
    let euid = nix::unistd::geteuid().as_raw();
    if !meta.is_file() {
        return Err(DeviceError::Failed(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(DeviceError::Failed(format!(
            "{} is owned by uid {}, not root",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(DeviceError::Failed(format!(
            "{} is writable by group or others",
            path.display()
        )));
    }
    Ok(())
}

impl Helper {
    fn start(path: &Path) -> Result<Helper, DeviceError> {
        check_helper(path)?;
        let failed = |e: Errno| DeviceError::Failed(format!("socketpair: {}", e.desc()));
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(failed)?;
        let theirs_out = theirs
            .try_clone()
            .map_err(|e| DeviceError::Failed(format!("socketpair: {e}")))?;
        let child = Command::new(path)
            .env_clear()
            .env("PATH", HELPER_PATH)
            .current_dir("/")
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::from(theirs_out))
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C at the login's terminal is
            // the login's business, not the helper's.
            .process_group(0)
            // Not one descriptor of the login application or of other
            // modules: the helper needs its socket and nothing else.
            .standard_streams_only()
            .spawn()
            .map_err(|e| DeviceError::Failed(format!("cannot run {}: {e}", path.display())))?;
        // The Command (and with it the helper's ends) is gone: once the
        // helper exits, reads here see end of file.
        Ok(Helper {
            child,
            socket: Some(UnixStream::from(ours)),
            buffer: Vec::new(),
        })
    }

    fn send(&mut self, request: &Request) -> Result<(), DeviceError> {
        let mut line = encode_line(request);
        let result = match self.socket.as_ref() {
            Some(socket) => send_all(socket, line.as_bytes()),
            None => Err(DeviceError::Failed("helper connection closed".into())),
        };
        // The request may hold the PIN.
        line.zeroize();
        result
    }

    /// One response line, or Timeout at `deadline`.
    fn receive(&mut self, deadline: Instant) -> Result<Response, DeviceError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                return decode_line::<Response>(&text)
                    .map_err(|why| DeviceError::Failed(format!("helper: {why}")));
            }
            if self.buffer.len() > MAX_LINE_BYTES {
                return Err(DeviceError::Failed("helper answer too long".into()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(DeviceError::Timeout);
            }
            let wait_ms = (deadline - now).as_millis().clamp(1, u128::from(u16::MAX));
            let timeout = PollTimeout::from(u16::try_from(wait_ms).unwrap_or(u16::MAX));
            let Some(socket) = self.socket.as_mut() else {
                return Err(DeviceError::Failed("helper connection closed".into()));
            };
            let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(DeviceError::Failed(format!("poll: {}", e.desc()))),
            }
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk) {
                Ok(0) => {
                    return Err(DeviceError::Failed(
                        "the helper ended without an answer".into(),
                    ))
                }
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(DeviceError::Failed(format!("reading the helper: {e}"))),
            }
        }
    }

    fn exchange(&mut self, request: &Request, deadline: Instant) -> Result<Response, DeviceError> {
        self.send(request)?;
        self.receive(deadline)
    }

    /// Kill and reap. SIGKILL cannot be caught; `wait` returns once the
    /// process is gone (or at once with ECHILD when the host application
    /// ignores SIGCHLD, in which case the kernel reaps it).
    fn end(mut self) {
        drop(self.socket.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Send all of `bytes` without ever raising SIGPIPE, and without blocking
/// (requests are far smaller than the socket buffer; a helper that does not
/// read is a failure, not a reason to wait).
fn send_all(socket: &UnixStream, mut bytes: &[u8]) -> Result<(), DeviceError> {
    while !bytes.is_empty() {
        match send(
            socket.as_raw_fd(),
            bytes,
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(sent) => bytes = &bytes[sent..],
            Err(Errno::EINTR) => continue,
            Err(e) => {
                return Err(DeviceError::Failed(format!(
                    "writing to the helper: {}",
                    e.desc()
                )))
            }
        }
    }
    Ok(())
}

impl HelperDevice {
    fn end_helper(&mut self) {
        if let Some(helper) = self.helper.take() {
            helper.end();
        }
    }

    fn failure(response: Response) -> DeviceError {
        match response {
            Response::Failed { kind, message } => DeviceError::Refused(kind, message),
            other => DeviceError::Failed(format!("unexpected helper answer {other:?}")),
        }
    }
}

impl SecurityKeys for HelperDevice {
    fn find(
        &mut self,
        helper: &Path,
        rp_id: &str,
        credential_ids: &[Vec<u8>],
        deadline: Instant,
    ) -> Result<Found, DeviceError> {
        self.end_helper();
        let mut process = Helper::start(helper)?;
        let request = Request::Find {
            rp_id: rp_id.to_string(),
            credential_ids: credential_ids.iter().map(|id| encode_b64(id)).collect(),
        };
        let response = match process.exchange(&request, deadline) {
            Ok(response) => response,
            Err(e) => {
                process.end();
                return Err(e);
            }
        };
        match response {
            Response::Found {
                device,
                product,
                credential_index,
                pin_set,
                uv_builtin,
            } if credential_index < credential_ids.len() => {
                self.helper = Some(process);
                Ok(Found {
                    device,
                    product,
                    credential_index,
                    pin_set,
                    uv_builtin,
                })
            }
            Response::NotFound { devices } => {
                process.end();
                Err(DeviceError::NotFound { devices })
            }
            other => {
                process.end();
                Err(Self::failure(other))
            }
        }
    }

    fn assert(
        &mut self,
        challenge: &[u8],
        pin: Option<&str>,
        user_verification: bool,
        deadline: Instant,
    ) -> Result<Assertion, DeviceError> {
        let Some(process) = self.helper.as_mut() else {
            return Err(DeviceError::Failed("no key was found first".into()));
        };
        let mut request = Request::Assert {
            challenge: encode_b64(challenge),
            pin: pin.map(str::to_string),
            user_verification,
        };
        let result = process.exchange(&request, deadline);
        if let Request::Assert { pin: Some(pin), .. } = &mut request {
            pin.zeroize();
        }
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                self.end_helper();
                return Err(e);
            }
        };
        match response {
            Response::Assertion {
                credential_id,
                auth_data,
                signature,
            } => Response::decode_assertion(&credential_id, &auth_data, &signature)
                .map_err(|why| DeviceError::Failed(format!("helper assertion: {why}"))),
            other => Err(Self::failure(other)),
        }
    }

    fn finish(&mut self) {
        self.end_helper();
    }
}

impl Drop for HelperDevice {
    fn drop(&mut self) {
        self.end_helper();
    }
}
