//! Replay protection that follows the enrollment and survives clock faults,
//! through the real libpam with the test clock: a new period or a new secret
//! starts afresh while an old secret's used codes stay used; a clock that ran
//! ahead refuses only what it accepted; codes typed as apps show them; and a
//! lockout reset that keeps the history.

use std::process::Command;

use libtest_mimic::Failed;
use twofactor_core::state::{FailureKind, LoginState};
use twofactor_core::totp::Algorithm;
use twofactor_integration_tests::checks::{assert_logged, check, ensure};
use twofactor_integration_tests::fixtures::{answer_in_mode, Enrolled, Stack, PASS_MODES};
use twofactor_integration_tests::namespace::{self, TestNamespace};
use twofactor_integration_tests::pam_client::{code, AttemptResult};
use twofactor_integration_tests::users::user;
use twofactor_integration_tests::{run_trials, test_clock_module, twofactor_binary};

const NOW: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn stack(ns: &TestNamespace, service: &str) -> Stack {
    Stack::new(ns, service, &test_clock_module(), "", "")
}

fn state_of(stack: &Stack, user: &str) -> Result<LoginState, Failed> {
    Ok(stack.state_of(user)?)
}

fn accepted(result: &AttemptResult) -> bool {
    result.code == code::SUCCESS
}

/// The same secret with another period (a google-authenticator file with
/// `" STEP_SIZE 60` imported over a 30 s enrollment).
fn with_period(enrolled: &Enrolled, period: u64) -> Enrolled {
    let mut changed = Enrolled {
        enrollment: enrolled.enrollment.clone(),
        backup_codes: enrolled.backup_codes.clone(),
    };
    if let Some(totp) = changed.enrollment.totp.as_mut() {
        totp.period = period;
    }
    changed
}

fn a_new_period_starts_afresh(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "replay-period");
    let u = user(0);
    let thirty = Enrolled::standard();
    stack.enroll(&u, &thirty);
    let result = stack.login_at(&u.name, &thirty.code_at(NOW), NOW);
    check(
        accepted(&result),
        format!("30 s code: got {}", code::describe(result.code)),
    )?;
    // Step numbers of 60 s periods are half as large: every one lies far
    // below the 30 s step just accepted.
    let sixty = with_period(&thirty, 60);
    stack.enroll(&u, &sixty);
    let t = NOW + 60;
    let result = stack.login_at(&u.name, &sixty.code_at(t), t);
    check(
        accepted(&result),
        format!("a 60 s code after the change: {}", result.code),
    )?;
    let result = stack.login_at(&u.name, &sixty.code_at(t), t + 1);
    check(
        !accepted(&result),
        format!(
            "the 60 s code replayed: got {}",
            code::describe(result.code)
        ),
    )?;
    // Back to 30 s: the code used before stays used.
    stack.enroll(&u, &thirty);
    let result = stack.login_at(&u.name, &thirty.code_at(NOW), NOW + 2);
    check(
        !accepted(&result),
        format!(
            "the old 30 s code was accepted twice: got {}",
            code::describe(result.code)
        ),
    )?;
    check(
        state_of(&stack, &u.name)?.failures.len() == 2,
        "the two replays are counted as failures",
    )
}

fn a_new_secret_starts_afresh(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "replay-secret");
    let u = user(1);
    let old = Enrolled::standard();
    stack.enroll(&u, &old);
    let t = NOW + 30;
    let result = stack.login_at(&u.name, &old.code_at(t), t);
    check(
        accepted(&result),
        format!("old secret: got {}", code::describe(result.code)),
    )?;
    // `twofactor enroll --force` in the same step: the new app's code works.
    let new = Enrolled::new(Algorithm::SHA1, 6, 30, 10);
    stack.enroll(&u, &new);
    let result = stack.login_at(&u.name, &new.code_at(t), t + 1);
    check(
        accepted(&result),
        format!("the new secret's code in the same step: {}", result.code),
    )?;
    // The user puts the old file back: its used code is still used.
    stack.enroll(&u, &old);
    let result = stack.login_at(&u.name, &old.code_at(t), t + 2);
    check(
        !accepted(&result),
        format!(
            "the old secret's code was accepted twice: got {}",
            code::describe(result.code)
        ),
    )?;
    assert_logged(&stack, "replay refused")
}

