//! Cross-check `TotpParams::code_at` against OATH Toolkit's `oathtool`, an
//! independent implementation, over algorithms, code lengths, periods and
//! times (including the current one and one past 2^32 seconds).
//!
//! `oathtool` is a hard requirement: when it is missing these tests fail and
//! say which package to install, because a skipped cross-check looks exactly
//! like a passing one in CI output.

use std::io::{ErrorKind, Write};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::OsRng;
use rand::RngCore;
use twofactor_core::enrollment::{decode_base32_secret, encode_base32_secret};
use twofactor_core::secret::SecretBytes;
use twofactor_core::totp::{Algorithm, TotpCheck, TotpParams, GENERATED_SECRET_BYTES};

const OATHTOOL: &str = "oathtool";
const ALGORITHMS: [Algorithm; 3] = [Algorithm::SHA1, Algorithm::SHA256, Algorithm::SHA512];
const DIGITS: [u8; 2] = [6, 8];
const PERIODS: [u64; 2] = [30, 60];

/// A secret as both sides see it: `base32` is the text handed to `oathtool`,
/// `secret` what our decoder made of the same (or an equivalent) text.
struct Case {
    label: &'static str,
    base32: String,
    secret: SecretBytes,
}

/// Run `oathtool` in TOTP mode and return the code it prints.
fn oathtool_code(base32: &str, algorithm: Algorithm, digits: u8, period: u64, t: u64) -> String {
    let mode = format!("--totp={}", algorithm.name());
    let digits_arg = digits.to_string();
    let step_arg = format!("{period}s");
    let now_arg = format!("@{t}");
    // The key goes through stdin ("-") rather than argv so the random secret
    // is not visible to other users in the process list.
    let spawned = Command::new(OATHTOOL)
        .args([
            &mode,
            "-b",
            "-d",
            &digits_arg,
            "-s",
            &step_arg,
            "-N",
            &now_arg,
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "`{OATHTOOL}` was not found on PATH. These tests cross-check TOTP codes against it \
             and are never skipped: install the `oathtool` package \
             (Debian/Ubuntu: `apt-get install oathtool`)."
        ),
        Err(e) => panic!("could not run `{OATHTOOL}`: {e}"),
    };
    {
        let mut stdin = child.stdin.take().expect("stdin was piped");
        writeln!(stdin, "{base32}").expect("write key to oathtool");
        // Dropping stdin closes it, so oathtool sees end of input.
    }
    let output = child.wait_with_output().expect("wait for oathtool");
    assert!(
        output.status.success(),
        "oathtool {mode} -d {digits} -s {step_arg} -N {now_arg} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let code = String::from_utf8(output.stdout)
        .expect("oathtool output is UTF-8")
        .trim()
        .to_string();
    assert!(
        code.len() == usize::from(digits) && code.bytes().all(|b| b.is_ascii_digit()),
        "oathtool printed {code:?}, expected {digits} digits"
    );
    code
}

fn decode(text: &str) -> SecretBytes {
    decode_base32_secret(text).unwrap_or_else(|e| panic!("decode {text:?}: {e}"))
}

/// A secret that starts as bytes: encoded with our encoder for `oathtool`, and
/// decoded back for our side, so both directions of the base32 code are used.
fn case_from_bytes(label: &'static str, bytes: Vec<u8>) -> Case {
    let base32 = encode_base32_secret(&SecretBytes::new(bytes.clone())).to_string();
    let secret = decode(&base32);
    assert_eq!(
        secret.expose(),
        bytes.as_slice(),
        "{label}: base32 round trip"
    );
    Case {
        label,
        base32,
        secret,
    }
}

fn cases() -> Vec<Case> {
    let mut random = vec![0u8; GENERATED_SECRET_BYTES];
    OsRng.fill_bytes(&mut random);

    let spaced = decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq");
    assert_eq!(spaced.expose(), b"12345678901234567890");

    vec![
        // The 80-bit size google-authenticator writes (our minimum).
        Case {
            label: "80-bit reference secret",
            base32: "2SH3V3GDW7ZNMGYE".to_string(),
            secret: decode("2SH3V3GDW7ZNMGYE"),
        },
        // Typed the way apps display it; oathtool gets the canonical form.
        Case {
            label: "RFC SHA1 key, lowercase grouped",
            base32: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".to_string(),
            secret: spaced,
        },
        // 16 bytes is not a multiple of 5, so the base32 has a partial last
        // group and no padding: the case decoders most often get wrong.
        Case {
            label: "16-byte unpadded",
            base32: "GEZDGNBVGY3TQOJQGEZDGNBVGY".to_string(),
            secret: decode("GEZDGNBVGY3TQOJQGEZDGNBVGY"),
        },
        case_from_bytes("random 20-byte", random),
        case_from_bytes(
            "RFC SHA512 key (64 bytes)",
            b"1234567890".iter().copied().cycle().take(64).collect(),
        ),
    ]
}

fn times() -> Vec<u64> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock is after 1970")
        .as_secs();
    // Step edges near 0 (both periods), the RFC 6238 times, and one past
    // 2^32 seconds where a 32-bit counter would wrap.
    vec![
        0,
        1,
        29,
        30,
        59,
        60,
        119,
        1_111_111_109,
        1_111_111_111,
        1_234_567_890,
        2_000_000_000,
        20_000_000_000,
        now,
    ]
}

#[test]
fn known_reference_code() {
    let params = TotpParams {
        secret: decode("2SH3V3GDW7ZNMGYE"),
        algorithm: Algorithm::SHA1,
        digits: 6,
        period: 30,
    };
    assert_eq!(params.code_at(300_000).as_str(), "050548");
    // Also confirms the flags used here mean what this file assumes.
    assert_eq!(
        oathtool_code("2SH3V3GDW7ZNMGYE", Algorithm::SHA1, 6, 30, 300_000),
        "050548"
    );
}

#[test]
fn codes_match_oathtool() {
    let times = times();
    let mut checked = 0usize;
    let mut mismatches = Vec::new();
    for case in cases() {
        for algorithm in ALGORITHMS {
            for digits in DIGITS {
                for period in PERIODS {
                    let params = TotpParams {
                        secret: case.secret.clone(),
                        algorithm,
                        digits,
                        period,
                    };
                    for &t in &times {
                        let expected = oathtool_code(&case.base32, algorithm, digits, period, t);
                        let ours = params.code_at(t);
                        let step = t / period;
                        let verdict = params.verify(&expected, t, 0, None);
                        checked += 1;
                        if ours.as_str() != expected || verdict != (TotpCheck::Accepted { step }) {
                            mismatches.push(format!(
                                "{} {} digits={digits} period={period} t={t}: \
                                 oathtool {expected}, code_at {}, verify {verdict:?}",
                                case.label,
                                algorithm.name(),
                                ours.as_str()
                            ));
                        }
                    }
                }
            }
        }
    }
    // Collected rather than asserted one by one so a failure shows whether a
    // whole algorithm, period or secret is off, not just the first instance.
    assert!(
        mismatches.is_empty(),
        "{} of {checked} combinations differ from oathtool:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
