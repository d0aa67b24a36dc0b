//! Abuse resistance through the real libpam: rate limits and lockout, the
//! grace period, concurrent logins, logins killed at random instants, a full
//! disk, and odd home directories.

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use libtest_mimic::Failed;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use twofactor_core::enrollment::Enrollment;
use twofactor_core::state::LoginState;
use twofactor_integration_tests::checks::{assert_logged, check};
use twofactor_integration_tests::descriptors::{
    check_standard_streams_only, read_listing, write_listing_script, LeakedSecret,
};
use twofactor_integration_tests::fixtures::{Enrolled, Stack};
use twofactor_integration_tests::namespace::{self, TestNamespace};
use twofactor_integration_tests::pam_client::{self, code, Attempt, SessionLogin};
use twofactor_integration_tests::redis_servers::{RedisOptions, RedisServer};
use twofactor_integration_tests::run_trials;
use twofactor_integration_tests::test_clock_module;
use twofactor_integration_tests::users::{user, TestUser};

const NOW: u64 = 1_800_000_000;
const KILL_TRIALS: usize = 1000;
/// Fewer with the fleet backend: a login killed holding the account's
/// lease makes the next trial wait for it to run out.
const KILL_TRIALS_REDIS: usize = 200;
/// Seed for the kill instants of `logins_killed_at_random_instants`, to
/// replay a failed run (a fresh random seed when unset).
const KILL_SEED_VAR: &str = "TWOFACTOR_KILL_SEED";
const CONCURRENT_LOGINS: usize = 100;

fn stack(ns: &TestNamespace, service: &str, args: &str, extra_config: &str) -> Stack {
    Stack::new(ns, service, &test_clock_module(), args, extra_config)
}

fn state_of(stack: &Stack, user: &str) -> Result<LoginState, Failed> {
    Ok(stack.state_of(user)?)
}

fn code_failures_lock_codes_not_backup_codes(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "lock-codes", "", "");
    let u = user(0);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let wrong = enrolled.wrong_code(NOW);
    // Successes never count: many logins in a row lock nothing.
    for i in 0..8u64 {
        let t = NOW - 3600 + i * 30;
        let result = stack.login_from(&u.name, &[&enrolled.code_at(t)], t, None);
        check(
            result.code == code::SUCCESS,
            format!("success: got {}", code::describe(result.code)),
        )?;
    }
    for i in 0..4 {
        let result = stack.login_from(&u.name, &[&wrong], NOW + i, None);
        check(
            result.code == code::AUTH_ERR && result.prompts().len() == 1,
            format!("failure {i}: got {}", code::describe(result.code)),
        )?;
    }
    let fifth = stack.login_from(&u.name, &[&wrong], NOW + 4, None);
    check(
        fifth.code == code::AUTH_ERR,
        format!("fifth failure: got {}", code::describe(fifth.code)),
    )?;
    // Failures at NOW..NOW+4: the lock lifts when the first leaves the 900 s window.
    let until = "2027-01-15 08:15:00 UTC";
    assert_logged(
        &stack,
        &format!("lockout started: verification codes locked until {until}"),
    )?;

    // Locked: told before the prompt, and the right code is not even checked.
    let right = enrolled.code_at(NOW + 30);
    let locked = stack.login_from(&u.name, &[&right], NOW + 30, None);
    check(
        locked.code == code::AUTH_ERR,
        format!("right code while locked gave {}", locked.code),
    )?;
    check(
        locked.shown_error(&format!(
            "verification codes are locked until {until}. A backup code still works."
        )),
        format!("no lockout message: {:?}", locked.shown),
    )?;
    assert_logged(&stack, "verification codes locked out until 2027-01-15 08:15:00 UTC (too many failures), not checked")?;
    let state = state_of(&stack, &u.name)?;
    check(
        state.failures.len() == 5,
        format!("locked attempts must not count: {}", state.failures.len()),
    )?;
    check(
        state.newest_totp_step() < Some((NOW + 30) / 30),
        "a locked attempt recorded a step",
    )?;

    // A backup code still works while codes are locked.
    let backup = stack.login_from(&u.name, &[&enrolled.backup_codes[0]], NOW + 40, None);
    check(
        backup.code == code::SUCCESS,
        format!("backup code while codes locked gave {}", backup.code),
    )?;

    // When the window has passed, codes work again.
    let later = NOW + 900;
    let result = stack.login_from(&u.name, &[&enrolled.code_at(later)], later, None);
    check(
        result.code == code::SUCCESS,
        format!("after the window: {}", result.code),
    )
}

