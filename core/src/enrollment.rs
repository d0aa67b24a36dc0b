//! The enrollment document: what a user enrolled. Written by `twofactor` as
//! the user, read (never written) by the module.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::audit::sanitize;
use crate::backup::BackupCodeHash;
use crate::error::{parse_json_or_toml, shown_path, Error};
use crate::fido2::{self, CredentialEntry};
use crate::secret::SecretBytes;
use crate::totp::{Algorithm, TotpParams, DIGITS_RANGE, MIN_SECRET_BYTES, PERIOD_RANGE};

/// Current version of the enrollment document.
pub const ENROLLMENT_VERSION: u32 = 1;
/// Largest enrollment file read (bytes).
pub const MAX_ENROLLMENT_BYTES: u64 = 64 * 1024;
const MAX_SECRET_BYTES: usize = 128;
const MAX_BACKUP_CODES: usize = 100;
/// Default location, relative to the user's home through `%h`.
pub const DEFAULT_ENROLLMENT_PATH: &str = "%h/.config/twofactor/enrollment.json";
/// The default file's name before enrollments were written as JSON.
const LEGACY_FILE_NAME: &str = "enrollment.toml";
const CURRENT_FILE_NAME: &str = "enrollment.json";

/// How an enrollment file is written. Reading needs no choice: a JSON
/// document starts with `{`, which no TOML document can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentFormat {
    /// The default: about a quarter of TOML's cost to read (parse and
    /// validate), paid at every login.
    Json,
    /// Version 1's original form, kept for paths that end in `.toml`.
    Toml,
}

impl EnrollmentFormat {
    /// The format for a file at `path`: TOML if its name ends in `.toml`
    /// (an administrator's `enrollment_path` keeps the form it names), JSON
    /// otherwise.
    pub fn for_path(path: &Path) -> Self {
        if path.extension().is_some_and(|ext| ext == "toml") {
            EnrollmentFormat::Toml
        } else {
            EnrollmentFormat::Json
        }
    }
}

/// The file to read when `path` does not exist: `enrollment.toml` beside an
/// `enrollment.json`, the default file's name before version 1 documents were
/// written as JSON. Writers replace it with `path` and remove it.
pub fn legacy_path(path: &Path) -> Option<PathBuf> {
    (path.file_name()? == CURRENT_FILE_NAME).then(|| path.with_file_name(LEGACY_FILE_NAME))
}

