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
//! What is measured, per scenario ([`measurement`]):
//! - wall time per login in one long-running process ("warm": the module
//!   was loaded by an earlier login), median and p99;
//! - wall time of the first login through the module in a fresh process
//!   ("cold": one process per sample, after one `pam_permit` transaction so
//!   libpam itself is warm): the module's load cost is in it, as it is in
//!   every sshd connection;
//! - callgrind instructions per login, warm and cold. The measured region is
//!   the function [`scenarios::pam_bench_measured_login`] alone, selected with
//!   `--collect-atstart=no --toggle-collect=pam_bench_measured_login`, so the
//!   preparation of each iteration (state resets, code computation) is not
//!   counted. A few scenarios are cross-checked by differencing whole runs
//!   of N and 0 iterations.
//!
//! Plus the load cost of each module in a C host ([`load`]), a concurrency
//! benchmark (many processes, different users and one user, with the state
//! checked for lost updates: [`concurrency`]), a leak check (memcheck over
//! many logins in one process, and RSS sampled along the way: [`leak`]) and
//! the fleet backend, the login state on a real redis-server, side by side
//! with the local one ([`fleet`]).
//!
//! Internal modes (`loop`, `once`, `worker`, `leak`: [`cli::Mode`]) are the
//! subprocesses the orchestrator starts inside its namespace; they are not
//! meant to be run by hand.

mod cli;
mod concurrency;
mod context;
mod fleet;
mod leak;
mod load;
mod measurement;
mod report;
mod scenarios;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clap::Parser;
use twofactor_integration_tests::namespace;
use twofactor_integration_tests::pam_client::{self, code::SUCCESS, Attempt};

use crate::cli::{Cli, Mode, Options, Phase, Target};
use crate::context::Ctx;
use crate::measurement::{log, Bench};
use crate::report::Extra;
use crate::scenarios::{ga_file, Runner, Scenario};

/// `loop`: unmeasured then measured logins of one scenario.
fn loop_logins(target: &Target, warmup: u64, count: u64) {
    let ctx = Ctx::load(&target.ctx);
    let mut runner = Runner::new(&ctx, target.scenario);
    let first = target.first;
    for i in first..first + warmup {
        runner.warm(i);
    }
    for i in first + warmup..first + warmup + count {
        runner.measured(i);
    }
    println!("ok {count}");
}

/// `once`: the first login through the scenario's module in this process,
/// after a `pam_permit` transaction; prints its wall time in nanoseconds.
fn first_login(target: &Target) {
    let ctx = Ctx::load(&target.ctx);
    let permit = pam_client::authenticate(
        &ctx.permit.confdir,
        &ctx.permit.service,
        "tf-user0",
        &Attempt::default(),
    );
    assert_eq!(permit.code, SUCCESS, "pam_permit warm-up");
    let mut runner = Runner::new(&ctx, target.scenario);
    let elapsed = runner.measured(target.first);
    println!("{}", elapsed.as_nanos());
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

/// `--verbose`: one login per scenario before the measurements, with what
/// the other modules wrote back, to compare with the resets.
fn probe_scenarios(bench: &mut Bench) {
    for s in bench.scenarios() {
        let i = bench.take_iterations(1);
        let mut runner = Runner::new(&bench.disk, s);
        let attempt = runner.attempt(i);
        let (confdir, service) = runner.service();
        let r = pam_client::authenticate(confdir, service, &runner.user.name, &attempt);
        log(&format!("{}: probe {} {:?}", s.name(), r.code, r.shown));
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

fn orchestrate(mut opts: Options) {
    fs::create_dir_all(&opts.out_dir).expect("create --out-dir");
    opts.out_dir = fs::canonicalize(&opts.out_dir).unwrap();
    opts.module = fs::canonicalize(&opts.module).unwrap();

    let ns = namespace::enter();
    let sink = drain_dev_log();
    let machine = report::machine_info();
    // Up until the report is printed; killed when dropped, a panic included.
    let redis = (!opts.skip.contains(&Phase::Fleet)).then(fleet::start_server);
    let url = redis.as_ref().map(|server| server.url());
    let disk = context::setup(&ns, &opts.module, &opts.out_dir, false, url.as_deref());
    let tmpfs = context::setup(&ns, &opts.module, &opts.out_dir, true, url.as_deref());
    let mut bench = Bench {
        disk,
        tmpfs,
        opts,
        next_iteration: 0,
        figures: BTreeMap::new(),
        extra: Extra::default(),
    };
    if bench.disk.ga.is_none() {
        log("pam_google_authenticator.so not installed: skipped (scripts/install-deps.sh --bench)");
    }
    if bench.disk.oath.is_none() {
        log("pam_oath.so not installed: skipped (scripts/install-deps.sh --bench)");
    }

    if bench.opts.verbose {
        probe_scenarios(&mut bench);
    }
    let scenarios = bench.scenarios();
    bench.measure(&scenarios);
    if !bench.skip(Phase::Callgrind) && !bench.skip(Phase::Crosscheck) {
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
    if !bench.skip(Phase::Load) {
        bench.extra.load = Some(bench.run_load_probe());
    }
    if !bench.skip(Phase::Concurrency) {
        bench.extra.concurrency = Some(bench.run_concurrency());
    }
    if redis.is_some() {
        let concurrency = (!bench.skip(Phase::Concurrency)).then(|| {
            log("fleet: concurrency, local and Redis backends");
            bench.run_fleet_concurrency()
        });
        bench.extra.fleet = Some(fleet::FleetReport::of(&bench, concurrency));
    }
    if !(bench.skip(Phase::Leak) && bench.skip(Phase::Memcheck)) {
        bench.extra.leak = Some(bench.run_leak());
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
    report::print_report(&bench, &machine, sink_lines);
    if let Some(path) = &bench.opts.json {
        report::write_json(path, &bench, &machine, sink_lines);
    }
    drop(redis);
}

fn main() {
    // pam_oath writes its timestamps in local time; keep that UTC.
    std::env::set_var("TZ", "UTC");
    let cli = Cli::parse();
    match cli.mode {
        Some(Mode::Loop {
            target,
            warmup,
            count,
        }) => loop_logins(&target, warmup, count),
        Some(Mode::Once { target }) => first_login(&target),
        Some(Mode::Worker {
            ctx,
            plan,
            start_at,
            counter,
        }) => {
            let plan = fs::read_to_string(plan).expect("read plan");
            let counter = counter.map(|path| concurrency::SharedCounter::open(&path));
            concurrency::worker(
                &Ctx::load(&ctx),
                &plan,
                u128::from(start_at),
                counter.as_ref(),
            );
        }
        Some(Mode::Leak {
            ctx,
            count,
            rss_every,
            first,
        }) => leak::logins_in_one_process(&Ctx::load(&ctx), count, rss_every, first),
        None => orchestrate(cli.run.options()),
    }
}
