//! The fleet backend (`state_backend = "redis"`) side by side with the
//! host's own state files: a real `redis-server` on 127.0.0.1 (the tests'
//! fixture, killed when the bench ends), our module configured for it in
//! both contexts ([`crate::context::Fleet`]) with `redis_wait_replicas = 0`
//! (no replica runs beside it).
//!
//! - Wall time and instructions per login: the scenarios `fleet/totp-correct`
//!   and `fleet/totp-wrong` run through the same machinery as the others,
//!   interleaved with `totp-correct` and `totp-wrong` in the same rounds, so
//!   the difference of the two is what the shared state adds. Callgrind
//!   counts the login's process only, not the server's work.
//! - Concurrency: the same plans through both backends, 16 processes at once
//!   on one user (one host, its files on the disk or on a tmpfs; and each
//!   process on a host of its own, where only the lease on the server
//!   serializes them) and on 16 users. On one user every login is a
//!   decision under the user's lock or lease, since each answers the
//!   correct code of a step no other login uses.
//! - What the time is made of: round trips to the server from one process,
//!   the server's own time per script call and its CPU time per login.

use std::process::Command;
use std::time::Instant;

use serde::Serialize;
use twofactor_core::shared_state::account_keys;
use twofactor_core::state::{LoginState, MAX_KEPT_STEPS};
use twofactor_integration_tests::fixtures::{Enrolled, Stack};
use twofactor_integration_tests::pam_client::code::{AUTH_ERR, SUCCESS};
use twofactor_integration_tests::redis_servers::{info_value, RedisOptions, RedisServer};

use crate::concurrency::{peek, Run};
use crate::context::Ctx;
use crate::measurement::{log, Bench, Figures, Wall};
use crate::scenarios::{test_user, Scenario, T0};

/// Added wall time per correct-code login that the target allows, median.
pub const ADDED_MEDIAN_TARGET_US: f64 = 1000.0;
/// Decisions per second on one user, 16 processes at once, that the target asks.
pub const ONE_USER_TARGET_PER_SECOND: f64 = 1000.0;
/// Test-clock base of the concurrency runs: after every step the other
/// parts of the bench use, so no replay refusal comes from them.
const FLEET_T0: u64 = T0 + 30 * 1_000_000;
/// Logins per process in each concurrency run.
const PER_WORKER: u64 = 100;
/// First of the distinct users (the concurrency section's; they get a new
/// enrollment here).
const FIRST_DISTINCT_USER: u32 = 20;
/// The one user of the one-user runs.
const ONE_USER: u32 = 39;

/// The bench's redis-server: the fixture's defaults (no password, no
/// persistence, no replica).
pub fn start_server() -> RedisServer {
    let server = RedisServer::start(RedisOptions::default())
        .unwrap_or_else(|e| panic!("cannot start redis-server for the fleet backend: {e}"));
    log(&format!("fleet: redis-server on {}", server.addr()));
    server
}