/// Read the enrollment file at `path` of the user `owner` whose home is
/// `home`: a regular file the user owns, no group or other access, every
/// directory from the home down safe ([`crate::files::read_user_file_text`]),
/// at most [`MAX_ENROLLMENT_BYTES`], then parsed. `Ok(None)`: no such file.
/// The caller holds the user's file-system identity (the module) or is the
/// user (`twofactor`).
pub fn read_file(path: &Path, owner: u32, home: &Path) -> Result<Option<Enrollment>, Error> {
    let requirements = crate::files::FileRequirements::secret_of(owner, MAX_ENROLLMENT_BYTES);
    match crate::files::read_user_file_text(path, home, &requirements) {
        Ok(text) => Enrollment::parse(&text, &path.display().to_string()).map(Some),
        Err(e) if e.is_missing_file() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Read the enrollment at `path` with `read` (`Ok(None)`: no such file), or,
/// when there is none, from its [`legacy_path`]. An error is never passed
/// over for the other file: a broken file fails closed.
pub fn read_with_legacy<T, E>(
    path: &Path,
    mut read: impl FnMut(&Path) -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    if let Some(found) = read(path)? {
        return Ok(Some(found));
    }
    let Some(legacy) = legacy_path(path) else {
        return Ok(None);
    };
    match read(&legacy)? {
        Some(found) => Ok(Some(found)),
        // Writers write `path` before they remove the legacy file: neither
        // found may mean a move happened between the two reads, and then
        // `path` is there now.
        None => read(path),
    }
}

/// A user's enrolled factors, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrollment {
    /// TOTP, if enrolled.
    pub totp: Option<TotpParams>,
    /// Stored forms of the backup codes (spent ones included: the login
    /// state, not this file, records which are spent).
    pub backup_codes: Vec<BackupCodeHash>,
    /// Registered FIDO2 security keys (`[[fido2]]`; public data only).
    pub fido2: Vec<fido2::Credential>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollmentDocument {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp: Option<TotpSection>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    backup_codes: Vec<BackupCodeHash>,
    // Added after version 1 was published: absent in older files, and
    // omitted when empty so files without keys read the same everywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    fido2: Vec<CredentialEntry>,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct TotpSection {
    secret: String,
    #[zeroize(skip)]
    #[serde(default)]
    algorithm: Algorithm,
    #[serde(default = "default_digits")]
    digits: u8,
    #[serde(default = "default_period")]
    period: u64,
}

fn default_digits() -> u8 {
    6
}

fn default_period() -> u64 {
    30
}

/// Decode a base32 TOTP secret as authenticator apps show it: any case,
/// optional `=` padding, optional spaces between groups.
pub fn decode_base32_secret(text: &str) -> Result<SecretBytes, String> {
    let mut cleaned: Vec<u8> = text
        .bytes()
        .filter(|b| *b != b' ' && *b != b'=' && *b != b'-')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    let decoded = data_encoding::BASE32_NOPAD.decode(&cleaned);
    cleaned.zeroize();
    let bytes = decoded.map_err(|_| "TOTP secret is not valid base32".to_string())?;
    let secret = SecretBytes::new(bytes);
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "TOTP secret is too short ({} bits, at least {} required)",
            secret.len() * 8,
            MIN_SECRET_BYTES * 8
        ));
    }
    if secret.len() > MAX_SECRET_BYTES {
        return Err("TOTP secret is too long".into());
    }
    Ok(secret)
}

/// Encode a secret as unpadded base32 (the otpauth URI form).
pub fn encode_base32_secret(secret: &SecretBytes) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(data_encoding::BASE32_NOPAD.encode(secret.expose()))
}

impl Enrollment {
    /// Parse and validate an enrollment document. `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        let invalid = |why: String| Error::Parse {
            what: format!("enrollment file {}", sanitize(origin)),
            why,
        };
        let document: EnrollmentDocument = parse_json_or_toml(text).map_err(invalid)?;
        if document.version != ENROLLMENT_VERSION {
            return Err(invalid(format!(
                "unsupported version (this module reads version {ENROLLMENT_VERSION})"
            )));
        }
        let totp = match &document.totp {
            None => None,
            Some(section) => Some(totp_from_section(section).map_err(invalid)?),
        };
        if document.backup_codes.len() > MAX_BACKUP_CODES {
            return Err(invalid(format!(
                "too many backup codes ({}, at most {MAX_BACKUP_CODES})",
                document.backup_codes.len()
            )));
        }
        for code in &document.backup_codes {
            code.validate().map_err(invalid)?;
        }
        let fido2 = parse_fido2(&document.fido2).map_err(invalid)?;
        Ok(Enrollment {
            totp,
            backup_codes: document.backup_codes,
            fido2,
        })
    }

    /// The document's text in `format`, as written to disk.
    pub fn to_text(&self, format: EnrollmentFormat) -> zeroize::Zeroizing<String> {
        match format {
            EnrollmentFormat::Json => self.to_json(),
            EnrollmentFormat::Toml => self.to_toml(),
        }
    }

    /// The document as JSON (pretty-printed, so a person can read it).
    pub fn to_json(&self) -> zeroize::Zeroizing<String> {
        // Written into one buffer larger than any valid document, so growing
        // it never leaves a copy of the secret behind in freed memory.
        let mut text = zeroize::Zeroizing::new(Vec::with_capacity(MAX_ENROLLMENT_BYTES as usize));
        let written = serde_json::to_writer_pretty(&mut *text, &self.document());
        text.push(b'\n');
        match (written, std::str::from_utf8(&text)) {
            (Ok(()), Ok(json)) => zeroize::Zeroizing::new(json.to_string()),
            _ => zeroize::Zeroizing::new(String::new()),
        }
    }

    /// The document as TOML, version 1's original form.
    pub fn to_toml(&self) -> zeroize::Zeroizing<String> {
        let body = toml::to_string(&self.document()).unwrap_or_default();
        zeroize::Zeroizing::new(format!(
            "# pam_twofactor enrollment, written by `twofactor`. It holds your TOTP secret:\n\
             # keep it private (mode 0600). Backup codes are stored only as salted hashes.\n\
             {body}"
        ))
    }

    fn document(&self) -> EnrollmentDocument {
        EnrollmentDocument {
            version: ENROLLMENT_VERSION,
            totp: self.totp.as_ref().map(|t| TotpSection {
                secret: encode_base32_secret(&t.secret).to_string(),
                algorithm: t.algorithm,
                digits: t.digits,
                period: t.period,
            }),
            backup_codes: self.backup_codes.clone(),
            fido2: self.fido2.iter().map(fido2::Credential::to_entry).collect(),
        }
    }

    /// True when at least one factor is enrolled.
    pub fn has_any_method(&self) -> bool {
        self.has_code_method() || !self.fido2.is_empty()
    }

    /// True when a code can be typed: TOTP or backup codes are enrolled.
    pub fn has_code_method(&self) -> bool {
        self.totp.is_some() || !self.backup_codes.is_empty()
    }
}

