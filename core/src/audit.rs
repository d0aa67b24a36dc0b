//! Audit lines in the system log, shared by the PAM module and `twofactor`:
//! one RFC 3164 datagram per line to `/dev/log`, auth facility, and the
//! escaping that keeps values from users inside one token.
//!
//! [`sanitize`] is the one escaping of bytes that come from users (PAM
//! items, files, paths) on their way into a log line or an error message.
//! [`escape_control_chars`] applies it to the control characters of a whole
//! line, at the sinks (syslog here, the terminal in `twofactor`), so that a
//! value that escaped escaping still cannot start a forged line or drive a
//! terminal.

use std::borrow::Cow;

use syslog::{Facility, LogFormat};

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

/// RFC 3164 lines (`<PRI>Mmm dd hh:mm:ss process[pid]: message`, UTC) for
/// the syslog crate's transport. The crate's own formatter parses its time
/// format description on every line; this one costs a few arithmetic steps.
#[derive(Clone)]
struct AuditFormatter<'a> {
    process: &'a str,
    pid: u32,
    now: u64,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl LogFormat<&str> for AuditFormatter<'_> {
    fn format<W: std::io::Write>(
        &self,
        w: &mut W,
        severity: syslog::Severity,
        message: &str,
    ) -> syslog::Result<()> {
        let time = crate::timefmt::civil(self.now);
        let month = MONTHS
            .get((time.month as usize).wrapping_sub(1))
            .unwrap_or(&"Jan");
        write!(
            w,
            "<{}>{month} {:>2} {:02}:{:02}:{:02} {}[{}]: {message}",
            Facility::LOG_AUTH as u8 | severity as u8,
            time.day,
            time.seconds / 3600,
            time.seconds / 60 % 60,
            time.seconds % 60,
            self.process,
            self.pid
        )
        .map_err(syslog::Error::Write)
    }
}

/// Send `line` as `process[pid]: line` with the auth facility. Without a
/// `/dev/log` the line is dropped: it is never written to a console or a
/// terminal, and a failure to log changes nothing for the caller.
pub fn send(process: &str, severity: Severity, line: &str) {
    let line = escape_control_chars(line);
    let line = line.as_ref();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let formatter = AuditFormatter {
        process,
        pid: std::process::id(),
        now,
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

/// `text` with every control character (C0, DEL, C1) replaced by its
/// [`sanitize`] form and everything else kept: the last line of defence
/// of a sink, where a line break would start a forged line and an escape
/// sequence would reach a terminal.
pub fn escape_control_chars(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut buffer = [0u8; 4];
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&sanitize(c.encode_utf8(&mut buffer)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_rfc3164_with_the_auth_facility() {
        let formatter = AuditFormatter {
            process: "sshd",
            pid: 42,
            now: 1_800_000_000 - 14 * 86_400 + 5,
        };
        let mut out = Vec::new();
        formatter
            .format(
                &mut out,
                syslog::Severity::LOG_WARNING,
                "second factor refused",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<36>Jan  1 08:00:05 sshd[42]: second factor refused"
        );
    }

    #[test]
    fn sanitize_keeps_one_token() {
        assert_eq!(sanitize("alice"), "alice");
        assert_eq!(sanitize("a b\nc"), "a\\x20b\\x0ac");
        assert_eq!(sanitize("x\"=y"), "x\\x22=y");
        assert_eq!(sanitize("é"), "\\xc3\\xa9");
        assert!(sanitize(&"a".repeat(1000)).len() < 300);
    }

    #[test]
    fn sinks_escape_every_control_character_and_keep_the_rest() {
        assert_eq!(escape_control_chars("plain text, é"), "plain text, é");
        assert_eq!(
            escape_control_chars("a\nb\r\x1b[31m\x07\x7f\u{9b}c"),
            "a\\x0ab\\x0d\\x1b[31m\\x07\\x7f\\xc2\\x9bc"
        );
        assert!(matches!(
            escape_control_chars("no change"),
            Cow::Borrowed(_)
        ));
    }
}
