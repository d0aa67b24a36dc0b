//! `pam_bench`: the cost of a login through pam_twofactor, measured through
//! the real libpam, side by side with `pam_permit`, pam_google_authenticator
//! and pam_oath (when installed). Run it with `sudo scripts/bench.sh`.
//!
//! Every login is one `pam_start_confdir` + `pam_authenticate` (+
//! `pam_setcred` after a success) + `pam_end`, as in one sshd connection.
//! Everything runs inside the test harness's private mount namespace, whose
//! `/dev/log` is a socket this program drains (without one, every syslog
//! line would cost a console write).
//!
//! What is measured, per scenario:
//! - wall time per login in one long-running process ("warm": the module
//!   was loaded by an earlier login), median and p99;
//! - wall time of the first login through the module in a fresh process
//!   ("cold": one process per sample, after one `pam_permit` transaction so
//!   libpam itself is warm): the module's load cost is in it, as it is in
//!   every sshd connection;
//! - callgrind instructions per login, warm and cold. The measured region is
//!   the function [`pam_bench_measured_login`] alone, selected with
//!   `--collect-atstart=no --toggle-collect=pam_bench_measured_login`, so the
//!   preparation of each iteration (state resets, code computation) is not
//!   counted. A few scenarios are cross-checked by differencing whole runs
//!   of N and 0 iterations.
//!
//! Plus a concurrency benchmark (many processes, different users and one
//! user, with the state checked for lost updates) and a leak check (memcheck
//! over many logins in one process, and RSS sampled along the way).
//!
//! Internal modes (`loop`, `once`, `worker`, `leak`) are the subprocesses
//! the orchestrator starts inside its namespace; they are not meant to be
//! run by hand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use twofactor_core::enrollment::Enrollment;
use twofactor_core::secret::SecretBytes;
use twofactor_core::state::StateStore;
use twofactor_core::totp::{Algorithm, TotpParams};
use twofactor_integration_tests::fixtures::{Enrolled, Stack};
use twofactor_integration_tests::namespace;
use twofactor_integration_tests::pam_client::{self, Attempt, AttemptResult};
use twofactor_integration_tests::users::TestUser;

/// Test-clock base of our scenarios (a multiple of 30, in 2030).
const T0: u64 = 1_900_000_020;
/// Test-clock time of the locked-out scenario's failures.
const T_LOCK: u64 = 1_800_000_000;
/// Spacing of failed attempts: under the default limits (5 code failures per
/// 900 s, 10 backup-code failures per 3600 s) a lockout never starts, so every
/// wrong answer is really checked.
const FAILURE_SPACING: u64 = 361;
/// Iterations before the measured ones in each warm run.
const WARMUP: u64 = 10;
/// Rounds of interleaved wall-time measurement.
const ROUNDS: u64 = 10;
/// PAM_SUCCESS.
const PAM_SUCCESS: i32 = 0;
/// Other users' state (a `.state` and a `.lock` file each) in the state
/// directory of the "crowded" scenario, as on a server with that many users.
const CROWD_USERS: u32 = 10_000;

// ---------------------------------------------------------------------------
// The measured region.

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

// ---------------------------------------------------------------------------
// Scenarios.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    Permit,
    Ours,
    Ga,
    Oath,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
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
}

const ALL: [Scenario; 16] = [
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
];

/// Our scenarios the leak check cycles through.
const LEAK_MIX: [Scenario; 5] = [
    Scenario::TotpOk,
    Scenario::TotpWrong,
    Scenario::BackupOk,
    Scenario::BackupWrong,
    Scenario::Unenrolled,
];

impl Scenario {
    fn name(self) -> &'static str {
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
        }
    }

    fn from_name(name: &str) -> Option<Scenario> {
        ALL.into_iter().find(|s| s.name() == name)
    }

    fn family(self) -> Family {
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
        }
    }

    /// The test account of the scenario (each has its own state).
    fn user_index(self) -> u32 {
        ALL.iter().position(|s| *s == self).unwrap_or(0) as u32
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
        )
    }

    /// The equivalent scenarios of the other modules, for ratios.
    fn peers(self) -> &'static [Scenario] {
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
    fn callgrind_iterations(self, base: u64) -> u64 {
        if self == Scenario::GaTotpWrong {
            (base / 10).max(3)
        } else {
            base
        }
    }

    /// Iterations of a warm wall-time run, from the base count.
    fn wall_iterations(self, base: u64) -> u64 {
        if self == Scenario::GaTotpWrong {
            (base / 10).max(20)
        } else {
            base
        }
    }
}

// ---------------------------------------------------------------------------
// The context shared by the orchestrator and its subprocesses (a JSON file
// in the scratch directory).

struct Service {
    confdir: PathBuf,
    service: String,
}

struct Ctx {
    path: PathBuf,
    /// "disk" or "tmpfs": where this context's files (state, enrollments,
    /// GA and pam_oath files) live.
    label: String,
    exe: PathBuf,
    root: PathBuf,
    module: PathBuf,
    ours: Stack,
    ours_relaxed: Stack,
    /// Like `ours`, with CROWD_USERS other users' files in its state directory.
    ours_crowded: Stack,
    permit: Service,
    ga: Option<Service>,
    oath: Option<Service>,
    oath_usersfile: PathBuf,
    /// GA's files: `ga_dir/USER/.google_authenticator` (module argument `secret=`).
    ga_dir: PathBuf,
    ga_secret: Vec<u8>,
    ga_scratch: Vec<String>,
    oath_secret: Vec<u8>,
}

fn stack_json(stack: &Stack) -> Value {
    json!({
        "confdir": stack.confdir,
        "service": stack.service,
        "config_path": stack.config_path,
        "state_dir": stack.state_dir,
        "enroll_root": stack.enroll_root,
    })
}

fn path_of(v: &Value, key: &str) -> PathBuf {
    PathBuf::from(v[key].as_str().unwrap_or_else(|| panic!("ctx: {key}")))
}

fn stack_from_json(v: &Value) -> Stack {
    Stack {
        confdir: path_of(v, "confdir"),
        service: v["service"].as_str().expect("ctx: service").to_string(),
        config_path: path_of(v, "config_path"),
        state_dir: path_of(v, "state_dir"),
        enroll_root: path_of(v, "enroll_root"),
    }
}

fn service_json(s: &Option<Service>) -> Value {
    match s {
        Some(s) => json!({"confdir": s.confdir, "service": s.service}),
        None => Value::Null,
    }
}

fn service_from_json(v: &Value) -> Option<Service> {
    if v.is_null() {
        return None;
    }
    Some(Service {
        confdir: path_of(v, "confdir"),
        service: v["service"].as_str().expect("ctx: service").to_string(),
    })
}

