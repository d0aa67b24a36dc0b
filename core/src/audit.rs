//! Audit lines in the system log, shared by the PAM module and `twofactor`:
//! one RFC 3164 datagram per line to `/dev/log`, auth facility, and the
//! escaping that keeps values from users inside one token.

use syslog::{Facility, Formatter3164};

/// How serious a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Misconfiguration, unsafe files, internal errors.
    Error,
    /// Refused logins, failed notifications.
    Warning,
    /// Outcomes worth attention that are not failures.
    Notice,
    /// Successful logins.
    Info,
}

/// Send `line` as `process[pid]: line` with the auth facility. Without a
/// `/dev/log` the line is dropped: it is never written to a console or a
/// terminal, and a failure to log changes nothing for the caller.
pub fn send(process: &str, severity: Severity, line: &str) {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTH,
        hostname: None,
        process: process.to_string(),
        pid: std::process::id(),
    };
    let Ok(mut logger) = syslog::unix(formatter) else {
        return;
    };
    let _ = match severity {
        Severity::Error => logger.err(line),
        Severity::Warning => logger.warning(line),
        Severity::Notice => logger.notice(line),
        Severity::Info => logger.info(line),
    };
}

/// Printable ASCII is kept; everything else (control characters, spaces,
/// quotes, non-ASCII) becomes `\xNN`, and the result is capped, so a value
/// always reads as one token and cannot forge fields or lines.
pub fn sanitize(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(256));
    for byte in value.bytes().take(256) {
        if byte.is_ascii_graphic() && byte != b'"' && byte != b'\\' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    if value.len() > 256 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_one_token() {
        assert_eq!(sanitize("alice"), "alice");
        assert_eq!(sanitize("a b\nc"), "a\\x20b\\x0ac");
        assert_eq!(sanitize("x\"=y"), "x\\x22=y");
        assert_eq!(sanitize("é"), "\\xc3\\xa9");
        assert!(sanitize(&"a".repeat(1000)).len() < 300);
    }
}
