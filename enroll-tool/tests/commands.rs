//! status, verify, backup-codes, disable, reset-lockout, QR files and
//! events, end to end with the built binary. Must run as root: the commands
//! act for `nobody` (with --user, and as `nobody` itself).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;

use common::*;
use serde_json::Value;
use twofactor_core::backup::{self, BackupCheck};
use twofactor_core::state::{FailureKind, Method};

fn verify(sandbox: &Sandbox, code: &str) -> (i32, Value) {
    let output = run_with_stdin(
        sandbox.command("verify", &["--user", TARGET_USER, "--json"]),
        &format!("{code}\n"),
    );
    let report: Value = serde_json::from_str(&stdout(&output))
        .unwrap_or_else(|_| panic!("JSON from verify: {output:?}"));
    (exit_code(&output), report)
}

fn status_json(sandbox: &Sandbox) -> Value {
    let report = json_of(&sandbox.run("status", &["--user", TARGET_USER, "--json"]));
    validate(&report, &schema("status.schema.json"));
    report
}

fn backup_code_id(sandbox: &Sandbox, code: &str) -> String {
    let enrollment = read_enrollment(&sandbox.enrollment_path());
    match backup::verify(code, &enrollment.backup_codes, |_| false) {
        BackupCheck::Accepted { id } => id,
        other => panic!("{code}: {other:?}"),
    }
}

#[test]
fn enroll_json_follows_its_schema_and_qr_files_decode_to_the_uri() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let png = sandbox.path("nobody/qr.png");
    let report = sandbox.enroll_json(&["--qr-file", png.to_str().unwrap()]);
    validate(&report, &schema("enroll.schema.json"));
    let uri = report["otpauth_uri"].as_str().unwrap();
    assert_eq!(report["qr_file"], png.to_str().unwrap());
    assert_eq!(report["replaced"], false);
    assert_eq!(decode_png(&png), uri, "the PNG holds the URI");
    let meta = fs::metadata(&png).unwrap();
    assert_eq!(meta.uid(), target_user().uid.as_raw(), "owned by the user");
    assert_eq!(meta.mode() & 0o7777, 0o600, "it holds the secret");
    // At least 160 bits of secret.
    assert!(totp_of_uri(uri).secret.len() >= 20);

    // An existing QR file is never overwritten, and then nothing is enrolled.
    let before = fs::read(sandbox.enrollment_path()).unwrap();
    let refused = sandbox.run(
        "enroll",
        &[
            "--user",
            TARGET_USER,
            "--non-interactive",
            "--force",
            "--qr-file",
            png.to_str().unwrap(),
        ],
    );
    assert_eq!(exit_code(&refused), 1);
    assert!(assert_one_line_error(&refused).contains("never overwrites"));
    assert_eq!(fs::read(sandbox.enrollment_path()).unwrap(), before);

    let svg = sandbox.path("nobody/qr.SVG");
    let report = sandbox.enroll_json(&["--force", "--qr-file", svg.to_str().unwrap()]);
    validate(&report, &schema("enroll.schema.json"));
    assert_eq!(report["replaced"], true);
    let text = fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg"), "{text}");
    assert_eq!(decode_svg(&text), report["otpauth_uri"].as_str().unwrap());
}

#[test]
fn a_qr_file_the_user_cannot_write_stops_the_enrollment() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    // The sandbox's top directory is root's (0755): nobody cannot write there.
    let qr = sandbox.path("qr.png");
    let output = sandbox.run(
        "enroll",
        &[
            "--user",
            TARGET_USER,
            "--non-interactive",
            "--qr-file",
            qr.to_str().unwrap(),
        ],
    );
    assert_eq!(exit_code(&output), 2);
    let message = assert_one_line_error(&output);
    assert!(message.contains("Permission denied"), "{message}");
    assert!(!qr.exists());
    assert!(!sandbox.enrollment_path().exists());
}

