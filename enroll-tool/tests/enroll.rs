//! `twofactor enroll` end to end: the built binary against a temporary
//! configuration whose enrollment path lies in a temporary directory.
//!
//! These tests must run as root: they enroll the system user `nobody`,
//! which exercises the privilege drop for real.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::unistd::{geteuid, User};
use serde_json::Value;
use tempfile::TempDir;
use twofactor_core::backup::{self, BackupCheck};
use twofactor_core::enrollment::{decode_base32_secret, Enrollment};

const TARGET_USER: &str = "nobody";

fn target_user() -> User {
    User::from_name(TARGET_USER)
        .expect("user database lookup")
        .expect("the system user `nobody` exists")
}

/// The privilege drop can only be exercised as root, which is how the test
/// suite runs (tests/run-all.sh); elsewhere these tests fail rather than
/// pass without having checked anything.
fn require_root() {
    assert!(
        geteuid().is_root(),
        "this test must run as root (tests/run-all.sh)"
    );
}

/// A temporary directory laid out like a small system: a root-owned config
/// (0644) and a per-user directory owned by `nobody`.
struct Sandbox {
    dir: TempDir,
    config: PathBuf,
}

impl Sandbox {
    /// `config_body` may use `{dir}` for the sandbox's path.
    fn new(config_body: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // tempdir() is 0700; `nobody` must be able to reach its own directory.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let user = target_user();
        let user_dir = dir.path().join(TARGET_USER);
        fs::create_dir(&user_dir).unwrap();
        std::os::unix::fs::chown(&user_dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .unwrap();
        fs::set_permissions(&user_dir, fs::Permissions::from_mode(0o700)).unwrap();
        let config = dir.path().join("pam_twofactor.toml");
        let dir_text = dir.path().to_str().unwrap();
        fs::write(&config, config_body.replace("{dir}", dir_text)).unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
        Sandbox { dir, config }
    }

    fn with_user_path(file_below_user_dir: &str) -> Self {
        Sandbox::new(&format!(
            "enrollment_path = \"{{dir}}/%u/{file_below_user_dir}\"\n"
        ))
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_twofactor"));
        command
            .arg("enroll")
            .arg("--config")
            .arg(&self.config)
            .args(extra);
        command
    }

    fn enroll(&self, extra: &[&str]) -> Output {
        self.command(extra).output().unwrap()
    }
}

fn exit_code(output: &Output) -> i32 {
    output
        .status
        .code()
        .expect("exited, not killed by a signal")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One line, `twofactor: `, nothing that looks like Rust's Debug output.
fn assert_one_line_error(output: &Output) -> String {
    let text = stderr(output);
    assert_eq!(text.lines().count(), 1, "stderr: {text:?}");
    assert!(text.starts_with("twofactor: "), "stderr: {text:?}");
    assert!(
        !text.contains("Os {") && !text.contains("kind:"),
        "stderr: {text:?}"
    );
    assert!(
        output.stdout.is_empty(),
        "stdout on error: {:?}",
        output.stdout
    );
    text
}

fn json_of(output: &Output) -> Value {
    assert_eq!(exit_code(output), 0, "stderr: {}", stderr(output));
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(
        stdout.trim_end().lines().count(),
        1,
        "one JSON line: {stdout}"
    );
    serde_json::from_str(&stdout).unwrap()
}

fn backup_codes_of(report: &Value) -> Vec<String> {
    report["backup_codes"]
        .as_array()
        .expect("backup_codes is a list")
        .iter()
        .map(|code| code.as_str().expect("codes are strings").to_string())
        .collect()
}

fn uri_secret(uri: &str) -> &str {
    let start = uri.find("secret=").expect("URI has a secret") + "secret=".len();
    let rest = &uri[start..];
    &rest[..rest.find('&').unwrap_or(rest.len())]
}

fn read_enrollment(path: &Path) -> Enrollment {
    Enrollment::parse(&fs::read_to_string(path).unwrap(), "test").unwrap()
}

#[test]
fn root_enrolls_another_user_with_working_codes() {
    require_root();
    let sandbox = Sandbox::new(
        "enrollment_path = \"{dir}/%u/.config/twofactor/enrollment.toml\"\n\
         totp_algorithm = \"SHA256\"\ntotp_digits = 8\ntotp_period = 60\n",
    );
    let user = target_user();
    let path = sandbox.path("nobody/.config/twofactor/enrollment.toml");

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
fn text_output_without_flags() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.toml");
    let output = sandbox.enroll(&["--user", TARGET_USER]);
    assert_eq!(exit_code(&output), 0, "stderr: {}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("otpauth://totp/"), "{text}");
    let code_lines = text
        .lines()
        .filter(|line| backup::normalize(line.trim()).is_some())
        .count();
    assert_eq!(code_lines, 10, "{text}");
    let enrollment = read_enrollment(&sandbox.path("nobody/enrollment.toml"));
    assert_eq!(enrollment.backup_codes.len(), 10);
}

#[test]
fn a_symlink_at_the_enrollment_path_is_never_followed() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.toml");
    let victim = sandbox.path("root-owned");
    fs::write(&victim, "untouched\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    let path = sandbox.path("nobody/enrollment.toml");
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
    let sandbox = Sandbox::with_user_path("open/enrollment.toml");
    let open = sandbox.path("nobody/open");
    fs::create_dir(&open).unwrap();
    let user = target_user();
    std::os::unix::fs::chown(&open, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();

    let output = sandbox.enroll(&["--user", TARGET_USER, "--non-interactive", "--json"]);
    assert_eq!(exit_code(&output), 1);
    assert_one_line_error(&output);
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
}

#[test]
fn a_user_enrolls_themselves_but_nobody_else() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.toml");
    let user = target_user();
    let as_user = |extra: &[&str]| {
        sandbox
            .command(extra)
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
    let meta = fs::metadata(sandbox.path("nobody/enrollment.toml")).unwrap();
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
    let sandbox = Sandbox::with_user_path("enrollment.toml");
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
    for bad in [&["enroll", "--bogus"][..], &[], &["enroll", "--user"]] {
        let output = run(bad);
        assert_eq!(exit_code(&output), 1, "{bad:?}");
        assert_one_line_error(&output);
    }
    let help = run(&["enroll", "--help"]);
    assert_eq!(exit_code(&help), 0);
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.contains("Examples:") && text.contains("--non-interactive"),
        "{text}"
    );
}
