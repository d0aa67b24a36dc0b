//! A real OpenSSH server and client around the module: `/usr/sbin/sshd`
//! started from a generated configuration inside the test namespace, logins
//! driven by `ssh` with an askpass script instead of a terminal, and
//! enrollments made by the real `twofactor` tool.

use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use twofactor_core::enrollment::decode_base32_secret;
use twofactor_core::totp::{Algorithm, TotpParams};

use crate::syslog_capture;

const SSHD: &str = "/usr/sbin/sshd";
const LISTEN_DEADLINE: Duration = Duration::from_secs(10);
const STOP_DEADLINE: Duration = Duration::from_secs(5);
/// Far above a login's ~0.3 s, far below anything a hung client would reach.
const CLIENT_DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(10);

/// A running sshd, stopped when dropped (also when a test panics).
pub struct SshServer {
    child: Mutex<Option<Child>>,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    log_path: PathBuf,
    stderr_path: PathBuf,
}

fn run_quietly(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A new passphrase-less ed25519 key pair at `path` and `path`.pub.
pub fn generate_key(path: &Path) -> Result<(), String> {
    run_quietly(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "pam_twofactor-test",
                "-f",
            ])
            .arg(path),
    )
}

fn free_port() -> io::Result<u16> {
    // The listener is dropped before sshd binds: another process could take
    // the port in between, which sshd would report as a bind failure.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl SshServer {
    /// Start sshd with its own host key in `dir`, listening on 127.0.0.1 at a
    /// free port, with `settings` (sshd_config lines) after the listening
    /// ones. Returns once it accepts connections.
    pub fn start(dir: &Path, settings: &str) -> Result<Self, String> {
        // The privilege-separation directory sshd insists on; what the
        // package's init script would create.
        fs::create_dir_all("/run/sshd").map_err(|e| format!("mkdir /run/sshd: {e}"))?;
        let host_key = dir.join("ssh_host_ed25519_key");
        generate_key(&host_key)?;
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let config_path = dir.join("sshd_config");
        let config = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nPidFile none\n{settings}\n",
            host_key.display()
        );
        fs::write(&config_path, config).map_err(|e| format!("write sshd_config: {e}"))?;
        let log_path = dir.join("sshd.log");
        let stderr_path = dir.join("sshd.stderr");
        let stderr =
            fs::File::create(&stderr_path).map_err(|e| format!("create sshd.stderr: {e}"))?;
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config_path)
            .arg("-E")
            .arg(&log_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {SSHD}: {e}"))?;
        let server = SshServer {
            child: Mutex::new(Some(child)),
            port,
            log_path,
            stderr_path,
        };
        server.wait_until_listening()?;
        Ok(server)
    }

    fn wait_until_listening(&self) -> Result<(), String> {
        let deadline = Instant::now() + LISTEN_DEADLINE;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.exit_status() {
                return Err(format!(
                    "sshd exited ({status}) before listening{}",
                    self.log()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "sshd is not listening on port {} after {LISTEN_DEADLINE:?}{}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// sshd's log file and anything it wrote to stderr, for failure messages.
    pub fn log(&self) -> String {
        let log =
            fs::read_to_string(&self.log_path).unwrap_or_else(|e| format!("(unreadable: {e})"));
        let stderr = fs::read_to_string(&self.stderr_path).unwrap_or_default();
        format!("\n--- sshd log ---\n{log}--- sshd stderr ---\n{stderr}--- end of sshd output ---")
    }

    /// sshd's log file alone.
    pub fn log_file(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Stop the server: SIGTERM, then SIGKILL if it lingers. Idempotent.
    pub fn stop(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut child) = guard.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What one run of the `ssh` client did.
#[derive(Debug)]
pub struct SshOutcome {
    /// The client's exit status.
    pub status: ExitStatus,
    /// The remote command's output.
    pub stdout: String,
    /// The client's own messages (and the remote command's errors).
    pub stderr: String,
    /// Every prompt the askpass script was asked, in order.
    pub prompts: Vec<String>,
}

impl SshOutcome {
    /// Everything about the run, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "ssh exit: {}\nprompts: {:?}\n--- ssh stdout ---\n{}--- ssh stderr ---\n{}--- end of ssh output ---",
            self.status, self.prompts, self.stdout, self.stderr
        )
    }
}

/// Run `ssh -p PORT OPTIONS... DESTINATION COMMAND` without a terminal, in a
/// session of its own, answering every prompt with `answer` through an
/// askpass script. `dir` must be a fresh directory for this run.
pub fn run_ssh(
    dir: &Path,
    port: u16,
    options: &[String],
    destination: &str,
    command: &str,
    answer: &str,
) -> Result<SshOutcome, String> {
    fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
    let answer_path = dir.join("answer");
    let prompts_path = dir.join("prompts");
    let askpass_path = dir.join("askpass");
    fs::write(&answer_path, format!("{answer}\n")).map_err(|e| format!("write answer: {e}"))?;
    fs::write(&prompts_path, "").map_err(|e| format!("write prompts: {e}"))?;
    fs::write(
        &askpass_path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\ncat '{}'\n",
            prompts_path.display(),
            answer_path.display()
        ),
    )
    .map_err(|e| format!("write askpass: {e}"))?;
    fs::set_permissions(&askpass_path, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod askpass: {e}"))?;
    launch_ssh(dir, port, options, destination, command, &askpass_path)
}

/// [`run_ssh`], answering each prompt by what it asks: the answer of the
/// first `(needle, answer)` whose needle the prompt contains (e.g.
/// `("Password", PASSWORD)`, `("Verification code", code)`); a prompt that
/// matches none gets an empty line.
pub fn run_ssh_answering(
    dir: &Path,
    port: u16,
    options: &[String],
    destination: &str,
    command: &str,
    answers: &[(&str, &str)],
) -> Result<SshOutcome, String> {
    fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
    let prompts_path = dir.join("prompts");
    let askpass_path = dir.join("askpass");
    fs::write(&prompts_path, "").map_err(|e| format!("write prompts: {e}"))?;
    let mut script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\ncase \"$1\" in\n",
        prompts_path.display()
    );
    for (i, (needle, answer)) in answers.iter().enumerate() {
        let answer_path = dir.join(format!("answer-{i}"));
        fs::write(&answer_path, format!("{answer}\n")).map_err(|e| format!("write answer: {e}"))?;
        if needle.contains(['\'', '*', '?', '[']) {
            return Err(format!("unusable prompt needle {needle:?}"));
        }
        script.push_str(&format!(
            "  *'{needle}'*) cat '{}' ;;\n",
            answer_path.display()
        ));
    }
    script.push_str("  *) echo ;;\nesac\n");
    fs::write(&askpass_path, script).map_err(|e| format!("write askpass: {e}"))?;
    fs::set_permissions(&askpass_path, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod askpass: {e}"))?;
    launch_ssh(dir, port, options, destination, command, &askpass_path)
}

fn launch_ssh(
    dir: &Path,
    port: u16,
    options: &[String],
    destination: &str,
    command: &str,
    askpass_path: &Path,
) -> Result<SshOutcome, String> {
    let prompts_path = dir.join("prompts");
    let stdout_path = dir.join("stdout");
    let stderr_path = dir.join("stderr");
    let stdout = fs::File::create(&stdout_path).map_err(|e| format!("create stdout: {e}"))?;
    let stderr = fs::File::create(&stderr_path).map_err(|e| format!("create stderr: {e}"))?;

    // setsid: without a controlling terminal ssh asks through SSH_ASKPASS.
    // The child is not a process group leader, so setsid execs ssh in place
    // (no fork): the pid below is ssh's, and its session's process group
    // includes the askpass helper.
    let mut child = Command::new("setsid")
        .arg("-w")
        .arg("ssh")
        .args(["-F", "/dev/null", "-p", &port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "BatchMode=no",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "IdentityAgent=none",
        ])
        .args(options)
        .arg(destination)
        .arg(command)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", dir)
        .env("SSH_ASKPASS", askpass_path)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start ssh: {e}"))?;
    let deadline = Instant::now() + CLIENT_DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => return Err(format!("waiting for ssh: {e}")),
        }
    };
    let read = |path: &Path| fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"));
    let Some(status) = status else {
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let _ = child.wait();
        return Err(format!(
            "ssh did not finish within {CLIENT_DEADLINE:?}\nprompts: {:?}\n--- ssh stderr ---\n{}",
            read(&prompts_path),
            read(&stderr_path)
        ));
    };
    Ok(SshOutcome {
        status,
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
        prompts: read(&prompts_path).lines().map(str::to_string).collect(),
    })
}

/// An enrollment made by `twofactor enroll --json`, as the user would see it.
pub struct ToolEnrollment {
    /// The TOTP parameters from the printed otpauth:// URI.
    pub totp: TotpParams,
    /// The printed backup codes.
    pub backup_codes: Vec<String>,
    /// Where the tool says it wrote the enrollment.
    pub enrollment_path: PathBuf,
}

/// Enroll `user` by running the real tool as root with `config`.
pub fn enroll_with_tool(user: &str, config: &Path) -> Result<ToolEnrollment, String> {
    let output = Command::new(crate::twofactor_binary())
        .args([
            "enroll",
            "--user",
            user,
            "--non-interactive",
            "--json",
            "--config",
        ])
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run twofactor: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "twofactor enroll --user {user} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("twofactor enroll printed no JSON object: {e}"))?;
    let uri = json["otpauth_uri"]
        .as_str()
        .ok_or("the JSON has no otpauth_uri string")?;
    let backup_codes = json["backup_codes"]
        .as_array()
        .ok_or("the JSON has no backup_codes array")?
        .iter()
        .map(|code| code.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .ok_or("a backup code is not a string")?;
    let enrollment_path = json["enrollment_path"]
        .as_str()
        .ok_or("the JSON has no enrollment_path string")?
        .into();
    Ok(ToolEnrollment {
        totp: totp_from_uri(uri)?,
        backup_codes,
        enrollment_path,
    })
}

/// The parameters an authenticator app takes from an otpauth://totp/ URI.
pub fn totp_from_uri(uri: &str) -> Result<TotpParams, String> {
    let query = uri
        .strip_prefix("otpauth://totp/")
        .and_then(|rest| rest.split_once('?'))
        .map(|(_, query)| query)
        .ok_or("not an otpauth://totp/ URI with parameters")?;
    let parameter = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
            .ok_or(format!("the otpauth URI has no {name} parameter"))
    };
    let algorithm = match parameter("algorithm")? {
        "SHA1" => Algorithm::SHA1,
        "SHA256" => Algorithm::SHA256,
        "SHA512" => Algorithm::SHA512,
        other => return Err(format!("unknown algorithm {other:?} in the otpauth URI")),
    };
    Ok(TotpParams {
        secret: decode_base32_secret(parameter("secret")?)?,
        algorithm,
        digits: parameter("digits")?
            .parse()
            .map_err(|e| format!("digits: {e}"))?,
        period: parameter("period")?
            .parse()
            .map_err(|e| format!("period: {e}"))?,
    })
}

/// A position in the captured syslog stream: lines after it arrived later.
pub fn syslog_mark() -> usize {
    syslog_capture::all().len()
}

static BARRIER_COUNT: AtomicU64 = AtomicU64::new(0);

/// Every line logged so far, including everything any process sent to
/// `/dev/log` before this call: a marker datagram is queued behind them
/// and awaited, so no sleeping or guessing is needed for negative checks.
pub fn syslog_flushed() -> Result<Vec<String>, String> {
    let marker = format!(
        "twofactor-integration-tests: syslog barrier {} of pid {}",
        BARRIER_COUNT.fetch_add(1, Ordering::Relaxed),
        std::process::id()
    );
    let socket = UnixDatagram::unbound().map_err(|e| format!("socket: {e}"))?;
    socket
        .send_to(format!("<15>{marker}").as_bytes(), "/dev/log")
        .map_err(|e| format!("send to /dev/log: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = syslog_capture::all();
        if let Some(position) = lines.iter().position(|line| line.ends_with(&marker)) {
            return Ok(lines.into_iter().take(position).collect());
        }
        if Instant::now() >= deadline {
            return Err("the syslog capture did not receive its barrier within 5 s".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The lines that arrived after `mark`, complete up to this call.
pub fn syslog_since(mark: usize) -> Result<Vec<String>, String> {
    Ok(syslog_flushed()?.into_iter().skip(mark).collect())
}
