//! Where a login comes from, in the form the login state stores: PAM_RHOST
//! and PAM_TTY are set by the application (and, through a client's
//! reverse DNS or a terminal name, partly by whoever connects), so they are
//! escaped and bounded before they are kept or compared. A long value keeps
//! a readable prefix and a digest of the whole, so two values never share a
//! budget or a grace record by sharing a prefix.

use sha2::{Digest, Sha256};

use crate::audit::sanitize;

/// Longest stored form of one origin value, in bytes.
pub const MAX_ORIGIN_BYTES: usize = 64;
/// Readable prefix kept of a longer value.
const PREFIX_CHARS: usize = 40;

/// The stored form of a host name, terminal name or service name: the
/// value itself when it is short printable ASCII, otherwise its escaped
/// prefix, `~` and 16 hex digits of its SHA-256. At most
/// [`MAX_ORIGIN_BYTES`] bytes whatever the input.
pub fn bounded(value: &str) -> String {
    let escaped = sanitize(value);
    if value.len() <= MAX_ORIGIN_BYTES && escaped == value {
        return escaped;
    }
    let digest = Sha256::digest(value.as_bytes());
    let mut out: String = escaped.chars().take(PREFIX_CHARS).collect();
    out.push('~');
    for byte in &digest[..8] {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The terminal session a local login runs in: its session id and the start
/// time (clock ticks since boot) of the session leader, which together are
/// not reused the way terminal names and process ids are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSession {
    /// Session id (the session leader's pid).
    pub id: u32,
    /// The session leader's start time.
    pub leader_start: u64,
}

/// The grace-period origin of a login, scoped by service: `SERVICE|host:RHOST`
/// for remote logins; `SERVICE|tty:TTY|session:ID@START|on:THIS_HOST` for
/// local ones, so that a terminal name reused by a later session does not
/// inherit the grace of an earlier one, and (on a fleet, where the state is
/// shared) a session on one machine never matches one on another. `None` (no grace) for a local login whose terminal
/// session is unknown, or one with neither host nor terminal.
pub fn grace_origin(
    service: &str,
    host: Option<&str>,
    tty: Option<&str>,
    session: Option<TerminalSession>,
    this_host: &str,
) -> Option<String> {
    let service = bounded(service);
    match (host, tty, session) {
        (Some(host), _, _) => Some(format!("{service}|host:{}", bounded(host))),
        (None, Some(tty), Some(session)) => Some(format!(
            "{service}|tty:{}|session:{}@{}|on:{}",
            bounded(tty),
            session.id,
            session.leader_start,
            bounded(this_host)
        )),
        _ => None,
    }
}

/// The session of a process from the text of its `/proc/PID/stat` (field
/// 6), or `None` when it is 0: the session's leader is in an ancestor PID
/// namespace (a container entered from outside), so sessions cannot be
/// told apart.
pub fn session_from_stat(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let session: u32 = after_name.split_whitespace().nth(3)?.parse().ok()?;
    (session > 0).then_some(session)
}

/// The start time of process `pid` from the text of `/proc/PID/stat`
/// (field 22; the command name, field 2, may hold spaces and parentheses,
/// so fields are counted after its closing parenthesis).
pub fn start_time_from_stat(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_printable_values_are_kept() {
        assert_eq!(bounded("192.0.2.1"), "192.0.2.1");
        assert_eq!(bounded("2001:db8::1"), "2001:db8::1");
        assert_eq!(bounded("/dev/pts/3"), "/dev/pts/3");
    }

    #[test]
    fn long_or_odd_values_are_bounded_and_distinct() {
        let huge = "a".repeat(50_000_000 / 1000);
        let a = bounded(&huge);
        assert!(a.len() <= MAX_ORIGIN_BYTES, "{a}");
        let mut other = huge.clone();
        other.push('b');
        assert_ne!(bounded(&other), a);
        let odd = bounded("host\nuser=root\x1b[2J");
        assert!(odd.len() <= MAX_ORIGIN_BYTES);
        assert!(odd.bytes().all(|b| b.is_ascii_graphic()), "{odd}");
        assert_ne!(odd, bounded("host\nuser=root\x1b[2K"));
        // Deterministic: the same host always has the same budget.
        assert_eq!(bounded(&huge), a);
    }

    #[test]
    fn grace_origins_are_scoped() {
        let session = Some(TerminalSession {
            id: 41,
            leader_start: 9000,
        });
        assert_eq!(
            grace_origin("sshd", Some("192.0.2.1"), Some("ssh"), None, "alpha").as_deref(),
            Some("sshd|host:192.0.2.1")
        );
        assert_eq!(
            grace_origin("sudo", None, Some("/dev/pts/3"), session, "alpha").as_deref(),
            Some("sudo|tty:/dev/pts/3|session:41@9000|on:alpha")
        );
        assert_eq!(
            grace_origin("sudo", None, Some("/dev/pts/3"), None, "alpha"),
            None
        );
        assert_eq!(grace_origin("sudo", None, None, session, "alpha"), None);
        assert_ne!(
            grace_origin("su", None, Some("/dev/pts/3"), session, "alpha"),
            grace_origin("sudo", None, Some("/dev/pts/3"), session, "alpha")
        );
        // The same session numbers on another machine of the fleet.
        assert_ne!(
            grace_origin("sudo", None, Some("/dev/pts/3"), session, "alpha"),
            grace_origin("sudo", None, Some("/dev/pts/3"), session, "beta")
        );
    }

    #[test]
    fn start_time_is_field_22() {
        let stat = "1234 (a) b) c) S 1 1234 1234 34816 1234 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        assert_eq!(start_time_from_stat(stat), Some(987_654));
        assert_eq!(start_time_from_stat("garbage"), None);
    }

    #[test]
    fn session_is_field_6_and_never_0() {
        let stat = "1234 (a) b) c) S 1 1230 1229 34816 1234 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        assert_eq!(session_from_stat(stat), Some(1229));
        let outside =
            "1234 (sh) S 0 1234 0 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        assert_eq!(session_from_stat(outside), None);
        assert_eq!(session_from_stat("garbage"), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert_eq!(
            session_from_stat(&own),
            u32::try_from(nix::unistd::getsid(None).unwrap().as_raw())
                .ok()
                .filter(|id| *id > 0)
        );
    }
}
