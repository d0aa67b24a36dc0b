//! Module stacks in private configuration directories, with a configuration
//! and an enrollment area of their own, so each test is independent.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};

use twofactor_core::backup;
use twofactor_core::enrollment::Enrollment;
use twofactor_core::secret::SecretBytes;
use twofactor_core::state::LoginState;
use twofactor_core::totp::{Algorithm, TotpParams};

use crate::namespace::TestNamespace;
use crate::pam_client::{self, Attempt, AttemptResult};
use crate::users::TestUser;

/// A PAM service whose stack holds the module, with its own config.
pub struct Stack {
    /// Directory given to pam_start_confdir.
    pub confdir: PathBuf,
    /// Service name (unique per stack; it appears in every log line).
    pub service: String,
    /// The configuration file.
    pub config_path: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
    /// Root of the per-user enrollment directories.
    pub enroll_root: PathBuf,
}

/// The ways the module can take the code, as module arguments: from its
/// own prompt, with the password in one answer, or from PAM_AUTHTOK that
/// pam_unix set before it.
pub const PASS_MODES: [&str; 4] = ["", "forward_pass", "use_first_pass", "try_first_pass"];

/// The one answer a user gives under `pass_mode` (one of [`PASS_MODES`]):
/// the code alone, or the password followed by the code.
pub fn answer_in_mode(pass_mode: &str, code: &str) -> String {
    if pass_mode.is_empty() {
        code.to_string()
    } else {
        format!("{}{code}", crate::users::PASSWORD)
    }
}

/// A fresh enrollment: TOTP (SHA1, 6 digits, 30 s) and backup codes.
pub struct Enrolled {
    /// What is written to the user's file.
    pub enrollment: Enrollment,
    /// The backup codes in clear text.
    pub backup_codes: Vec<String>,
}

impl Enrolled {
    /// TOTP + `count` backup codes with the given parameters.
    pub fn new(algorithm: Algorithm, digits: u8, period: u64, count: usize) -> Self {
        let generated = backup::generate(count);
        let backup_codes = generated.iter().map(|c| c.display.to_string()).collect();
        let mut secret = vec![0u8; 20];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        Enrolled {
            enrollment: Enrollment {
                totp: Some(TotpParams {
                    secret: SecretBytes::new(secret),
                    algorithm,
                    digits,
                    period,
                }),
                backup_codes: generated.into_iter().map(|c| c.stored).collect(),
                ..Enrollment::default()
            },
            backup_codes,
        }
    }

    /// The usual enrollment: SHA1, 6 digits, 30 s, 10 backup codes.
    pub fn standard() -> Self {
        Self::new(Algorithm::SHA1, 6, 30, 10)
    }

    /// A code of the enrollment's length that is not valid anywhere near
    /// `now` (four steps either side).
    pub fn wrong_code(&self, now: u64) -> String {
        let near: Vec<String> = (-4i64..=4)
            .map(|o| self.code_at((now as i64 + o * 30) as u64))
            .collect();
        (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .find(|c| !near.contains(c))
            .expect("some code is wrong")
    }

    /// The TOTP code for unix time `t`.
    pub fn code_at(&self, t: u64) -> String {
        self.enrollment
            .totp
            .as_ref()
            .expect("TOTP enrolled")
            .code_at(t)
            .to_string()
    }
}

impl Stack {
    /// A stack for `service` with the line `auth required MODULE config=... ARGS`
    /// and `extra_config` appended to the generated configuration.
    pub fn new(
        ns: &TestNamespace,
        service: &str,
        module: &Path,
        args: &str,
        extra_config: &str,
    ) -> Self {
        let base = ns.scratch.join(format!("stack-{service}"));
        let confdir = base.join("pam.d");
        let enroll_root = base.join("enroll");
        let state_dir = base.join("state");
        fs::create_dir_all(&confdir).unwrap();
        fs::create_dir_all(&enroll_root).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&enroll_root, fs::Permissions::from_mode(0o755)).unwrap();
        let config_path = base.join("pam_twofactor.toml");
        let config = format!(
            "enrollment_path = \"{}/%u/enrollment.json\"\nstate_dir = \"{}\"\n{extra_config}\n",
            enroll_root.display(),
            state_dir.display()
        );
        fs::write(&config_path, config).unwrap();
        fs::set_permissions(&config_path, fs::Permissions::from_mode(0o644)).unwrap();
        let stack = Stack {
            confdir,
            service: service.to_string(),
            config_path,
            state_dir,
            enroll_root,
        };
        stack.write_stack(&format!(
            "auth required {} config={} {args}\n",
            module.display(),
            stack.config_path.display()
        ));
        stack
    }