fn backup_code_failures_lock_backup_codes(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "lock-backup", "", "");
    let u = user(1);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let not_a_code = "zzzz-zzzz-zzzz-zzzz";
    for i in 0..10 {
        let result = stack.login_from(&u.name, &[not_a_code], NOW + i, None);
        check(
            result.code == code::AUTH_ERR,
            format!("wrong backup: got {}", code::describe(result.code)),
        )?;
    }
    assert_logged(
        &stack,
        "lockout started: backup codes locked until 2027-01-15 09:00:00 UTC",
    )?;
    let result = stack.login_from(&u.name, &[&enrolled.backup_codes[1]], NOW + 20, None);
    check(
        result.code == code::AUTH_ERR,
        format!(
            "valid backup code while backup codes are locked: got {}",
            code::describe(result.code)
        ),
    )?;
    check(
        result.shown_error("backup codes locked until"),
        format!("{:?}", result.shown),
    )?;
    assert_logged(&stack, "backup codes locked out until")?;
    // TOTP has its own budget.
    let result = stack.login_from(&u.name, &[&enrolled.code_at(NOW + 30)], NOW + 30, None);
    check(
        result.code == code::SUCCESS,
        format!(
            "TOTP while backup codes are locked: got {}",
            code::describe(result.code)
        ),
    )?;
    // Both locked: told, and not asked at all.
    let wrong = enrolled.wrong_code(NOW);
    for i in 0..5 {
        stack.login_from(&u.name, &[&wrong], NOW + 40 + i, None);
    }
    let result = stack.login_from(&u.name, &[], NOW + 60, None);
    check(
        result.code == code::AUTH_ERR && result.prompts().is_empty(),
        format!(
            "fully locked: got {}, shown {:?}",
            code::describe(result.code),
            result.shown
        ),
    )?;
    check(
        result.shown_error("this account is locked until"),
        format!("{:?}", result.shown),
    )?;
    assert_logged(&stack, "nothing checked")?;
    // The backup code was never spent: it works once the lock is over.
    let later = NOW + 3600 + 20;
    let result = stack.login_from(&u.name, &[&enrolled.backup_codes[1]], later, None);
    check(
        result.code == code::SUCCESS,
        format!("backup code after the lock: {}", result.code),
    )
}

fn rate_limit_by_host(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "lock-host", "", "rate_limit_by_host = true");
    let u = user(2);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let wrong = enrolled.wrong_code(NOW);
    let attacker = Some("198.51.100.66");
    for i in 0..5 {
        stack.login_from(&u.name, &[&wrong], NOW + i, attacker);
    }
    let result = stack.login_from(&u.name, &[&enrolled.code_at(NOW + 30)], NOW + 30, attacker);
    check(
        result.code == code::AUTH_ERR,
        format!(
            "the attacking host is locked: got {}",
            code::describe(result.code)
        ),
    )?;
    let result = stack.login_from(
        &u.name,
        &[&enrolled.code_at(NOW + 30)],
        NOW + 30,
        Some("203.0.113.5"),
    );
    check(
        result.code == code::SUCCESS,
        format!("another host is not locked: {}", result.code),
    )?;
    let state = state_of(&stack, &u.name)?;
    check(
        state
            .failures
            .iter()
            .all(|f| f.host.as_deref() == Some("198.51.100.66")),
        "failures carry their host",
    )
}

fn grace_period(ns: &TestNamespace) -> Result<(), Failed> {
    let off = stack(ns, "grace-off", "", "");
    let on = stack(ns, "grace-on", "", "grace_period = 300");
    let u = user(3);
    let enrolled = Enrolled::standard();
    off.enroll(&u, &enrolled);
    let home = Some("192.0.2.10");
    let result = off.login_from(&u.name, &[&enrolled.code_at(NOW)], NOW, home);
    check(
        result.code == code::SUCCESS,
        format!("off: first: got {}", code::describe(result.code)),
    )?;
    let again = off.login_from(&u.name, &[], NOW + 10, home);
    check(
        again.code != code::SUCCESS && again.prompts().len() == 1,
        format!(
            "grace period is off by default: got {}",
            code::describe(again.code)
        ),
    )?;

    let v = user(4);
    on.enroll(&v, &enrolled);
    let result = on.login_from(&v.name, &[&enrolled.code_at(NOW)], NOW, home);
    check(
        result.code == code::SUCCESS,
        format!("on: first: got {}", code::describe(result.code)),
    )?;
    let within = on.login_from(&v.name, &[], NOW + 299, home);
    check(
        within.code == code::SUCCESS && within.prompts().is_empty(),
        format!("within grace: {:?}", within),
    )?;
    assert_logged(
        &on,
        "second factor not asked: within the grace period of 300 s",
    )?;
    let elsewhere = on.login_from(&v.name, &[], NOW + 100, Some("192.0.2.11"));
    check(
        elsewhere.code != code::SUCCESS && elsewhere.prompts().len() == 1,
        format!(
            "another host is asked: got {}",
            code::describe(elsewhere.code)
        ),
    )?;
    // The grace counts from the verification, not from logins it let through.
    let expired = on.login_from(&v.name, &[], NOW + 300, home);
    check(
        expired.code != code::SUCCESS && expired.prompts().len() == 1,
        format!("grace expired: got {}", code::describe(expired.code)),
    )?;
    // Local logins: the terminal (in one terminal session) is the origin.
    let t = NOW + 600;
    let tty_login = |tty: &str, answers: Vec<String>, now: u64| SessionLogin {
        service: &on.service,
        user: &v.name,
        attempt: Attempt {
            answers,
            tty: Some(tty.to_string()),
            env: vec![format!("PAM_TWOFACTOR_TEST_NOW={now}")],
            ..Attempt::default()
        },
    };
    let results = pam_client::authenticate_in_one_session(
        Path::new(env!("CARGO_BIN_EXE_pam_login")),
        &on.confdir,
        &[
            tty_login("/dev/tty3", vec![enrolled.code_at(t)], t),
            tty_login("/dev/tty3", vec![], t + 10),
            tty_login("/dev/tty4", vec![], t + 10),
        ],
    )?;
    let [result, same, other] = &results[..] else {
        return Err(format!("three logins, results: {results:?}").into());
    };
    check(
        result.code == code::SUCCESS,
        format!("tty first: got {}", code::describe(result.code)),
    )?;
    check(
        same.code == code::SUCCESS && same.prompts().is_empty(),
        format!(
            "same terminal within grace: got {}",
            code::describe(same.code)
        ),
    )?;
    check(
        other.code != code::SUCCESS && other.prompts().len() == 1,
        format!(
            "another terminal is asked: got {}",
            code::describe(other.code)
        ),
    )?;

    // With forward_pass the password must still be asked for and handed on.
    let forward = stack(ns, "grace-forward", "forward_pass", "grace_period = 300");
    let w = user(22);
    forward.enroll(&w, &enrolled);
    let answer = format!("pw{}", enrolled.code_at(NOW));
    let result = forward.login_from(&w.name, &[&answer], NOW, home);
    check(
        result.code == code::SUCCESS,
        format!("forward: first: got {}", code::describe(result.code)),
    )?;
    let again = forward.login_from(&w.name, &[], NOW + 10, home);
    check(
        again.prompts().len() == 1,
        "forward_pass stacks get no grace period",
    )
}