#[test]
fn status_reports_methods_codes_logins_failures_and_lockouts() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");

    let report = status_json(&sandbox);
    assert_eq!(report["enrollment"]["status"], "not-enrolled");
    assert_eq!(report["methods"]["totp"]["enrolled"], false);
    assert_eq!(report["state"]["recorded"], false);
    assert_eq!(report["lockout"]["codes"]["locked"], false);
    let text = stdout(&sandbox.run("status", &["--user", TARGET_USER]));
    assert!(text.contains("run 'twofactor enroll'"), "{text}");

    let enrolled = sandbox.enroll_json(&[]);
    let codes = backup_codes_of(&enrolled);
    let spent = backup_code_id(&sandbox, &codes[0]);
    let now = now();
    sandbox.edit_state(|state| {
        state.spent_backup_codes.push(spent);
        state.record_success(Method::BackupCode, now - 3600);
        state.record_failure(FailureKind::Code, Some("192.0.2.7"), now - 120);
    });
    let report = status_json(&sandbox);
    assert_eq!(report["enrollment"]["status"], "enrolled");
    assert_eq!(report["methods"]["totp"]["enrolled"], true);
    assert_eq!(report["methods"]["totp"]["algorithm"], "SHA1");
    assert_eq!(report["methods"]["backup_codes"]["total"], 10);
    assert_eq!(report["methods"]["backup_codes"]["remaining"], 9);
    assert_eq!(report["last_success"]["method"], "backup-code");
    assert_eq!(report["last_success"]["time"], now - 3600);
    assert_eq!(report["recent_failures"][0]["host"], "192.0.2.7");
    assert_eq!(report["recent_failures"][0]["kind"], "code");
    assert_eq!(report["lockout"]["codes"]["locked"], false);

    sandbox.edit_state(|state| {
        for seconds_ago in 1..=5 {
            state.record_failure(FailureKind::Code, None, now - seconds_ago);
        }
    });
    let report = status_json(&sandbox);
    assert_eq!(report["lockout"]["codes"]["locked"], true);
    let until = report["lockout"]["codes"]["until"].as_u64().unwrap();
    assert!(until > now && until <= now + 900, "{until}");
    assert_eq!(report["lockout"]["backup_codes"]["locked"], false);
    let text = stdout(&sandbox.run("status", &["--user", TARGET_USER]));
    for expected in [
        "enrolled (SHA1, 6 digits, every 30 seconds)",
        "9 of 10 left",
        "with a backup code",
        "6 in the last 7 days",
        "codes locked until",
        "An administrator can lift it: twofactor reset-lockout --user nobody\n",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }

    // The user sees the same, reading their own state (0640, their group).
    let own = sandbox.run_as_user("status", &["--json"], "");
    let own = json_of(&own);
    validate(&own, &schema("status.schema.json"));
    assert_eq!(own["state"]["readable"], true);
    assert_eq!(own["methods"]["backup_codes"]["remaining"], 9);
}

#[test]
fn status_explains_a_state_it_cannot_read() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    sandbox.enroll_json(&[]);
    sandbox.edit_state(|state| state.record_success(Method::Totp, now()));

    // An older install: the state directory is 0700.
    fs::set_permissions(sandbox.state_dir(), fs::Permissions::from_mode(0o700)).unwrap();
    let output = sandbox.run_as_user("status", &["--json"], "");
    let report = json_of(&output);
    validate(&report, &schema("status.schema.json"));
    assert_eq!(report["state"]["readable"], false);
    assert!(report["state"]["error"]
        .as_str()
        .unwrap()
        .contains("chmod 0711"));
    assert!(report["lockout"].is_null());
    assert!(report["methods"]["backup_codes"]["remaining"].is_null());
    let text = stdout(&sandbox.run_as_user("status", &[], ""));
    assert!(text.contains("cannot be read"), "{text}");
    assert!(text.contains("10 stored"), "{text}");

    // An older state file: root's only.
    fs::set_permissions(sandbox.state_dir(), fs::Permissions::from_mode(0o711)).unwrap();
    let file = sandbox.state_file();
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let report = json_of(&sandbox.run_as_user("status", &["--json"], ""));
    assert!(report["state"]["error"]
        .as_str()
        .unwrap()
        .contains("readable only by root"));
    // Root still reads it.
    assert_eq!(status_json(&sandbox)["state"]["readable"], true);
}

