//! The security-key step of the flow, driven by the software authenticator
//! (real P-256 and Ed25519 keys) behind the [`SecurityKeys`] trait: every
//! verification outcome, and every way of falling back to the code prompt.

use std::path::Path;
use std::time::Instant;

use twofactor_core::fido2::{client_data_hash, parse_registration, Assertion, Credential, Origin};
use twofactor_soft_authenticator::{Alg, Behaviour, SoftAuthenticator};

use super::*;
use crate::auth::{PIN_PROMPT, TOUCH_CUE};
use crate::fido2_device::{DeviceError, Found};

const RP: &str = "pam://flow-test";
const RP_ARG: &str = "fido2_rp_id=pam://flow-test";

/// No key attached.
pub(super) struct NoKeys;

impl SecurityKeys for NoKeys {
    fn find(&mut self, _: &Path, _: &str, _: &[Vec<u8>], _: Instant) -> Result<Found, DeviceError> {
        Err(DeviceError::NotFound { devices: 0 })
    }
    fn assert(
        &mut self,
        _: &[u8],
        _: Option<&str>,
        _: bool,
        _: Instant,
    ) -> Result<Assertion, DeviceError> {
        Err(DeviceError::Failed("no key".into()))
    }
    fn finish(&mut self) {}
}

/// The software authenticator, attached (or hanging).
struct SoftKeys {
    device: SoftAuthenticator,
    rp_id: String,
    allow: Vec<Vec<u8>>,
    hang: bool,
    /// Claims a PIN is set but signs without user verification.
    ignore_pin: bool,
    finished: std::rc::Rc<std::cell::Cell<usize>>,
}

impl SoftKeys {
    fn new(device: SoftAuthenticator) -> Self {
        SoftKeys {
            device,
            rp_id: String::new(),
            allow: Vec::new(),
            hang: false,
            ignore_pin: false,
            finished: Default::default(),
        }
    }
}

impl SecurityKeys for SoftKeys {
    fn find(
        &mut self,
        _helper: &Path,
        rp_id: &str,
        ids: &[Vec<u8>],
        _deadline: Instant,
    ) -> Result<Found, DeviceError> {
        let index = ids
            .iter()
            .position(|id| self.device.holds(id, rp_id))
            .ok_or(DeviceError::NotFound { devices: 1 })?;
        self.rp_id = rp_id.to_string();
        self.allow = vec![ids[index].clone()];
        Ok(Found {
            device: "/dev/hidraw-test".into(),
            product: "soft".into(),
            credential_index: index,
            pin_set: self.device.behaviour.pin.is_some() || self.ignore_pin,
            uv_builtin: self.device.behaviour.builtin_uv,
        })
    }

    fn assert(
        &mut self,
        challenge: &[u8],
        pin: Option<&str>,
        uv: bool,
        _deadline: Instant,
    ) -> Result<Assertion, DeviceError> {
        if self.hang {
            return Err(DeviceError::Timeout);
        }
        let pin = if self.ignore_pin { None } else { pin };
        let a = self
            .device
            .get_assertion(
                &self.rp_id,
                &client_data_hash(challenge),
                &self.allow,
                true,
                uv,
                pin,
            )
            .map_err(|e| match e {
                twofactor_soft_authenticator::CtapError::PinInvalid => DeviceError::Refused(
                    twofactor_core::fido2::helper::FailureKind::PinInvalid,
                    "pin".into(),
                ),
                other => DeviceError::Failed(format!("{other:?}")),
            })?;
        Ok(Assertion {
            credential_id: a.credential_id,
            auth_data: a.auth_data,
            signature: a.signature,
        })
    }

    fn finish(&mut self) {
        self.finished.set(self.finished.get() + 1);
    }
}

fn register(device: &mut SoftAuthenticator, alg: Alg, name: &str, uv: bool) -> Credential {
    let reg = device
        .make_credential(RP, &[0; 32], &[alg], false, None)
        .unwrap();
    let new = parse_registration(&reg.auth_data, RP).unwrap();
    Credential {
        name: name.into(),
        rp_id: RP.into(),
        credential_id: new.credential_id,
        public_key: new.public_key,
        user_verification: uv,
        flags: new.flags,
        sign_count: new.sign_count,
        created: NOW,
        origin: Origin::Registered,
    }
}

