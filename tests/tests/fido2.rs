//! Security keys through the real libpam and the built module: the module
//! runs its FIDO2 helper as in production (`fido2_helper`, a child process
//! with a deadline), here the `soft_fido2_helper` stand-in, which answers
//! with the software authenticator (real P-256/Ed25519 signatures).
//!
//! No cargo feature is needed for this: the helper is a process the
//! configuration names, so the test build of the module is the production
//! code path. (The module's test clock is used only to fix the TOTP time of
//! the fallback codes.)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libtest_mimic::Failed;
use serde::Serialize;
use twofactor_core::fido2::{client_data_hash, parse_registration, Credential, Origin};
use twofactor_integration_tests::checks::{assert_logged, check};
use twofactor_integration_tests::descriptors::{
    check_standard_streams_only, read_listing, write_listing_script, LeakedSecret,
};
use twofactor_integration_tests::fixtures::{Enrolled, Stack};
use twofactor_integration_tests::namespace::{self, TestNamespace};
use twofactor_integration_tests::pam_client::{code, Attempt, AttemptResult, Shown};
use twofactor_integration_tests::run_trials;
use twofactor_integration_tests::test_clock_module;
use twofactor_integration_tests::users::{user, TestUser};
use twofactor_soft_authenticator::{Alg, Behaviour, SoftAuthenticator};

const NOW: u64 = 1_800_000_000;
const RP: &str = "pam://libpam-test";
const TOUCH: &str = "Touch your security key.";

#[derive(Serialize)]
struct HelperState {
    mode: String,
    lie_uv: bool,
    device: Behaviour,
}

struct KeyStack {
    stack: Stack,
    helper_state: PathBuf,
    device: SoftAuthenticator,
}

fn soft_helper() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_soft_fido2_helper"))
}

impl KeyStack {
    /// A stack whose module runs the soft helper, `extra` appended to the
    /// configuration.
    fn new(ns: &TestNamespace, service: &str, extra: &str) -> Self {
        let base = ns.scratch.join(format!("fido2-{service}"));
        fs::create_dir_all(&base).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        let helper_state = base.join("helper.toml");
        let script = base.join("helper.sh");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\nexec {} {}\n",
                soft_helper().display(),
                helper_state.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let config = format!(
            "fido2_rp_id = \"{RP}\"\nfido2_helper = \"{}\"\nfido2_timeout = 2\n{extra}",
            script.display()
        );
        let stack = Stack::new(ns, service, &test_clock_module(), "", &config);
        let ks = KeyStack {
            stack,
            helper_state,
            device: SoftAuthenticator::new(Behaviour::random()),
        };
        ks.set_helper("present", false, &ks.device.behaviour.clone());
        ks
    }

    fn set_helper(&self, mode: &str, lie_uv: bool, device: &Behaviour) {
        let state = HelperState {
            mode: mode.into(),
            lie_uv,
            device: device.clone(),
        };
        fs::write(&self.helper_state, toml::to_string(&state).unwrap()).unwrap();
    }

    /// Enroll `user` with TOTP, backup codes and a key of the device.
    fn enroll(&mut self, user: &TestUser, alg: Alg) -> (Enrolled, Credential) {
        let reg = self
            .device
            .make_credential(RP, &client_data_hash(b"reg"), &[alg], false, None)
            .unwrap();
        let new = parse_registration(&reg.auth_data, RP).unwrap();
        let credential = Credential {
            name: "soft key".into(),
            rp_id: RP.into(),
            credential_id: new.credential_id,
            public_key: new.public_key,
            user_verification: false,
            flags: new.flags,
            sign_count: new.sign_count,
            created: NOW,
            origin: Origin::Registered,
        };
        let mut enrolled = Enrolled::standard();
        enrolled.enrollment.fido2 = vec![credential.clone()];
        self.stack.enroll(user, &enrolled);
        self.set_helper("present", false, &self.device.behaviour.clone());
        (enrolled, credential)
    }

    fn login(&self, user: &TestUser, answers: &[&str], rhost: Option<&str>) -> AttemptResult {
        self.stack.authenticate(
            &user.name,
            &Attempt {
                answers: answers.iter().map(|a| a.to_string()).collect(),
                tty: Some("tty3".into()),
                rhost: rhost.map(str::to_string),
                env: vec![format!("PAM_TWOFACTOR_TEST_NOW={NOW}")],
                ..Attempt::default()
            },
        )
    }
}

fn expect(result: &AttemptResult, code: i32, shown: &[Shown]) -> Result<(), Failed> {
    check(
        result.code == code && result.shown == shown,
        format!(
            "expected {code} after {shown:?}, got {} after {:?}",
            result.code, result.shown
        ),
    )
}

fn info(text: &str) -> Shown {
    Shown::Info(text.into())
}

fn prompt() -> Shown {
    Shown::HiddenPrompt("Verification code: ".into())
}

