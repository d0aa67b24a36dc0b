//! A software FIDO2 authenticator, for tests only: real P-256 and Ed25519
//! keys and signatures, with flags and counter under the test's control.
//!
//! Credentials are non-resident, as on hardware keys: the credential id is
//! `version ‖ algorithm ‖ nonce ‖ MAC`, and the private key is derived from
//! the device secret, the relying-party id hash and the nonce, so the device
//! stores nothing per credential and recognises only its own credentials,
//! and only for the relying party they were made for.
//!
//! [`ctap2`] answers CTAP2 CBOR commands, [`ctaphid`] frames them in HID
//! reports, and the `soft-fido2-uhid` binary puts it behind `/dev/uhid`.

use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod ctap2;
pub mod ctaphid;

/// `flags` bit: user present.
pub const FLAG_UP: u8 = 0x01;
/// `flags` bit: user verified.
pub const FLAG_UV: u8 = 0x04;
/// `flags` bit: attested credential data.
pub const FLAG_AT: u8 = 0x40;

/// The AAGUID this authenticator reports.
pub const AAGUID: [u8; 16] = *b"pam_twofactor-sw";

/// Signature algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alg {
    /// ECDSA P-256 / SHA-256.
    Es256,
    /// Ed25519.
    Eddsa,
}

impl Alg {
    fn byte(self) -> u8 {
        match self {
            Alg::Es256 => 0,
            Alg::Eddsa => 1,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Alg::Es256),
            1 => Some(Alg::Eddsa),
            _ => None,
        }
    }

    /// COSE identifier.
    pub fn cose(self) -> i64 {
        match self {
            Alg::Es256 => -7,
            Alg::Eddsa => -8,
        }
    }
}

/// Everything that decides how the authenticator answers; kept in a TOML
/// file by tests that run it in another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// The device secret (hex, 32 bytes).
    pub secret: String,
    /// The signature counter (the last one used).
    pub counter: u32,
    /// Added to the counter before each signature (0: a key without a
    /// counter, which always reports 0 — or whatever `counter` holds).
    pub counter_step: u32,
    /// Set the UP flag when presence is asked for (false: as if the test
    /// of presence were skipped, which a real key never does).
    pub user_present: bool,
    /// The key has built-in user verification and reports UV when asked.
    pub builtin_uv: bool,
    /// A PIN, if set (then UV is reported after a correct PIN).
    pub pin: Option<String>,
    /// Sign for this relying party instead of the one asked for.
    pub sign_rp_id: Option<String>,
    /// Flip a bit of every signature.
    pub tamper_signature: bool,
    /// Algorithms offered, preferred first.
    pub algorithms: Vec<Alg>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            secret: hex::encode([7u8; 32]),
            counter: 0,
            counter_step: 1,
            user_present: true,
            builtin_uv: false,
            pin: None,
            sign_rp_id: None,
            tamper_signature: false,
            algorithms: vec![Alg::Es256, Alg::Eddsa],
        }
    }
}

impl Behaviour {
    /// A fresh device with a random secret.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        Behaviour {
            secret: hex::encode(secret),
            ..Behaviour::default()
        }
    }
}

/// A registration: what `makeCredential` returns, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The algorithm.
    pub alg: Alg,
    /// Raw public key: 65-byte SEC1 point or 32-byte Ed25519 key.
    pub public_key: Vec<u8>,
    /// Authenticator data with attested credential data.
    pub auth_data: Vec<u8>,
    /// Self-attestation signature over `auth_data ‖ client_data_hash`.
    pub signature: Vec<u8>,
}

/// An assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// The credential used.
    pub credential_id: Vec<u8>,
    /// Authenticator data.
    pub auth_data: Vec<u8>,
    /// Signature over `auth_data ‖ client_data_hash`.
    pub signature: Vec<u8>,
}

/// CTAP2 status codes this authenticator returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtapError {
    /// CTAP2_ERR_INVALID_CBOR
    InvalidCbor = 0x12,
    /// CTAP2_ERR_MISSING_PARAMETER
    MissingParameter = 0x14,
    /// CTAP2_ERR_UNSUPPORTED_ALGORITHM
    UnsupportedAlgorithm = 0x26,
    /// CTAP2_ERR_UNSUPPORTED_OPTION
    UnsupportedOption = 0x2B,
    /// CTAP2_ERR_NO_CREDENTIALS
    NoCredentials = 0x2E,
    /// CTAP2_ERR_PIN_INVALID
    PinInvalid = 0x31,
    /// CTAP2_ERR_PIN_REQUIRED
    PinRequired = 0x36,
    /// CTAP1_ERR_INVALID_COMMAND
    InvalidCommand = 0x01,
}

