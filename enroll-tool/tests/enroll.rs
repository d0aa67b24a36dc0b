//! `twofactor enroll` end to end: the built binary against a temporary
//! configuration whose enrollment path lies in a temporary directory.
//!
//! These tests must run as root: they enroll the system user `nobody`,
//! which exercises the privilege drop for real.

mod common;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use common::*;
use twofactor_core::backup::{self, BackupCheck};
use twofactor_core::enrollment::decode_base32_secret;

trait Enroll {
    fn enroll(&self, extra: &[&str]) -> Output;
}

impl Enroll for Sandbox {
    fn enroll(&self, extra: &[&str]) -> Output {
        self.run("enroll", extra)
    }
}

fn uri_secret(uri: &str) -> &str {
    uri_parameter(uri, "secret")
}

#[test]
fn root_enrolls_another_user_with_working_codes() {
    require_root();
    let sandbox = Sandbox::new(
        "enrollment_path = \"{dir}/%u/.config/twofactor/enrollment.json\"\n\
         totp_algorithm = \"SHA256\"\ntotp_digits = 8\ntotp_period = 60\n",
    );
    let user = target_user();
    let path = sandbox.path("nobody/.config/twofactor/enrollment.json");

    let report = json_of(&sandbox.enroll(&["--user", TARGET_USER, "--non-interactive", "--json"]));

    let uri = report["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    for parameter in ["algorithm=SHA256", "digits=8", "period=60"] {
        assert!(uri.contains(parameter), "{uri} lacks {parameter}");
    }
    assert_eq!(report["user"], TARGET_USER);
    assert_eq!(report["enrollment_path"], path.to_str().unwrap());
    assert_eq!(report["secret"], uri_secret(uri));
    let codes = backup_codes_of(&report);
    assert_eq!(codes.len(), 10);
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 10, "{codes:?}");

    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.uid(), user.uid.as_raw());
    assert_eq!(meta.mode() & 0o7777, 0o600);
    for created in ["nobody/.config", "nobody/.config/twofactor"] {
        let meta = fs::metadata(sandbox.path(created)).unwrap();
        assert_eq!(meta.uid(), user.uid.as_raw(), "{created}");
        assert_eq!(meta.mode() & 0o7777, 0o700, "{created}");
    }

    let enrollment = read_enrollment(&path);
    let totp = enrollment.totp.as_ref().expect("TOTP enrolled");
    assert_eq!(decode_base32_secret(uri_secret(uri)).unwrap(), totp.secret);
    assert_eq!((totp.digits, totp.period), (8, 60));
    let mut accepted_ids = HashSet::new();
    for code in &codes {
        match backup::verify(code, &enrollment.backup_codes, |_| false) {
            BackupCheck::Accepted { id } => assert!(accepted_ids.insert(id)),
            other => panic!("{code}: {other:?}"),
        }
    }

    let before = fs::read(&path).unwrap();
    let refused = sandbox.enroll(&["--user", TARGET_USER, "--non-interactive", "--json"]);
    assert_eq!(exit_code(&refused), 1);
    let message = assert_one_line_error(&refused);
    assert!(message.contains("--force"), "{message}");
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "refused run changed the file"
    );

    let replaced = json_of(&sandbox.enroll(&[
        "--user",
        TARGET_USER,
        "--non-interactive",
        "--json",
        "--force",
    ]));
    assert_ne!(fs::read(&path).unwrap(), before);
    let new_enrollment = read_enrollment(&path);
    for code in backup_codes_of(&replaced) {
        assert!(matches!(
            backup::verify(&code, &new_enrollment.backup_codes, |_| false),
            BackupCheck::Accepted { .. }
        ));
    }
    assert_eq!(
        backup::verify(&codes[0], &new_enrollment.backup_codes, |_| false),
        BackupCheck::Rejected,
        "old codes must stop working"
    );
}

#[test]
fn text_output_non_interactive_with_a_scannable_qr_code() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let output = sandbox.enroll(&["--user", TARGET_USER, "--non-interactive"]);
    assert_eq!(exit_code(&output), 0, "stderr: {}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("Scan this QR code"), "{text}");
    assert_eq!(decode_terminal_drawing(&text), uri_on_screen(&text));
    assert!(text.contains("otpauth://totp/"), "{text}");
    let code_lines = text
        .lines()
        .filter(|line| backup::normalize(line.trim()).is_some())
        .count();
    assert_eq!(code_lines, 10, "{text}");
    let enrollment = read_enrollment(&sandbox.path("nobody/enrollment.json"));
    assert_eq!(enrollment.backup_codes.len(), 10);
}

#[test]
fn a_symlink_at_the_enrollment_path_is_never_followed() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let victim = sandbox.path("root-owned");
    fs::write(&victim, "untouched\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    let path = sandbox.path("nobody/enrollment.json");
    symlink(&victim, &path).unwrap();

    let refused = sandbox.enroll(&["--user", TARGET_USER, "--non-interactive", "--json"]);
    assert_eq!(exit_code(&refused), 1);
    assert_one_line_error(&refused);
    assert!(fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());

    let forced = sandbox.enroll(&[
        "--user",
        TARGET_USER,
        "--non-interactive",
        "--json",
        "--force",
    ]);
    json_of(&forced);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched\n");
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.is_file(), "the symlink itself was replaced");
    assert_eq!(meta.uid(), target_user().uid.as_raw());
}