#[test]
fn verify_accepts_an_oathtool_code_and_writes_nothing() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let enrolled = sandbox.enroll_json(&[]);
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    let before = fs::read(sandbox.enrollment_path()).unwrap();

    let code = oathtool_code(uri, now());
    let output = run_with_stdin(
        sandbox.command("verify", &["--user", TARGET_USER]),
        &format!("{code}\n"),
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).starts_with("valid: a correct TOTP code"));

    // Checking twice gives the same answer: nothing was recorded.
    let (status, report) = verify(&sandbox, &code);
    assert_eq!((status, report["result"].as_str()), (0, Some("valid")));
    assert_eq!(report["method"], "totp");
    let backup_code = &backup_codes_of(&enrolled)[4];
    for _ in 0..2 {
        let (status, report) = verify(&sandbox, backup_code);
        assert_eq!(status, 0);
        assert_eq!(report["method"], "backup-code");
    }
    assert!(!sandbox.state_dir().exists(), "verify created login state");
    assert_eq!(fs::read(sandbox.enrollment_path()).unwrap(), before);

    // The user checks their own code the same way.
    let output = sandbox.run_as_user("verify", &[], &format!("{code}\n"));
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
}

/// A user's file reaches the terminal only escaped: no escape sequence
/// from a key, no value quoted.
#[test]
fn errors_about_a_hostile_enrollment_carry_no_control_character() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.toml");
    let path = sandbox.path("nobody/enrollment.toml");
    let user = target_user();
    for text in [
        "version = 1\n\"x\\u001b]0;owned\\u0007\\u001b[2J\\r\\nforged\" = 1\n",
        "version = 1\n[totp]\nsecret = 1234567890123456\n",
    ] {
        fs::write(&path, text).unwrap();
        std::os::unix::fs::chown(&path, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let output = run_with_stdin(
            sandbox.command("verify", &["--user", TARGET_USER]),
            "123456\n",
        );
        assert_ne!(exit_code(&output), 0);
        let message = assert_one_line_error(&output);
        assert!(
            message.contains("is invalid: unexpected field or value at line"),
            "{message:?}"
        );
        assert!(
            !message.trim_end().chars().any(char::is_control),
            "{message:?}"
        );
        for quoted in ["forged", "owned", "1234567890123456"] {
            assert!(!message.contains(quoted), "{message:?}");
        }
        let status = stdout(&sandbox.run("status", &["--user", TARGET_USER]));
        assert!(
            !status.contains('\u{1b}') && !status.contains("forged"),
            "{status:?}"
        );
    }
}

