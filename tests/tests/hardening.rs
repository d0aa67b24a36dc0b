//! The guessing limits and the state's guarantees in every stacking mode and
//! configuration, through the real libpam: address rotation under
//! `rate_limit_by_host`, codes carried in PAM_AUTHTOK (`try_first_pass`,
//! `use_first_pass`, `forward_pass`), limits larger than any fixed store,
//! huge PAM items, account aliases, and the scope of the grace period.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;
use std::process::Command;

use libtest_mimic::Failed;
use twofactor_core::backup;
use twofactor_core::state::{FailureKind, LoginState};
use twofactor_integration_tests::checks::{assert_logged, check, ensure};
use twofactor_integration_tests::fixtures::{answer_in_mode, Enrolled, Stack, PASS_MODES};
use twofactor_integration_tests::namespace::{self, TestNamespace};
use twofactor_integration_tests::pam_client::{self, code, Attempt, SessionLogin};
use twofactor_integration_tests::users::{alias_of_last, user, TestUser, PASSWORD};
use twofactor_integration_tests::{run_trials, test_clock_module, twofactor_binary};

const NOW: u64 = 1_800_000_000;

fn stack(ns: &TestNamespace, service: &str, args: &str, extra_config: &str) -> Stack {
    Stack::new(ns, service, &test_clock_module(), args, extra_config)
}

fn attempt(answers: &[&str], now: u64, rhost: Option<&str>) -> Attempt {
    Attempt {
        answers: answers.iter().map(|a| a.to_string()).collect(),
        env: vec![format!("PAM_TWOFACTOR_TEST_NOW={now}")],
        rhost: rhost.map(str::to_string),
        ..Attempt::default()
    }
}

fn state_of(stack: &Stack, user: &str) -> Result<LoginState, Failed> {
    Ok(stack.state_of(user)?)
}

fn failures_of(state: &LoginState, kind: FailureKind) -> usize {
    state.failures.iter().filter(|f| f.kind == kind).count()
}

fn rotated_host(i: usize) -> String {
    format!("198.18.{}.{}", i / 250, i % 250 + 1)
}

/// Rotating source addresses under `rate_limit_by_host` neither removes a
/// host's lock nor buys more guesses than the all-hosts budget.
fn address_rotation_keeps_a_host_locked(ns: &TestNamespace) -> Result<(), Failed> {
    // A limit of 250 per host (all hosts together: 1000), so that three
    // hosts' failures are more than any fixed store of a few hundred.
    let stack = stack(
        ns,
        "rotate-evict",
        "",
        "rate_limit_by_host = true\nmax_code_failures = 250",
    );
    let u = user(0);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let wrong = enrolled.wrong_code(NOW);
    let attacker = "192.0.2.66";
    for (i, host) in [attacker, "198.18.0.1", "198.18.0.2"]
        .into_iter()
        .enumerate()
    {
        for j in 0..250 {
            let result = stack.login_from(&u.name, &[&wrong], NOW + i as u64, Some(host));
            check(
                result.code == code::AUTH_ERR,
                format!("host {host}, guess {j}: {}", result.code),
            )?;
        }
    }
    let state = state_of(&stack, &u.name)?;
    check(
        failures_of(&state, FailureKind::Code) == 750,
        format!("{} failures kept", state.failures.len()),
    )?;
    let right = enrolled.code_at(NOW + 60);
    let result = stack.login_from(&u.name, &[&right], NOW + 60, Some(attacker));
    ensure(
        result.code == code::AUTH_ERR && result.shown_error("locked until"),
        || format!("the first host's lock was lifted: {result:?}"),
    )?;
    // Another host is not locked by the first ones' failures.
    let result = stack.login_from(&u.name, &[&right], NOW + 60, Some("192.0.2.7"));
    check(
        result.code == code::SUCCESS,
        format!("an innocent host: {}", result.code),
    )
}

