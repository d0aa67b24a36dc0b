//! Single-use backup codes.
//!
//! A code is 16 characters of Crockford's base32 alphabet: 80 bits from the
//! OS random generator. Only `SHA-256(domain ‖ salt ‖ code)` with a random
//! 128-bit salt per code is stored, so a leaked enrollment file costs an
//! attacker about 2^79 hash evaluations per code on average: out of reach
//! offline, with no need for a deliberately slow hash on the login path.
//!
//! Imported google-authenticator scratch codes are the one exception: eight
//! digits (about 26.6 bits) that the user already holds on paper. They are
//! kept as a distinct kind ([`BackupCodeKind::LegacyScratch`]), hashed the
//! same way under their own domain, accepted by the module, counted apart by
//! `twofactor status`, and dropped by `twofactor backup-codes`. Their hashes
//! are brute-forceable offline (10^8 candidates), which is no worse than the
//! clear text in `~/.google_authenticator` they come from; see
//! docs/admin-guide.md, "google-authenticator".

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
const LEGACY_DOMAIN: &[u8] = b"pam_twofactor legacy scratch code v1\0";
/// Digits of an imported google-authenticator scratch code.
pub const LEGACY_CODE_DIGITS: usize = 8;

/// What kind of code a stored hash is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupCodeKind {
    /// 16 characters of Crockford's base32, 80 bits, made by `twofactor`.
    #[default]
    Standard,
    /// An 8-digit scratch code imported from `~/.google_authenticator`
    /// (about 26.6 bits: weak against an offline attack on the file).
    LegacyScratch,
}

impl BackupCodeKind {
    /// True for [`BackupCodeKind::Standard`] (left out of the file).
    pub fn is_standard(&self) -> bool {
        *self == BackupCodeKind::Standard
    }
}

/// The stored form of one backup code: salt and salted hash, both hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupCodeHash {
    /// 16 random bytes, hex. Also identifies the code in the login state.
    pub salt: String,
    /// SHA-256 over domain, salt and normalized code, hex.
    pub hash: String,
    /// The kind of code; absent in the file for standard codes, so files
    /// written before legacy codes existed read the same.
    #[serde(default, skip_serializing_if = "BackupCodeKind::is_standard")]
    pub kind: BackupCodeKind,
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

/// Normalize a typed legacy scratch code: exactly eight ASCII digits, the
/// first not `0` (as google-authenticator makes them), surrounding white
/// space ignored.
pub fn normalize_legacy(input: &str) -> Option<Zeroizing<String>> {
    let trimmed = input.trim();
    let shaped = trimmed.len() == LEGACY_CODE_DIGITS
        && trimmed.bytes().all(|b| b.is_ascii_digit())
        && !trimmed.starts_with('0');
    shaped.then(|| Zeroizing::new(trimmed.to_string()))
}

/// True when `input` has the shape of a code that `codes` could hold: a
/// standard backup code, or an 8-digit scratch code when legacy codes are
/// enrolled. Used to tell which budget a wrong answer counts against.
pub fn looks_like_backup_code(input: &str, codes: &[BackupCodeHash]) -> bool {
    normalize(input).is_some()
        || (codes
            .iter()
            .any(|c| c.kind == BackupCodeKind::LegacyScratch)
            && normalize_legacy(input).is_some())
}

/// The stored form of an imported scratch code; `None` unless `code` is
/// eight digits (see [`normalize_legacy`]).
pub fn hash_legacy(code: &str) -> Option<BackupCodeHash> {
    let normalized = normalize_legacy(code)?;
    let mut salt = [0u8; SALT_BYTES];
    OsRng.fill_bytes(&mut salt);
    Some(BackupCodeHash {
        salt: hex::encode(salt),
        hash: hex::encode(digest_in(LEGACY_DOMAIN, &salt, &normalized)),
        kind: BackupCodeKind::LegacyScratch,
    })
}

fn digest(salt: &[u8], normalized: &str) -> [u8; 32] {
    digest_in(DOMAIN, salt, normalized)
}

fn digest_in(domain: &[u8], salt: &[u8], normalized: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(domain);
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
            kind: BackupCodeKind::Standard,
        },
    }
}