/// The module's rule for the directories above an enrollment, applied by
/// the tool through the same function: an unsafe directory is an error
/// even when the file is gone, never "not enrolled".
#[test]
fn status_and_verify_refuse_an_enrollment_in_an_unsafe_directory() {
    require_root();
    let sandbox = Sandbox::with_user_path("twofactor/enrollment.json");
    let enrolled = sandbox.enroll_json(&[]);
    let uri = enrolled["otpauth_uri"].as_str().unwrap().to_string();
    let user_dir = sandbox.path(TARGET_USER);
    let dir = user_dir.join("twofactor");
    let verify_now = || {
        run_with_stdin(
            sandbox.command("verify", &["--user", TARGET_USER]),
            &format!("{}\n", oathtool_code(&uri, now())),
        )
    };
    assert_eq!(status_json(&sandbox)["enrollment"]["status"], "enrolled");
    assert_eq!(exit_code(&verify_now()), 0);

    for (mode, shown) in [(0o777, "0777"), (0o770, "0770"), (0o1777, "1777")] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
        let expected = format!(
            "{} is writable by group or others (mode {shown})",
            dir.display()
        );
        let report = status_json(&sandbox);
        assert_eq!(report["enrollment"]["status"], "unusable", "{report}");
        let error = report["enrollment"]["error"].as_str().unwrap();
        assert!(error.contains(&expected), "{error}");
        let output = verify_now();
        assert_ne!(exit_code(&output), 0);
        let message = assert_one_line_error(&output);
        assert!(message.contains(&expected), "{message}");
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();

    // Another user could move the enrollment's directory away.
    fs::set_permissions(&user_dir, fs::Permissions::from_mode(0o777)).unwrap();
    fs::rename(&dir, user_dir.join("moved")).unwrap();
    let expected = format!(
        "{} is writable by group or others (mode 0777)",
        user_dir.display()
    );
    let report = status_json(&sandbox);
    assert_eq!(report["enrollment"]["status"], "unusable", "{report}");
    assert!(report["enrollment"]["error"]
        .as_str()
        .unwrap()
        .contains(&expected));
    let message = assert_one_line_error(&verify_now());
    assert!(message.contains(&expected), "{message}");
    assert!(!message.contains("has no enrollment"), "{message}");

    // A directory of the path that is a symbolic link.
    fs::set_permissions(&user_dir, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(user_dir.join("moved"), &dir).unwrap();
    let message = assert_one_line_error(&verify_now());
    assert!(
        message.contains(&format!("{} is a symbolic link (refused)", dir.display())),
        "{message}"
    );
    // Enrolling there is refused too, before anything is asked.
    let output = sandbox.run(
        "enroll",
        &["--user", TARGET_USER, "--non-interactive", "--force"],
    );
    let message = assert_one_line_error(&output);
    assert!(
        message.contains("is not a safe place for an enrollment"),
        "{message}"
    );
}

#[test]
fn verify_tells_replayed_spent_and_wrong_codes_apart() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let enrolled = sandbox.enroll_json(&[]);
    let uri = enrolled["otpauth_uri"].as_str().unwrap().to_string();
    let codes = backup_codes_of(&enrolled);
    let spent = backup_code_id(&sandbox, &codes[1]);
    let period = totp_of_uri(&uri).period;
    let now = now();
    sandbox.edit_state(|state| {
        // A login already used the current step (and the next one).
        state.last_totp_step = Some(now / period + 1);
        state.spent_backup_codes.push(spent);
    });

    let (status, report) = verify(&sandbox, &oathtool_code(&uri, now));
    assert_eq!(status, 1);
    assert_eq!(report["result"], "replayed");
    assert_eq!(report["valid"], false);
    let output = run_with_stdin(
        sandbox.command("verify", &["--user", TARGET_USER]),
        &format!("{}\n", oathtool_code(&uri, now)),
    );
    assert!(
        stdout(&output).contains("valid but already used"),
        "{}",
        stdout(&output)
    );

    let (status, report) = verify(&sandbox, &codes[1]);
    assert_eq!((status, report["result"].as_str()), (1, Some("spent")));
    let (status, report) = verify(&sandbox, &codes[2]);
    assert_eq!((status, report["result"].as_str()), (0, Some("valid")));
    let (status, report) = verify(&sandbox, &wrong_code(&uri));
    assert_eq!((status, report["result"].as_str()), (1, Some("wrong")));
    assert!(report["method"].is_null());

    // Locked out: still answered (it is the user's own file), with a note.
    sandbox.edit_state(|state| {
        for t in 0..5 {
            state.record_failure(FailureKind::Code, None, now - t);
        }
    });
    let state_before = fs::read(sandbox.state_file()).unwrap();
    let (_, report) = verify(&sandbox, &wrong_code(&uri));
    assert!(report["locked_until"].as_u64().unwrap() > now);
    assert_eq!(
        fs::read(sandbox.state_file()).unwrap(),
        state_before,
        "verify changed the login state"
    );

    let empty = run_with_stdin(sandbox.command("verify", &["--user", TARGET_USER]), "");
    assert_eq!(exit_code(&empty), 1);
    assert!(assert_one_line_error(&empty).contains("no code"));
}

