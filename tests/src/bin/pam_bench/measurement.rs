//! The orchestrator's measurements of the scenarios: wall time (warm and
//! cold), callgrind instructions and their cross-check, and the locked-out
//! scenario's preparation.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;
use twofactor_core::state::StateStore;
use twofactor_integration_tests::fixtures::Enrolled;
use twofactor_integration_tests::pam_client::code::SUCCESS;

use crate::cli::{Options, Phase};
use crate::context::Ctx;
use crate::report::Extra;
use crate::scenarios::{
    code_at, random_backup_code, read_totp, test_user, wrong_code, Family, Runner, Scenario, ALL,
    T_LOCK, WARMUP,
};

/// Rounds of interleaved wall-time measurement.
const ROUNDS: u64 = 10;

/// Wall time of a set of logins.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Wall {
    pub median_us: f64,
    pub p99_us: f64,
    pub samples: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Wall {
    pub fn of(mut samples_us: Vec<f64>) -> Wall {
        samples_us.sort_by(|a, b| a.total_cmp(b));
        Wall {
            median_us: percentile(&samples_us, 50.0),
            p99_us: percentile(&samples_us, 99.0),
            samples: samples_us.len(),
        }
    }
}

/// What is measured of one scenario (under the report's JSON names).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Figures {
    #[serde(rename = "wall_warm_disk")]
    pub warm_disk: Option<Wall>,
    #[serde(rename = "wall_warm_tmpfs")]
    pub warm_tmpfs: Option<Wall>,
    #[serde(rename = "wall_cold_disk")]
    pub cold_disk: Option<Wall>,
    #[serde(rename = "wall_cold_tmpfs")]
    pub cold_tmpfs: Option<Wall>,
    /// Instructions per login, warm (callgrind, toggle-collect).
    #[serde(rename = "instructions_warm")]
    pub ir_warm: Option<f64>,
    /// Instructions of the first login in a fresh process.
    #[serde(rename = "instructions_cold")]
    pub ir_cold: Option<f64>,
    /// `ir_warm` by whole-run differencing.
    #[serde(rename = "instructions_warm_crosscheck")]
    pub ir_warm_crosscheck: Option<f64>,
    /// Instructions inside dlopen + dlclose, per warm login and in the cold one.
    #[serde(rename = "instructions_dlopen_dlclose_warm")]
    pub ir_dl_warm: Option<f64>,
    #[serde(rename = "instructions_dlopen_dlclose_cold")]
    pub ir_dl_cold: Option<f64>,
    /// Size of the user's state file after the disk runs (our module only).
    pub state_bytes: Option<u64>,
    pub note: Option<String>,
}

pub struct Bench {
    /// Files on the disk: the wall times that include flushing to disk, the
    /// cold logins, the concurrency benchmark.
    pub disk: Ctx,
    /// Files on a tmpfs: CPU-bound wall times, callgrind, memcheck, RSS.
    pub tmpfs: Ctx,
    pub opts: Options,
    /// Next unused iteration number (test-clock steps are never reused).
    pub next_iteration: u64,
    pub figures: BTreeMap<Scenario, Figures>,
    pub extra: Extra,
}

pub fn log(message: &str) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(Instant::now);
    eprintln!(
        "[pam_bench {:6.1}s] {message}",
        start.elapsed().as_secs_f64()
    );
}

/// valgrind's callgrind writing to `out_file`; with `toggle`, counting only
/// inside that function.
pub fn callgrind_command(out_file: &Path, toggle: Option<&str>) -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()));
    if let Some(function) = toggle {
        cmd.arg("--collect-atstart=no")
            .arg(format!("--toggle-collect={function}"));
    }
    cmd
}

