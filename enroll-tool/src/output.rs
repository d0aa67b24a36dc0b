//! Writing results: stdout for results, one `twofactor: warning: ...` line
//! on stderr for warnings, JSON as one line. And the clock, read here once
//! per use so that everything else takes the time as a parameter.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use zeroize::Zeroizing;

use twofactor_core::files::describe_io_error;

use crate::error::CliError;

/// Write `text` to `out` and flush it.
pub fn write(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|err| {
            CliError::System(format!(
                "cannot write the output: {}",
                describe_io_error(&err)
            ))
        })
}

/// Write `text` to stdout.
pub fn print(text: &str) -> Result<(), CliError> {
    write(&mut io::stdout().lock(), text)
}

/// One warning line on stderr (never fails: a closed stderr is ignored).
pub fn warn(message: &str) {
    let message = crate::error::one_line(message);
    let _ = writeln!(io::stderr().lock(), "twofactor: warning: {message}");
}

/// `value` as one line of JSON (with the newline), in a zeroizing buffer
/// since some reports hold secrets.
pub fn json_line(value: &impl Serialize) -> Result<Zeroizing<String>, CliError> {
    let mut text = Zeroizing::new(
        serde_json::to_string(value)
            .map_err(|err| CliError::System(format!("cannot encode the result as JSON: {err}")))?,
    );
    text.push('\n');
    Ok(text)
}

/// The current unix time.
pub fn now() -> Result<u64, CliError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .map_err(|_| CliError::System("the system clock is before 1970".into()))
}