#[test]
fn backup_codes_are_replaced() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let enrolled = sandbox.enroll_json(&[]);
    let old_codes = backup_codes_of(&enrolled);
    let old = read_enrollment(&sandbox.enrollment_path());

    let report = json_of(&sandbox.run("backup-codes", &["--user", TARGET_USER, "--yes", "--json"]));
    let new_codes = backup_codes_of(&report);
    assert_eq!(new_codes.len(), 10);
    let new = read_enrollment(&sandbox.enrollment_path());
    assert_eq!(new.totp, old.totp, "TOTP is kept");
    assert_eq!(
        backup::verify(&old_codes[0], &new.backup_codes, |_| false),
        BackupCheck::Rejected
    );
    assert!(matches!(
        backup::verify(&new_codes[9], &new.backup_codes, |_| false),
        BackupCheck::Accepted { .. }
    ));
    let meta = fs::metadata(sandbox.enrollment_path()).unwrap();
    assert_eq!(meta.uid(), target_user().uid.as_raw());
    assert_eq!(meta.mode() & 0o7777, 0o600);

    // Without --yes and without a terminal: refused, nothing changed.
    let before = fs::read(sandbox.enrollment_path()).unwrap();
    let output = std::process::Command::new("setsid")
        .args([
            "--wait",
            BIN,
            "backup-codes",
            "--user",
            TARGET_USER,
            "--config",
        ])
        .arg(&sandbox.config)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(exit_code(&output), 1);
    assert!(assert_one_line_error(&output).contains("--yes"));
    assert_eq!(fs::read(sandbox.enrollment_path()).unwrap(), before);

    let sandbox = Sandbox::with_user_path("enrollment.json");
    let output = sandbox.run("backup-codes", &["--user", TARGET_USER, "--yes"]);
    assert_eq!(exit_code(&output), 1);
    assert!(assert_one_line_error(&output).contains("run 'twofactor enroll' first"));
}

