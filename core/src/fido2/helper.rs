//! The protocol between the PAM module and its FIDO2 helper process
//! (`pam_twofactor-fido2`): one JSON object per line, each way.
//!
//! Why a process: the HID transport (ctap-hid-fido2 over hidapi) blocks
//! without a timeout, prints keep-alive messages, and panics in places. In
//! a child process none of that can reach the login: its output goes to a
//! pipe we parse, a panic ends only the child, and at the deadline the
//! module kills it (SIGKILL) and reaps it, so nothing of it outlives
//! `pam_sm_authenticate` — no thread, no process. It also keeps hidapi and
//! libudev out of the address space of sshd, login and su.
//!
//! A session: the module sends [`Request::Find`]; the helper answers
//! [`Response::Found`] or [`Response::NotFound`]; then (after asking for a
//! PIN if needed and cueing the touch) [`Request::Assert`], answered by
//! [`Response::Assertion`] or [`Response::Failed`]. Then the module closes
//! the helper's standard input and reaps it.

use serde::{Deserialize, Serialize};

use super::{decode_b64, encode_b64, Assertion};

/// Longest line either side sends.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// What the module asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Find an attached key holding one of the credentials, without a touch
    /// (CTAP2 getAssertion with `up = false`).
    Find {
        /// Relying-party id.
        rp_id: String,
        /// The user's credential ids, base64url.
        credential_ids: Vec<String>,
    },
    /// Ask the key found for an assertion; the user touches it.
    Assert {
        /// The challenge, base64url (the key gets its SHA-256).
        challenge: String,
        /// The PIN, when the module asked for one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin: Option<String>,
        /// Ask for built-in user verification (no PIN).
        #[serde(default)]
        user_verification: bool,
    },
}

/// What the helper answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Response {
    /// A key holds one of the credentials.
    Found {
        /// The device path (for logs).
        device: String,
        /// The device's product name (for logs).
        #[serde(default)]
        product: String,
        /// Index into the `credential_ids` of the request.
        credential_index: usize,
        /// The key has a PIN set.
        #[serde(default)]
        pin_set: bool,
        /// The key has built-in user verification (fingerprint...).
        #[serde(default)]
        uv_builtin: bool,
    },
    /// No key holds any of the credentials.
    NotFound {
        /// How many FIDO devices were attached.
        devices: usize,
    },
    /// The assertion.
    Assertion {
        /// base64url
        credential_id: String,
        /// base64url
        auth_data: String,
        /// base64url
        signature: String,
    },
    /// The operation failed.
    Failed {
        /// What kind of failure.
        kind: FailureKind,
        /// A message for the log (never a PIN).
        message: String,
    },
}

/// Kinds of helper failures the module treats differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// Wrong PIN.
    PinInvalid,
    /// PIN blocked (too many wrong PINs).
    PinBlocked,
    /// The key needs a PIN and none was given.
    PinRequired,
    /// The key was not touched in time (its own timeout) or the operation
    /// was cancelled.
    NotTouched,
    /// The HID layer or the key failed.
    Device,
    /// The request did not make sense.
    Protocol,
}

impl Response {
    /// An assertion response for `assertion`.
    pub fn assertion(assertion: &Assertion) -> Self {
        Response::Assertion {
            credential_id: encode_b64(&assertion.credential_id),
            auth_data: encode_b64(&assertion.auth_data),
            signature: encode_b64(&assertion.signature),
        }
    }

    /// The assertion in an [`Response::Assertion`].
    pub fn decode_assertion(
        credential_id: &str,
        auth_data: &str,
        signature: &str,
    ) -> Result<Assertion, String> {
        Ok(Assertion {
            credential_id: decode_b64(credential_id)?,
            auth_data: decode_b64(auth_data)?,
            signature: decode_b64(signature)?,
        })
    }
}

/// One line of JSON (with the newline).
pub fn encode_line<T: Serialize>(message: &T) -> String {
    let mut line = serde_json::to_string(message).unwrap_or_default();
    line.push('\n');
    line
}

/// Parse one line.
pub fn decode_line<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, String> {
    if line.len() > MAX_LINE_BYTES {
        return Err("line too long".into());
    }
    // serde_json's message quotes the line, which carries the device's
    // answers: kind and position only.
    serde_json::from_str(line.trim_end())
        .map_err(|e| format!("malformed message: {}", crate::error::redact_json_error(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let messages = [
            Request::Find {
                rp_id: "pam://h".into(),
                credential_ids: vec!["AAE".into()],
            },
            Request::Assert {
                challenge: "AA".into(),
                pin: Some("1234".into()),
                user_verification: false,
            },
        ];
        for m in messages {
            let line = encode_line(&m);
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            assert_eq!(decode_line::<Request>(&line).unwrap(), m);
        }
        let r = Response::Failed {
            kind: FailureKind::PinInvalid,
            message: "x".into(),
        };
        assert_eq!(decode_line::<Response>(&encode_line(&r)).unwrap(), r);
        assert!(decode_line::<Response>("{\"status\":\"bogus\"}").is_err());
    }
}