#[test]
fn root_writes_nothing_where_the_user_could_not() {
    require_root();
    let sandbox = Sandbox::new("enrollment_path = \"{dir}/shared/%u.toml\"\n");
    let shared = sandbox.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();

    let output = sandbox.enroll(&["--user", TARGET_USER, "--non-interactive", "--json"]);
    assert_eq!(exit_code(&output), 2);
    let message = assert_one_line_error(&output);
    assert!(message.contains("Permission denied"), "{message}");
    assert_eq!(fs::read_dir(&shared).unwrap().count(), 0);
}

#[test]
fn a_directory_others_can_write_is_refused() {
    require_root();
    let sandbox = Sandbox::with_user_path("open/enrollment.json");
    let open = sandbox.path("nobody/open");
    fs::create_dir(&open).unwrap();
    let user = target_user();
    std::os::unix::fs::chown(&open, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();

    let output = sandbox.enroll(&["--user", TARGET_USER, "--non-interactive", "--json"]);
    // A directory that fails the safety check is in the way, like any file
    // that does (the exit-status rule of twofactor(1)).
    assert_eq!(exit_code(&output), 2);
    assert!(assert_one_line_error(&output).contains("not a safe place"));
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
}

#[test]
fn a_user_enrolls_themselves_but_nobody_else() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let user = target_user();
    let as_user = |extra: &[&str]| {
        sandbox
            .command("enroll", extra)
            .uid(user.uid.as_raw())
            .gid(user.gid.as_raw())
            .output()
            .unwrap()
    };

    let refused = as_user(&["--user", "root", "--non-interactive", "--json"]);
    assert_eq!(exit_code(&refused), 1);
    let message = assert_one_line_error(&refused);
    assert!(message.contains("only root"), "{message}");

    let report = json_of(&as_user(&["--non-interactive", "--json"]));
    assert_eq!(report["user"], TARGET_USER);
    let meta = fs::metadata(sandbox.path("nobody/enrollment.json")).unwrap();
    assert_eq!(meta.uid(), user.uid.as_raw());
}

#[test]
fn missing_explicit_config_is_a_system_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_twofactor"))
        .args(["enroll", "--non-interactive", "--json", "--config"])
        .arg(dir.path().join("absent.toml"))
        .output()
        .unwrap();
    assert_eq!(exit_code(&output), 2);
    let message = assert_one_line_error(&output);
    assert!(message.contains("absent.toml does not exist"), "{message}");
}

#[test]
fn unknown_user_is_refused() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let output = sandbox.enroll(&["--user", "no-such-user-x7q", "--non-interactive", "--json"]);
    assert_eq!(exit_code(&output), 1);
    let message = assert_one_line_error(&output);
    assert!(message.contains("unknown user"), "{message}");
}

#[test]
fn usage_errors_and_help() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_twofactor"))
            .args(args)
            .output()
            .unwrap()
    };
    for bad in [
        &["enroll", "--bogus"][..],
        &[],
        &["enroll", "--user"],
        &["enroll", "--json"],
        &["enroll", "--non-interactive", "--qr-file", "/tmp/qr.jpg"],
        &["enroll", "--qr", "sepia"],
        &["disable"],
        &["disable", "everything"],
        &["reset-lockout"],
        &["frobnicate"],
    ] {
        let output = run(bad);
        assert_eq!(exit_code(&output), 1, "{bad:?}");
        let message = assert_one_line_error(&output);
        assert!(message.contains("twofactor --help"), "{message}");
    }
    let help = run(&["enroll", "--help"]);
    assert_eq!(exit_code(&help), 0);
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.contains("Examples:") && text.contains("--non-interactive"),
        "{text}"
    );
    for command in [
        "enroll",
        "status",
        "verify",
        "backup-codes",
        "disable",
        "reset-lockout",
    ] {
        let help = run(&[command, "--help"]);
        assert_eq!(exit_code(&help), 0, "{command}");
        let text = String::from_utf8(help.stdout).unwrap();
        assert!(text.contains("Examples:"), "{command}: {text}");
        assert!(
            text.contains("Exit status (the rule is in twofactor(1))"),
            "{command}: {text}"
        );
    }
    let top = String::from_utf8(run(&["--help"]).stdout).unwrap();
    assert!(
        top.contains("reset-lockout")
            && top.contains("Examples:")
            && top.contains("Exit status, the same rule for every command"),
        "{top}"
    );
    assert!(!top.contains("generate-man"), "hidden command shown: {top}");
}

#[test]
fn interactive_enrollment_without_a_terminal_is_refused() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    // setsid: no controlling terminal, whatever the test runner has.
    let output = Command::new("setsid")
        .args(["--wait", BIN, "enroll", "--user", TARGET_USER, "--config"])
        .arg(&sandbox.config)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(exit_code(&output), 1);
    let message = assert_one_line_error(&output);
    assert!(
        message.contains("no terminal") && message.contains("--non-interactive"),
        "{message}"
    );
    assert!(entries(&sandbox.path("nobody")).is_empty());
}