#[test]
fn disable_one_method_then_the_rest() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    sandbox.enroll_json(&[]);

    let report = json_of(&sandbox.run(
        "disable",
        &["totp", "--user", TARGET_USER, "--yes", "--json"],
    ));
    assert_eq!(report["disabled"], serde_json::json!(["totp"]));
    assert_eq!(report["remaining"], serde_json::json!(["backup-codes"]));
    assert_eq!(report["removed"], false);
    let left = read_enrollment(&sandbox.enrollment_path());
    assert!(left.totp.is_none());
    assert_eq!(left.backup_codes.len(), 10);
    assert_eq!(status_json(&sandbox)["methods"]["totp"]["enrolled"], false);

    let again = sandbox.run("disable", &["totp", "--user", TARGET_USER, "--yes"]);
    assert_eq!(exit_code(&again), 0);
    assert!(stdout(&again).contains("Nothing to disable"));

    // The last method: the file goes.
    let report = json_of(&sandbox.run(
        "disable",
        &["backup-codes", "--user", TARGET_USER, "--yes", "--json"],
    ));
    assert_eq!(report["removed"], true);
    assert!(!sandbox.enrollment_path().exists());
    assert_eq!(
        status_json(&sandbox)["enrollment"]["status"],
        "not-enrolled"
    );

    // "all" also removes an enrollment the module would refuse.
    sandbox.enroll_json(&[]);
    fs::set_permissions(sandbox.enrollment_path(), fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(status_json(&sandbox)["enrollment"]["status"], "unusable");
    let output = sandbox.run("disable", &["all", "--user", TARGET_USER, "--yes"]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert!(!sandbox.enrollment_path().exists());
}

#[test]
fn reset_lockout_clears_failures_only_for_root() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    sandbox.enroll_json(&[]);
    let now = now();
    sandbox.edit_state(|state| {
        state.last_totp_step = Some(12345);
        for t in 0..6 {
            state.record_failure(FailureKind::Code, None, now - t);
        }
    });
    assert_eq!(status_json(&sandbox)["lockout"]["codes"]["locked"], true);

    let refused = sandbox.run_as_user("reset-lockout", &["--user", TARGET_USER], "");
    assert_eq!(exit_code(&refused), 1);
    assert!(assert_one_line_error(&refused).contains("only root"));

    let report = json_of(&sandbox.run("reset-lockout", &["--user", TARGET_USER, "--json"]));
    assert_eq!(report["cleared_failures"], 6);
    let status = status_json(&sandbox);
    assert_eq!(status["lockout"]["codes"]["locked"], false);
    // The history stays, marked cleared, with who cleared it and when.
    let failures = status["recent_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 6);
    assert!(
        failures.iter().all(|f| f["cleared"] == true),
        "{failures:?}"
    );
    let resets = status["lockout_resets"].as_array().unwrap();
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0]["by"], "root");
    assert_eq!(resets[0]["cleared_failures"], 6);
    assert!(resets[0]["time"].as_u64().unwrap() >= now);
    let text = stdout(&sandbox.run("status", &["--user", TARGET_USER]));
    assert!(text.contains("(cleared by a lockout reset)"), "{text}");
    assert!(text.contains("by root (6 failures cleared)"), "{text}");
    let state = twofactor_core::state::StateStore::new(sandbox.state_dir())
        .peek(TARGET_USER, 0)
        .unwrap();
    assert_eq!(
        state.newest_totp_step(),
        Some(12345),
        "replay protection kept"
    );
    let meta = fs::metadata(sandbox.state_file()).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, target_user().gid.as_raw()));
    assert_eq!(meta.mode() & 0o777, 0o640);

    let output = sandbox.run("reset-lockout", &["--user", TARGET_USER]);
    assert!(stdout(&output).contains("nothing to reset"), "{output:?}");
    let unknown = sandbox.run("reset-lockout", &["--user", "no-such-user-x7q"]);
    assert_eq!(exit_code(&unknown), 1);
    assert_one_line_error(&unknown);
}

#[test]
fn only_root_acts_for_someone_else() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    for (command, extra) in [
        ("status", vec![]),
        ("verify", vec![]),
        ("backup-codes", vec!["--yes"]),
        ("disable", vec!["all", "--yes"]),
        ("enroll", vec!["--non-interactive"]),
    ] {
        let mut args = extra.clone();
        args.extend(["--user", "root"]);
        let output = sandbox.run_as_user(command, &args, "123456\n");
        assert_eq!(exit_code(&output), 1, "{command}");
        let message = assert_one_line_error(&output);
        assert!(message.contains("only root"), "{command}: {message}");
    }
}

