//! Single-use backup codes.
//!
//! A code is 16 characters of Crockford's base32 alphabet: 80 bits from the
//! OS random generator. Only `SHA-256(domain ‖ salt ‖ code)` with a random
//! 128-bit salt per code is stored, so a leaked enrollment file costs an
//! attacker about 2^79 hash evaluations per code on average: out of reach
//! offline, with no need for a deliberately slow hash on the login path.

use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Characters of a backup code (Crockford's base32: no i, l, o, u).
pub const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters in a code, without separators.
pub const CODE_CHARS: usize = 16;
/// Entropy of one code in bits.
pub const CODE_BITS: usize = CODE_CHARS * 5;
/// How many codes an enrollment gets.
pub const DEFAULT_COUNT: usize = 10;
const SALT_BYTES: usize = 16;
const DOMAIN: &[u8] = b"pam_twofactor backup code v1\0";

/// The stored form of one backup code: salt and salted hash, both hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupCodeHash {
    /// 16 random bytes, hex. Also identifies the code in the login state.
    pub salt: String,
    /// SHA-256 over domain, salt and normalized code, hex.
    pub hash: String,
}

/// The outcome of checking a typed backup code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupCheck {
    /// Matches an unspent code, identified by its salt.
    Accepted {
        /// the code's salt (hex), to record it as spent
        id: String,
    },
    /// Matches a code that was already spent.
    AlreadyUsed,
    /// Matches nothing.
    Rejected,
}

/// A freshly generated code in clear text, with its stored form.
pub struct GeneratedBackupCode {
    /// `xxxx-xxxx-xxxx-xxxx`, shown to the user once.
    pub display: Zeroizing<String>,
    /// What goes into the enrollment file.
    pub stored: BackupCodeHash,
}

/// Normalize typed input: lower case, separators (`-`, space) dropped, and the
/// letters Crockford's alphabet leaves out read as the digits they resemble.
/// Returns `None` unless exactly 16 alphabet characters remain.
pub fn normalize(input: &str) -> Option<Zeroizing<String>> {
    if input.len() > 64 {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(CODE_CHARS));
    for c in input.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_CHARS).then_some(out)
}

fn digest(salt: &[u8], normalized: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(salt);
    hasher.update(normalized.as_bytes());
    hasher.finalize().into()
}

/// Generate `count` new codes from the OS random generator.
pub fn generate(count: usize) -> Vec<GeneratedBackupCode> {
    (0..count).map(|_| generate_one()).collect()
}

fn generate_one() -> GeneratedBackupCode {
    let mut raw = Zeroizing::new([0u8; CODE_CHARS]);
    OsRng.fill_bytes(raw.as_mut());
    // 256 is a multiple of 32, so taking the low five bits is unbiased.
    let normalized: Zeroizing<String> = Zeroizing::new(
        raw.iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
            .collect(),
    );
    let mut salt = [0u8; SALT_BYTES];
    OsRng.fill_bytes(&mut salt);
    let mut display = Zeroizing::new(String::with_capacity(CODE_CHARS + 3));
    for (i, c) in normalized.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            display.push('-');
        }
        display.push(c);
    }
    GeneratedBackupCode {
        display,
        stored: BackupCodeHash {
            salt: hex::encode(salt),
            hash: hex::encode(digest(&salt, &normalized)),
        },
    }
}

impl BackupCodeHash {
    /// Check the stored fields' shape: 16-byte salt, 32-byte hash, hex.
    pub fn validate(&self) -> Result<(), String> {
        let salt = hex::decode(&self.salt).map_err(|_| "backup code salt is not hex")?;
        let hash = hex::decode(&self.hash).map_err(|_| "backup code hash is not hex")?;
        if salt.len() != SALT_BYTES {
            return Err(format!("backup code salt must be {SALT_BYTES} bytes"));
        }
        if hash.len() != 32 {
            return Err("backup code hash must be 32 bytes".into());
        }
        Ok(())
    }

    fn matches(&self, normalized: &str) -> bool {
        let (Ok(salt), Ok(hash)) = (hex::decode(&self.salt), hex::decode(&self.hash)) else {
            return false;
        };
        digest(&salt, normalized).ct_eq(&hash).into()
    }
}

/// Check `input` against every stored code. All codes are hashed and compared
/// whatever the outcome, so timing does not tell which one (if any) matched.
pub fn verify<'a>(
    input: &str,
    codes: &[BackupCodeHash],
    is_spent: impl Fn(&str) -> bool + 'a,
) -> BackupCheck {
    let Some(normalized) = normalize(input) else {
        return BackupCheck::Rejected;
    };
    let mut found: Option<&BackupCodeHash> = None;
    for code in codes {
        if code.matches(&normalized) && found.is_none() {
            found = Some(code);
        }
    }
    match found {
        Some(code) if is_spent(&code.salt) => BackupCheck::AlreadyUsed,
        Some(code) => BackupCheck::Accepted {
            id: code.salt.clone(),
        },
        None => BackupCheck::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_verify_in_any_typing() {
        let codes = generate(3);
        let stored: Vec<_> = codes.iter().map(|c| c.stored.clone()).collect();
        let shown = codes[1].display.as_str();
        assert_eq!(shown.len(), 19);
        let variants = [
            shown.to_string(),
            shown.to_uppercase(),
            shown.replace('-', ""),
            shown.replace('-', " "),
        ];
        for typed in variants {
            assert_eq!(
                verify(&typed, &stored, |_| false),
                BackupCheck::Accepted {
                    id: stored[1].salt.clone()
                },
                "{typed}"
            );
        }
    }

    #[test]
    fn spent_and_unknown_codes_are_refused() {
        let codes = generate(2);
        let stored: Vec<_> = codes.iter().map(|c| c.stored.clone()).collect();
        let spent = stored[0].salt.clone();
        assert_eq!(
            verify(&codes[0].display, &stored, |id| id == spent),
            BackupCheck::AlreadyUsed
        );
        let other = generate(1);
        assert_eq!(
            verify(&other[0].display, &stored, |_| false),
            BackupCheck::Rejected
        );
    }

    #[test]
    fn normalization_rules() {
        assert_eq!(
            normalize("ABCD-EFGH-JKMN-PQRS")
                .as_deref()
                .map(String::as_str),
            Some("abcdefghjkmnpqrs")
        );
        assert_eq!(
            normalize("oooo iiii llll 0000")
                .as_deref()
                .map(String::as_str),
            Some("0000111111110000")
        );
        assert!(normalize("abcd-efgh-jkmn-pqr").is_none());
        assert!(normalize("abcd-efgh-jkmn-pqrst").is_none());
        assert!(normalize("abcd-efgh-jkmn-pqr!").is_none());
        assert!(normalize("uuuu-efgh-jkmn-pqrs").is_none());
        assert!(normalize("").is_none());
    }

    #[test]
    fn codes_are_distinct_and_salts_unique() {
        let codes = generate(50);
        let mut shown: Vec<_> = codes.iter().map(|c| c.display.to_string()).collect();
        shown.sort();
        shown.dedup();
        assert_eq!(shown.len(), 50);
        let mut salts: Vec<_> = codes.iter().map(|c| c.stored.salt.clone()).collect();
        salts.sort();
        salts.dedup();
        assert_eq!(salts.len(), 50);
        assert!(codes.iter().all(|c| c.stored.validate().is_ok()));
    }
}