impl BackupCodeHash {
    /// Check the stored fields' shape: 16-byte salt, 32-byte hash, hex.
    /// (Without decoding: this runs for every code at every login.)
    pub fn validate(&self) -> Result<(), String> {
        let is_hex = |text: &str| text.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_hex(&self.salt) {
            return Err("backup code salt is not hex".into());
        }
        if !is_hex(&self.hash) {
            return Err("backup code hash is not hex".into());
        }
        if self.salt.len() != SALT_BYTES * 2 {
            return Err(format!("backup code salt must be {SALT_BYTES} bytes"));
        }
        if self.hash.len() != 64 {
            return Err("backup code hash must be 32 bytes".into());
        }
        Ok(())
    }

    fn matches(&self, normalized: &str) -> bool {
        let mut salt = [0u8; SALT_BYTES];
        let mut hash = [0u8; 32];
        if hex::decode_to_slice(&self.salt, &mut salt).is_err()
            || hex::decode_to_slice(&self.hash, &mut hash).is_err()
        {
            return false;
        }
        let domain = match self.kind {
            BackupCodeKind::Standard => DOMAIN,
            BackupCodeKind::LegacyScratch => LEGACY_DOMAIN,
        };
        digest_in(domain, &salt, normalized).ct_eq(&hash).into()
    }
}

/// Check `input` against every stored code. All codes of the kind the input
/// is shaped for are hashed and compared whatever the outcome, so timing does
/// not tell which one (if any) matched.
pub fn verify<'a>(
    input: &str,
    codes: &[BackupCodeHash],
    is_spent: impl Fn(&str) -> bool + 'a,
) -> BackupCheck {
    let standard = normalize(input);
    let legacy = normalize_legacy(input);
    if standard.is_none() && legacy.is_none() {
        return BackupCheck::Rejected;
    }
    let mut found: Option<&BackupCodeHash> = None;
    for code in codes {
        // Each code is compared with the input normalized for its kind; the
        // two shapes cannot both hold, so a code never matches as the other.
        let normalized = match code.kind {
            BackupCodeKind::Standard => standard.as_ref(),
            BackupCodeKind::LegacyScratch => legacy.as_ref(),
        };
        let matched = normalized.is_some_and(|n| code.matches(n));
        if matched && found.is_none() {
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
    fn legacy_scratch_codes_verify_once_and_only_as_typed() {
        let mut stored: Vec<_> = generate(2).into_iter().map(|c| c.stored).collect();
        let legacy = hash_legacy("19317516").unwrap();
        assert_eq!(legacy.kind, BackupCodeKind::LegacyScratch);
        assert!(legacy.validate().is_ok());
        stored.push(legacy.clone());
        assert_eq!(
            verify(" 19317516\n", &stored, |_| false),
            BackupCheck::Accepted {
                id: legacy.salt.clone()
            }
        );
        assert_eq!(
            verify("19317516", &stored, |id| id == legacy.salt),
            BackupCheck::AlreadyUsed
        );
        for wrong in ["19317517", "1931751", "193175160", "1931-7516", "09317516"] {
            assert_eq!(verify(wrong, &stored, |_| false), BackupCheck::Rejected);
        }
        // Not a standard code's hash under another domain.
        let as_standard = BackupCodeHash {
            kind: BackupCodeKind::Standard,
            ..legacy.clone()
        };
        assert_eq!(
            verify("19317516", &[as_standard], |_| false),
            BackupCheck::Rejected
        );
        assert!(hash_legacy("1234567").is_none());
        assert!(hash_legacy("01234567").is_none());
        assert!(looks_like_backup_code("12345678", &stored));
        assert!(!looks_like_backup_code("12345678", &stored[..2]));
    }

    #[test]
    fn kind_is_absent_from_files_for_standard_codes() {
        let code = generate(1).remove(0).stored;
        let text = toml::to_string(&code).unwrap();
        assert!(!text.contains("kind"), "{text}");
        let legacy = hash_legacy("23952935").unwrap();
        let text = toml::to_string(&legacy).unwrap();
        assert!(text.contains("kind = \"legacy-scratch\""), "{text}");
        let back: BackupCodeHash = toml::from_str(&text).unwrap();
        assert_eq!(back, legacy);
        let old: BackupCodeHash =
            toml::from_str("salt = \"00112233445566778899aabbccddeeff\"\nhash = \"00\"").unwrap();
        assert_eq!(old.kind, BackupCodeKind::Standard);
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
