//! Shared harness of the integration tests: a private mount namespace with
//! its own `/dev/log` and test accounts, a client of the real libpam, and
//! fixtures (module stacks, configurations, enrollments).
//!
//! Every test binary calls [`namespace::enter`] first, while it is still
//! single-threaded; nothing on the host (`/etc`, `/dev`) is changed.

pub mod checks;
pub mod descriptors;
pub mod fixtures;
pub mod namespace;
pub mod pam_client;
pub mod redis_servers;
pub mod sshd;
pub mod syslog_capture;
pub mod terminal;
pub mod users;

use std::path::PathBuf;

/// The workspace's `target/` directory, from the test binary's location
/// (`target/<profile>/deps/<test>`).
pub fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(PathBuf::from)
        .expect("test binary is not under a target/ directory")
}

/// The module built with the `test-clock` feature (see tests/run-all.sh).
pub fn test_clock_module() -> PathBuf {
    let path = std::env::var_os("PAM_TWOFACTOR_TEST_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("test-module/pam_twofactor_test_clock.so"));
    assert!(
        path.exists(),
        "{} is missing: run tests/run-all.sh (it builds the module with the test-clock feature)",
        path.display()
    );
    path
}

/// The module as installed: built without the `test-clock` feature.
pub fn production_module() -> PathBuf {
    let path = std::env::var_os("PAM_TWOFACTOR_PRODUCTION_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("test-module/pam_twofactor_production.so"));
    assert!(
        path.exists(),
        "{} is missing: run tests/run-all.sh",
        path.display()
    );
    path
}

/// The `twofactor` binary.
pub fn twofactor_binary() -> PathBuf {
    let path = std::env::var_os("TWOFACTOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug/twofactor"));
    assert!(
        path.exists(),
        "{} is missing: run tests/run-all.sh (or cargo build -p twofactor)",
        path.display()
    );
    path
}

/// One integration test: a name and a function of the shared fixture.
pub type NamedTest<S> = (&'static str, fn(&S) -> Result<(), libtest_mimic::Failed>);

/// Run `tests` (name, function) as libtest-mimic trials sharing `shared`,
/// then drop `shared` (its destructors clean up the scratch space and stop
/// servers) and exit with the run's status.
pub fn run_trials<S: Send + Sync + 'static>(shared: S, tests: Vec<NamedTest<S>>) -> ! {
    let args = libtest_mimic::Arguments::from_args();
    let shared = std::sync::Arc::new(shared);
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let shared = std::sync::Arc::clone(&shared);
            libtest_mimic::Trial::test(name, move || test(&shared))
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    drop(shared);
    conclusion.exit()
}
