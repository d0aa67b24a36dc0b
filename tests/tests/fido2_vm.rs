//! FIDO2 end to end with the real HID transport: `tests/fido2-vm/run.sh`
//! boots a QEMU guest (TCG) in which the software authenticator is a USB HID
//! device (/dev/uhid), registers it with `twofactor fido2 add`, and logs in
//! through libpam and the module (whose helper uses ctap-hid-fido2 over
//! /dev/hidraw0). This test runs the script and checks every step.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use libtest_mimic::{Arguments, Failed, Trial};
use twofactor_integration_tests::target_dir;

fn end_to_end() -> Result<(), Failed> {
    let work = tempfile::Builder::new()
        .prefix("pam_twofactor-fido2-vm.")
        .tempdir()?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fido2-vm/run.sh");
    let started = Instant::now();
    let output = Command::new(&script)
        .arg(target_dir())
        .arg(work.path())
        .output()?;
    let took = started.elapsed();
    let console = String::from_utf8_lossy(&output.stdout);
    let steps: Vec<&str> = console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("E2E: "))
        .collect();
    // Shown with --nocapture, and kept in the log of a failure.
    println!("fido2 VM: {} s, steps: {steps:#?}", took.as_secs());
    for expected in [
        "first login: PAM_SUCCESS",
        "without the key: PAM_AUTH_ERR",
        "RESULT PASS",
    ] {
        if !steps.iter().any(|s| s.starts_with(expected)) {
            return Err(format!(
                "step {expected:?} missing; exit {:?}\nconsole:\n{console}\nstderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
    }
    if !steps
        .iter()
        .any(|s| s.starts_with("second login: PAM_SUCCESS, counter"))
    {
        return Err(format!("no second login:\n{console}").into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let trial = Trial::test("fido2_add_and_login_in_a_qemu_guest", end_to_end);
    libtest_mimic::run(&args, vec![trial]).exit();
}
