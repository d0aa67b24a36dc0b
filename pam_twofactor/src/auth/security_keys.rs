//! The security-key step of the login flow: whether it applies, finding the
//! key, the PIN, the touch, and the verification under the user's state
//! lock. Called by `auth::Login::run` before the code prompt.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use twofactor_core::config::{Config, Fido2Policy};
use twofactor_core::enrollment::Enrollment;
use twofactor_core::fido2::helper::FailureKind;
use twofactor_core::fido2::{
    client_data_hash, new_challenge, verify_assertion, Credential, Expectation, Refusal,
};
use twofactor_core::state::Method;

use super::login::{LogContext, Login, Outcome};
use crate::args::{ModuleArgs, PassMode};
use crate::fido2_device::DeviceError;
use crate::log::{sanitize, Severity};
use crate::session::Session;
use crate::system::Account;

/// The prompt for a security key's PIN (never echoed).
pub const PIN_PROMPT: &str = "Security key PIN: ";
/// The cue before the touch.
pub const TOUCH_CUE: &str = "Touch your security key.";

/// What the security-key step decided.
pub(crate) enum KeyStep {
    /// The login ends here with this outcome.
    Done(Outcome),
    /// Go on to the code prompt.
    AskCode,
}

/// True when `enrollment` offers a method this configuration accepts.
pub fn has_usable_method(config: &Config, enrollment: &Enrollment) -> bool {
    enrollment.has_code_method()
        || (config.fido2 != Fido2Policy::Off && !enrollment.fido2.is_empty())
}

