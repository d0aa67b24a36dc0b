//! RFC 6238 time-based one-time passwords: code generation through `totp-rs`,
//! verification in a small window with replay protection.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::TOTP;
use zeroize::Zeroizing;

use crate::secret::SecretBytes;

/// Largest accepted verification window, in steps each side of the current one.
/// A wider window lets more codes through per guess; see docs/security.md,
/// "Guesses a day, by stack".
pub const MAX_WINDOW: u8 = 4;
/// Shortest secret accepted (80 bits, the size google-authenticator writes).
pub const MIN_SECRET_BYTES: usize = 10;
/// Length of secrets this project generates (160 bits, RFC 4226 §4 recommendation).
pub const GENERATED_SECRET_BYTES: usize = 20;
/// Accepted TOTP periods in seconds.
pub const PERIOD_RANGE: std::ops::RangeInclusive<u64> = 15..=300;
/// Accepted code lengths.
pub const DIGITS_RANGE: std::ops::RangeInclusive<u8> = 6..=8;

/// The HMAC hash of a TOTP enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Algorithm {
    /// HMAC-SHA1 (what every authenticator app supports)
    #[default]
    SHA1,
    /// HMAC-SHA256
    SHA256,
    /// HMAC-SHA512
    SHA512,
}

impl Algorithm {
    /// Name as written in otpauth URIs and in the enrollment file.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::SHA1 => "SHA1",
            Algorithm::SHA256 => "SHA256",
            Algorithm::SHA512 => "SHA512",
        }
    }

    fn to_totp_rs(self) -> totp_rs::Algorithm {
        match self {
            Algorithm::SHA1 => totp_rs::Algorithm::SHA1,
            Algorithm::SHA256 => totp_rs::Algorithm::SHA256,
            Algorithm::SHA512 => totp_rs::Algorithm::SHA512,
        }
    }
}

/// Everything needed to compute a user's codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpParams {
    /// The shared secret.
    pub secret: SecretBytes,
    /// HMAC hash.
    pub algorithm: Algorithm,
    /// Code length (6 to 8).
    pub digits: u8,
    /// Step length in seconds.
    pub period: u64,
}

/// The outcome of checking a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    /// The code matches this time step, which had not been used before.
    Accepted {
        /// The time step (unix time / period) the code belongs to.
        step: u64,
    },
    /// The code matches a step that was accepted before.
    Replayed {
        /// The time step the code belongs to.
        step: u64,
    },
    /// The code matches no step in the window.
    Rejected,
}

impl TotpParams {
    fn generator(&self) -> TOTP {
        // new_unchecked: lengths and ranges are validated when the enrollment
        // is parsed (MIN_SECRET_BYTES, DIGITS_RANGE, PERIOD_RANGE); the checked
        // constructor would refuse the 80-bit secrets other tools write.
        TOTP::new_unchecked(
            self.algorithm.to_totp_rs(),
            usize::from(self.digits),
            0,
            self.period,
            self.secret.expose().to_vec(),
        )
    }

    /// The code for the step containing unix time `unix_time`.
    pub fn code_at(&self, unix_time: u64) -> Zeroizing<String> {
        Zeroizing::new(self.generator().generate(unix_time))
    }

    /// The time step containing `unix_time`.
    pub fn step_of(&self, unix_time: u64) -> u64 {
        unix_time / self.period
    }

    /// True when `input` has the shape of a code: exactly `digits` ASCII digits.
    pub fn looks_like_code(&self, input: &str) -> bool {
        input.len() == usize::from(self.digits) && input.bytes().all(|b| b.is_ascii_digit())
    }

