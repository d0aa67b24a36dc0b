//! The only place with `unsafe` code: the boundary with libpam.
//!
//! [`run_hook`] is the single wrapper every exported entry point goes through:
//! it null-checks the handle and the argument vector, turns the arguments
//! into Rust strings, runs the hook inside `catch_unwind`, and maps a panic to
//! `PAM_SYSTEM_ERR`. [`Handle`] exposes the few libpam calls the module needs
//! as safe methods; conversation answers are wiped before they are freed.

mod ffi;

use std::ffi::{CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Once;

use libc::{c_char, c_int, c_void};
use twofactor_core::secret::SecretString;
use zeroize::Zeroize;

pub use ffi::PamHandleRaw;
use ffi::*;

use crate::session::{ConversationError, PamCode, Session};

/// Arguments of one hook call, as safe Rust values.
pub struct HookCall<'a> {
    /// The PAM handle.
    pub handle: Handle<'a>,
    /// The module arguments from the pam.d line, lossily decoded.
    pub args: Vec<String>,
    /// True when the application passed PAM_SILENT.
    pub silent: bool,
}

/// A borrowed PAM handle, valid for the duration of one hook call.
pub struct Handle<'a> {
    raw: &'a mut PamHandleRaw,
}

static SILENCE_PANICS: Once = Once::new();

/// Run `hook` for an exported entry point. Never unwinds, never prints.
///
/// # Safety
/// `pamh`, `argc` and `argv` must be the values libpam passed to the entry
/// point: `pamh` a live handle (or null), `argv` null or pointing to `argc`
/// NUL-terminated strings that outlive the call.
pub unsafe fn run_hook(
    pamh: *mut PamHandleRaw,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
    hook: fn(HookCall<'_>) -> PamCode,
) -> c_int {
    // Rust's default panic hook writes to stderr, which may be a user's
    // terminal; this module's std is its own (cdylib), so replacing the hook
    // affects no one else.
    SILENCE_PANICS.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let place = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            crate::log::internal_error(&format!("internal error (panic) at {place}"));
        }));
    });
    if pamh.is_null() || argc < 0 || (argc > 0 && argv.is_null()) {
        return PAM_SYSTEM_ERR;
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut args = Vec::with_capacity(argc as usize);
        for i in 0..argc as usize {
            // SAFETY: argv has argc entries (checked non-null above), per the caller's contract.
            let arg = unsafe { *argv.add(i) };
            if arg.is_null() {
                return PamCode::SystemError;
            }
            // SAFETY: libpam's arguments are NUL-terminated strings valid for the call.
            args.push(
                unsafe { CStr::from_ptr(arg) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        // SAFETY: pamh is non-null and libpam keeps it alive and exclusively
        // ours for the duration of the hook call.
        let raw = unsafe { &mut *pamh };
        hook(HookCall {
            handle: Handle { raw },
            args,
            silent: flags & PAM_SILENT != 0,
        })
    }));
    match result {
        Ok(code) => pam_return_value(code),
        Err(_) => PAM_SYSTEM_ERR,
    }
}

fn pam_return_value(code: PamCode) -> c_int {
    match code {
        PamCode::Success => PAM_SUCCESS,
        PamCode::AuthError => PAM_AUTH_ERR,
        PamCode::UserUnknown => PAM_USER_UNKNOWN,
        PamCode::AuthInfoUnavailable => PAM_AUTHINFO_UNAVAIL,
        PamCode::ServiceError => PAM_SERVICE_ERR,
        PamCode::SystemError => PAM_SYSTEM_ERR,
        PamCode::ConversationError => PAM_CONV_ERR,
        PamCode::Ignore => PAM_IGNORE,
    }
}

