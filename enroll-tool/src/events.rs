//! Telling the administrator that an enrollment changed: one syslog line
//! (auth facility, like the module's lines) and, when configured, the
//! `notify_command` with the event name and the user.
//!
//! Neither carries a secret or a code. Both are best effort: the change is
//! already on disk when they run, so a failure is a warning, not an error.
//! They are also advisory: the enrollment file is the user's own, and a user
//! can edit or delete it without this command; the module's login lines are
//! the authoritative record.

use std::time::Duration;

use twofactor_core::audit::{self, sanitize, Severity};
use twofactor_core::config::Config;
use twofactor_core::notify::run_notify_command;

/// How long the notify command may run.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// One event: `name` (as given to the notify command), whose account, who
/// did it, and more `key=value` fields for the log line.
pub struct Event<'a> {
    /// `enrolled`, `disabled`, `backup-codes-regenerated`, `lockout-reset`.
    pub name: &'static str,
    /// The account concerned.
    pub user: &'a str,
    /// Who ran the command (login name of the real uid).
    pub by: &'a str,
    /// Extra fields, already `key=value` with safe values.
    pub details: String,
    /// Whether the notify command is run for it.
    pub notify: bool,
}

/// Log `event` and run the notify command. Returns a warning to show when
/// the notify command failed.
pub fn announce(config: &Config, event: &Event) -> Option<String> {
    let mut line = format!(
        "{}: user={} by={}",
        event.name,
        sanitize(event.user),
        sanitize(event.by)
    );
    if !event.details.is_empty() {
        line.push(' ');
        line.push_str(&event.details);
    }
    audit::send("twofactor", Severity::Notice, &line);
    if !event.notify || config.notify_command.is_empty() {
        return None;
    }
    match run_notify_command(
        &config.notify_command,
        event.name,
        event.user,
        NOTIFY_TIMEOUT,
    ) {
        Ok(()) => None,
        Err(reason) => {
            let warning = format!("notify_command failed for event {}: {reason}", event.name);
            audit::send(
                "twofactor",
                Severity::Warning,
                &format!("{warning}: user={}", sanitize(event.user)),
            );
            Some(warning)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_failures_become_warnings() {
        let config = Config {
            notify_command: vec!["/bin/false".into()],
            ..Config::default()
        };
        let event = Event {
            name: "enrolled",
            user: "alice",
            by: "root",
            details: String::new(),
            notify: true,
        };
        let warning = announce(&config, &event).unwrap();
        assert!(
            warning.contains("notify_command failed for event enrolled"),
            "{warning}"
        );
        let quiet = Event {
            notify: false,
            ..event
        };
        assert!(announce(&config, &quiet).is_none());
        assert!(announce(&Config::default(), &quiet).is_none());
    }
}
