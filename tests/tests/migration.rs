//! Switching from google-authenticator: files written by the real
//! `google-authenticator` program (libpam-google-authenticator), imported
//! with `twofactor import google-authenticator`, then logins through libpam
//! with codes computed from the file's secret and with its scratch codes.
//! And upgrading: an `enrollment.toml` written before enrollments were JSON.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use libtest_mimic::Failed;
use serde_json::Value;
use twofactor_core::backup::BackupCodeKind;
use twofactor_core::enrollment::{decode_base32_secret, Enrollment};
use twofactor_core::totp::{Algorithm, TotpParams};
use twofactor_integration_tests::checks::ensure as check;
use twofactor_integration_tests::fixtures::{Enrolled, Stack};
use twofactor_integration_tests::namespace::{self, TestNamespace};
use twofactor_integration_tests::pam_client::{code, Attempt, Shown};
use twofactor_integration_tests::run_trials;
use twofactor_integration_tests::users::{user, TestUser};
use twofactor_integration_tests::{production_module, test_clock_module, twofactor_binary};

const NOW: u64 = 1_800_000_000;

/// Run the real google-authenticator as `account`, writing `path`.
fn google_authenticator(account: &TestUser, path: &Path, options: &[&str]) -> Result<(), String> {
    let output = Command::new("setpriv")
        .arg(format!("--reuid={}", account.uid))
        .arg(format!("--regid={}", account.uid))
        .arg("--init-groups")
        .arg("google-authenticator")
        .args(options)
        .args(["--force", "--quiet", "--no-confirm", "--secret"])
        .arg(path)
        .env("HOME", &account.home)
        .env("USER", &account.name)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "cannot run google-authenticator (libpam-google-authenticator, \
                 scripts/install-deps.sh --test): {e}"
            )
        })?;
    if !output.status.success() || !path.exists() {
        return Err(format!(
            "google-authenticator {options:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// `twofactor ARGS...` as root.
fn twofactor(args: &[&str]) -> Output {
    Command::new(twofactor_binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run twofactor")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json(output: &Output) -> Result<Value, Failed> {
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("no JSON object ({e}): {}", text(output)).into())
}

/// The secret (first line) and the scratch codes of a google-authenticator file.
fn read_file(path: &Path) -> Result<(TotpParams, Vec<String>), Failed> {
    let contents = fs::read_to_string(path)?;
    let mut lines = contents.lines();
    let secret = decode_base32_secret(lines.next().unwrap_or_default())?;
    let step: u64 = contents
        .lines()
        .find_map(|l| l.strip_prefix("\" STEP_SIZE "))
        .map_or(Ok(30), str::parse)?;
    let scratch = lines
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    Ok((
        TotpParams {
            secret,
            algorithm: Algorithm::SHA1,
            digits: 6,
            period: step,
        },
        scratch,
    ))
}

/// A stack (test clock) whose configuration the tool is pointed at too.
fn migration_stack(ns: &TestNamespace, service: &str, account: &TestUser) -> Stack {
    let stack = Stack::new(ns, service, &test_clock_module(), "", "");
    stack.user_dir(account);
    stack
}

fn ga_path(account: &TestUser) -> PathBuf {
    account.home.join(".google_authenticator")
}

/// `twofactor COMMAND... --user ACCOUNT --config STACK'S EXTRA...` as root.
fn twofactor_for(stack: &Stack, account: &TestUser, command: &[&str], extra: &[&str]) -> Output {
    let config = stack.config_path.display().to_string();
    let mut args = command.to_vec();
    args.extend(["--user", &account.name, "--config", &config]);
    args.extend_from_slice(extra);
    twofactor(&args)
}

fn import(stack: &Stack, account: &TestUser, extra: &[&str]) -> Output {
    twofactor_for(stack, account, &["import", "google-authenticator"], extra)
}

fn totp_file_imports_and_logs_in(ns: &TestNamespace) -> Result<(), Failed> {
    let alice = user(0);
    let stack = migration_stack(ns, "ga-totp", &alice);
    let path = ga_path(&alice);
    google_authenticator(
        &alice,
        &path,
        &["-t", "-d", "-r", "3", "-R", "30", "-w", "3", "-e", "5"],
    )?;
    let (totp, scratch) = read_file(&path)?;
    check(scratch.len() == 5, || {
        format!("scratch codes: {}", scratch.len())
    })?;
    let before = fs::read(&path)?;

    let output = import(&stack, &alice, &["--json"]);
    check(output.status.success(), || text(&output))?;
    let report = json(&output)?;
    check(
        report["written"] == true
            && report["totp"]["algorithm"] == "SHA1"
            && report["totp"]["digits"] == 6
            && report["totp"]["period"] == 30
            && report["totp"]["secret_bits"] == 128
            && report["legacy_backup_codes"] == 5,
        || format!("report: {report}"),
    )?;
    let notes = report["notes"].to_string();
    for option in [
        "WINDOW_SIZE",
        "RATE_LIMIT",
        "DISALLOW_REUSE",
        "scratch codes",
    ] {
        check(notes.contains(option), || {
            format!("no note on {option}: {notes}")
        })?;
    }
    check(
        !output
            .stdout
            .windows(8)
            .any(|w| scratch.iter().any(|c| c.as_bytes() == w)),
        || "the report shows a scratch code".into(),
    )?;
    check(fs::read(&path)? == before, || {
        "the google-authenticator file was changed".into()
    })?;

    // The enrollment: the user's, private, TOTP plus legacy codes.
    let enrollment_path = stack.enrollment_path(&alice);
    let meta = fs::metadata(&enrollment_path)?;
    check(
        meta.uid() == alice.uid && meta.mode() & 0o777 == 0o600,
        || format!("owner {} mode {:o}", meta.uid(), meta.mode()),
    )?;
    let enrollment = Enrollment::parse(&fs::read_to_string(&enrollment_path)?, "imported")?;
    check(enrollment.totp.as_ref() == Some(&totp), || {
        "the imported TOTP differs from the file's secret".into()
    })?;
    check(
        enrollment
            .backup_codes
            .iter()
            .all(|c| c.kind == BackupCodeKind::LegacyScratch),
        || "scratch codes not stored as legacy codes".into(),
    )?;
    let stored = fs::read_to_string(&enrollment_path)?;
    check(scratch.iter().all(|c| !stored.contains(c.as_str())), || {
        "a scratch code is stored in clear text".into()
    })?;

    // A code computed from the file's secret logs in, once.
    let code_now = totp.code_at(NOW).to_string();
    let result = stack.login_at(&alice.name, &code_now, NOW);
    check(result.code == code::SUCCESS, || format!("TOTP: {result:?}"))?;
    let again = stack.login_at(&alice.name, &code_now, NOW);
    check(again.code == code::AUTH_ERR, || {
        format!("replay: {again:?}")
    })?;

    // A scratch code logs in once, and says how many are left.
    let result = stack.login_at(&alice.name, &scratch[2], NOW + 60);
    check(result.code == code::SUCCESS, || {
        format!("scratch: {result:?}")
    })?;
    check(
        result.shown.contains(&Shown::Info(
            "Backup code accepted. 4 backup codes left.".into(),
        )),
        || format!("{:?}", result.shown),
    )?;
    let again = stack.login_at(&alice.name, &scratch[2], NOW + 61);
    check(again.code == code::AUTH_ERR, || {
        format!("spent scratch: {again:?}")
    })?;
    check(
        stack.wait_for_log(|l| l.contains("backup code already used")),
        || format!("{:#?}", stack.log_lines()),
    )?;
    let wrong = format!("{}", scratch[0].parse::<u64>()? % 89_999_999 + 10_000_001);
    if !scratch.contains(&wrong) {
        let result = stack.login_at(&alice.name, &wrong, NOW + 62);
        check(result.code == code::AUTH_ERR, || {
            format!("wrong scratch: {result:?}")
        })?;
    }

    // status counts the legacy codes apart.
    let status = twofactor_for(&stack, &alice, &["status"], &["--json"]);
    let report = json(&status)?;
    let codes = &report["methods"]["backup_codes"];
    check(
        codes["total"] == 5
            && codes["remaining"] == 4
            && codes["legacy"] == 5
            && codes["legacy_remaining"] == 4,
        || format!("status: {report}"),
    )?;
    let status = twofactor_for(&stack, &alice, &["status"], &[]);
    let shown = String::from_utf8_lossy(&status.stdout);
    check(
        shown.contains("4 of them: legacy scratch codes imported from google-authenticator"),
        || format!("status text:\n{shown}"),
    )?;

    // New backup codes replace the legacy ones.
    let regenerated = twofactor_for(&stack, &alice, &["backup-codes"], &["--yes", "--json"]);
    check(regenerated.status.success(), || text(&regenerated))?;
    let result = stack.login_at(&alice.name, &scratch[0], NOW + 120);
    check(result.code == code::AUTH_ERR, || {
        format!("a scratch code still works after backup-codes: {result:?}")
    })?;
    let report = json(&twofactor_for(&stack, &alice, &["status"], &["--json"]))?;
    check(report["methods"]["backup_codes"]["legacy"] == 0, || {
        format!("status: {report}")
    })?;
    Ok(())
}

fn codes_agree_with_pam_google_authenticator(ns: &TestNamespace) -> Result<(), Failed> {
    // The same file, the same moment: google-authenticator's own module and
    // ours (after the import) accept the same code.
    let bob = user(1);
    let stack = Stack::new(ns, "ga-side-by-side", &production_module(), "", "");
    stack.user_dir(&bob);
    let path = ga_path(&bob);
    google_authenticator(&bob, &path, &["-t", "-D", "-u", "-w", "3", "-e", "1"])?;
    let output = import(&stack, &bob, &[]);
    check(output.status.success(), || text(&output))?;
    let (totp, _) = read_file(&path)?;
    let theirs = ns.scratch.join("ga-module");
    fs::create_dir_all(&theirs)?;
    fs::write(
        theirs.join("ga"),
        format!(
            "auth required pam_google_authenticator.so secret={}\n",
            path.display()
        ),
    )?;
    fs::write(theirs.join("other"), "")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    // Away from a step boundary, so both see the same step.
    let code_now = totp.code_at(now).to_string();
    let attempt = Attempt {
        answers: vec![code_now.clone()],
        ..Attempt::default()
    };
    let result =
        twofactor_integration_tests::pam_client::authenticate(&theirs, "ga", &bob.name, &attempt);
    check(result.code == code::SUCCESS, || {
        format!("pam_google_authenticator refused the code: {result:?}")
    })?;
    let result = stack.authenticate(&bob.name, &attempt);
    check(result.code == code::SUCCESS, || {
        format!(
            "pam_twofactor refused the code google-authenticator accepted: {result:?}\n{:#?}",
            stack.log_lines()
        )
    })?;
    Ok(())
}

fn step_size_and_window_are_mapped(ns: &TestNamespace) -> Result<(), Failed> {
    let carol = user(2);
    let stack = migration_stack(ns, "ga-step", &carol);
    let path = ga_path(&carol);
    google_authenticator(
        &carol,
        &path,
        &["-t", "-d", "-u", "-S", "60", "-w", "17", "-e", "0"],
    )?;
    let dry = import(&stack, &carol, &["--dry-run"]);
    check(dry.status.success(), || text(&dry))?;
    let shown = String::from_utf8_lossy(&dry.stdout);
    check(
        shown.contains("Dry run")
            && shown.contains("every 60 seconds")
            && shown.contains("8 step(s) before and 8 after")
            && shown.contains("1 step(s) either side"),
        || format!("dry run:\n{shown}"),
    )?;
    check(!stack.enrollment_path(&carol).exists(), || {
        "--dry-run wrote the enrollment".into()
    })?;
    let output = import(&stack, &carol, &[]);
    check(output.status.success(), || text(&output))?;
    let (totp, _) = read_file(&path)?;
    check(totp.period == 60, || format!("period {}", totp.period))?;
    let result = stack.login_at(&carol.name, &totp.code_at(NOW), NOW);
    check(result.code == code::SUCCESS, || format!("{result:?}"))?;
    // Importing again needs --force.
    let again = import(&stack, &carol, &[]);
    check(
        again.status.code() == Some(1)
            && String::from_utf8_lossy(&again.stderr).contains("use --force"),
        || text(&again),
    )?;
    let forced = import(&stack, &carol, &["--force"]);
    check(forced.status.success(), || text(&forced))?;
    Ok(())
}

fn hotp_files_are_refused(ns: &TestNamespace) -> Result<(), Failed> {
    let dave = user(3);
    let stack = migration_stack(ns, "ga-hotp", &dave);
    let path = ga_path(&dave);
    google_authenticator(&dave, &path, &["-c", "-u", "-w", "3"])?;
    let output = import(&stack, &dave, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    check(
        output.status.code() == Some(1)
            && stderr.contains("counter-based (HOTP)")
            && stderr.contains("nothing was imported")
            && stderr.contains("twofactor enroll"),
        || text(&output),
    )?;
    check(!stack.enrollment_path(&dave).exists(), || {
        "an enrollment was written for an HOTP file".into()
    })?;
    Ok(())
}

fn unsafe_or_foreign_files_are_refused(ns: &TestNamespace) -> Result<(), Failed> {
    let erin = user(4);
    let stack = migration_stack(ns, "ga-unsafe", &erin);
    let path = ga_path(&erin);
    google_authenticator(&erin, &path, &["-t", "-d", "-u", "-w", "3"])?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    // A file that fails a safety check is in the way: exit 2, as for every
    // command (twofactor(1), EXIT STATUS).
    let output = import(&stack, &erin, &[]);
    check(
        output.status.code() == Some(2)
            && String::from_utf8_lossy(&output.stderr).contains("unsafe permissions"),
        || text(&output),
    )?;
    // Another user's file, named explicitly: not erin's (nor root's), refused.
    let frank = user(5);
    let franks = ga_path(&frank);
    google_authenticator(&frank, &franks, &["-t", "-d", "-u", "-w", "3"])?;
    let franks = franks.display().to_string();
    let output = import(&stack, &erin, &[&franks]);
    check(
        output.status.code() == Some(2)
            && String::from_utf8_lossy(&output.stderr).contains(&format!(
                "is owned by uid {}, expected uid {}",
                frank.uid, erin.uid
            )),
        || text(&output),
    )?;
    check(!stack.enrollment_path(&erin).exists(), || {
        "an enrollment was written from a refused file".into()
    })?;
    Ok(())
}

/// An enrollment.toml beside the configured enrollment.json (the default
/// file before it became JSON) keeps working through libpam, and the next
/// change made with `twofactor` moves it to enrollment.json.
fn earlier_toml_enrollment_logs_in_and_moves_on_change(ns: &TestNamespace) -> Result<(), Failed> {
    let grace = user(6);
    let stack = migration_stack(ns, "earlier-toml", &grace);
    let enrolled = Enrolled::standard();
    let json_path = stack.enrollment_path(&grace);
    let toml_path = json_path.with_file_name("enrollment.toml");
    check(
        json_path.file_name() == Some("enrollment.json".as_ref()),
        || format!("the stack's enrollment is {}", json_path.display()),
    )?;
    fs::write(&toml_path, enrolled.enrollment.to_toml())?;
    std::os::unix::fs::chown(&toml_path, Some(grace.uid), Some(grace.uid))?;
    fs::set_permissions(&toml_path, fs::Permissions::from_mode(0o600))?;

    let result = stack.login_at(&grace.name, &enrolled.code_at(NOW), NOW);
    check(result.code == code::SUCCESS, || {
        format!(
            "the TOML enrollment was refused: {result:?}\n{:#?}",
            stack.log_lines()
        )
    })?;
    let result = stack.login_at(&grace.name, &enrolled.backup_codes[0], NOW + 30);
    check(result.code == code::SUCCESS, || {
        format!("a backup code of the TOML enrollment was refused: {result:?}")
    })?;

    let output = twofactor_for(&stack, &grace, &["backup-codes"], &["--yes", "--json"]);
    check(output.status.success(), || text(&output))?;
    let report = json(&output)?;
    let new_code = report["backup_codes"][0]
        .as_str()
        .ok_or_else(|| format!("no backup codes in {report}"))?
        .to_string();
    check(!toml_path.exists(), || {
        "enrollment.toml is still there".into()
    })?;
    let written = fs::read_to_string(&json_path)?;
    check(written.starts_with('{'), || format!("not JSON: {written}"))?;
    let moved = Enrollment::parse(&written, "moved")?;
    check(moved.totp == enrolled.enrollment.totp, || {
        "the TOTP secret changed on the way".into()
    })?;
    let meta = fs::metadata(&json_path)?;
    check(
        meta.uid() == grace.uid && meta.mode() & 0o777 == 0o600,
        || format!("owner {} mode {:o}", meta.uid(), meta.mode()),
    )?;

    let result = stack.login_at(&grace.name, &enrolled.code_at(NOW + 60), NOW + 60);
    check(result.code == code::SUCCESS, || {
        format!("the moved enrollment was refused: {result:?}")
    })?;
    let result = stack.login_at(&grace.name, &new_code, NOW + 90);
    check(result.code == code::SUCCESS, || {
        format!("a new backup code was refused: {result:?}")
    })?;
    Ok(())
}

fn main() {
    let ns = namespace::enter();
    run_trials(
        ns,
        vec![
            (
                "totp_file_imports_and_logs_in",
                totp_file_imports_and_logs_in,
            ),
            (
                "codes_agree_with_pam_google_authenticator",
                codes_agree_with_pam_google_authenticator,
            ),
            (
                "step_size_and_window_are_mapped",
                step_size_and_window_are_mapped,
            ),
            ("hotp_files_are_refused", hotp_files_are_refused),
            (
                "unsafe_or_foreign_files_are_refused",
                unsafe_or_foreign_files_are_refused,
            ),
            (
                "earlier_toml_enrollment_logs_in_and_moves_on_change",
                earlier_toml_enrollment_logs_in_and_moves_on_change,
            ),
        ],
    );
}
