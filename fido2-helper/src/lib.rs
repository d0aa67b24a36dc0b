//! FIDO2 security keys over USB HID, through `ctap-hid-fido2`, made safe to
//! call: the library's keep-alive and debug output is switched off, its
//! panics (it panics when hidapi cannot initialise, and on malformed
//! answers from a key) are caught and turned into errors, and its
//! attestation verifier (which panics on self attestation) is never called —
//! twofactor-core parses and checks what the key returns.
//!
//! Used by the `twofactor-fido2-helper` process (logins) and by `twofactor
//! fido2 add` (registration). Neither runs inside a PAM host process.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use ctap_hid_fido2::fidokey::{
    CredentialSupportedKeyType, GetAssertionArgsBuilder, MakeCredentialArgsBuilder,
};
use ctap_hid_fido2::{FidoKeyHid, HidParam, LibCfg};
use twofactor_core::fido2::helper::FailureKind;
use twofactor_core::fido2::Assertion;

/// An attached FIDO device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// hidraw path.
    pub path: String,
    /// Product name reported by the device.
    pub product: String,
}

/// What a key says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyInfo {
    /// A PIN is set (clientPin = true).
    pub pin_set: bool,
    /// PINs are supported (clientPin present).
    pub pin_supported: bool,
    /// Built-in user verification (uv = true).
    pub uv_builtin: bool,
    /// EdDSA is among the algorithms it offers.
    pub eddsa: bool,
}

/// A failure, with the kind the PAM module acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What kind.
    pub kind: FailureKind,
    /// For logs and the user.
    pub message: String,
}

impl Failure {
    fn device(message: impl Into<String>) -> Self {
        Failure {
            kind: FailureKind::Device,
            message: message.into(),
        }
    }
}

/// CTAP2_ERR_CREDENTIAL_EXCLUDED
pub const CTAP_CREDENTIAL_EXCLUDED: u8 = 0x19;
/// CTAP2_ERR_NO_CREDENTIALS
pub const CTAP_NO_CREDENTIALS: u8 = 0x2E;

/// The CTAP status code in one of ctap-hid-fido2's error messages ("0x2E
/// CTAP2_ERR_NO_CREDENTIALS ..."), if there is one.
pub fn ctap_status(message: &str) -> Option<u8> {
    let at = message.find("0x")?;
    let code = message.get(at + 2..at + 4)?;
    let after = message.get(at + 4..at + 5).unwrap_or(" ");
    if after != " " {
        return None;
    }
    u8::from_str_radix(code, 16).ok()
}

fn classify(message: String) -> Failure {
    let kind = match ctap_status(&message) {
        Some(0x31) => FailureKind::PinInvalid,
        Some(0x32) | Some(0x34) => FailureKind::PinBlocked,
        Some(0x36) => FailureKind::PinRequired,
        Some(0x2F) | Some(0x2D) | Some(0x27) => FailureKind::NotTouched,
        _ => FailureKind::Device,
    };
    Failure { kind, message }
}

/// Run `f`, turning a panic into a failure.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(_) => Err(Failure::device(format!(
            "{what}: the FIDO library failed (internal panic)"
        ))),
    }
}

fn quiet_config() -> LibCfg {
    let mut cfg = LibCfg::init();
    cfg.enable_log = false;
    cfg.enable_keep_alive_msg = false;
    cfg.keep_alive_msg = String::new();
    cfg.keep_alive_msg_to_stderr = true;
    cfg
}

/// The attached FIDO devices (usage page 0xF1D0).
pub fn attached() -> Result<Vec<Attached>, Failure> {
    guarded("listing devices", || {
        Ok(ctap_hid_fido2::get_fidokey_devices()
            .into_iter()
            .filter_map(|d| match d.param {
                HidParam::Path(path) => Some(Attached {
                    path,
                    product: d.product_string,
                }),
                HidParam::VidPid { .. } => None,
            })
            .collect())
    })
}

/// An open key.
pub struct Key {
    device: FidoKeyHid,
    /// Its path.
    pub path: String,
}

impl Key {
    /// Open the device at `path`.
    pub fn open(path: &str) -> Result<Key, Failure> {
        guarded("opening the device", || {
            let device = FidoKeyHid::new(&[HidParam::Path(path.to_string())], &quiet_config())
                .map_err(|e| Failure::device(format!("cannot open {path}: {e}")))?;
            Ok(Key {
                device,
                path: path.to_string(),
            })
        })
    }