/// The instructions counted in a callgrind output file.
pub fn callgrind_total(out_file: &Path) -> Option<f64> {
    fs::read_to_string(out_file)
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
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
    pub fn take_iterations(&mut self, n: u64) -> u64 {
        let first = self.next_iteration;
        self.next_iteration += n;
        first
    }

    pub fn ctx(&self, tmpfs: bool) -> &Ctx {
        if tmpfs {
            &self.tmpfs
        } else {
            &self.disk
        }
    }

    pub fn scenarios(&self) -> Vec<Scenario> {
        ALL.into_iter()
            .filter(|s| self.disk.has(s.family()) && *s != Scenario::Locked)
            .filter(|s| self.wanted(*s))
            .collect()
    }

    pub fn wanted(&self, s: Scenario) -> bool {
        self.opts.only.is_empty() || self.opts.only.contains(&s)
    }

    pub fn skip(&self, phase: Phase) -> bool {
        self.opts.skip.contains(&phase)
    }

    pub fn entry(&mut self, s: Scenario) -> &mut Figures {
        self.figures.entry(s).or_default()
    }

    pub fn out_file(&self, name: &str) -> PathBuf {
        self.opts.out_dir.join(name)
    }

    /// This binary in one of its internal modes, on a context.
    pub fn subprocess(&self, mode: &str, tmpfs: bool) -> Command {
        let mut cmd = Command::new(&self.disk.exe);
        cmd.arg(mode).arg("--ctx").arg(&self.ctx(tmpfs).path);
        cmd
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
        let out_file = self.out_file(&format!("callgrind.{label}.out"));
        let out = callgrind_command(&out_file, toggle.then_some("pam_bench_measured_login"))
            .arg(&self.disk.exe)
            .args(mode_args)
            .output()
            .expect("run valgrind");
        if !out.status.success() {
            panic!(
                "callgrind {label} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let total = callgrind_total(&out_file).expect("callgrind totals");
        (total, out_file)
    }

    /// Arguments of a `loop` (with its warm-up and `count` measured logins)
    /// or a `once` subprocess on the tmpfs context.
    fn mode_args(&self, s: Scenario, first: u64, count: Option<u64>) -> Vec<String> {
        let mut args = vec![
            if count.is_some() { "loop" } else { "once" }.to_string(),
            "--ctx".into(),
            self.tmpfs.path.display().to_string(),
            "--scenario".into(),
            s.name().to_string(),
            "--first".into(),
            first.to_string(),
        ];
        if let Some(count) = count {
            args.extend([
                "--warmup".into(),
                WARMUP.to_string(),
                "--count".into(),
                count.to_string(),
            ]);
        }
        args
    }

    fn run_callgrind(&mut self, s: Scenario) {
        let n = s.callgrind_iterations(self.opts.callgrind_iterations);
        let first = self.take_iterations(WARMUP + n);
        let args = self.mode_args(s, first, Some(n));
        let label = s.name().replace('/', "-");
        let (warm, warm_file) = self.callgrind(&format!("{label}.warm"), true, &args);
        let first = self.take_iterations(1);
        let args = self.mode_args(s, first, None);
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
    pub fn run_crosscheck(&mut self, s: Scenario) {
        let n = s.callgrind_iterations(self.opts.callgrind_iterations);
        let mut totals = Vec::new();
        for count in [n, 0] {
            let first = self.take_iterations(WARMUP + n);
            let args = self.mode_args(s, first, Some(count));
            let label = format!("{}.diff{count}", s.name().replace('/', "-"));
            totals.push(self.callgrind(&label, false, &args).0);
        }
        self.entry(s).ir_warm_crosscheck = Some((totals[0] - totals[1]) / n as f64);
    }

    pub fn measure(&mut self, scenarios: &[Scenario]) {
        for (phase, what) in [
            (Phase::Wall, "wall time, warm"),
            (Phase::Cold, "wall time, cold (a process per login)"),
        ] {
            if self.skip(phase) {
                continue;
            }
            for tmpfs in [false, true] {
                let label = &self.ctx(tmpfs).label;
                let walls = if phase == Phase::Wall {
                    log(&format!(
                        "{what}, {label}: {} scenarios interleaved",
                        scenarios.len()
                    ));
                    self.run_walls(scenarios, tmpfs)
                } else {
                    log(&format!("{what}, {label}"));
                    self.run_colds(scenarios, tmpfs)
                };
                for (s, w) in scenarios.iter().zip(walls) {
                    let f = self.entry(*s);
                    let slot = match (phase == Phase::Wall, tmpfs) {
                        (true, false) => &mut f.warm_disk,
                        (true, true) => &mut f.warm_tmpfs,
                        (false, false) => &mut f.cold_disk,
                        (false, true) => &mut f.cold_tmpfs,
                    };
                    *slot = Some(w);
                }
            }
        }
        for s in scenarios.iter().copied() {
            if !self.skip(Phase::Callgrind) {
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
        if matches!(s.family(), Family::Ours | Family::Fleet) && s != Scenario::Unenrolled {
            let user = format!("tf-user{}", s.user_index());
            let ctx = self.ctx(tmpfs);
            // The host's own file (with the fleet backend, the host's copy).
            let stack = match s {
                Scenario::TotpOkCrowded => &ctx.ours_crowded,
                Scenario::FleetTotpOk | Scenario::FleetTotpWrong => &ctx.fleet().stack,
                _ => &ctx.ours,
            };
            let path = StateStore::new(&stack.state_dir).state_path(&user);
            let bytes = fs::metadata(path).ok().map(|m| m.len());
            self.entry(s).state_bytes = bytes;
        }
    }

    /// Lock the scenario's user out (both limits: 6 wrong TOTP codes and 11
    /// wrong backup codes, in both contexts), then probe with a correct TOTP
    /// code and a valid backup code. Returns whether both were refused, i.e.
    /// whether this build enforces the lockout.
    pub fn prepare_locked(&mut self) -> bool {
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
                assert_ne!(r.code, SUCCESS, "a wrong code was accepted");
            }
            let now = T_LOCK + 30;
            let probe = ctx.ours.login_at(&user.name, &code_at(&totp, now), now);
            enforced &= probe.code != SUCCESS;
            let probe = ctx
                .ours
                .login_at(&user.name, &enrolled.backup_codes[0], now);
            enforced &= probe.code != SUCCESS;
        }
        enforced
    }
}