fn server_version() -> String {
    Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// One wall-time figure of both backends.
#[derive(Debug, Clone, Serialize)]
pub struct WallVersus {
    pub local: Wall,
    pub redis: Wall,
    pub added_median_us: f64,
    pub added_p99_us: f64,
}

impl WallVersus {
    fn of(local: Option<Wall>, redis: Option<Wall>) -> Option<WallVersus> {
        let (local, redis) = (local?, redis?);
        Some(WallVersus {
            local,
            redis,
            added_median_us: redis.median_us - local.median_us,
            added_p99_us: redis.p99_us - local.p99_us,
        })
    }
}

/// Instructions of both backends (callgrind counts the login's process
/// only: the server's work is not in them).
#[derive(Debug, Clone, Serialize)]
pub struct IrVersus {
    pub local: f64,
    pub redis: f64,
    pub added: f64,
}

impl IrVersus {
    fn of(local: Option<f64>, redis: Option<f64>) -> Option<IrVersus> {
        let (local, redis) = (local?, redis?);
        Some(IrVersus {
            local,
            redis,
            added: redis - local,
        })
    }
}

/// A scenario of the local backend and its fleet twin.
#[derive(Debug, Clone, Serialize)]
pub struct LoginVersus {
    pub local_scenario: &'static str,
    pub redis_scenario: &'static str,
    pub wall_warm_disk: Option<WallVersus>,
    pub wall_warm_tmpfs: Option<WallVersus>,
    pub wall_cold_disk: Option<WallVersus>,
    pub wall_cold_tmpfs: Option<WallVersus>,
    pub instructions_warm: Option<IrVersus>,
    pub instructions_cold: Option<IrVersus>,
}

impl LoginVersus {
    fn of(local: Scenario, redis: Scenario, l: &Figures, r: &Figures) -> LoginVersus {
        LoginVersus {
            local_scenario: local.name(),
            redis_scenario: redis.name(),
            wall_warm_disk: WallVersus::of(l.warm_disk, r.warm_disk),
            wall_warm_tmpfs: WallVersus::of(l.warm_tmpfs, r.warm_tmpfs),
            wall_cold_disk: WallVersus::of(l.cold_disk, r.cold_disk),
            wall_cold_tmpfs: WallVersus::of(l.cold_tmpfs, r.cold_tmpfs),
            instructions_warm: IrVersus::of(l.ir_warm, r.ir_warm),
            instructions_cold: IrVersus::of(l.ir_cold, r.ir_cold),
        }
    }
}

/// One concurrency plan through both backends.
#[derive(Debug, Clone, Serialize)]
pub struct RunVersus {
    /// `null` where the plan needs the shared state (several hosts).
    pub local: Option<Run>,
    pub redis: Run,
    /// redis-server's CPU time (user + system) during the Redis run, per login.
    pub server_cpu_us_per_login: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetConcurrency {
    /// 16 processes, one user, every login the correct code of its own step.
    pub one_user: RunVersus,
    /// The same with the host's files on a tmpfs: no flush to the disk in
    /// the section each login holds the user's lock for.
    pub one_user_tmpfs: RunVersus,
    /// One user, each process on a host of its own (its own configuration
    /// and state directory, files on the disk): only the lease on the
    /// server serializes the logins, as in a fleet.
    pub one_user_hosts: RunVersus,
    /// The same with the hosts' files on a tmpfs.
    pub one_user_hosts_tmpfs: RunVersus,
    /// 16 processes, each its own user, correct codes at successive steps.
    pub distinct_users: RunVersus,
}

/// Round trips to the server from one process (medians of PROBES), and
/// the server's own time per script call.
#[derive(Debug, Clone, Serialize)]
pub struct RoundTrips {
    /// A new connection (TCP), closed again: every login opens one.
    pub connect_us: f64,
    /// PING on an open connection.
    pub ping_us: f64,
    /// A script like the module's peek (the server's clock and one GET of
    /// a user's state) by EVALSHA: a login runs three such scripts.
    pub script_us: f64,
    /// redis-server's time per EVALSHA over the whole bench (`INFO
    /// commandstats`), and how many there were.
    pub server_us_per_evalsha: Option<f64>,
    pub evalsha_calls: Option<u64>,
}

/// Samples of each round trip.
const PROBES: usize = 500;

const PEEK_LIKE: &str = r"
local now = redis.call('TIME')
return {now[1], redis.call('GET', KEYS[1]) or ''}
";

fn median_us(samples: Vec<f64>) -> f64 {
    Wall::of(samples).median_us
}

impl RoundTrips {
    fn measure(ctx: &Ctx) -> RoundTrips {
        let fleet = ctx.fleet();
        let client = redis::Client::open(fleet.url.as_str()).expect("redis client");
        let time = |f: &mut dyn FnMut()| {
            (0..PROBES)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed().as_secs_f64() * 1e6
                })
                .collect::<Vec<f64>>()
        };
        let connect_us = median_us(time(&mut || {
            drop(client.get_connection().expect("connect"));
        }));
        let mut con = client.get_connection().expect("connect");
        let ping_us = median_us(time(&mut || {
            redis::cmd("PING").query::<String>(&mut con).expect("PING");
        }));
        let user = test_user(Scenario::FleetTotpOk.user_index());
        let (key, _) = account_keys(&fleet.key_prefix, &user.name);
        let script = redis::Script::new(PEEK_LIKE);
        let script_us = median_us(time(&mut || {
            script
                .key(&key)
                .invoke::<redis::Value>(&mut con)
                .expect("EVALSHA");
        }));
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut con)
            .expect("INFO commandstats");
        let evalsha = info_value(&stats, "cmdstat_evalsha").unwrap_or_default();
        let field = |name: &str| {
            evalsha
                .split(',')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_string)
        };
        RoundTrips {
            connect_us,
            ping_us,
            script_us,
            server_us_per_evalsha: field("usec_per_call").and_then(|v| v.parse().ok()),
            evalsha_calls: field("calls").and_then(|v| v.parse().ok()),
        }
    }
}

