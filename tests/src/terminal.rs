//! A program on a pseudo-terminal that is its controlling terminal (through
//! util-linux `setsid --ctty`), driven like a person at a console: wait for
//! a prompt, type an answer. For `login`, `su` and `sudo`, which read
//! passwords from their terminal and accept nothing else.

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a prompt may take (login's failure delay is 3 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// A running program and everything its terminal showed.
pub struct Console {
    master: Option<File>,
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    consumed: usize,
}

impl Console {
    /// Start `program args...` with a new terminal as stdin, stdout, stderr
    /// and controlling terminal, in a session of its own.
    pub fn spawn(program: &str, args: &[&str]) -> Result<Console, String> {
        let pty = nix::pty::openpty(None, None).map_err(|e| format!("openpty: {e}"))?;
        let slave = File::from(pty.slave);
        let stdio = |f: &File| -> Result<Stdio, String> {
            Ok(Stdio::from(f.try_clone().map_err(|e| format!("dup: {e}"))?))
        };
        let child = Command::new("setsid")
            .args(["--ctty", "--wait", program])
            .args(args)
            .env("TERM", "dumb")
            .env("LC_ALL", "C")
            .stdin(stdio(&slave)?)
            .stdout(stdio(&slave)?)
            .stderr(stdio(&slave)?)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        drop(slave);
        let master = File::from(pty.master);
        let mut reader = master.try_clone().map_err(|e| format!("dup: {e}"))?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // Ends with EIO once every process has closed the terminal.
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buffer[..n]);
            }
        });
        Ok(Console {
            master: Some(master),
            child,
            output,
            consumed: 0,
        })
    }

    /// Everything shown so far, `\r\n` made `\n`.
    pub fn screen(&self) -> String {
        let raw = self.output.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&raw).replace("\r\n", "\n")
    }

    /// Wait until the terminal shows `needle` after what earlier calls
    /// matched; the text up to and including it.
    pub fn expect(&mut self, needle: &str) -> Result<String, String> {
        self.expect_within(needle, DEFAULT_TIMEOUT)
    }

    /// [`Console::expect`] with a timeout.
    pub fn expect_within(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            let rest = screen.get(self.consumed..).unwrap_or_default();
            if let Some(found) = rest.find(needle) {
                let end = self.consumed + found + needle.len();
                let seen = screen[self.consumed..end].to_string();
                self.consumed = end;
                return Ok(seen);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "timed out after {timeout:?} waiting for {needle:?}; the terminal shows:\n{screen}"
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Type `text` ("\n" is Enter).
    pub fn send(&mut self, text: &str) -> Result<(), String> {
        let master = self.master.as_mut().ok_or("the terminal is closed")?;
        master
            .write_all(text.as_bytes())
            .and_then(|()| master.flush())
            .map_err(|e| format!("cannot type into the terminal: {e}"))
    }

    /// Wait for the program to end by itself.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| format!("wait: {e}"))? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the program did not end within {timeout:?}; the terminal shows:\n{}",
                    self.screen()
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Hang up: close the terminal (the session gets SIGHUP) and reap.
    pub fn hang_up(mut self) -> String {
        self.master = None;
        if self.wait(Duration::from_secs(5)).is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.screen()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.master = None;
        if let Ok(None) = self.child.try_wait() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
