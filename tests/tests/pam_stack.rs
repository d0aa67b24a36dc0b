//! The built module through the system's real libpam, with private
//! configuration directories (pam_start_confdir): nothing in /etc is used.

use std::fs;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};

use libtest_mimic::Failed;
use twofactor_core::totp::Algorithm;
use twofactor_integration_tests::checks::{assert_logged, assert_not_logged, check};
use twofactor_integration_tests::fixtures::{Enrolled, Stack};
use twofactor_integration_tests::namespace::{self, TestNamespace};
use twofactor_integration_tests::pam_client::{code, Attempt, Shown};
use twofactor_integration_tests::run_trials;
use twofactor_integration_tests::users::{user, PASSWORD};
use twofactor_integration_tests::{production_module, test_clock_module};

const NOW: u64 = 1_800_000_000;

fn stack(ns: &TestNamespace, service: &str, args: &str, extra_config: &str) -> Stack {
    Stack::new(ns, service, &test_clock_module(), args, extra_config)
}

fn correct_code_succeeds(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "correct", "", "");
    let alice = user(0);
    let enrolled = Enrolled::standard();
    stack.enroll(&alice, &enrolled);
    let code_now = enrolled.code_at(NOW);
    let result = stack.login_at(&alice.name, &code_now, NOW);
    check(
        result.code == code::SUCCESS,
        format!("code {}", result.code),
    )?;
    check(
        result.prompts() == vec!["Verification code: ".to_string()],
        format!("prompts {:?}", result.prompts()),
    )?;
    assert_logged(
        &stack,
        &format!("second factor accepted: user={} ", alice.name),
    )?;
    assert_logged(&stack, "method=totp")?;
    assert_not_logged(&code_now)?;
    // The state directory was created root-owned, passable but not listable;
    // the user's state file is root's, readable by the user's group only.
    let meta = fs::metadata(&stack.state_dir)?;
    check(meta.permissions().mode() & 0o777 == 0o711, "state dir mode")?;
    let state = fs::metadata(stack.state_dir.join(format!("{}.state", alice.name)))?;
    check(
        state.permissions().mode() & 0o777 == 0o640 && state.uid() == 0 && state.gid() == alice.uid,
        format!(
            "state file mode {:o} owner {}:{}",
            state.permissions().mode(),
            state.uid(),
            state.gid()
        ),
    )?;
    Ok(())
}

fn malformed_and_wrong_codes_fail(ns: &TestNamespace) -> Result<(), Failed> {
    // Seven failures in a row: the rate limit (tests/abuse.rs) is off here.
    let stack = stack(ns, "wrong", "", "max_code_failures = 0");
    let bob = user(1);
    let enrolled = Enrolled::standard();
    stack.enroll(&bob, &enrolled);
    let right = enrolled.code_at(NOW);
    let wrong = format!("{:06}", (right.parse::<u32>()? + 1) % 1_000_000);
    let too_long = format!("{right}0");
    let non_digit = format!("{}x", &right[..5]);
    for answer in [
        wrong.as_str(),
        "",
        &right[..5],
        &too_long,
        &non_digit,
        "abcdef",
        "12 456",
    ] {
        let result = stack.login_at(&bob.name, answer, NOW);
        check(
            result.code == code::AUTH_ERR,
            format!("answer {answer:?} gave {}", result.code),
        )?;
    }
    assert_logged(&stack, "second factor refused: wrong code")?;
    assert_logged(&stack, &format!("user={} method=totp", bob.name))?;
    assert_logged(&stack, "method=none (malformed answer)")?;
    // After all that, the right code still works (nothing was spent).
    let result = stack.login_at(&bob.name, &right, NOW);
    check(
        result.code == code::SUCCESS,
        format!("right code gave {}", result.code),
    )
}

