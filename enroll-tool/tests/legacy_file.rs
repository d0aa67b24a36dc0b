//! Enrollments written by older versions as `enrollment.toml` beside the
//! configured `enrollment.json`: read while `enrollment.json` does not exist,
//! ignored once it does, and removed by the next change. Must run as root:
//! the commands act for `nobody`.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Output;

use common::*;
use serde_json::{json, Value};
use twofactor_core::enrollment::Enrollment;

fn status_json(sandbox: &Sandbox) -> Value {
    let report = json_of(&sandbox.run("status", &["--user", TARGET_USER, "--json"]));
    validate(&report, &schema("status.schema.json"));
    report
}

fn status_text(sandbox: &Sandbox) -> String {
    let output = sandbox.run("status", &["--user", TARGET_USER]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    stdout(&output)
}

fn verify(sandbox: &Sandbox, code: &str) -> Output {
    run_with_stdin(
        sandbox.command("verify", &["--user", TARGET_USER]),
        &format!("{code}\n"),
    )
}

/// Enroll, then turn the enrollment into one an older version wrote: only
/// `enrollment.toml`. Returns the enroll report and the enrollment.
fn enroll_as_older_version(sandbox: &Sandbox) -> (Value, Enrollment) {
    let report = sandbox.enroll_json(&[]);
    let enrollment = read_enrollment(&sandbox.enrollment_path());
    fs::remove_file(sandbox.enrollment_path()).unwrap();
    sandbox.write_legacy(&enrollment);
    (report, enrollment)
}

fn legacy_text(sandbox: &Sandbox) -> String {
    sandbox.legacy_path().to_str().unwrap().to_string()
}

#[test]
fn a_legacy_enrollment_is_used_until_the_next_change_moves_it() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let (enrolled, old) = enroll_as_older_version(&sandbox);
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    let legacy = legacy_text(&sandbox);

    let report = status_json(&sandbox);
    assert_eq!(report["enrollment"]["status"], "enrolled");
    assert_eq!(report["enrollment"]["path"], legacy.as_str());
    assert_eq!(
        report["enrollment"]["legacy_file"],
        json!({ "path": legacy, "in_use": true })
    );
    assert_eq!(report["methods"]["backup_codes"]["total"], 10);
    let text = status_text(&sandbox);
    assert!(text.contains(&legacy), "{text}");
    assert!(
        text.contains("the older TOML file") && text.contains("moves it to enrollment.json"),
        "{text}"
    );

    let output = verify(&sandbox, &oathtool_code(uri, now()));
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).starts_with("valid: a correct TOTP code"));
    let output = verify(&sandbox, &backup_codes_of(&enrolled)[3]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));

    // Doctor says where the enrollment is (the rest of its findings are
    // about this sandbox's incomplete PAM setup).
    let pam_dir = sandbox.path("pam.d");
    fs::create_dir(&pam_dir).unwrap();
    fs::write(pam_dir.join("login"), "auth required pam_twofactor.so\n").unwrap();
    let output = sandbox.run(
        "doctor",
        &[
            "--user",
            TARGET_USER,
            "--json",
            "--pam-dir",
            pam_dir.to_str().unwrap(),
            "--module-dir",
            pam_dir.to_str().unwrap(),
        ],
    );
    let doctor: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("JSON from doctor: {output:?}"));
    let user_findings: Vec<&str> = doctor["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "user")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        user_findings.iter().any(|m| m.contains("older TOML file")
            && m.contains(&legacy)
            && m.contains(sandbox.enrollment_path().to_str().unwrap())),
        "{user_findings:?}"
    );
    assert!(
        user_findings
            .iter()
            .any(|m| m.contains("nobody is enrolled")),
        "{user_findings:?}"
    );

    // The next change writes enrollment.json and removes the legacy file.
    let report = json_of(&sandbox.run("backup-codes", &["--user", TARGET_USER, "--yes", "--json"]));
    assert_eq!(
        report["enrollment_path"],
        sandbox.enrollment_path().to_str().unwrap()
    );
    assert!(!sandbox.legacy_path().exists(), "the legacy file is left");
    let new = read_enrollment(&sandbox.enrollment_path());
    assert_eq!(new.totp, old.totp, "the TOTP secret is kept");
    assert_ne!(new.backup_codes, old.backup_codes);
    let meta = fs::metadata(sandbox.enrollment_path()).unwrap();
    assert_eq!(meta.uid(), target_user().uid.as_raw());
    assert_eq!(meta.mode() & 0o7777, 0o600);

    let report = status_json(&sandbox);
    assert_eq!(
        report["enrollment"]["path"],
        sandbox.enrollment_path().to_str().unwrap()
    );
    assert!(report["enrollment"]["legacy_file"].is_null());
    assert!(!status_text(&sandbox).contains("TOML"));
    let output = verify(&sandbox, &oathtool_code(uri, now()));
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
}

#[test]
fn enroll_does_not_replace_a_legacy_enrollment_without_force() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let (_, old) = enroll_as_older_version(&sandbox);
    let before = fs::read(sandbox.legacy_path()).unwrap();

    let refused = sandbox.run(
        "enroll",
        &["--user", TARGET_USER, "--non-interactive", "--json"],
    );
    assert_eq!(exit_code(&refused), 1);
    let message = assert_one_line_error(&refused);
    assert!(
        message.contains(&legacy_text(&sandbox)) && message.contains("--force"),
        "{message}"
    );
    assert_eq!(fs::read(sandbox.legacy_path()).unwrap(), before);
    assert!(!sandbox.enrollment_path().exists());

    let replaced = sandbox.enroll_json(&["--force"]);
    assert_eq!(replaced["replaced"], true);
    assert!(!sandbox.legacy_path().exists());
    assert_ne!(read_enrollment(&sandbox.enrollment_path()).totp, old.totp);
}

