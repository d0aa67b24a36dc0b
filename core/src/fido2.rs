//! FIDO2 security keys: the registered credential as the enrollment stores
//! it, parsing what an authenticator returns (authenticator data, COSE
//! public keys), and the verification of an assertion.
//!
//! The verification is ours, not the transport library's (WebAuthn §7.2,
//! CTAP 2.1 §6.2): the relying-party id hash, the user-presence flag, the
//! user-verification flag when required, the signature over
//! `authenticatorData ‖ clientDataHash` with the stored public key, and the
//! signature counter, which must grow whenever it is not zero (a counter that
//! does not is the sign of a cloned key). Pure: no I/O, no clock.

use std::fmt;

use p256::ecdsa::signature::Verifier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod helper;
pub mod pam_u2f;

/// Longest credential id accepted (CTAP allows up to 1023 bytes).
pub const MAX_CREDENTIAL_ID_BYTES: usize = 1023;
/// Longest credential name.
pub const MAX_NAME_CHARS: usize = 64;
/// Most credentials one user may register.
pub const MAX_CREDENTIALS: usize = 32;

/// `flags` bit: user present (UP).
pub const FLAG_USER_PRESENT: u8 = 0x01;
/// `flags` bit: user verified (UV).
pub const FLAG_USER_VERIFIED: u8 = 0x04;
/// `flags` bit: attested credential data included (AT).
pub const FLAG_ATTESTED_DATA: u8 = 0x40;
/// `flags` bit: extension data included (ED).
pub const FLAG_EXTENSION_DATA: u8 = 0x80;

/// COSE algorithm identifier of ES256 (ECDSA P-256 with SHA-256).
pub const COSE_ES256: i64 = -7;
/// COSE algorithm identifier of EdDSA (Ed25519).
pub const COSE_EDDSA: i64 = -8;

/// The signature algorithm of a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// ECDSA over P-256 with SHA-256; signatures are DER.
    Es256,
    /// Ed25519; signatures are 64 bytes.
    #[serde(rename = "eddsa")]
    EdDsa,
}

impl Algorithm {
    /// The name used in files, logs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Es256 => "es256",
            Algorithm::EdDsa => "eddsa",
        }
    }

    /// The COSE identifier.
    pub fn cose(self) -> i64 {
        match self {
            Algorithm::Es256 => COSE_ES256,
            Algorithm::EdDsa => COSE_EDDSA,
        }
    }

    /// The algorithm of a COSE identifier, if supported.
    pub fn from_cose(id: i64) -> Option<Self> {
        match id {
            COSE_ES256 => Some(Algorithm::Es256),
            COSE_EDDSA => Some(Algorithm::EdDsa),
            _ => None,
        }
    }
}

/// A validated public key: for ES256 the uncompressed SEC1 point (65 bytes,
/// `04 ‖ x ‖ y`) on the curve, for EdDSA the 32-byte Ed25519 key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: Algorithm,
    bytes: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({}, {})",
            self.algorithm.name(),
            hex::encode(&self.bytes)
        )
    }
}

impl PublicKey {
    /// Validate `bytes` as a key of `algorithm`. ES256 also takes the raw
    /// 64-byte `x ‖ y` form (libfido2's, so pam_u2f's).
    pub fn new(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, String> {
        match algorithm {
            Algorithm::Es256 => {
                let sec1 = match bytes.len() {
                    65 => bytes.to_vec(),
                    64 => [&[0x04][..], bytes].concat(),
                    n => return Err(format!("an ES256 public key has 64 or 65 bytes, not {n}")),
                };
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map_err(|_| "the ES256 public key is not a point on P-256".to_string())?;
                Ok(PublicKey {
                    algorithm,
                    bytes: sec1,
                })
            }
            Algorithm::EdDsa => {
                let array: [u8; 32] = bytes.try_into().map_err(|_| {
                    format!("an Ed25519 public key has 32 bytes, not {}", bytes.len())
                })?;
                ed25519_dalek::VerifyingKey::from_bytes(&array)
                    .map_err(|_| "the Ed25519 public key is not valid".to_string())?;
                Ok(PublicKey {
                    algorithm,
                    bytes: bytes.to_vec(),
                })
            }
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key's bytes (see the type).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Check `signature` over `message`. ES256 signatures are DER; a high-S
    /// signature is accepted (authenticators are not required to produce
    /// low-S ones, and malleability is harmless over a fresh challenge).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self.algorithm {
            Algorithm::Es256 => {
                let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.bytes) else {
                    return false;
                };
                let Ok(signature) = p256::ecdsa::Signature::from_der(signature) else {
                    return false;
                };
                let signature = signature.normalize_s().unwrap_or(signature);
                key.verify(message, &signature).is_ok()
            }
            Algorithm::EdDsa => {
                let Ok(array) = <[u8; 32]>::try_from(self.bytes.as_slice()) else {
                    return false;
                };
                let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&array) else {
                    return false;
                };
                let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
                    return false;
                };
                key.verify_strict(message, &signature).is_ok()
            }
        }
    }
}