fn touch_logs_in(ns: &TestNamespace) -> Result<(), Failed> {
    for (i, alg) in [Alg::Es256, Alg::Eddsa].into_iter().enumerate() {
        let mut ks = KeyStack::new(ns, &format!("touch{i}"), "");
        let alice = user(i as u32);
        ks.enroll(&alice, alg);
        let result = ks.login(&alice, &[], None);
        expect(&result, code::SUCCESS, &[info(TOUCH)])?;
        assert_logged(&ks.stack, "method=security-key key=soft\\x20key")?;
        // The counter went to the root-owned state, and grows.
        let text = fs::read_to_string(ks.stack.state_dir.join(format!("{}.state", alice.name)))?;
        let state = twofactor_core::state::LoginState::parse(&text, "state")?;
        check(
            state.fido2_counters.len() == 1 && state.fido2_counters[0].counter == 2,
            text,
        )?;
        let again = ks.login(&alice, &[], None);
        expect(&again, code::SUCCESS, &[info(TOUCH)])?;
    }
    Ok(())
}

fn refused(ks: &KeyStack, user: &TestUser, log: &str) -> Result<(), Failed> {
    let result = ks.login(user, &["unused"], None);
    expect(
        &result,
        code::AUTH_ERR,
        &[info(TOUCH), Shown::Error("Security key refused.".into())],
    )?;
    assert_logged(&ks.stack, log)
}

fn bad_assertions_are_refused(ns: &TestNamespace) -> Result<(), Failed> {
    type Case = (&'static str, fn(&mut Behaviour), &'static str);
    let cases: [Case; 3] = [
        (
            "wrongrp",
            |b| b.sign_rp_id = Some("pam://elsewhere".into()),
            "another relying party",
        ),
        (
            "noup",
            |b| b.user_present = false,
            "user presence flag not set",
        ),
        (
            "tamper",
            |b| b.tamper_signature = true,
            "signature does not verify",
        ),
    ];
    for (i, (service, change, log)) in cases.into_iter().enumerate() {
        let mut ks = KeyStack::new(ns, service, "");
        let bob = user(2 + i as u32);
        ks.enroll(&bob, Alg::Es256);
        let mut behaviour = ks.device.behaviour.clone();
        change(&mut behaviour);
        ks.set_helper("present", false, &behaviour);
        refused(&ks, &bob, log)?;
    }
    Ok(())
}

fn user_verification_required_but_absent(ns: &TestNamespace) -> Result<(), Failed> {
    let mut ks = KeyStack::new(ns, "uv", "fido2_user_verification = true\n");
    let carol = user(6);
    ks.enroll(&carol, Alg::Eddsa);
    ks.set_helper("present", true, &ks.device.behaviour.clone());
    refused(
        &ks,
        &carol,
        "user verification required but the flag is not set",
    )
}

fn counter_regression_is_refused(ns: &TestNamespace) -> Result<(), Failed> {
    let mut ks = KeyStack::new(ns, "clone", "");
    let dave = user(7);
    ks.enroll(&dave, Alg::Es256);
    expect(&ks.login(&dave, &[], None), code::SUCCESS, &[info(TOUCH)])?;
    // A clone of the key, with the counter it had at registration.
    ks.set_helper("present", false, &ks.device.behaviour.clone());
    refused(&ks, &dave, "possible cloned security key")
}

fn fallbacks_to_the_code(ns: &TestNamespace) -> Result<(), Failed> {
    let mut ks = KeyStack::new(ns, "fallback", "");
    let erin = user(8);
    let (enrolled, _) = ks.enroll(&erin, Alg::Es256);

    // Unknown credential: the attached key is another one.
    ks.set_helper("present", false, &Behaviour::random());
    let code_now = enrolled.code_at(NOW);
    let result = ks.login(&erin, &[&code_now], None);
    expect(
        &result,
        code::SUCCESS,
        &[
            info("No registered security key found; enter a code instead."),
            prompt(),
        ],
    )?;
    assert_logged(&ks.stack, "none of the 1 attached security keys")?;

    // No key attached (a backup code this time: the TOTP step is used).
    ks.set_helper("absent", false, &ks.device.behaviour.clone());
    let result = ks.login(&erin, &[&enrolled.backup_codes[0]], None);
    check(result.code == code::SUCCESS, format!("{result:?}"))?;
    check(
        result.shown[..2]
            == [
                info("No security key found; enter a code instead."),
                prompt(),
            ],
        format!("{:?}", result.shown),
    )?;

    // Found, but never touched: the helper is killed at the deadline (2 s).
    ks.set_helper("hang", false, &ks.device.behaviour.clone());
    let started = Instant::now();
    let result = ks.login(&erin, &[&enrolled.backup_codes[1]], None);
    let took = started.elapsed();
    check(result.code == code::SUCCESS, format!("{result:?}"))?;
    check(
        result.shown[..3]
            == [
                info(TOUCH),
                info("Security key not touched in time; enter a code instead."),
                prompt(),
            ],
        format!("{:?}", result.shown),
    )?;
    check(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        format!("took {took:?}"),
    )?;
    // Nothing of the helper is left once pam_authenticate returned.
    check(
        helpers_running(&ks.helper_state).is_empty(),
        format!(
            "helper processes left: {:?}",
            helpers_running(&ks.helper_state)
        ),
    )?;
    assert_logged(&ks.stack, "no answer from the security key in time")?;
    Ok(())
}

