//! The security decisions of pam_twofactor, free of PAM and of the process's
//! identity: TOTP and backup-code verification, the enrollment document, the
//! root-owned login state, the system configuration, and careful file I/O.
//!
//! The time a login is decided at is always a parameter: no decision here
//! reads the clock. Clocks are read in three places, none of which decides
//! a login: [`audit::send`] stamps syslog lines with the wall-clock time, and
//! [`files::lock_exclusive`] and [`notify::run_notify_command`] bound their
//! waiting with the monotonic clock.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod account;
pub mod attempt;
pub mod audit;
pub mod backup;
pub mod config;
pub mod enrollment;
pub mod error;
pub mod fido2;
pub mod files;
pub mod google_authenticator;
pub mod login_states;
pub mod notify;
pub mod origin;
pub mod otpauth;
pub mod ratelimit;
pub mod secret;
pub mod shared_state;
pub mod state;
pub mod timefmt;
pub mod totp;
pub mod verify;

pub use error::Error;
