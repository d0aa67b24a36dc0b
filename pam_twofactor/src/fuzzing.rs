//! Entry points for the fuzz targets (fuzz/, cargo-fuzz) and for the test
//! that replays their corpora on every test run: every parser of untrusted
//! or hand-edited input, and the code typed at the prompt. Each must return
//! without panicking whatever the bytes, and round-trips must be exact.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use twofactor_core::config::Config;
use twofactor_core::enrollment::Enrollment;
use twofactor_core::state::LoginState;
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

/// The enrollment file; what parses must survive a write and a re-read.
pub fn enrollment(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = Enrollment::parse(text, "fuzz") {
        let again = Enrollment::parse(&parsed.to_toml(), "again").expect("own output parses");
        assert_eq!(again, parsed, "enrollment round trip");
    }
}

/// The state file; what parses must survive a write and a re-read.
pub fn state(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = LoginState::parse(text, "fuzz") {
        let again = LoginState::parse(&parsed.to_toml(), "again").expect("own output parses");
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
    let _ = verify::check_code(enrollment, state, &answer, now, 1);
    let (_, split) = verify::check_password_and_code(enrollment, state, &answer, now, 1);
    assert!(split <= answer.len() && answer.is_char_boundary(split));
}