fn replayed_code_is_refused(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "replay", "", "");
    let carol = user(2);
    let enrolled = Enrolled::standard();
    stack.enroll(&carol, &enrolled);
    let code_now = enrolled.code_at(NOW);
    let result = stack.login_at(&carol.name, &code_now, NOW);
    check(
        result.code == code::SUCCESS,
        format!("first use: got {}", code::describe(result.code)),
    )?;
    let again = stack.login_at(&carol.name, &code_now, NOW + 5);
    check(
        again.code == code::AUTH_ERR,
        format!("replay gave {}", again.code),
    )?;
    assert_logged(&stack, "replay refused")?;
    // An older step's code is refused too once a later step was used.
    let older = enrolled.code_at(NOW - 30);
    if older != code_now {
        let result = stack.login_at(&carol.name, &older, NOW + 5);
        check(
            result.code == code::AUTH_ERR,
            format!(
                "older step accepted after newer one: got {}",
                code::describe(result.code)
            ),
        )?;
    }
    // The next step's code is fresh.
    let next = enrolled.code_at(NOW + 30);
    let result = stack.login_at(&carol.name, &next, NOW + 30);
    check(
        result.code == code::SUCCESS,
        format!("next step: got {}", code::describe(result.code)),
    )
}

fn window_edges(ns: &TestNamespace) -> Result<(), Failed> {
    // Each offset on its own user, so replay protection does not interfere.
    let stack = stack(ns, "window", "", "");
    for (i, (offset, expected)) in [
        (-2i64, code::AUTH_ERR),
        (-1, code::SUCCESS),
        (1, code::SUCCESS),
        (2, code::AUTH_ERR),
    ]
    .into_iter()
    .enumerate()
    {
        let u = user(3 + i as u32);
        let enrolled = Enrolled::standard();
        stack.enroll(&u, &enrolled);
        let other_steps: Vec<String> = [-1i64, 0, 1]
            .iter()
            .map(|o| enrolled.code_at((NOW as i64 + o * 30) as u64))
            .collect();
        let candidate = enrolled.code_at((NOW as i64 + offset * 30) as u64);
        // A code that happens to equal one inside the window proves nothing.
        if offset.abs() == 2 && other_steps.contains(&candidate) {
            continue;
        }
        let result = stack.login_at(&u.name, &candidate, NOW);
        check(
            result.code == expected,
            format!(
                "offset {offset} steps gave {}, expected {expected}",
                result.code
            ),
        )?;
    }
    Ok(())
}

fn wider_window_from_module_argument(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "window2", "window=2", "");
    let u = user(7);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW - 60), NOW);
    check(
        result.code == code::SUCCESS,
        format!("-2 steps with window=2 gave {}", result.code),
    )
}

fn other_parameters(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "params", "", "");
    for (i, algorithm) in [Algorithm::SHA256, Algorithm::SHA512]
        .into_iter()
        .enumerate()
    {
        let u = user(8 + i as u32);
        let enrolled = Enrolled::new(algorithm, 8, 60, 0);
        stack.enroll(&u, &enrolled);
        let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW);
        check(
            result.code == code::SUCCESS,
            format!("{algorithm:?}/8/60 gave {}", result.code),
        )?;
        let six = &enrolled.code_at(NOW)[2..];
        let result = stack.login_at(&u.name, six, NOW + 60);
        check(
            result.code == code::AUTH_ERR,
            format!(
                "6 digits accepted for an 8-digit enrollment: got {}",
                code::describe(result.code)
            ),
        )?;
    }
    Ok(())
}

fn backup_code_works_once(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "backup", "", "");
    let u = user(10);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let backup = &enrolled.backup_codes[3];
    let first = stack.login_at(&u.name, backup, NOW);
    check(
        first.code == code::SUCCESS,
        format!("first use gave {}", first.code),
    )?;
    check(
        first.shown.contains(&Shown::Info(
            "Backup code accepted. 9 backup codes left.".into(),
        )),
        format!("messages {:?}", first.shown),
    )?;
    assert_logged(&stack, "method=backup-code")?;
    let second = stack.login_at(&u.name, backup, NOW + 100);
    check(
        second.code == code::AUTH_ERR,
        format!("second use gave {}", second.code),
    )?;
    assert_logged(&stack, "backup code already used")?;
    // Typed differently (upper case, no dashes): still the same spent code.
    let retyped = backup.to_uppercase().replace('-', "");
    let result = stack.login_at(&u.name, &retyped, NOW + 200);
    check(
        result.code == code::AUTH_ERR,
        format!("retyped spent code: got {}", code::describe(result.code)),
    )?;
    // Another code still works, typed without dashes.
    let other = enrolled.backup_codes[4].replace('-', "");
    let third = stack.login_at(&u.name, &other, NOW + 300);
    check(
        third.code == code::SUCCESS,
        format!("second code: got {}", code::describe(third.code)),
    )?;
    check(
        third.shown.contains(&Shown::Info(
            "Backup code accepted. 8 backup codes left.".into(),
        )),
        format!("messages {:?}", third.shown),
    )?;
    assert_not_logged(backup)
}