/// Processes running the soft helper binary for `state` (other tests run
/// helpers of their own at the same time).
fn helpers_running(state: &Path) -> Vec<u32> {
    let target = soft_helper();
    let state = state.to_string_lossy().into_owned();
    let mut found = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let ours = String::from_utf8_lossy(&cmdline).contains(&state);
            if ours && fs::read_link(entry.path().join("exe")).is_ok_and(|exe| exe == target) {
                found.push(pid);
            }
        }
    }
    found
}

fn remote_logins_ask_for_the_code(ns: &TestNamespace) -> Result<(), Failed> {
    let mut ks = KeyStack::new(ns, "remote", "");
    let frank = user(9);
    let (enrolled, _) = ks.enroll(&frank, Alg::Es256);
    let result = ks.login(&frank, &[&enrolled.code_at(NOW)], Some("192.0.2.9"));
    expect(&result, code::SUCCESS, &[prompt()])
}

fn missing_helper_falls_back(ns: &TestNamespace) -> Result<(), Failed> {
    let mut ks = KeyStack::new(ns, "nohelper", "");
    let grace = user(10);
    let (enrolled, _) = ks.enroll(&grace, Alg::Es256);
    let config = fs::read_to_string(&ks.stack.config_path)?;
    let broken = config.replace("helper.sh", "missing-helper");
    fs::write(&ks.stack.config_path, broken)?;
    let result = ks.login(&grace, &[&enrolled.code_at(NOW)], None);
    expect(
        &result,
        code::SUCCESS,
        &[
            info("Security key not usable; enter a code instead."),
            prompt(),
        ],
    )?;
    assert_logged(&ks.stack, "helper failed")
}

fn required_without_key_fails(ns: &TestNamespace) -> Result<(), Failed> {
    let mut ks = KeyStack::new(ns, "required", "fido2 = \"required\"\n");
    let heidi = user(11);
    ks.enroll(&heidi, Alg::Es256);
    ks.set_helper("absent", false, &ks.device.behaviour.clone());
    let result = ks.login(&heidi, &["123456"], None);
    expect(
        &result,
        code::AUTH_ERR,
        &[Shown::Error("No security key found.".into())],
    )?;
    assert_logged(&ks.stack, "fido2 = required")
}

/// The helper gets its socket as standard input and output, /dev/null as
/// standard error, and nothing else of the process that loaded the module,
/// although that process holds a secret open without close-on-exec.
fn helper_inherits_only_its_socket(ns: &TestNamespace) -> Result<(), Failed> {
    let secret = LeakedSecret::open(&ns.scratch.join("fido2-host-secret"));
    let mut ks = KeyStack::new(ns, "fds", "");
    let base = ns.scratch.join("fido2-fds");
    let script = base.join("helper.sh");
    let listing = base.join("helper-fds");
    write_listing_script(
        &script,
        &listing,
        &format!(
            "exec {} {}",
            soft_helper().display(),
            ks.helper_state.display()
        ),
    );
    let ivan = user(12);
    ks.enroll(&ivan, Alg::Es256);
    expect(&ks.login(&ivan, &[], None), code::SUCCESS, &[info(TOUCH)])?;
    let seen = read_listing(&listing)?;
    let socket = |target: &str| target.starts_with("socket:[");
    let null = |target: &str| target == "/dev/null";
    check_standard_streams_only(&seen, [&socket, &socket, &null], &script, &secret)?;
    check(
        seen.get(&0) == seen.get(&1),
        format!("standard input and output are not the same socket: {seen:?}"),
    )
}

fn main() {
    let ns = namespace::enter();
    run_trials(
        ns,
        vec![
            ("touch_logs_in", touch_logs_in),
            ("bad_assertions_are_refused", bad_assertions_are_refused),
            (
                "user_verification_required_but_absent",
                user_verification_required_but_absent,
            ),
            (
                "counter_regression_is_refused",
                counter_regression_is_refused,
            ),
            ("fallbacks_to_the_code", fallbacks_to_the_code),
            (
                "remote_logins_ask_for_the_code",
                remote_logins_ask_for_the_code,
            ),
            ("missing_helper_falls_back", missing_helper_falls_back),
            ("required_without_key_fails", required_without_key_fails),
            (
                "helper_inherits_only_its_socket",
                helper_inherits_only_its_socket,
            ),
        ],
    );
}
