//! Many processes logging in at once, on their own users and on one user,
//! with the state checked afterwards for lost updates.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use twofactor_core::state::{LoginState, StateStore};
use twofactor_core::totp::{Algorithm, TotpParams};
use twofactor_integration_tests::fixtures::{Enrolled, Stack};
use twofactor_integration_tests::pam_client::{self, Attempt};

use crate::context::Ctx;
use crate::measurement::{log, Bench};
use crate::scenarios::{code_at, read_totp, test_user, wrong_code, T0};

/// One concurrency run (under the report's JSON names).
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub workers: usize,
    pub logins: usize,
    pub seconds: f64,
    pub logins_per_second: f64,
    /// Every login had the outcome it should, and the state holds them all.
    pub correct: bool,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Concurrency {
    pub distinct_users: Run,
    pub same_user_totp: Run,
    pub same_user_backup_codes: Run,
    pub same_user_failures: Run,
}

impl Concurrency {
    /// The runs under their report keys, with what they do.
    pub fn runs(&self) -> [(&'static str, &'static str, &Run); 4] {
        [
            (
                "distinct_users",
                "each process its own user, correct codes",
                &self.distinct_users,
            ),
            (
                "same_user_totp",
                "one user, the same steps from every process",
                &self.same_user_totp,
            ),
            (
                "same_user_backup_codes",
                "one user, every process tries all backup codes",
                &self.same_user_backup_codes,
            ),
            (
                "same_user_failures",
                "one user, wrong codes from every process",
                &self.same_user_failures,
            ),
        ]
    }
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A counter that the worker processes of one run share: 8 bytes of a
/// file, mapped shared into each, incremented atomically. It hands out the
/// steps of the one-user runs in the order the logins start, whichever
/// process starts them.
pub struct SharedCounter {
    value: *const AtomicU64,
}

impl SharedCounter {
    /// A new counter at 0 in the file `path`.
    pub fn create(path: &Path) {
        fs::write(path, 0u64.to_ne_bytes()).expect("write the counter file");
    }

    pub fn open(path: &Path) -> SharedCounter {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open the counter file");
        // SAFETY: a fresh shared mapping of the file's first 8 bytes (the
        // file has them); no Rust object aliases it. The descriptor may be
        // closed afterwards: the mapping keeps the file.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED, "mmap the counter file");
        SharedCounter {
            value: map.cast::<AtomicU64>(),
        }
    }

    /// The counter's value, incremented.
    pub fn next(&self) -> u64 {
        // SAFETY: the mapping is page-aligned, 8 bytes long and never
        // unmapped (it lives until the process exits); every process only
        // ever touches it through this atomic.
        unsafe { &*self.value }.fetch_add(1, Ordering::SeqCst)
    }
}

/// What a plan line answers: NOW is a test-clock time, or `next@BASE` for
/// BASE + 60 × the counter's next value (steps two apart: see
/// [`crate::fleet`]); ANSWER is the code, or `-` for the correct code of
/// NOW from the user's enrollment on the stack.
fn answer_of(
    fields: &[&str],
    stack: &Stack,
    counter: Option<&SharedCounter>,
    totps: &mut HashMap<String, TotpParams>,
) -> (u64, String) {
    let now = match fields[2].strip_prefix("next@") {
        Some(base) => {
            let base: u64 = base.parse().expect("next@BASE");
            base + 60 * counter.expect("--counter for next@").next()
        }
        None => fields[2].parse().expect("NOW"),
    };
    let answer = if fields[3] == "-" {
        let totp = totps.entry(fields[1].to_string()).or_insert_with(|| {
            let index = fields[1]
                .strip_prefix("tf-user")
                .and_then(|n| n.parse().ok())
                .expect("a test user");
            read_totp(stack, &test_user(index))
        });
        code_at(totp, now)
    } else {
        fields[3].to_string()
    };
    (now, answer)
}

/// `worker`: the logins of a plan (`STACK USER NOW ANSWER` per line, STACK
/// one of `ours`, `relaxed`, `fleet`, `fleet-hostN`), started at `start_at` (unix
/// nanoseconds). Prints `CODE NOW` per line (the return code, the test-clock
/// time it ran at), then `elapsed NANOSECONDS`.
pub fn worker(ctx: &Ctx, plan: &str, start_at: u128, counter: Option<&SharedCounter>) {
    loop {
        let now = unix_nanos();
        if now >= start_at {
            break;
        }
        std::thread::sleep(Duration::from_nanos(
            ((start_at - now) as u64).min(1_000_000),
        ));
    }
    let started = Instant::now();
    let mut out = String::new();
    let mut totps = HashMap::new();
    for line in plan.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let stack = match (fields[0], fields[0].strip_prefix("fleet-host")) {
            (_, Some(h)) => &ctx.fleet().hosts[h.parse::<usize>().expect("fleet-hostN")].0,
            ("relaxed", _) => &ctx.ours_relaxed,
            ("fleet", _) => &ctx.fleet().stack,
            _ => &ctx.ours,
        };
        let (now, answer) = answer_of(&fields, stack, counter, &mut totps);
        let attempt = Attempt {
            answers: vec![answer],
            env: vec![format!("PAM_TWOFACTOR_TEST_NOW={now}")],
            ..Attempt::default()
        };
        let result = pam_client::authenticate(&stack.confdir, &stack.service, fields[1], &attempt);
        out.push_str(&format!("{} {now}\n", result.code));
    }
    out.push_str(&format!("elapsed {}\n", started.elapsed().as_nanos()));
    std::io::stdout().write_all(out.as_bytes()).unwrap();
}