/// `user` with TOTP, backup codes (unless `codes` is false) and a key of
/// `device`; returns the credential.
fn enroll_key(
    h: &mut Harness,
    user: &str,
    device: &mut SoftAuthenticator,
    alg: Alg,
    codes: bool,
) -> Credential {
    let credential = register(device, alg, "usb", false);
    let (mut enrollment, _) = enrollment_with(if codes { 4 } else { 0 });
    if !codes {
        enrollment.totp = None;
    }
    enrollment.fido2 = vec![credential.clone()];
    h.set_enrollment(user, Ok(Some(enrollment)));
    credential
}

fn local_session(user: &str, script: Vec<Expect>) -> ScriptedSession {
    let mut session = ScriptedSession::new(user, script);
    session.remote_host = None;
    session.tty = Some("tty1".into());
    session.service = Some("login".into());
    session
}

fn attach(h: &mut Harness, keys: SoftKeys) -> std::rc::Rc<std::cell::Cell<usize>> {
    let finished = keys.finished.clone();
    h.keys = Box::new(keys);
    finished
}

#[test]
fn touch_logs_in_with_es256_and_eddsa_and_the_counter_is_kept_by_root() {
    for alg in [Alg::Es256, Alg::Eddsa] {
        let mut h = Harness::new();
        let mut device = SoftAuthenticator::new(Behaviour::random());
        let credential = enroll_key(&mut h, "alice", &mut device, alg, true);
        let finished = attach(&mut h, SoftKeys::new(device));
        let mut session = local_session("alice", vec![Expect::info(TOUCH_CUE)]);
        assert_eq!(h.login(&mut session, &[RP_ARG]), PamCode::Success);
        h.log.assert_single(
            Severity::Info,
            &[
                "second factor accepted",
                "user=alice",
                "method=security-key",
                "key=usb",
                "tty=tty1",
            ],
        );
        assert!(finished.get() >= 1, "the helper was not ended");
        let state = h.state("alice");
        assert_eq!(state.fido2_counter(&credential.fingerprint()), Some(2));
        assert_eq!(state.last_success_method, Some(Method::SecurityKey));
        // Again: the counter grows.
        h.log.clear();
        let mut session = local_session("alice", vec![Expect::info(TOUCH_CUE)]);
        assert_eq!(h.login(&mut session, &[RP_ARG]), PamCode::Success);
        assert_eq!(
            h.state("alice").fido2_counter(&credential.fingerprint()),
            Some(3)
        );
    }
}

fn refused_without_code_prompt(h: &mut Harness, expected_log: &[&str]) {
    let mut session = local_session(
        "alice",
        vec![
            Expect::info(TOUCH_CUE),
            Expect::Error("Security key refused.".into()),
        ],
    );
    assert_eq!(h.login(&mut session, &[RP_ARG]), PamCode::AuthError);
    let mut parts = vec![
        "second factor refused",
        "security key assertion rejected",
        "user=alice",
    ];
    parts.extend_from_slice(expected_log);
    let lines: Vec<&(Severity, String)> = h.log.lines.iter().collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    for part in parts {
        assert!(
            lines[0].1.contains(part),
            "{part:?} missing from {:?}",
            lines[0].1
        );
    }
}

#[test]
fn wrong_relying_party_is_refused() {
    let mut h = Harness::new();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    enroll_key(&mut h, "alice", &mut device, Alg::Es256, true);
    device.behaviour.sign_rp_id = Some("pam://evil".into());
    attach(&mut h, SoftKeys::new(device));
    refused_without_code_prompt(&mut h, &["another relying party"]);
}

#[test]
fn missing_user_presence_is_refused() {
    let mut h = Harness::new();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    enroll_key(&mut h, "alice", &mut device, Alg::Eddsa, true);
    device.behaviour.user_present = false;
    attach(&mut h, SoftKeys::new(device));
    refused_without_code_prompt(&mut h, &["user presence"]);
}

