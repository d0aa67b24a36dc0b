//! Asking the person at the terminal: a code, or yes/no.
//!
//! Questions go to, and answers come from, the controlling terminal
//! (`/dev/tty`), like ssh and sudo do: that is where the person is, even
//! when standard input or output are redirected.
//!
//! Ctrl-C must not kill the process halfway: a half-done enrollment must
//! leave nothing behind and a hidden prompt must not leave the terminal
//! without echo. So while a [`Terminal`] exists, SIGINT, SIGQUIT, SIGTERM
//! and SIGHUP are blocked and read from a signalfd next to the terminal:
//! each read waits on both, and a signal becomes an ordinary error
//! ([`CliError::Interrupted`]) that unwinds through the cleanup code. The
//! signals stay blocked until the process ends, so the final steps (writing
//! the file, showing the backup codes) cannot be cut short either.
//! Programs started meanwhile (the notify command) get an empty signal mask
//! from the standard library.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, LocalFlags, SetArg};
use zeroize::Zeroizing;

use crate::error::CliError;

/// Longest answer kept; the rest of a longer line is read and dropped.
const MAX_ANSWER_BYTES: usize = 1024;

/// What a signal interrupted: nothing was written.
pub const NOTHING_WRITTEN: &str = "nothing was written";
/// What a signal interrupted: nothing was changed.
pub const NOTHING_CHANGED: &str = "nothing was changed";

/// One line typed at the terminal, or the end of input.
pub enum Answer {
    /// The line, without its newline.
    Line(Zeroizing<String>),
    /// End of input (Ctrl-D on an empty line, or the terminal went away).
    End,
}

/// The controlling terminal, with the terminal signals turned into errors.
pub struct Terminal {
    tty: File,
    signals: SignalFd,
    /// Reported with an interruption: what the command has not done.
    outcome: &'static str,
}

fn terminal_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGHUP,
    ] {
        set.add(signal);
    }
    set
}