fn silent_flag_suppresses_messages(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "silent", "", "");
    let u = user(11);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let result = stack.authenticate(
        &u.name,
        &Attempt {
            answers: vec![enrolled.backup_codes[0].clone()],
            env: vec![format!("PAM_TWOFACTOR_TEST_NOW={NOW}")],
            flags: 0x8000,
            ..Attempt::default()
        },
    );
    check(
        result.code == code::SUCCESS,
        format!(
            "backup code under PAM_SILENT: got {}",
            code::describe(result.code)
        ),
    )?;
    check(
        !result.shown.iter().any(|s| matches!(s, Shown::Info(_))),
        format!("PAM_SILENT but shown {:?}", result.shown),
    )
}

/// A stack that succeeds exactly when the module returns PAM_IGNORE: IGNORE
/// skips to pam_permit, success skips past it to pam_deny, anything else dies.
fn ignore_detecting_stack(stack: &Stack, args: &str) {
    stack.write_stack(&format!(
        "auth [success=2 ignore=1 default=die] {} config={} {args}\n\
         auth requisite pam_deny.so\n\
         auth sufficient pam_permit.so\n\
         auth requisite pam_deny.so\n",
        test_clock_module().display(),
        stack.config_path.display()
    ));
}

fn unenrolled_user_policies(ns: &TestNamespace) -> Result<(), Failed> {
    let u = user(12);
    let fail = stack(ns, "unenrolled-fail", "", "");
    let result = fail.login_at(&u.name, "123456", NOW);
    check(
        result.code == code::AUTH_ERR,
        format!("fail policy gave {}", result.code),
    )?;
    check(result.prompts().len() == 1, "fail policy must still ask")?;
    assert_logged(&fail, "no second factor enrolled (unenrolled = fail)")?;

    for (service, args, config) in [
        ("unenrolled-ignore", "", "unenrolled = \"ignore\""),
        ("unenrolled-nullok", "nullok", ""),
    ] {
        let ignore = stack(ns, service, args, config);
        ignore_detecting_stack(&ignore, args);
        let result = ignore.login_at(&u.name, "123456", NOW);
        check(
            result.code == code::SUCCESS,
            format!(
                "{service}: module did not return PAM_IGNORE ({})",
                result.code
            ),
        )?;
        check(
            result.prompts().is_empty(),
            format!("{service} must not ask"),
        )?;
        assert_logged(&ignore, "passing on (unenrolled = ignore)")?;
        // An enrollment without any method counts as not enrolled.
        ignore.write_enrollment_text(&u, "version = 1\n");
        let result = ignore.login_at(&u.name, "123456", NOW);
        check(
            result.code == code::SUCCESS,
            format!("empty enrollment: got {}", code::describe(result.code)),
        )?;
        // Once enrolled, the same stack asks and refuses a wrong code.
        let enrolled = Enrolled::standard();
        ignore.enroll(&u, &enrolled);
        let result = ignore.login_at(&u.name, "000000", NOW);
        check(
            result.code != code::SUCCESS && result.prompts().len() == 1,
            format!(
                "enrolled user under nullok: got {}",
                code::describe(result.code)
            ),
        )?;
        fs::remove_file(ignore.enrollment_path(&u))?;
    }

    // With `auth required` + ignore and nothing else, libpam refuses: the
    // module never turns "no factor" into success.
    let only = stack(ns, "unenrolled-only", "nullok", "");
    let result = only.login_at(&u.name, "", NOW);
    check(
        result.code != code::SUCCESS,
        format!(
            "IGNORE alone must not authenticate: got {}",
            code::describe(result.code)
        ),
    )
}