impl Login<'_> {
    /// Try the user's security key, if this login can use one.
    pub(crate) fn security_key_step(
        &mut self,
        session: &mut dyn Session,
        args: &ModuleArgs,
        config: &Config,
        account: &Account,
        enrollment: &Enrollment,
        context: &LogContext,
    ) -> KeyStep {
        if config.fido2 == Fido2Policy::Off || enrollment.fido2.is_empty() {
            return KeyStep::AskCode;
        }
        let required = config.fido2 == Fido2Policy::Required;
        let rp_id = twofactor_core::fido2::relying_party(config);
        let credentials: Vec<Credential> = enrollment
            .fido2
            .iter()
            .filter(|c| c.rp_id == rp_id)
            .cloned()
            .collect();
        let why_not = if context.host().is_some() && !config.fido2_remote {
            Some("remote login (fido2_remote = false)".to_string())
        } else if args.forward_pass || args.pass_mode == PassMode::UseFirstPass {
            Some("the code is taken from the password (forward_pass/use_first_pass)".to_string())
        } else if credentials.is_empty() {
            Some(format!(
                "no registered key is for relying party {}",
                sanitize(&rp_id)
            ))
        } else {
            None
        };
        if let Some(why) = why_not {
            if required {
                self.log.record(
                    Severity::Warning,
                    &format!(
                        "second factor refused: a security key is required (fido2 = required) but cannot be used: {why}: {}",
                        context.fields()
                    ),
                );
                return KeyStep::Done(Outcome::Refused);
            }
            return KeyStep::AskCode;
        }
        match self.use_security_key(session, config, account, &credentials, &rp_id, context) {
            Attempt::Finished(outcome) => KeyStep::Done(outcome),
            Attempt::NotUsed { log, tell } => {
                self.log.record(
                    Severity::Notice,
                    &format!("security key not used: {log}: {}", context.fields()),
                );
                if required {
                    self.log.record(
                        Severity::Warning,
                        &format!(
                            "second factor refused: a security key is required (fido2 = required): {}",
                            context.fields()
                        ),
                    );
                    self.tell(session, &format!("{tell}."));
                    return KeyStep::Done(Outcome::Refused);
                }
                if !enrollment.has_code_method() {
                    self.log.record(
                        Severity::Warning,
                        &format!(
                            "second factor refused: no code method enrolled to fall back to: {}",
                            context.fields()
                        ),
                    );
                    self.tell(session, &format!("{tell}."));
                    return KeyStep::Done(Outcome::Refused);
                }
                if !self.silent {
                    session.info(&format!("{tell}; enter a code instead."));
                }
                KeyStep::AskCode
            }
        }
    }

    fn use_security_key(
        &mut self,
        session: &mut dyn Session,
        config: &Config,
        account: &Account,
        credentials: &[Credential],
        rp_id: &str,
        context: &LogContext,
    ) -> Attempt {
        let timeout = Duration::from_secs(config.fido2_timeout);
        let ids: Vec<Vec<u8>> = credentials
            .iter()
            .map(|c| c.credential_id.clone())
            .collect();
        let helper = Path::new(&config.fido2_helper);
        let found = match self
            .keys
            .find(helper, rp_id, &ids, Instant::now() + timeout)
        {
            Ok(found) => found,
            Err(e) => {
                self.keys.finish();
                return not_used(&e);
            }
        };
        let credential = &credentials[found.credential_index];
        let need_uv = config.fido2_user_verification || credential.user_verification;
        let mut pin = None;
        let mut builtin_uv = false;
        if need_uv {
            if found.pin_set {
                match session.prompt_hidden(PIN_PROMPT) {
                    Ok(answer) => pin = Some(answer),
                    Err(_) => {
                        self.keys.finish();
                        self.log.record(
                            Severity::Warning,
                            &format!(
                                "no answer to the PIN prompt (conversation failed): {}",
                                context.fields()
                            ),
                        );
                        return Attempt::Finished(Outcome::NoAnswer);
                    }
                }
            } else if found.uv_builtin {
                builtin_uv = true;
            } else {
                self.keys.finish();
                return Attempt::NotUsed {
                    log: format!(
                        "user verification is required but key {} has no PIN and no built-in verification",
                        sanitize(&credential.name)
                    ),
                    tell: "Security key not usable (no PIN set)".into(),
                };
            }
        }
        if !self.silent {
            session.info(TOUCH_CUE);
        }
        let challenge = new_challenge();
        let result = self.keys.assert(
            &challenge,
            pin.as_ref().map(|p| p.expose()),
            builtin_uv,
            Instant::now() + timeout,
        );
        drop(pin);
        self.keys.finish();
        let assertion = match result {
            Ok(assertion) => assertion,
            Err(e) => return not_used(&e),
        };
        let outcome = self.check_assertion(
            config,
            account,
            credentials,
            &assertion,
            rp_id,
            &challenge,
            context,
            &found.device,
        );
        if outcome == Outcome::Refused {
            self.tell(session, "Security key refused.");
        }
        Attempt::Finished(outcome)
    }

    /// Verify under the user's state lock, so the counter check and its
    /// update are one step even with concurrent logins.
    #[allow(clippy::too_many_arguments)]
    fn check_assertion(
        &mut self,
        config: &Config,
        account: &Account,
        credentials: &[Credential],
        assertion: &twofactor_core::fido2::Assertion,
        rp_id: &str,
        challenge: &[u8],
        context: &LogContext,
        device: &str,
    ) -> Outcome {
        let mut locked = match self.lock_state(config, account) {
            Ok(locked) => locked,
            Err(e) => {
                self.state_unusable(&e, context);
                return Outcome::Unavailable;
            }
        };
        if let Some(why) = locked.fallback.clone() {
            self.log_fallback(config, &why, context);
        }
        let now = locked.now;
        let signer = credentials
            .iter()
            .find(|c| c.credential_id == assertion.credential_id);
        let stored = signer.map_or(0, |c| {
            locked
                .state
                .fido2_counter(&c.fingerprint())
                .unwrap_or(0)
                .max(c.sign_count)
        });
        let expected = Expectation {
            rp_id,
            client_data_hash: client_data_hash(challenge),
            user_verification: config.fido2_user_verification,
            stored_counter: stored,
        };
        let key_fields = |c: Option<&Credential>| match c {
            Some(c) => format!(
                " key={} credential={} device={}",
                sanitize(&c.name),
                &c.fingerprint()[..16],
                sanitize(device)
            ),
            None => format!(" device={}", sanitize(device)),
        };
        match verify_assertion(credentials, assertion, &expected) {
            Ok(verified) => {
                let credential = &credentials[verified.index];
                locked
                    .state
                    .record_fido2_counter(&credential.fingerprint(), verified.counter, now);
                locked.state.record_success(Method::SecurityKey, now);
                if config.grace_period > 0 {
                    if let Some(origin) = context.origin() {
                        locked.state.record_grace(origin, now);
                    }
                }
                if let Err(e) = locked.save() {
                    self.log.record(
                        Severity::Error,
                        &format!(
                            "second factor refused: login state unusable: {e}: {}",
                            context.fields()
                        ),
                    );
                    return Outcome::Unavailable;
                }
                self.log.record(
                    Severity::Info,
                    &format!(
                        "second factor accepted: {} method=security-key{}{}",
                        context.fields(),
                        key_fields(Some(credential)),
                        if verified.user_verified {
                            " uv=yes"
                        } else {
                            ""
                        }
                    ),
                );
                Outcome::Verified
            }
            Err(refusal) => {
                let severity = match refusal {
                    Refusal::CounterRegression { .. } => Severity::Error,
                    _ => Severity::Warning,
                };
                let clone = if matches!(refusal, Refusal::CounterRegression { .. }) {
                    " (possible cloned security key)"
                } else {
                    ""
                };
                self.log.record(
                    severity,
                    &format!(
                        "second factor refused: security key assertion rejected: {refusal}{clone}: {} method=security-key{}",
                        context.fields(),
                        key_fields(signer)
                    ),
                );
                Outcome::Refused
            }
        }
    }
}

/// Why a key was not used, for the log and for the user.
pub(crate) enum Attempt {
    Finished(Outcome),
    NotUsed { log: String, tell: String },
}

fn not_used(error: &DeviceError) -> Attempt {
    let (log, tell) = match error {
        DeviceError::NotFound { devices: 0 } => (
            "no security key attached".to_string(),
            "No security key found",
        ),
        DeviceError::NotFound { devices } => (
            format!("none of the {devices} attached security keys holds a registered credential"),
            "No registered security key found",
        ),
        DeviceError::Timeout => (
            "no answer from the security key in time (helper stopped)".to_string(),
            "Security key not touched in time",
        ),
        DeviceError::Refused(FailureKind::PinInvalid, _) => {
            ("wrong PIN".to_string(), "Wrong security key PIN")
        }
        DeviceError::Refused(FailureKind::PinBlocked, _) => (
            "the key's PIN is blocked".to_string(),
            "Security key PIN blocked",
        ),
        DeviceError::Refused(FailureKind::NotTouched, message) => (
            format!("not touched: {}", sanitize(message)),
            "Security key not touched in time",
        ),
        DeviceError::Refused(kind, message) => (
            format!("{kind:?}: {}", sanitize(message)),
            "Security key not usable",
        ),
        DeviceError::Failed(message) => (
            format!("helper failed: {}", sanitize(message)),
            "Security key not usable",
        ),
    };
    Attempt::NotUsed {
        log,
        tell: tell.to_string(),
    }
}