/// Where the processes of a one-user run log in.
#[derive(Clone, Copy)]
enum OneUser {
    /// All on one host (one stack: one state directory, one lock per user).
    Host { redis: bool, tmpfs: bool },
    /// Each on a host of its own, the state on Redis.
    Hosts { tmpfs: bool },
}

/// A target and whether it was met (`null`: not measured).
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub target: String,
    pub met: Option<bool>,
    pub detail: String,
}

/// The fleet section of the report (under the JSON names).
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub server: String,
    /// The configuration lines of the fleet stacks, beside the defaults.
    pub configuration: String,
    pub totp_correct: LoginVersus,
    pub totp_wrong: LoginVersus,
    pub concurrency: Option<FleetConcurrency>,
    pub round_trips: RoundTrips,
    pub targets: Vec<Target>,
}

fn fmt_us(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

impl FleetReport {
    /// The figures measured so far, side by side, and the targets.
    pub fn of(bench: &Bench, concurrency: Option<FleetConcurrency>) -> FleetReport {
        let get = |s: Scenario| bench.figures.get(&s).cloned().unwrap_or_default();
        let totp_correct = LoginVersus::of(
            Scenario::TotpOk,
            Scenario::FleetTotpOk,
            &get(Scenario::TotpOk),
            &get(Scenario::FleetTotpOk),
        );
        let totp_wrong = LoginVersus::of(
            Scenario::TotpWrong,
            Scenario::FleetTotpWrong,
            &get(Scenario::TotpWrong),
            &get(Scenario::FleetTotpWrong),
        );
        // The targets are judged where the bench's other figures are: the
        // files on the disk. The tmpfs figures tell the disk's share apart.
        let mut targets = Vec::new();
        {
            let versus = &totp_correct.wall_warm_disk;
            targets.push(Target {
                target: format!(
                    "Redis adds at most {} to a correct-TOTP login (wall, warm, median, \
                     files on the disk)",
                    fmt_us(ADDED_MEDIAN_TARGET_US)
                ),
                met: versus
                    .as_ref()
                    .map(|v| v.added_median_us <= ADDED_MEDIAN_TARGET_US),
                detail: versus.as_ref().map_or("-".into(), |v| {
                    format!(
                        "added {} (median {} vs {}), p99 added {} ({} vs {})",
                        fmt_us(v.added_median_us),
                        fmt_us(v.redis.median_us),
                        fmt_us(v.local.median_us),
                        fmt_us(v.added_p99_us),
                        fmt_us(v.redis.p99_us),
                        fmt_us(v.local.p99_us),
                    )
                }),
            });
        }
        for (label, one_user) in [
            ("all on one host", concurrency.as_ref().map(|c| &c.one_user)),
            (
                "each on a host of its own",
                concurrency.as_ref().map(|c| &c.one_user_hosts),
            ),
        ] {
            targets.push(Target {
                target: format!(
                    "at least {ONE_USER_TARGET_PER_SECOND:.0} decisions/s on one user, \
                     {} processes at once, {label}, Redis backend (files on the disk)",
                    bench.opts.workers
                ),
                met: one_user.map(|r| {
                    r.redis.correct && r.redis.logins_per_second >= ONE_USER_TARGET_PER_SECOND
                }),
                detail: one_user.map_or("-".into(), |r| {
                    format!(
                        "{:.0}/s{}",
                        r.redis.logins_per_second,
                        r.local.as_ref().map_or(String::new(), |l| format!(
                            " (local backend {:.0}/s)",
                            l.logins_per_second
                        ))
                    )
                }),
            });
        }
        FleetReport {
            server: server_version(),
            configuration: bench
                .disk
                .fleet
                .as_ref()
                .map(|f| crate::context::fleet_config(&f.url, &f.key_prefix))
                .unwrap_or_default(),
            totp_correct,
            totp_wrong,
            concurrency,
            round_trips: RoundTrips::measure(&bench.disk),
            targets,
        }
    }
}

/// The shared state of `user` on the context's server.
fn shared_state(ctx: &Ctx, user: &str) -> LoginState {
    let fleet = ctx.fleet();
    let (key, _) = account_keys(&fleet.key_prefix, user);
    let text: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query(&mut fleet.admin())
        .expect("GET the shared state");
    LoginState::parse(text.as_deref().unwrap_or(""), &key).expect("shared state")
}

impl Bench {
    /// The concurrency runs, each plan through the local backend, then
    /// through Redis.
    pub fn run_fleet_concurrency(&self) -> FleetConcurrency {
        let workers = self.opts.workers as usize;
        let versus = |run: &dyn Fn(bool) -> (Run, Option<f64>)| {
            let (local, _) = run(false);
            let (redis, server_cpu) = run(true);
            RunVersus {
                local: Some(local),
                redis,
                server_cpu_us_per_login: server_cpu.unwrap_or(f64::NAN),
            }
        };
        let hosts = |tmpfs| {
            let (redis, server_cpu) = self.fleet_one_user(workers, OneUser::Hosts { tmpfs });
            RunVersus {
                local: None,
                redis,
                server_cpu_us_per_login: server_cpu.unwrap_or(f64::NAN),
            }
        };
        FleetConcurrency {
            one_user: versus(&|redis| {
                self.fleet_one_user(
                    workers,
                    OneUser::Host {
                        redis,
                        tmpfs: false,
                    },
                )
            }),
            one_user_tmpfs: versus(&|redis| {
                self.fleet_one_user(workers, OneUser::Host { redis, tmpfs: true })
            }),
            one_user_hosts: hosts(false),
            one_user_hosts_tmpfs: hosts(true),
            distinct_users: versus(&|redis| self.fleet_distinct_users(workers, redis)),
        }
    }

    fn stack_of(&self, redis: bool, tmpfs: bool) -> (&Stack, &'static str) {
        let ctx = self.ctx(tmpfs);
        if redis {
            (&ctx.fleet().stack, "fleet")
        } else {
            (&ctx.ours, "ours")
        }
    }

    /// `user`'s state: with Redis the shared one.
    fn state_of(&self, redis: bool, tmpfs: bool, user: &str) -> LoginState {
        if redis {
            shared_state(self.ctx(tmpfs), user)
        } else {
            peek(&self.ctx(tmpfs).ours, user)
        }
    }

    /// One user, every login the correct code of a step no other login
    /// sends: the `k`-th login to start, whichever process starts it, takes
    /// step index `k` (a counter the processes share), steps two apart, so
    /// that no code is refused for a neighbour's step accepted first (a code
    /// is refused once the next step is accepted). A login is still refused
    /// when, while its process waited for the user's lock, more than the 32
    /// steps the state keeps exactly were accepted: that refusal too is
    /// decided under the lock (and lease), without a write. Checked: every
    /// login accepted or refused, and the state keeps exactly the newest
    /// steps accepted (no lost update).
    fn fleet_one_user(&self, workers: usize, how: OneUser) -> (Run, Option<f64>) {
        let user = test_user(ONE_USER);
        let enrolled = Enrolled::standard();
        let (redis, tmpfs, label) = match how {
            OneUser::Host { redis, tmpfs } => (
                redis,
                tmpfs,
                format!(
                    "{}_{}",
                    if redis { "redis" } else { "local" },
                    if tmpfs { "tmpfs" } else { "disk" }
                ),
            ),
            OneUser::Hosts { tmpfs } => (
                true,
                tmpfs,
                format!("redis_hosts_{}", if tmpfs { "tmpfs" } else { "disk" }),
            ),
        };
        let stack_names: Vec<String> = match how {
            OneUser::Host { .. } => {
                let (stack, name) = self.stack_of(redis, tmpfs);
                stack.enroll(&user, &enrolled);
                vec![name.to_string(); workers]
            }
            OneUser::Hosts { .. } => (0..workers)
                .map(|w| {
                    self.ctx(tmpfs).fleet().hosts[w].0.enroll(&user, &enrolled);
                    format!("fleet-host{w}")
                })
                .collect(),
        };
        let base = FLEET_T0 + 15;
        let plans: Vec<Vec<String>> = stack_names
            .iter()
            .map(|stack_name| {
                (0..PER_WORKER)
                    .map(|_| format!("{stack_name} {} next@{base} -", user.name))
                    .collect()
            })
            .collect();
        let cpu_before = redis.then(|| self.server_cpu_seconds());
        let (results, elapsed) =
            self.run_workers_timed(&format!("fleet-one-user-{label}"), &plans, tmpfs);
        let server_cpu = cpu_before.map(|before| self.server_cpu_seconds() - before);
        let logins = workers * PER_WORKER as usize;
        let mut accepted: Vec<u64> = Vec::new();
        let mut refused = 0;
        let mut other = Vec::new();
        for &(code, now) in results.iter().flatten() {
            match code {
                SUCCESS => accepted.push(now / 30),
                AUTH_ERR => refused += 1,
                _ => other.push(code),
            }
        }
        accepted.sort_unstable();
        let newest_accepted = &accepted[accepted.len().saturating_sub(MAX_KEPT_STEPS)..];
        let state = self.state_of(redis, tmpfs, &user.name);
        let kept = state
            .totp_replay
            .last()
            .map(|r| r.steps.clone())
            .unwrap_or_default();
        let kept_right = kept == newest_accepted;
        let run = self.record(
            &format!("fleet_one_user_{label}"),
            logins,
            elapsed,
            other.is_empty() && kept_right && !accepted.is_empty(),
            format!(
                "{} accepted, {refused} refused (their step fell below the kept ones \
                 while they waited for the user's lock or lease){}; the state keeps {}",
                accepted.len(),
                if other.is_empty() {
                    String::new()
                } else {
                    format!(", other results {other:?}")
                },
                if kept_right {
                    "exactly the newest steps accepted"
                } else {
                    "OTHER STEPS than the newest accepted"
                }
            ),
        );
        (run, server_cpu.map(|s| s * 1e6 / logins as f64))
    }

    /// Every worker its own user, correct codes at successive steps.
    fn fleet_distinct_users(&self, workers: usize, redis: bool) -> (Run, Option<f64>) {
        let (stack, stack_name) = self.stack_of(redis, false);
        let now_of = |k: u64| FLEET_T0 + 15 + 30 * k;
        let mut plans = Vec::new();
        for w in 0..workers as u32 {
            let user = test_user(FIRST_DISTINCT_USER + w);
            let enrolled = Enrolled::standard();
            stack.enroll(&user, &enrolled);
            plans.push(
                (0..PER_WORKER)
                    .map(|k| format!("{stack_name} {} {} -", user.name, now_of(k)))
                    .collect(),
            );
        }
        let backend = if redis { "redis" } else { "local" };
        let cpu_before = redis.then(|| self.server_cpu_seconds());
        let (results, elapsed) =
            self.run_workers_timed(&format!("fleet-distinct-users-{backend}"), &plans, false);
        let server_cpu = cpu_before.map(|before| self.server_cpu_seconds() - before);
        let accepted = results
            .iter()
            .flatten()
            .filter(|(code, _)| *code == SUCCESS)
            .count();
        let last_step = now_of(PER_WORKER - 1) / 30;
        let states_right = (0..workers as u32)
            .filter(|w| {
                let name = format!("tf-user{}", FIRST_DISTINCT_USER + w);
                self.state_of(redis, false, &name).newest_totp_step() == Some(last_step)
            })
            .count();
        let logins = workers * PER_WORKER as usize;
        let run = self.record(
            &format!("fleet_distinct_users_{backend}"),
            logins,
            elapsed,
            accepted == logins && states_right == workers,
            format!(
                "{accepted}/{logins} accepted, {states_right}/{workers} states hold the last step"
            ),
        );
        (run, server_cpu.map(|s| s * 1e6 / logins as f64))
    }

    /// The CPU time redis-server has used so far, user and system, seconds.
    fn server_cpu_seconds(&self) -> f64 {
        let info: String = redis::cmd("INFO")
            .arg("cpu")
            .query(&mut self.disk.fleet().admin())
            .expect("INFO cpu");
        ["used_cpu_sys", "used_cpu_user"]
            .iter()
            .map(|field| {
                info_value(&info, field)
                    .and_then(|v| v.parse::<f64>().ok())
                    .expect("INFO cpu field")
            })
            .sum()
    }
}

fn wall_cell(w: &Wall) -> String {
    format!("{} / {}", fmt_us(w.median_us), fmt_us(w.p99_us))
}

fn fmt_ir(v: f64) -> String {
    format!("{:.1}k", v / 1e3)
}

impl FleetReport {
    pub fn print(&self, workers: u64) {
        println!();
        println!(
            "fleet backend (Redis): {} on 127.0.0.1, no persistence, no replica; our stacks with:",
            self.server
        );
        for line in self.configuration.lines() {
            println!("    {line}");
        }
        println!(
            "  {:<38} {:>19} {:>19} {:>19}",
            "wall per login, median / p99", "local", "redis", "added"
        );
        for v in [&self.totp_correct, &self.totp_wrong] {
            for (label, w) in [
                ("warm-disk", &v.wall_warm_disk),
                ("warm-tmpfs", &v.wall_warm_tmpfs),
                ("cold-disk", &v.wall_cold_disk),
                ("cold-tmpfs", &v.wall_cold_tmpfs),
            ] {
                if let Some(w) = w {
                    println!(
                        "  {:<38} {:>19} {:>19} {:>19}",
                        format!("{} / {}, {label}", v.local_scenario, v.redis_scenario),
                        wall_cell(&w.local),
                        wall_cell(&w.redis),
                        format!("{} / {}", fmt_us(w.added_median_us), fmt_us(w.added_p99_us)),
                    );
                }
            }
        }
        println!(
            "  {:<38} {:>19} {:>19} {:>19}",
            "instructions (this process only)", "local", "redis", "added"
        );
        for v in [&self.totp_correct, &self.totp_wrong] {
            for (label, ir) in [
                ("warm", &v.instructions_warm),
                ("first in a process", &v.instructions_cold),
            ] {
                if let Some(ir) = ir {
                    println!(
                        "  {:<38} {:>19} {:>19} {:>19}",
                        format!("{}, {label}", v.redis_scenario),
                        fmt_ir(ir.local),
                        fmt_ir(ir.redis),
                        fmt_ir(ir.added),
                    );
                }
            }
        }
        let rt = &self.round_trips;
        println!(
            "  round trips from one process, medians: a new connection {}, PING {}, a script like the peek {}; \
             redis-server's own time per script call {} ({} calls in the bench)",
            fmt_us(rt.connect_us),
            fmt_us(rt.ping_us),
            fmt_us(rt.script_us),
            rt.server_us_per_evalsha
                .map_or("-".into(), |v| format!("{v:.1} µs")),
            rt.evalsha_calls.map_or("-".into(), |v| v.to_string()),
        );
        if let Some(c) = &self.concurrency {
            println!("  concurrency, {workers} processes at once:");
            for (label, run) in [
                (
                    "one user, each login the code of a step of its own, disk",
                    &c.one_user,
                ),
                (
                    "one user, each login the code of a step of its own, tmpfs",
                    &c.one_user_tmpfs,
                ),
                (
                    "one user, each process on a host of its own, disk",
                    &c.one_user_hosts,
                ),
                (
                    "one user, each process on a host of its own, tmpfs",
                    &c.one_user_hosts_tmpfs,
                ),
                (
                    "each process its own user, correct codes, disk",
                    &c.distinct_users,
                ),
            ] {
                for (backend, r) in [("local", run.local.as_ref()), ("redis", Some(&run.redis))] {
                    let Some(r) = r else { continue };
                    let server = if backend == "redis" {
                        format!(
                            "; redis-server CPU {:.0} µs per login",
                            run.server_cpu_us_per_login
                        )
                    } else {
                        String::new()
                    };
                    println!(
                        "    {label}, {backend}: {:.0} logins/s over {} logins{server}; {}",
                        r.logins_per_second,
                        r.logins,
                        if r.correct {
                            format!("correct ({})", r.summary)
                        } else {
                            format!("INCONSISTENT: {}", serde_json::json!(r))
                        }
                    );
                }
            }
        }
        println!("  targets:");
        for t in &self.targets {
            crate::report::target(&t.target, t.met, t.detail.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::keys;

    /// The JSON names of the fleet section, and the added time computed
    /// from the two backends' figures.
    #[test]
    fn json_field_names_and_added_time() {
        let local = Figures {
            warm_disk: Some(Wall::of(vec![100.0, 200.0, 300.0])),
            ir_warm: Some(1000.0),
            ..Figures::default()
        };
        let redis = Figures {
            warm_disk: Some(Wall::of(vec![400.0, 500.0, 900.0])),
            ir_warm: Some(1500.0),
            ..Figures::default()
        };
        let v = LoginVersus::of(Scenario::TotpOk, Scenario::FleetTotpOk, &local, &redis);
        let wall = v.wall_warm_disk.as_ref().expect("both measured");
        assert_eq!((wall.added_median_us, wall.added_p99_us), (300.0, 600.0));
        assert!(v.wall_warm_tmpfs.is_none() && v.instructions_cold.is_none());
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(
            keys(&json),
            [
                "instructions_cold",
                "instructions_warm",
                "local_scenario",
                "redis_scenario",
                "wall_cold_disk",
                "wall_cold_tmpfs",
                "wall_warm_disk",
                "wall_warm_tmpfs"
            ]
        );
        assert_eq!(
            keys(&json["wall_warm_disk"]),
            ["added_median_us", "added_p99_us", "local", "redis"]
        );
        assert_eq!(
            json["instructions_warm"],
            serde_json::json!({"local": 1000.0, "redis": 1500.0, "added": 500.0})
        );
    }
}
