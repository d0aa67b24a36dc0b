//! Entry points for the fuzz targets (fuzz/, cargo-fuzz) and for the test
//! that replays their corpora on every test run: every parser of untrusted
//! or hand-edited input, and the code typed at the prompt. Each must return
//! without panicking whatever the bytes, and round-trips must be exact.
//!
//! Their error messages end up in log lines and on terminals: none may hold
//! a control character, and those about users' documents may not quote the
//! document (a key can forge a log line, a value can be the secret).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use twofactor_core::config::Config;
use twofactor_core::enrollment::{Enrollment, EnrollmentFormat};
use twofactor_core::state::{FailureKind, LoginState};
use twofactor_core::{backup, verify, Error};

use crate::args::ModuleArgs;

/// The system configuration.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = Config::parse(text, "fuzz") {
            assert_no_control_character(&e.to_string());
        }
    }
}

/// Module arguments (NUL-separated), applied to the default configuration.
pub fn module_args(data: &[u8]) {
    let args: Vec<String> = data
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    match ModuleArgs::parse(&args) {
        Ok(parsed) => {
            let mut config = Config::default();
            if let Err(e) = parsed.apply(&mut config) {
                assert_no_control_character(&e.to_string());
            }
            let _ = parsed.config_path();
        }
        Err(e) => assert_no_control_character(&e.to_string()),
    }
}

