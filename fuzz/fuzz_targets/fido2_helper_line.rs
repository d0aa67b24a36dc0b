#![no_main]
//! Fuzz target: pam_twofactor::fuzzing::fido2_helper_line, also replayed over the corpus by the test suite.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pam_twofactor::fuzzing::fido2_helper_line(data);
});