#[test]
fn the_notify_command_hears_about_every_change() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let notes = sandbox.path("notes");
    fs::create_dir(&notes).unwrap();
    let user = target_user();
    // The tool runs it as the user it acts for (privileges are dropped).
    std::os::unix::fs::chown(&notes, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    let log = notes.join("log");
    fs::write(
        &sandbox.config,
        format!(
            "enrollment_path = \"{dir}/%u/enrollment.json\"\nstate_dir = \"{dir}/state\"\n\
             notify_command = [\"/bin/sh\", \"-c\", \"echo \\\"$0 $1 $PATH\\\" >> {log}\"]\n",
            dir = sandbox.dir.path().display(),
            log = log.display()
        ),
    )
    .unwrap();

    let enrolled = sandbox.enroll_json(&[]);
    json_of(&sandbox.run("backup-codes", &["--user", TARGET_USER, "--yes", "--json"]));
    json_of(&sandbox.run(
        "disable",
        &["all", "--user", TARGET_USER, "--yes", "--json"],
    ));
    let path = "/usr/sbin:/usr/bin:/sbin:/bin";
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        format!(
            "enrolled nobody {path}\nbackup-codes-regenerated nobody {path}\n\
             disabled nobody {path}\n"
        )
    );
    let text = fs::read_to_string(&log).unwrap();
    assert!(!text.contains(uri_parameter(
        enrolled["otpauth_uri"].as_str().unwrap(),
        "secret"
    )));

    // A failing command is a warning; the change stands.
    fs::write(
        &sandbox.config,
        format!(
            "enrollment_path = \"{dir}/%u/enrollment.json\"\nnotify_command = [\"/bin/false\"]\n",
            dir = sandbox.dir.path().display()
        ),
    )
    .unwrap();
    let output = sandbox.run(
        "enroll",
        &["--user", TARGET_USER, "--non-interactive", "--json"],
    );
    assert_eq!(exit_code(&output), 0);
    let warning = stderr(&output);
    assert_one_line_error_text(&warning);
    assert!(
        warning.starts_with("twofactor: warning: notify_command failed for event enrolled"),
        "{warning}"
    );
    assert!(sandbox.enrollment_path().exists());
}

#[test]
fn the_notify_command_inherits_no_descriptor_of_the_tool() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let notes = sandbox.path("notes");
    fs::create_dir(&notes).unwrap();
    let user = target_user();
    std::os::unix::fs::chown(&notes, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    let listing = notes.join("fds");
    let script = sandbox.path("list-fds.sh");
    // A subshell lists the script's descriptors ($$), so the shell does not
    // move its standard output aside for the redirection.
    fs::write(
        &script,
        format!("#!/bin/sh\n(ls -l /proc/$$/fd) > {}\n", listing.display()),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        &sandbox.config,
        format!(
            "enrollment_path = \"{dir}/%u/enrollment.json\"\nstate_dir = \"{dir}/state\"\n\
             notify_command = [\"{script}\"]\n",
            dir = sandbox.dir.path().display(),
            script = script.display()
        ),
    )
    .unwrap();
    // A file of root's that the tool inherits as descriptor 77, as from a
    // careless parent; the command runs as `nobody` and must not get it.
    let secret_path = sandbox.path("root-secret");
    fs::write(&secret_path, "root's secret\n").unwrap();
    fs::set_permissions(&secret_path, fs::Permissions::from_mode(0o600)).unwrap();
    let secret = fs::File::open(&secret_path).unwrap();
    let raw = secret.as_raw_fd();
    let mut command = sandbox.command(
        "enroll",
        &["--user", TARGET_USER, "--non-interactive", "--json"],
    );
    // SAFETY: the closure runs between fork and exec; it makes one
    // async-signal-safe system call (dup2) on integers and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::dup2(raw, 77)
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let output = command.output().unwrap();
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(stderr(&output), "", "the notify command failed");

    let text = fs::read_to_string(&listing).unwrap();
    let seen: BTreeMap<i32, &str> = text
        .lines()
        .filter_map(|line| {
            let (left, target) = line.split_once(" -> ")?;
            Some((left.rsplit(' ').next()?.parse().ok()?, target))
        })
        .collect();
    let secret_text = secret_path.to_str().unwrap();
    assert!(!seen.contains_key(&77), "{seen:?}");
    assert!(!seen.values().any(|t| *t == secret_text), "{seen:?}");
    for fd in 0..=2 {
        assert_eq!(seen.get(&fd), Some(&"/dev/null"), "{seen:?}");
    }
    // Besides its standard streams, only the shell's own descriptor of the
    // script.
    let others: Vec<_> = seen.iter().filter(|(fd, _)| **fd > 2).collect();
    assert!(
        others.len() <= 1 && others.iter().all(|(_, t)| **t == script.to_str().unwrap()),
        "{seen:?}"
    );
}