impl Ctx {
    fn save(&self) {
        let v = json!({
            "label": self.label,
            "exe": self.exe,
            "root": self.root,
            "ga_dir": self.ga_dir,
            "module": self.module,
            "ours": stack_json(&self.ours),
            "ours_relaxed": stack_json(&self.ours_relaxed),
            "ours_crowded": stack_json(&self.ours_crowded),
            "permit": service_json(&Some(Service {
                confdir: self.permit.confdir.clone(),
                service: self.permit.service.clone(),
            })),
            "ga": service_json(&self.ga),
            "oath": service_json(&self.oath),
            "oath_usersfile": self.oath_usersfile,
            "ga_secret": hex(&self.ga_secret),
            "ga_scratch": self.ga_scratch,
            "oath_secret": hex(&self.oath_secret),
        });
        fs::write(&self.path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }

    fn load(path: &Path) -> Ctx {
        let v: Value =
            serde_json::from_slice(&fs::read(path).expect("read ctx")).expect("ctx json");
        Ctx {
            path: path.to_path_buf(),
            label: v["label"].as_str().unwrap_or("").to_string(),
            exe: path_of(&v, "exe"),
            root: path_of(&v, "root"),
            ga_dir: path_of(&v, "ga_dir"),
            module: path_of(&v, "module"),
            ours: stack_from_json(&v["ours"]),
            ours_relaxed: stack_from_json(&v["ours_relaxed"]),
            ours_crowded: stack_from_json(&v["ours_crowded"]),
            permit: service_from_json(&v["permit"]).expect("ctx: permit"),
            ga: service_from_json(&v["ga"]),
            oath: service_from_json(&v["oath"]),
            oath_usersfile: path_of(&v, "oath_usersfile"),
            ga_secret: unhex(v["ga_secret"].as_str().unwrap_or("")),
            ga_scratch: v["ga_scratch"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            oath_secret: unhex(v["oath_secret"].as_str().unwrap_or("")),
        }
    }

    fn has(&self, family: Family) -> bool {
        match family {
            Family::Permit | Family::Ours => true,
            Family::Ga => self.ga.is_some(),
            Family::Oath => self.oath.is_some(),
        }
    }

    fn service_of(&self, family: Family) -> (&Path, &str) {
        match family {
            Family::Permit => (&self.permit.confdir, &self.permit.service),
            Family::Ours => (&self.ours.confdir, &self.ours.service),
            Family::Ga => {
                let s = self.ga.as_ref().expect("GA not installed");
                (&s.confdir, &s.service)
            }
            Family::Oath => {
                let s = self.oath.as_ref().expect("pam_oath not installed");
                (&s.confdir, &s.service)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers.

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// RFC 4648 base32 without padding (the form of a GA secret file).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn unix_now() -> u64 {
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

fn code_at(totp: &TotpParams, t: u64) -> String {
    totp.code_at(t).to_string()
}

/// A 6-digit code that is not the code of `t` nor of the steps beside it.
fn wrong_code(totp: &TotpParams, t: u64) -> String {
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
fn random_backup_code() -> String {
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
fn test_user(index: u32) -> TestUser {
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

fn write_service(confdir: &Path, service: &str, line: &str) {
    fs::create_dir_all(confdir).unwrap();
    fs::write(confdir.join(service), format!("{line}\n")).unwrap();
    fs::write(confdir.join("other"), "").unwrap();
}

/// Replace `path` (rename over it) with `contents`, owner `uid`, mode `mode`.
fn replace_file(path: &Path, contents: &str, uid: u32, mode: u32) {
    let temp = path.with_extension("bench-tmp");
    fs::write(&temp, contents).unwrap();
    chown(&temp, Some(uid), Some(uid)).unwrap();
    fs::set_permissions(&temp, fs::Permissions::from_mode(mode)).unwrap();
    fs::rename(&temp, path).unwrap();
}

fn security_dir_module(name: &str) -> Option<PathBuf> {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    [
        format!("/usr/lib/{multiarch}/security"),
        format!("/lib/{multiarch}/security"),
        "/usr/lib/security".to_string(),
        "/lib/security".to_string(),
    ]
    .iter()
    .map(|dir| Path::new(dir).join(name))
    .find(|p| p.exists())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Running one scenario: preparing each iteration (outside the measured
// region) and checking its outcome.

struct Runner<'a> {
    ctx: &'a Ctx,
    scenario: Scenario,
    user: TestUser,
    totp: Option<TotpParams>,
    backup_pool: Vec<String>,
}

impl<'a> Runner<'a> {
    fn new(ctx: &'a Ctx, scenario: Scenario) -> Self {
        let user = test_user(scenario.user_index());
        let mut runner = Runner {
            ctx,
            scenario,
            user,
            totp: None,
            backup_pool: Vec::new(),
        };
        match scenario.family() {
            Family::Ours if scenario != Scenario::Unenrolled => {
                if scenario == Scenario::BackupOk {
                    runner.provision_backup_codes();
                }
                runner.totp = Some(read_totp(runner.stack(), &runner.user));
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
        if self.scenario == Scenario::TotpOkCrowded {
            &self.ctx.ours_crowded
        } else {
            &self.ctx.ours
        }
    }

    fn service(&self) -> (&'a Path, &'a str) {
        if self.scenario.family() == Family::Ours {
            let stack = self.stack();
            return (&stack.confdir, &stack.service);
        }
        self.ctx.service_of(self.scenario.family())
    }

    fn totp(&self) -> &TotpParams {
        self.totp.as_ref().expect("scenario without TOTP")
    }

    /// Prepare iteration `i` and return what to answer.
    fn attempt(&mut self, i: u64) -> Attempt {
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
            Scenario::TotpOk | Scenario::TotpOkCrowded => {
                let now = T0 + 15 + i * 30;
                with_clock(code_at(self.totp(), now), now)
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
                self.reset_oath(now);
                plain(code_at(self.totp(), now))
            }
            Scenario::OathWrong => {
                let now = unix_now();
                self.reset_oath(now);
                plain(wrong_code(self.totp(), now))
            }
            Scenario::OathUnenrolled => plain("123456".into()),
        }
    }

    /// GA's state as after a login one step earlier: the secret, reuse
    /// protection holding the previous step, TOTP, ten scratch codes.
    fn reset_ga(&self, now: u64) {
        let step = now / 30;
        let mut text = format!(
            "{}\n\" DISALLOW_REUSE {}\n\" TOTP_AUTH\n",
            base32(&self.ctx.ga_secret),
            step - 1
        );
        for code in &self.ctx.ga_scratch {
            text.push_str(code);
            text.push('\n');
        }
        replace_file(&ga_file(self.ctx, &self.user), &text, self.user.uid, 0o400);
    }

    /// pam_oath's users file as after logins one step earlier: counter,
    /// last OTP and its time filled in, so a replay would be refused.
    fn reset_oath(&self, now: u64) {
        write_oath_usersfile(self.ctx, now);
    }

    fn check(&self, i: u64, result: &AttemptResult) {
        let ok = result.code == PAM_SUCCESS;
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
    fn warm(&mut self, i: u64) {
        let attempt = self.attempt(i);
        let (confdir, service) = self.service();
        let result = pam_client::authenticate(confdir, service, &self.user.name, &attempt);
        self.check(i, &result);
    }

    /// One measured login; returns its wall time.
    fn measured(&mut self, i: u64) -> Duration {
        let attempt = self.attempt(i);
        let (confdir, service) = self.service();
        let start = Instant::now();
        let result = pam_bench_measured_login(confdir, service, &self.user.name, &attempt);
        let elapsed = start.elapsed();
        self.check(i, &result);
        elapsed
    }
}

fn write_oath_usersfile(ctx: &Ctx, now: u64) {
    let totp = sha1_totp(&ctx.oath_secret);
    let previous = now - 30;
    let mut text = String::new();
    for scenario in [Scenario::OathOk, Scenario::OathWrong] {
        text.push_str(&format!(
            "HOTP/T30/6\ttf-user{}\t-\t{}\t{}\t{}\t{}\n",
            scenario.user_index(),
            hex(&ctx.oath_secret),
            previous / 30,
            code_at(&totp, previous),
            oath_timestamp(previous)
        ));
    }
    replace_file(&ctx.oath_usersfile, &text, 0, 0o600);
}

fn ga_file(ctx: &Ctx, user: &TestUser) -> PathBuf {
    ctx.ga_dir.join(&user.name).join(".google_authenticator")
}

fn read_totp(stack: &Stack, user: &TestUser) -> TotpParams {
    let path = stack.enrollment_path(user);
    let text = fs::read_to_string(&path).expect("read enrollment");
    Enrollment::parse(&text, &path.display().to_string())
        .expect("parse enrollment")
        .totp
        .expect("TOTP enrolled")
}

// ---------------------------------------------------------------------------
// Internal modes (subprocesses).

struct Args {
    values: HashMap<String, String>,
}

impl Args {
    fn parse(args: &[String]) -> Args {
        let mut values = HashMap::new();
        let mut it = args.iter();
        while let Some(key) = it.next() {
            let key = key
                .strip_prefix("--")
                .unwrap_or_else(|| usage(&format!("unexpected argument {key:?}")));
            let value = match key {
                "quick" | "verbose" => "1".to_string(),
                _ => it
                    .next()
                    .cloned()
                    .unwrap_or_else(|| usage(&format!("--{key} needs a value"))),
            };
            values.insert(key.to_string(), value);
        }
        Args { values }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    fn num(&self, key: &str, default: u64) -> u64 {
        self.get(key)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| usage(&format!("--{key} takes a number")))
            })
            .unwrap_or(default)
    }

    fn flag(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    fn ctx(&self) -> Ctx {
        Ctx::load(Path::new(self.get("ctx").expect("--ctx")))
    }

    fn scenario(&self) -> Scenario {
        let name = self.get("scenario").expect("--scenario");
        Scenario::from_name(name).unwrap_or_else(|| usage(&format!("unknown scenario {name}")))
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "pam_bench: {problem}\n\
         usage: pam_bench --module PATH [--iterations N] [--cold N] [--callgrind-iterations N]\n\
         \x20                [--leak-logins N] [--memcheck-logins N] [--workers N] [--skip LIST]\n\
         \x20                [--only SCENARIOS] [--json PATH] [--out-dir DIR] [--quick] [--verbose]\n\
         \x20                [--production-module PATH] [--dlopen-probe PATH]\n\
         LIST: comma-separated among wall,cold,callgrind,crosscheck,load,concurrency,leak,memcheck\n\
         SCENARIOS: comma-separated scenario names as printed in the report"
    );
    std::process::exit(2)
}

/// `loop`: `--warmup` unmeasured then `--count` measured logins of one
/// scenario, iterations numbered from `--first` (run under callgrind).
fn mode_loop(args: &Args) {
    let ctx = args.ctx();
    let mut runner = Runner::new(&ctx, args.scenario());
    let first = args.num("first", 0);
    let warmup = args.num("warmup", WARMUP);
    let count = args.num("count", 1);
    for i in first..first + warmup {
        runner.warm(i);
    }
    for i in first + warmup..first + warmup + count {
        runner.measured(i);
    }
    println!("ok {count}");
}

/// `once`: one `pam_permit` transaction (libpam warm), then the first login
/// through the scenario's module in this process. Prints `NANOSECONDS`.
fn mode_once(args: &Args) {
    let ctx = args.ctx();
    let permit = pam_client::authenticate(
        &ctx.permit.confdir,
        &ctx.permit.service,
        "tf-user0",
        &Attempt::default(),
    );
    assert_eq!(permit.code, PAM_SUCCESS, "pam_permit warm-up");
    let mut runner = Runner::new(&ctx, args.scenario());
    let elapsed = runner.measured(args.num("first", 0));
    println!("{}", elapsed.as_nanos());
}

/// `worker`: the logins of a plan file (`STACK USER NOW ANSWER` per line),
/// started at `--start-at` (unix nanoseconds). Prints one return code per
/// line, then `elapsed NANOSECONDS`.
fn mode_worker(args: &Args) {
    let ctx = args.ctx();
    let plan = fs::read_to_string(args.get("plan").expect("--plan")).expect("read plan");
    let start_at = u128::from(args.num("start-at", 0));
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        if now >= start_at {
            break;
        }
        std::thread::sleep(Duration::from_nanos(
            ((start_at - now) as u64).min(1_000_000),
        ));
    }
    let started = Instant::now();
    let mut out = String::new();
    for line in plan.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let stack = if fields[0] == "relaxed" {
            &ctx.ours_relaxed
        } else {
            &ctx.ours
        };
        let attempt = Attempt {
            answers: vec![fields[3].to_string()],
            env: vec![format!("PAM_TWOFACTOR_TEST_NOW={}", fields[2])],
            ..Attempt::default()
        };
        let result = pam_client::authenticate(&stack.confdir, &stack.service, fields[1], &attempt);
        out.push_str(&format!("{}\n", result.code));
    }
    out.push_str(&format!("elapsed {}\n", started.elapsed().as_nanos()));
    std::io::stdout().write_all(out.as_bytes()).unwrap();
}

/// `leak`: `--count` logins in this one process, cycling through our
/// scenarios; prints `rss LOGINS KIB` every `--rss-every` logins.
fn mode_leak(args: &Args) {
    let ctx = args.ctx();
    let count = args.num("count", 10_000);
    let every = args.num("rss-every", 1000).max(1);
    let first = args.num("first", 0);
    let mut runners: Vec<Runner> = LEAK_MIX.iter().map(|s| Runner::new(&ctx, *s)).collect();
    println!("rss 0 {}", rss_kib());
    for n in 0..count {
        let runner = &mut runners[(n as usize) % LEAK_MIX.len()];
        runner.warm(first + n / LEAK_MIX.len() as u64);
        if (n + 1) % every == 0 {
            println!("rss {} {}", n + 1, rss_kib());
        }
    }
}

// ---------------------------------------------------------------------------
// The orchestrator.

/// Wall time of a set of logins.
#[derive(Debug, Clone, Copy)]
struct Wall {
    median_us: f64,
    p99_us: f64,
    samples: usize,
}

impl Wall {
    fn of(mut samples_us: Vec<f64>) -> Wall {
        samples_us.sort_by(|a, b| a.total_cmp(b));
        Wall {
            median_us: percentile(&samples_us, 50.0),
            p99_us: percentile(&samples_us, 99.0),
            samples: samples_us.len(),
        }
    }
}

#[derive(Default, Clone)]
struct Figures {
    warm_disk: Option<Wall>,
    warm_tmpfs: Option<Wall>,
    cold_disk: Option<Wall>,
    cold_tmpfs: Option<Wall>,
    /// Instructions per login, warm (callgrind, toggle-collect).
    ir_warm: Option<f64>,
    /// Instructions of the first login in a fresh process.
    ir_cold: Option<f64>,
    /// `ir_warm` by whole-run differencing.
    ir_warm_crosscheck: Option<f64>,
    /// Instructions inside dlopen + dlclose, per warm login and in the cold one.
    ir_dl_warm: Option<f64>,
    ir_dl_cold: Option<f64>,
    /// Size of the user's state file after the disk runs (our module only).
    state_bytes: Option<u64>,
    note: Option<String>,
}

struct Options {
    iterations: u64,
    cold: u64,
    callgrind_iterations: u64,
    leak_logins: u64,
    memcheck_logins: u64,
    workers: u64,
    skip: BTreeSet<String>,
    only: BTreeSet<String>,
    json: Option<PathBuf>,
    verbose: bool,
    /// The module as installed (stripped), for its load cost.
    production_module: Option<PathBuf>,
    /// The C program of scripts/bench.sh that dlopens one module.
    dlopen_probe: Option<PathBuf>,
}

struct Bench {
    /// Files on the disk: the wall times that include flushing to disk, the
    /// cold logins, the concurrency benchmark.
    disk: Ctx,
    /// Files on a tmpfs: CPU-bound wall times, callgrind, memcheck, RSS.
    tmpfs: Ctx,
    opts: Options,
    /// Next unused iteration number (test-clock steps are never reused).
    next_iteration: u64,
    figures: BTreeMap<Scenario, Figures>,
    out_dir: PathBuf,
    extra: serde_json::Map<String, Value>,
}

fn log(message: &str) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(Instant::now);
    eprintln!(
        "[pam_bench {:6.1}s] {message}",
        start.elapsed().as_secs_f64()
    );
}

/// Inclusive instructions of the functions whose name contains one of
/// `names`, from `callgrind_annotate --inclusive=yes` (None without it).
fn annotate_inclusive(out_file: &Path, names: &[&str]) -> Option<f64> {
    let out = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(out_file)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut total = 0.0;
    for name in names {
        // Lines look like `1,234 (5.6%)  ./dlfcn/./dlfcn/dlopen.c:dlopen@@GLIBC_2.34 [...]`.
        if let Some(v) = text.lines().find_map(|l| {
            let (count, rest) = l.trim_start().split_once(' ')?;
            let function = rest.split_once(':')?.1;
            let function = function.split([' ', '@']).next()?;
            (function == *name).then(|| count.replace(',', "").parse::<f64>().ok())?
        }) {
            total += v;
        }
    }
    Some(total)
}

impl Bench {
    fn take_iterations(&mut self, n: u64) -> u64 {
        let first = self.next_iteration;
        self.next_iteration += n;
        first
    }

    fn ctx(&self, tmpfs: bool) -> &Ctx {
        if tmpfs {
            &self.tmpfs
        } else {
            &self.disk
        }
    }

    fn scenarios(&self) -> Vec<Scenario> {
        ALL.into_iter()
            .filter(|s| self.disk.has(s.family()) && *s != Scenario::Locked)
            .filter(|s| self.wanted(*s))
            .collect()
    }

    fn wanted(&self, s: Scenario) -> bool {
        self.opts.only.is_empty() || self.opts.only.contains(s.name())
    }

    fn skip(&self, what: &str) -> bool {
        self.opts.skip.contains(what)
    }

    fn entry(&mut self, s: Scenario) -> &mut Figures {
        self.figures.entry(s).or_default()
    }

    /// Warm wall times of `scenarios`, in one process, the scenarios
    /// interleaved in rounds so that background activity (other processes'
    /// disk flushes) weighs on all of them alike.
    fn run_walls(&mut self, scenarios: &[Scenario], tmpfs: bool) -> Vec<Wall> {
        let plan: Vec<(Scenario, u64, u64)> = scenarios
            .iter()
            .map(|s| {
                let n = s.wall_iterations(self.opts.iterations);
                (*s, self.take_iterations(WARMUP + n), n)
            })
            .collect();
        let ctx = self.ctx(tmpfs);
        let mut runners: Vec<Runner> = plan.iter().map(|(s, _, _)| Runner::new(ctx, *s)).collect();
        for (runner, (_, first, _)) in runners.iter_mut().zip(&plan) {
            for i in *first..*first + WARMUP {
                runner.warm(i);
            }
        }
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); plan.len()];
        for round in 0..ROUNDS {
            for (k, (runner, (_, first, n))) in runners.iter_mut().zip(&plan).enumerate() {
                let begin = first + WARMUP + n * round / ROUNDS;
                let end = first + WARMUP + n * (round + 1) / ROUNDS;
                for i in begin..end {
                    samples[k].push(runner.measured(i).as_secs_f64() * 1e6);
                }
            }
        }
        samples.into_iter().map(Wall::of).collect()
    }

    fn subprocess(&self, mode: &str, tmpfs: bool) -> Command {
        let mut cmd = Command::new(&self.disk.exe);
        cmd.arg(mode).arg("--ctx").arg(&self.ctx(tmpfs).path);
        cmd
    }

    /// Cold wall times: one process per sample, the scenarios interleaved.
    fn run_colds(&mut self, scenarios: &[Scenario], tmpfs: bool) -> Vec<Wall> {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
        for _ in 0..self.opts.cold {
            for (k, s) in scenarios.iter().enumerate() {
                let first = self.take_iterations(1);
                let out = self
                    .subprocess("once", tmpfs)
                    .args(["--scenario", s.name(), "--first", &first.to_string()])
                    .stderr(Stdio::inherit())
                    .output()
                    .expect("spawn once");
                assert!(out.status.success(), "{}: cold login failed", s.name());
                let ns: f64 = String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .expect("cold output");
                samples[k].push(ns / 1000.0);
            }
        }
        samples.into_iter().map(Wall::of).collect()
    }

    /// Run the bench binary under callgrind with `mode_args`; returns the
    /// instructions collected and the output file. `toggle`: only inside
    /// `pam_bench_measured_login`, else the whole run.
    fn callgrind(&self, label: &str, toggle: bool, mode_args: &[String]) -> (f64, PathBuf) {
        let out_file = self.out_dir.join(format!("callgrind.{label}.out"));
        let mut cmd = Command::new("valgrind");
        cmd.arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out_file.display()));
        if toggle {
            cmd.arg("--collect-atstart=no")
                .arg("--toggle-collect=pam_bench_measured_login");
        }
        cmd.arg(&self.disk.exe).args(mode_args);
        let out = cmd.output().expect("run valgrind");
        if !out.status.success() {
            panic!(
                "callgrind {label} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = fs::read_to_string(&out_file).expect("callgrind output");
        let total = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("totals:")
                    .or_else(|| l.strip_prefix("summary:"))
            })
            .and_then(|v| v.split_whitespace().next().map(str::to_string))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("callgrind totals");
        (total, out_file)
    }

    /// Arguments of a `loop`/`once` subprocess on the tmpfs context.
    fn ctx_args(&self, mode: &str, s: Scenario, first: u64) -> Vec<String> {
        vec![
            mode.to_string(),
            "--ctx".into(),
            self.tmpfs.path.display().to_string(),
            "--scenario".into(),
            s.name().to_string(),
            "--first".into(),
            first.to_string(),
        ]
    }

    fn run_callgrind(&mut self, s: Scenario) {
        let n = s.callgrind_iterations(self.opts.callgrind_iterations);
        let first = self.take_iterations(WARMUP + n);
        let mut args = self.ctx_args("loop", s, first);
        args.extend([
            "--warmup".into(),
            WARMUP.to_string(),
            "--count".into(),
            n.to_string(),
        ]);
        let label = s.name().replace('/', "-");
        let (warm, warm_file) = self.callgrind(&format!("{label}.warm"), true, &args);
        let first = self.take_iterations(1);
        let args = self.ctx_args("once", s, first);
        let (cold, cold_file) = self.callgrind(&format!("{label}.cold"), true, &args);
        let dl = ["dlopen", "dlclose"];
        let dl_warm = annotate_inclusive(&warm_file, &dl).map(|v| v / n as f64);
        let dl_cold = annotate_inclusive(&cold_file, &dl);
        let f = self.entry(s);
        f.ir_warm = Some(warm / n as f64);
        f.ir_cold = Some(cold);
        f.ir_dl_warm = dl_warm;
        f.ir_dl_cold = dl_cold;
    }

    /// Whole-run differencing: (instructions of a run with N measured
    /// iterations - those of the same run with 0) / N.
    fn run_crosscheck(&mut self, s: Scenario) {
        let n = s.callgrind_iterations(self.opts.callgrind_iterations);
        let mut totals = Vec::new();
        for count in [n, 0] {
            let first = self.take_iterations(WARMUP + n);
            let mut args = self.ctx_args("loop", s, first);
            args.extend([
                "--warmup".into(),
                WARMUP.to_string(),
                "--count".into(),
                count.to_string(),
            ]);
            let label = format!("{}.diff{count}", s.name().replace('/', "-"));
            totals.push(self.callgrind(&label, false, &args).0);
        }
        self.entry(s).ir_warm_crosscheck = Some((totals[0] - totals[1]) / n as f64);
    }

    fn measure(&mut self, scenarios: &[Scenario]) {
        if !self.skip("wall") {
            for tmpfs in [false, true] {
                log(&format!(
                    "wall time, warm, {}: {} scenarios interleaved",
                    self.ctx(tmpfs).label,
                    scenarios.len()
                ));
                let walls = self.run_walls(scenarios, tmpfs);
                for (s, w) in scenarios.iter().zip(walls) {
                    let f = self.entry(*s);
                    if tmpfs {
                        f.warm_tmpfs = Some(w);
                    } else {
                        f.warm_disk = Some(w);
                    }
                }
            }
        }
        if !self.skip("cold") {
            for tmpfs in [false, true] {
                log(&format!(
                    "wall time, cold (a process per login), {}",
                    self.ctx(tmpfs).label
                ));
                let walls = self.run_colds(scenarios, tmpfs);
                for (s, w) in scenarios.iter().zip(walls) {
                    let f = self.entry(*s);
                    if tmpfs {
                        f.cold_tmpfs = Some(w);
                    } else {
                        f.cold_disk = Some(w);
                    }
                }
            }
        }
        for s in scenarios.iter().copied() {
            if !self.skip("callgrind") {
                log(&format!("{}: callgrind", s.name()));
                self.run_callgrind(s);
                // The state the instructions were counted with.
                self.record_state_size(s, true);
            } else {
                self.record_state_size(s, false);
            }
        }
    }

    fn record_state_size(&mut self, s: Scenario, tmpfs: bool) {
        if s.family() == Family::Ours && s != Scenario::Unenrolled {
            let user = format!("tf-user{}", s.user_index());
            let crowded = s == Scenario::TotpOkCrowded;
            let size = |ctx: &Ctx| {
                let stack = if crowded {
                    &ctx.ours_crowded
                } else {
                    &ctx.ours
                };
                let path = StateStore::new(&stack.state_dir).state_path(&user);
                fs::metadata(path).ok().map(|m| m.len())
            };
            let bytes = size(self.ctx(tmpfs));
            self.entry(s).state_bytes = bytes;
        }
    }

    // -- the locked-out scenario ------------------------------------------

    /// Lock the scenario's user out (both limits: 6 wrong TOTP codes and 11
    /// wrong backup codes, in both contexts), then probe with a correct TOTP
    /// code and a valid backup code. Returns whether both were refused, i.e.
    /// whether this build enforces the lockout.
    fn prepare_locked(&mut self) -> bool {
        log("locked-out: locking tf-user6 out with wrong codes, probing with valid ones");
        let user = test_user(Scenario::Locked.user_index());
        let mut enforced = true;
        for ctx in [&self.disk, &self.tmpfs] {
            let enrolled = Enrolled::standard();
            ctx.ours.enroll(&user, &enrolled);
            let totp = read_totp(&ctx.ours, &user);
            for k in 0..17 {
                let now = T_LOCK - 60 + k;
                let answer = if k < 6 {
                    wrong_code(&totp, now)
                } else {
                    random_backup_code()
                };
                let r = ctx.ours.login_at(&user.name, &answer, now);
                assert_ne!(r.code, PAM_SUCCESS, "a wrong code was accepted");
            }
            let now = T_LOCK + 30;
            let probe = ctx.ours.login_at(&user.name, &code_at(&totp, now), now);
            enforced &= probe.code != PAM_SUCCESS;
            let probe = ctx
                .ours
                .login_at(&user.name, &enrolled.backup_codes[0], now);
            enforced &= probe.code != PAM_SUCCESS;
        }
        enforced
    }

    // -- concurrency ------------------------------------------------------

    fn run_workers(&self, label: &str, plans: &[Vec<String>]) -> (Vec<Vec<i32>>, f64) {
        let dir = self.out_dir.join(format!("concurrency-{label}"));
        fs::create_dir_all(&dir).unwrap();
        let start_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            + 300_000_000;
        let mut children = Vec::new();
        for (w, plan) in plans.iter().enumerate() {
            let path = dir.join(format!("plan{w}"));
            fs::write(&path, plan.join("\n")).unwrap();
            let child = self
                .subprocess("worker", false)
                .arg("--plan")
                .arg(&path)
                .args(["--start-at", &start_at.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn worker");
            children.push(child);
        }
        let mut results = Vec::new();
        for child in children {
            let out = child.wait_with_output().expect("worker");
            assert!(out.status.success(), "worker failed");
            let codes: Vec<i32> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with("elapsed"))
                .map(|l| l.parse().expect("worker code"))
                .collect();
            results.push(codes);
        }
        let end = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let elapsed = (end.saturating_sub(start_at)) as f64 / 1e9;
        (results, elapsed)
    }

    fn run_concurrency(&mut self) -> Value {
        let workers = self.opts.workers as usize;
        let mut report = serde_json::Map::new();
        let peek = |stack: &Stack, user: &str| {
            StateStore::new(&stack.state_dir)
                .peek(user, 0)
                .expect("read state")
        };
        let mut record =
            |key: &str, logins: usize, elapsed: f64, correct: bool, summary: String| {
                log(&format!(
                    "concurrency, {key}: {summary}; {:.0} logins/s",
                    logins as f64 / elapsed
                ));
                report.insert(
                    key.into(),
                    json!({"workers": workers, "logins": logins, "seconds": elapsed,
                       "logins_per_second": logins as f64 / elapsed,
                       "correct": correct, "summary": summary}),
                );
            };

        // A: every worker its own user, correct codes at successive steps.
        let per = 50u64;
        let first_user = 20u32;
        let mut plans = Vec::new();
        for w in 0..workers {
            let user = test_user(first_user + w as u32);
            let enrolled = Enrolled::standard();
            self.disk.ours.enroll(&user, &enrolled);
            let totp = enrolled.enrollment.totp.as_ref().unwrap();
            plans.push(
                (0..per)
                    .map(|k| {
                        let now = T0 + 15 + k * 30;
                        format!("ours {} {now} {}", user.name, code_at(totp, now))
                    })
                    .collect(),
            );
        }
        let (results, elapsed) = self.run_workers("distinct-users", &plans);
        let accepted = results.iter().flatten().filter(|c| **c == 0).count();
        let last_step = (T0 + 15 + (per - 1) * 30) / 30;
        let states_right = (0..workers)
            .filter(|w| {
                let name = format!("tf-user{}", first_user + *w as u32);
                peek(&self.disk.ours, &name).newest_totp_step() == Some(last_step)
            })
            .count();
        let logins = workers * per as usize;
        record(
            "distinct_users",
            logins,
            elapsed,
            accepted == logins && states_right == workers,
            format!(
                "{accepted}/{logins} accepted, {states_right}/{workers} states hold the last step"
            ),
        );

        // B: one user, every worker the same sequence of steps: each step is
        // accepted at most once, and the state holds the last accepted one.
        let user = test_user(36);
        let enrolled = Enrolled::standard();
        self.disk.ours.enroll(&user, &enrolled);
        let totp = enrolled.enrollment.totp.as_ref().unwrap();
        let plan: Vec<String> = (0..per)
            .map(|k| {
                let now = T0 + 15 + k * 30;
                format!("ours {} {now} {}", user.name, code_at(totp, now))
            })
            .collect();
        let plans: Vec<Vec<String>> = (0..workers).map(|_| plan.clone()).collect();
        let (results, elapsed) = self.run_workers("same-user-totp", &plans);
        let mut per_step = vec![0u32; per as usize];
        for codes in &results {
            for (k, c) in codes.iter().enumerate() {
                if *c == 0 {
                    per_step[k] += 1;
                }
            }
        }
        let accepted: u32 = per_step.iter().sum();
        let twice = per_step.iter().filter(|n| **n > 1).count();
        let expected_last = per_step
            .iter()
            .rposition(|n| *n > 0)
            .map(|k| (T0 + 15 + k as u64 * 30) / 30);
        let state = peek(&self.disk.ours, &user.name);
        record(
            "same_user_totp",
            workers * per as usize,
            elapsed,
            twice == 0 && state.newest_totp_step() == expected_last,
            format!(
                "{accepted} of {per} steps accepted (once each: {}), state's last step {}",
                twice == 0,
                if state.newest_totp_step() == expected_last {
                    "= the last accepted"
                } else {
                    "WRONG"
                }
            ),
        );

        // C: one user, 100 backup codes, every worker tries all of them:
        // exactly 100 successes, each code once, all 100 spent in the state.
        let user = test_user(37);
        let enrolled = Enrolled::new(Algorithm::SHA1, 6, 30, 100);
        self.disk.ours_relaxed.enroll(&user, &enrolled);
        let codes = &enrolled.backup_codes;
        let order = |w: usize, k: usize| (k + w * codes.len() / workers) % codes.len();
        let plans: Vec<Vec<String>> = (0..workers)
            .map(|w| {
                (0..codes.len())
                    .map(|k| format!("relaxed {} {} {}", user.name, T0 + 15, codes[order(w, k)]))
                    .collect()
            })
            .collect();
        let (results, elapsed) = self.run_workers("same-user-backup", &plans);
        let mut per_code = vec![0u32; codes.len()];
        for (w, out) in results.iter().enumerate() {
            for (k, c) in out.iter().enumerate() {
                if *c == 0 {
                    per_code[order(w, k)] += 1;
                }
            }
        }
        let accepted: u32 = per_code.iter().sum();
        let state = peek(&self.disk.ours_relaxed, &user.name);
        let spent: BTreeSet<&String> = state.spent_backup_codes.iter().collect();
        let salts: BTreeSet<&String> = enrolled
            .enrollment
            .backup_codes
            .iter()
            .map(|c| &c.salt)
            .collect();
        record(
            "same_user_backup_codes",
            workers * codes.len(),
            elapsed,
            per_code.iter().all(|n| *n == 1)
                && spent == salts
                && state.spent_backup_codes.len() == codes.len(),
            format!(
                "{accepted} accepted for {} codes, {} spent in the state",
                codes.len(),
                state.spent_backup_codes.len()
            ),
        );

        // D: one user, wrong codes from every worker: every failure is in
        // the state (the failure count is what the lockout reads).
        let user = test_user(38);
        let enrolled = Enrolled::standard();
        self.disk.ours_relaxed.enroll(&user, &enrolled);
        let totp = enrolled.enrollment.totp.as_ref().unwrap();
        let per_worker = (240 / workers).max(1);
        let now = T0 + 15;
        let plans: Vec<Vec<String>> = (0..workers)
            .map(|_| {
                (0..per_worker)
                    .map(|_| format!("relaxed {} {now} {}", user.name, wrong_code(totp, now)))
                    .collect()
            })
            .collect();
        let (results, elapsed) = self.run_workers("same-user-failures", &plans);
        let refused = results.iter().flatten().filter(|c| **c != 0).count();
        let state = peek(&self.disk.ours_relaxed, &user.name);
        let logins = workers * per_worker;
        let recorded = state.failures.len();
        record(
            "same_user_failures",
            logins,
            elapsed,
            refused == logins && recorded == logins,
            format!("{refused}/{logins} refused, {recorded} failures recorded in the state"),
        );
        Value::Object(report)
    }

    // -- load cost in a C host --------------------------------------------

    /// dlopen + dlclose of each module alone in a C program that has libpam
    /// loaded and no libgcc_s (as sshd, su and login): callgrind instructions
    /// of each, and the median wall time over fresh processes.
    fn run_load_probe(&mut self) -> Value {
        let Some(probe) = self.opts.dlopen_probe.clone() else {
            return Value::Null;
        };
        let mut modules: Vec<(&str, PathBuf)> = Vec::new();
        if let Some(m) = &self.opts.production_module {
            modules.push(("pam_twofactor (stripped, as installed)", m.clone()));
        }
        modules.push((
            "pam_twofactor (benchmarked build)",
            self.disk.module.clone(),
        ));
        for (label, name) in [
            ("pam_google_authenticator", "pam_google_authenticator.so"),
            ("pam_oath", "pam_oath.so"),
            ("pam_permit", "pam_permit.so"),
        ] {
            if let Some(path) = security_dir_module(name) {
                modules.push((label, path));
            }
        }
        let mut report = Vec::new();
        for (label, path) in modules {
            let mut ir = Vec::new();
            for function in ["probe_load", "probe_unload"] {
                let out_file = self
                    .out_dir
                    .join(format!("callgrind.dlopen.{}.{function}.out", report.len()));
                let status = Command::new("valgrind")
                    .arg("--tool=callgrind")
                    .arg(format!("--callgrind-out-file={}", out_file.display()))
                    .arg("--collect-atstart=no")
                    .arg(format!("--toggle-collect={function}"))
                    .arg(&probe)
                    .arg(&path)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("valgrind dlopen probe");
                assert!(
                    status.success(),
                    "dlopen probe failed for {}",
                    path.display()
                );
                let text = fs::read_to_string(&out_file).unwrap_or_default();
                ir.push(
                    text.lines()
                        .find_map(|l| l.strip_prefix("totals:"))
                        .and_then(|v| v.trim().parse::<f64>().ok()),
                );
            }
            let mut load_us = Vec::new();
            let mut unload_us = Vec::new();
            for _ in 0..30 {
                let out = Command::new(&probe).arg(&path).output().expect("probe");
                let text = String::from_utf8_lossy(&out.stdout);
                let mut f = text
                    .split_whitespace()
                    .map(|v| v.parse::<f64>().unwrap_or(0.0));
                load_us.push(f.next().unwrap_or(0.0) / 1000.0);
                unload_us.push(f.next().unwrap_or(0.0) / 1000.0);
            }
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let entry = json!({
                "module": label,
                "path": path,
                "bytes": size,
                "load_instructions": ir[0],
                "unload_instructions": ir[1],
                "load_us_median": Wall::of(load_us).median_us,
                "unload_us_median": Wall::of(unload_us).median_us,
            });
            log(&format!("load cost: {entry}"));
            report.push(entry);
        }
        Value::Array(report)
    }

    // -- leaks --------------------------------------------------------------

    fn run_leak(&mut self) -> Value {
        let mut report = serde_json::Map::new();
        if !self.skip("leak") {
            let n = self.opts.leak_logins;
            log(&format!("leak: {n} logins in one process, RSS"));
            let first = self.take_iterations(n);
            let out = self
                .subprocess("leak", true)
                .args(["--count", &n.to_string(), "--first", &first.to_string()])
                .args(["--rss-every", &(n / 10).max(1).to_string()])
                .stderr(Stdio::inherit())
                .output()
                .expect("leak run");
            assert!(out.status.success(), "leak run failed");
            let rss: Vec<(u64, u64)> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() == 3 && f[0] == "rss")
                        .then(|| (f[1].parse().unwrap_or(0), f[2].parse().unwrap_or(0)))
                })
                .collect();
            // Flat: no growth between the first tenth and the end.
            let after_first = rss.get(1).map(|r| r.1).unwrap_or(0);
            let last = rss.last().map(|r| r.1).unwrap_or(0);
            log(&format!("leak: RSS (logins, KiB) {rss:?}"));
            report.insert(
                "rss_kib".into(),
                json!(rss.iter().map(|(n, k)| json!([n, k])).collect::<Vec<_>>()),
            );
            report.insert(
                "rss_growth_after_first_tenth_kib".into(),
                json!(last as i64 - after_first as i64),
            );
        }
        if !self.skip("memcheck") {
            let n = self.opts.memcheck_logins;
            for n in [0, n / 10, n] {
                log(&format!("leak: memcheck over {n} logins"));
                let first = self.take_iterations(n);
                let log_file = self.out_dir.join(format!("memcheck.{n}.log"));
                let status = Command::new("valgrind")
                    .args([
                        "--tool=memcheck",
                        "--leak-check=full",
                        "--show-leak-kinds=definite,indirect,possible",
                        // Only definite leaks count as errors (the possibly
                        // lost blocks are listed and reported separately).
                        "--errors-for-leak-kinds=definite",
                        "--num-callers=30",
                    ])
                    .arg(format!("--log-file={}", log_file.display()))
                    .arg(&self.disk.exe)
                    .args(["leak", "--ctx"])
                    .arg(&self.tmpfs.path)
                    .args(["--count", &n.to_string(), "--first", &first.to_string()])
                    .args(["--rss-every", "1000000"])
                    .stdout(Stdio::null())
                    .status()
                    .expect("memcheck");
                assert!(status.success(), "memcheck run failed");
                let text = fs::read_to_string(&log_file).unwrap_or_default();
                let mut summary = serde_json::Map::new();
                for kind in [
                    "definitely lost",
                    "indirectly lost",
                    "possibly lost",
                    "still reachable",
                ] {
                    let bytes = text
                        .lines()
                        .find_map(|l| l.split_once(&format!("{kind}: ")).map(|(_, r)| r))
                        .and_then(|r| r.split_whitespace().next())
                        .map(|b| b.replace(',', ""))
                        .and_then(|b| b.parse::<u64>().ok())
                        .unwrap_or(0);
                    summary.insert(kind.replace(' ', "_"), json!(bytes));
                }
                let errors = text
                    .lines()
                    .find_map(|l| l.split_once("ERROR SUMMARY: ").map(|(_, r)| r))
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|b| b.replace(',', "").parse::<u64>().ok())
                    .unwrap_or(0);
                summary.insert("errors".into(), json!(errors));
                summary.insert("log".into(), json!(log_file));
                log(&format!("leak: memcheck {n} logins: {summary:?}"));
                report.insert(format!("memcheck_{n}_logins"), Value::Object(summary));
            }
        }
        Value::Object(report)
    }
}

fn fmt_us(v: Option<f64>) -> String {
    v.map(|v| {
        if v >= 1000.0 {
            format!("{:.2} ms", v / 1000.0)
        } else {
            format!("{v:.0} µs")
        }
    })
    .unwrap_or_else(|| "-".into())
}

fn fmt_ir(v: Option<f64>) -> String {
    v.map(|v| {
        if v >= 1e6 {
            format!("{:.2}M", v / 1e6)
        } else {
            format!("{:.1}k", v / 1e3)
        }
    })
    .unwrap_or_else(|| "-".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "-".into())
}

fn machine_info() -> Value {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
        })
        .unwrap_or_default();
    let cmd = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let version = |pkg: &str| cmd("dpkg-query", &["-W", "-f=${Version}", pkg]);
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "kernel": cmd("uname", &["-r"]),
        "date": cmd("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        "os": cmd("sh", &["-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "libpam": version("libpam0g"),
        "libpam-google-authenticator": version("libpam-google-authenticator"),
        "libpam-oath": version("libpam-oath"),
        "valgrind": cmd("valgrind", &["--version"]),
    })
}