fn address_rotation_meets_the_all_hosts_budget(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "rotate-budget", "", "rate_limit_by_host = true");
    let u = user(1);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let wrong = enrolled.wrong_code(NOW);
    // One guess from each of 60 addresses: the default all-hosts budget
    // (20 per 15 minutes) is all that is checked.
    for i in 0..60 {
        stack.login_from(
            &u.name,
            &[&wrong],
            NOW + i as u64,
            Some(&rotated_host(i as usize)),
        );
    }
    let state = state_of(&stack, &u.name)?;
    check(
        failures_of(&state, FailureKind::Code) == 20,
        format!("{} guesses checked", state.failures.len()),
    )?;
    assert_logged(&stack, "verification codes locked out until")?;
    let right = enrolled.code_at(NOW + 90);
    let result = stack.login_from(&u.name, &[&right], NOW + 90, Some("192.0.2.99"));
    check(
        result.code == code::AUTH_ERR,
        format!(
            "a fresh address while all hosts are locked: {}",
            result.code
        ),
    )?;
    // The budget refills with its window.
    let later = NOW + 900 + 30;
    let right = enrolled.code_at(later);
    let result = stack.login_from(&u.name, &[&right], later, Some("192.0.2.99"));
    check(
        result.code == code::SUCCESS,
        format!("after the window: {}", result.code),
    )
}

/// pam_unix first (optional), storing its answer as PAM_AUTHTOK; then the
/// module with `args`; then, unless `last` is empty, another line.
fn after_pam_unix(stack: &Stack, args: &str, last: &str) {
    stack.write_stack(&format!(
        "auth optional pam_unix.so nodelay\n\
         auth required {} config={} {args}\n{last}",
        test_clock_module().display(),
        stack.config_path.display()
    ));
}

fn try_first_pass_counts_codes_in_the_token(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "try-first-count", "", "");
    after_pam_unix(
        &stack,
        "try_first_pass",
        "auth required pam_unix.so use_first_pass nodelay\n",
    );
    let u = user(2);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let wrong = enrolled.wrong_code(NOW);
    // Password and a guess, then the code prompt is cancelled.
    for i in 0..5 {
        let guess = format!("{PASSWORD}{wrong}");
        let result = stack.login_from(&u.name, &[&guess], NOW + i, None);
        check(
            result.code != code::SUCCESS,
            format!("guess {i}: {}", result.code),
        )?;
    }
    let state = state_of(&stack, &u.name)?;
    check(
        failures_of(&state, FailureKind::Code) == 5,
        format!("cancelled prompts erased failures: {:?}", state.failures),
    )?;
    assert_logged(&stack, "(code in PAM_AUTHTOK, try_first_pass: asking next)")?;
    // Codes are locked: the right one in the token is not even compared,
    // and the prompt that follows takes only a backup code.
    let right = format!("{PASSWORD}{}", enrolled.code_at(NOW + 30));
    let result = stack.login_from(&u.name, &[&right], NOW + 30, None);
    ensure(
        result.code != code::SUCCESS && result.shown_error("verification codes are locked until"),
        || format!("right code after five guesses: {result:?}"),
    )?;

    // An honest user whose password ends in six digits: the token is
    // compared (and counted) but taken back once the code is given.
    let honest = stack_without_password_check(ns)?;
    let v = user(3);
    honest.enroll(&v, &enrolled);
    for i in 0..10u64 {
        let t = NOW + i * 30;
        let result = honest.login_from(
            &v.name,
            &["correct horse 202412", &enrolled.code_at(t)],
            t,
            None,
        );
        check(
            result.code == code::SUCCESS && result.prompts().len() == 2,
            format!("honest login {i}: {} {:?}", result.code, result.prompts()),
        )?;
    }
    let state = state_of(&honest, &v.name)?;
    check(
        state.failures.is_empty(),
        format!("an honest password counted: {:?}", state.failures),
    )
}

fn stack_without_password_check(ns: &TestNamespace) -> Result<Stack, Failed> {
    let stack = stack(ns, "try-first-honest", "", "");
    after_pam_unix(&stack, "try_first_pass", "");
    Ok(stack)
}

/// TOTP and imported 8-digit scratch codes: every guess is compared with
/// both, so it counts against both budgets, and a locked kind is never
/// compared.
fn with_scratch_codes() -> (Enrolled, String) {
    let mut enrolled = Enrolled::standard();
    let scratch = "60808409".to_string();
    for code in [scratch.as_str(), "71234567", "82345678"] {
        enrolled
            .enrollment
            .backup_codes
            .push(backup::hash_legacy(code).expect("8 digits"));
    }
    (enrolled, scratch)
}

