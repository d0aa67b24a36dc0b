//! The security decisions of pam_twofactor, free of PAM and of the process's
//! identity: TOTP and backup-code verification, the enrollment document, the
//! root-owned login state, the system configuration, and careful file I/O.
//!
//! Time is always a parameter; nothing here reads the clock.
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
pub mod notify;
pub mod origin;
pub mod otpauth;
pub mod ratelimit;
pub mod secret;
pub mod state;
pub mod timefmt;
pub mod totp;
pub mod verify;

pub use error::Error;
