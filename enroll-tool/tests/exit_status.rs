//! One exit-status rule for every command (twofactor(1), EXIT STATUS): the
//! same cause gives the same code whichever command meets it, and files of
//! other modules are read with root's rights only when root names them.
//! Must run as root: the commands act for `nobody`.

mod common;

use std::fs;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;
use twofactor_soft_authenticator::{Alg, Behaviour, SoftAuthenticator};

const RP: &str = "pam://exit-status-test";
/// A google-authenticator file: TOTP, two scratch codes.
const GA_FILE: &str = "YQGZRSZWZ37QUXVQIOKA3HNRWI\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 3\n\
    \" DISALLOW_REUSE\n\" TOTP_AUTH\n19317516\n21858389\n";
/// A counter-based one, which is understood and not supported.
const GA_HOTP_FILE: &str = "YQGZRSZWZ37QUXVQIOKA3HNRWI\n\" HOTP_COUNTER 1\n19317516\n";

fn new_sandbox() -> Sandbox {
    Sandbox::new(&format!(
        "enrollment_path = \"{{dir}}/%u/enrollment.json\"\nfido2_rp_id = \"{RP}\"\n"
    ))
}

/// `twofactor COMMAND... --config CONFIG ARGS...`, as root or as `nobody`.
fn twofactor(sandbox: &Sandbox, command: &[&str], args: &[String], as_user: bool) -> Output {
    let mut run = Command::new(BIN);
    run.args(command)
        .arg("--config")
        .arg(&sandbox.config)
        .args(args)
        .stdin(Stdio::null());
    if as_user {
        let user = target_user();
        run.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    run.output().unwrap()
}

/// `contents` at `path`, owned by `uid`, with `mode`.
fn file(path: &Path, contents: &str, uid: u32, mode: u32) -> String {
    fs::write(path, contents).unwrap();
    chown(path, Some(uid), Some(uid)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_string()
}

fn nobody_uid() -> u32 {
    target_user().uid.as_raw()
}

/// A u2f_keys line for `nobody` with one real ES256 credential.
fn u2f_keys() -> String {
    let mut device = SoftAuthenticator::new(Behaviour::random());
    let es = device
        .make_credential(RP, &[0; 32], &[Alg::Es256], false, None)
        .unwrap();
    let b64 = |bytes: &[u8]| data_encoding::BASE64.encode(bytes);
    format!(
        "{TARGET_USER}:{},{},es256,+presence\n",
        b64(&es.credential_id),
        b64(&es.public_key[1..]),
    )
}

struct Case {
    cause: &'static str,
    command: &'static [&'static str],
    /// Prepares the sandbox; returns the arguments after --config.
    setup: fn(&Sandbox) -> Vec<String>,
    as_user: bool,
    code: i32,
    message: &'static str,
}

fn user_args(extra: &[&str]) -> Vec<String> {
    let mut args = vec!["--user".to_string(), TARGET_USER.to_string()];
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// An enrollment for `nobody` whose file then gets `mode`.
fn enrolled_with_mode(sandbox: &Sandbox, mode: u32) {
    sandbox.enroll_json(&[]);
    fs::set_permissions(sandbox.enrollment_path(), fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_same_cause_gives_the_same_exit_code_in_every_command() {
    require_root();
    let cases = [
        // 1: refused as asked.
        Case {
            cause: "bad usage",
            command: &["status"],
            setup: |_| vec!["--no-such-option".into()],
            as_user: false,
            code: 1,
            message: "unexpected argument",
        },
        Case {
            cause: "unknown user",
            command: &["backup-codes"],
            setup: |_| vec!["--user".into(), "tf-no-such-user".into(), "--yes".into()],
            as_user: false,
            code: 1,
            message: "unknown user",
        },
        Case {
            cause: "not allowed",
            command: &["status"],
            setup: |_| vec!["--user".into(), "root".into()],
            as_user: true,
            code: 1,
            message: "only root may act for another user",
        },
        Case {
            cause: "not enrolled",
            command: &["backup-codes"],
            setup: |_| user_args(&["--yes"]),
            as_user: false,
            code: 1,
            message: "has no enrollment",
        },
        Case {
            cause: "not enrolled",
            command: &["fido2", "remove"],
            setup: |_| user_args(&["--yes", "key-1"]),
            as_user: false,
            code: 1,
            message: "has no enrollment",
        },
        Case {
            cause: "already enrolled",
            command: &["enroll"],
            setup: |s| {
                s.enroll_json(&[]);
                user_args(&["--non-interactive"])
            },
            as_user: false,
            code: 1,
            message: "use --force",
        },
        Case {
            cause: "a named file that does not exist",
            command: &["import", "google-authenticator"],
            setup: |s| user_args(&[s.path("missing").to_str().unwrap()]),
            as_user: false,
            code: 1,
            message: "does not exist",
        },
        Case {
            cause: "a named file that does not exist",
            command: &["import", "pam-u2f"],
            setup: |s| user_args(&[s.path("missing").to_str().unwrap()]),
            as_user: false,
            code: 1,
            message: "does not exist",
        },
        Case {
            cause: "content understood but not supported",
            command: &["import", "google-authenticator"],
            setup: |s| {
                let path = file(&s.path("nobody/ga"), GA_HOTP_FILE, nobody_uid(), 0o600);
                user_args(&[&path])
            },
            as_user: false,
            code: 1,
            message: "counter-based (HOTP)",
        },
        Case {
            cause: "content understood but not supported",
            command: &["import", "pam-u2f"],
            setup: |s| {
                let path = file(&s.path("u2f_keys"), "root:AAAA,BBBB\n", 0, 0o644);
                user_args(&[&path])
            },
            as_user: false,
            code: 1,
            message: "holds no usable key",
        },
        // 2: a file or the system is in the way.
        Case {
            cause: "unsafe permissions",
            command: &["import", "google-authenticator"],
            setup: |s| {
                let path = file(&s.path("nobody/ga"), GA_FILE, nobody_uid(), 0o666);
                user_args(&[&path])
            },
            as_user: false,
            code: 2,
            message: "unsafe permissions 0666",
        },
        Case {
            cause: "unsafe permissions",
            command: &["import", "pam-u2f"],
            setup: |s| {
                let path = file(&s.path("nobody/u2f_keys"), &u2f_keys(), nobody_uid(), 0o666);
                user_args(&[&path])
            },
            as_user: false,
            code: 2,
            message: "unsafe permissions 0666",
        },
        Case {
            cause: "unsafe permissions",
            command: &["backup-codes"],
            setup: |s| {
                enrolled_with_mode(s, 0o666);
                user_args(&["--yes"])
            },
            as_user: false,
            code: 2,
            message: "unsafe permissions 0666",
        },
        Case {
            cause: "unsafe permissions",
            command: &["disable", "totp"],
            setup: |s| {
                enrolled_with_mode(s, 0o666);
                user_args(&["--yes"])
            },
            as_user: false,
            code: 2,
            message: "unsafe permissions 0666",
        },
        Case {
            cause: "unsafe permissions",
            command: &["fido2", "list"],
            setup: |s| {
                enrolled_with_mode(s, 0o666);
                user_args(&[])
            },
            as_user: false,
            code: 2,
            message: "unsafe permissions 0666",
        },
        Case {
            cause: "a directory others can write to",
            command: &["enroll"],
            setup: |s| {
                fs::set_permissions(s.path("nobody"), fs::Permissions::from_mode(0o777)).unwrap();
                user_args(&["--non-interactive"])
            },
            as_user: false,
            code: 2,
            message: "not a safe place for an enrollment",
        },
        Case {
            cause: "a directory others can write to",
            command: &["import", "google-authenticator"],
            setup: |s| {
                let path = file(&s.path("nobody/ga"), GA_FILE, nobody_uid(), 0o600);
                fs::set_permissions(s.path("nobody"), fs::Permissions::from_mode(0o777)).unwrap();
                user_args(&[&path])
            },
            as_user: false,
            code: 2,
            message: "writable by group or others",
        },
        Case {
            cause: "does not parse",
            command: &["backup-codes"],
            setup: |s| {
                s.enroll_json(&[]);
                fs::write(s.enrollment_path(), "{ not json").unwrap();
                user_args(&["--yes"])
            },
            as_user: false,
            code: 2,
            message: "is invalid",
        },
        Case {
            cause: "does not parse",
            command: &["import", "google-authenticator"],
            setup: |s| {
                let path = file(&s.path("nobody/ga"), "not a secret\n", nobody_uid(), 0o600);
                user_args(&[&path])
            },
            as_user: false,
            code: 2,
            message: "not a google-authenticator file",
        },
        Case {
            cause: "unreadable",
            command: &["import", "pam-u2f"],
            setup: |s| {
                let path = file(&s.path("u2f_keys"), &u2f_keys(), 0, 0o600);
                vec![path]
            },
            as_user: true,
            code: 2,
            message: "Permission denied",
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let sandbox = new_sandbox();
        let args = (case.setup)(&sandbox);
        let output = twofactor(&sandbox, case.command, &args, case.as_user);
        let error = stderr(&output);
        if output.status.code() != Some(case.code) || !error.contains(case.message) {
            failures.push(format!(
                "{} ({}): exit {:?}, expected {} with {:?}: {error}",
                case.command.join(" "),
                case.cause,
                output.status.code(),
                case.code,
                case.message
            ));
        } else {
            assert_one_line_error(&output);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn both_imports_give_the_same_code_for_unsafe_permissions() {
    require_root();
    let sandbox = new_sandbox();
    let ga = file(&sandbox.path("nobody/ga"), GA_FILE, nobody_uid(), 0o644);
    let u2f = file(
        &sandbox.path("nobody/u2f"),
        &u2f_keys(),
        nobody_uid(),
        0o666,
    );
    let ga = twofactor(
        &sandbox,
        &["import", "google-authenticator"],
        &user_args(&[&ga]),
        false,
    );
    let u2f = twofactor(&sandbox, &["import", "pam-u2f"], &user_args(&[&u2f]), false);
    assert_eq!(exit_code(&ga), 2, "{ga:?}");
    assert_eq!(exit_code(&u2f), 2, "{u2f:?}");
    assert!(stderr(&ga).contains("unsafe permissions"), "{ga:?}");
    assert!(stderr(&u2f).contains("unsafe permissions"), "{u2f:?}");
}

#[test]
fn a_root_only_file_is_read_when_root_names_it_not_when_a_user_does() {
    require_root();
    // pam_u2f's central mapping file, kept root's and 0600.
    let sandbox = new_sandbox();
    let mappings = file(&sandbox.path("u2f_mappings"), &u2f_keys(), 0, 0o600);
    let refused = twofactor(
        &sandbox,
        &["import", "pam-u2f"],
        std::slice::from_ref(&mappings),
        true,
    );
    assert_eq!(exit_code(&refused), 2, "{refused:?}");
    assert!(assert_one_line_error(&refused).contains("Permission denied"));
    assert!(!sandbox.enrollment_path().exists());
    let imported = twofactor(
        &sandbox,
        &["import", "pam-u2f"],
        &user_args(&["--json", &mappings]),
        false,
    );
    let report = json_of(&imported);
    assert_eq!(report["imported"].as_array().unwrap().len(), 1, "{report}");
    let meta = fs::metadata(sandbox.enrollment_path()).unwrap();
    assert_eq!(meta.uid(), nobody_uid(), "written as the user");
    assert_eq!(read_enrollment(&sandbox.enrollment_path()).fido2.len(), 1);

    // A google-authenticator secret kept by root outside the home.
    let sandbox = new_sandbox();
    fs::create_dir(sandbox.path("ga")).unwrap();
    let secret = file(&sandbox.path("ga/nobody"), GA_FILE, 0, 0o600);
    let command = ["import", "google-authenticator"];
    let refused = twofactor(&sandbox, &command, std::slice::from_ref(&secret), true);
    assert_eq!(exit_code(&refused), 2, "{refused:?}");
    assert!(assert_one_line_error(&refused).contains("Permission denied"));
    assert!(!sandbox.enrollment_path().exists());
    let imported = twofactor(&sandbox, &command, &user_args(&["--json", &secret]), false);
    let report = json_of(&imported);
    assert_eq!(report["legacy_backup_codes"], 2, "{report}");
    assert!(read_enrollment(&sandbox.enrollment_path()).totp.is_some());

    // Root's file in a directory of the user's is not taken as the
    // user's: the user could have put it on root's way there.
    let sandbox = new_sandbox();
    let planted = file(&sandbox.path("nobody/ga"), GA_FILE, 0, 0o600);
    let refused = twofactor(&sandbox, &command, &user_args(&[&planted]), false);
    assert_eq!(exit_code(&refused), 2, "{refused:?}");
    assert!(
        assert_one_line_error(&refused).contains(&format!("expected uid {}", nobody_uid())),
        "{refused:?}"
    );
    assert!(!sandbox.enrollment_path().exists());
}