/// Bind our own `/dev/log` in place of the harness's collector (which keeps
/// every line in memory) and drain it, counting lines.
fn drain_dev_log() -> Arc<AtomicU64> {
    let _ = fs::remove_file("/dev/log");
    let socket = UnixDatagram::bind("/dev/log").expect("bind /dev/log");
    fs::set_permissions("/dev/log", fs::Permissions::from_mode(0o666)).unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&count);
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 65536];
        while socket.recv(&mut buffer).is_ok() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    count
}

/// Fill a state directory with CROWD_USERS other users' state and lock
/// files, as the module leaves them (root, 0640 and 0600).
fn populate_state_dir(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o711)).unwrap();
    for n in 0..CROWD_USERS {
        let state = dir.join(format!("crowd{n:05}.state"));
        fs::write(&state, "version = 1\nlast_totp_step = 63333334\n").unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o640)).unwrap();
        let lock = dir.join(format!("crowd{n:05}.lock"));
        fs::write(&lock, "").unwrap();
        fs::set_permissions(&lock, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn mount_tmpfs(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", dir.display()));
}

/// One set of stacks and files. `tmpfs`: everything the modules read and
/// write is on a tmpfs (no disk flush), else on the scratch directory's file
/// system (the disk, like /var/lib and /home).
fn setup(ns: &namespace::TestNamespace, module: &Path, out_dir: &Path, tmpfs: bool) -> Ctx {
    let label = if tmpfs { "tmpfs" } else { "disk" };
    let root = ns.scratch.join(format!("bench-{label}"));
    let suffix = if tmpfs { "-t" } else { "" };
    let service = format!("bench{suffix}");
    let relaxed_service = format!("bench-relaxed{suffix}");
    let crowded_service = format!("bench-crowded{suffix}");
    if tmpfs {
        mount_tmpfs(&root);
        // Stack::new puts each stack in SCRATCH/stack-SERVICE.
        for s in [&service, &relaxed_service, &crowded_service] {
            mount_tmpfs(&ns.scratch.join(format!("stack-{s}")));
        }
    } else {
        fs::create_dir_all(&root).unwrap();
    }
    let exe = std::env::current_exe().expect("current_exe");
    let ours = Stack::new(ns, &service, module, "", "");
    // Limits high enough that the concurrency checks never lock anyone out.
    let ours_relaxed = Stack::new(
        ns,
        &relaxed_service,
        module,
        "",
        "max_code_failures = 1000\nmax_backup_code_failures = 1000\n",
    );
    let ours_crowded = Stack::new(ns, &crowded_service, module, "", "");
    populate_state_dir(&ours_crowded.state_dir);
    let permit_module = security_dir_module("pam_permit.so").expect("pam_permit.so not found");
    let permit = Service {
        confdir: root.join("permit/pam.d"),
        service: "bench-permit".into(),
    };
    write_service(
        &permit.confdir,
        &permit.service,
        &format!("auth required {}", permit_module.display()),
    );
    let ga_dir = root.join("ga");
    let ga = security_dir_module("pam_google_authenticator.so").map(|m| {
        let s = Service {
            confdir: root.join("ga/pam.d"),
            service: "bench-ga".into(),
        };
        // GA's file is replaced as the user: one directory per user.
        for scenario in ALL.iter().filter(|s| s.family() == Family::Ga) {
            let user = test_user(scenario.user_index());
            let dir = ga_dir.join(&user.name);
            fs::create_dir_all(&dir).unwrap();
            chown(&dir, Some(user.uid), Some(user.uid)).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        }
        write_service(
            &s.confdir,
            &s.service,
            &format!(
                "auth required {} secret={}/${{USER}}/.google_authenticator",
                m.display(),
                ga_dir.display()
            ),
        );
        s
    });
    let oath_usersfile = root.join("oath/users.oath");
    let oath = security_dir_module("pam_oath.so").map(|m| {
        let s = Service {
            confdir: root.join("oath/pam.d"),
            service: "bench-oath".into(),
        };
        write_service(
            &s.confdir,
            &s.service,
            &format!(
                "auth required {} usersfile={} window=1 digits=6",
                m.display(),
                oath_usersfile.display()
            ),
        );
        s
    });
    let mut ga_secret = vec![0u8; 20];
    let mut oath_secret = vec![0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut ga_secret);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut oath_secret);
    let ga_scratch: Vec<String> = (0..10)
        .map(|_| format!("{}", 10_000_000 + rand::random::<u32>() % 80_000_000))
        .collect();
    let ctx = Ctx {
        path: out_dir.join(format!("ctx-{label}.json")),
        label: label.to_string(),
        exe,
        root,
        module: module.to_path_buf(),
        ours,
        ours_relaxed,
        ours_crowded,
        permit,
        ga,
        oath,
        oath_usersfile,
        ga_dir,
        ga_secret,
        ga_scratch,
        oath_secret,
    };
    // Our enrollments (BackupOk provisions its own codes as it goes).
    for s in [Scenario::TotpOk, Scenario::TotpWrong, Scenario::BackupWrong] {
        ctx.ours
            .enroll(&test_user(s.user_index()), &Enrolled::standard());
    }
    let crowded = test_user(Scenario::TotpOkCrowded.user_index());
    ctx.ours_crowded.enroll(&crowded, &Enrolled::standard());
    if ctx.oath.is_some() {
        write_oath_usersfile(&ctx, unix_now());
    }
    ctx.save();
    ctx
}

