//! pam_twofactor: a PAM module asking for a second factor (TOTP codes and
//! single-use backup codes).
//!
//! This file holds only the exported entry points. Each goes through
//! [`pam::run_hook`] (null checks, `catch_unwind`); `unsafe` code lives in
//! `pam/` alone, every other module is `#![forbid(unsafe_code)]`.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod args;
pub mod auth;
#[cfg(test)]
mod auth_tests;
pub mod clock;
pub mod fido2_device;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod log;
#[allow(unsafe_code)]
pub mod pam;
pub mod session;
pub mod system;

use libc::{c_char, c_int};

use crate::pam::{HookCall, PamHandleRaw};
use crate::session::{PamCode, Session};

fn authenticate_hook(call: HookCall<'_>) -> PamCode {
    let HookCall {
        mut handle,
        args,
        silent,
    } = call;
    let now = current_time(&mut handle);
    let service = handle.service();
    let mut log = log::Syslog::new(service.as_deref());
    // Dropping it kills and reaps the FIDO2 helper, if one is still running.
    let mut keys = fido2_device::HelperDevice::default();
    let mut login = auth::Login {
        system: &system::HostSystem,
        log: &mut log,
        now,
        silent,
        keys: &mut keys,
        states: Default::default(),
    };
    login.authenticate(&mut handle, &args)
}

#[cfg(not(feature = "test-clock"))]
fn current_time(_handle: &mut pam::Handle<'_>) -> u64 {
    clock::system_now()
}

#[cfg(feature = "test-clock")]
fn current_time(handle: &mut pam::Handle<'_>) -> u64 {
    handle
        .getenv(clock::TEST_CLOCK_VARIABLE)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(clock::system_now)
}

fn setcred_hook(_call: HookCall<'_>) -> PamCode {
    // The module establishes no credentials; succeeding here keeps stacks
    // that call pam_setcred after a successful authentication working.
    PamCode::Success
}

/// `pam_sm_authenticate`: ask for and verify the second factor.
///
/// # Safety
/// Called by libpam with a live handle and its argument vector.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut PamHandleRaw,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: the arguments are libpam's, passed through unchanged.
    unsafe { pam::run_hook(pamh, flags, argc, argv, authenticate_hook) }
}

/// `pam_sm_setcred`: nothing to set.
///
/// # Safety
/// Called by libpam with a live handle and its argument vector.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn pam_sm_setcred(
    pamh: *mut PamHandleRaw,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: the arguments are libpam's, passed through unchanged.
    unsafe { pam::run_hook(pamh, flags, argc, argv, setcred_hook) }
}