/// Where a credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Registered with `twofactor fido2 add`.
    #[default]
    Registered,
    /// Imported from a pam_u2f `u2f_keys` line.
    PamU2f,
}

/// A registered security-key credential (non-resident): what the enrollment
/// keeps. The private key never leaves the key; this is public data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user's name for it (unique within the enrollment).
    pub name: String,
    /// The relying-party id it was made for (`pam://host`).
    pub rp_id: String,
    /// The credential id the key returned (opaque to us).
    pub credential_id: Vec<u8>,
    /// Its public key.
    pub public_key: PublicKey,
    /// Logins with it must be user-verified (PIN or built-in UV).
    pub user_verification: bool,
    /// The authenticator-data flags at registration.
    pub flags: u8,
    /// The signature counter at registration. The login state keeps the
    /// current one (root-owned, so a user cannot lower it).
    pub sign_count: u32,
    /// Unix time of registration or import.
    pub created: u64,
    /// How it got here.
    pub origin: Origin,
}

/// The stored form of a credential in the enrollment document (`[[fido2]]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialEntry {
    name: String,
    rp_id: String,
    credential_id: String,
    algorithm: Algorithm,
    public_key: String,
    #[serde(default)]
    user_verification: bool,
    #[serde(default)]
    flags: u8,
    #[serde(default)]
    sign_count: u32,
    #[serde(default)]
    created: u64,
    #[serde(default)]
    origin: Origin,
}

/// Base64url without padding, as WebAuthn writes credential ids.
pub fn encode_b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// Decode base64url without padding.
pub fn decode_b64(text: &str) -> Result<Vec<u8>, String> {
    data_encoding::BASE64URL_NOPAD
        .decode(text.as_bytes())
        .map_err(|_| "not base64url".to_string())
}

/// Check a credential's name: 1 to 64 printable characters, no control
/// characters, no leading or trailing space.
pub fn validate_name(name: &str) -> Result<(), String> {
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME_CHARS {
        return Err(format!(
            "a security key's name must be 1 to {MAX_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) || name.trim() != name {
        return Err("a security key's name must not have control characters or \
             surrounding spaces"
            .into());
    }
    Ok(())
}

impl Credential {
    pub(crate) fn from_entry(entry: &CredentialEntry) -> Result<Self, String> {
        validate_name(&entry.name)?;
        let credential_id =
            decode_b64(&entry.credential_id).map_err(|why| format!("credential_id is {why}"))?;
        if credential_id.is_empty() || credential_id.len() > MAX_CREDENTIAL_ID_BYTES {
            return Err(format!(
                "credential_id must have 1 to {MAX_CREDENTIAL_ID_BYTES} bytes"
            ));
        }
        let key_bytes =
            decode_b64(&entry.public_key).map_err(|why| format!("public_key is {why}"))?;
        let public_key = PublicKey::new(entry.algorithm, &key_bytes)?;
        validate_rp_id(&entry.rp_id)?;
        Ok(Credential {
            name: entry.name.clone(),
            rp_id: entry.rp_id.clone(),
            credential_id,
            public_key,
            user_verification: entry.user_verification,
            flags: entry.flags,
            sign_count: entry.sign_count,
            created: entry.created,
            origin: entry.origin,
        })
    }

    pub(crate) fn to_entry(&self) -> CredentialEntry {
        CredentialEntry {
            name: self.name.clone(),
            rp_id: self.rp_id.clone(),
            credential_id: encode_b64(&self.credential_id),
            algorithm: self.public_key.algorithm,
            public_key: encode_b64(&self.public_key.bytes),
            user_verification: self.user_verification,
            flags: self.flags,
            sign_count: self.sign_count,
            created: self.created,
            origin: self.origin,
        }
    }

    /// A short, stable identifier of the credential for the login state and
    /// logs: the first 16 bytes of SHA-256 of the credential id, in hex.
    pub fn fingerprint(&self) -> String {
        credential_fingerprint(&self.credential_id)
    }
}

/// See [`Credential::fingerprint`].
pub fn credential_fingerprint(credential_id: &[u8]) -> String {
    hex::encode(&Sha256::digest(credential_id)[..16])
}

/// Check a relying-party id: 1 to 255 printable ASCII characters.
pub fn validate_rp_id(rp_id: &str) -> Result<(), String> {
    if rp_id.is_empty() || rp_id.len() > 255 || !rp_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a relying-party id must be 1 to 255 printable ASCII characters".into());
    }
    Ok(())
}

/// The relying-party id of this host under `config`: the configured one,
/// or `pam://HOSTNAME`. The module asks keys for it and `twofactor` gives
/// it to new credentials: one function, so they cannot disagree.
pub fn relying_party(config: &crate::config::Config) -> String {
    effective_rp_id(&config.fido2_rp_id, &crate::account::host_name())
}

/// The relying-party id of this system: `configured`, or `pam://HOSTNAME`
/// when that is empty (pam_u2f's default, so keys registered with
/// `pamu2fcfg` on this host match).
pub fn effective_rp_id(configured: &str, hostname: &str) -> String {
    if configured.is_empty() {
        format!("pam://{hostname}")
    } else {
        configured.to_string()
    }
}

/// SHA-256 of the relying-party id, as authenticator data carries it.
pub fn rp_id_hash(rp_id: &str) -> [u8; 32] {
    Sha256::digest(rp_id.as_bytes()).into()
}

/// SHA-256 of a challenge: the client-data hash sent to the key. (There is no
/// browser and no JSON client data here; like pam_u2f we hash a random
/// challenge, and ctap-hid-fido2 does exactly this with the challenge it is
/// given.)
pub fn client_data_hash(challenge: &[u8]) -> [u8; 32] {
    Sha256::digest(challenge).into()
}

/// A fresh random challenge (32 bytes from the OS generator): each login's
/// assertion signs its own, so a recorded assertion cannot be replayed.
pub fn new_challenge() -> [u8; 32] {
    let mut challenge = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut challenge);
    challenge
}

