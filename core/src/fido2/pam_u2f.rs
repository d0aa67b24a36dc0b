//! Reading pam_u2f's `u2f_keys` files, so keys registered with `pamu2fcfg`
//! keep working after switching modules.
//!
//! A line is `user:CREDENTIAL:CREDENTIAL...`, each credential
//! `KeyHandle,PublicKey,CoseType,Options` (pam-u2f 1.1 and later: standard
//! base64 key handle and public key, `es256` or `eddsa`, options such as
//! `+presence+pin`) or the older `KeyHandle,PublicKey` (U2F era: websafe
//! base64 key handle, hex SEC1 public key, ES256). As pam_u2f does, only the
//! last line of a user counts. Resident credentials (`*` as key handle) and
//! RS256 keys are reported as skipped.

use super::{Algorithm, PublicKey, MAX_CREDENTIAL_ID_BYTES};

/// One credential from a `u2f_keys` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct U2fCredential {
    /// The key handle (credential id).
    pub credential_id: Vec<u8>,
    /// The public key.
    pub public_key: PublicKey,
    /// `+pin` or `+verification` was set: logins must be user-verified.
    pub user_verification: bool,
    /// `+presence` was set: pam_u2f asked for a touch. Without it, pam_u2f
    /// let the key answer untouched; pam_twofactor always asks for one.
    pub user_presence: bool,
}

/// What a file held for one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct U2fImport {
    /// Usable credentials, in file order.
    pub credentials: Vec<U2fCredential>,
    /// Credentials skipped, with the reason (1-based position on the line).
    pub skipped: Vec<(usize, String)>,
}

/// The credentials of `user` in the text of a `u2f_keys` file.
pub fn parse_u2f_keys(text: &str, user: &str) -> U2fImport {
    let Some(line) = text
        .lines()
        .rfind(|line| line.split(':').next() == Some(user))
    else {
        return U2fImport::default();
    };
    let mut import = U2fImport::default();
    for (position, entry) in line.split(':').skip(1).enumerate() {
        let position = position + 1;
        if entry.trim().is_empty() {
            continue;
        }
        match parse_entry(entry.trim()) {
            Ok(credential) => import.credentials.push(credential),
            Err(why) => import.skipped.push((position, why)),
        }
    }
    import
}

fn parse_entry(entry: &str) -> Result<U2fCredential, String> {
    let fields: Vec<&str> = entry.split(',').collect();
    let (key_handle, public_key) = match fields.as_slice() {
        [kh, pk] | [kh, pk, _] | [kh, pk, _, _] => (*kh, *pk),
        _ => return Err("not KeyHandle,PublicKey[,CoseType[,Options]]".into()),
    };
    if key_handle == "*" {
        return Err("resident credential (discoverable credentials are not supported)".into());
    }
    let old_format = fields.len() == 2;
    let credential_id = if old_format {
        data_encoding::BASE64URL_NOPAD
            .decode(key_handle.trim_end_matches('=').as_bytes())
            .map_err(|_| "key handle is not websafe base64".to_string())?
    } else {
        data_encoding::BASE64
            .decode(key_handle.as_bytes())
            .map_err(|_| "key handle is not base64".to_string())?
    };
    if credential_id.is_empty() || credential_id.len() > MAX_CREDENTIAL_ID_BYTES {
        return Err("key handle length out of range".into());
    }
    let algorithm = match fields.get(2).map(|c| c.trim()) {
        None | Some("es256") => Algorithm::Es256,
        Some("eddsa") => Algorithm::EdDsa,
        Some(_) => return Err("unsupported COSE type (es256 and eddsa are supported)".into()),
    };
    let key_bytes = if old_format {
        hex::decode(public_key).map_err(|_| "public key is not hex".to_string())?
    } else {
        data_encoding::BASE64
            .decode(public_key.as_bytes())
            .map_err(|_| "public key is not base64".to_string())?
    };
    let public_key = PublicKey::new(algorithm, &key_bytes)?;
    // Lines without options (the U2F-era format, or no fourth field) are
    // from before user presence could be turned off: it was always asked.
    let options = fields.get(3).copied().unwrap_or("+presence");
    let user_verification = options.contains("+pin") || options.contains("+verification");
    let user_presence = options.contains("+presence");
    Ok(U2fCredential {
        credential_id,
        public_key,
        user_verification,
        user_presence,
    })
}