fn password_and_code_guesses_count_against_backup_codes(ns: &TestNamespace) -> Result<(), Failed> {
    for (index, mode) in [(4u32, "forward_pass"), (5, "use_first_pass")] {
        let stack = Stack::in_pass_mode(
            ns,
            &format!("scratch-{mode}"),
            &test_clock_module(),
            mode,
            "",
        );
        let u = user(index);
        let (enrolled, scratch) = with_scratch_codes();
        stack.enroll(&u, &enrolled);
        // Ten guesses: the first five lock codes, all ten lock backup codes.
        for i in 0..10 {
            let guess = format!("{PASSWORD}{}", 20_000_000 + i);
            let result = stack.login_from(&u.name, &[&guess], NOW + i, None);
            check(
                result.code != code::SUCCESS,
                format!("{mode} guess {i}: {}", result.code),
            )?;
        }
        let state = state_of(&stack, &u.name)?;
        check(
            failures_of(&state, FailureKind::Code) == 5
                && failures_of(&state, FailureKind::BackupCode) == 10,
            format!("{mode}: failures {:?}", state.failures),
        )?;
        assert_logged(&stack, "lockout started: backup codes locked until")?;
        let right = format!("{PASSWORD}{scratch}");
        let result = stack.login_from(&u.name, &[&right], NOW + 20, None);
        check(
            result.code != code::SUCCESS,
            format!(
                "{mode}: a scratch code while backup codes are locked: {}",
                result.code
            ),
        )?;
        // Nothing was compared, so nothing more was counted.
        let after = state_of(&stack, &u.name)?;
        check(
            after.failures.len() == state.failures.len(),
            format!("{mode}: counted while locked"),
        )?;
    }
    Ok(())
}

fn large_limits_are_enforced_exactly(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(
        ns,
        "large-limits",
        "",
        "max_code_failures = 200\nmax_backup_code_failures = 200\ncode_failure_window = 3600",
    );
    let u = user(6);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let wrong = enrolled.wrong_code(NOW);
    let wrong_backup = "zzzz-zzzz-zzzz-zzzz";
    // Alternating kinds: 199 of each lock nothing, the 200th of each does.
    for i in 0..199u64 {
        stack.login_from(&u.name, &[&wrong], NOW + i, None);
        stack.login_from(&u.name, &[wrong_backup], NOW + i, None);
    }
    let right = enrolled.code_at(NOW + 300);
    let result = stack.login_from(&u.name, &[&right], NOW + 300, None);
    check(
        result.code == code::SUCCESS,
        format!(
            "199 failures of each kind locked something: got {}",
            code::describe(result.code)
        ),
    )?;
    stack.login_from(&u.name, &[&wrong], NOW + 301, None);
    stack.login_from(&u.name, &[wrong_backup], NOW + 301, None);
    let right = enrolled.code_at(NOW + 330);
    let result = stack.login_from(&u.name, &[&right], NOW + 330, None);
    check(
        result.code == code::AUTH_ERR,
        format!("the 200th code failure did not lock: {}", result.code),
    )?;
    let result = stack.login_from(&u.name, &[&enrolled.backup_codes[0]], NOW + 331, None);
    check(
        result.code == code::AUTH_ERR,
        format!(
            "the 200th backup-code failure did not lock: {}",
            result.code
        ),
    )?;
    // Limits beyond the largest accepted are refused, not silently capped.
    let too_large = stack_with(ns, "limit-too-large", "max_code_failures = 1001");
    let result = too_large.login_from(&u.name, &[&right], NOW + 330, None);
    check(
        result.code == code::SERVICE_ERR,
        format!("max_code_failures = 1001 gave {}", result.code),
    )?;
    let unbounded = stack_with(
        ns,
        "all-hosts-too-small",
        "rate_limit_by_host = true\nmax_code_failures_all_hosts = 3",
    );
    let result = unbounded.login_from(&u.name, &[&right], NOW + 330, None);
    check(
        result.code == code::SERVICE_ERR,
        format!(
            "an all-hosts budget below the per-host one gave {}",
            result.code
        ),
    )
}

fn stack_with(ns: &TestNamespace, service: &str, extra: &str) -> Stack {
    stack(ns, service, "", extra)
}