fn unknown_user_is_asked_and_fails(ns: &TestNamespace) -> Result<(), Failed> {
    for (service, args) in [("unknown", ""), ("unknown-nullok", "nullok")] {
        let stack = stack(ns, service, args, "");
        let result = stack.login_at("no-such-user-xyz", "123456", NOW);
        check(
            result.code == code::USER_UNKNOWN,
            format!("{service}: code {}", result.code),
        )?;
        check(
            result.prompts() == vec!["Verification code: ".to_string()],
            "unknown users see the same prompt",
        )?;
        assert_logged(&stack, "unknown user")?;
    }
    Ok(())
}

/// Turns a good enrollment file (path, owner uid) into a hostile one.
type Spoiler = Box<dyn Fn(&std::path::Path, u32)>;

fn hostile_enrollment_files_fail_closed(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "hostile", "", "");
    let enrolled = Enrolled::standard();
    let good_text = enrolled.enrollment.to_json().to_string();
    let cases: Vec<(&str, Spoiler, &str)> = vec![
        (
            "symlink",
            Box::new(|path, uid| {
                let target = path.with_file_name("real.json");
                fs::rename(path, &target).unwrap();
                symlink(&target, path).unwrap();
                let _ = uid;
            }),
            "is a symbolic link (refused)",
        ),
        (
            "dangling symlink",
            Box::new(|path, _| {
                fs::remove_file(path).unwrap();
                symlink("/nonexistent/enrollment.json", path).unwrap();
            }),
            "is a symbolic link (refused)",
        ),
        (
            "owned by another user",
            Box::new(|path, _| {
                chown(path, Some(user(39).uid), Some(user(39).uid)).unwrap();
                fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
            }),
            "is owned by uid 61039, expected uid",
        ),
        (
            // Read with the user's identity, a private root-owned file cannot even be opened.
            "owned by root",
            Box::new(|path, _| chown(path, Some(0), Some(0)).unwrap()),
            "cannot be used: Permission denied",
        ),
        (
            "group-writable",
            Box::new(|path, _| {
                fs::set_permissions(path, fs::Permissions::from_mode(0o620)).unwrap()
            }),
            "unsafe permissions 0620",
        ),
        (
            "world-writable",
            Box::new(|path, _| {
                fs::set_permissions(path, fs::Permissions::from_mode(0o602)).unwrap()
            }),
            "unsafe permissions 0602",
        ),
        (
            "world-readable",
            Box::new(|path, _| {
                fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap()
            }),
            "unsafe permissions 0644",
        ),
        (
            "fifo",
            Box::new(|path, uid| {
                fs::remove_file(path).unwrap();
                nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
                chown(path, Some(uid), Some(uid)).unwrap();
            }),
            "is a FIFO, not a regular file",
        ),
        (
            "directory",
            Box::new(|path, uid| {
                fs::remove_file(path).unwrap();
                fs::create_dir(path).unwrap();
                chown(path, Some(uid), Some(uid)).unwrap();
                fs::set_permissions(path, fs::Permissions::from_mode(0o700)).unwrap();
            }),
            "is a directory, not a regular file",
        ),
        (
            "oversized",
            Box::new(|path, _| {
                let mut text = fs::read_to_string(path).unwrap();
                text.push_str(&format!("# {}\n", "x".repeat(70 * 1024)));
                fs::write(path, text).unwrap();
            }),
            "is too large",
        ),
        (
            "malformed TOML",
            Box::new(|path, _| fs::write(path, "version = 1\n[totp\nsecret = ").unwrap()),
            "is invalid",
        ),
        (
            "malformed JSON",
            Box::new(|path, _| {
                fs::write(path, "{\"version\": 1, \"totp\": {\"secret\": ").unwrap()
            }),
            "is invalid: unexpected end of the document",
        ),
        (
            "bad secret",
            Box::new(|path, _| {
                fs::write(path, "version = 1\n[totp]\nsecret = \"0000\"\n").unwrap()
            }),
            "not valid base32",
        ),
        (
            "unsafe directory",
            Box::new(|path, _| {
                fs::set_permissions(path.parent().unwrap(), fs::Permissions::from_mode(0o777))
                    .unwrap()
            }),
            "is writable by group or others",
        ),
    ];
    for (i, (name, spoil, expected_log)) in cases.into_iter().enumerate() {
        let u = user(13 + i as u32);
        let path = stack.write_enrollment_text(&u, &good_text);
        spoil(&path, u.uid);
        let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW);
        check(
            result.code == code::AUTHINFO_UNAVAIL,
            format!("{name}: code {} (expected AUTHINFO_UNAVAIL)", result.code),
        )?;
        check(
            result.prompts().len() == 1,
            format!("{name}: asked like everyone else"),
        )?;
        let wanted = format!("{}", path.display());
        check(
            stack.wait_for_log(|l| {
                let names_user = l.contains(&format!("user={} ", u.name))
                    || l.ends_with(&format!("user={}", u.name));
                names_user && l.contains(&wanted) && l.contains(expected_log)
            }),
            format!(
                "{name}: no log line with {wanted} and {expected_log:?}; lines: {:#?}",
                stack.log_lines()
            ),
        )?;
    }
    assert_not_logged(&enrolled.code_at(NOW))
}

