//! The scenarios, and running one of them: preparing each iteration (outside
//! the measured region) and checking its outcome.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::builder::PossibleValue;
use clap::ValueEnum;
use data_encoding::BASE32_NOPAD;
use twofactor_core::enrollment::Enrollment;
use twofactor_core::secret::SecretBytes;
use twofactor_core::shared_state::account_keys;
use twofactor_core::state::LoginState;
use twofactor_core::totp::{Algorithm, TotpParams};
use twofactor_integration_tests::fixtures::{Enrolled, Stack};
use twofactor_integration_tests::pam_client::{self, code::SUCCESS, Attempt, AttemptResult};
use twofactor_integration_tests::users::TestUser;

use crate::context::{replace_file, Ctx};

/// Test-clock base of our scenarios (a multiple of 30, in 2030).
pub const T0: u64 = 1_900_000_020;
/// Test-clock time of the locked-out scenario's failures.
pub const T_LOCK: u64 = 1_800_000_000;
/// Spacing of failed attempts: under the default limits (5 code failures per
/// 900 s, 10 backup-code failures per 3600 s) a lockout never starts, so every
/// wrong answer is really checked.
const FAILURE_SPACING: u64 = 361;
/// Failures a wrong-code login finds in its state: with FAILURE_SPACING
/// under the 900 s window, the two previous ones.
const KEPT_FAILURES: usize = 2;
/// Iterations before the measured ones in each warm run.
pub const WARMUP: u64 = 10;

/// One login, the only code callgrind counts (`--toggle-collect`). Kept out
/// of line and with its result forced to memory, so it is a real frame.
#[no_mangle]
#[inline(never)]
pub fn pam_bench_measured_login(
    confdir: &Path,
    service: &str,
    user: &str,
    attempt: &Attempt,
) -> AttemptResult {
    let result = pam_client::authenticate(std::hint::black_box(confdir), service, user, attempt);
    std::hint::black_box(result)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Permit,
    Ours,
    Ga,
    Oath,
    /// Ours with the login state on Redis (`state_backend = "redis"`).
    Fleet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    Permit,
    TotpOk,
    TotpWrong,
    BackupOk,
    BackupWrong,
    Unenrolled,
    Locked,
    TotpOkCrowded,
    GaTotpOk,
    GaTotpWrong,
    GaScratchOk,
    GaScratchWrong,
    GaUnenrolled,
    OathOk,
    OathWrong,
    OathUnenrolled,
    FleetTotpOk,
    FleetTotpWrong,
}

pub const ALL: [Scenario; 18] = [
    Scenario::Permit,
    Scenario::TotpOk,
    Scenario::TotpWrong,
    Scenario::BackupOk,
    Scenario::BackupWrong,
    Scenario::Unenrolled,
    Scenario::Locked,
    Scenario::TotpOkCrowded,
    Scenario::GaTotpOk,
    Scenario::GaTotpWrong,
    Scenario::GaScratchOk,
    Scenario::GaScratchWrong,
    Scenario::GaUnenrolled,
    Scenario::OathOk,
    Scenario::OathWrong,
    Scenario::OathUnenrolled,
    Scenario::FleetTotpOk,
    Scenario::FleetTotpWrong,
];

/// Our scenarios the leak check cycles through.
pub const LEAK_MIX: [Scenario; 5] = [
    Scenario::TotpOk,
    Scenario::TotpWrong,
    Scenario::BackupOk,
    Scenario::BackupWrong,
    Scenario::Unenrolled,
];

