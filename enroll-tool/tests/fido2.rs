//! `twofactor import pam-u2f`, `fido2 list`, `fido2 remove`, and `fido2 add`
//! without a key, with the built binary, as root for `nobody`. (Registration
//! with a key attached is tested end to end in tests/fido2-vm.)

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use common::*;
use twofactor_soft_authenticator::{Alg, Behaviour, SoftAuthenticator};

const RP: &str = "pam://import-test";

fn fido2(sandbox: &Sandbox, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_twofactor"));
    command
        .args(&args[..args.len().min(2)])
        .arg("--config")
        .arg(&sandbox.config)
        .args(&args[args.len().min(2)..])
        .stdin(Stdio::null());
    command.output().unwrap()
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

fn sandbox_with_rp() -> Sandbox {
    Sandbox::new(&format!(
        "enrollment_path = \"{{dir}}/%u/enrollment.json\"\nfido2_rp_id = \"{RP}\"\n"
    ))
}

/// A pam_u2f keys file (readable, as pam_u2f's central file is) holding `contents`.
fn write_u2f_keys(sandbox: &Sandbox, contents: &str) -> String {
    let keys = sandbox.path("u2f_keys");
    fs::write(&keys, contents).unwrap();
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o644)).unwrap();
    keys.to_str().unwrap().to_string()
}

fn import_u2f_keys(sandbox: &Sandbox, keys: &str) -> Output {
    fido2(
        sandbox,
        &["import", "pam-u2f", "--user", TARGET_USER, "--json", keys],
    )
}

/// `fido2 remove NAME --yes --json`, which must succeed: its report.
fn remove_key(sandbox: &Sandbox, name: &str) -> serde_json::Value {
    json_of(&fido2(
        sandbox,
        &[
            "fido2",
            "remove",
            "--user",
            TARGET_USER,
            "--yes",
            "--json",
            name,
        ],
    ))
}