    /// authenticatorGetInfo.
    pub fn info(&self) -> Result<KeyInfo, Failure> {
        guarded("reading the key's information", || {
            let info = self
                .device
                .get_info()
                .map_err(|e| classify(format!("getInfo: {e}")))?;
            let option = |name: &str| {
                info.options
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| *v)
            };
            Ok(KeyInfo {
                pin_set: option("clientPin") == Some(true),
                pin_supported: option("clientPin").is_some(),
                uv_builtin: option("uv") == Some(true),
                eddsa: info.algorithms.iter().any(|(k, v)| k == "alg" && v == "-8"),
            })
        })
    }

    /// Which of `credential_ids` (for `rp_id`) this key holds, without a
    /// touch: getAssertion with `up = false` (as libfido2 and pam_u2f probe).
    pub fn probe(&self, rp_id: &str, credential_ids: &[Vec<u8>]) -> Result<Option<usize>, Failure> {
        guarded("probing the key", || {
            for (index, id) in credential_ids.iter().enumerate() {
                let args = GetAssertionArgsBuilder::new(rp_id, &[0u8; 32])
                    .credential_id(id)
                    .without_pin_and_uv()
                    .without_up()
                    .build();
                match self.device.get_assertion_with_args(&args) {
                    Ok(_) => return Ok(Some(index)),
                    Err(e) => {
                        let message = e.to_string();
                        match ctap_status(&message) {
                            Some(CTAP_NO_CREDENTIALS) => continue,
                            // A key that wants a PIN even to probe still
                            // holds the credential; the assertion will tell.
                            Some(0x36) => return Ok(Some(index)),
                            _ => return Err(classify(format!("probe: {message}"))),
                        }
                    }
                }
            }
            Ok(None)
        })
    }

    /// getAssertion with user presence (the user touches the key).
    pub fn assert(
        &self,
        rp_id: &str,
        challenge: &[u8],
        credential_id: &[u8],
        pin: Option<&str>,
        user_verification: bool,
    ) -> Result<Assertion, Failure> {
        guarded("asking for an assertion", || {
            let mut builder =
                GetAssertionArgsBuilder::new(rp_id, challenge).credential_id(credential_id);
            builder = match pin {
                Some(pin) => builder.pin(pin),
                None if user_verification => builder,
                None => builder.without_pin_and_uv(),
            };
            let args = builder.build();
            let assertions = self
                .device
                .get_assertion_with_args(&args)
                .map_err(|e| classify(format!("getAssertion: {e}")))?;
            let assertion = assertions
                .into_iter()
                .next()
                .ok_or_else(|| Failure::device("the key returned no assertion"))?;
            let credential_id = if assertion.credential_id.is_empty() {
                credential_id.to_vec()
            } else {
                assertion.credential_id
            };
            Ok(Assertion {
                credential_id,
                auth_data: assertion.auth_data,
                signature: assertion.signature,
            })
        })
    }

    /// makeCredential (non-resident): EdDSA when the key offers it, else
    /// ES256. Returns the authenticator data (with the new credential); the
    /// attestation statement is not used.
    pub fn register(
        &self,
        rp_id: &str,
        challenge: &[u8],
        prefer_eddsa: bool,
        pin: Option<&str>,
        user_verification: bool,
        exclude: &[Vec<u8>],
    ) -> Result<Vec<u8>, Failure> {
        guarded("registering", || {
            let mut builder = MakeCredentialArgsBuilder::new(rp_id, challenge);
            if prefer_eddsa {
                builder = builder.key_type(CredentialSupportedKeyType::Ed25519);
            }
            builder = builder.key_type(CredentialSupportedKeyType::Ecdsa256);
            for id in exclude {
                builder = builder.exclude_authenticator(id);
            }
            builder = match pin {
                Some(pin) => builder.pin(pin),
                None if user_verification => builder,
                None => builder.without_pin_and_uv(),
            };
            let args = builder.build();
            let attestation = self.device.make_credential_with_args(&args).map_err(|e| {
                let message = e.to_string();
                if ctap_status(&message) == Some(CTAP_CREDENTIAL_EXCLUDED) {
                    Failure::device("this key is already registered for this user")
                } else {
                    classify(format!("makeCredential: {message}"))
                }
            })?;
            Ok(attestation.auth_data)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_read_from_messages() {
        assert_eq!(
            ctap_status("getAssertion: 0x2E CTAP2_ERR_NO_CREDENTIALS    No valid"),
            Some(0x2E)
        );
        assert_eq!(ctap_status("0x31 CTAP2_ERR_PIN_INVALID"), Some(0x31));
        assert_eq!(ctap_status("no code here"), None);
        assert_eq!(
            classify("0x31 CTAP2_ERR_PIN_INVALID".into()).kind,
            FailureKind::PinInvalid
        );
    }
}
