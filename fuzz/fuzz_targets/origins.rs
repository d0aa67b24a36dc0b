#![no_main]
//! Fuzz target: pam_twofactor::fuzzing::origins, also replayed over the corpus by the test suite.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pam_twofactor::fuzzing::origins(data);
});