#[test]
fn pam_u2f_keys_are_imported_listed_and_removed() {
    require_root();
    let sandbox = sandbox_with_rp();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    let es = device
        .make_credential(RP, &[0; 32], &[Alg::Es256], false, None)
        .unwrap();
    let ed = device
        .make_credential(RP, &[0; 32], &[Alg::Eddsa], false, None)
        .unwrap();
    let line = format!(
        "{TARGET_USER}:{},{},es256,+presence:{},{},eddsa,+presence+pin:*,AAAA,es256,+presence\n",
        b64(&es.credential_id),
        b64(&es.public_key[1..]),
        b64(&ed.credential_id),
        b64(&ed.public_key),
    );
    let keys = write_u2f_keys(&sandbox, &format!("root:AAAA,BBBB,es256,+presence\n{line}"));
    let keys_arg = keys.as_str();

    let dry = fido2(
        &sandbox,
        &[
            "import",
            "pam-u2f",
            "--user",
            TARGET_USER,
            "--dry-run",
            "--json",
            keys_arg,
        ],
    );
    assert_eq!(exit_code(&dry), 0, "{dry:?}");
    assert!(!sandbox.enrollment_path().exists());

    let output = import_u2f_keys(&sandbox, keys_arg);
    assert_eq!(exit_code(&output), 0, "{output:?}");
    let report = json_of(&output);
    assert_eq!(report["imported"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(report["skipped"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["imported"][1]["user_verification"], true);
    let enrollment = read_enrollment(&sandbox.enrollment_path());
    assert_eq!(enrollment.fido2.len(), 2);
    assert_eq!(enrollment.fido2[0].credential_id, es.credential_id);
    assert_eq!(enrollment.fido2[0].rp_id, RP);
    assert_eq!(
        enrollment.fido2[1].public_key.bytes(),
        ed.public_key.as_slice()
    );

    // Importing again adds nothing.
    let again = json_of(&import_u2f_keys(&sandbox, keys_arg));
    assert_eq!(again["already_registered"], 2, "{again}");

    let list = json_of(&fido2(
        &sandbox,
        &["fido2", "list", "--user", TARGET_USER, "--json"],
    ));
    let names: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pam-u2f-1", "pam-u2f-2"]);
    assert_eq!(list["keys"][1]["algorithm"], "eddsa");

    let missing = fido2(
        &sandbox,
        &["fido2", "remove", "--user", TARGET_USER, "--yes", "nope"],
    );
    assert_eq!(exit_code(&missing), 1);
    assert!(
        stderr(&missing).contains("no security key named"),
        "{missing:?}"
    );

    let removed = remove_key(&sandbox, "pam-u2f-1");
    assert_eq!(removed["file_removed"], false, "{removed}");
    assert_eq!(read_enrollment(&sandbox.enrollment_path()).fido2.len(), 1);
    // The last method gone, the file goes too.
    let removed = remove_key(&sandbox, "pam-u2f-2");
    assert_eq!(removed["file_removed"], true, "{removed}");
    assert!(!sandbox.enrollment_path().exists());
}

#[test]
fn keys_without_presence_are_reported_and_verification_is_named() {
    require_root();
    let sandbox = sandbox_with_rp();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    let mut entry = |options: &str| {
        let key = device
            .make_credential(RP, &[0; 32], &[Alg::Es256], false, None)
            .unwrap();
        format!(
            "{},{},es256,{options}",
            b64(&key.credential_id),
            b64(&key.public_key[1..])
        )
    };
    // pamu2fcfg's default, --no-user-presence, and --verify without presence.
    let line = format!(
        "{TARGET_USER}:{}:{}:{}\n",
        entry("+presence"),
        entry(""),
        entry("+verification")
    );
    let keys = write_u2f_keys(&sandbox, &line);

    let output = fido2(
        &sandbox,
        &[
            "import",
            "pam-u2f",
            "--user",
            TARGET_USER,
            "--dry-run",
            &keys,
        ],
    );
    assert_eq!(exit_code(&output), 0, "{output:?}");
    let text = stdout(&output);
    assert!(
        text.contains("pam-u2f-1 (es256)\n")
            && text.contains("pam-u2f-2 (es256, a touch now required)\n")
            && text.contains("pam-u2f-3 (es256, user verification, a touch now required)\n"),
        "{text}"
    );
    assert!(!text.contains("PIN"), "{text}");
    let errors = stderr(&output);
    let warnings: Vec<&str> = errors.lines().collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    for (line, name) in warnings.iter().zip(["pam-u2f-2", "pam-u2f-3"]) {
        assert!(
            line.starts_with(&format!(
                "twofactor: warning: {name} was set up in pam_u2f without +presence"
            )) && line.contains("always requires a touch"),
            "{line}"
        );
    }

    let report = json_of(&import_u2f_keys(&sandbox, &keys));
    let imported = report["imported"].as_array().unwrap();
    let flags: Vec<(bool, bool)> = imported
        .iter()
        .map(|k| {
            (
                k["pam_u2f_presence"].as_bool().unwrap(),
                k["user_verification"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(flags, [(true, false), (false, false), (false, true)]);
    let enrollment = read_enrollment(&sandbox.enrollment_path());
    assert_eq!(enrollment.fido2.len(), 3);
    assert!(enrollment.fido2[2].user_verification);
}

#[test]
fn adding_without_a_key_says_so() {
    require_root();
    let sandbox = Sandbox::new("enrollment_path = \"{dir}/%u/enrollment.json\"\n");
    let output = fido2(&sandbox, &["fido2", "add", "--user", TARGET_USER]);
    assert_eq!(exit_code(&output), 1, "{output:?}");
    assert!(
        stderr(&output).contains("no FIDO2 security key is attached"),
        "{output:?}"
    );
    assert!(!sandbox.enrollment_path().exists());
}

#[test]
fn removing_the_last_key_removes_a_leftover_legacy_file_too() {
    require_root();
    let sandbox = sandbox_with_rp();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    let es = device
        .make_credential(RP, &[0; 32], &[Alg::Es256], false, None)
        .unwrap();
    let keys = write_u2f_keys(
        &sandbox,
        &format!(
            "{TARGET_USER}:{},{},es256,+presence\n",
            b64(&es.credential_id),
            b64(&es.public_key[1..]),
        ),
    );
    let imported = import_u2f_keys(&sandbox, &keys);
    assert_eq!(exit_code(&imported), 0, "{imported:?}");
    sandbox.write_legacy(&read_enrollment(&sandbox.enrollment_path()));

    let removed = remove_key(&sandbox, "pam-u2f-1");
    assert_eq!(removed["file_removed"], true, "{removed}");
    assert!(!sandbox.enrollment_path().exists());
    assert!(
        !sandbox.legacy_path().exists(),
        "the leftover would be read"
    );
}