#[test]
fn tampered_signature_is_refused() {
    let mut h = Harness::new();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    enroll_key(&mut h, "alice", &mut device, Alg::Es256, true);
    device.behaviour.tamper_signature = true;
    attach(&mut h, SoftKeys::new(device));
    refused_without_code_prompt(&mut h, &["signature does not verify"]);
}

#[test]
fn counter_regression_is_refused_as_a_possible_clone() {
    let mut h = Harness::new();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    let credential = enroll_key(&mut h, "alice", &mut device, Alg::Es256, true);
    let store = StateStore::new(h.state_dir());
    {
        let mut locked = store.lock("alice", euid(), None).unwrap();
        locked
            .state
            .record_fido2_counter(&credential.fingerprint(), 500, NOW - 10);
        locked.save().unwrap();
    }
    attach(&mut h, SoftKeys::new(device));
    refused_without_code_prompt(&mut h, &["did not increase", "possible cloned", "key=usb"]);
    assert_eq!(h.log.lines[0].0, Severity::Error);
    // The stored counter is not lowered by the refused assertion.
    assert_eq!(
        h.state("alice").fido2_counter(&credential.fingerprint()),
        Some(500)
    );
}

#[test]
fn user_verification_with_a_pin_and_without() {
    // Policy requires UV, the key has a PIN: asked without echo, then touch.
    let mut h = Harness::new();
    let mut device = SoftAuthenticator::new(Behaviour {
        pin: Some("4711".into()),
        ..Behaviour::random()
    });
    enroll_key(&mut h, "alice", &mut device, Alg::Es256, true);
    attach(&mut h, SoftKeys::new(device.clone()));
    let mut session = local_session(
        "alice",
        vec![Expect::prompt(PIN_PROMPT, "4711"), Expect::info(TOUCH_CUE)],
    );
    assert_eq!(
        h.login(&mut session, &[RP_ARG, "fido2_user_verification=true"]),
        PamCode::Success
    );
    assert!(h.log.lines[0].1.contains("uv=yes"), "{:?}", h.log.lines);
    h.log.assert_never_contains("4711");

    // A key that reports a PIN but signs without UV: refused.
    h.log.clear();
    let mut lying = SoftKeys::new(device);
    lying.ignore_pin = true;
    attach(&mut h, lying);
    let mut session = local_session(
        "alice",
        vec![
            Expect::prompt(PIN_PROMPT, "4711"),
            Expect::info(TOUCH_CUE),
            Expect::Error("Security key refused.".into()),
        ],
    );
    assert_eq!(
        h.login(&mut session, &[RP_ARG, "fido2_user_verification=true"]),
        PamCode::AuthError
    );
    assert!(
        h.log.lines[0].1.contains("user verification required"),
        "{:?}",
        h.log.lines
    );

    // UV required, but the key has neither PIN nor built-in UV: the code.
    let mut h = Harness::new();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    enroll_key(&mut h, "alice", &mut device, Alg::Es256, true);
    attach(&mut h, SoftKeys::new(device));
    let code = totp_code(NOW);
    let mut session = local_session(
        "alice",
        vec![
            Expect::info("Security key not usable (no PIN set); enter a code instead."),
            Expect::prompt(PROMPT, &code),
        ],
    );
    assert_eq!(
        h.login(&mut session, &[RP_ARG, "fido2_user_verification=true"]),
        PamCode::Success
    );
}

fn falls_back_to_the_code(h: &mut Harness, message: &str) {
    let code = totp_code(NOW);
    let mut session = local_session(
        "alice",
        vec![Expect::info(message), Expect::prompt(PROMPT, &code)],
    );
    assert_eq!(h.login(&mut session, &[RP_ARG]), PamCode::Success);
    assert_eq!(h.log.at(Severity::Notice).len(), 1, "{:?}", h.log.lines);
    assert!(h.log.at(Severity::Info)[0].contains("method=totp"));
}