/// Parsed authenticator data (WebAuthn §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorData {
    /// SHA-256 of the relying-party id the key signed for.
    pub rp_id_hash: [u8; 32],
    /// UP, UV, AT, ED... bits.
    pub flags: u8,
    /// The signature counter.
    pub sign_count: u32,
    /// The new credential, in registration responses.
    pub attested: Option<AttestedCredential>,
}

/// Attested credential data (registration only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedCredential {
    /// The authenticator model.
    pub aaguid: [u8; 16],
    /// The new credential's id.
    pub credential_id: Vec<u8>,
    /// The new credential's public key.
    pub public_key: PublicKey,
}

impl AuthenticatorData {
    /// Parse authenticator data as returned by a key.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < 37 {
            return Err(format!(
                "authenticator data too short ({} bytes, at least 37)",
                bytes.len()
            ));
        }
        let mut rp_id_hash = [0u8; 32];
        rp_id_hash.copy_from_slice(&bytes[..32]);
        let flags = bytes[32];
        let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
        let mut rest = &bytes[37..];
        let attested = if flags & FLAG_ATTESTED_DATA != 0 {
            if rest.len() < 18 {
                return Err("attested credential data truncated".into());
            }
            let mut aaguid = [0u8; 16];
            aaguid.copy_from_slice(&rest[..16]);
            let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            rest = &rest[18..];
            if id_len == 0 || id_len > MAX_CREDENTIAL_ID_BYTES || rest.len() < id_len {
                return Err("credential id length out of range".into());
            }
            let credential_id = rest[..id_len].to_vec();
            rest = &rest[id_len..];
            let (public_key, used) = parse_cose_key(rest)?;
            rest = &rest[used..];
            Some(AttestedCredential {
                aaguid,
                credential_id,
                public_key,
            })
        } else {
            None
        };
        if flags & FLAG_EXTENSION_DATA != 0 {
            let (_, used) = read_cbor(rest)?;
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            return Err(format!(
                "{} unexpected bytes after the authenticator data",
                rest.len()
            ));
        }
        Ok(AuthenticatorData {
            rp_id_hash,
            flags,
            sign_count,
            attested,
        })
    }
}

fn read_cbor(bytes: &[u8]) -> Result<(ciborium::Value, usize), String> {
    let mut reader = bytes;
    let value: ciborium::Value =
        ciborium::de::from_reader(&mut reader).map_err(|_| "malformed CBOR".to_string())?;
    Ok((value, bytes.len() - reader.len()))
}

