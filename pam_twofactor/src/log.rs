//! Audit lines to syslog (auth facility), in the form log tools expect from
//! PAM modules: `PROGRAM[PID]: pam_twofactor(SERVICE:auth): message`.
//!
//! One datagram per line through the `syslog` crate; when there is no
//! `/dev/log` the line is dropped rather than written to the console.
//! Values that come from users (names, hosts) are escaped so they cannot
//! forge extra fields or lines.
#![forbid(unsafe_code)]

pub use twofactor_core::audit::{sanitize, Severity};

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

/// The host program's name (sshd, login, su), read once per process: it
/// does not change while the module is loaded (an exec loads it anew).
fn program_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/self/comm")
            .map(|name| sanitize(name.trim_end()))
            .unwrap_or_else(|_| "pam_twofactor".into())
    })
}

fn send(severity: Severity, line: &str) {
    twofactor_core::audit::send(program_name(), severity, line);
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