fn parse_fido2(entries: &[CredentialEntry]) -> Result<Vec<fido2::Credential>, String> {
    if entries.len() > fido2::MAX_CREDENTIALS {
        return Err(format!(
            "too many security keys ({}, at most {})",
            entries.len(),
            fido2::MAX_CREDENTIALS
        ));
    }
    let mut credentials: Vec<fido2::Credential> = Vec::with_capacity(entries.len());
    // Keys are named by their place in the file: a name is the user's text.
    for (index, entry) in entries.iter().enumerate() {
        let number = index + 1;
        let credential = fido2::Credential::from_entry(entry)
            .map_err(|why| format!("security key {number}: {why}"))?;
        if credentials.iter().any(|c| c.name == credential.name) {
            return Err(format!(
                "security key {number} has the name of an earlier one"
            ));
        }
        if credentials
            .iter()
            .any(|c| c.credential_id == credential.credential_id)
        {
            return Err(format!(
                "security key {number} repeats an earlier one's credential id"
            ));
        }
        credentials.push(credential);
    }
    Ok(credentials)
}

fn totp_from_section(section: &TotpSection) -> Result<TotpParams, String> {
    let secret = decode_base32_secret(&section.secret)?;
    if !DIGITS_RANGE.contains(&section.digits) {
        return Err(format!(
            "TOTP digits must be {} to {}",
            DIGITS_RANGE.start(),
            DIGITS_RANGE.end()
        ));
    }
    if !PERIOD_RANGE.contains(&section.period) {
        return Err(format!(
            "TOTP period must be {} to {} seconds",
            PERIOD_RANGE.start(),
            PERIOD_RANGE.end()
        ));
    }
    Ok(TotpParams {
        secret,
        algorithm: section.algorithm,
        digits: section.digits,
        period: section.period,
    })
}