#[test]
fn a_leftover_legacy_file_is_ignored_and_disable_all_removes_both() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let (old_report, old) = enroll_as_older_version(&sandbox);
    let new_report = sandbox.enroll_json(&["--force"]);
    // Left behind, say, by an older version run again.
    sandbox.write_legacy(&old);
    let legacy = legacy_text(&sandbox);

    let report = status_json(&sandbox);
    assert_eq!(
        report["enrollment"]["path"],
        sandbox.enrollment_path().to_str().unwrap()
    );
    assert_eq!(
        report["enrollment"]["legacy_file"],
        json!({ "path": legacy, "in_use": false })
    );
    let text = status_text(&sandbox);
    assert!(
        text.contains(&format!("{legacy} is left over")) && text.contains("ignored"),
        "{text}"
    );

    // enrollment.json wins: the leftover's codes are not accepted.
    let old_uri = old_report["otpauth_uri"].as_str().unwrap();
    let new_uri = new_report["otpauth_uri"].as_str().unwrap();
    let output = verify(&sandbox, &oathtool_code(new_uri, now()));
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        exit_code(&verify(&sandbox, &oathtool_code(old_uri, now()))),
        1
    );
    assert_eq!(
        exit_code(&verify(&sandbox, &backup_codes_of(&old_report)[0])),
        1
    );

    let output = sandbox.run("disable", &["all", "--user", TARGET_USER, "--yes"]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).contains(&legacy), "{}", stdout(&output));
    assert!(!sandbox.enrollment_path().exists());
    assert!(!sandbox.legacy_path().exists());
    let report = status_json(&sandbox);
    assert_eq!(report["enrollment"]["status"], "not-enrolled");
    assert!(report["enrollment"]["legacy_file"].is_null());
}

#[test]
fn disable_all_removes_a_legacy_enrollment() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    enroll_as_older_version(&sandbox);
    let report = json_of(&sandbox.run(
        "disable",
        &["all", "--user", TARGET_USER, "--yes", "--json"],
    ));
    assert_eq!(report["removed"], true);
    assert_eq!(report["enrollment_path"], legacy_text(&sandbox).as_str());
    assert!(!sandbox.legacy_path().exists());
    assert!(!sandbox.enrollment_path().exists());
}

#[test]
fn disabling_one_method_moves_a_legacy_enrollment() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let (_, old) = enroll_as_older_version(&sandbox);
    let report = json_of(&sandbox.run(
        "disable",
        &["totp", "--user", TARGET_USER, "--yes", "--json"],
    ));
    assert_eq!(report["remaining"], json!(["backup-codes"]));
    assert_eq!(
        report["enrollment_path"],
        sandbox.enrollment_path().to_str().unwrap()
    );
    assert!(!sandbox.legacy_path().exists());
    let left = read_enrollment(&sandbox.enrollment_path());
    assert!(left.totp.is_none());
    assert_eq!(left.backup_codes, old.backup_codes);
}

#[test]
fn an_enrollment_path_ending_in_toml_is_written_as_toml() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.toml");
    let path = sandbox.path("nobody/enrollment.toml");
    let enrolled = sandbox.enroll_json(&[]);
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.starts_with('{'), "written as JSON");
    assert!(text.contains("[totp]"), "not TOML");
    let enrollment = read_enrollment(&path);
    assert_eq!(
        enrollment.totp,
        Some(totp_of_uri(enrolled["otpauth_uri"].as_str().unwrap()))
    );

    json_of(&sandbox.run("backup-codes", &["--user", TARGET_USER, "--yes", "--json"]));
    assert!(!fs::read_to_string(&path).unwrap().starts_with('{'));
    assert_eq!(read_enrollment(&path).totp, enrollment.totp);
    assert_eq!(entries(&sandbox.path("nobody")), ["enrollment.toml"]);
    let report = status_json(&sandbox);
    assert_eq!(report["enrollment"]["path"], path.to_str().unwrap());
    assert!(report["enrollment"]["legacy_file"].is_null());
}

#[test]
fn a_legacy_file_that_cannot_be_removed_is_a_warning() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    sandbox.enroll_json(&[]);
    // A directory stands in for a leftover the user cannot remove.
    let legacy = sandbox.legacy_path();
    fs::create_dir(&legacy).unwrap();
    let user = target_user();
    std::os::unix::fs::chown(&legacy, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    fs::set_permissions(&legacy, fs::Permissions::from_mode(0o700)).unwrap();

    let output = sandbox.run("backup-codes", &["--user", TARGET_USER, "--yes", "--json"]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let codes = backup_codes_of(&report);
    assert_eq!(codes.len(), 10, "the new codes are shown");
    let warning = stderr(&output);
    assert_one_line_error_text(&warning);
    assert!(
        warning.starts_with("twofactor: warning: cannot remove")
            && warning.contains(&legacy_text(&sandbox))
            && warning.contains("which is the one used")
            && warning.contains("delete it"),
        "{warning}"
    );
    let enrollment = read_enrollment(&sandbox.enrollment_path());
    assert!(matches!(
        twofactor_core::backup::verify(&codes[0], &enrollment.backup_codes, |_| false),
        twofactor_core::backup::BackupCheck::Accepted { .. }
    ));
    let status = status_json(&sandbox);
    assert_eq!(status["enrollment"]["status"], "enrolled");
    assert_eq!(status["enrollment"]["legacy_file"]["in_use"], false);
}