fn wall_cells(w: Option<Wall>) -> (String, String) {
    (fmt_us(w.map(|w| w.median_us)), fmt_us(w.map(|w| w.p99_us)))
}

fn print_report(bench: &Bench, machine: &Value, sink_lines: u64) {
    let f = &bench.figures;
    let get = |s: Scenario| f.get(&s).cloned().unwrap_or_default();
    println!();
    println!("pam_twofactor login benchmark: each login is pam_start_confdir + pam_authenticate (+ pam_setcred) + pam_end");
    println!(
        "machine: {} CPU(s), {}, kernel {}, {}, {}",
        machine["nproc"],
        machine["cpu"].as_str().unwrap_or(""),
        machine["kernel"].as_str().unwrap_or(""),
        machine["os"].as_str().unwrap_or(""),
        machine["date"].as_str().unwrap_or("")
    );
    println!(
        "module: {} (release, test-clock feature); libpam {}, GA {}, pam_oath {}",
        bench.disk.module.display(),
        machine["libpam"].as_str().unwrap_or("?"),
        machine["libpam-google-authenticator"]
            .as_str()
            .filter(|v| !v.is_empty())
            .unwrap_or("not installed"),
        machine["libpam-oath"]
            .as_str()
            .filter(|v| !v.is_empty())
            .unwrap_or("not installed"),
    );
    println!("warm: N logins in one process, the module already loaded; cold: the first login through the module in a fresh process (one sample per process), as in one sshd connection");
    println!("disk: state and enrollment files on the disk (ext4 here, flushed with fsync); tmpfs: the same files on a tmpfs (CPU and system calls only)");
    println!();
    println!(
        "{:<19} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "wall per login",
        "warm-disk",
        "p99",
        "warm-tmpfs",
        "p99",
        "cold-disk",
        "p99",
        "cold-tmpfs",
        "p99"
    );
    println!(
        "{:<19} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "median", "", "median", "", "median", "", "median", ""
    );
    for (s, fig) in f {
        let (a, b) = wall_cells(fig.warm_disk);
        let (c, d) = wall_cells(fig.warm_tmpfs);
        let (e, g) = wall_cells(fig.cold_disk);
        let (h, i) = wall_cells(fig.cold_tmpfs);
        println!(
            "{:<19} {a:>9} {b:>9} {c:>9} {d:>9} {e:>9} {g:>9} {h:>9} {i:>9}",
            s.name()
        );
    }
    println!();
    println!(
        "{:<19} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "instructions", "per login", "first", "load Δ", "dl warm", "dl first", "state"
    );
    println!(
        "{:<19} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "(callgrind)", "warm", "(cold)", "cold-warm", "per login", "login", "bytes"
    );
    for (s, fig) in f {
        let load = match (fig.ir_cold, fig.ir_warm) {
            (Some(c), Some(w)) => Some(c - w),
            _ => None,
        };
        println!(
            "{:<19} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}{}",
            s.name(),
            fmt_ir(fig.ir_warm),
            fmt_ir(fig.ir_cold),
            fmt_ir(load),
            fmt_ir(fig.ir_dl_warm),
            fmt_ir(fig.ir_dl_cold),
            fig.state_bytes
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            fig.note
                .as_ref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default()
        );
    }
    println!("(dl = instructions inside dlopen + dlclose: loading, relocating and unloading modules and their libraries)");
    let cross: Vec<String> = f
        .iter()
        .filter_map(|(s, fig)| {
            fig.ir_warm_crosscheck.map(|c| {
                format!(
                    "{} {} (toggle-collect {})",
                    s.name(),
                    fmt_ir(Some(c)),
                    fmt_ir(fig.ir_warm)
                )
            })
        })
        .collect();
    if !cross.is_empty() {
        println!(
            "cross-check by differencing whole runs, (Ir of N iterations - Ir of 0) / N, preparation included: {}",
            cross.join("; ")
        );
    }
    if let Some(Value::Array(load)) = bench.extra.get("load") {
        println!();
        println!("loading a module alone (dlopen + dlclose) in a C program with libpam and without libgcc_s, as sshd, su and login do once per process:");
        println!(
            "  {:<40} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "module", "bytes", "load Ir", "unload Ir", "load", "unload"
        );
        for m in load {
            println!(
                "  {:<40} {:>10} {:>10} {:>10} {:>10} {:>10}",
                m["module"].as_str().unwrap_or(""),
                m["bytes"].to_string(),
                fmt_ir(m["load_instructions"].as_f64()),
                fmt_ir(m["unload_instructions"].as_f64()),
                fmt_us(m["load_us_median"].as_f64()),
                fmt_us(m["unload_us_median"].as_f64()),
            );
        }
    }
    println!();
    println!("ratios, ours / theirs: instructions warm, instructions cold, wall warm-disk, wall cold-disk, wall warm-tmpfs (medians)");
    for s in [
        Scenario::TotpOk,
        Scenario::TotpWrong,
        Scenario::BackupOk,
        Scenario::BackupWrong,
        Scenario::Unenrolled,
        Scenario::Locked,
    ] {
        let ours = get(s);
        let mut peers: Vec<Scenario> = s.peers().to_vec();
        peers.push(Scenario::Permit);
        for p in peers {
            if !f.contains_key(&p) || !f.contains_key(&s) {
                continue;
            }
            let theirs = get(p);
            let med = |w: Option<Wall>| w.map(|w| w.median_us);
            println!(
                "  {:<15} / {:<19} {:>8} {:>8} {:>8} {:>8} {:>8}",
                s.name(),
                p.name(),
                fmt_ratio(ratio(ours.ir_warm, theirs.ir_warm)),
                fmt_ratio(ratio(ours.ir_cold, theirs.ir_cold)),
                fmt_ratio(ratio(med(ours.warm_disk), med(theirs.warm_disk))),
                fmt_ratio(ratio(med(ours.cold_disk), med(theirs.cold_disk))),
                fmt_ratio(ratio(med(ours.warm_tmpfs), med(theirs.warm_tmpfs))),
            );
        }
    }
    println!();
    println!("targets:");
    let target = |label: &str, value: Option<bool>, detail: String| {
        let verdict = match value {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        println!("  [{verdict:^12}] {label}: {detail}");
    };
    let ok = get(Scenario::TotpOk);
    let wrong = get(Scenario::TotpWrong);
    let ga_ok = get(Scenario::GaTotpOk);
    let ga_wrong = get(Scenario::GaTotpWrong);
    let backup = get(Scenario::BackupOk);
    let c_host = c_host_first_login(bench, &ok, &ga_ok);
    for (label, ours_v, ga_v) in [
        ("warm", ok.ir_warm, ga_ok.ir_warm),
        ("first login in a process", ok.ir_cold, ga_ok.ir_cold),
        (
            "first login in a C host such as sshd, estimated",
            c_host.0,
            c_host.1,
        ),
    ] {
        target(
            &format!("correct TOTP ≤ GA's correct code, instructions ({label})"),
            ours_v.zip(ga_v).map(|(a, b)| a <= b),
            format!(
                "{} vs {} ({})",
                fmt_ir(ours_v),
                fmt_ir(ga_v),
                fmt_ratio(ratio(ours_v, ga_v))
            ),
        );
    }
    target(
        "wrong TOTP within 1.5× of correct TOTP (instructions, warm)",
        ratio(wrong.ir_warm, ok.ir_warm).map(|r| r <= 1.5),
        format!(
            "{} vs {} ({})",
            fmt_ir(wrong.ir_warm),
            fmt_ir(ok.ir_warm),
            fmt_ratio(ratio(wrong.ir_warm, ok.ir_warm))
        ),
    );
    target(
        "wrong TOTP ≥100× cheaper than GA's wrong code (instructions, warm)",
        ratio(ga_wrong.ir_warm, wrong.ir_warm).map(|r| r >= 100.0),
        format!(
            "{} vs {}: GA/ours = {}",
            fmt_ir(ga_wrong.ir_warm),
            fmt_ir(wrong.ir_warm),
            fmt_ratio(ratio(ga_wrong.ir_warm, wrong.ir_warm))
        ),
    );
    target(
        "valid backup code within 2× of correct TOTP (instructions, warm)",
        ratio(backup.ir_warm, ok.ir_warm).map(|r| r <= 2.0),
        format!(
            "{} vs {} ({})",
            fmt_ir(backup.ir_warm),
            fmt_ir(ok.ir_warm),
            fmt_ratio(ratio(backup.ir_warm, ok.ir_warm))
        ),
    );
    if let Some(leak) = bench.extra.get("leak") {
        let n = bench.opts.memcheck_logins;
        let m = &leak[format!("memcheck_{n}_logins")];
        if !m.is_null() {
            let lost = m["definitely_lost"].as_u64().unwrap_or(0)
                + m["indirectly_lost"].as_u64().unwrap_or(0);
            let at = |k: u64, field: &str| leak[format!("memcheck_{k}_logins")][field].clone();
            target(
                &format!("no leak over {n} logins in one process (memcheck)"),
                Some(lost == 0 && m["errors"].as_u64() == Some(0)),
                format!(
                    "definitely lost {} B, indirectly lost {} B, memory errors {}; \
                     possibly lost {} / {} / {} B and still reachable {} / {} / {} B after 0 / {} / {n} logins",
                    m["definitely_lost"],
                    m["indirectly_lost"],
                    m["errors"],
                    at(0, "possibly_lost"),
                    at(n / 10, "possibly_lost"),
                    at(n, "possibly_lost"),
                    at(0, "still_reachable"),
                    at(n / 10, "still_reachable"),
                    at(n, "still_reachable"),
                    n / 10,
                ),
            );
        }
        if let Some(growth) = leak["rss_growth_after_first_tenth_kib"].as_i64() {
            target(
                &format!("RSS flat over {} logins", bench.opts.leak_logins),
                Some(growth <= 64),
                format!(
                    "growth after the first tenth: {growth} KiB; (logins, KiB): {}",
                    leak["rss_kib"]
                ),
            );
        }
    }
    if let Some(c) = bench.extra.get("concurrency") {
        println!();
        println!(
            "concurrency ({} processes at once on {} CPU(s), files on the disk):",
            bench.opts.workers, machine["nproc"]
        );
        for (key, label) in [
            ("distinct_users", "each process its own user, correct codes"),
            (
                "same_user_totp",
                "one user, the same steps from every process",
            ),
            (
                "same_user_backup_codes",
                "one user, every process tries all backup codes",
            ),
            (
                "same_user_failures",
                "one user, wrong codes from every process",
            ),
        ] {
            let v = &c[key];
            if v.is_null() {
                continue;
            }
            println!(
                "  {label}: {:.0} logins/s over {} logins; {}",
                v["logins_per_second"].as_f64().unwrap_or(0.0),
                v["logins"],
                if v["correct"].as_bool() == Some(true) {
                    format!("correct ({})", v["summary"].as_str().unwrap_or(""))
                } else {
                    format!("INCONSISTENT: {v}")
                }
            );
        }
    }
    println!();
    println!("syslog lines received on the private /dev/log: {sink_lines}");
}

/// The first login in a C host that has not loaded libgcc_s (sshd, su,
/// login), estimated from the warm login and the C probe's load cost:
/// (ours, GA's). GA's warm logins already load and unload it each time.
fn c_host_first_login(bench: &Bench, ours: &Figures, ga: &Figures) -> (Option<f64>, Option<f64>) {
    let load = bench.extra.get("load").and_then(|l| {
        l.as_array()?
            .iter()
            .find(|m| m["module"].as_str() == Some("pam_twofactor (benchmarked build)"))
            .map(|m| {
                m["load_instructions"].as_f64().unwrap_or(0.0)
                    + m["unload_instructions"].as_f64().unwrap_or(0.0)
            })
    });
    (ours.ir_warm.zip(load).map(|(w, l)| w + l), ga.ir_warm)
}

fn wall_json(w: Option<Wall>) -> Value {
    w.map(|w| json!({"median_us": w.median_us, "p99_us": w.p99_us, "samples": w.samples}))
        .unwrap_or(Value::Null)
}

fn figures_json(f: &Figures) -> Value {
    json!({
        "wall_warm_disk": wall_json(f.warm_disk),
        "wall_warm_tmpfs": wall_json(f.warm_tmpfs),
        "wall_cold_disk": wall_json(f.cold_disk),
        "wall_cold_tmpfs": wall_json(f.cold_tmpfs),
        "instructions_warm": f.ir_warm,
        "instructions_cold": f.ir_cold,
        "instructions_warm_crosscheck": f.ir_warm_crosscheck,
        "instructions_dlopen_dlclose_warm": f.ir_dl_warm,
        "instructions_dlopen_dlclose_cold": f.ir_dl_cold,
        "state_bytes": f.state_bytes,
        "note": f.note,
    })
}

fn list_option(args: &Args, key: &str) -> BTreeSet<String> {
    args.get(key)
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn orchestrate(args: &Args) {
    let quick = args.flag("quick");
    let module = PathBuf::from(
        args.get("module")
            .unwrap_or_else(|| usage("--module is required")),
    );
    if !module.exists() {
        usage(&format!("{} does not exist", module.display()));
    }
    let opts = Options {
        iterations: args.num("iterations", if quick { 100 } else { 500 }),
        cold: args.num("cold", if quick { 10 } else { 50 }),
        callgrind_iterations: args.num("callgrind-iterations", if quick { 20 } else { 100 }),
        leak_logins: args.num("leak-logins", if quick { 1000 } else { 10_000 }),
        memcheck_logins: args.num("memcheck-logins", if quick { 200 } else { 10_000 }),
        workers: args.num("workers", 16).clamp(1, 16),
        skip: list_option(args, "skip"),
        only: list_option(args, "only"),
        json: args.get("json").map(PathBuf::from),
        verbose: args.flag("verbose"),
        production_module: args.get("production-module").map(PathBuf::from),
        dlopen_probe: args.get("dlopen-probe").map(PathBuf::from),
    };
    let out_dir = PathBuf::from(args.get("out-dir").unwrap_or("target/bench/out"));
    fs::create_dir_all(&out_dir).expect("create --out-dir");
    let out_dir = fs::canonicalize(&out_dir).unwrap();
    let module = fs::canonicalize(&module).unwrap();

    let ns = namespace::enter();
    let sink = drain_dev_log();
    let machine = machine_info();
    let disk = setup(&ns, &module, &out_dir, false);
    let tmpfs = setup(&ns, &module, &out_dir, true);
    let mut bench = Bench {
        disk,
        tmpfs,
        opts,
        next_iteration: 0,
        figures: BTreeMap::new(),
        out_dir,
        extra: serde_json::Map::new(),
    };
    if bench.disk.ga.is_none() {
        log("pam_google_authenticator.so not installed: skipped (scripts/install-deps.sh --bench)");
    }
    if bench.disk.oath.is_none() {
        log("pam_oath.so not installed: skipped (scripts/install-deps.sh --bench)");
    }

    for s in bench.scenarios() {
        if bench.opts.verbose {
            let i = bench.take_iterations(1);
            let mut runner = Runner::new(&bench.disk, s);
            let attempt = runner.attempt(i);
            let (confdir, service) = runner.service();
            let r = pam_client::authenticate(confdir, service, &runner.user.name, &attempt);
            log(&format!("{}: probe {} {:?}", s.name(), r.code, r.shown));
            // What the other modules wrote back, to compare with the resets.
            let written = match s {
                Scenario::OathOk => fs::read_to_string(&bench.disk.oath_usersfile).ok(),
                Scenario::GaTotpOk | Scenario::GaScratchOk => {
                    fs::read_to_string(ga_file(&bench.disk, &runner.user)).ok()
                }
                _ => None,
            };
            if let Some(text) = written {
                log(&format!("{}: state after the probe:\n{text}", s.name()));
            }
        }
    }
    let scenarios = bench.scenarios();
    bench.measure(&scenarios);
    if !bench.skip("callgrind") && !bench.skip("crosscheck") {
        for s in [Scenario::Permit, Scenario::TotpOk, Scenario::GaTotpOk] {
            if bench.disk.has(s.family()) && bench.wanted(s) {
                log(&format!(
                    "{}: callgrind cross-check by differencing",
                    s.name()
                ));
                bench.run_crosscheck(s);
            }
        }
    }
    if !bench.skip("load") {
        let l = bench.run_load_probe();
        bench.extra.insert("load".into(), l);
    }
    if !bench.skip("concurrency") {
        let c = bench.run_concurrency();
        bench.extra.insert("concurrency".into(), c);
    }
    if !(bench.skip("leak") && bench.skip("memcheck")) {
        let l = bench.run_leak();
        bench.extra.insert("leak".into(), l);
    }
    // Last: the locked-out user (the lockout may not be wired in this build).
    if !bench.wanted(Scenario::Locked) {
        // Not asked for.
    } else if bench.prepare_locked() {
        bench.measure(&[Scenario::Locked]);
        bench.entry(Scenario::Locked).note =
            Some("locked out: a correct code and a valid backup code were refused too".into());
    } else {
        bench.entry(Scenario::Locked).note = Some(
            "PENDING: after 6 wrong TOTP and 11 wrong backup codes a valid code was still accepted: this build does not enforce the lockout"
                .into(),
        );
    }

    let sink_lines = sink.load(Ordering::Relaxed);
    print_report(&bench, &machine, sink_lines);
    if let Some(path) = &bench.opts.json {
        let scenarios: serde_json::Map<String, Value> = bench
            .figures
            .iter()
            .map(|(s, f)| (s.name().to_string(), figures_json(f)))
            .collect();
        let doc = json!({
            "machine": machine,
            "module": bench.disk.module,
            "options": {
                "iterations": bench.opts.iterations,
                "cold": bench.opts.cold,
                "callgrind_iterations": bench.opts.callgrind_iterations,
                "leak_logins": bench.opts.leak_logins,
                "memcheck_logins": bench.opts.memcheck_logins,
                "workers": bench.opts.workers,
            },
            "scenarios": scenarios,
            "extra": bench.extra,
            "syslog_lines": sink_lines,
        });
        fs::write(path, serde_json::to_vec_pretty(&doc).unwrap()).expect("write --json");
    }
}

fn main() {
    // pam_oath writes its timestamps in local time; keep that UTC.
    std::env::set_var("TZ", "UTC");
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (mode, rest) = match argv.first().map(String::as_str) {
        Some(m @ ("loop" | "once" | "worker" | "leak")) => (m.to_string(), &argv[1..]),
        _ => ("run".to_string(), &argv[..]),
    };
    let args = Args::parse(rest);
    match mode.as_str() {
        "loop" => mode_loop(&args),
        "once" => mode_once(&args),
        "worker" => mode_worker(&args),
        "leak" => mode_leak(&args),
        _ => orchestrate(&args),
    }
}