    /// A stack of `module` taking codes under `pass_mode` (one of
    /// [`PASS_MODES`]) with the pam_unix lines that mode needs: none for the
    /// prompt; after it, checking the password it hands on, for
    /// `forward_pass`; before it, storing its answer as PAM_AUTHTOK, and
    /// after it, checking the password part, for the other two.
    pub fn in_pass_mode(
        ns: &TestNamespace,
        service: &str,
        module: &Path,
        pass_mode: &str,
        extra_config: &str,
    ) -> Self {
        let stack = Stack::new(ns, service, module, pass_mode, extra_config);
        let line = format!(
            "auth required {} config={} {pass_mode}\n",
            module.display(),
            stack.config_path.display()
        );
        let checks_password = "auth required pam_unix.so use_first_pass nodelay\n";
        match pass_mode {
            "" => {}
            "forward_pass" => stack.write_stack(&format!("{line}{checks_password}")),
            _ => stack.write_stack(&format!(
                "auth optional pam_unix.so nodelay\n{line}{checks_password}"
            )),
        }
        stack
    }

    /// Replace the service file with `contents`.
    pub fn write_stack(&self, contents: &str) {
        fs::write(self.confdir.join(&self.service), contents).unwrap();
        // Without an `other` file libpam logs a complaint on every start.
        fs::write(self.confdir.join("other"), "").unwrap();
    }

    /// Where `user`'s enrollment lives under this stack's configuration.
    pub fn enrollment_path(&self, user: &TestUser) -> PathBuf {
        self.enroll_root.join(&user.name).join("enrollment.json")
    }

    /// The user's enrollment directory, created (owned by the user, 0700).
    pub fn user_dir(&self, user: &TestUser) -> PathBuf {
        let dir = self.enroll_root.join(&user.name);
        if !dir.exists() {
            fs::create_dir(&dir).unwrap();
        }
        chown(&dir, Some(user.uid), Some(user.uid)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    /// Write `text` as the user's enrollment file, owned by the user, 0600.
    pub fn write_enrollment_text(&self, user: &TestUser, text: &str) -> PathBuf {
        self.user_dir(user);
        let path = self.enrollment_path(user);
        fs::write(&path, text).unwrap();
        chown(&path, Some(user.uid), Some(user.uid)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Enroll `user` with `enrolled`.
    pub fn enroll(&self, user: &TestUser, enrolled: &Enrolled) -> PathBuf {
        self.write_enrollment_text(user, &enrolled.enrollment.to_json())
    }

    /// Run pam_authenticate for `user`.
    pub fn authenticate(&self, user: &str, attempt: &Attempt) -> AttemptResult {
        pam_client::authenticate(&self.confdir, &self.service, user, attempt)
    }

    /// Authenticate with one answer at unix time `now` (test clock).
    pub fn login_at(&self, user: &str, answer: &str, now: u64) -> AttemptResult {
        self.authenticate(
            user,
            &Attempt {
                answers: vec![answer.to_string()],
                env: vec![format!("PAM_TWOFACTOR_TEST_NOW={now}")],
                ..Attempt::default()
            },
        )
    }

    /// Authenticate with `answers` at unix time `now` (test clock), from
    /// the remote host `rhost` when given.
    pub fn login_from(
        &self,
        user: &str,
        answers: &[&str],
        now: u64,
        rhost: Option<&str>,
    ) -> AttemptResult {
        self.authenticate(
            user,
            &Attempt {
                answers: answers.iter().map(|a| a.to_string()).collect(),
                env: vec![format!("PAM_TWOFACTOR_TEST_NOW={now}")],
                rhost: rhost.map(str::to_string),
                ..Attempt::default()
            },
        )
    }

    /// The login state the module keeps for `user` (an empty one when it
    /// has written none).
    pub fn state_of(&self, user: &str) -> Result<LoginState, String> {
        let path = self.state_dir.join(format!("{user}.state"));
        if !path.exists() {
            return Ok(LoginState::default());
        }
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        LoginState::parse(&text, "test").map_err(|e| e.to_string())
    }

    /// Log lines of this stack's service.
    pub fn log_lines(&self) -> Vec<String> {
        crate::syslog_capture::matching(&self.log_tag())
    }

    /// The tag of this stack's log lines.
    pub fn log_tag(&self) -> String {
        format!("pam_twofactor({}:auth)", self.service)
    }

    /// Wait for a log line of this stack satisfying `wanted`.
    pub fn wait_for_log(&self, wanted: impl Fn(&str) -> bool) -> bool {
        let tag = self.log_tag();
        crate::syslog_capture::wait_for(|l| l.contains(&tag) && wanted(l))
    }
}
