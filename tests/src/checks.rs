//! Small assertion helpers shared by the integration tests, which run under
//! libtest-mimic and report failures as values rather than panics.

use libtest_mimic::Failed;

use crate::fixtures::Stack;

/// `Ok` when `condition` holds, else a failure with `message`.
pub fn check(condition: bool, message: impl Into<String>) -> Result<(), Failed> {
    if condition {
        Ok(())
    } else {
        Err(message.into().into())
    }
}

/// [`check`] with a message built only on failure (for messages that
/// format whole outputs or files).
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

/// A log line of `stack` containing `needle` arrives within two seconds.
pub fn assert_logged(stack: &Stack, needle: &str) -> Result<(), Failed> {
    check(
        stack.wait_for_log(|l| l.contains(needle)),
        format!(
            "no log line of {} contains {needle:?}; lines: {:#?}",
            stack.service,
            stack.log_lines()
        ),
    )
}

/// No log line received so far contains `secret`.
pub fn assert_not_logged(secret: &str) -> Result<(), Failed> {
    let lines = crate::syslog_capture::all();
    check(
        !lines.iter().any(|l| l.contains(secret)),
        format!("a log line contains a secret ({secret:?})"),
    )
}
