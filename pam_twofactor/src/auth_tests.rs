//! Flow tests of [`crate::auth`]: no libpam, no real accounts, no clock.
//!
//! The PAM side is a scripted [`ScriptedSession`]: it pops the events a test
//! expects (prompts with their answers, messages) as the flow calls it, panics
//! on any call it did not expect, and on drop fails the test if an expected
//! event never happened, so a skipped prompt cannot go unnoticed. Accounts and
//! enrollments come from memory ([`FakeSystem`]); the login state is the real
//! [`StateStore`] in a temporary directory, owned by the test's euid.
//!
//! The configuration comes through the [`System`] too: [`FakeSystem`] serves
//! the default path (`/etc/security/pam_twofactor.toml`) from memory and
//! refuses to read anything else under `/etc`, so a host's own file (its
//! limits, its `notify_command`) never reaches these tests; a file named
//! with `config=` is read from the test's directory by the real reading
//! code, which insists on a root-owned file. As root (how CI runs) the
//! harness writes one and passes `config=`; otherwise it passes every key
//! the flow reads as a module argument over the in-memory default.
//! `harness_configuration_is_the_one_the_tests_assume` checks that either
//! way the flow sees the intended settings.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use twofactor_core::backup;
use twofactor_core::config::{
    Config, UnenrolledPolicy, DEFAULT_CONFIG_PATH, DEFAULT_FORWARD_PASS_PROMPT, DEFAULT_PROMPT,
};
use twofactor_core::enrollment::Enrollment;
use twofactor_core::error::FileProblem;
use twofactor_core::origin::TerminalSession;
use twofactor_core::secret::{SecretBytes, SecretString};
use twofactor_core::state::{LoginState, Method, StateStore};
use twofactor_core::totp::{Algorithm, TotpParams};
use twofactor_core::Error;

use crate::args::ModuleArgs;
use crate::auth::{decide_code, load_config, Login, Outcome};
use crate::fido2_device::SecurityKeys;
use crate::log::{AuditLog, Severity};
use crate::session::{ConversationError, PamCode, Session};
use crate::system::{Account, System};

/// A fixed login time (2027-01-15), far from step 0 so the window has room.
const NOW: u64 = 1_800_000_000;
/// Deliberately not the default template: a flow that ignored the
/// configuration would look in the wrong place and find nobody enrolled.
const ENROLLMENT_TEMPLATE: &str = "%h/.twofactor-test/%u.toml";
const PROMPT: &str = DEFAULT_PROMPT;

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

// ---------------------------------------------------------------------------
// The scripted PAM conversation
// ---------------------------------------------------------------------------

/// One call the flow is expected to make on the session, in order.
#[derive(Debug)]
enum Expect {
    /// `prompt_hidden(text)`, answered with `answer`.
    Prompt {
        text: String,
        answer: Result<String, ConversationError>,
    },
    /// `info(text)`.
    Info(String),
    /// `error(text)`.
    Error(String),
}

impl Expect {
    fn prompt(text: &str, answer: &str) -> Self {
        Expect::Prompt {
            text: text.to_string(),
            answer: Ok(answer.to_string()),
        }
    }

    fn prompt_failing(text: &str, error: ConversationError) -> Self {
        Expect::Prompt {
            text: text.to_string(),
            answer: Err(error),
        }
    }

    fn info(text: &str) -> Self {
        Expect::Info(text.to_string())
    }
}

/// A PAM transaction whose conversation follows a script.
struct ScriptedSession {
    user: Option<String>,
    service: Option<String>,
    remote_host: Option<String>,
    remote_user: Option<String>,
    tty: Option<String>,
    authtok: Option<String>,
    set_authtok_fails: bool,
    script: VecDeque<Expect>,
    /// Every value the flow passed to `set_authtok`, in order.
    set_authtok_calls: Vec<Option<String>>,
}

impl ScriptedSession {
    fn new(user: &str, script: Vec<Expect>) -> Self {
        ScriptedSession {
            user: Some(user.to_string()),
            service: Some("sshd".into()),
            remote_host: Some("192.0.2.7".into()),
            remote_user: None,
            tty: Some("ssh".into()),
            authtok: None,
            set_authtok_fails: false,
            script: script.into(),
            set_authtok_calls: Vec::new(),
        }
    }

    fn with_authtok(mut self, authtok: &str) -> Self {
        self.authtok = Some(authtok.to_string());
        self
    }

    fn next_event(&mut self, call: &str) -> Expect {
        self.script
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected call {call}: the script has no more events"))
    }
}

impl Session for ScriptedSession {
    fn user(&mut self) -> Option<String> {
        self.user.clone()
    }

    fn service(&self) -> Option<String> {
        self.service.clone()
    }

    fn remote_host(&self) -> Option<String> {
        self.remote_host.clone()
    }

    fn remote_user(&self) -> Option<String> {
        self.remote_user.clone()
    }

    fn tty(&self) -> Option<String> {
        self.tty.clone()
    }

    fn authtok(&self) -> Option<SecretString> {
        self.authtok.clone().map(SecretString::new)
    }

    fn set_authtok(&mut self, value: Option<&str>) -> Result<(), ConversationError> {
        self.set_authtok_calls.push(value.map(str::to_string));
        if self.set_authtok_fails {
            return Err(ConversationError::Failed);
        }
        // As libpam does: later modules see the new value.
        self.authtok = value.map(str::to_string);
        Ok(())
    }

    fn prompt_hidden(&mut self, prompt: &str) -> Result<SecretString, ConversationError> {
        match self.next_event(&format!("prompt_hidden({prompt:?})")) {
            Expect::Prompt { text, answer } => {
                assert_eq!(prompt, text, "prompt text");
                answer.map(SecretString::new)
            }
            other => panic!("prompt {prompt:?} shown where the script expected {other:?}"),
        }
    }

    fn info(&mut self, text: &str) {
        match self.next_event(&format!("info({text:?})")) {
            Expect::Info(expected) => assert_eq!(text, expected, "info message"),
            other => panic!("info {text:?} shown where the script expected {other:?}"),
        }
    }

    fn error(&mut self, text: &str) {
        match self.next_event(&format!("error({text:?})")) {
            Expect::Error(expected) => assert_eq!(text, expected, "error message"),
            other => panic!("error {text:?} shown where the script expected {other:?}"),
        }
    }
}

