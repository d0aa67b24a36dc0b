//! otpauth:// URIs (the Key Uri Format understood by authenticator apps).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use zeroize::Zeroizing;

use crate::enrollment::encode_base32_secret;
use crate::totp::TotpParams;

// Unreserved characters (RFC 3986) stay as they are; everything else is escaped.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URI for `params`, labelled `issuer:account`. Algorithm, digits and
/// period are always written, so every app derives the same codes.
pub fn totp_uri(params: &TotpParams, issuer: &str, account: &str) -> Zeroizing<String> {
    let issuer_enc = utf8_percent_encode(issuer, COMPONENT).to_string();
    let account_enc = utf8_percent_encode(account, COMPONENT).to_string();
    let secret = encode_base32_secret(&params.secret);
    Zeroizing::new(format!(
        "otpauth://totp/{issuer_enc}:{account_enc}?secret={}&issuer={issuer_enc}&algorithm={}&digits={}&period={}",
        secret.as_str(),
        params.algorithm.name(),
        params.digits,
        params.period
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretBytes;
    use crate::totp::Algorithm;

    #[test]
    fn uri_carries_every_parameter() {
        let params = TotpParams {
            secret: SecretBytes::new(b"12345678901234567890".to_vec()),
            algorithm: Algorithm::SHA256,
            digits: 8,
            period: 60,
        };
        let uri = totp_uri(&params, "Example Co", "alice@host");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Example%20Co:alice%40host?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Example%20Co&algorithm=SHA256&digits=8&period=60"
        );
    }
}