/// A line forged into an enrollment's key: if it reached the log as it is,
/// a log reader would see a second factor accepted for root.
const FORGED: &str = "Jan  1 00:00:00 sshd[1]: pam_twofactor(sshd:auth): second factor accepted: user=root method=totp";

fn hostile_toml_enrollment_cannot_forge_log_lines(ns: &TestNamespace) -> Result<(), Failed> {
    let enrolled = Enrolled::standard();
    let documents = [
        (
            "hostile-key",
            // TOML escapes: the key holds a line break, ESC, BEL and CR.
            format!("version = 1\n\"x\\n{FORGED}\\u001b[2J\\u0007\\r\" = 1\n"),
            "is invalid: unexpected field or value at line 2, column 1",
        ),
        (
            "hostile-secret",
            "version = 1\n[totp]\nsecret = 1234567890123456\n".to_string(),
            "is invalid: unexpected field or value at line 3, column 10",
        ),
        (
            "hostile-both",
            format!(
                "version = 1\n[totp]\nsecret = 1234567890123456\n\"\\r\\n{FORGED}\\u0007\" = 2\n"
            ),
            "is invalid: unexpected field or value at line 4, column 1",
        ),
    ];
    for ((service, text, expected), index) in documents.into_iter().zip([29, 37, 38]) {
        let stack = stack(ns, service, "", "");
        let u = user(index);
        // Version 1's file name beside a missing enrollment.json: read as
        // TOML by the module.
        stack.user_dir(&u);
        let legacy = stack.enrollment_path(&u).with_file_name("enrollment.toml");
        fs::write(&legacy, &text)?;
        chown(&legacy, Some(u.uid), Some(u.uid))?;
        fs::set_permissions(&legacy, fs::Permissions::from_mode(0o600))?;

        let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW);
        check(
            result.code == code::AUTHINFO_UNAVAIL,
            format!(
                "{service}: code {} (expected AUTHINFO_UNAVAIL)",
                result.code
            ),
        )?;
        assert_logged(&stack, expected)?;
        // As a syslog daemon writes them: one line per line break.
        let lines: Vec<String> = stack
            .log_lines()
            .iter()
            .flat_map(|datagram| datagram.split(['\n', '\r']).map(str::to_string))
            .filter(|line| !line.is_empty())
            .collect();
        check(
            lines.len() == 1,
            format!("{service}: expected one log line, got {lines:#?}"),
        )?;
        let line = &lines[0];
        check(
            !line.bytes().any(|b| b < 0x20 || b == 0x7f),
            format!("{service}: control character in {line:?}"),
        )?;
        check(
            line.contains(&legacy.display().to_string())
                && (line.contains(&format!("user={} ", u.name))
                    || line.ends_with(&format!("user={}", u.name))),
            format!("{service}: {line:?}"),
        )?;
        for quoted in ["1234567890123456", "second factor accepted", "user=root"] {
            check(
                !line.contains(quoted),
                format!("{service}: the log line quotes {quoted:?}: {line:?}"),
            )?;
        }
    }
    Ok(())
}