impl Handle<'_> {
    fn string_item(&self, item_type: c_int) -> Option<String> {
        let mut value: *const c_void = ptr::null();
        // SAFETY: the handle is live; pam_get_item stores a pointer owned by libpam.
        let rc = unsafe { pam_get_item(self.raw, item_type, &mut value) };
        if rc != PAM_SUCCESS || value.is_null() {
            return None;
        }
        // SAFETY: string items are NUL-terminated strings owned by libpam,
        // valid until the item is changed; we copy at once.
        let text = unsafe { CStr::from_ptr(value.cast::<c_char>()) };
        Some(text.to_string_lossy().into_owned())
    }

    #[cfg(feature = "test-clock")]
    pub(crate) fn getenv(&mut self, name: &str) -> Option<String> {
        let name = CString::new(name).ok()?;
        // SAFETY: the handle is live and name is NUL-terminated.
        let value = unsafe { pam_getenv(self.raw, name.as_ptr()) };
        if value.is_null() {
            return None;
        }
        // SAFETY: pam_getenv returns a NUL-terminated string owned by libpam.
        Some(
            unsafe { CStr::from_ptr(value) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    fn converse_one(
        &mut self,
        style: c_int,
        text: &str,
    ) -> Result<Option<SecretString>, ConversationError> {
        let mut conv_ptr: *const c_void = ptr::null();
        // SAFETY: the handle is live; PAM_CONV is a pointer to the application's struct pam_conv.
        let rc = unsafe { pam_get_item(self.raw, PAM_CONV, &mut conv_ptr) };
        if rc != PAM_SUCCESS || conv_ptr.is_null() {
            return Err(ConversationError::Unavailable);
        }
        // SAFETY: libpam stores a struct pam_conv for PAM_CONV, valid for the transaction.
        let conv = unsafe { &*conv_ptr.cast::<PamConv>() };
        // pam_start refuses only a NULL struct pam_conv, not a struct whose
        // function is NULL: such an application gets a failed conversation,
        // not a jump to address zero.
        let Some(callback) = conv.conv else {
            return Err(ConversationError::Unavailable);
        };
        let text = CString::new(text.replace('\0', "")).map_err(|_| ConversationError::Failed)?;
        let message = PamMessage {
            msg_style: style,
            msg: text.as_ptr(),
        };
        let mut message_ptr: *const PamMessage = &message;
        let mut responses: *mut PamResponse = ptr::null_mut();
        // SAFETY: callback is the application's non-null conversation function
        // (a NULL one was refused above); it gets one valid message that
        // outlives the call, a valid out-pointer for the responses, and the
        // appdata_ptr the application registered with it.
        let rc = unsafe { callback(1, &mut message_ptr, &mut responses, conv.appdata_ptr) };
        // SAFETY: on return the application hands us ownership of a malloc'ed
        // array of one response (or null); take_response frees it.
        let answer = unsafe { take_response(responses) };
        if rc != PAM_SUCCESS {
            return Err(ConversationError::Failed);
        }
        Ok(answer)
    }
}

/// Copy the answer out of a `pam_response` array of length one, wipe the
/// application's copy, and free both allocations.
///
/// # Safety
/// `responses` is null or a malloc'ed array of one `pam_response` whose
/// `resp` is null or a malloc'ed NUL-terminated string.
unsafe fn take_response(responses: *mut PamResponse) -> Option<SecretString> {
    if responses.is_null() {
        return None;
    }
    // SAFETY: non-null, one element, per the function's contract.
    let response = unsafe { &mut *responses };
    let mut answer = None;
    if !response.resp.is_null() {
        // SAFETY: resp is a NUL-terminated malloc'ed string per the contract.
        let len = unsafe { libc::strlen(response.resp) };
        // SAFETY: resp points to len bytes followed by NUL, owned by us now.
        let bytes = unsafe { std::slice::from_raw_parts_mut(response.resp.cast::<u8>(), len) };
        answer = Some(SecretString::new(
            String::from_utf8_lossy(bytes).into_owned(),
        ));
        bytes.zeroize();
        // SAFETY: resp was allocated with malloc by the application.
        unsafe { libc::free(response.resp.cast()) };
        response.resp = ptr::null_mut();
    }
    // SAFETY: the array was allocated with malloc by the application.
    unsafe { libc::free(responses.cast()) };
    answer
}

impl Session for Handle<'_> {
    fn user(&mut self) -> Option<String> {
        let mut user: *const c_char = ptr::null();
        // SAFETY: the handle is live; a null prompt makes libpam use its default.
        let rc = unsafe { pam_get_user(self.raw, &mut user, ptr::null()) };
        if rc != PAM_SUCCESS || user.is_null() {
            return None;
        }
        // SAFETY: pam_get_user returns a NUL-terminated string owned by libpam.
        let name = unsafe { CStr::from_ptr(user) };
        name.to_str().ok().map(str::to_string)
    }

    fn service(&self) -> Option<String> {
        self.string_item(PAM_SERVICE)
    }

    fn remote_host(&self) -> Option<String> {
        self.string_item(PAM_RHOST)
    }

    fn remote_user(&self) -> Option<String> {
        self.string_item(PAM_RUSER)
    }

    fn tty(&self) -> Option<String> {
        self.string_item(PAM_TTY)
    }

    fn authtok(&self) -> Option<SecretString> {
        self.string_item(PAM_AUTHTOK).map(SecretString::new)
    }

    fn set_authtok(&mut self, value: Option<&str>) -> Result<(), ConversationError> {
        let value = value
            .map(CString::new)
            .transpose()
            .map_err(|_| ConversationError::Failed)?;
        let pointer = value.as_ref().map_or(ptr::null(), |v| v.as_ptr());
        // SAFETY: the handle is live; libpam copies the string (or clears the
        // item for a null pointer).
        let rc = unsafe { pam_set_item(self.raw, PAM_AUTHTOK, pointer.cast()) };
        if let Some(value) = value {
            value.into_bytes_with_nul().zeroize();
        }
        if rc == PAM_SUCCESS {
            Ok(())
        } else {
            Err(ConversationError::Failed)
        }
    }

    fn prompt_hidden(&mut self, prompt: &str) -> Result<SecretString, ConversationError> {
        self.converse_one(PAM_PROMPT_ECHO_OFF, prompt)?
            .ok_or(ConversationError::Failed)
    }

    fn info(&mut self, text: &str) {
        // A failed info message changes nothing about the login.
        let _ = self.converse_one(PAM_TEXT_INFO, text);
    }

    fn error(&mut self, text: &str) {
        let _ = self.converse_one(PAM_ERROR_MSG, text);
    }
}