fn concurrent_logins(ns: &TestNamespace) -> Result<(), Failed> {
    // Limits high enough that 100 failures lock nothing and are all kept:
    // with a limit off (0) only ratelimit::KEPT_WITHOUT_LIMIT records are
    // kept, too few to show a lost update.
    let stack = Arc::new(stack(
        ns,
        "concurrent",
        "",
        // Limits no run reaches (the state keeps as many failures as the
        // largest limit needs; a limit that is off needs none).
        "max_code_failures = 1000\nmax_backup_code_failures = 1000",
    ));
    let enrolled = Arc::new(Enrolled::standard());
    let run_all =
        |user_name: String, answers: Arc<dyn Fn(usize) -> String + Send + Sync>, now: u64| {
            let barrier = Arc::new(Barrier::new(CONCURRENT_LOGINS));
            let handles: Vec<_> = (0..CONCURRENT_LOGINS)
                .map(|i| {
                    let (stack, barrier, answers, user_name) = (
                        Arc::clone(&stack),
                        Arc::clone(&barrier),
                        Arc::clone(&answers),
                        user_name.clone(),
                    );
                    std::thread::spawn(move || {
                        barrier.wait();
                        stack.login_from(&user_name, &[&answers(i)], now, None).code
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("login thread"))
                .collect::<Vec<i32>>()
        };
    // The same backup code 100 times at once: exactly one success.
    let u = user(5);
    stack.enroll(&u, &enrolled);
    let backup = enrolled.backup_codes[0].clone();
    let codes = run_all(u.name.clone(), Arc::new(move |_| backup.clone()), NOW);
    let successes = codes.iter().filter(|c| **c == code::SUCCESS).count();
    check(
        successes == 1,
        format!("same backup code: {successes} successes"),
    )?;
    check(
        codes
            .iter()
            .all(|c| *c == code::SUCCESS || *c == code::AUTH_ERR),
        format!("{codes:?}"),
    )?;

    // The same TOTP code 100 times at once: exactly one success.
    let v = user(6);
    stack.enroll(&v, &enrolled);
    let totp = enrolled.code_at(NOW);
    let codes = run_all(v.name.clone(), Arc::new(move |_| totp.clone()), NOW);
    let successes = codes.iter().filter(|c| **c == code::SUCCESS).count();
    check(
        successes == 1,
        format!("same TOTP code: {successes} successes"),
    )?;

    // 100 concurrent failures: every one recorded (no lost update).
    let w = user(7);
    stack.enroll(&w, &enrolled);
    let wrong = enrolled.wrong_code(NOW);
    let codes = run_all(w.name.clone(), Arc::new(move |_| wrong.clone()), NOW);
    check(
        codes.iter().all(|c| *c == code::AUTH_ERR),
        format!("all wrong: got {codes:?}"),
    )?;
    let failures = state_of(&stack, &w.name)?.failures.len();
    check(
        failures == CONCURRENT_LOGINS,
        format!("{failures} failures recorded of {CONCURRENT_LOGINS}"),
    )?;

    // With the default limit, 100 concurrent guesses check exactly 5.
    let limited = stack_with_default_limits(ns)?;
    let x = user(8);
    limited.enroll(&x, &enrolled);
    let wrong = enrolled.wrong_code(NOW);
    let limited = Arc::new(limited);
    let barrier = Arc::new(Barrier::new(CONCURRENT_LOGINS));
    let handles: Vec<_> = (0..CONCURRENT_LOGINS)
        .map(|_| {
            let (limited, barrier, wrong, name) = (
                Arc::clone(&limited),
                Arc::clone(&barrier),
                wrong.clone(),
                x.name.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                limited.login_from(&name, &[&wrong], NOW, None).code
            })
        })
        .collect();
    for h in handles {
        let got = h.join().expect("thread");
        check(
            got == code::AUTH_ERR,
            format!("guess refused: got {}", code::describe(got)),
        )?;
    }
    let failures = state_of(&limited, &x.name)?.failures.len();
    check(
        failures == 5,
        format!("{failures} guesses were checked, the limit is 5"),
    )
}

fn stack_with_default_limits(ns: &TestNamespace) -> Result<Stack, Failed> {
    Ok(stack(ns, "concurrent-limited", "", ""))
}

/// Child mode: log in over and over (a wrong code, a backup code, a TOTP
/// code) and print each confirmed success, until killed.
fn login_loop() -> ! {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"));
    let confdir = PathBuf::from(var("TF_CONFDIR"));
    let service = var("TF_SERVICE");
    let user = var("TF_USER");
    let enrollment =
        Enrollment::parse(&fs::read_to_string(var("TF_ENROLLMENT")).unwrap(), "loop").unwrap();
    let totp = enrollment.totp.expect("TOTP enrolled");
    let backup_codes: Vec<String> = fs::read_to_string(var("TF_BACKUP_CODES"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut step: u64 = var("TF_FIRST_STEP").parse().unwrap();
    let mut backup: usize = var("TF_FIRST_BACKUP").parse().unwrap();
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let login = |answer: &str, now: u64| {
        pam_client::authenticate(
            &confdir,
            &service,
            &user,
            &Attempt {
                answers: vec![answer.to_string()],
                env: vec![format!("PAM_TWOFACTOR_TEST_NOW={now}")],
                ..Attempt::default()
            },
        )
        .code
    };
    loop {
        let now = step * 30;
        let right = totp.code_at(now).to_string();
        let wrong = format!(
            "{:06}",
            (right.parse::<u32>().unwrap() + 500_000) % 1_000_000
        );
        login(&wrong, now);
        if backup < backup_codes.len() {
            if login(&backup_codes[backup], now) == code::SUCCESS {
                writeln!(out, "backup {backup}").unwrap();
                out.flush().unwrap();
            }
            backup += 1;
        }
        if login(&right, now) == code::SUCCESS {
            writeln!(out, "totp {step}").unwrap();
            out.flush().unwrap();
        }
        step += 1;
    }
}

fn logins_killed_at_random_instants(ns: &TestNamespace) -> Result<(), Failed> {
    killed_at_random_instants(ns, Backend::Local)
}

/// The same with the fleet backend: a login killed while it holds the
/// account's lease delays the next by at most the lease, and nothing a
/// confirmed login recorded is lost, on the server or on the host.
fn logins_killed_at_random_instants_with_redis(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    killed_at_random_instants(ns, Backend::Redis(&server))
}

/// Where the login state of a kill test lives.
#[derive(Clone, Copy)]
enum Backend<'a> {
    Local,
    Redis(&'a RedisServer),
}

fn killed_at_random_instants(ns: &TestNamespace, backend: Backend) -> Result<(), Failed> {
    let seed = match std::env::var(KILL_SEED_VAR) {
        Ok(text) => text
            .parse::<u64>()
            .map_err(|e| format!("{KILL_SEED_VAR}={text:?}: {e}"))?,
        Err(_) => rand::random(),
    };
    // Printed before the run, so that a run that hangs or dies still tells
    // it. The seed fixes the instants; how far each login gets by then still
    // depends on the machine's speed.
    eprintln!("  logins_killed_at_random_instants: {KILL_SEED_VAR}={seed}");
    kill_logins(ns, StdRng::seed_from_u64(seed), backend).map_err(|failed| {
        let why = failed.message().unwrap_or("failed");
        format!("{why} ({KILL_SEED_VAR}={seed} replays the kill instants)").into()
    })
}

/// Log in over and over in child processes killed after random delays from
/// `rng`, and check after each kill that no confirmed login was undone.
fn kill_logins(ns: &TestNamespace, mut rng: StdRng, backend: Backend) -> Result<(), Failed> {
    let limits_off = "max_code_failures = 0\nmax_backup_code_failures = 0";
    let (stack, u, trials) = match backend {
        Backend::Local => (stack(ns, "kill", "", limits_off), user(9), KILL_TRIALS),
        Backend::Redis(server) => (
            stack(
                ns,
                "kill-redis",
                "",
                &format!(
                    "{limits_off}\nstate_backend = \"redis\"\nredis_url = \"{}\"\n\
                     redis_wait_replicas = 0",
                    server.url()
                ),
            ),
            user(26),
            KILL_TRIALS_REDIS,
        ),
    };
    let enrolled = Enrolled::new(twofactor_core::totp::Algorithm::SHA1, 6, 30, 100);
    let enrollment_path = stack.enroll(&u, &enrolled);
    let codes_file = ns.scratch.join(format!("{}-backup-codes", stack.service));
    fs::write(&codes_file, enrolled.backup_codes.join("\n"))?;
    let state_path = stack.state_dir.join(format!("{}.state", u.name));
    let salts: Vec<String> = enrolled
        .enrollment
        .backup_codes
        .iter()
        .map(|c| c.salt.clone())
        .collect();

    let mut last_step = NOW / 30;
    let mut observed_step: Option<u64> = None;
    let mut spent_seen: Vec<String> = Vec::new();
    let mut confirmed_backup: Vec<usize> = Vec::new();
    let mut confirmed_steps = 0usize;
    let mut newest_failure = 0u64;
    // Kill within this many microseconds after start-up; widened when a
    // slow (loaded) machine lets no login complete in that time.
    let mut kill_window_us: u64 = match backend {
        Backend::Local => 40_000,
        // A login also connects to the server and takes the lease.
        Backend::Redis(_) => 100_000,
    };
    let mut completed_at_last_check = (0, 0);
    for trial in 0..trials {
        if trial % 50 == 49 {
            // Widened while either kind of login stalls (backup codes only
            // while some are left to spend).
            let completed = (confirmed_steps, confirmed_backup.len());
            let backup_left = spent_seen.len() < enrolled.backup_codes.len();
            if completed.0 == completed_at_last_check.0
                || (backup_left && completed.1 == completed_at_last_check.1)
            {
                kill_window_us = (kill_window_us * 2).min(1_000_000);
            }
            completed_at_last_check = completed;
        }
        let first_backup = spent_seen.len();
        let mut child = Command::new(std::env::current_exe()?)
            .env("TWOFACTOR_LOGIN_LOOP", "1")
            .env("TF_CONFDIR", &stack.confdir)
            .env("TF_SERVICE", &stack.service)
            .env("TF_USER", &u.name)
            .env("TF_ENROLLMENT", &enrollment_path)
            .env("TF_BACKUP_CODES", &codes_file)
            .env("TF_FIRST_STEP", (last_step + 1).to_string())
            .env("TF_FIRST_BACKUP", first_backup.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        // Wait until the child is past its start-up, then kill it somewhere
        // in its next few logins (one takes a few milliseconds).
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut ready = String::new();
        stdout.read_line(&mut ready)?;
        check(
            ready == "ready\n",
            format!("trial {trial}: child said {ready:?}"),
        )?;
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..kill_window_us)));
        child.kill()?;
        child.wait()?;
        let mut printed = String::new();
        stdout.read_to_string(&mut printed)?;

        let text = match fs::read_to_string(&state_path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound && spent_seen.is_empty() => continue,
            Err(e) => return Err(format!("trial {trial}: state file unreadable: {e}").into()),
        };
        let local = LoginState::parse(&text, "state").map_err(|e| format!("trial {trial}: {e}"))?;
        // What a confirmed login recorded must be on the host and, with the
        // fleet backend, on the server too: the checks below see the
        // weaker of the two (one is written after the other).
        let state = match backend {
            Backend::Local => local,
            Backend::Redis(server) => {
                let mut admin = server.admin()?;
                let key = twofactor_core::shared_state::account_keys("tf", &u.name).0;
                let shared: Option<String> = redis::cmd("GET").arg(&key).query(&mut admin)?;
                let shared = LoginState::parse(shared.as_deref().unwrap_or(""), &key)
                    .map_err(|e| format!("trial {trial}: {e}"))?;
                weaker_of(local, shared)
            }
        };
        for line in printed.lines() {
            match line.split_once(' ') {
                Some(("backup", i)) => confirmed_backup.push(i.parse()?),
                Some(("totp", step)) => {
                    confirmed_steps += 1;
                    let step: u64 = step.parse()?;
                    check(
                        state.newest_totp_step() >= Some(step),
                        format!("trial {trial}: confirmed step {step} lost"),
                    )?;
                }
                _ => return Err(format!("trial {trial}: unexpected child output {line:?}").into()),
            }
        }
        for i in &confirmed_backup {
            check(
                state.is_spent(&salts[*i]),
                format!("trial {trial}: confirmed backup code {i} is not spent"),
            )?;
        }
        for id in &spent_seen {
            check(
                state.is_spent(id),
                format!("trial {trial}: a spent code became valid again"),
            )?;
        }
        check(
            state.newest_totp_step() >= observed_step,
            format!(
                "trial {trial}: last step went back {observed_step:?} -> {:?}",
                state.newest_totp_step()
            ),
        )?;
        observed_step = state.newest_totp_step();
        let newest = state.failures.last().map_or(0, |f| f.time);
        check(
            newest >= newest_failure,
            format!("trial {trial}: newest failure went back"),
        )?;
        newest_failure = newest;
        last_step = observed_step.unwrap_or(0).max(last_step);
        spent_seen = state.spent_backup_codes.clone();
    }
    check(
        confirmed_steps > 0 && !confirmed_backup.is_empty(),
        "the kills never let a login complete",
    )?;
    // Every confirmed backup code stays spent.
    for i in confirmed_backup.iter().take(10) {
        let result = stack.login_at(&u.name, &enrolled.backup_codes[*i], (last_step + 1) * 30);
        check(
            result.code == code::AUTH_ERR,
            format!(
                "confirmed backup code {i} accepted again: got {}",
                code::describe(result.code)
            ),
        )?;
    }
    // Orphaned temporaries were cleaned by the next locked login.
    let leftovers: Vec<_> = fs::read_dir(&stack.state_dir)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    check(
        leftovers.is_empty(),
        format!("{} temporary files left", leftovers.len()),
    )?;
    eprintln!(
        "kill -9 trials ({}): {trials}, confirmed TOTP logins: {confirmed_steps}, confirmed backup codes: {}",
        match backend {
            Backend::Local => "local state",
            Backend::Redis(_) => "Redis",
        },
        confirmed_backup.len()
    );
    Ok(())
}

/// What both states hold: the older last step and the spent codes both
/// know (so a check that something is recorded passes only if both have
/// it); the failures of the one whose newest failure is older.
fn weaker_of(local: LoginState, shared: LoginState) -> LoginState {
    let local_step = local.newest_totp_step();
    let shared_step = shared.newest_totp_step();
    let mut weaker = if local_step <= shared_step {
        local.clone()
    } else {
        shared.clone()
    };
    weaker.spent_backup_codes = local
        .spent_backup_codes
        .iter()
        .filter(|id| shared.is_spent(id))
        .cloned()
        .collect();
    let newest = |s: &LoginState| s.failures.last().map_or(0, |f| f.time);
    weaker.failures = if newest(&local) <= newest(&shared) {
        local.failures
    } else {
        shared.failures
    };
    weaker
}

fn disk_full_fails_closed(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "diskfull", "", "");
    let u = user(10);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    fs::create_dir(&stack.state_dir)?;
    nix::mount::mount(
        Some("tmpfs"),
        &stack.state_dir,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=64k,mode=0711"),
    )?;
    let result = stack.login_from(&u.name, &[&enrolled.code_at(NOW)], NOW, None);
    check(
        result.code == code::SUCCESS,
        format!("before: got {}", code::describe(result.code)),
    )?;
    let state_path = stack.state_dir.join(format!("{}.state", u.name));
    let before = fs::read(&state_path)?;
    let mut filler = fs::File::create(stack.state_dir.join("filler"))?;
    let block = vec![0u8; 4096];
    while filler.write_all(&block).is_ok() {}
    drop(filler);

    let result = stack.login_from(&u.name, &[&enrolled.backup_codes[0]], NOW + 30, None);
    check(
        result.code == code::AUTHINFO_UNAVAIL,
        format!("disk full: {}", result.code),
    )?;
    assert_logged(&stack, "No space left on device")?;
    check(
        fs::read(&state_path)? == before,
        "the state changed on a full disk",
    )?;

    fs::remove_file(stack.state_dir.join("filler"))?;
    let result = stack.login_from(&u.name, &[&enrolled.backup_codes[0]], NOW + 30, None);
    check(
        result.code == code::SUCCESS,
        format!(
            "the backup code was not spent by the failed login: got {}",
            code::describe(result.code)
        ),
    )?;
    nix::mount::umount(&stack.state_dir)?;
    Ok(())
}

fn odd_homes(ns: &TestNamespace) -> Result<(), Failed> {
    for (service, policy) in [("homes-fail", "fail"), ("homes-ignore", "ignore")] {
        let stack = stack(ns, service, "", "");
        // The default enrollment path, in the users' homes.
        fs::write(
            &stack.config_path,
            format!(
                "state_dir = \"{}\"\nunenrolled = \"{policy}\"\n",
                stack.state_dir.display()
            ),
        )?;
        let enrolled = Enrolled::standard();
        let text = enrolled.enrollment.to_json().to_string();
        let place = |index: u32| -> Result<(twofactor_integration_tests::users::TestUser, PathBuf), Failed> {
            let u = user(index);
            let dir = u.home.join(".config/twofactor");
            fs::create_dir_all(&dir)?;
            for d in [u.home.join(".config"), dir.clone()] {
                chown(&d, Some(u.uid), Some(u.uid))?;
                fs::set_permissions(&d, fs::Permissions::from_mode(0o700))?;
            }
            let path = dir.join("enrollment.json");
            let _ = fs::remove_file(&path);
            fs::write(&path, &text)?;
            chown(&path, Some(u.uid), Some(u.uid))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
            Ok((u, path))
        };
        let offset = if service == "homes-fail" { 11 } else { 16 };

        // Only the user can read the home (as on a root-squashed network
        // mount): the module reads as the user, so this works.
        let (u, _) = place(offset)?;
        fs::set_permissions(&u.home, fs::Permissions::from_mode(0o700))?;
        let result = stack.login_from(&u.name, &[&enrolled.code_at(NOW)], NOW, None);
        check(
            result.code == code::SUCCESS,
            format!("{service}: private home: {}", result.code),
        )?;

        // A home the user cannot enter: root could, the module must not.
        let (u, path) = place(offset + 1)?;
        chown(&u.home, Some(0), Some(0))?;
        fs::set_permissions(&u.home, fs::Permissions::from_mode(0o700))?;
        let result = stack.login_from(&u.name, &[&enrolled.code_at(NOW)], NOW, None);
        check(
            result.code == code::AUTHINFO_UNAVAIL,
            format!("{service}: unreadable home: {}", result.code),
        )?;
        assert_logged(
            &stack,
            &format!("{} cannot be used: Permission denied", path.display()),
        )?;

        // The enrollment path is a device.
        let (u, path) = place(offset + 2)?;
        fs::remove_file(&path)?;
        nix::sys::stat::mknod(
            &path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(1, 3),
        )?;
        chown(&path, Some(u.uid), Some(u.uid))?;
        let result = stack.login_from(&u.name, &[&enrolled.code_at(NOW)], NOW, None);
        check(
            result.code == code::AUTHINFO_UNAVAIL,
            format!("{service}: device: {}", result.code),
        )?;
        assert_logged(
            &stack,
            &format!("{} is a device, not a regular file", path.display()),
        )?;

        // No enrollment at all: the policy decides.
        let u = user(offset + 3);
        let result = stack.login_from(&u.name, &["123456"], NOW, None);
        let expected = if service == "homes-fail" {
            code::AUTH_ERR
        } else {
            code::PERM_DENIED
        };
        check(
            result.code == expected,
            format!("{service}: unenrolled: {}", result.code),
        )?;
    }
    Ok(())
}

/// `u`'s enrollment at the default path, `~/.config/twofactor/enrollment.json`,
/// with the directories private to the user.
fn enroll_in_home(u: &TestUser, text: &str) -> Result<PathBuf, Failed> {
    let dir = u.home.join(".config/twofactor");
    fs::create_dir_all(&dir)?;
    for d in [u.home.join(".config"), dir.clone()] {
        chown(&d, Some(u.uid), Some(u.uid))?;
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700))?;
    }
    let path = dir.join("enrollment.json");
    let _ = fs::remove_file(&path);
    fs::write(&path, text)?;
    chown(&path, Some(u.uid), Some(u.uid))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    Ok(path)
}

