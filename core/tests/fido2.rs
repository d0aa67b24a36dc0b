//! FIDO2 verification driven by the software authenticator: real P-256 and
//! Ed25519 keys, real signatures, and every way an assertion can be wrong.

use twofactor_core::enrollment::Enrollment;
use twofactor_core::fido2::pam_u2f::parse_u2f_keys;
use twofactor_core::fido2::{
    client_data_hash, parse_registration, verify_assertion, Algorithm, Assertion, Credential,
    Expectation, Origin, Refusal, FLAG_USER_PRESENT,
};
use twofactor_soft_authenticator::{Alg, Behaviour, SoftAuthenticator};

const RP: &str = "pam://testhost";

fn register(device: &mut SoftAuthenticator, alg: Alg, name: &str) -> Credential {
    let cdh = client_data_hash(b"registration challenge");
    let reg = device
        .make_credential(RP, &cdh, &[alg], false, None)
        .unwrap();
    let new = parse_registration(&reg.auth_data, RP).unwrap();
    assert_eq!(new.credential_id, reg.credential_id);
    assert_eq!(new.public_key.bytes(), reg.public_key.as_slice());
    Credential {
        name: name.into(),
        rp_id: RP.into(),
        credential_id: new.credential_id,
        public_key: new.public_key,
        user_verification: false,
        flags: new.flags,
        sign_count: new.sign_count,
        created: 1,
        origin: Origin::Registered,
    }
}

fn assertion(
    device: &mut SoftAuthenticator,
    credential: &Credential,
    challenge: &[u8],
) -> Assertion {
    let a = device
        .get_assertion(
            RP,
            &client_data_hash(challenge),
            std::slice::from_ref(&credential.credential_id),
            true,
            false,
            None,
        )
        .unwrap();
    Assertion {
        credential_id: a.credential_id,
        auth_data: a.auth_data,
        signature: a.signature,
    }
}

fn expect(challenge: &[u8], stored: u32) -> Expectation<'static> {
    Expectation {
        rp_id: RP,
        client_data_hash: client_data_hash(challenge),
        user_verification: false,
        stored_counter: stored,
    }
}

#[test]
fn es256_and_eddsa_assertions_verify_and_the_counter_moves() {
    for alg in [Alg::Es256, Alg::Eddsa] {
        let mut device = SoftAuthenticator::new(Behaviour::random());
        let credential = register(&mut device, alg, "key");
        assert_eq!(
            credential.public_key.algorithm(),
            if alg == Alg::Es256 {
                Algorithm::Es256
            } else {
                Algorithm::EdDsa
            }
        );
        let a = assertion(&mut device, &credential, b"c1");
        let verified = verify_assertion(
            std::slice::from_ref(&credential),
            &a,
            &expect(b"c1", credential.sign_count),
        )
        .unwrap();
        assert_eq!(verified.index, 0);
        assert_eq!(verified.counter, 2);
        assert!(!verified.user_verified);
        // The same assertion checked against another challenge fails.
        assert_eq!(
            verify_assertion(std::slice::from_ref(&credential), &a, &expect(b"c2", 1)),
            Err(Refusal::BadSignature)
        );
    }
}

