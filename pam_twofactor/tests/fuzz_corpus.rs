//! Every input of the committed fuzz corpora (fuzz/corpus/<target>/) goes
//! through the same entry points as the fuzzers, on every test run: a crash
//! the fuzzer found once stays fixed, without needing the fuzzer.

use std::fs;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = fs::read(&path).expect("corpus file");
        run(&data);
        count += 1;
    }
    assert!(count > 0, "the corpus of {target} is empty");
}

#[test]
fn config_corpus() {
    replay("config", pam_twofactor::fuzzing::config);
}

#[test]
fn module_args_corpus() {
    replay("module_args", pam_twofactor::fuzzing::module_args);
}

#[test]
fn enrollment_corpus() {
    replay("enrollment", pam_twofactor::fuzzing::enrollment);
}

#[test]
fn state_corpus() {
    replay("state", pam_twofactor::fuzzing::state);
}

#[test]
fn answer_corpus() {
    replay("answer", pam_twofactor::fuzzing::answer);
}

#[test]
fn google_authenticator_corpus() {
    replay(
        "google_authenticator",
        pam_twofactor::fuzzing::google_authenticator,
    );
}

#[test]
fn fido2_authenticator_data_corpus() {
    replay(
        "fido2_authenticator_data",
        pam_twofactor::fuzzing::fido2_authenticator_data,
    );
}

#[test]
fn fido2_helper_line_corpus() {
    replay(
        "fido2_helper_line",
        pam_twofactor::fuzzing::fido2_helper_line,
    );
}

#[test]
fn u2f_keys_corpus() {
    replay("u2f_keys", pam_twofactor::fuzzing::u2f_keys);
}

#[test]
fn origins_corpus() {
    replay("origins", pam_twofactor::fuzzing::origins);
}
