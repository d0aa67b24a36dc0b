//! Audit lines to syslog (auth facility), in the form log tools expect from
//! PAM modules: `PROGRAM[PID]: pam_twofactor(SERVICE:auth): message`.
//!
//! One datagram per line through the `syslog` crate; when there is no
//! `/dev/log` the line is dropped rather than written to the console.
//! Values that come from users (names, hosts) are escaped so they cannot
//! forge extra fields or lines.
#![forbid(unsafe_code)]

use syslog::{Facility, Formatter3164};

/// How serious a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Misconfiguration, unsafe files, internal errors.
    Error,
    /// Refused logins.
    Warning,
    /// Outcomes worth attention that are not failures (ignored users).
    Notice,
    /// Successful logins.
    Info,
}

/// Where audit lines go; a test implementation collects them.
pub trait AuditLog {
    /// Record one line.
    fn record(&mut self, severity: Severity, message: &str);
}

/// The system log.
pub struct Syslog {
    service: String,
}

impl Syslog {
    /// Lines for `service` (PAM_SERVICE; "?" when unknown).
    pub fn new(service: Option<&str>) -> Self {
        Syslog {
            service: sanitize(service.unwrap_or("?")),
        }
    }
}

fn program_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|name| sanitize(name.trim_end()))
        .unwrap_or_else(|_| "pam_twofactor".into())
}

fn send(severity: Severity, line: &str) {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTH,
        hostname: None,
        process: program_name(),
        pid: std::process::id(),
    };
    let Ok(mut logger) = syslog::unix(formatter) else {
        return;
    };
    // A failed send cannot be reported anywhere without printing; the login
    // outcome does not depend on it.
    let _ = match severity {
        Severity::Error => logger.err(line),
        Severity::Warning => logger.warning(line),
        Severity::Notice => logger.notice(line),
        Severity::Info => logger.info(line),
    };
}

impl AuditLog for Syslog {
    fn record(&mut self, severity: Severity, message: &str) {
        send(
            severity,
            &format!("pam_twofactor({}:auth): {message}", self.service),
        );
    }
}

/// Log an internal error outside any transaction (the panic hook).
pub fn internal_error(message: &str) {
    send(Severity::Error, &format!("pam_twofactor: {message}"));
}

/// Printable ASCII is kept; everything else (control characters, spaces,
/// quotes, non-ASCII) becomes `\xNN`, and the result is capped, so a value
/// always reads as one token.
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