/// The module followed by pam_unix with use_first_pass: the login succeeds
/// only if the module handed on exactly the password part.
fn with_pam_unix(stack: &Stack, args: &str) {
    stack.write_stack(&format!(
        "auth required {} config={} {args}\nauth required pam_unix.so use_first_pass\n",
        test_clock_module().display(),
        stack.config_path.display()
    ));
}

/// pam_unix first (optional, so its failure on "password+code" does not
/// count) stores the answer to its "Password: " prompt as PAM_AUTHTOK, as an
/// earlier module would; then the module, then pam_unix checking the password
/// part the module left behind.
fn after_pam_unix(stack: &Stack, args: &str) {
    stack.write_stack(&format!(
        "auth optional pam_unix.so nodelay\n\
         auth required {} config={} {args}\n\
         auth required pam_unix.so use_first_pass nodelay\n",
        test_clock_module().display(),
        stack.config_path.display()
    ));
}

fn password_stacking(ns: &TestNamespace) -> Result<(), Failed> {
    let enrolled = Enrolled::standard();
    let env = |t: u64| vec![format!("PAM_TWOFACTOR_TEST_NOW={t}")];

    // forward_pass: one answer, the password goes on as PAM_AUTHTOK.
    let forward = stack(ns, "forward", "forward_pass", "");
    with_pam_unix(&forward, "forward_pass");
    let u = user(30);
    forward.enroll(&u, &enrolled);
    let result = forward.authenticate(
        &u.name,
        &Attempt {
            answers: vec![format!("{PASSWORD}{}", enrolled.code_at(NOW))],
            env: env(NOW),
            ..Attempt::default()
        },
    );
    check(
        result.code == code::SUCCESS,
        format!("forward_pass gave {}", result.code),
    )?;
    check(
        result.prompts() == vec!["Password & verification code: ".to_string()],
        format!("prompts {:?}", result.prompts()),
    )?;
    let result = forward.authenticate(
        &u.name,
        &Attempt {
            answers: vec![format!("wrong pass{}", enrolled.code_at(NOW + 30))],
            env: env(NOW + 30),
            ..Attempt::default()
        },
    );
    check(
        result.code == code::AUTH_ERR,
        format!(
            "a wrong password with a right code must fail: got {}",
            code::describe(result.code)
        ),
    )?;
    let backup = &enrolled.backup_codes[0];
    let result = forward.authenticate(
        &u.name,
        &Attempt {
            answers: vec![format!("{PASSWORD}{backup}")],
            env: env(NOW + 60),
            ..Attempt::default()
        },
    );
    check(
        result.code == code::SUCCESS,
        format!("password + backup code gave {}", result.code),
    )?;

    // use_first_pass: never asks; takes password+code from PAM_AUTHTOK.
    let use_first = stack(ns, "use-first", "use_first_pass", "");
    after_pam_unix(&use_first, "use_first_pass");
    let u = user(31);
    use_first.enroll(&u, &enrolled);
    let result = use_first.authenticate(
        &u.name,
        &Attempt {
            answers: vec![format!("{PASSWORD}{}", enrolled.code_at(NOW))],
            env: env(NOW),
            ..Attempt::default()
        },
    );
    check(
        result.code == code::SUCCESS,
        format!("use_first_pass gave {}", result.code),
    )?;
    check(
        result.prompts().len() == 1,
        format!("use_first_pass must not ask: {:?}", result.prompts()),
    )?;
    let result = use_first.authenticate(
        &u.name,
        &Attempt {
            answers: vec![PASSWORD.into()],
            env: env(NOW + 30),
            ..Attempt::default()
        },
    );
    check(
        result.code == code::AUTH_ERR && result.prompts().len() == 1,
        format!(
            "use_first_pass without code: got {}",
            code::describe(result.code)
        ),
    )?;

    // try_first_pass: a plain password in PAM_AUTHTOK leads to the prompt.
    let try_first = stack(ns, "try-first", "try_first_pass", "");
    after_pam_unix(&try_first, "try_first_pass");
    let u = user(32);
    try_first.enroll(&u, &enrolled);
    let result = try_first.authenticate(
        &u.name,
        &Attempt {
            answers: vec![PASSWORD.into(), enrolled.code_at(NOW)],
            env: env(NOW),
            ..Attempt::default()
        },
    );
    check(
        result.code == code::SUCCESS,
        format!("try_first_pass gave {}", result.code),
    )?;
    check(
        result.prompts().len() == 2 && result.prompts()[1] == "Verification code: ",
        format!(
            "try_first_pass asks when the token holds no code: {:?}",
            result.prompts()
        ),
    )?;
    let result = try_first.authenticate(
        &u.name,
        &Attempt {
            answers: vec![format!("{PASSWORD}{}", enrolled.code_at(NOW + 30))],
            env: env(NOW + 30),
            ..Attempt::default()
        },
    );
    check(
        result.code == code::SUCCESS && result.prompts().len() == 1,
        format!(
            "try_first_pass with password+code: {} {:?}",
            result.code,
            result.prompts()
        ),
    )?;
    assert_not_logged(PASSWORD)
}

