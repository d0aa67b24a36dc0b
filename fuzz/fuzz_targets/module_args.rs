#![no_main]
//! Fuzz target: pam_twofactor::fuzzing::module_args, also replayed over the corpus by the test suite.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pam_twofactor::fuzzing::module_args(data);
});