impl Drop for ScriptedSession {
    fn drop(&mut self) {
        // A second panic while unwinding would abort and hide the first one.
        if !std::thread::panicking() {
            assert!(
                self.script.is_empty(),
                "expected events left over (the flow skipped them): {:?}",
                self.script
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Accounts, enrollments and the audit log
// ---------------------------------------------------------------------------

/// Accounts and enrollments from memory. An enrollment path missing from the
/// map reads as "no enrollment", like a missing file.
#[derive(Default)]
struct FakeSystem {
    accounts: HashMap<String, Account>,
    enrollments: HashMap<PathBuf, Result<Option<Enrollment>, Error>>,
    /// A `twofactor` run moving an old enrollment.toml to this path at the
    /// worst moment: right after the first read that finds nothing (the old
    /// file is gone by the time the flow looks for it).
    move_in_flight: RefCell<Option<(PathBuf, Enrollment)>>,
    moved: RefCell<HashMap<PathBuf, Enrollment>>,
    terminal_session: Option<TerminalSession>,
    /// What the default configuration path holds for these tests.
    default_config: Config,
}

impl System for FakeSystem {
    fn account(&self, name: &str) -> Result<Option<Account>, Error> {
        Ok(self.accounts.get(name).cloned())
    }

    fn enrollment(&self, _account: &Account, path: &Path) -> Result<Option<Enrollment>, Error> {
        if let Some(enrollment) = self.moved.borrow().get(path) {
            return Ok(Some(enrollment.clone()));
        }
        let found = self.enrollments.get(path).cloned().unwrap_or(Ok(None));
        if matches!(found, Ok(None)) {
            if let Some((to, enrollment)) = self.move_in_flight.borrow_mut().take() {
                self.moved.borrow_mut().insert(to, enrollment);
            }
        }
        found
    }

    fn state_owner(&self) -> u32 {
        euid()
    }

    fn configuration(&self, path: &Path, explicit: bool) -> Result<Config, Error> {
        if path == Path::new(DEFAULT_CONFIG_PATH) && !explicit {
            return Ok(self.default_config.clone());
        }
        assert!(
            !path.starts_with("/etc"),
            "a flow test would read {} from the host",
            path.display()
        );
        twofactor_core::config::load(path, !explicit)
    }

    fn terminal_session(&self) -> Option<TerminalSession> {
        self.terminal_session
    }

    fn host_name(&self) -> String {
        "testhost".into()
    }

    fn local_names_of_uid(&self, uid: u32) -> Vec<String> {
        self.accounts
            .values()
            .filter(|a| a.uid == uid)
            .map(|a| a.name.clone())
            .collect()
    }
}

#[derive(Default)]
struct CollectingLog {
    lines: Vec<(Severity, String)>,
}

impl AuditLog for CollectingLog {
    fn record(&mut self, severity: Severity, message: &str) {
        self.lines.push((severity, message.to_string()));
    }
}

impl CollectingLog {
    fn at(&self, severity: Severity) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(s, _)| *s == severity)
            .map(|(_, line)| line.as_str())
            .collect()
    }

    /// Exactly one line was logged, at `severity`, containing every `part`.
    fn assert_single(&self, severity: Severity, parts: &[&str]) {
        assert_eq!(self.lines.len(), 1, "log lines: {:#?}", self.lines);
        let (found, line) = &self.lines[0];
        assert_eq!(*found, severity, "{line}");
        for part in parts {
            assert!(line.contains(part), "{part:?} missing from {line:?}");
        }
    }

    /// Codes and passwords never reach syslog.
    fn assert_never_contains(&self, secret: &str) {
        assert!(!secret.is_empty());
        for (_, line) in &self.lines {
            assert!(!line.contains(secret), "secret {secret:?} logged: {line:?}");
        }
    }

    fn clear(&mut self) {
        self.lines.clear();
    }
}

// ---------------------------------------------------------------------------
// Enrollments and codes
// ---------------------------------------------------------------------------

fn totp_params() -> TotpParams {
    TotpParams {
        secret: SecretBytes::new(vec![0x5a; 20]),
        algorithm: Algorithm::SHA1,
        digits: 6,
        period: 30,
    }
}

/// An enrollment with TOTP and `backup_count` backup codes, and the codes as
/// shown to the user.
fn enrollment_with(backup_count: usize) -> (Enrollment, Vec<String>) {
    let generated = backup::generate(backup_count);
    let shown = generated.iter().map(|c| c.display.to_string()).collect();
    let enrollment = Enrollment {
        totp: Some(totp_params()),
        backup_codes: generated.into_iter().map(|c| c.stored).collect(),
        ..Enrollment::default()
    };
    (enrollment, shown)
}

fn totp_code(now: u64) -> String {
    totp_params().code_at(now).to_string()
}

/// A well-formed code that matches no step within the widest window.
fn wrong_code(now: u64) -> String {
    let params = totp_params();
    let valid: Vec<String> = (now - 4 * 30..=now + 4 * 30)
        .step_by(30)
        .map(|t| params.code_at(t).to_string())
        .collect();
    (0u32..)
        .map(|n| format!("{n:06}"))
        .find(|candidate| !valid.contains(candidate))
        .unwrap()
}

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

struct Harness {
    dir: TempDir,
    system: FakeSystem,
    log: CollectingLog,
    now: u64,
    silent: bool,
    base_args: Vec<String>,
    /// Security keys the flow sees (none attached unless a test says so).
    keys: Box<dyn SecurityKeys>,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Not created yet: the flow makes it on first use.
        let state_dir = dir.path().join("state");
        let state_dir = state_dir.to_str().unwrap();
        let base_args = if euid() == 0 {
            let config = dir.path().join("pam_twofactor.toml");
            fs::write(
                &config,
                format!(
                    "enrollment_path = {ENROLLMENT_TEMPLATE:?}\n\
                     state_dir = {state_dir:?}\n\
                     prompt = {PROMPT:?}\n\
                     window = 1\n\
                     unenrolled = \"fail\"\n"
                ),
            )
            .unwrap();
            fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
            vec![format!("config={}", config.display())]
        } else {
            vec![
                format!("enrollment_path={ENROLLMENT_TEMPLATE}"),
                format!("state_dir={state_dir}"),
                format!("prompt={PROMPT}"),
                "window=1".into(),
                "unenrolled=fail".into(),
            ]
        };
        Harness {
            dir,
            system: FakeSystem::default(),
            log: CollectingLog::default(),
            now: NOW,
            silent: false,
            base_args,
            keys: Box::new(fido2_flow::NoKeys),
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn home(user: &str) -> PathBuf {
        PathBuf::from(format!("/home/{user}"))
    }

    /// Where the flow should look for `user`'s enrollment.
    fn enrollment_path(user: &str) -> PathBuf {
        Self::home(user).join(format!(".twofactor-test/{user}.toml"))
    }

    fn add_user(&mut self, user: &str) {
        let account = Account {
            name: user.to_string(),
            uid: 1000 + self.system.accounts.len() as u32,
            gid: 1000,
            home: Self::home(user),
            state_name: user.to_string(),
        };
        self.system.accounts.insert(user.to_string(), account);
    }

    fn set_enrollment(&mut self, user: &str, enrollment: Result<Option<Enrollment>, Error>) {
        self.add_user(user);
        self.system
            .enrollments
            .insert(Self::enrollment_path(user), enrollment);
    }

    /// `user` with TOTP and ten backup codes; returns the codes as shown.
    fn enroll(&mut self, user: &str) -> Vec<String> {
        self.enroll_with(user, backup::DEFAULT_COUNT)
    }

    fn enroll_with(&mut self, user: &str, backup_count: usize) -> Vec<String> {
        let (enrollment, shown) = enrollment_with(backup_count);
        self.set_enrollment(user, Ok(Some(enrollment)));
        shown
    }

    fn login(&mut self, session: &mut ScriptedSession, extra_args: &[&str]) -> PamCode {
        let mut args = self.base_args.clone();
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let mut login = Login {
            system: &self.system,
            log: &mut self.log,
            now: self.now,
            silent: self.silent,
            keys: &mut *self.keys,
            states: Default::default(),
        };
        login.authenticate(session, &args)
    }

    /// The login state the flow left for `user`.
    fn state(&self, user: &str) -> LoginState {
        StateStore::new(self.state_dir())
            .peek(user, euid())
            .unwrap()
    }
}

fn prompt_answered(answer: &str) -> Vec<Expect> {
    vec![Expect::prompt(PROMPT, answer)]
}

// ---------------------------------------------------------------------------
// The harness itself
// ---------------------------------------------------------------------------

#[test]
fn harness_configuration_is_the_one_the_tests_assume() {
    let h = Harness::new();
    let config = load_config(&h.system, &ModuleArgs::parse(&h.base_args).unwrap())
        .unwrap_or_else(|e| panic!("the test configuration does not load: {e}"));
    assert_eq!(config.enrollment_path, ENROLLMENT_TEMPLATE);
    assert_eq!(Path::new(&config.state_dir), h.state_dir());
    assert_eq!(config.prompt, PROMPT);
    assert_eq!(config.window, 1);
    assert_eq!(config.unenrolled, UnenrolledPolicy::Fail);
}

#[test]
fn the_flow_reads_no_configuration_from_the_host() {
    let mut h = Harness::new();
    h.enroll("alice");
    // What the host's file would say never matters: the default path is
    // served by the fake, and every other path under /etc is refused.
    h.system.default_config = Config {
        prompt: "Fake default prompt: ".into(),
        state_dir: h.state_dir().to_string_lossy().into_owned(),
        enrollment_path: ENROLLMENT_TEMPLATE.into(),
        ..Config::default()
    };
    // No config=, no overrides: the default path alone.
    h.base_args.clear();
    let mut session = ScriptedSession::new(
        "alice",
        vec![Expect::prompt("Fake default prompt: ", &totp_code(NOW))],
    );
    assert_eq!(h.login(&mut session, &[]), PamCode::Success);
    let read_etc = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        h.system
            .configuration(Path::new("/etc/security/other.toml"), true)
    }));
    assert!(read_etc.is_err(), "the fake let a test read /etc");
}

