//! The time a login is decided at: the module's only reading of the wall
//! clock for a decision. (Deadlines, such as the FIDO2 helper's, use the
//! monotonic clock; syslog lines are stamped in `twofactor_core::audit`.)
#![forbid(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

/// PAM environment variable that sets the time in builds with the
/// `test-clock` feature. Release builds contain neither the name nor the code.
#[cfg(feature = "test-clock")]
pub const TEST_CLOCK_VARIABLE: &str = "PAM_TWOFACTOR_TEST_NOW";

/// Seconds since the Unix epoch (0 if the clock is before 1970, which makes
/// every code fail rather than succeed).
pub fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