/// Every directory from the home down to the enrollment is checked, under
/// `unenrolled = "ignore"` and with a module after this one that lets
/// everyone in: a directory others can change must fail the login, never
/// pass it on as "not enrolled".
fn unsafe_directories_fail_closed(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "chain", "", "");
    fs::write(
        &stack.config_path,
        format!(
            "state_dir = \"{}\"\nunenrolled = \"ignore\"\n",
            stack.state_dir.display()
        ),
    )?;
    stack.write_stack(&format!(
        "auth required {} config={}\nauth required pam_permit.so\n",
        test_clock_module().display(),
        stack.config_path.display()
    ));
    let enrolled = Enrolled::standard();
    let text = enrolled.enrollment.to_json().to_string();
    let wrong = enrolled.wrong_code(NOW);

    // The normal layout: the code decides; no enrollment passes on.
    let u = user(23);
    enroll_in_home(&u, &text)?;
    let result = stack.login_from(&u.name, &[&enrolled.code_at(NOW)], NOW, None);
    check(
        result.code == code::SUCCESS,
        format!("normal: {}", result.code),
    )?;
    let result = stack.login_from(&u.name, &[&wrong], NOW, None);
    check(
        result.code == code::AUTH_ERR,
        format!("normal, wrong code: {}", result.code),
    )?;
    let result = stack.login_from(&user(24).name, &[], NOW, None);
    check(
        result.code == code::SUCCESS,
        format!("not enrolled: {}", result.code),
    )?;

    // A home reached through a symbolic link (/home on another disk).
    let u = user(25);
    enroll_in_home(&u, &text)?;
    let real_homes = ns.scratch.join("real-homes");
    fs::create_dir_all(&real_homes)?;
    fs::set_permissions(&real_homes, fs::Permissions::from_mode(0o755))?;
    fs::rename(&u.home, real_homes.join(&u.name))?;
    std::os::unix::fs::symlink(real_homes.join(&u.name), &u.home)?;
    let result = stack.login_from(&u.name, &[&enrolled.code_at(NOW)], NOW, None);
    check(
        result.code == code::SUCCESS,
        format!("linked home: {}", result.code),
    )?;

    type Spoil = fn(&TestUser) -> Result<(), std::io::Error>;
    let cases: [(u32, &str, Spoil, &str); 5] = [
        (
            26,
            // Another user renamed the enrollment's directory away.
            "world-writable, enrollment moved away",
            |u| {
                let config = u.home.join(".config");
                fs::set_permissions(&config, fs::Permissions::from_mode(0o777))?;
                fs::rename(config.join("twofactor"), config.join("moved"))
            },
            "/.config is writable by group or others (mode 0777)",
        ),
        (
            27,
            "group-writable",
            |u| fs::set_permissions(u.home.join(".config"), fs::Permissions::from_mode(0o770)),
            "/.config is writable by group or others (mode 0770)",
        ),
        (
            28,
            "sticky",
            |u| fs::set_permissions(u.home.join(".config"), fs::Permissions::from_mode(0o1777)),
            "/.config is writable by group or others (mode 1777)",
        ),
        (
            29,
            "owned by another user",
            |u| {
                let other = user(39).uid;
                chown(u.home.join(".config"), Some(other), Some(other))?;
                fs::set_permissions(u.home.join(".config"), fs::Permissions::from_mode(0o755))
            },
            "/.config is owned by uid 61039 (only root or uid",
        ),
        (
            30,
            "symbolic link",
            |u| {
                let config = u.home.join(".config");
                fs::rename(&config, u.home.join("real-config"))?;
                std::os::unix::fs::symlink(u.home.join("real-config"), &config)
            },
            "/.config is a symbolic link (refused)",
        ),
    ];
    for (index, name, spoil, expected) in cases {
        let u = user(index);
        let path = enroll_in_home(&u, &text)?;
        spoil(&u)?;
        let result = stack.login_from(&u.name, &[&enrolled.code_at(NOW)], NOW, None);
        check(
            result.code == code::AUTHINFO_UNAVAIL,
            format!("{name}: code {} (expected AUTHINFO_UNAVAIL)", result.code),
        )?;
        let wanted = format!(
            "{} is in an unsafe directory: {}{expected}",
            path.display(),
            u.home.display()
        );
        check(
            stack.wait_for_log(|l| l.contains(&wanted) && l.contains(&format!("user={}", u.name))),
            format!(
                "{name}: no log line with {wanted:?}; lines: {:#?}",
                stack.log_lines()
            ),
        )?;
    }
    Ok(())
}