/// Expand `%u` (user name), `%h` (home directory) and `%%` in a path template.
/// The result must be absolute; a user name that could climb out of a
/// directory (`/`, a leading `.`) is refused.
pub fn expand_path(template: &str, user: &str, home: &Path) -> Result<PathBuf, Error> {
    if user.is_empty() || user.contains('/') || user.starts_with('.') || user.contains('\0') {
        return Err(Error::Config(format!(
            "user name {} cannot be used in a path",
            sanitize(user)
        )));
    }
    let mut out = String::with_capacity(template.len() + 32);
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(user),
            Some('h') => {
                let home = home.to_str().ok_or_else(|| {
                    Error::Config("home directory is not valid UTF-8".to_string())
                })?;
                out.push_str(home.trim_end_matches('/'));
            }
            Some('%') => out.push('%'),
            other => {
                return Err(Error::Config(format!(
                    "unknown escape %{} in path {template:?} (use %u, %h or %%)",
                    other.map(String::from).unwrap_or_default()
                )))
            }
        }
    }
    let path = PathBuf::from(out);
    if !path.is_absolute() {
        return Err(Error::Config(format!(
            "path {} is not absolute",
            shown_path(&path)
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
version = 1
[totp]
secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
algorithm = "SHA256"
digits = 8
period = 60
[[backup_codes]]
salt = "00112233445566778899aabbccddeeff"
hash = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
"#;

    #[test]
    fn parses_and_round_trips() {
        let e = Enrollment::parse(SAMPLE, "test").unwrap();
        let totp = e.totp.as_ref().unwrap();
        assert_eq!(totp.secret.expose(), b"12345678901234567890");
        assert_eq!(totp.algorithm, Algorithm::SHA256);
        assert_eq!((totp.digits, totp.period), (8, 60));
        assert_eq!(e.backup_codes.len(), 1);
        let again = Enrollment::parse(&e.to_toml(), "again").unwrap();
        assert_eq!(again, e);
    }

    #[test]
    fn rejects_bad_documents() {
        let cases = [
            ("version = 2", "unsupported version"),
            (
                "version = 1\nextra = 1",
                "unexpected field or value at line 2, column 1",
            ),
            ("version = 1\n[totp]\nsecret = \"!!!\"", "not valid base32"),
            ("version = 1\n[totp]\nsecret = \"GEZDGNBV\"", "too short"),
            (
                "version = 1\n[totp]\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\ndigits = 9",
                "digits must be",
            ),
            (
                "version = 1\n[totp]\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\nperiod = 0",
                "period must be",
            ),
            (
                "version = 1\n[[backup_codes]]\nsalt = \"zz\"\nhash = \"00\"",
                "not hex",
            ),
            ("version = [", "invalid"),
        ];
        for (text, expected) in cases {
            let err = Enrollment::parse(text, "t").unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?} gave {err}");
        }
    }

    #[test]
    fn parse_errors_do_not_quote_the_secret() {
        let text = "version = 1\n[totp]\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\" trailing";
        let err = Enrollment::parse(text, "t").unwrap_err().to_string();
        assert!(!err.contains("GEZDGNBV"), "{err}");
    }

    #[test]
    fn json_and_toml_documents_read_the_same() {
        let from_toml = Enrollment::parse(SAMPLE, "test").unwrap();
        let json = from_toml.to_json();
        assert!(json.starts_with("{\n"), "{}", json.as_str());
        let from_json = Enrollment::parse(&json, "json").unwrap();
        assert_eq!(from_json, from_toml);
        assert_eq!(
            Enrollment::parse(&from_json.to_text(EnrollmentFormat::Toml), "toml").unwrap(),
            from_toml
        );
        // Leading blank space does not change which reader is used.
        let indented = format!("\n  {}", json.as_str());
        assert_eq!(Enrollment::parse(&indented, "json").unwrap(), from_toml);
    }

    #[test]
    fn rejects_bad_json_documents() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let cases = [
            ("{\"version\": 2}".to_string(), "unsupported version"),
            (
                "{\"version\": 1, \"extra\": 1}".into(),
                "unexpected field or value",
            ),
            (
                "{\"version\": 1, \"version\": 1}".into(),
                "unexpected field or value",
            ),
            (
                format!(
                    "{{\"version\": 1, \"totp\": {{\"secret\": \"{secret}\", \"digits\": 9}}}}"
                ),
                "digits must be",
            ),
            (
                "{\"version\": 1, \"totp\": {\"secret\": \"!!!\"}}".into(),
                "not valid base32",
            ),
            ("{\"version\": 1,".into(), "unexpected end of the document"),
            (
                "{\"version\": 1} trailing".into(),
                "JSON syntax error at line 1",
            ),
        ];
        for (text, expected) in cases {
            let err = Enrollment::parse(&text, "t").unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?} gave {err}");
        }
        // serde_json would quote the string it did not expect.
        let misplaced = format!("{{\"version\": \"{secret}\"}}");
        let err = Enrollment::parse(&misplaced, "t").unwrap_err().to_string();
        assert!(!err.contains("GEZDGNBV"), "{err}");
        assert!(err.contains("line 1, column"), "{err}");
    }

    #[test]
    fn format_follows_the_file_name() {
        let json = EnrollmentFormat::for_path(Path::new("/h/.config/twofactor/enrollment.json"));
        assert_eq!(json, EnrollmentFormat::Json);
        let toml = EnrollmentFormat::for_path(Path::new("/var/lib/twofactor/alice.toml"));
        assert_eq!(toml, EnrollmentFormat::Toml);
        let bare = EnrollmentFormat::for_path(Path::new("/var/lib/twofactor/alice"));
        assert_eq!(bare, EnrollmentFormat::Json);
    }

    #[test]
    fn only_the_default_file_name_has_a_legacy_file() {
        assert_eq!(
            legacy_path(Path::new("/h/.config/twofactor/enrollment.json")),
            Some(PathBuf::from("/h/.config/twofactor/enrollment.toml"))
        );
        assert_eq!(
            legacy_path(Path::new("/var/lib/twofactor/alice.json")),
            None
        );
        assert_eq!(legacy_path(Path::new("/h/enrollment.toml")), None);
        assert_eq!(legacy_path(Path::new("/")), None);
    }

    #[test]
    fn the_legacy_file_is_read_only_when_the_file_is_missing() {
        let json = Path::new("/h/enrollment.json");
        let toml = Path::new("/h/enrollment.toml");
        let reads = |files: &[(&Path, Result<Option<u8>, u8>)]| {
            let mut seen = Vec::new();
            let result = read_with_legacy(json, |p: &Path| {
                seen.push(p.to_path_buf());
                files
                    .iter()
                    .find(|(f, _)| *f == p)
                    .map_or(Ok(None), |(_, r)| *r)
            });
            (result, seen)
        };
        assert_eq!(
            reads(&[(json, Ok(Some(1))), (toml, Ok(Some(2)))]).0,
            Ok(Some(1))
        );
        assert_eq!(reads(&[(toml, Ok(Some(2)))]).0, Ok(Some(2)));
        // Errors stop the search, on either file.
        assert_eq!(reads(&[(json, Err(7)), (toml, Ok(Some(2)))]).0, Err(7));
        assert_eq!(reads(&[(toml, Err(8))]).0, Err(8));
        // Neither there: the new file is looked at again, after the old one.
        let (result, seen) = reads(&[]);
        assert_eq!(result, Ok(None));
        assert_eq!(seen, [json, toml, json]);
        // Only enrollment.json has a legacy file.
        let mut seen = Vec::new();
        let other = read_with_legacy(Path::new("/h/alice.json"), |p: &Path| {
            seen.push(p.to_path_buf());
            Ok::<Option<u8>, u8>(None)
        });
        assert_eq!((other, seen.len()), (Ok(None), 1));
    }

    #[test]
    fn path_expansion() {
        let home = Path::new("/home/alice/");
        assert_eq!(
            expand_path(DEFAULT_ENROLLMENT_PATH, "alice", home).unwrap(),
            PathBuf::from("/home/alice/.config/twofactor/enrollment.json")
        );
        assert_eq!(
            expand_path("/var/lib/twofactor/%u/100%%", "alice", home).unwrap(),
            PathBuf::from("/var/lib/twofactor/alice/100%")
        );
        assert!(expand_path("/x/%u", "../root", home).is_err());
        assert!(expand_path("/x/%u", "a/b", home).is_err());
        assert!(expand_path("/x/%q", "alice", home).is_err());
        assert!(expand_path("relative/%u", "alice", home).is_err());
    }
}