impl Terminal {
    /// Open the controlling terminal. `why` completes the error message
    /// when there is none ("to confirm a code from the app").
    /// `outcome` says what an interruption leaves undone.
    pub fn open(why: &str, hint: &str, outcome: &'static str) -> Result<Terminal, CliError> {
        let signals = terminal_signals();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None).map_err(|err| {
            CliError::System(format!("cannot block terminal signals: {}", err.desc()))
        })?;
        let signals =
            SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
                .map_err(|err| {
                    CliError::System(format!("cannot watch terminal signals: {}", err.desc()))
                })?;
        let tty = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc_flags())
            .open("/dev/tty")
            .map_err(|err| {
                CliError::Refused(format!(
                    "no terminal {why} ({}); {hint}",
                    twofactor_core::files::describe_io_error(&err)
                ))
            })?;
        Ok(Terminal {
            tty,
            signals,
            outcome,
        })
    }

    /// Write `text` to the terminal.
    pub fn say(&mut self, text: &str) -> Result<(), CliError> {
        self.tty
            .write_all(text.as_bytes())
            .and_then(|()| self.tty.flush())
            .map_err(|err| {
                CliError::System(format!(
                    "cannot write to the terminal: {}",
                    twofactor_core::files::describe_io_error(&err)
                ))
            })
    }

    /// An error if a terminal signal arrived (and was not yet reported).
    pub fn check_interrupted(&mut self) -> Result<(), CliError> {
        match self.signals.read_signal() {
            Ok(Some(info)) => Err(self.interrupted(info.ssi_signo as i32)),
            _ => Ok(()),
        }
    }

    fn interrupted(&mut self, signal: i32) -> CliError {
        // The shell's prompt should start on a line of its own after "^C".
        let _ = self.tty.write_all(b"\n");
        CliError::Interrupted {
            signal,
            outcome: self.outcome,
        }
    }

    /// Ask `prompt` and read one line. With `echo` false the answer is not
    /// shown (the terminal's echo is restored on every path).
    pub fn ask(&mut self, prompt: &str, echo: bool) -> Result<Answer, CliError> {
        self.check_interrupted()?;
        // Echo goes off before the prompt appears: an answer typed (or
        // pasted) the moment the prompt shows must not be displayed.
        let _echo_guard = if echo {
            None
        } else {
            Some(EchoOff::new(&self.tty)?)
        };
        self.say(prompt)?;
        let mut line = Zeroizing::new(Vec::with_capacity(64));
        let mut chunk = Zeroizing::new([0u8; 256]);
        loop {
            self.wait_readable()?;
            let read = match self.tty.read(chunk.as_mut()) {
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                // EIO: the terminal hung up.
                Err(err) if err.raw_os_error() == Some(Errno::EIO as i32) => 0,
                Err(err) => {
                    return Err(CliError::System(format!(
                        "cannot read from the terminal: {}",
                        twofactor_core::files::describe_io_error(&err)
                    )))
                }
            };
            if read == 0 {
                if !echo {
                    let _ = self.tty.write_all(b"\n");
                }
                return Ok(Answer::End);
            }
            let data = &chunk[..read];
            let (part, complete) = match data.iter().position(|b| *b == b'\n') {
                Some(end) => (&data[..end], true),
                None => (data, false),
            };
            let room = MAX_ANSWER_BYTES.saturating_sub(line.len());
            line.extend_from_slice(&part[..part.len().min(room)]);
            if complete {
                let text = String::from_utf8_lossy(&line).into_owned();
                return Ok(Answer::Line(Zeroizing::new(text)));
            }
        }
    }

    /// Ask a yes/no question; only "y" or "yes" (any case) is yes. End of
    /// input is no.
    pub fn confirm(&mut self, question: &str) -> Result<bool, CliError> {
        match self.ask(&format!("{question} [y/N] "), true)? {
            Answer::Line(line) => Ok(matches!(
                line.trim().to_ascii_lowercase().as_str(),
                "y" | "yes"
            )),
            Answer::End => Ok(false),
        }
    }

    fn wait_readable(&mut self) -> Result<(), CliError> {
        loop {
            let (signal_ready, tty_ready) = {
                let mut fds = [
                    PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.tty.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(err) => {
                        return Err(CliError::System(format!(
                            "cannot wait for the terminal: {}",
                            err.desc()
                        )))
                    }
                }
                let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]))
            };
            if signal_ready {
                if let Ok(Some(info)) = self.signals.read_signal() {
                    return Err(self.interrupted(info.ssi_signo as i32));
                }
            }
            if tty_ready {
                return Ok(());
            }
        }
    }
}

fn libc_flags() -> i32 {
    // Not O_NONBLOCK: reads wait in poll() first, and a blocking read after
    // a readable poll returns at once. O_NOCTTY: never acquire a terminal.
    nix::fcntl::OFlag::O_NOCTTY.bits() | nix::fcntl::OFlag::O_CLOEXEC.bits()
}

/// Echo off for a hidden answer (the newline is still echoed); restored on drop.
struct EchoOff {
    tty: File,
    saved: termios::Termios,
}

impl EchoOff {
    fn new(tty: &File) -> Result<Self, CliError> {
        let failed = |err: Errno| {
            CliError::System(format!(
                "cannot turn off echo on the terminal: {}",
                err.desc()
            ))
        };
        let tty = tty
            .try_clone()
            .map_err(|err| failed(Errno::from_raw(err.raw_os_error().unwrap_or(0))))?;
        let saved = termios::tcgetattr(&tty).map_err(failed)?;
        let mut hidden = saved.clone();
        hidden.local_flags.remove(LocalFlags::ECHO);
        hidden.local_flags.insert(LocalFlags::ECHONL);
        termios::tcsetattr(&tty, SetArg::TCSANOW, &hidden).map_err(failed)?;
        Ok(EchoOff { tty, saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.tty, SetArg::TCSANOW, &self.saved);
    }
}