fn bad_configuration_fails_closed(ns: &TestNamespace) -> Result<(), Failed> {
    let u = user(33);
    let enrolled = Enrolled::standard();
    let cases = [
        ("cfg-unknown-key", "", "windw = 2", "unknown field"),
        ("cfg-bad-value", "", "window = 9", "too wide"),
        (
            "cfg-unknown-arg",
            "debugg",
            "",
            "unknown module argument \"debugg\"",
        ),
        ("cfg-bad-arg", "window=x", "", "invalid value for window"),
    ];
    for (service, args, config, expected) in cases {
        let stack = stack(ns, service, args, config);
        stack.enroll(&u, &enrolled);
        let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW);
        check(
            result.code == code::SERVICE_ERR,
            format!("{service}: code {}", result.code),
        )?;
        check(
            result.prompts().is_empty(),
            format!("{service}: asked despite broken config"),
        )?;
        assert_logged(&stack, expected)?;
    }
    // A configuration writable by others could switch the module off.
    let stack = stack(ns, "cfg-writable", "", "");
    stack.enroll(&u, &enrolled);
    fs::set_permissions(&stack.config_path, fs::Permissions::from_mode(0o666))?;
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW);
    check(
        result.code == code::SERVICE_ERR,
        format!("writable config: {}", result.code),
    )?;
    assert_logged(&stack, "unsafe permissions 0666")?;
    // An explicitly named configuration that is missing.
    let stack = Stack::new(ns, "cfg-missing", &test_clock_module(), "", "");
    fs::remove_file(&stack.config_path)?;
    let result = stack.login_at(&u.name, "123456", NOW);
    check(
        result.code == code::SERVICE_ERR,
        format!("missing config: {}", result.code),
    )?;
    assert_logged(&stack, "does not exist")
}

fn unsafe_state_directory_fails_closed(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "state-unsafe", "", "");
    let u = user(34);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    fs::create_dir(&stack.state_dir)?;
    fs::set_permissions(&stack.state_dir, fs::Permissions::from_mode(0o777))?;
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW);
    check(
        result.code == code::AUTHINFO_UNAVAIL,
        format!("world-writable state dir: {}", result.code),
    )?;
    assert_logged(&stack, "login state unusable")?;
    fs::set_permissions(&stack.state_dir, fs::Permissions::from_mode(0o700))?;
    chown(&stack.state_dir, Some(u.uid), None)?;
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW);
    check(
        result.code == code::AUTHINFO_UNAVAIL,
        format!(
            "state dir owned by the user: got {}",
            code::describe(result.code)
        ),
    )?;
    chown(&stack.state_dir, Some(0), None)?;
    // A corrupt state file is not silently reset (that would re-open spent codes).
    let state_file = stack.state_dir.join(format!("{}.state", u.name));
    fs::write(&state_file, "spent_backup_codes = [")?;
    fs::set_permissions(&state_file, fs::Permissions::from_mode(0o600))?;
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW);
    check(
        result.code == code::AUTHINFO_UNAVAIL,
        format!("corrupt state: got {}", code::describe(result.code)),
    )?;
    fs::remove_file(&state_file)?;
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW);
    check(
        result.code == code::SUCCESS,
        format!("after repair: {}", result.code),
    )
}