/// Parse a COSE_Key (RFC 8152 §7, RFC 8230) at the start of `bytes`; returns
/// the key and the number of bytes it took. Only ES256 (EC2, P-256) and
/// EdDSA (OKP, Ed25519) keys are accepted.
pub fn parse_cose_key(bytes: &[u8]) -> Result<(PublicKey, usize), String> {
    let (value, used) = read_cbor(bytes)?;
    let ciborium::Value::Map(entries) = value else {
        return Err("COSE key is not a map".into());
    };
    let field = |label: i64| {
        entries.iter().find_map(|(k, v)| match k {
            ciborium::Value::Integer(i) if i128::from(*i) == i128::from(label) => Some(v),
            _ => None,
        })
    };
    let int = |label: i64| -> Option<i64> {
        match field(label)? {
            ciborium::Value::Integer(i) => i64::try_from(i128::from(*i)).ok(),
            _ => None,
        }
    };
    let bytes_of = |label: i64| -> Option<&Vec<u8>> {
        match field(label)? {
            ciborium::Value::Bytes(b) => Some(b),
            _ => None,
        }
    };
    let algorithm = int(3)
        .and_then(Algorithm::from_cose)
        .ok_or("COSE key of an unsupported algorithm (ES256 and EdDSA are)")?;
    let key = match algorithm {
        Algorithm::Es256 => {
            if int(1) != Some(2) || int(-1) != Some(1) {
                return Err("ES256 COSE key is not an EC2 key on P-256".into());
            }
            let (Some(x), Some(y)) = (bytes_of(-2), bytes_of(-3)) else {
                return Err("ES256 COSE key lacks x or y".into());
            };
            if x.len() != 32 || y.len() != 32 {
                return Err("ES256 COSE key coordinates are not 32 bytes".into());
            }
            PublicKey::new(algorithm, &[&[0x04][..], x, y].concat())?
        }
        Algorithm::EdDsa => {
            if int(1) != Some(1) || int(-1) != Some(6) {
                return Err("EdDSA COSE key is not an OKP key on Ed25519".into());
            }
            let x = bytes_of(-2).ok_or("EdDSA COSE key lacks x")?;
            PublicKey::new(algorithm, x)?
        }
    };
    Ok((key, used))
}

/// An assertion as the key returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// The credential that signed (the key may omit it with a single-entry
    /// allow list; then it is the one asked for).
    pub credential_id: Vec<u8>,
    /// Authenticator data, as signed.
    pub auth_data: Vec<u8>,
    /// The signature over `auth_data ‖ client_data_hash`.
    pub signature: Vec<u8>,
}

/// What the login expects of an assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation<'a> {
    /// The relying-party id the key was asked for.
    pub rp_id: &'a str,
    /// The client-data hash the key was given.
    pub client_data_hash: [u8; 32],
    /// The UV flag must be set (policy or the credential's own setting).
    pub user_verification: bool,
    /// The highest counter seen so far for this credential (login state and
    /// registration), 0 when none.
    pub stored_counter: u32,
}

/// Why an assertion was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Signed by none of the registered credentials.
    UnknownCredential,
    /// The authenticator data did not parse.
    Malformed(String),
    /// Signed for another relying party.
    WrongRelyingParty,
    /// The UP flag is not set: nobody touched the key.
    UserPresenceMissing,
    /// User verification was required and the UV flag is not set.
    UserVerificationMissing,
    /// The signature does not verify with the stored public key.
    BadSignature,
    /// The counter did not grow: the key may have been cloned.
    CounterRegression {
        /// the highest counter seen before
        stored: u32,
        /// the counter in this assertion
        received: u32,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownCredential => write!(f, "assertion by an unregistered credential"),
            Refusal::Malformed(why) => write!(f, "malformed authenticator data: {why}"),
            Refusal::WrongRelyingParty => {
                write!(f, "assertion for another relying party (rpIdHash mismatch)")
            }
            Refusal::UserPresenceMissing => {
                write!(f, "user presence flag not set (the key was not touched)")
            }
            Refusal::UserVerificationMissing => {
                write!(f, "user verification required but the flag is not set")
            }
            Refusal::BadSignature => write!(f, "signature does not verify"),
            Refusal::CounterRegression { stored, received } => write!(
                f,
                "signature counter did not increase ({received} after {stored}): possible cloned key"
            ),
        }
    }
}