fn a_clock_that_ran_ahead_recovers_by_itself(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "replay-clock");
    let u = user(2);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW - 600), NOW - 600);
    check(
        accepted(&result),
        format!("before the fault: got {}", code::describe(result.code)),
    )?;
    // One login while the clock is 30 days ahead.
    let ahead = NOW + 30 * DAY;
    let result = stack.login_at(&u.name, &enrolled.code_at(ahead), ahead);
    check(
        accepted(&result),
        format!("while ahead: got {}", code::describe(result.code)),
    )?;
    // The clock is right again: today's code works at once.
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW);
    check(
        accepted(&result),
        format!("after the clock was corrected: {}", result.code),
    )?;
    check(
        state_of(&stack, &u.name)?.failures.is_empty(),
        "a right code was counted as a failure",
    )?;
    // What was accepted while ahead is never accepted again, also when its
    // time comes.
    let result = stack.login_at(&u.name, &enrolled.code_at(ahead), ahead);
    check(
        !accepted(&result),
        format!(
            "the code accepted while ahead was accepted twice: got {}",
            code::describe(result.code)
        ),
    )?;
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW + 1);
    check(
        !accepted(&result),
        format!(
            "today's code was accepted twice: got {}",
            code::describe(result.code)
        ),
    )?;
    // status shows the clock problem.
    let output = Command::new(twofactor_binary())
        .args(["status", "--json", "--user", &u.name, "--config"])
        .arg(&stack.config_path)
        .output()?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    ensure(
        report["clock_problem"]["refuses_current_codes"] == false
            && report["clock_problem"]["seconds_ahead"].as_u64() > Some(29 * DAY),
        || format!("status: {report}"),
    )
}

fn a_long_clock_fault_is_a_clock_problem_not_a_guess(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "replay-long-fault");
    let u = user(3);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    // More logins while the clock is ahead than are kept exactly.
    let ahead = NOW + 30 * DAY;
    for i in 0..40 {
        let t = ahead + i * 30;
        let result = stack.login_at(&u.name, &enrolled.code_at(t), t);
        check(
            accepted(&result),
            format!("ahead login {i}: got {}", code::describe(result.code)),
        )?;
    }
    for i in 0..6 {
        let t = NOW + i * 30;
        let result = stack.login_at(&u.name, &enrolled.code_at(t), t);
        check(
            result.code == code::AUTH_ERR,
            format!("a code below the floor: {}", result.code),
        )?;
    }
    assert_logged(&stack, "second factor refused: clock problem")?;
    let state = state_of(&stack, &u.name)?;
    check(
        state.failures.is_empty(),
        format!("clock problems counted as failures: {:?}", state.failures),
    )?;
    // Backup codes still work, and a new enrollment starts afresh.
    let result = stack.login_at(&u.name, &enrolled.backup_codes[0], NOW + 200);
    check(
        accepted(&result),
        format!(
            "a backup code during the clock problem: got {}",
            code::describe(result.code)
        ),
    )?;
    let fresh = Enrolled::standard();
    stack.enroll(&u, &fresh);
    let result = stack.login_at(&u.name, &fresh.code_at(NOW + 230), NOW + 230);
    check(
        accepted(&result),
        format!(
            "a new enrollment during the clock problem: got {}",
            code::describe(result.code)
        ),
    )
}

fn codes_typed_as_apps_show_them(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "replay-typing");
    let u = user(4);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    for (i, separator) in [" ", "-", " - "].into_iter().enumerate() {
        let t = NOW + 30 * i as u64;
        let code = enrolled.code_at(t);
        let typed = format!("{}{separator}{}", &code[..3], &code[3..]);
        let result = stack.login_at(&u.name, &typed, t);
        check(accepted(&result), format!("{typed:?} gave {}", result.code))?;
    }
    Ok(())
}

