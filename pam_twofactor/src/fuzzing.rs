//! Entry points for the fuzz targets (fuzz/, cargo-fuzz) and for the test
//! that replays their corpora on every test run: every parser of untrusted
//! or hand-edited input, and the code typed at the prompt. Each must return
//! without panicking whatever the bytes, and round-trips must be exact.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use twofactor_core::config::Config;
use twofactor_core::enrollment::{Enrollment, EnrollmentFormat};
use twofactor_core::state::{FailureKind, LoginState};
use twofactor_core::{backup, verify};

use crate::args::ModuleArgs;

/// The system configuration.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text, "fuzz");
    }
}

/// Module arguments (NUL-separated), applied to the default configuration.
pub fn module_args(data: &[u8]) {
    let args: Vec<String> = data
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if let Ok(parsed) = ModuleArgs::parse(&args) {
        let mut config = Config::default();
        let _ = parsed.apply(&mut config);
        let _ = parsed.config_path();
    }
}

/// The enrollment file, JSON or TOML; what parses must survive a write in
/// either format and a re-read.
pub fn enrollment(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = Enrollment::parse(text, "fuzz") {
        for format in [EnrollmentFormat::Json, EnrollmentFormat::Toml] {
            let again = Enrollment::parse(&parsed.to_text(format), "again")
                .unwrap_or_else(|e| panic!("own {format:?} output does not parse: {e}"));
            assert_eq!(again, parsed, "enrollment round trip through {format:?}");
        }
    }
}

/// A `~/.google_authenticator` file (`twofactor import google-authenticator`):
/// whatever parses has a usable secret, scratch codes that hash as legacy
/// backup codes, and a window that does not overflow.
pub fn google_authenticator(data: &[u8]) {
    use twofactor_core::google_authenticator::GoogleAuthenticatorFile;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = GoogleAuthenticatorFile::parse(text) {
        assert!(!parsed.secret.is_empty());
        let (before, after) = parsed.window_steps();
        assert!(before <= after);
        for code in &parsed.scratch_codes {
            assert!(backup::hash_legacy(code).is_some(), "scratch code shape");
        }
    }
}

/// The state file; what parses must survive a write and a re-read.
pub fn state(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = LoginState::parse(text, "fuzz") {
        let again = LoginState::parse(&parsed.to_text(), "again").expect("own output parses");
        assert_eq!(again, parsed, "state round trip");
    }
}

fn answer_fixture() -> &'static (Enrollment, LoginState) {
    static FIXTURE: OnceLock<(Enrollment, LoginState)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let enrollment = Enrollment::parse(
            "version = 1\n\
             [totp]\n\
             secret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n\
             [[backup_codes]]\n\
             salt = \"00112233445566778899aabbccddeeff\"\n\
             hash = \"9c1185a5c5e9fc54612808977ee8f548b2258d31a3b0ae7b3d7c0a9f0d9f6f2a\"\n",
            "fixture",
        )
        .expect("fixture parses");
        let state = LoginState {
            last_totp_step: Some(59_999_999),
            ..LoginState::default()
        };
        (enrollment, state)
    })
}

/// What is typed at the prompt: the first 8 bytes are the time, the rest the
/// answer, checked as a code and as password + code.
pub fn answer(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let (time, rest) = data.split_at(8);
    let now = u64::from_le_bytes(time.try_into().expect("8 bytes"));
    let answer = String::from_utf8_lossy(rest);
    let (enrollment, state) = answer_fixture();
    let _ = backup::normalize(&answer);
    // Under every combination of locked kinds: a kind is compared only when
    // it is open and the answer has its shape, and only what was compared
    // can accept.
    for (code, backup_code) in [(true, true), (true, false), (false, true), (false, false)] {
        let open = verify::Kinds { code, backup_code };
        let alone = verify::check_code(enrollment, state, &answer, now, 1, open);
        let together = verify::check_password_and_code(enrollment, state, &answer, now, 1, open);
        for checked in [&alone, &together] {
            for kind in checked.checked.iter() {
                assert!(open.contains(kind) && checked.shaped.contains(kind));
            }
            if let Some(method) = checked.verdict.method() {
                let kind = match method {
                    twofactor_core::state::Method::Totp => FailureKind::Code,
                    _ => FailureKind::BackupCode,
                };
                assert!(checked.checked.contains(kind));
            }
        }
        let split = together
            .password_len
            .expect("password and code has a split");
        assert!(split <= answer.len() && answer.is_char_boundary(split));
    }
}

/// What a security key returns: authenticator data (with or without an
/// attested credential and its COSE key), checked as a registration and as
/// an assertion against a fixed credential.
pub fn fido2_authenticator_data(data: &[u8]) {
    use twofactor_core::fido2;
    let _ = fido2::parse_cose_key(data);
    if let Ok(parsed) = fido2::AuthenticatorData::parse(data) {
        assert!(data.len() >= 37);
        let _ = parsed.attested.map(|a| a.public_key.bytes().len());
    }
    let _ = fido2::parse_registration(data, "pam://fuzz");
    let assertion = fido2::Assertion {
        credential_id: vec![1; 16],
        auth_data: data.to_vec(),
        signature: data.iter().rev().copied().collect(),
    };
    let expected = fido2::Expectation {
        rp_id: "pam://fuzz",
        client_data_hash: [0; 32],
        user_verification: false,
        stored_counter: 0,
    };
    let _ = fido2::verify_assertion(&[], &assertion, &expected);
}

/// One line from the FIDO2 helper (or to it): what parses must survive an
/// encoding and a re-parse unchanged.
pub fn fido2_helper_line(data: &[u8]) {
    use twofactor_core::fido2::helper::{decode_line, encode_line, Request, Response};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(response) = decode_line::<Response>(text) {
        let again: Response = decode_line(&encode_line(&response)).expect("own output parses");
        assert_eq!(again, response, "response round trip");
    }
    if let Ok(request) = decode_line::<Request>(text) {
        let again: Request = decode_line(&encode_line(&request)).expect("own output parses");
        assert_eq!(again, request, "request round trip");
    }
}

/// A pam_u2f `u2f_keys` file, for the user named on its first line.
pub fn u2f_keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let user = text.split(':').next().unwrap_or_default();
    let import = twofactor_core::fido2::pam_u2f::parse_u2f_keys(text, user);
    for credential in &import.credentials {
        assert!(!credential.credential_id.is_empty());
    }
}