/// The authenticator.
#[derive(Debug, Clone)]
pub struct SoftAuthenticator {
    /// How it behaves (public: tests change it between calls).
    pub behaviour: Behaviour,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

enum SigningKey {
    Es256(p256::ecdsa::SigningKey),
    Eddsa(ed25519_dalek::SigningKey),
}

impl SigningKey {
    fn public(&self) -> Vec<u8> {
        match self {
            SigningKey::Es256(k) => k
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            SigningKey::Eddsa(k) => k.verifying_key().to_bytes().to_vec(),
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::Es256(k) => {
                let signature: p256::ecdsa::Signature = k.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            SigningKey::Eddsa(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(message).to_bytes().to_vec()
            }
        }
    }
}

/// SHA-256 of a relying-party id.
pub fn rp_id_hash(rp_id: &str) -> [u8; 32] {
    Sha256::digest(rp_id.as_bytes()).into()
}

/// The COSE_Key encoding of a raw public key.
pub fn cose_key(alg: Alg, public_key: &[u8]) -> Vec<u8> {
    use ciborium::Value;
    let int = |i: i64| Value::Integer(i.into());
    let map = match alg {
        Alg::Es256 => vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Value::Bytes(public_key[1..33].to_vec())),
            (int(-3), Value::Bytes(public_key[33..65].to_vec())),
        ],
        Alg::Eddsa => vec![
            (int(1), int(1)),
            (int(3), int(-8)),
            (int(-1), int(6)),
            (int(-2), Value::Bytes(public_key.to_vec())),
        ],
    };
    let mut out = Vec::new();
    let _ = ciborium::ser::into_writer(&Value::Map(map), &mut out);
    out
}

impl SoftAuthenticator {
    /// An authenticator behaving as `behaviour` says.
    pub fn new(behaviour: Behaviour) -> Self {
        SoftAuthenticator { behaviour }
    }

    fn secret(&self) -> Vec<u8> {
        hex::decode(&self.behaviour.secret).unwrap_or_else(|_| vec![0; 32])
    }