/// Runs `twofactor ARGS` in a private mount namespace whose `/dev/log` is a
/// socket this test reads, and returns the datagrams it received.
fn syslog_lines_of(sandbox: &Sandbox, args: &[&str]) -> (std::process::Output, Vec<String>) {
    use std::os::unix::net::UnixDatagram;
    let socket_path = sandbox.path("log.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    fs::set_permissions(&socket_path, fs::Permissions::from_mode(0o666)).unwrap();
    socket.set_nonblocking(true).unwrap();
    let host_dev = sandbox.path("host-dev");
    fs::create_dir(&host_dev).unwrap();
    // /dev is replaced by a tmpfs holding the few devices the tool uses and
    // the socket; the host's /dev is untouched.
    let script = r#"
        set -e
        mount --make-rprivate /
        mount --bind /dev "$HOSTDEV"
        mount -t tmpfs -o mode=0755 tmpfs /dev
        for name in null zero urandom random tty; do
            touch "/dev/$name"; mount --bind "$HOSTDEV/$name" "/dev/$name"
        done
        touch /dev/log; mount --bind "$SOCKET" /dev/log
        umount -l "$HOSTDEV"
        exec "$@"
    "#;
    let output = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c", script, "sh", BIN])
        .args(args)
        .env("HOSTDEV", &host_dev)
        .env("SOCKET", &socket_path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("unshare (util-linux)");
    let mut lines = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(read) = socket.recv(&mut buffer) {
        lines.push(String::from_utf8_lossy(&buffer[..read]).into_owned());
    }
    fs::remove_file(&socket_path).unwrap();
    fs::remove_dir(&host_dev).unwrap();
    (output, lines)
}

#[test]
fn changes_are_logged_to_syslog_without_secrets() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let config = sandbox.config.to_str().unwrap().to_string();
    let (output, lines) = syslog_lines_of(
        &sandbox,
        &[
            "enroll",
            "--config",
            &config,
            "--user",
            TARGET_USER,
            "--non-interactive",
            "--json",
        ],
    );
    let report = json_of(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    // <37>: facility auth (4 * 8) + severity notice (5).
    assert!(line.starts_with("<37>"), "{line}");
    assert!(line.contains(" twofactor["), "{line}");
    assert!(
        line.ends_with(
            "enrolled: user=nobody by=root methods=totp,backup-codes backup_codes=10 \
             replaced=no confirmed=no"
        ),
        "{line}"
    );
    let secret = uri_parameter(report["otpauth_uri"].as_str().unwrap(), "secret");
    assert!(!line.contains(secret), "{line}");
    for code in backup_codes_of(&report) {
        assert!(!line.contains(&code), "{line}");
    }

    let (output, lines) = syslog_lines_of(
        &sandbox,
        &[
            "backup-codes",
            "--config",
            &config,
            "--user",
            TARGET_USER,
            "--yes",
            "--json",
        ],
    );
    let report = json_of(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].ends_with("backup-codes-regenerated: user=nobody by=root backup_codes=10"),
        "{lines:?}"
    );
    for code in backup_codes_of(&report) {
        assert!(!lines[0].contains(&code), "{lines:?}");
    }

    let (output, lines) = syslog_lines_of(
        &sandbox,
        &[
            "disable",
            "all",
            "--config",
            &config,
            "--user",
            TARGET_USER,
            "--yes",
        ],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].ends_with("disabled: user=nobody by=root what=totp,backup-codes removed=yes"),
        "{lines:?}"
    );
}

#[test]
fn a_relative_config_path_works() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let output = std::process::Command::new(BIN)
        .args([
            "status",
            "--json",
            "--user",
            TARGET_USER,
            "--config",
            "pam_twofactor.toml",
        ])
        .current_dir(sandbox.dir.path())
        .output()
        .unwrap();
    let report = json_of(&output);
    assert_eq!(
        report["enrollment"]["path"],
        sandbox.enrollment_path().to_str().unwrap()
    );
}