/// A stack whose configuration runs `script` as the notify_command.
fn notifying_stack(ns: &TestNamespace, service: &str, script: &Path) -> Stack {
    stack(
        ns,
        service,
        "",
        &format!("notify_command = [\"{}\"]", script.display()),
    )
}

fn notify_command_is_run_and_bounded(ns: &TestNamespace) -> Result<(), Failed> {
    let events = ns.scratch.join("notify-events");
    let script = ns.scratch.join("notify.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1 $2\" >> {}\n", events.display()),
    )?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    let notifying = notifying_stack(ns, "notify", &script);
    let u = user(20);
    let enrolled = Enrolled::standard();
    notifying.enroll(&u, &enrolled);
    let result = notifying.login_from(&u.name, &[&enrolled.backup_codes[0]], NOW, None);
    check(
        result.code == code::SUCCESS,
        format!("backup: got {}", code::describe(result.code)),
    )?;
    let wrong = enrolled.wrong_code(NOW);
    for i in 0..5 {
        notifying.login_from(&u.name, &[&wrong], NOW + 1 + i, None);
    }
    let recorded = fs::read_to_string(&events)?;
    check(
        recorded == format!("backup-code-used {0}\nlockout-started {0}\n", u.name),
        format!("events: {recorded:?}"),
    )?;

    // A command that hangs delays the login by the bound only, and the
    // login still succeeds.
    let hanging = ns.scratch.join("notify-hangs.sh");
    fs::write(&hanging, "#!/bin/sh\nsleep 30\n")?;
    fs::set_permissions(&hanging, fs::Permissions::from_mode(0o755))?;
    let slow = notifying_stack(ns, "notify-slow", &hanging);
    let v = user(21);
    slow.enroll(&v, &enrolled);
    let started = std::time::Instant::now();
    let result = slow.login_from(&v.name, &[&enrolled.backup_codes[1]], NOW, None);
    let took = started.elapsed();
    check(
        result.code == code::SUCCESS,
        format!("slow notify: {}", result.code),
    )?;
    check(
        took < Duration::from_secs(10),
        format!("slow notify held the login {took:?}"),
    )?;
    assert_logged(&slow, "notify_command for backup-code-used failed")
}

