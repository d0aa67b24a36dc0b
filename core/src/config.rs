//! The system configuration (`/etc/security/pam_twofactor.toml`) and the
//! module-argument overrides that share its keys.

use serde::Deserialize;

use crate::enrollment::DEFAULT_ENROLLMENT_PATH;
use crate::error::{redact_toml_error, Error};
use crate::state::DEFAULT_STATE_DIR;
use crate::totp::{Algorithm, DIGITS_RANGE, MAX_WINDOW, PERIOD_RANGE};

/// Default location of the system configuration.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/security/pam_twofactor.toml";
/// Largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// Default prompt.
pub const DEFAULT_PROMPT: &str = "Verification code: ";
/// Default prompt when the password and the code are asked together.
pub const DEFAULT_FORWARD_PASS_PROMPT: &str = "Password & verification code: ";
const MAX_PROMPT_CHARS: usize = 200;

/// What happens to a user who has not enrolled a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnenrolledPolicy {
    /// Ask for a code anyway, and fail (the default: no factor, no login).
    Fail,
    /// Return PAM_IGNORE without asking, so the rest of the stack decides
    /// (google-authenticator's `nullok`, for rolling out gradually).
    Ignore,
}

/// The system configuration, validated. Every key has a safe default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where a user's enrollment lives; `%u` user name, `%h` home directory.
    pub enrollment_path: String,
    /// Root-owned directory of the login state.
    pub state_dir: String,
    /// The prompt for the code.
    pub prompt: String,
    /// Steps accepted either side of the current one (0 to 4).
    pub window: u8,
    /// Users without an enrollment: "fail" or "ignore".
    pub unenrolled: UnenrolledPolicy,
    /// Issuer shown in authenticator apps; empty means the host name.
    pub issuer: String,
    /// Hash for new TOTP enrollments.
    pub totp_algorithm: Algorithm,
    /// Digits of new TOTP enrollments.
    pub totp_digits: u8,
    /// Period of new TOTP enrollments, in seconds.
    pub totp_period: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enrollment_path: DEFAULT_ENROLLMENT_PATH.to_string(),
            state_dir: DEFAULT_STATE_DIR.to_string(),
            prompt: DEFAULT_PROMPT.to_string(),
            window: 1,
            unenrolled: UnenrolledPolicy::Fail,
            issuer: String::new(),
            totp_algorithm: Algorithm::SHA1,
            totp_digits: 6,
            totp_period: 30,
        }
    }
}

impl Config {
    /// Parse and validate a configuration document; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        let config: Config = toml::from_str(text).map_err(|e| Error::Parse {
            what: format!("configuration {origin}"),
            why: redact_toml_error(&e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Check ranges and shapes of every value.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::Config(why));
        if self.window > MAX_WINDOW {
            return bad(format!(
                "window = {} is too wide (at most {MAX_WINDOW})",
                self.window
            ));
        }
        if !DIGITS_RANGE.contains(&self.totp_digits) {
            return bad(format!("totp_digits = {} (6 to 8)", self.totp_digits));
        }
        if !PERIOD_RANGE.contains(&self.totp_period) {
            return bad(format!("totp_period = {} (15 to 300)", self.totp_period));
        }
        if self.prompt.is_empty() || self.prompt.chars().count() > MAX_PROMPT_CHARS {
            return bad(format!("prompt must be 1 to {MAX_PROMPT_CHARS} characters"));
        }
        if self.prompt.chars().any(|c| c.is_control()) {
            return bad("prompt must not contain control characters".into());
        }
        if !self.state_dir.starts_with('/') {
            return bad(format!("state_dir = {:?} is not absolute", self.state_dir));
        }
        if !(self.enrollment_path.starts_with('/') || self.enrollment_path.starts_with("%h")) {
            return bad(format!(
                "enrollment_path = {:?} must be absolute or start with %h",
                self.enrollment_path
            ));
        }
        Ok(())
    }

    /// Apply one `key=value` override (a module argument). Unknown keys and
    /// unparsable values are errors.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let invalid = || Error::Config(format!("invalid value for {key}"));
        match key {
            "enrollment_path" => self.enrollment_path = value.to_string(),
            "state_dir" => self.state_dir = value.to_string(),
            "prompt" => self.prompt = value.to_string(),
            "window" => self.window = value.parse().map_err(|_| invalid())?,
            "unenrolled" => {
                self.unenrolled = match value {
                    "fail" => UnenrolledPolicy::Fail,
                    "ignore" => UnenrolledPolicy::Ignore,
                    _ => return Err(invalid()),
                }
            }
            _ => return Err(Error::Config(format!("unknown option {key:?}"))),
        }
        self.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_document_gives_defaults() {
        assert_eq!(Config::parse("", "t").unwrap(), Config::default());
    }

    #[test]
    fn shipped_default_config_parses_to_defaults() {
        let shipped = include_str!("../../config/pam_twofactor.toml");
        assert_eq!(
            Config::parse(shipped, "shipped").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        for (text, expected) in [
            ("windw = 1", "unknown field"),
            ("window = 5", "too wide"),
            ("window = -1", "invalid"),
            ("unenrolled = \"maybe\"", "unknown variant"),
            ("prompt = \"\"", "prompt must be"),
            ("state_dir = \"relative\"", "not absolute"),
            ("enrollment_path = \"x/%u\"", "must be absolute"),
            ("totp_digits = 5", "totp_digits"),
        ] {
            let err = Config::parse(text, "t").unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn overrides() {
        let mut c = Config::default();
        c.set("window", "2").unwrap();
        c.set("unenrolled", "ignore").unwrap();
        c.set("prompt", "Code: ").unwrap();
        assert_eq!(c.window, 2);
        assert_eq!(c.unenrolled, UnenrolledPolicy::Ignore);
        assert!(c.set("window", "9").is_err());
        assert!(c.set("bogus", "1").is_err());
        assert!(c.set("unenrolled", "yes").is_err());
    }
}