    fn key_for(&self, alg: Alg, rp_hash: &[u8; 32], nonce: &[u8]) -> SigningKey {
        let secret = self.secret();
        let mut seed = hmac(&secret, &[b"key", &[alg.byte()], rp_hash, nonce]);
        match alg {
            Alg::Es256 => loop {
                // A derived value at or above the group order is vanishingly
                // rare; derive again rather than fail.
                if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&seed) {
                    return SigningKey::Es256(key);
                }
                seed = Sha256::digest(seed).into();
            },
            Alg::Eddsa => SigningKey::Eddsa(ed25519_dalek::SigningKey::from_bytes(&seed)),
        }
    }

    /// The algorithm and signing key of `credential_id` for `rp_id`, when it
    /// is one of ours for that relying party.
    fn open_credential(&self, credential_id: &[u8], rp_hash: &[u8; 32]) -> Option<SigningKey> {
        if credential_id.len() != 34 || credential_id[0] != 1 {
            return None;
        }
        let alg = Alg::from_byte(credential_id[1])?;
        let nonce = &credential_id[2..18];
        let tag = hmac(&self.secret(), &[b"cred", &[alg.byte()], rp_hash, nonce]);
        if tag[..16] != credential_id[18..34] {
            return None;
        }
        Some(self.key_for(alg, rp_hash, nonce))
    }

    /// True when `credential_id` is one of ours for `rp_id`.
    pub fn holds(&self, credential_id: &[u8], rp_id: &str) -> bool {
        self.open_credential(credential_id, &rp_id_hash(rp_id))
            .is_some()
    }

    fn next_counter(&mut self) -> u32 {
        self.behaviour.counter = self
            .behaviour
            .counter
            .wrapping_add(self.behaviour.counter_step);
        self.behaviour.counter
    }

    fn check_uv(&self, uv: bool, pin: Option<&str>) -> Result<bool, CtapError> {
        if let Some(given) = pin {
            return match &self.behaviour.pin {
                Some(pin) if pin == given => Ok(true),
                Some(_) => Err(CtapError::PinInvalid),
                None => Err(CtapError::UnsupportedOption),
            };
        }
        if uv {
            if !self.behaviour.builtin_uv {
                return Err(CtapError::UnsupportedOption);
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// authenticatorMakeCredential: the first of `algs` it supports.
    pub fn make_credential(
        &mut self,
        rp_id: &str,
        client_data_hash: &[u8],
        algs: &[Alg],
        uv: bool,
        pin: Option<&str>,
    ) -> Result<Registration, CtapError> {
        let alg = algs
            .iter()
            .copied()
            .find(|a| self.behaviour.algorithms.contains(a))
            .ok_or(CtapError::UnsupportedAlgorithm)?;
        let verified = self.check_uv(uv, pin)?;
        let rp_hash = rp_id_hash(rp_id);
        let mut nonce = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let tag = hmac(&self.secret(), &[b"cred", &[alg.byte()], &rp_hash, &nonce]);
        let mut credential_id = vec![1, alg.byte()];
        credential_id.extend_from_slice(&nonce);
        credential_id.extend_from_slice(&tag[..16]);
        let key = self.key_for(alg, &rp_hash, &nonce);
        let public_key = key.public();
        let mut flags = FLAG_AT;
        if self.behaviour.user_present {
            flags |= FLAG_UP;
        }
        if verified {
            flags |= FLAG_UV;
        }
        let counter = self.next_counter();
        let mut auth_data = rp_hash.to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        auth_data.extend_from_slice(&AAGUID);
        auth_data.extend_from_slice(&(credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&credential_id);
        auth_data.extend_from_slice(&cose_key(alg, &public_key));
        let mut message = auth_data.clone();
        message.extend_from_slice(client_data_hash);
        let signature = key.sign(&message);
        Ok(Registration {
            credential_id,
            alg,
            public_key,
            auth_data,
            signature,
        })
    }

    /// authenticatorGetAssertion over an allow list (non-resident only).
    /// `up`: presence is asked for (the software "touch" is immediate).
    pub fn get_assertion(
        &mut self,
        rp_id: &str,
        client_data_hash: &[u8],
        allow_list: &[Vec<u8>],
        up: bool,
        uv: bool,
        pin: Option<&str>,
    ) -> Result<Assertion, CtapError> {
        let rp_hash = rp_id_hash(rp_id);
        let (credential_id, key) = allow_list
            .iter()
            .find_map(|id| self.open_credential(id, &rp_hash).map(|k| (id.clone(), k)))
            .ok_or(CtapError::NoCredentials)?;
        let verified = self.check_uv(uv, pin)?;
        let mut flags = 0;
        if up && self.behaviour.user_present {
            flags |= FLAG_UP;
        }
        if verified {
            flags |= FLAG_UV;
        }
        // Only assertions with presence move the counter here, so a silent
        // probe (up = false) does not disturb the counter tests.
        let counter = if up {
            self.next_counter()
        } else {
            self.behaviour.counter
        };
        let signed_hash = match &self.behaviour.sign_rp_id {
            Some(other) => rp_id_hash(other),
            None => rp_hash,
        };
        let mut auth_data = signed_hash.to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let mut message = auth_data.clone();
        message.extend_from_slice(client_data_hash);
        let mut signature = key.sign(&message);
        if self.behaviour.tamper_signature {
            if let Some(last) = signature.last_mut() {
                *last ^= 0x01;
            }
        }
        Ok(Assertion {
            credential_id,
            auth_data,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_bound_to_device_and_relying_party() {
        let mut a = SoftAuthenticator::new(Behaviour::random());
        let reg = a
            .make_credential("pam://h", &[0; 32], &[Alg::Es256], false, None)
            .unwrap();
        assert!(a.holds(&reg.credential_id, "pam://h"));
        assert!(!a.holds(&reg.credential_id, "pam://other"));
        let b = SoftAuthenticator::new(Behaviour::random());
        assert!(!b.holds(&reg.credential_id, "pam://h"));
        let asn = a
            .get_assertion(
                "pam://h",
                &[1; 32],
                std::slice::from_ref(&reg.credential_id),
                true,
                false,
                None,
            )
            .unwrap();
        assert_eq!(asn.auth_data[32], FLAG_UP);
        assert_eq!(&asn.auth_data[33..37], &2u32.to_be_bytes());
    }
}