    /// A fingerprint of the secret and the parameters (32 hex digits of a
    /// domain-separated SHA-256): the root-owned state keeps replay
    /// protection per fingerprint, so a new secret or a new period starts
    /// afresh while the steps of an old one stay used. It reveals nothing of
    /// the 160-bit secret.
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(b"pam_twofactor totp fingerprint v1\0");
        hash.update(self.algorithm.name().as_bytes());
        hash.update([0, self.digits]);
        hash.update(self.period.to_be_bytes());
        hash.update(self.secret.expose());
        hex::encode(&hash.finalize()[..16])
    }

    /// Check `code` against the steps `window` either side of `now`; a
    /// match at or before `last_accepted_step` is a replay.
    pub fn verify(
        &self,
        code: &str,
        now: u64,
        window: u8,
        last_accepted_step: Option<u64>,
    ) -> TotpCheck {
        self.verify_unused(code, now, window, |step| {
            last_accepted_step.is_some_and(|used| step <= used)
        })
    }

    /// Check `code` against the steps `window` either side of `now`.
    ///
    /// Every step of the window is computed and compared in constant time, so
    /// the time taken does not tell which step matched. A match of a step
    /// that `is_used` says was accepted before is a replay: each step is
    /// accepted once.
    pub fn verify_unused(
        &self,
        code: &str,
        now: u64,
        window: u8,
        is_used: impl Fn(u64) -> bool,
    ) -> TotpCheck {
        if !self.looks_like_code(code) {
            return TotpCheck::Rejected;
        }
        let generator = self.generator();
        let current = self.step_of(now);
        let window = u64::from(window.min(MAX_WINDOW));
        let first = current.saturating_sub(window);
        let last = current.saturating_add(window);
        let mut fresh_match: Option<u64> = None;
        let mut replayed_match: Option<u64> = None;
        for step in first..=last {
            let Some(step_time) = step.checked_mul(self.period) else {
                continue;
            };
            let expected = Zeroizing::new(generator.generate(step_time));
            let matches: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
            if matches {
                if is_used(step) {
                    replayed_match.get_or_insert(step);
                } else if fresh_match.is_none() {
                    fresh_match = Some(step);
                }
            }
        }
        match (fresh_match, replayed_match) {
            (Some(step), _) => TotpCheck::Accepted { step },
            (None, Some(step)) => TotpCheck::Replayed { step },
            (None, None) => TotpCheck::Rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(secret: &[u8], algorithm: Algorithm, digits: u8, period: u64) -> TotpParams {
        TotpParams {
            secret: SecretBytes::new(secret.to_vec()),
            algorithm,
            digits,
            period,
        }
    }

    fn sha1_params() -> TotpParams {
        params(b"12345678901234567890", Algorithm::SHA1, 6, 30)
    }

    #[test]
    fn accepts_current_step_and_reports_it() {
        let p = sha1_params();
        let code = p.code_at(90_000);
        assert_eq!(
            p.verify(&code, 90_000, 1, None),
            TotpCheck::Accepted { step: 3000 }
        );
    }

    #[test]
    fn window_edges() {
        let p = sha1_params();
        let now = 90_000;
        for (offset, expected_ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)]
        {
            let t = (now as i64 + offset * 30) as u64;
            let code = p.code_at(t);
            let result = p.verify(&code, now, 1, None);
            assert_eq!(
                matches!(result, TotpCheck::Accepted { .. }),
                expected_ok,
                "offset {offset}: {result:?}"
            );
        }
    }

    #[test]
    fn window_is_capped() {
        let p = sha1_params();
        let code = p.code_at(90_000 - 30 * 5);
        assert_eq!(p.verify(&code, 90_000, 200, None), TotpCheck::Rejected);
        let code = p.code_at(90_000 - 30 * 4);
        assert!(matches!(
            p.verify(&code, 90_000, 200, None),
            TotpCheck::Accepted { .. }
        ));
    }

    #[test]
    fn replay_of_same_or_older_step_is_refused() {
        let p = sha1_params();
        let code = p.code_at(90_000);
        assert_eq!(
            p.verify(&code, 90_000, 1, Some(3000)),
            TotpCheck::Replayed { step: 3000 }
        );
        assert_eq!(
            p.verify(&code, 90_000, 1, Some(3001)),
            TotpCheck::Replayed { step: 3000 }
        );
        assert_eq!(
            p.verify(&code, 90_000, 1, Some(2999)),
            TotpCheck::Accepted { step: 3000 }
        );
    }

    #[test]
    fn malformed_input_is_rejected() {
        let p = sha1_params();
        let code = p.code_at(90_000);
        for bad in ["", "12345", "1234567", "12a456", " 123456", "１２３４５６"] {
            assert_eq!(
                p.verify(bad, 90_000, 1, None),
                TotpCheck::Rejected,
                "{bad:?}"
            );
        }
        let with_space = format!("{} ", code.as_str());
        assert_eq!(p.verify(&with_space, 90_000, 1, None), TotpCheck::Rejected);
    }

    #[test]
    fn step_zero_window_does_not_underflow() {
        let p = sha1_params();
        let code = p.code_at(0);
        assert_eq!(p.verify(&code, 0, 1, None), TotpCheck::Accepted { step: 0 });
    }

    #[test]
    fn fingerprints_follow_secret_and_period() {
        let p = sha1_params();
        assert_eq!(p.fingerprint(), sha1_params().fingerprint());
        assert_eq!(p.fingerprint().len(), 32);
        let other_period = params(b"12345678901234567890", Algorithm::SHA1, 6, 60);
        let other_secret = params(b"12345678901234567891", Algorithm::SHA1, 6, 30);
        let other_digits = params(b"12345678901234567890", Algorithm::SHA1, 8, 30);
        for other in [other_period, other_secret, other_digits] {
            assert_ne!(other.fingerprint(), p.fingerprint());
        }
        assert!(!p.fingerprint().contains("3132333435"));
    }
}