pub fn peek(stack: &Stack, user: &str) -> LoginState {
    StateStore::new(&stack.state_dir)
        .peek(user, 0)
        .expect("read state")
}

/// A plan line of our default stack: `user` answers the correct code of `now`.
fn correct_code_line(user: &str, enrolled: &Enrolled, now: u64) -> String {
    let totp = enrolled.enrollment.totp.as_ref().expect("TOTP enrolled");
    format!("ours {user} {now} {}", code_at(totp, now))
}

impl Bench {
    fn run_workers(&self, label: &str, plans: &[Vec<String>]) -> (Vec<Vec<i32>>, f64) {
        let (results, elapsed) = self.run_workers_timed(label, plans, false);
        let codes = results
            .into_iter()
            .map(|r| r.into_iter().map(|(code, _)| code).collect())
            .collect();
        (codes, elapsed)
    }

    /// One worker process per plan, started together, on the files of the
    /// disk or the tmpfs context; the return code and the test-clock time of
    /// each login, and the seconds they all took.
    pub fn run_workers_timed(
        &self,
        label: &str,
        plans: &[Vec<String>],
        tmpfs: bool,
    ) -> (Vec<Vec<(i32, u64)>>, f64) {
        let dir = self.out_file(&format!("concurrency-{label}"));
        fs::create_dir_all(&dir).unwrap();
        let start_at = unix_nanos() + 300_000_000;
        let counter = dir.join("counter");
        SharedCounter::create(&counter);
        let mut children = Vec::new();
        for (w, plan) in plans.iter().enumerate() {
            let path = dir.join(format!("plan{w}"));
            fs::write(&path, plan.join("\n")).unwrap();
            let child = self
                .subprocess("worker", tmpfs)
                .arg("--plan")
                .arg(&path)
                .args(["--start-at", &start_at.to_string()])
                .arg("--counter")
                .arg(&counter)
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn worker");
            children.push(child);
        }
        let mut results = Vec::new();
        for child in children {
            let out = child.wait_with_output().expect("worker");
            assert!(out.status.success(), "worker failed");
            let codes: Vec<(i32, u64)> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with("elapsed"))
                .map(|l| {
                    let (code, now) = l.split_once(' ').expect("CODE NOW");
                    (
                        code.parse().expect("worker code"),
                        now.parse().expect("worker time"),
                    )
                })
                .collect();
            results.push(codes);
        }
        let elapsed = (unix_nanos().saturating_sub(start_at)) as f64 / 1e9;
        (results, elapsed)
    }

    pub fn record(
        &self,
        key: &str,
        logins: usize,
        elapsed: f64,
        correct: bool,
        summary: String,
    ) -> Run {
        let logins_per_second = logins as f64 / elapsed;
        log(&format!(
            "concurrency, {key}: {summary}; {logins_per_second:.0} logins/s"
        ));
        Run {
            workers: self.opts.workers as usize,
            logins,
            seconds: elapsed,
            logins_per_second,
            correct,
            summary,
        }
    }

    pub fn run_concurrency(&mut self) -> Concurrency {
        let workers = self.opts.workers as usize;
        let per = 50u64;
        Concurrency {
            distinct_users: self.distinct_users(workers, per),
            same_user_totp: self.same_user_totp(workers, per),
            same_user_backup_codes: self.same_user_backup_codes(workers),
            same_user_failures: self.same_user_failures(workers),
        }
    }

    /// Every worker its own user, correct codes at successive steps.
    fn distinct_users(&mut self, workers: usize, per: u64) -> Run {
        let first_user = 20u32;
        let mut plans = Vec::new();
        for w in 0..workers {
            let user = test_user(first_user + w as u32);
            let enrolled = Enrolled::standard();
            self.disk.ours.enroll(&user, &enrolled);
            plans.push(
                (0..per)
                    .map(|k| correct_code_line(&user.name, &enrolled, T0 + 15 + k * 30))
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
        self.record(
            "distinct_users",
            logins,
            elapsed,
            accepted == logins && states_right == workers,
            format!(
                "{accepted}/{logins} accepted, {states_right}/{workers} states hold the last step"
            ),
        )
    }

    /// One user, every worker the same sequence of steps: each step is
    /// accepted at most once, and the state holds the last accepted one.
    fn same_user_totp(&mut self, workers: usize, per: u64) -> Run {
        let user = test_user(36);
        let enrolled = Enrolled::standard();
        self.disk.ours.enroll(&user, &enrolled);
        let plan: Vec<String> = (0..per)
            .map(|k| correct_code_line(&user.name, &enrolled, T0 + 15 + k * 30))
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
        self.record(
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
        )
    }

    /// One user, 100 backup codes, every worker tries all of them: exactly
    /// 100 successes, each code once, all 100 spent in the state.
    fn same_user_backup_codes(&mut self, workers: usize) -> Run {
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
        self.record(
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
        )
    }

    /// One user, wrong codes from every worker: every failure is in the
    /// state (the failure count is what the lockout reads).
    fn same_user_failures(&mut self, workers: usize) -> Run {
        let user = test_user(38);
        let enrolled = Enrolled::standard();
        self.disk.ours_relaxed.enroll(&user, &enrolled);
        let totp = enrolled.enrollment.totp.as_ref().expect("TOTP enrolled");
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
        self.record(
            "same_user_failures",
            logins,
            elapsed,
            refused == logins && recorded == logins,
            format!("{refused}/{logins} refused, {recorded} failures recorded in the state"),
        )
    }
}