#[test]
#[should_panic(expected = "expected events left over")]
fn scripted_session_fails_a_test_whose_prompt_was_skipped() {
    let _session = ScriptedSession::new("alice", prompt_answered("123456"));
}

#[test]
#[should_panic(expected = "where the script expected Error")]
fn scripted_session_fails_on_a_call_out_of_script() {
    let mut session = ScriptedSession::new("alice", vec![Expect::Error("Sorry.".into())]);
    session.info("Sorry.");
}

#[test]
#[should_panic(expected = "unexpected call error")]
fn scripted_session_fails_on_a_call_after_the_script_ended() {
    let mut session = ScriptedSession::new("alice", vec![]);
    session.error("Sorry.");
}

// ---------------------------------------------------------------------------
// The outcome-to-code policy
// ---------------------------------------------------------------------------

#[test]
fn decide_code_maps_only_verified_to_success() {
    let table = [
        (Outcome::Verified, PamCode::Success),
        (Outcome::Refused, PamCode::AuthError),
        (Outcome::NotEnrolled, PamCode::AuthError),
        (Outcome::UnknownUser, PamCode::UserUnknown),
        (Outcome::Ignored, PamCode::Ignore),
        (Outcome::Unavailable, PamCode::AuthInfoUnavailable),
        (Outcome::Misconfigured, PamCode::ServiceError),
        (Outcome::NoAnswer, PamCode::ConversationError),
    ];
    for (outcome, expected) in &table {
        // No wildcard: a new variant does not compile until it is in the table.
        match outcome {
            Outcome::Verified
            | Outcome::Refused
            | Outcome::NotEnrolled
            | Outcome::UnknownUser
            | Outcome::Ignored
            | Outcome::Unavailable
            | Outcome::Misconfigured
            | Outcome::NoAnswer => {}
        }
        let code = decide_code(outcome);
        assert_eq!(code, *expected, "{outcome:?}");
        assert_eq!(
            code == PamCode::Success,
            *outcome == Outcome::Verified,
            "{outcome:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// TOTP
// ---------------------------------------------------------------------------

#[test]
fn correct_totp_code_succeeds_after_one_prompt() {
    let mut h = Harness::new();
    h.enroll("alice");
    let code = totp_code(NOW);
    let mut session = ScriptedSession::new("alice", prompt_answered(&code));

    assert_eq!(h.login(&mut session, &[]), PamCode::Success);

    h.log.assert_single(
        Severity::Info,
        &[
            "second factor accepted",
            "user=alice",
            "rhost=192.0.2.7",
            "tty=ssh",
            "method=totp",
        ],
    );
    h.log.assert_never_contains(&code);
    assert!(session.set_authtok_calls.is_empty());
    let state = h.state("alice");
    assert_eq!(state.newest_totp_step(), Some(NOW / 30));
    assert_eq!(state.last_success, Some(NOW));
    assert_eq!(state.last_success_method, Some(Method::Totp));
}

#[test]
fn code_of_the_previous_step_is_accepted_within_the_window() {
    let mut h = Harness::new();
    h.enroll("alice");
    let code = totp_code(NOW - 30);
    let mut session = ScriptedSession::new("alice", prompt_answered(&format!(" {code}\n")));

    assert_eq!(h.login(&mut session, &[]), PamCode::Success);
    assert_eq!(h.state("alice").newest_totp_step(), Some(NOW / 30 - 1));
}

#[test]
fn wrong_code_is_refused_with_a_warning() {
    let mut h = Harness::new();
    h.enroll("alice");
    let wrong = wrong_code(NOW);
    let mut session = ScriptedSession::new("alice", prompt_answered(&wrong));

    assert_eq!(h.login(&mut session, &[]), PamCode::AuthError);

    h.log.assert_single(
        Severity::Warning,
        &["second factor refused: wrong code", "user=alice"],
    );
    h.log.assert_never_contains(&wrong);
    let state = h.state("alice");
    assert_eq!(
        state.failures.iter().map(|f| f.time).collect::<Vec<_>>(),
        vec![NOW]
    );
    assert_eq!(state.newest_totp_step(), None);
}

#[test]
fn replayed_code_is_refused_and_the_next_step_accepted() {
    let mut h = Harness::new();
    h.enroll("alice");
    let code = totp_code(NOW);

    let mut first = ScriptedSession::new("alice", prompt_answered(&code));
    assert_eq!(h.login(&mut first, &[]), PamCode::Success);
    h.log.clear();

    let mut second = ScriptedSession::new("alice", prompt_answered(&code));
    assert_eq!(h.login(&mut second, &[]), PamCode::AuthError);
    h.log
        .assert_single(Severity::Warning, &["replay refused", "user=alice"]);
    h.log.assert_never_contains(&code);
    assert_eq!(
        h.state("alice")
            .failures
            .iter()
            .map(|f| f.time)
            .collect::<Vec<_>>(),
        vec![NOW]
    );
    h.log.clear();

    // Replay protection refuses used steps, not the user.
    h.now = NOW + 30;
    let next = totp_code(NOW + 30);
    assert_ne!(next, code);
    let mut third = ScriptedSession::new("alice", prompt_answered(&next));
    assert_eq!(h.login(&mut third, &[]), PamCode::Success);
    assert_eq!(h.state("alice").newest_totp_step(), Some(NOW / 30 + 1));
}

// ---------------------------------------------------------------------------
// Backup codes
// ---------------------------------------------------------------------------

#[test]
fn backup_code_succeeds_once_and_reports_what_is_left() {
    let mut h = Harness::new();
    let codes = h.enroll("alice");
    let code = &codes[3];
    let mut session = ScriptedSession::new(
        "alice",
        vec![
            Expect::prompt(PROMPT, code),
            Expect::info("Backup code accepted. 9 backup codes left."),
        ],
    );

    assert_eq!(h.login(&mut session, &[]), PamCode::Success);
    h.log
        .assert_single(Severity::Info, &["user=alice", "method=backup-code"]);
    h.log.assert_never_contains(code);
    h.log.assert_never_contains(&code.replace('-', ""));
    let state = h.state("alice");
    assert_eq!(state.spent_backup_codes.len(), 1);
    assert_eq!(state.last_success_method, Some(Method::BackupCode));
    h.log.clear();

    let mut again = ScriptedSession::new("alice", prompt_answered(code));
    assert_eq!(h.login(&mut again, &[]), PamCode::AuthError);
    h.log.assert_single(
        Severity::Warning,
        &["backup code already used", "user=alice"],
    );
    h.log.assert_never_contains(code);
}

#[test]
fn last_backup_codes_come_with_advice() {
    let mut h = Harness::new();
    let codes = h.enroll_with("alice", 2);
    let mut session = ScriptedSession::new(
        "alice",
        vec![
            Expect::info("Only 2 backup codes left: make new ones with `twofactor backup-codes`."),
            Expect::prompt(PROMPT, &codes[0].to_uppercase()),
            Expect::info(
                "Backup code accepted. 1 backup code left. \
                 Make new ones with `twofactor backup-codes`.",
            ),
        ],
    );
    assert_eq!(h.login(&mut session, &[]), PamCode::Success);
}

#[test]
fn running_out_of_backup_codes_is_said_before_the_prompt() {
    // Before the answer: OpenSSH shows it as part of the prompt, also to
    // clients that drop messages coming after the last prompt.
    for (count, spent, reminder) in [
        (4, 0, None),
        (4, 1, Some("Only 3 backup codes left")),
        (3, 2, Some("Only 1 backup code left")),
        (2, 2, Some("No backup codes left")),
        (0, 0, None),
    ] {
        let mut h = Harness::new();
        let codes = h.enroll_with("alice", count);
        // Spent quietly (PAM_SILENT), so that the script is only the prompt.
        h.silent = true;
        for code in codes.iter().take(spent) {
            let mut session = ScriptedSession::new("alice", prompt_answered(code));
            assert_eq!(h.login(&mut session, &[]), PamCode::Success);
        }
        h.silent = false;
        h.now += 30;
        let mut script = Vec::new();
        if let Some(reminder) = reminder {
            script.push(Expect::info(&format!(
                "{reminder}: make new ones with `twofactor backup-codes`."
            )));
        }
        script.extend(prompt_answered(&totp_code(h.now)));
        let mut session = ScriptedSession::new("alice", script);
        assert_eq!(
            h.login(&mut session, &[]),
            PamCode::Success,
            "{count} {spent}"
        );
        // Not under PAM_SILENT.
        h.silent = true;
        h.now += 30;
        let mut session = ScriptedSession::new("alice", prompt_answered(&totp_code(h.now)));
        assert_eq!(
            h.login(&mut session, &[]),
            PamCode::Success,
            "{count} {spent}"
        );
    }
}

#[test]
fn pam_silent_suppresses_the_backup_code_message_but_not_the_log() {
    let mut h = Harness::new();
    let codes = h.enroll("alice");
    h.silent = true;
    // No Info event in the script: a message would fail the test.
    let mut session = ScriptedSession::new("alice", prompt_answered(&codes[0]));

    assert_eq!(h.login(&mut session, &[]), PamCode::Success);
    h.log.assert_single(Severity::Info, &["method=backup-code"]);
}

// ---------------------------------------------------------------------------
// Users without a usable enrollment
// ---------------------------------------------------------------------------

#[test]
fn unknown_user_is_asked_then_refused() {
    let mut h = Harness::new();
    h.enroll("alice");
    // The prompt is shown anyway so the conversation does not tell who exists.
    let mut session = ScriptedSession::new("mallory", prompt_answered(&totp_code(NOW)));

    assert_eq!(h.login(&mut session, &[]), PamCode::UserUnknown);
    h.log.assert_single(
        Severity::Warning,
        &["second factor refused: unknown user", "user=mallory"],
    );
    assert!(
        !StateStore::new(h.state_dir())
            .state_path("mallory")
            .exists(),
        "no state for a user who does not exist"
    );
}

#[test]
fn unenrolled_user_is_asked_then_refused_by_default() {
    let mut h = Harness::new();
    h.add_user("bob");
    // An enrollment document with no factor in it counts as none.
    h.set_enrollment("carol", Ok(Some(Enrollment::default())));
    for user in ["bob", "carol"] {
        h.log.clear();
        let mut session = ScriptedSession::new(user, prompt_answered(&totp_code(NOW)));
        assert_eq!(h.login(&mut session, &[]), PamCode::AuthError, "{user}");
        h.log.assert_single(
            Severity::Warning,
            &[
                "no second factor enrolled (unenrolled = fail)",
                &format!("user={user}"),
            ],
        );
    }
}

#[test]
fn unenrolled_user_with_nullok_is_ignored_without_a_prompt() {
    let mut h = Harness::new();
    h.add_user("bob");
    let mut session = ScriptedSession::new("bob", vec![]);

    assert_eq!(h.login(&mut session, &["nullok"]), PamCode::Ignore);
    h.log.assert_single(
        Severity::Notice,
        &["passing on (unenrolled = ignore)", "user=bob"],
    );
}

#[test]
fn nullok_still_asks_enrolled_and_unknown_users() {
    let mut h = Harness::new();
    h.enroll("alice");

    let mut enrolled = ScriptedSession::new("alice", prompt_answered(&wrong_code(NOW)));
    assert_eq!(h.login(&mut enrolled, &["nullok"]), PamCode::AuthError);

    let mut unknown = ScriptedSession::new("mallory", prompt_answered(&totp_code(NOW)));
    assert_eq!(h.login(&mut unknown, &["nullok"]), PamCode::UserUnknown);
}

/// `enrollment_path` naming the default file, `enrollment.json`, under
/// which the old `enrollment.toml` is still read.
const DEFAULT_NAMED_PATH_ARG: &str = "enrollment_path=%h/.twofactor-test/%u/enrollment.json";

fn default_named_paths(user: &str) -> (PathBuf, PathBuf) {
    let dir = Harness::home(user).join(format!(".twofactor-test/{user}"));
    (dir.join("enrollment.json"), dir.join("enrollment.toml"))
}

fn other_totp_enrollment() -> Enrollment {
    Enrollment {
        totp: Some(TotpParams {
            secret: SecretBytes::new(vec![0x33; 20]),
            ..totp_params()
        }),
        ..Enrollment::default()
    }
}

#[test]
fn enrollment_in_the_old_default_file_is_read_when_the_json_file_is_absent() {
    let mut h = Harness::new();
    h.add_user("alice");
    let (_json, legacy) = default_named_paths("alice");
    let (enrollment, _) = enrollment_with(4);
    h.system.enrollments.insert(legacy, Ok(Some(enrollment)));

    let code = totp_code(NOW);
    let mut session = ScriptedSession::new("alice", prompt_answered(&code));
    assert_eq!(
        h.login(&mut session, &[DEFAULT_NAMED_PATH_ARG]),
        PamCode::Success
    );
    assert_eq!(h.state("alice").newest_totp_step(), Some(NOW / 30));

    // Only a file named enrollment.json has the old name as a fallback.
    h.log.clear();
    let mut elsewhere = ScriptedSession::new("alice", prompt_answered(&totp_code(NOW + 30)));
    assert_eq!(
        h.login(
            &mut elsewhere,
            &["enrollment_path=%h/.twofactor-test/%u/other.json"]
        ),
        PamCode::AuthError
    );
    h.log.assert_single(
        Severity::Warning,
        &[
            "no second factor enrolled (unenrolled = fail)",
            "user=alice",
        ],
    );
}

#[test]
fn enrollment_moved_between_the_two_reads_is_still_found() {
    let mut h = Harness::new();
    h.add_user("alice");
    let (json, _legacy) = default_named_paths("alice");
    let (enrollment, _) = enrollment_with(4);
    *h.system.move_in_flight.borrow_mut() = Some((json, enrollment));

    let mut session = ScriptedSession::new("alice", prompt_answered(&totp_code(NOW)));
    assert_eq!(
        h.login(&mut session, &[DEFAULT_NAMED_PATH_ARG, "nullok"]),
        PamCode::Success
    );
    h.log
        .assert_single(Severity::Info, &["second factor accepted", "user=alice"]);
}

#[test]
fn json_enrollment_wins_over_a_leftover_old_file() {
    let mut h = Harness::new();
    h.add_user("alice");
    let (json, legacy) = default_named_paths("alice");
    let (enrollment, _) = enrollment_with(4);
    h.system.enrollments.insert(json, Ok(Some(enrollment)));
    h.system
        .enrollments
        .insert(legacy, Ok(Some(other_totp_enrollment())));

    let leftover_code = other_totp_enrollment()
        .totp
        .unwrap()
        .code_at(NOW)
        .to_string();
    assert_ne!(leftover_code, totp_code(NOW));
    let mut stale = ScriptedSession::new("alice", prompt_answered(&leftover_code));
    assert_eq!(
        h.login(&mut stale, &[DEFAULT_NAMED_PATH_ARG]),
        PamCode::AuthError
    );

    let mut current = ScriptedSession::new("alice", prompt_answered(&totp_code(NOW)));
    assert_eq!(
        h.login(&mut current, &[DEFAULT_NAMED_PATH_ARG]),
        PamCode::Success
    );
}

#[test]
fn broken_json_enrollment_is_not_replaced_by_the_old_file() {
    let mut h = Harness::new();
    h.add_user("alice");
    let (json, legacy) = default_named_paths("alice");
    h.system
        .enrollments
        .insert(json.clone(), Err(Error::file(&json, FileProblem::Symlink)));
    let (enrollment, _) = enrollment_with(4);
    h.system.enrollments.insert(legacy, Ok(Some(enrollment)));

    let mut session = ScriptedSession::new("alice", prompt_answered(&totp_code(NOW)));
    assert_eq!(
        h.login(&mut session, &[DEFAULT_NAMED_PATH_ARG]),
        PamCode::AuthInfoUnavailable
    );
    h.log.assert_single(
        Severity::Error,
        &[json.to_str().unwrap(), "is a symbolic link (refused)"],
    );
}

#[test]
fn broken_old_enrollment_file_fails_closed_even_with_nullok() {
    let mut h = Harness::new();
    h.add_user("alice");
    let (_json, legacy) = default_named_paths("alice");
    h.system.enrollments.insert(
        legacy.clone(),
        Err(Error::file(&legacy, FileProblem::Symlink)),
    );

    let mut session = ScriptedSession::new("alice", prompt_answered(&totp_code(NOW)));
    assert_eq!(
        h.login(&mut session, &[DEFAULT_NAMED_PATH_ARG, "nullok"]),
        PamCode::AuthInfoUnavailable
    );
    h.log.assert_single(
        Severity::Error,
        &[legacy.to_str().unwrap(), "is a symbolic link (refused)"],
    );
}

#[test]
fn broken_enrollment_fails_closed_after_the_prompt() {
    let mut h = Harness::new();
    let path = Harness::enrollment_path("alice");
    h.set_enrollment("alice", Err(Error::file(&path, FileProblem::Symlink)));
    let expected = [
        path.to_str().unwrap(),
        "is a symbolic link (refused)",
        "user=alice",
    ];

    // nullok must not turn a hostile file into "not enrolled".
    for extra in [&[][..], &["nullok"]] {
        h.log.clear();
        let mut session = ScriptedSession::new("alice", prompt_answered(&totp_code(NOW)));
        assert_eq!(
            h.login(&mut session, extra),
            PamCode::AuthInfoUnavailable,
            "{extra:?}"
        );
        h.log.assert_single(Severity::Error, &expected);
    }

    h.log.clear();
    let mut session = ScriptedSession::new("alice", vec![]).with_authtok("pw123456");
    assert_eq!(
        h.login(&mut session, &["use_first_pass"]),
        PamCode::AuthInfoUnavailable
    );
    h.log.assert_single(Severity::Error, &expected);
    assert!(session.set_authtok_calls.is_empty());
}

// ---------------------------------------------------------------------------
// Conversation and arguments
// ---------------------------------------------------------------------------

#[test]
fn conversation_failure_at_the_prompt_is_a_conversation_error() {
    for error in [ConversationError::Failed, ConversationError::Unavailable] {
        let mut h = Harness::new();
        h.enroll("alice");
        let mut session =
            ScriptedSession::new("alice", vec![Expect::prompt_failing(PROMPT, error)]);

        assert_eq!(
            h.login(&mut session, &[]),
            PamCode::ConversationError,
            "{error:?}"
        );
        h.log
            .assert_single(Severity::Warning, &["conversation failed", "user=alice"]);
        // Nobody typed anything: nothing is counted as a failed attempt.
        assert_eq!(h.state("alice"), LoginState::default());
    }
}

#[test]
fn missing_user_name_is_a_conversation_error_without_a_prompt() {
    let mut h = Harness::new();
    h.enroll("alice");
    let mut session = ScriptedSession::new("alice", vec![]);
    session.user = None;

    assert_eq!(h.login(&mut session, &[]), PamCode::ConversationError);
    h.log
        .assert_single(Severity::Error, &["could not obtain the user name"]);
}

#[test]
fn bad_module_argument_is_a_service_error_without_a_prompt() {
    let mut h = Harness::new();
    h.enroll("alice");
    for bad in [
        &["debugg"][..],
        &["windw=1"],
        &["window=7"],
        &["unenrolled=sometimes"],
        &["config=relative.toml"],
        &["try_first_pass", "use_first_pass"],
        &["state_dir=relative/state"],
    ] {
        h.log.clear();
        let mut session = ScriptedSession::new("alice", vec![]);
        assert_eq!(h.login(&mut session, bad), PamCode::ServiceError, "{bad:?}");
        h.log
            .assert_single(Severity::Error, &["refusing all logins"]);
    }
}

#[test]
fn missing_or_unsafe_config_file_is_a_service_error_without_a_prompt() {
    let mut h = Harness::new();
    h.enroll("alice");

    let missing = h.dir.path().join("missing.toml");
    let mut session = ScriptedSession::new("alice", vec![]);
    let arg = format!("config={}", missing.display());
    assert_eq!(h.login(&mut session, &[&arg]), PamCode::ServiceError);
    h.log.assert_single(
        Severity::Error,
        &[missing.to_str().unwrap(), "does not exist"],
    );

    h.log.clear();
    let writable = h.dir.path().join("writable.toml");
    fs::write(&writable, "window = 4\n").unwrap();
    fs::set_permissions(&writable, fs::Permissions::from_mode(0o666)).unwrap();
    let reason = if euid() == 0 {
        "unsafe permissions 0666"
    } else {
        "owned by uid"
    };
    let mut session = ScriptedSession::new("alice", vec![]);
    let arg = format!("config={}", writable.display());
    assert_eq!(h.login(&mut session, &[&arg]), PamCode::ServiceError);
    h.log
        .assert_single(Severity::Error, &[writable.to_str().unwrap(), reason]);
}

#[test]
fn log_lines_escape_what_the_client_chose() {
    let mut h = Harness::new();
    h.enroll("alice");
    let mut session = ScriptedSession::new("alice", prompt_answered(&totp_code(NOW)));
    session.remote_host = Some("evil host\nfake=1".into());
    session.remote_user = Some("root".into());
    session.tty = Some(String::new());

    assert_eq!(h.login(&mut session, &[]), PamCode::Success);
    h.log.assert_single(
        Severity::Info,
        &["rhost=evil\\x20host\\x0afake=1", "ruser=root"],
    );
    let line = &h.log.lines[0].1;
    assert!(!line.contains('\n') && !line.contains("tty="), "{line:?}");
}

// ---------------------------------------------------------------------------
// PAM_AUTHTOK: use_first_pass, try_first_pass, forward_pass
// ---------------------------------------------------------------------------

#[test]
fn use_first_pass_takes_password_and_code_from_authtok() {
    let mut h = Harness::new();
    h.enroll("alice");
    let code = totp_code(NOW);
    let token = format!("pw{code}");
    let mut session = ScriptedSession::new("alice", vec![]).with_authtok(&token);

    assert_eq!(h.login(&mut session, &["use_first_pass"]), PamCode::Success);
    assert_eq!(session.set_authtok_calls, vec![Some("pw".to_string())]);
    h.log.assert_single(Severity::Info, &["method=totp"]);
    h.log.assert_never_contains(&code);
    assert_eq!(h.state("alice").newest_totp_step(), Some(NOW / 30));
}

#[test]
fn a_token_that_is_only_a_code_is_cleared_not_handed_on() {
    let mut h = Harness::new();
    h.enroll("alice");
    let code = totp_code(NOW);
    let mut session = ScriptedSession::new("alice", vec![]).with_authtok(&code);

    assert_eq!(h.login(&mut session, &["use_first_pass"]), PamCode::Success);
    assert_eq!(session.set_authtok_calls, vec![None]);
}

#[test]
fn use_first_pass_without_authtok_refuses_without_a_prompt() {
    let mut h = Harness::new();
    h.enroll("alice");
    for authtok in [None, Some("")] {
        h.log.clear();
        let mut session = ScriptedSession::new("alice", vec![]);
        session.authtok = authtok.map(String::from);
        assert_eq!(
            h.login(&mut session, &["use_first_pass"]),
            PamCode::AuthError,
            "{authtok:?}"
        );
        h.log.assert_single(
            Severity::Warning,
            &[
                "no usable code in PAM_AUTHTOK (use_first_pass)",
                "user=alice",
            ],
        );
        assert!(session.set_authtok_calls.is_empty());
    }
}

#[test]
fn use_first_pass_with_a_wrong_token_counts_a_failure_without_a_prompt() {
    let mut h = Harness::new();
    h.enroll("alice");
    let mut session = ScriptedSession::new("alice", vec![]).with_authtok("hunter2");

    assert_eq!(
        h.login(&mut session, &["use_first_pass"]),
        PamCode::AuthError
    );
    h.log.assert_single(Severity::Warning, &["wrong code"]);
    h.log.assert_never_contains("hunter2");
    assert_eq!(
        h.state("alice")
            .failures
            .iter()
            .map(|f| f.time)
            .collect::<Vec<_>>(),
        vec![NOW]
    );
    assert!(session.set_authtok_calls.is_empty());
}

#[test]
fn try_first_pass_with_a_plain_password_asks_for_the_code() {
    let mut h = Harness::new();
    h.enroll("alice");
    let mut session =
        ScriptedSession::new("alice", prompt_answered(&totp_code(NOW))).with_authtok("hunter2");

    assert_eq!(h.login(&mut session, &["try_first_pass"]), PamCode::Success);
    // The password was not an attempt at a code: not logged, not counted.
    h.log.assert_single(Severity::Info, &["method=totp"]);
    h.log.assert_never_contains("hunter2");
    assert!(h.state("alice").failures.is_empty());
    // A code-only answer leaves PAM_AUTHTOK alone.
    assert!(session.set_authtok_calls.is_empty());
    assert_eq!(session.authtok.as_deref(), Some("hunter2"));
}

#[test]
fn try_first_pass_with_password_and_code_needs_no_prompt() {
    let mut h = Harness::new();
    let codes = h.enroll("alice");
    let token = format!("pass word{}", codes[5]);
    let mut session = ScriptedSession::new(
        "alice",
        vec![Expect::info("Backup code accepted. 9 backup codes left.")],
    )
    .with_authtok(&token);

    assert_eq!(h.login(&mut session, &["try_first_pass"]), PamCode::Success);
    assert_eq!(
        session.set_authtok_calls,
        vec![Some("pass word".to_string())]
    );
    h.log.assert_single(Severity::Info, &["method=backup-code"]);
    h.log.assert_never_contains(&codes[5]);
}

#[test]
fn forward_pass_asks_for_both_and_hands_on_the_password() {
    let mut h = Harness::new();
    h.enroll("alice");
    let code = totp_code(NOW);
    let mut session = ScriptedSession::new(
        "alice",
        vec![Expect::prompt(
            DEFAULT_FORWARD_PASS_PROMPT,
            &format!("correct horse{code}"),
        )],
    );

    assert_eq!(h.login(&mut session, &["forward_pass"]), PamCode::Success);
    assert_eq!(
        session.set_authtok_calls,
        vec![Some("correct horse".to_string())]
    );
    h.log.assert_single(Severity::Info, &["method=totp"]);
    h.log.assert_never_contains("correct horse");
    h.log.assert_never_contains(&code);
}

#[test]
fn forward_pass_keeps_a_custom_prompt() {
    let mut h = Harness::new();
    h.enroll("alice");
    let mut session = ScriptedSession::new(
        "alice",
        vec![Expect::prompt(
            "Password+OTP: ",
            &format!("pw{}", totp_code(NOW)),
        )],
    );

    assert_eq!(
        h.login(&mut session, &["forward_pass", "prompt=Password+OTP: "]),
        PamCode::Success
    );
    assert_eq!(session.set_authtok_calls, vec![Some("pw".to_string())]);
}

#[test]
fn forward_pass_with_a_wrong_code_hands_on_nothing() {
    let mut h = Harness::new();
    h.enroll("alice");
    let mut session = ScriptedSession::new(
        "alice",
        vec![Expect::prompt(
            DEFAULT_FORWARD_PASS_PROMPT,
            &format!("pw{}", wrong_code(NOW)),
        )],
    );

    assert_eq!(h.login(&mut session, &["forward_pass"]), PamCode::AuthError);
    assert!(session.set_authtok_calls.is_empty());
    h.log.assert_single(Severity::Warning, &["wrong code"]);
}

#[test]
fn failing_to_hand_on_the_password_is_logged_but_the_factor_counts() {
    let mut h = Harness::new();
    h.enroll("alice");
    let mut session = ScriptedSession::new(
        "alice",
        vec![Expect::prompt(
            DEFAULT_FORWARD_PASS_PROMPT,
            &format!("pw{}", totp_code(NOW)),
        )],
    );
    session.set_authtok_fails = true;

    assert_eq!(h.login(&mut session, &["forward_pass"]), PamCode::Success);
    assert_eq!(
        h.log.at(Severity::Error),
        vec!["could not pass the password on as PAM_AUTHTOK: user=alice rhost=192.0.2.7 tty=ssh"]
    );
    assert_eq!(h.log.at(Severity::Info).len(), 1);
}

// ---------------------------------------------------------------------------
// The login state directory
// ---------------------------------------------------------------------------

#[test]
fn world_writable_state_dir_fails_closed() {
    let mut h = Harness::new();
    h.enroll("alice");
    fs::create_dir(h.state_dir()).unwrap();
    fs::set_permissions(h.state_dir(), fs::Permissions::from_mode(0o777)).unwrap();
    let code = totp_code(NOW);
    let mut session = ScriptedSession::new("alice", prompt_answered(&code));

    assert_eq!(h.login(&mut session, &[]), PamCode::AuthInfoUnavailable);
    h.log.assert_single(
        Severity::Error,
        &[
            "login state unusable",
            h.state_dir().to_str().unwrap(),
            "unsafe permissions 0777",
            "user=alice",
        ],
    );
    h.log.assert_never_contains(&code);
}

#[test]
fn unusable_state_fails_closed_before_asking_when_there_is_an_authtok() {
    for mode in ["try_first_pass", "use_first_pass"] {
        let mut h = Harness::new();
        h.enroll("alice");
        fs::create_dir(h.state_dir()).unwrap();
        fs::set_permissions(h.state_dir(), fs::Permissions::from_mode(0o777)).unwrap();
        // Even a plain password under try_first_pass: the state cannot be
        // trusted, so asking for a code would be pointless.
        let mut session = ScriptedSession::new("alice", vec![]).with_authtok("hunter2");

        assert_eq!(
            h.login(&mut session, &[mode]),
            PamCode::AuthInfoUnavailable,
            "{mode}"
        );
        h.log
            .assert_single(Severity::Error, &["login state unusable", "user=alice"]);
        assert!(session.set_authtok_calls.is_empty());
    }
}

#[test]
fn symlinked_state_dir_fails_closed() {
    let mut h = Harness::new();
    h.enroll("alice");
    let real = h.dir.path().join("real-state");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&real, h.state_dir()).unwrap();
    let mut session = ScriptedSession::new("alice", prompt_answered(&totp_code(NOW)));

    assert_eq!(h.login(&mut session, &[]), PamCode::AuthInfoUnavailable);
    h.log
        .assert_single(Severity::Error, &["login state unusable", "symbolic link"]);
    assert_eq!(fs::read_dir(&real).unwrap().count(), 0, "nothing written");
}

#[test]
fn state_dir_is_created_root_owned_and_unlistable() {
    let mut h = Harness::new();
    h.enroll("alice");
    assert!(!h.state_dir().exists());
    let mut session = ScriptedSession::new("alice", prompt_answered(&totp_code(NOW)));

    assert_eq!(h.login(&mut session, &[]), PamCode::Success);
    let mode = fs::metadata(h.state_dir()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o711);
}

// Security keys: the flow driven by the software authenticator.
mod fido2_flow;

// ---------------------------------------------------------------------------
// Grace period
// ---------------------------------------------------------------------------

/// A harness whose only configuration is the default path with a grace
/// period, and a verified login from `alice`'s terminal one minute ago.
fn grace_harness(terminal_session: Option<TerminalSession>) -> Harness {
    let mut h = Harness::new();
    h.enroll("alice");
    h.system.default_config = Config {
        prompt: PROMPT.into(),
        state_dir: h.state_dir().to_string_lossy().into_owned(),
        enrollment_path: ENROLLMENT_TEMPLATE.into(),
        grace_period: 300,
        ..Config::default()
    };
    h.base_args.clear();
    h.system.terminal_session = terminal_session;
    let mut session = local_session(prompt_answered(&totp_code(NOW - 60)));
    h.now = NOW - 60;
    assert_eq!(h.login(&mut session, &[]), PamCode::Success);
    h.now = NOW;
    h.log.clear();
    h
}

fn local_session(script: Vec<Expect>) -> ScriptedSession {
    let mut session = ScriptedSession::new("alice", script);
    session.remote_host = None;
    session.tty = Some("/dev/tty3".into());
    session
}

#[test]
fn grace_applies_within_the_same_terminal_session() {
    let session_id = TerminalSession {
        id: 4242,
        leader_start: 77,
    };
    let mut h = grace_harness(Some(session_id));
    let mut again = local_session(vec![]);
    assert_eq!(h.login(&mut again, &[]), PamCode::Success);
    h.log.assert_single(
        Severity::Info,
        &["within the grace period of 300 s", "tty=/dev/tty3"],
    );
}

#[test]
fn grace_is_not_applied_when_the_terminal_session_cannot_be_seen() {
    let mut h = grace_harness(None);
    let mut again = local_session(prompt_answered(&totp_code(NOW + 30)));
    h.now = NOW + 30;
    assert_eq!(h.login(&mut again, &[]), PamCode::Success);
    let said = h.log.at(Severity::Info);
    assert!(
        said.iter()
            .any(|line| line.starts_with("grace period not applied")
                && line.contains("terminal session's leader is not visible")
                && line.contains("user=alice")),
        "{said:#?}"
    );
}
