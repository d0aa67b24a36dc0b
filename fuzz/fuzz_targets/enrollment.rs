#![no_main]
//! Fuzz target: see twofactor_fuzz_targets::enrollment (shared with the corpus replay test).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pam_twofactor::fuzzing::enrollment(data);
});