/// An accepted assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Index of the credential (in the list given) that signed.
    pub index: usize,
    /// The counter to store.
    pub counter: u32,
    /// The UV flag was set.
    pub user_verified: bool,
}

/// Verify `assertion` against the registered `credentials`.
///
/// Order matters only for the reason reported; every check must pass. The
/// counter rule is WebAuthn's: when either the stored or the received
/// counter is non-zero, the received one must be greater.
pub fn verify_assertion(
    credentials: &[Credential],
    assertion: &Assertion,
    expected: &Expectation<'_>,
) -> Result<Verified, Refusal> {
    let index = credentials
        .iter()
        .position(|c| c.credential_id == assertion.credential_id)
        .ok_or(Refusal::UnknownCredential)?;
    let credential = &credentials[index];
    let data = AuthenticatorData::parse(&assertion.auth_data).map_err(Refusal::Malformed)?;
    if data.rp_id_hash != rp_id_hash(expected.rp_id) {
        return Err(Refusal::WrongRelyingParty);
    }
    let mut message = assertion.auth_data.clone();
    message.extend_from_slice(&expected.client_data_hash);
    if !credential.public_key.verify(&message, &assertion.signature) {
        return Err(Refusal::BadSignature);
    }
    if data.flags & FLAG_USER_PRESENT == 0 {
        return Err(Refusal::UserPresenceMissing);
    }
    let user_verified = data.flags & FLAG_USER_VERIFIED != 0;
    if (expected.user_verification || credential.user_verification) && !user_verified {
        return Err(Refusal::UserVerificationMissing);
    }
    let stored = expected.stored_counter;
    if (data.sign_count != 0 || stored != 0) && data.sign_count <= stored {
        return Err(Refusal::CounterRegression {
            stored,
            received: data.sign_count,
        });
    }
    Ok(Verified {
        index,
        counter: data.sign_count,
        user_verified,
    })
}

/// What a registration response yields, checked against what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The public key.
    pub public_key: PublicKey,
    /// Authenticator-data flags.
    pub flags: u8,
    /// The counter at registration.
    pub sign_count: u32,
}

/// Take a new credential out of a registration's authenticator data, after
/// checking the relying party and user presence. The attestation statement
/// is not judged: we do not restrict which key models users may register
/// (and self attestation is the norm for many).
pub fn parse_registration(auth_data: &[u8], rp_id: &str) -> Result<NewCredential, String> {
    let data = AuthenticatorData::parse(auth_data)?;
    if data.rp_id_hash != rp_id_hash(rp_id) {
        return Err("the key answered for another relying party".into());
    }
    if data.flags & FLAG_USER_PRESENT == 0 {
        return Err("the key did not report user presence".into());
    }
    let attested = data
        .attested
        .ok_or("the key returned no credential (no attested credential data)")?;
    Ok(NewCredential {
        credential_id: attested.credential_id,
        public_key: attested.public_key,
        flags: data.flags,
        sign_count: data.sign_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rp_id_defaults_to_pam_scheme() {
        assert_eq!(effective_rp_id("", "host1"), "pam://host1");
        assert_eq!(effective_rp_id("pam://fixed", "host1"), "pam://fixed");
        assert!(validate_rp_id("pam://h").is_ok());
        assert!(validate_rp_id("").is_err());
        assert!(validate_rp_id("a b").is_err());
    }

    #[test]
    fn short_or_trailing_authenticator_data_is_refused() {
        assert!(AuthenticatorData::parse(&[0u8; 36]).is_err());
        let mut ok = vec![0u8; 37];
        ok[32] = FLAG_USER_PRESENT;
        ok[36] = 5;
        let parsed = AuthenticatorData::parse(&ok).unwrap();
        assert_eq!(parsed.sign_count, 5);
        ok.push(0);
        assert!(AuthenticatorData::parse(&ok).is_err());
        // AT set but nothing follows.
        let mut at = vec![0u8; 37];
        at[32] = FLAG_ATTESTED_DATA;
        assert!(AuthenticatorData::parse(&at).is_err());
    }

    #[test]
    fn public_keys_are_validated() {
        assert!(PublicKey::new(Algorithm::Es256, &[4u8; 65]).is_err());
        assert!(PublicKey::new(Algorithm::Es256, &[4u8; 10]).is_err());
        assert!(PublicKey::new(Algorithm::EdDsa, &[1u8; 31]).is_err());
    }

    #[test]
    fn names() {
        assert!(validate_name("yubikey 5").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name(" x").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(65)).is_err());
    }
}
