//! RFC 6238 Appendix B vectors, run through the public `TotpParams` API.
//!
//! The vectors live in `data/rfc6238_vectors.txt` so they can be compared with
//! the RFC table by eye; the row count is checked so a truncated or partly
//! commented-out file fails instead of silently testing less.

use std::collections::BTreeSet;

use twofactor_core::secret::SecretBytes;
use twofactor_core::totp::{Algorithm, TotpCheck, TotpParams};

const VECTORS: &str = include_str!("data/rfc6238_vectors.txt");
const EXPECTED_VECTORS: usize = 18;
const DIGITS: u8 = 8;
const PERIOD: u64 = 30;

struct Vector {
    line: usize,
    unix_time: u64,
    algorithm: Algorithm,
    code: String,
}

fn parse_algorithm(name: &str) -> Option<Algorithm> {
    // Matching on `name()` keeps the data file's spelling tied to the one the
    // enrollment file and otpauth URIs use.
    [Algorithm::SHA1, Algorithm::SHA256, Algorithm::SHA512]
        .into_iter()
        .find(|a| a.name() == name)
}

/// The errata key for each algorithm: "1234567890" repeated to the hash's
/// output length.
fn rfc_key(algorithm: Algorithm) -> SecretBytes {
    let len = match algorithm {
        Algorithm::SHA1 => 20,
        Algorithm::SHA256 => 32,
        Algorithm::SHA512 => 64,
    };
    SecretBytes::new(b"1234567890".iter().copied().cycle().take(len).collect())
}

fn params(algorithm: Algorithm) -> TotpParams {
    TotpParams {
        secret: rfc_key(algorithm),
        algorithm,
        digits: DIGITS,
        period: PERIOD,
    }
}

fn vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    for (index, raw) in VECTORS.lines().enumerate() {
        let line = index + 1;
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [time, algorithm, code] = fields[..] else {
            panic!("line {line}: expected `unix_time algorithm code`, got {raw:?}");
        };
        let unix_time = time
            .parse()
            .unwrap_or_else(|e| panic!("line {line}: bad time {time:?}: {e}"));
        let algorithm = parse_algorithm(algorithm)
            .unwrap_or_else(|| panic!("line {line}: unknown algorithm {algorithm:?}"));
        assert!(
            code.len() == usize::from(DIGITS) && code.bytes().all(|b| b.is_ascii_digit()),
            "line {line}: code {code:?} is not {DIGITS} digits"
        );
        out.push(Vector {
            line,
            unix_time,
            algorithm,
            code: code.to_string(),
        });
    }
    out
}

#[test]
fn data_file_holds_the_whole_table() {
    let vectors = vectors();
    assert_eq!(
        vectors.len(),
        EXPECTED_VECTORS,
        "rfc6238_vectors.txt should hold all {EXPECTED_VECTORS} RFC 6238 Appendix B rows"
    );
    // A duplicated row would keep the count right while hiding a missing one.
    let distinct: BTreeSet<(u64, &str)> = vectors
        .iter()
        .map(|v| (v.unix_time, v.algorithm.name()))
        .collect();
    assert_eq!(
        distinct.len(),
        vectors.len(),
        "duplicate (time, algorithm) rows"
    );
}

#[test]
fn code_at_matches_rfc() {
    for v in vectors() {
        let got = params(v.algorithm).code_at(v.unix_time);
        assert_eq!(
            got.as_str(),
            v.code,
            "line {}: {} at {}",
            v.line,
            v.algorithm.name(),
            v.unix_time
        );
    }
}

#[test]
fn verify_accepts_rfc_codes_at_their_step() {
    for v in vectors() {
        let p = params(v.algorithm);
        let step = v.unix_time / PERIOD;
        // Window 0 pins the step exactly; window 1 checks that the neighbours
        // computed around it do not change which step is reported.
        for window in [0, 1] {
            assert_eq!(
                p.verify(&v.code, v.unix_time, window, None),
                TotpCheck::Accepted { step },
                "line {}: {} at {} (window {window})",
                v.line,
                v.algorithm.name(),
                v.unix_time
            );
        }
    }
}