/// The notify command gets /dev/null as its standard streams and nothing
/// else of the process that loaded the module, although that process holds
/// a secret open without close-on-exec.
fn notify_command_inherits_only_its_standard_streams(ns: &TestNamespace) -> Result<(), Failed> {
    let secret = LeakedSecret::open(&ns.scratch.join("notify-host-secret"));
    let script = ns.scratch.join("notify-lists-fds.sh");
    let listing = ns.scratch.join("notify-fds");
    write_listing_script(&script, &listing, "");
    let notifying = notifying_stack(ns, "notify-fds", &script);
    let u = user(23);
    let enrolled = Enrolled::standard();
    notifying.enroll(&u, &enrolled);
    let result = notifying.login_from(&u.name, &[&enrolled.backup_codes[0]], NOW, None);
    check(
        result.code == code::SUCCESS,
        format!("backup code: {}", result.code),
    )?;
    let null = |target: &str| target == "/dev/null";
    check_standard_streams_only(
        &read_listing(&listing)?,
        [&null, &null, &null],
        &script,
        &secret,
    )
}

fn main() {
    if std::env::var_os("TWOFACTOR_LOGIN_LOOP").is_some() {
        login_loop();
    }
    let ns = namespace::enter();
    run_trials(
        ns,
        vec![
            (
                "code_failures_lock_codes_not_backup_codes",
                code_failures_lock_codes_not_backup_codes,
            ),
            (
                "backup_code_failures_lock_backup_codes",
                backup_code_failures_lock_backup_codes,
            ),
            ("rate_limit_by_host", rate_limit_by_host),
            ("grace_period", grace_period),
            ("concurrent_logins", concurrent_logins),
            (
                "logins_killed_at_random_instants",
                logins_killed_at_random_instants,
            ),
            (
                "logins_killed_at_random_instants_with_redis",
                logins_killed_at_random_instants_with_redis,
            ),
            ("disk_full_fails_closed", disk_full_fails_closed),
            ("odd_homes", odd_homes),
            (
                "unsafe_directories_fail_closed",
                unsafe_directories_fail_closed,
            ),
            (
                "notify_command_is_run_and_bounded",
                notify_command_is_run_and_bounded,
            ),
            (
                "notify_command_inherits_only_its_standard_streams",
                notify_command_inherits_only_its_standard_streams,
            ),
        ],
    );
}