fn a_lockout_reset_keeps_the_history(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "reset-history");
    let u = user(5);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let wrong = if enrolled.code_at(NOW) == "000000" {
        "111111"
    } else {
        "000000"
    };
    for i in 0..5 {
        stack.login_at(&u.name, wrong, NOW + i);
    }
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW + 30), NOW + 30);
    check(
        !accepted(&result),
        format!("locked: got {}", code::describe(result.code)),
    )?;
    let output = Command::new(twofactor_binary())
        .args(["reset-lockout", "--user", &u.name, "--config"])
        .arg(&stack.config_path)
        .output()?;
    ensure(output.status.success(), || format!("{output:?}"))?;
    let state = state_of(&stack, &u.name)?;
    check(
        state.failures.len() == 5 && state.failures.iter().all(|f| f.cleared),
        format!("history after the reset: {:?}", state.failures),
    )?;
    check(
        state.lockout_resets.len() == 1
            && state.lockout_resets[0].by == "root"
            && state.lockout_resets[0].cleared == 5,
        format!("{:?}", state.lockout_resets),
    )?;
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW + 60), NOW + 60);
    check(
        accepted(&result),
        format!("after the reset: got {}", code::describe(result.code)),
    )?;
    // Cleared failures count no more: four new ones do not lock, a fifth does.
    for i in 0..4 {
        stack.login_at(&u.name, wrong, NOW + 70 + i);
    }
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW + 90), NOW + 90);
    check(
        accepted(&result),
        format!(
            "four failures after the reset locked: got {}",
            code::describe(result.code)
        ),
    )?;
    stack.login_at(&u.name, wrong, NOW + 100);
    let state = state_of(&stack, &u.name)?;
    check(
        state
            .failures
            .iter()
            .filter(|f| f.kind == FailureKind::Code && !f.cleared)
            .count()
            == 5,
        "five new failures",
    )?;
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW + 120), NOW + 120);
    check(
        !accepted(&result),
        format!(
            "five failures after the reset did not lock: got {}",
            code::describe(result.code)
        ),
    )
}

/// Replay protection per enrollment and a clock that ran ahead, whichever
/// way the module is stacked: the code comes from its own prompt, with the
/// password in one answer (`forward_pass`), or from PAM_AUTHTOK set by
/// pam_unix before it (`use_first_pass`, `try_first_pass`).
fn every_stacking_mode_keeps_replay_protection(ns: &TestNamespace) -> Result<(), Failed> {
    for (index, args) in (10u32..).zip(PASS_MODES) {
        let mode = if args.is_empty() { "prompt" } else { args };
        let stack = Stack::in_pass_mode(
            ns,
            &format!("replay-{mode}"),
            &test_clock_module(),
            args,
            "",
        );
        let u = user(index);
        let answer = |code: &str| answer_in_mode(args, code);
        let old = Enrolled::standard();
        stack.enroll(&u, &old);
        let t = NOW + 30;
        let first = stack.login_at(&u.name, &answer(&old.code_at(t)), t);
        check(
            accepted(&first),
            format!("{mode}: old secret gave {}", first.code),
        )?;
        // A new secret in the same step: its code works.
        let new = Enrolled::new(Algorithm::SHA1, 6, 30, 10);
        stack.enroll(&u, &new);
        let second = stack.login_at(&u.name, &answer(&new.code_at(t)), t + 1);
        check(
            accepted(&second),
            format!("{mode}: new secret in the same step gave {}", second.code),
        )?;
        let replay = stack.login_at(&u.name, &answer(&new.code_at(t)), t + 2);
        check(
            !accepted(&replay),
            format!("{mode}: the new code was accepted twice"),
        )?;
        // Back to the old secret: its used code stays used.
        stack.enroll(&u, &old);
        let again = stack.login_at(&u.name, &answer(&old.code_at(t)), t + 3);
        check(
            !accepted(&again),
            format!("{mode}: the old code was accepted twice"),
        )?;
        // A clock 30 days ahead, then right again: today's code works.
        let ahead = NOW + 30 * DAY;
        let result = stack.login_at(&u.name, &answer(&old.code_at(ahead)), ahead);
        check(
            accepted(&result),
            format!("{mode}: while ahead gave {}", result.code),
        )?;
        let later = NOW + 120;
        let result = stack.login_at(&u.name, &answer(&old.code_at(later)), later);
        check(
            accepted(&result),
            format!("{mode}: after the clock was corrected gave {}", result.code),
        )?;
    }
    Ok(())
}

fn main() {
    let ns = namespace::enter();
    run_trials(
        ns,
        vec![
            ("a_new_period_starts_afresh", a_new_period_starts_afresh),
            ("a_new_secret_starts_afresh", a_new_secret_starts_afresh),
            (
                "a_clock_that_ran_ahead_recovers_by_itself",
                a_clock_that_ran_ahead_recovers_by_itself,
            ),
            (
                "a_long_clock_fault_is_a_clock_problem_not_a_guess",
                a_long_clock_fault_is_a_clock_problem_not_a_guess,
            ),
            (
                "codes_typed_as_apps_show_them",
                codes_typed_as_apps_show_them,
            ),
            (
                "a_lockout_reset_keeps_the_history",
                a_lockout_reset_keeps_the_history,
            ),
            (
                "every_stacking_mode_keeps_replay_protection",
                every_stacking_mode_keeps_replay_protection,
            ),
        ],
    );
}