#[test]
fn refusals() {
    let mut device = SoftAuthenticator::new(Behaviour::random());
    let credential = register(&mut device, Alg::Es256, "key");
    let creds = std::slice::from_ref(&credential);

    // Wrong relying party.
    device.behaviour.sign_rp_id = Some("pam://elsewhere".into());
    let a = assertion(&mut device, &credential, b"x");
    assert_eq!(
        verify_assertion(creds, &a, &expect(b"x", 0)),
        Err(Refusal::WrongRelyingParty)
    );
    device.behaviour.sign_rp_id = None;

    // No user presence.
    device.behaviour.user_present = false;
    let a = assertion(&mut device, &credential, b"x");
    assert_eq!(a.auth_data[32] & FLAG_USER_PRESENT, 0);
    assert_eq!(
        verify_assertion(creds, &a, &expect(b"x", 0)),
        Err(Refusal::UserPresenceMissing)
    );
    device.behaviour.user_present = true;

    // User verification required by policy, or by the credential.
    let a = assertion(&mut device, &credential, b"x");
    let mut e = expect(b"x", 0);
    e.user_verification = true;
    assert_eq!(
        verify_assertion(creds, &a, &e),
        Err(Refusal::UserVerificationMissing)
    );
    let mut uv_credential = credential.clone();
    uv_credential.user_verification = true;
    assert_eq!(
        verify_assertion(std::slice::from_ref(&uv_credential), &a, &expect(b"x", 0)),
        Err(Refusal::UserVerificationMissing)
    );
    // With built-in UV asked for, it passes.
    device.behaviour.builtin_uv = true;
    let uv = device
        .get_assertion(
            RP,
            &client_data_hash(b"y"),
            std::slice::from_ref(&credential.credential_id),
            true,
            true,
            None,
        )
        .unwrap();
    let uv = Assertion {
        credential_id: uv.credential_id,
        auth_data: uv.auth_data,
        signature: uv.signature,
    };
    let mut e = expect(b"y", 0);
    e.user_verification = true;
    assert!(verify_assertion(creds, &uv, &e).unwrap().user_verified);

    // Counter regression: equal, lower, and a counter that stopped at 0.
    let a = assertion(&mut device, &credential, b"z");
    let counter = u32::from_be_bytes(a.auth_data[33..37].try_into().unwrap());
    for stored in [counter, counter + 5] {
        assert_eq!(
            verify_assertion(creds, &a, &expect(b"z", stored)),
            Err(Refusal::CounterRegression {
                stored,
                received: counter
            })
        );
    }
    assert!(verify_assertion(creds, &a, &expect(b"z", counter - 1)).is_ok());
    device.behaviour.counter = 0;
    device.behaviour.counter_step = 0;
    let zero = assertion(&mut device, &credential, b"z");
    assert!(matches!(
        verify_assertion(creds, &zero, &expect(b"z", 3)),
        Err(Refusal::CounterRegression { received: 0, .. })
    ));
    // A key without a counter (always 0) is fine while nothing was stored.
    assert!(verify_assertion(creds, &zero, &expect(b"z", 0)).is_ok());
    device.behaviour.counter_step = 1;

    // Tampered signature.
    device.behaviour.tamper_signature = true;
    let a = assertion(&mut device, &credential, b"t");
    assert_eq!(
        verify_assertion(creds, &a, &expect(b"t", 0)),
        Err(Refusal::BadSignature)
    );
    device.behaviour.tamper_signature = false;

    // Tampered authenticator data (flags flipped after signing).
    let mut a = assertion(&mut device, &credential, b"t");
    a.auth_data[32] |= 0x04;
    assert_eq!(
        verify_assertion(creds, &a, &expect(b"t", 0)),
        Err(Refusal::BadSignature)
    );

    // Unknown credential: a credential of another device.
    let mut other = SoftAuthenticator::new(Behaviour::random());
    let stranger = register(&mut other, Alg::Es256, "other");
    let a = assertion(&mut other, &stranger, b"u");
    assert_eq!(
        verify_assertion(creds, &a, &expect(b"u", 0)),
        Err(Refusal::UnknownCredential)
    );
    // A known id with another key's signature.
    let mut forged = a.clone();
    forged.credential_id = credential.credential_id.clone();
    assert_eq!(
        verify_assertion(creds, &forged, &expect(b"u", 0)),
        Err(Refusal::BadSignature)
    );

    // Truncated authenticator data.
    let mut short = assertion(&mut device, &credential, b"s");
    short.auth_data.truncate(36);
    assert!(matches!(
        verify_assertion(creds, &short, &expect(b"s", 0)),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn registration_for_another_relying_party_is_refused() {
    let mut device = SoftAuthenticator::new(Behaviour::random());
    let reg = device
        .make_credential("pam://other", &[0; 32], &[Alg::Es256], false, None)
        .unwrap();
    assert!(parse_registration(&reg.auth_data, RP).is_err());
}

#[test]
fn enrollment_keeps_credentials_and_stays_compatible() {
    let mut device = SoftAuthenticator::new(Behaviour::random());
    let a = register(&mut device, Alg::Es256, "usb-a");
    let b = register(&mut device, Alg::Eddsa, "usb-c");
    let enrollment = Enrollment {
        fido2: vec![a.clone(), b.clone()],
        ..Enrollment::default()
    };
    assert!(enrollment.has_any_method());
    assert!(!enrollment.has_code_method());
    let text = enrollment.to_toml();
    assert!(text.contains("[[fido2]]"), "{}", &*text);
    assert!(text.contains("version = 1"), "{}", &*text);
    let again = Enrollment::parse(&text, "t").unwrap();
    assert_eq!(again, enrollment);

    // Duplicate names or credential ids are refused.
    let dup = Enrollment {
        fido2: vec![
            a.clone(),
            Credential {
                name: "usb-a".into(),
                ..b.clone()
            },
        ],
        ..Enrollment::default()
    };
    let err = Enrollment::parse(&dup.to_toml(), "t")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("security key 2 has the name of an earlier one"),
        "{err}"
    );
    let dup = Enrollment {
        fido2: vec![
            a.clone(),
            Credential {
                name: "x".into(),
                ..a.clone()
            },
        ],
        ..Enrollment::default()
    };
    assert!(Enrollment::parse(&dup.to_toml(), "t").is_err());

    // An enrollment written before security keys still parses.
    let old = "version = 1\n[totp]\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n";
    assert!(Enrollment::parse(old, "t").unwrap().fido2.is_empty());
    // A bad public key is refused with the key's place in the file; its
    // name is the user's text and is not quoted.
    let bad = text.replace("algorithm = \"eddsa\"", "algorithm = \"es256\"");
    let err = Enrollment::parse(&bad, "t").unwrap_err().to_string();
    assert!(err.contains("security key 2: "), "{err}");
    assert!(!err.contains("usb-c"), "{err}");
}

fn b64(bytes: &[u8]) -> String {
    use std::fmt::Write;
    // Standard base64 with padding, as pamu2fcfg writes it.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = out.write_char(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn pam_u2f_lines_import_and_verify() {
    let mut device = SoftAuthenticator::new(Behaviour::random());
    let es = register(&mut device, Alg::Es256, "a");
    let ed = register(&mut device, Alg::Eddsa, "b");
    let legacy = register(&mut device, Alg::Es256, "c");
    // pamu2fcfg (libfido2) writes the ES256 key as raw x ‖ y (64 bytes).
    let es_raw = &es.public_key.bytes()[1..];
    let line = format!(
        "alice:{},{},es256,+presence:{},{},eddsa,+presence+pin:*,{},es256,+presence",
        b64(&es.credential_id),
        b64(es_raw),
        b64(&ed.credential_id),
        b64(ed.public_key.bytes()),
        b64(es_raw),
    );
    let text = format!("bob:AAAA,BBBB,es256,+presence\n{line}\n");
    let import = parse_u2f_keys(&text, "alice");
    assert_eq!(import.credentials.len(), 2, "{import:?}");
    assert_eq!(import.skipped.len(), 1);
    assert!(import.skipped[0].1.contains("resident"));
    assert_eq!(import.credentials[0].credential_id, es.credential_id);
    assert_eq!(import.credentials[0].public_key, es.public_key);
    assert!(!import.credentials[0].user_verification);
    assert!(import.credentials[1].user_verification);
    assert!(import.credentials.iter().all(|c| c.user_presence));
    assert_eq!(import.credentials[1].public_key, ed.public_key);

    // pamu2fcfg --no-user-presence leaves +presence out; --verify writes
    // +verification.
    let options = |options: &str| {
        let line = format!(
            "alice:{},{},es256,{options}\n",
            b64(&es.credential_id),
            b64(es_raw)
        );
        let credential = parse_u2f_keys(&line, "alice").credentials[0].clone();
        (credential.user_presence, credential.user_verification)
    };
    assert_eq!(options("+presence"), (true, false));
    assert_eq!(options(""), (false, false));
    assert_eq!(options("+verification"), (false, true));
    assert_eq!(options("+presence+verification"), (true, true));
    assert_eq!(options("+pin"), (false, true));

    // The old (U2F era) format: websafe base64 handle, hex SEC1 key.
    let websafe = b64(&legacy.credential_id)
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_string();
    let old = format!(
        "alice:{},{}\n",
        websafe,
        legacy
            .public_key
            .bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let import = parse_u2f_keys(&format!("{text}{old}"), "alice");
    // Only the last line of a user counts, as in pam_u2f.
    assert_eq!(import.credentials.len(), 1);
    assert_eq!(import.credentials[0].credential_id, legacy.credential_id);
    assert!(import.credentials[0].user_presence, "U2F always asked");

    // An imported credential verifies like a registered one.
    let imported = Credential {
        public_key: import.credentials[0].public_key.clone(),
        ..legacy.clone()
    };
    let a = assertion(&mut device, &legacy, b"i");
    assert!(verify_assertion(&[imported], &a, &expect(b"i", 0)).is_ok());

    assert!(parse_u2f_keys(&text, "carol").credentials.is_empty());
    let junk = parse_u2f_keys("alice:xx,yy,rs256,+presence:zz\n", "alice");
    assert!(junk.credentials.is_empty());
    assert_eq!(junk.skipped.len(), 2);
}