fn huge_origins_are_bounded_and_repairable(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "huge-rhost", "", "rate_limit_by_host = true");
    let u = user(7);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let wrong = enrolled.wrong_code(NOW);
    let huge = format!("{}\n\x1b[2J", "h".repeat(1 << 20));
    for i in 0..3 {
        stack.login_from(&u.name, &[&wrong], NOW + i, Some(&huge));
    }
    let size = fs::metadata(stack.state_dir.join(format!("{}.state", u.name)))?.len();
    check(
        size < 4096,
        format!("state of {size} bytes after huge origins"),
    )?;
    let state = state_of(&stack, &u.name)?;
    ensure(
        state.failures.iter().all(|f| {
            f.host
                .as_deref()
                .is_some_and(|h| h.len() <= 64 && h.bytes().all(|b| b.is_ascii_graphic()))
        }),
        || format!("{:?}", state.failures),
    )?;
    // The same huge host keeps one budget: two more lock it.
    stack.login_from(&u.name, &[&wrong], NOW + 3, Some(&huge));
    stack.login_from(&u.name, &[&wrong], NOW + 4, Some(&huge));
    let right = enrolled.code_at(NOW + 30);
    let result = stack.login_from(&u.name, &[&right], NOW + 30, Some(&huge));
    // libpam's own audit of a login with such a host may turn the refusal
    // into PAM_SYSTEM_ERR; what matters is that nothing was checked.
    ensure(
        result.code != code::SUCCESS && result.shown_error("locked until"),
        || format!("a huge host escaped its budget: {result:?}"),
    )?;
    let result = stack.login_from(&u.name, &[&right], NOW + 31, Some("192.0.2.1"));
    check(
        result.code == code::SUCCESS,
        format!("normal host: {}", result.code),
    )?;

    // A state file that an earlier version let grow past the limit (origins
    // kept verbatim): logins fail closed, reset-lockout repairs it and keeps
    // what was spent and accepted.
    let v = user(8);
    stack.enroll(&v, &enrolled);
    let spent = &enrolled.backup_codes[0];
    let result = stack.login_from(&v.name, &[spent], NOW, None);
    check(
        result.code == code::SUCCESS,
        format!("spend a backup code: got {}", code::describe(result.code)),
    )?;
    let path = stack.state_dir.join(format!("{}.state", v.name));
    let mut grown = state_of(&stack, &v.name)?;
    grown.record_failure(FailureKind::Code, Some(&"h".repeat(2 << 20)), NOW + 1);
    fs::write(&path, grown.to_text())?;
    let right = enrolled.code_at(NOW + 60);
    let result = stack.login_from(&v.name, &[&right], NOW + 60, None);
    check(
        result.code == code::AUTHINFO_UNAVAIL,
        format!("an oversized state gave {}", result.code),
    )?;
    assert_logged(&stack, "is too large")?;
    let output = Command::new(twofactor_binary())
        .args(["reset-lockout", "--user", &v.name, "--config"])
        .arg(&stack.config_path)
        .output()?;
    ensure(output.status.success(), || {
        format!(
            "reset-lockout: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let result = stack.login_from(&v.name, &[spent], NOW + 61, None);
    check(
        result.code == code::AUTH_ERR,
        format!("the repair revived a spent code: {}", result.code),
    )?;
    let result = stack.login_from(&v.name, &[&right], NOW + 62, None);
    check(
        result.code == code::SUCCESS,
        format!("after repair: {}", result.code),
    )
}

/// An enrollment in the home, which every name of the account shares.
fn home_stack(ns: &TestNamespace) -> Stack {
    let stack = stack(ns, "aliases", "", "");
    let config = fs::read_to_string(&stack.config_path).expect("config");
    let config = config
        .lines()
        .map(|l| {
            if l.starts_with("enrollment_path") {
                "enrollment_path = \"%h/.config/twofactor/enrollment.json\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(&stack.config_path, config).expect("write config");
    stack
}

fn enroll_in_home(user: &TestUser, enrolled: &Enrolled) -> Result<(), Failed> {
    let mut dir = user.home.clone();
    for part in [".config", "twofactor"] {
        dir = dir.join(part);
        fs::create_dir_all(&dir)?;
        chown(&dir, Some(user.uid), Some(user.uid))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    }
    let path = dir.join("enrollment.json");
    fs::write(&path, enrolled.enrollment.to_json())?;
    chown(&path, Some(user.uid), Some(user.uid))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn aliases_share_one_state(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = home_stack(ns);
    let owner = user(39);
    let alias = alias_of_last();
    let enrolled = Enrolled::standard();
    enroll_in_home(&owner, &enrolled)?;
    // What the alias spent before its state was shared.
    let spent_earlier = &enrolled.backup_codes[1];
    fs::create_dir_all(&stack.state_dir)?;
    fs::set_permissions(&stack.state_dir, fs::Permissions::from_mode(0o711))?;
    let mut earlier = LoginState::default();
    earlier
        .spent_backup_codes
        .push(enrolled.enrollment.backup_codes[1].salt.clone());
    let alias_path = stack.state_dir.join(format!("{}.state", alias.name));
    fs::write(&alias_path, earlier.to_text())?;
    fs::set_permissions(&alias_path, fs::Permissions::from_mode(0o600))?;

    let code_now = enrolled.code_at(NOW);
    let result = stack.login_from(&owner.name, &[&code_now], NOW, None);
    check(
        result.code == code::SUCCESS,
        format!("owner's code: got {}", code::describe(result.code)),
    )?;
    check(!alias_path.exists(), "the alias's state was not taken in")?;
    let result = stack.login_from(&alias.name, &[&code_now], NOW + 1, None);
    check(
        result.code == code::AUTH_ERR,
        format!("the same code under the alias: {}", result.code),
    )?;
    assert_logged(&stack, "replay refused")?;
    let result = stack.login_from(&owner.name, &[spent_earlier], NOW + 2, None);
    check(
        result.code == code::AUTH_ERR,
        format!("a code the alias spent: {}", result.code),
    )?;
    // One budget: failures under both names add up.
    let wrong = enrolled.wrong_code(NOW);
    for i in 0..4 {
        let name = if i % 2 == 0 { &alias.name } else { &owner.name };
        stack.login_from(name, &[&wrong], NOW + 10 + i, None);
    }
    let right = enrolled.code_at(NOW + 60);
    let result = stack.login_from(&alias.name, &[&right], NOW + 60, None);
    check(
        result.code == code::AUTH_ERR && result.shown_error("locked until"),
        format!("five failures over two names: {result:?}"),
    )?;
    check(
        !stack
            .state_dir
            .join(format!("{}.state", alias.name))
            .exists(),
        "the alias got a state of its own",
    )
}

fn pam_login_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pam_login"))
}

fn grace_is_scoped_by_service_and_terminal_session(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "grace-scope", "", "grace_period = 600");
    // A second service with the same module line, configuration and state.
    let other_service = "grace-scope-other";
    fs::copy(
        stack.confdir.join(&stack.service),
        stack.confdir.join(other_service),
    )?;
    let u = user(9);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let tty = "/dev/pts/77";
    let tty_login = |service, answers: &[&str], now: u64| SessionLogin {
        service,
        user: &u.name,
        attempt: Attempt {
            tty: Some(tty.to_string()),
            ..attempt(answers, now, None)
        },
    };
    let code_now = enrolled.code_at(NOW);
    let in_one_session = pam_client::authenticate_in_one_session(
        pam_login_binary(),
        &stack.confdir,
        &[
            tty_login(&stack.service, &[&code_now], NOW),
            tty_login(&stack.service, &[], NOW + 10),
            tty_login(other_service, &[], NOW + 20),
        ],
    )?;
    let [first, same, other] = &in_one_session[..] else {
        return Err(format!("three logins, results: {in_one_session:?}").into());
    };
    check(
        first.code == code::SUCCESS,
        format!("first: {}", first.code),
    )?;
    check(
        same.code == code::SUCCESS && same.prompts().is_empty(),
        format!("same service and session: {same:?}"),
    )?;
    check(
        other.code != code::SUCCESS && other.prompts().len() == 1,
        format!("another service got the grace: {other:?}"),
    )?;
    // The same terminal name in another session (a reused pseudo-terminal).
    let new_session = pam_client::authenticate_in_one_session(
        pam_login_binary(),
        &stack.confdir,
        &[tty_login(&stack.service, &[], NOW + 30)],
    )?;
    check(
        new_session[0].code != code::SUCCESS && new_session[0].prompts().len() == 1,
        format!(
            "a new session on the same terminal got the grace: {:?}",
            new_session[0]
        ),
    )?;
    // And a remote host is scoped by service too.
    let home = Some("192.0.2.10");
    let first = stack.login_from(&u.name, &[&enrolled.code_at(NOW + 60)], NOW + 60, home);
    check(
        first.code == code::SUCCESS,
        format!("remote first: got {}", code::describe(first.code)),
    )?;
    let again = stack.login_from(&u.name, &[], NOW + 70, home);
    check(
        again.code == code::SUCCESS && again.prompts().is_empty(),
        format!("remote again: got {}", code::describe(again.code)),
    )?;
    let other = pam_client::authenticate(
        &stack.confdir,
        other_service,
        &u.name,
        &attempt(&[], NOW + 80, home),
    );
    check(
        other.code != code::SUCCESS && other.prompts().len() == 1,
        format!("another service from the same host got the grace: {other:?}"),
    )
}

/// The per-host and all-hosts budgets and spent backup codes, whichever way
/// the module is stacked.
fn every_stacking_mode_keeps_the_budgets_and_spent_codes(ns: &TestNamespace) -> Result<(), Failed> {
    for (index, args) in (20u32..).zip(PASS_MODES) {
        let mode = if args.is_empty() { "prompt" } else { args };
        let stack = Stack::in_pass_mode(
            ns,
            &format!("budget-{mode}"),
            &test_clock_module(),
            args,
            "rate_limit_by_host = true",
        );
        let u = user(index);
        let enrolled = Enrolled::standard();
        stack.enroll(&u, &enrolled);
        // One answer (under try_first_pass the code prompt that may follow
        // is left unanswered, as by someone who cancels it).
        let answer = |code: &str| answer_in_mode(args, code);
        let wrong = answer(&enrolled.wrong_code(NOW));
        let attacker = Some("192.0.2.66");
        for i in 0..5 {
            stack.login_from(&u.name, &[&wrong], NOW + i, attacker);
        }
        let right = answer(&enrolled.code_at(NOW + 30));
        let result = stack.login_from(&u.name, &[&right], NOW + 30, attacker);
        check(
            result.code != code::SUCCESS,
            format!("{mode}: a locked host got in: {}", result.code),
        )?;
        let result = stack.login_from(&u.name, &[&right], NOW + 31, Some("192.0.2.7"));
        check(
            result.code == code::SUCCESS,
            format!("{mode}: another host was locked too: {}", result.code),
        )?;
        // 15 more addresses, one guess each: the all-hosts budget of 20.
        for i in 0..15 {
            stack.login_from(
                &u.name,
                &[&wrong],
                NOW + 40 + i,
                Some(&rotated_host(i as usize)),
            );
        }
        let state = state_of(&stack, &u.name)?;
        check(
            failures_of(&state, FailureKind::Code) == 20,
            format!(
                "{mode}: {} guesses checked",
                failures_of(&state, FailureKind::Code)
            ),
        )?;
        let right = answer(&enrolled.code_at(NOW + 90));
        let result = stack.login_from(&u.name, &[&right], NOW + 90, Some("192.0.2.99"));
        check(
            result.code != code::SUCCESS,
            format!(
                "{mode}: a fresh host got in past the all-hosts budget: {}",
                result.code
            ),
        )?;
        // A backup code is spent once, whichever way it came.
        let backup = answer(&enrolled.backup_codes[0]);
        let later = NOW + 4000;
        let result = stack.login_from(&u.name, &[&backup], later, None);
        check(
            result.code == code::SUCCESS,
            format!("{mode}: backup code: {}", result.code),
        )?;
        let result = stack.login_from(&u.name, &[&backup], later + 1, None);
        check(
            result.code != code::SUCCESS,
            format!("{mode}: a backup code was accepted twice: {}", result.code),
        )?;
    }
    Ok(())
}

fn main() {
    let ns = namespace::enter();
    run_trials(
        ns,
        vec![
            (
                "address_rotation_keeps_a_host_locked",
                address_rotation_keeps_a_host_locked,
            ),
            (
                "address_rotation_meets_the_all_hosts_budget",
                address_rotation_meets_the_all_hosts_budget,
            ),
            (
                "try_first_pass_counts_codes_in_the_token",
                try_first_pass_counts_codes_in_the_token,
            ),
            (
                "password_and_code_guesses_count_against_backup_codes",
                password_and_code_guesses_count_against_backup_codes,
            ),
            (
                "large_limits_are_enforced_exactly",
                large_limits_are_enforced_exactly,
            ),
            (
                "huge_origins_are_bounded_and_repairable",
                huge_origins_are_bounded_and_repairable,
            ),
            ("aliases_share_one_state", aliases_share_one_state),
            (
                "grace_is_scoped_by_service_and_terminal_session",
                grace_is_scoped_by_service_and_terminal_session,
            ),
            (
                "every_stacking_mode_keeps_the_budgets_and_spent_codes",
                every_stacking_mode_keeps_the_budgets_and_spent_codes,
            ),
        ],
    );
}