#[test]
fn absent_key_unknown_credential_and_timeout_fall_back_to_the_code() {
    let mut h = Harness::new();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    enroll_key(&mut h, "alice", &mut device, Alg::Es256, true);

    // No key attached.
    falls_back_to_the_code(&mut h, "No security key found; enter a code instead.");
    assert!(h.log.at(Severity::Notice)[0].contains("no security key attached"));

    // A key attached that holds none of the credentials.
    h.log.clear();
    h.now += 60;
    attach(
        &mut h,
        SoftKeys::new(SoftAuthenticator::new(Behaviour::random())),
    );
    let code = totp_code(h.now);
    let mut session = local_session(
        "alice",
        vec![
            Expect::info("No registered security key found; enter a code instead."),
            Expect::prompt(PROMPT, &code),
        ],
    );
    assert_eq!(h.login(&mut session, &[RP_ARG]), PamCode::Success);

    // The key is found but never answers: the deadline passes.
    h.log.clear();
    h.now += 60;
    let mut hanging = SoftKeys::new(device);
    hanging.hang = true;
    let finished = attach(&mut h, hanging);
    let code = totp_code(h.now);
    let mut session = local_session(
        "alice",
        vec![
            Expect::info(TOUCH_CUE),
            Expect::info("Security key not touched in time; enter a code instead."),
            Expect::prompt(PROMPT, &code),
        ],
    );
    assert_eq!(h.login(&mut session, &[RP_ARG]), PamCode::Success);
    assert!(finished.get() >= 1);
    assert!(h.log.at(Severity::Notice)[0].contains("no answer from the security key in time"));
}

#[test]
fn remote_logins_do_not_use_keys_unless_configured() {
    let mut h = Harness::new();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    enroll_key(&mut h, "alice", &mut device, Alg::Es256, true);
    attach(&mut h, SoftKeys::new(device));
    let code = totp_code(NOW);
    // The default session is sshd with PAM_RHOST: straight to the prompt.
    let mut session = ScriptedSession::new("alice", vec![Expect::prompt(PROMPT, &code)]);
    assert_eq!(h.login(&mut session, &[RP_ARG]), PamCode::Success);
    h.log.clear();
    let mut session = ScriptedSession::new("alice", vec![Expect::info(TOUCH_CUE)]);
    assert_eq!(
        h.login(&mut session, &[RP_ARG, "fido2_remote=true"]),
        PamCode::Success
    );
}

#[test]
fn required_keys_and_key_only_users_do_not_fall_back() {
    let mut h = Harness::new();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    enroll_key(&mut h, "alice", &mut device, Alg::Es256, true);
    let mut session = local_session(
        "alice",
        vec![Expect::Error("No security key found.".into())],
    );
    assert_eq!(
        h.login(&mut session, &[RP_ARG, "fido2=required"]),
        PamCode::AuthError
    );
    assert!(h.log.at(Severity::Warning)[0].contains("fido2 = required"));

    // A remote login cannot satisfy "required".
    h.log.clear();
    let mut session = ScriptedSession::new("alice", vec![]);
    assert_eq!(
        h.login(&mut session, &[RP_ARG, "fido2=required"]),
        PamCode::AuthError
    );

    // Only a key enrolled, and it is absent.
    let mut h = Harness::new();
    enroll_key(&mut h, "bob", &mut device, Alg::Eddsa, false);
    let mut session =
        ScriptedSession::new("bob", vec![Expect::Error("No security key found.".into())]);
    session.remote_host = None;
    assert_eq!(h.login(&mut session, &[RP_ARG]), PamCode::AuthError);
    assert!(h.log.at(Severity::Warning)[0].contains("no code method enrolled"));

    // With keys off, a key-only user counts as not enrolled.
    h.log.clear();
    let mut session = ScriptedSession::new("bob", vec![]);
    assert_eq!(
        h.login(&mut session, &[RP_ARG, "fido2=off", "nullok"]),
        PamCode::Ignore
    );
}

#[test]
fn keys_of_another_relying_party_are_not_tried() {
    let mut h = Harness::new();
    let mut device = SoftAuthenticator::new(Behaviour::random());
    enroll_key(&mut h, "alice", &mut device, Alg::Es256, true);
    attach(&mut h, SoftKeys::new(device));
    let code = totp_code(NOW);
    let mut session = local_session("alice", vec![Expect::prompt(PROMPT, &code)]);
    assert_eq!(
        h.login(&mut session, &["fido2_rp_id=pam://renamed-host"]),
        PamCode::Success
    );
}