/// The enrollment file, JSON or TOML; what parses must survive a write in
/// either format and a re-read.
pub fn enrollment(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Enrollment::parse(text, "fuzz") {
        Ok(parsed) => {
            for format in [EnrollmentFormat::Json, EnrollmentFormat::Toml] {
                let again = Enrollment::parse(&parsed.to_text(format), "again")
                    .unwrap_or_else(|e| panic!("own {format:?} output does not parse: {e}"));
                assert_eq!(again, parsed, "enrollment round trip through {format:?}");
            }
        }
        Err(e) => assert_document_error_is_clean(&e, text, true),
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
    match GoogleAuthenticatorFile::parse(text) {
        Ok(parsed) => {
            assert!(!parsed.secret.is_empty());
            let (before, after) = parsed.window_steps();
            assert!(before <= after);
            for code in &parsed.scratch_codes {
                assert!(backup::hash_legacy(code).is_some(), "scratch code shape");
            }
        }
        Err(why) => {
            let why = why.to_string();
            assert_no_control_character(&why);
            assert_nothing_quoted(&why, text.split_whitespace());
        }
    }
}

/// The state file; what parses must survive a write and a re-read.
pub fn state(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match LoginState::parse(text, "fuzz") {
        Ok(parsed) => {
            let again = LoginState::parse(&parsed.to_text(), "again").expect("own output parses");
            assert_eq!(again, parsed, "state round trip");
        }
        // The state is root's and may name its version; the strings in it
        // (origins, hosts) come from users.
        Err(e) => assert_document_error_is_clean(&e, text, false),
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
            assert_no_control_character(checked.verdict.reason());
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
    match decode_line::<Response>(text) {
        Ok(response) => {
            let again: Response = decode_line(&encode_line(&response)).expect("own output parses");
            assert_eq!(again, response, "response round trip");
        }
        Err(why) => assert_no_control_character(&why),
    }
    match decode_line::<Request>(text) {
        Ok(request) => {
            let again: Request = decode_line(&encode_line(&request)).expect("own output parses");
            assert_eq!(again, request, "request round trip");
        }
        Err(why) => assert_no_control_character(&why),
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
    for (_, why) in &import.skipped {
        assert_no_control_character(why);
        assert_nothing_quoted(why, text.split([':', ',', '\n', ' ']));
    }
}

/// What the parsers' messages about documents are made of: a fragment of
/// the input that appears in a message is not a quotation when all its
/// words come from here (or are short numbers, such as positions).
const MESSAGE_WORDS: &str = "TOML JSON syntax error unexpected field or value at line column \
    read end of the document unsupported version this module reads TOTP secret is not valid \
    base32 too short bits least required long digits must be to period seconds many backup \
    codes most code salt hash hex bytes security keys key has the name of an earlier one \
    repeats credential_id public_key base64url a s have control characters surrounding spaces \
    characters relying-party id printable ASCII an ES256 Ed25519 P-256 point on \
    state file enrollment invalid empty first secret option usable neither nor scratch eight \
    starting with 0 more than without HOTP_COUNTER STEP_SIZE WINDOW_SIZE RATE_LIMIT \
    DISALLOW_REUSE TIME_SKEW missing number large lists step KeyHandle PublicKey CoseType \
    Options resident credential discoverable credentials are supported handle length out \
    range websafe base64 unsupported COSE type es256 eddsa";

fn is_own_wording(fragment: &str) -> bool {
    fragment
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-')
        .all(|word| {
            word.is_empty()
                || (word.len() <= 5 && word.bytes().all(|b| b.is_ascii_digit()))
                || MESSAGE_WORDS.contains(word)
        })
}

fn assert_no_control_character(message: &str) {
    assert!(
        !message.chars().any(char::is_control),
        "control character in the message {message:?}"
    );
}

/// No piece of the input of 6 bytes or more appears in `message`, unless
/// it is made of the messages' own words.
fn assert_nothing_quoted<'a>(message: &str, pieces: impl IntoIterator<Item = &'a str>) {
    for piece in pieces {
        assert!(
            piece.len() < 6 || !message.contains(piece) || is_own_wording(piece),
            "the message {message:?} quotes the input's {piece:?}"
        );
    }
}

/// An enrollment's or a state's parse error: no control character, and
/// none of the document's keys and string values (and, with `numbers`, its
/// numbers) quoted.
fn assert_document_error_is_clean(error: &Error, text: &str, numbers: bool) {
    assert_no_control_character(&error.to_string());
    let Error::Parse { why, .. } = error else {
        return;
    };
    // Positions in messages only reach six digits in larger inputs.
    if text.len() >= 100_000 {
        return;
    }
    let values = document_values(text, numbers);
    assert_nothing_quoted(why, values.iter().map(String::as_str));
}

/// The keys and values of `text` when it is a TOML or JSON document.
fn document_values(text: &str, numbers: bool) -> Vec<String> {
    let mut out = Vec::new();
    if text.trim_start().starts_with('{') {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            json_values(&value, numbers, &mut out);
        }
    } else if let Ok(table) = text.parse::<toml::Table>() {
        for (key, value) in &table {
            out.push(key.clone());
            toml_values(value, numbers, &mut out);
        }
    }
    out
}

fn toml_values(value: &toml::Value, numbers: bool, out: &mut Vec<String>) {
    match value {
        toml::Value::String(text) => out.push(text.clone()),
        toml::Value::Integer(n) if numbers => out.push(n.to_string()),
        toml::Value::Float(n) if numbers => out.push(n.to_string()),
        toml::Value::Array(items) => items.iter().for_each(|v| toml_values(v, numbers, out)),
        toml::Value::Table(table) => {
            for (key, value) in table {
                out.push(key.clone());
                toml_values(value, numbers, out);
            }
        }
        _ => {}
    }
}

fn json_values(value: &serde_json::Value, numbers: bool, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) => out.push(text.clone()),
        serde_json::Value::Number(n) if numbers => out.push(n.to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_values(v, numbers, out)),
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                out.push(key.clone());
                json_values(value, numbers, out);
            }
        }
        _ => {}
    }
}

/// Where a login comes from, as the application and the system give it:
/// PAM_RHOST or PAM_TTY (bounded for the state), `/proc/PID/stat` (whose
/// command name a user chooses) and `/etc/passwd` lines.
pub fn origins(data: &[u8]) {
    use twofactor_core::origin::{bounded, grace_origin, start_time_from_stat, TerminalSession};
    let text = String::from_utf8_lossy(data);
    let stored = bounded(&text);
    assert!(stored.len() <= twofactor_core::origin::MAX_ORIGIN_BYTES);
    assert!(stored.bytes().all(|b| b.is_ascii_graphic()), "{stored:?}");
    assert_eq!(bounded(&text), stored, "the same value keeps one budget");
    let session = start_time_from_stat(&text).map(|leader_start| TerminalSession {
        id: 1,
        leader_start,
    });
    for origin in [
        grace_origin(&text, Some(&text), None, None, &text),
        grace_origin(&text, None, Some(&text), session, &text),
    ]
    .into_iter()
    .flatten()
    {
        assert!(origin.bytes().all(|b| b.is_ascii_graphic()), "{origin:?}");
    }
    for name in twofactor_core::state::local_names_of_uid(&text, 0) {
        assert!(!name.is_empty() && !name.contains(':') && !name.contains('\n'));
    }
}