fn production_build_ignores_test_clock(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = Stack::new(ns, "production", &production_module(), "", "");
    let u = user(35);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    // A code for the pretended time is refused: the variable is ignored ...
    let pretended = 2_000_000_000;
    let result = stack.login_at(&u.name, &enrolled.code_at(pretended), pretended);
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let real_codes: Vec<String> = [-1i64, 0, 1]
        .iter()
        .map(|o| enrolled.code_at((real_now as i64 + o * 30) as u64))
        .collect();
    if !real_codes.contains(&enrolled.code_at(pretended)) {
        check(
            result.code == code::AUTH_ERR,
            format!(
                "production module honoured the test clock: got {}",
                code::describe(result.code)
            ),
        )?;
    }
    // ... and the real clock decides.
    let result = stack.login_at(&u.name, &enrolled.code_at(real_now), pretended);
    check(
        result.code == code::SUCCESS,
        format!("real-time code gave {}", result.code),
    )?;
    let bytes = fs::read(production_module())?;
    check(
        !bytes.windows(22).any(|w| w == b"PAM_TWOFACTOR_TEST_NOW"),
        "the production module contains the test clock variable name",
    )
}

fn conversation_failure_is_an_error(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "noanswer", "", "");
    let u = user(36);
    stack.enroll(&u, &Enrolled::standard());
    let result = stack.authenticate(
        &u.name,
        &Attempt {
            env: vec![format!("PAM_TWOFACTOR_TEST_NOW={NOW}")],
            ..Attempt::default()
        },
    );
    check(
        result.code == code::CONV_ERR,
        format!("no answer gave {}", result.code),
    )
}

/// An application whose `struct pam_conv` has a NULL function (libpam
/// accepts it): the login fails as a conversation error instead of crashing
/// the application, and the next login works.
fn null_conversation_function_is_an_error(ns: &TestNamespace) -> Result<(), Failed> {
    let stack = stack(ns, "nullconv", "", "");
    let u = user(8);
    let enrolled = Enrolled::standard();
    stack.enroll(&u, &enrolled);
    let result = stack.authenticate(
        &u.name,
        &Attempt {
            answers: vec![enrolled.code_at(NOW)],
            env: vec![format!("PAM_TWOFACTOR_TEST_NOW={NOW}")],
            null_conversation: true,
            ..Attempt::default()
        },
    );
    check(
        result.code == code::CONV_ERR && result.shown.is_empty(),
        format!("a NULL conversation function gave {result:?}"),
    )?;
    assert_logged(&stack, "conversation failed")?;
    let result = stack.login_at(&u.name, &enrolled.code_at(NOW), NOW);
    check(
        result.code == code::SUCCESS,
        format!(
            "the code after the failed conversation gave {}",
            result.code
        ),
    )
}

fn main() {
    let ns = namespace::enter();
    run_trials(
        ns,
        vec![
            ("correct_code_succeeds", correct_code_succeeds),
            (
                "malformed_and_wrong_codes_fail",
                malformed_and_wrong_codes_fail,
            ),
            ("replayed_code_is_refused", replayed_code_is_refused),
            ("window_edges", window_edges),
            (
                "wider_window_from_module_argument",
                wider_window_from_module_argument,
            ),
            ("other_parameters", other_parameters),
            ("backup_code_works_once", backup_code_works_once),
            (
                "silent_flag_suppresses_messages",
                silent_flag_suppresses_messages,
            ),
            ("unenrolled_user_policies", unenrolled_user_policies),
            (
                "unknown_user_is_asked_and_fails",
                unknown_user_is_asked_and_fails,
            ),
            (
                "hostile_enrollment_files_fail_closed",
                hostile_enrollment_files_fail_closed,
            ),
            (
                "hostile_toml_enrollment_cannot_forge_log_lines",
                hostile_toml_enrollment_cannot_forge_log_lines,
            ),
            ("password_stacking", password_stacking),
            (
                "bad_configuration_fails_closed",
                bad_configuration_fails_closed,
            ),
            (
                "unsafe_state_directory_fails_closed",
                unsafe_state_directory_fails_closed,
            ),
            (
                "production_build_ignores_test_clock",
                production_build_ignores_test_clock,
            ),
            (
                "conversation_failure_is_an_error",
                conversation_failure_is_an_error,
            ),
            (
                "null_conversation_function_is_an_error",
                null_conversation_function_is_an_error,
            ),
        ],
    );
}