/// `--only` and `--scenario` take the names of the report.
impl ValueEnum for Scenario {
    fn value_variants<'a>() -> &'a [Self] {
        &ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Permit => "pam_permit",
            Scenario::TotpOk => "totp-correct",
            Scenario::TotpWrong => "totp-wrong",
            Scenario::BackupOk => "backup-valid",
            Scenario::BackupWrong => "backup-invalid",
            Scenario::Unenrolled => "unenrolled",
            Scenario::Locked => "locked-out",
            Scenario::TotpOkCrowded => "totp-correct-10k",
            Scenario::GaTotpOk => "ga/totp-correct",
            Scenario::GaTotpWrong => "ga/totp-wrong",
            Scenario::GaScratchOk => "ga/scratch-valid",
            Scenario::GaScratchWrong => "ga/scratch-invalid",
            Scenario::GaUnenrolled => "ga/unenrolled",
            Scenario::OathOk => "oath/totp-correct",
            Scenario::OathWrong => "oath/totp-wrong",
            Scenario::OathUnenrolled => "oath/unenrolled",
            Scenario::FleetTotpOk => "fleet/totp-correct",
            Scenario::FleetTotpWrong => "fleet/totp-wrong",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Scenario::Permit => Family::Permit,
            Scenario::TotpOk
            | Scenario::TotpWrong
            | Scenario::BackupOk
            | Scenario::BackupWrong
            | Scenario::Unenrolled
            | Scenario::Locked
            | Scenario::TotpOkCrowded => Family::Ours,
            Scenario::GaTotpOk
            | Scenario::GaTotpWrong
            | Scenario::GaScratchOk
            | Scenario::GaScratchWrong
            | Scenario::GaUnenrolled => Family::Ga,
            Scenario::OathOk | Scenario::OathWrong | Scenario::OathUnenrolled => Family::Oath,
            Scenario::FleetTotpOk | Scenario::FleetTotpWrong => Family::Fleet,
        }
    }

    /// The test account of the scenario (each has its own state). A fleet
    /// scenario shares its local twin's account (its files are in a stack
    /// of their own): looking an account up in /etc/passwd costs more the
    /// later it stands there, and the difference of the two scenarios
    /// would count that too.
    pub fn user_index(self) -> u32 {
        let account_of = match self {
            Scenario::FleetTotpOk => Scenario::TotpOk,
            Scenario::FleetTotpWrong => Scenario::TotpWrong,
            s => s,
        };
        ALL.iter().position(|s| *s == account_of).unwrap_or(0) as u32
    }

    fn expects_success(self) -> bool {
        matches!(
            self,
            Scenario::Permit
                | Scenario::TotpOk
                | Scenario::TotpOkCrowded
                | Scenario::BackupOk
                | Scenario::GaTotpOk
                | Scenario::GaScratchOk
                | Scenario::OathOk
                | Scenario::FleetTotpOk
        )
    }

    /// The equivalent scenarios of the other modules, for ratios.
    pub fn peers(self) -> &'static [Scenario] {
        match self {
            Scenario::TotpOk | Scenario::TotpOkCrowded => &[Scenario::GaTotpOk, Scenario::OathOk],
            Scenario::TotpWrong => &[Scenario::GaTotpWrong, Scenario::OathWrong],
            Scenario::BackupOk => &[Scenario::GaScratchOk],
            Scenario::BackupWrong => &[Scenario::GaScratchWrong],
            Scenario::Unenrolled => &[Scenario::GaUnenrolled, Scenario::OathUnenrolled],
            _ => &[],
        }
    }

    /// Iterations of a warm callgrind run, from the base count.
    pub fn callgrind_iterations(self, base: u64) -> u64 {
        if self == Scenario::GaTotpWrong {
            (base / 10).max(3)
        } else {
            base
        }
    }

    /// Iterations of a warm wall-time run, from the base count.
    pub fn wall_iterations(self, base: u64) -> u64 {
        if self == Scenario::GaTotpWrong {
            (base / 10).max(20)
        } else {
            base
        }
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSL` in UTC (pam_oath's timestamp; the bench runs with
/// TZ=UTC so liboath's local time is UTC too).
fn oath_timestamp(t: u64) -> String {
    let days = (t / 86400) as i64;
    let secs = t % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}L",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

fn sha1_totp(secret: &[u8]) -> TotpParams {
    TotpParams {
        secret: SecretBytes::new(secret.to_vec()),
        algorithm: Algorithm::SHA1,
        digits: 6,
        period: 30,
    }
}

pub fn code_at(totp: &TotpParams, t: u64) -> String {
    totp.code_at(t).to_string()
}

/// A 6-digit code that is not the code of `t` nor of the steps beside it.
pub fn wrong_code(totp: &TotpParams, t: u64) -> String {
    let near: Vec<String> = [t.saturating_sub(30), t, t + 30]
        .iter()
        .map(|&s| code_at(totp, s))
        .collect();
    let mut candidate: u32 = rand::random::<u32>() % 1_000_000;
    loop {
        let text = format!("{candidate:06}");
        if !near.contains(&text) {
            return text;
        }
        candidate = (candidate + 1) % 1_000_000;
    }
}

/// A well-formed backup code that matches nothing.
pub fn random_backup_code() -> String {
    let alphabet = twofactor_core::backup::ALPHABET;
    let mut out = String::new();
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(alphabet[(rand::random::<u8>() & 31) as usize]));
    }
    out
}

/// A test account, looked up in the namespace's passwd (works in the
/// subprocesses too, which did not create the accounts).
pub fn test_user(index: u32) -> TestUser {
    let name = format!("tf-user{index}");
    let user = nix::unistd::User::from_name(&name)
        .expect("getpwnam")
        .unwrap_or_else(|| panic!("{name} does not exist: not inside the bench namespace?"));
    TestUser {
        name,
        uid: user.uid.as_raw(),
        home: user.dir,
    }
}

pub fn read_totp(stack: &Stack, user: &TestUser) -> TotpParams {
    let path = stack.enrollment_path(user);
    let text = fs::read_to_string(&path).expect("read enrollment");
    Enrollment::parse(&text, &path.display().to_string())
        .expect("parse enrollment")
        .totp
        .expect("TOTP enrolled")
}

pub fn ga_file(ctx: &Ctx, user: &TestUser) -> PathBuf {
    ctx.ga_dir.join(&user.name).join(".google_authenticator")
}

/// GA's file as after a login one step before `now`: the secret (base32),
/// reuse protection holding the previous step, TOTP, the scratch codes.
fn ga_file_text(secret: &[u8], scratch: &[String], now: u64) -> String {
    let step = now / 30;
    let mut text = format!(
        "{}\n\" DISALLOW_REUSE {}\n\" TOTP_AUTH\n",
        BASE32_NOPAD.encode(secret),
        step - 1
    );
    for code in scratch {
        text.push_str(code);
        text.push('\n');
    }
    text
}

/// One line of pam_oath's users file as after a login one step before
/// `now`: counter, last OTP and its time filled in, so a replay is refused.
fn oath_line(user: &str, secret: &[u8], now: u64) -> String {
    let previous = now - 30;
    format!(
        "HOTP/T30/6\t{user}\t-\t{}\t{}\t{}\t{}\n",
        hex::encode(secret),
        previous / 30,
        code_at(&sha1_totp(secret), previous),
        oath_timestamp(previous)
    )
}

pub fn write_oath_usersfile(ctx: &Ctx, now: u64) {
    let text: String = [Scenario::OathOk, Scenario::OathWrong]
        .iter()
        .map(|s| oath_line(&format!("tf-user{}", s.user_index()), &ctx.oath_secret, now))
        .collect();
    replace_file(&ctx.oath_usersfile, &text, 0, 0o600);
}

pub struct Runner<'a> {
    ctx: &'a Ctx,
    scenario: Scenario,
    pub user: TestUser,
    totp: Option<TotpParams>,
    backup_pool: Vec<String>,
    /// The Redis server of the fleet scenarios, to prepare the shared state.
    shared: Option<redis::Connection>,
}

impl<'a> Runner<'a> {
    pub fn new(ctx: &'a Ctx, scenario: Scenario) -> Self {
        let user = test_user(scenario.user_index());
        let mut runner = Runner {
            ctx,
            scenario,
            user,
            totp: None,
            backup_pool: Vec::new(),
            shared: None,
        };
        match scenario.family() {
            Family::Ours if scenario != Scenario::Unenrolled => {
                if scenario == Scenario::BackupOk {
                    runner.provision_backup_codes();
                }
                runner.totp = Some(read_totp(runner.stack(), &runner.user));
            }
            Family::Fleet => {
                runner.totp = Some(read_totp(runner.stack(), &runner.user));
                if scenario == Scenario::FleetTotpWrong {
                    runner.shared = Some(ctx.fleet().admin());
                }
            }
            Family::Ga => runner.totp = Some(sha1_totp(&ctx.ga_secret)),
            Family::Oath => runner.totp = Some(sha1_totp(&ctx.oath_secret)),
            _ => {}
        }
        runner
    }

    fn provision_backup_codes(&mut self) {
        let enrolled = Enrolled::standard();
        self.ctx.ours.enroll(&self.user, &enrolled);
        self.backup_pool = enrolled.backup_codes.clone();
        self.backup_pool.reverse();
    }

    /// Our stack of the scenario.
    fn stack(&self) -> &'a Stack {
        match self.scenario {
            Scenario::TotpOkCrowded => &self.ctx.ours_crowded,
            Scenario::FleetTotpOk | Scenario::FleetTotpWrong => &self.ctx.fleet().stack,
            _ => &self.ctx.ours,
        }
    }

    pub fn service(&self) -> (&'a Path, &'a str) {
        if matches!(self.scenario.family(), Family::Ours | Family::Fleet) {
            let stack = self.stack();
            return (&stack.confdir, &stack.service);
        }
        self.ctx.service_of(self.scenario.family())
    }

    fn totp(&self) -> &TotpParams {
        self.totp.as_ref().expect("scenario without TOTP")
    }

    /// Prepare iteration `i` and return what to answer.
    pub fn attempt(&mut self, i: u64) -> Attempt {
        let with_clock = |answer: String, now: u64| Attempt {
            answers: vec![answer],
            env: vec![format!("PAM_TWOFACTOR_TEST_NOW={now}")],
            ..Attempt::default()
        };
        let plain = |answer: String| Attempt {
            answers: vec![answer],
            ..Attempt::default()
        };
        match self.scenario {
            Scenario::Permit => Attempt::default(),
            Scenario::TotpOk | Scenario::TotpOkCrowded | Scenario::FleetTotpOk => {
                let now = T0 + 15 + i * 30;
                with_clock(code_at(self.totp(), now), now)
            }
            Scenario::FleetTotpWrong => {
                self.forget_old_shared_failures();
                let now = T0 + 15 + i * FAILURE_SPACING;
                with_clock(wrong_code(self.totp(), now), now)
            }
            Scenario::TotpWrong => {
                let now = T0 + 15 + i * FAILURE_SPACING;
                with_clock(wrong_code(self.totp(), now), now)
            }
            Scenario::BackupOk => {
                if self.backup_pool.is_empty() {
                    self.provision_backup_codes();
                }
                let now = T0 + 15 + i * 30;
                with_clock(self.backup_pool.pop().expect("codes"), now)
            }
            Scenario::BackupWrong => {
                let now = T0 + 15 + i * FAILURE_SPACING;
                with_clock(random_backup_code(), now)
            }
            Scenario::Unenrolled => with_clock("123456".into(), T0),
            Scenario::Locked => {
                let now = T_LOCK + 30;
                with_clock(wrong_code(self.totp(), now), now)
            }
            Scenario::GaTotpOk => {
                let now = unix_now();
                self.reset_ga(now);
                plain(code_at(self.totp(), now))
            }
            Scenario::GaTotpWrong => {
                let now = unix_now();
                self.reset_ga(now);
                plain(wrong_code(self.totp(), now))
            }
            Scenario::GaScratchOk => {
                self.reset_ga(unix_now());
                let codes = &self.ctx.ga_scratch;
                plain(codes[(i as usize) % codes.len()].clone())
            }
            Scenario::GaScratchWrong => {
                self.reset_ga(unix_now());
                let mut code;
                loop {
                    code = format!("{}", 90_000_000 + rand::random::<u32>() % 10_000_000);
                    if !self.ctx.ga_scratch.contains(&code) {
                        break;
                    }
                }
                plain(code)
            }
            Scenario::GaUnenrolled => plain("123456".into()),
            Scenario::OathOk => {
                let now = unix_now();
                write_oath_usersfile(self.ctx, now);
                plain(code_at(self.totp(), now))
            }
            Scenario::OathWrong => {
                let now = unix_now();
                write_oath_usersfile(self.ctx, now);
                plain(wrong_code(self.totp(), now))
            }
            Scenario::OathUnenrolled => plain("123456".into()),
        }
    }

    /// The shared state as the local one is before a wrong-code login of
    /// [`Scenario::TotpWrong`]: holding the two previous failures. Failure
    /// windows run on the Redis server's clock, which the test clock does
    /// not move, so without this the default limits (5 failures per 900 s)
    /// would lock the user out after five logins and every later one would
    /// be refused unchecked.
    fn forget_old_shared_failures(&mut self) {
        let fleet = self.ctx.fleet();
        let (key, _) = account_keys(&fleet.key_prefix, &self.user.name);
        let con = self.shared.as_mut().expect("fleet connection");
        let text: Option<String> = redis::cmd("GET").arg(&key).query(con).expect("GET");
        let Some(text) = text else { return };
        let mut state = LoginState::parse(&text, &key).expect("shared state");
        let excess = state.failures.len().saturating_sub(KEPT_FAILURES);
        if excess > 0 {
            // Recorded in time order: the oldest come first.
            state.failures.drain(..excess);
            redis::cmd("SET")
                .arg(&key)
                .arg(state.to_text())
                .query::<()>(con)
                .expect("SET");
        }
    }

    /// GA's state as after a login one step earlier.
    fn reset_ga(&self, now: u64) {
        let text = ga_file_text(&self.ctx.ga_secret, &self.ctx.ga_scratch, now);
        replace_file(&ga_file(self.ctx, &self.user), &text, self.user.uid, 0o400);
    }

    fn check(&self, i: u64, result: &AttemptResult) {
        let ok = result.code == SUCCESS;
        assert_eq!(
            ok,
            self.scenario.expects_success(),
            "{}: iteration {i} returned {} ({:?})",
            self.scenario.name(),
            result.code,
            result.shown
        );
    }

    /// One unmeasured login (warm-up).
    pub fn warm(&mut self, i: u64) {
        let attempt = self.attempt(i);
        let (confdir, service) = self.service();
        let result = pam_client::authenticate(confdir, service, &self.user.name, &attempt);
        self.check(i, &result);
    }

    /// One measured login; returns its wall time.
    pub fn measured(&mut self, i: u64) -> Duration {
        let attempt = self.attempt(i);
        let (confdir, service) = self.service();
        let start = Instant::now();
        let result = pam_bench_measured_login(confdir, service, &self.user.name, &attempt);
        let elapsed = start.elapsed();
        self.check(i, &result);
        elapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238's SHA-1 key, as GA and pam_oath would be given it.
    const RFC_KEY: &[u8] = b"12345678901234567890";

    #[test]
    fn ga_file_holds_the_base32_secret_the_previous_step_and_the_scratch_codes() {
        let scratch = vec!["12345678".to_string(), "87654321".to_string()];
        assert_eq!(
            ga_file_text(RFC_KEY, &scratch, 59),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n\" DISALLOW_REUSE 0\n\" TOTP_AUTH\n\
             12345678\n87654321\n"
        );
    }

    #[test]
    fn oath_line_holds_the_hex_secret_and_the_previous_login() {
        // RFC 6238 appendix B: 94287082 at T = 59 s, so 287082 in 6 digits.
        assert_eq!(
            oath_line("tf-user13", RFC_KEY, 89),
            "HOTP/T30/6\ttf-user13\t-\t3132333435363738393031323334353637383930\t1\t287082\t\
             1970-01-01T00:00:59L\n"
        );
        assert_eq!(oath_timestamp(1_900_000_020), "2030-03-17T17:47:00L");
        assert_eq!(oath_timestamp(951_782_400), "2000-02-29T00:00:00L");
    }

    #[test]
    fn scenario_names_round_trip_and_users_are_distinct() {
        for s in ALL {
            assert_eq!(Scenario::from_str(s.name(), false), Ok(s));
        }
        let (fleet, others): (Vec<Scenario>, Vec<Scenario>) =
            ALL.iter().partition(|s| s.family() == Family::Fleet);
        let users: std::collections::BTreeSet<u32> =
            others.iter().map(|s| s.user_index()).collect();
        assert_eq!(users.len(), others.len());
        assert_eq!(
            fleet.iter().map(|s| s.user_index()).collect::<Vec<_>>(),
            [
                Scenario::TotpOk.user_index(),
                Scenario::TotpWrong.user_index()
            ]
        );
    }
}
