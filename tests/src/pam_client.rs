//! A PAM application of the tests' own: `pam_start_confdir` with a private
//! configuration directory, a scripted conversation, `pam_authenticate`.
//! (The only other `unsafe` code of the project, as a client of libpam.)

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;

use libc::{c_char, c_int, c_void};

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

/// Nullable and unsafe, as in Linux-PAM: the module calls into this
/// application's code with raw pointers.
type ConvFn = unsafe extern "C" fn(
    c_int,
    *mut *const PamMessage,
    *mut *mut PamResponse,
    *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[repr(C)]
struct PamHandle {
    _private: [u8; 0],
}

#[link(name = "pam")]
extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_setcred(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut PamHandle, status: c_int) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_putenv(pamh: *mut PamHandle, name_value: *const c_char) -> c_int;
}

/// PAM return codes the tests look at.
pub mod code {
    /// PAM_SUCCESS
    pub const SUCCESS: i32 = 0;
    /// PAM_SERVICE_ERR
    pub const SERVICE_ERR: i32 = 3;
    /// PAM_SYSTEM_ERR
    pub const SYSTEM_ERR: i32 = 4;
    /// PAM_AUTH_ERR
    pub const AUTH_ERR: i32 = 7;
    /// PAM_AUTHINFO_UNAVAIL
    pub const AUTHINFO_UNAVAIL: i32 = 9;
    /// PAM_USER_UNKNOWN
    pub const USER_UNKNOWN: i32 = 10;
    /// PAM_CONV_ERR
    pub const CONV_ERR: i32 = 19;
    /// PAM_IGNORE
    pub const IGNORE: i32 = 25;
    /// PAM_PERM_DENIED: what libpam answers when every module of a stack
    /// returned PAM_IGNORE.
    pub const PERM_DENIED: i32 = 6;

    /// Linux-PAM's names of its return values, in order from PAM_SUCCESS.
    const NAMES: [&str; 32] = [
        "PAM_SUCCESS",
        "PAM_OPEN_ERR",
        "PAM_SYMBOL_ERR",
        "PAM_SERVICE_ERR",
        "PAM_SYSTEM_ERR",
        "PAM_BUF_ERR",
        "PAM_PERM_DENIED",
        "PAM_AUTH_ERR",
        "PAM_CRED_INSUFFICIENT",
        "PAM_AUTHINFO_UNAVAIL",
        "PAM_USER_UNKNOWN",
        "PAM_MAXTRIES",
        "PAM_NEW_AUTHTOK_REQD",
        "PAM_ACCT_EXPIRED",
        "PAM_SESSION_ERR",
        "PAM_CRED_UNAVAIL",
        "PAM_CRED_EXPIRED",
        "PAM_CRED_ERR",
        "PAM_NO_MODULE_DATA",
        "PAM_CONV_ERR",
        "PAM_AUTHTOK_ERR",
        "PAM_AUTHTOK_RECOVERY_ERR",
        "PAM_AUTHTOK_LOCK_BUSY",
        "PAM_AUTHTOK_DISABLE_AGING",
        "PAM_TRY_AGAIN",
        "PAM_IGNORE",
        "PAM_ABORT",
        "PAM_AUTHTOK_EXPIRED",
        "PAM_MODULE_UNKNOWN",
        "PAM_BAD_ITEM",
        "PAM_CONV_AGAIN",
        "PAM_INCOMPLETE",
    ];

    /// A result code for a failure message: name and number, such as
    /// `PAM_AUTH_ERR (7)`.
    pub fn describe(code: i32) -> String {
        let name = usize::try_from(code)
            .ok()
            .and_then(|i| NAMES.get(i))
            .unwrap_or(&"unknown");
        format!("{name} ({code})")
    }
}

const PAM_RHOST: c_int = 4;
const PAM_TTY: c_int = 3;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;

/// One message the module sent through the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// A prompt without echo.
    HiddenPrompt(String),
    /// A prompt with echo.
    EchoPrompt(String),
    /// An error message.
    Error(String),
    /// An informational message.
    Info(String),
}

/// A login attempt to run.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    /// Answers to give to prompts, in order. A prompt with no answer left
    /// fails the conversation.
    pub answers: Vec<String>,
    /// PAM_RHOST.
    pub rhost: Option<String>,
    /// PAM_TTY.
    pub tty: Option<String>,
    /// PAM environment entries (`NAME=value`).
    pub env: Vec<String>,
    /// Flags for pam_authenticate.
    pub flags: i32,
    /// Register a `struct pam_conv` whose function is NULL (libpam accepts
    /// one) instead of the scripted conversation.
    pub null_conversation: bool,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// pam_authenticate's return value.
    pub code: i32,
    /// Messages shown, in order.
    pub shown: Vec<Shown>,
    /// Answers that were not asked for.
    pub unused_answers: usize,
}

impl AttemptResult {
    /// True when an error message containing `needle` was shown.
    pub fn shown_error(&self, needle: &str) -> bool {
        self.shown
            .iter()
            .any(|s| matches!(s, Shown::Error(text) if text.contains(needle)))
    }

    /// The hidden prompts shown.
    pub fn prompts(&self) -> Vec<String> {
        self.shown
            .iter()
            .filter_map(|s| match s {
                Shown::HiddenPrompt(p) | Shown::EchoPrompt(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }
}

struct Script {
    answers: VecDeque<String>,
    shown: Vec<Shown>,
}

/// # Safety
/// Called by libpam with Linux-PAM's contract: `msg` points to `num_msg`
/// valid messages, `resp` is a valid out-pointer, and `appdata` is the
/// `&RefCell<Script>` registered with the conversation.
unsafe extern "C" fn scripted_conversation(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let result = std::panic::catch_unwind(|| {
        if num_msg <= 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
            return 19;
        }
        // SAFETY: appdata is the &RefCell<Script> given to pam_start_confdir, alive for the transaction.
        let script = unsafe { &*(appdata as *const RefCell<Script>) };
        let mut script = script.borrow_mut();
        let count = num_msg as usize;
        // SAFETY: calloc of count responses; libpam's caller frees it.
        let responses =
            unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
        if responses.is_null() {
            return 5;
        }
        for i in 0..count {
            // SAFETY: Linux-PAM passes an array of count message pointers.
            let message = unsafe { &**msg.add(i) };
            // SAFETY: message text is a NUL-terminated string.
            let text = unsafe { CStr::from_ptr(message.msg) }
                .to_string_lossy()
                .into_owned();
            let answer = match message.msg_style {
                PAM_PROMPT_ECHO_OFF => {
                    script.shown.push(Shown::HiddenPrompt(text));
                    script.answers.pop_front()
                }
                PAM_PROMPT_ECHO_ON => {
                    script.shown.push(Shown::EchoPrompt(text));
                    script.answers.pop_front()
                }
                PAM_ERROR_MSG => {
                    script.shown.push(Shown::Error(text));
                    continue;
                }
                PAM_TEXT_INFO => {
                    script.shown.push(Shown::Info(text));
                    continue;
                }
                _ => continue,
            };
            let Some(answer) = answer else {
                // SAFETY: responses came from calloc above; nothing inside was allocated yet
                // for entries without answers, and earlier ones were strdup'ed.
                unsafe { free_responses(responses, i) };
                return 19;
            };
            let answer = CString::new(answer).expect("answer without NUL");
            // SAFETY: strdup copies into malloc'ed memory that libpam's module frees.
            unsafe { (*responses.add(i)).resp = libc::strdup(answer.as_ptr()) };
        }
        // SAFETY: resp is a valid out-pointer from libpam.
        unsafe { *resp = responses };
        0
    });
    result.unwrap_or(19)
}

/// # Safety
/// `responses` is a calloc'ed array with at least `filled` entries.
unsafe fn free_responses(responses: *mut PamResponse, filled: usize) {
    for i in 0..filled {
        // SAFETY: within the array; resp is null or strdup'ed.
        unsafe { libc::free((*responses.add(i)).resp.cast()) };
    }
    // SAFETY: allocated with calloc.
    unsafe { libc::free(responses.cast()) };
}

/// Run `pam_authenticate` for `user` through the stack `service` found in
/// `confdir`, with a scripted conversation.
pub fn authenticate(confdir: &Path, service: &str, user: &str, attempt: &Attempt) -> AttemptResult {
    let script = RefCell::new(Script {
        answers: attempt.answers.iter().cloned().collect(),
        shown: Vec::new(),
    });
    let conv = PamConv {
        conv: if attempt.null_conversation {
            None
        } else {
            Some(scripted_conversation)
        },
        appdata_ptr: &script as *const RefCell<Script> as *mut c_void,
    };
    let service_c = CString::new(service).unwrap();
    let user_c = CString::new(user).unwrap();
    let confdir_c = CString::new(confdir.to_str().unwrap()).unwrap();
    let mut handle: *mut PamHandle = ptr::null_mut();
    // SAFETY: all strings are NUL-terminated; conv and script outlive the transaction.
    let rc = unsafe {
        pam_start_confdir(
            service_c.as_ptr(),
            user_c.as_ptr(),
            &conv,
            confdir_c.as_ptr(),
            &mut handle,
        )
    };
    assert_eq!(rc, 0, "pam_start_confdir failed with {rc}");
    let set = |item: c_int, value: &Option<String>| {
        if let Some(value) = value {
            let value = CString::new(value.as_str()).unwrap();
            // SAFETY: live handle; libpam copies the string.
            let rc = unsafe { pam_set_item(handle, item, value.as_ptr().cast()) };
            assert_eq!(rc, 0, "pam_set_item({item})");
        }
    };
    set(PAM_RHOST, &attempt.rhost);
    set(PAM_TTY, &attempt.tty);
    for entry in &attempt.env {
        let entry = CString::new(entry.as_str()).unwrap();
        // SAFETY: live handle; libpam copies the string.
        let rc = unsafe { pam_putenv(handle, entry.as_ptr()) };
        assert_eq!(rc, 0, "pam_putenv");
    }
    // SAFETY: live handle.
    let code = unsafe { pam_authenticate(handle, attempt.flags) };
    if code == 0 {
        // SAFETY: live handle; PAM_ESTABLISH_CRED = 2.
        let setcred = unsafe { pam_setcred(handle, 2) };
        assert_eq!(setcred, 0, "pam_setcred after a successful authentication");
    }
    // SAFETY: live handle, ended exactly once.
    unsafe { pam_end(handle, code) };
    let script = script.into_inner();
    AttemptResult {
        code,
        shown: script.shown,
        unused_answers: script.answers.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::code;

    #[test]
    fn result_codes_are_described_by_their_linux_pam_names() {
        assert_eq!(code::describe(code::SUCCESS), "PAM_SUCCESS (0)");
        assert_eq!(code::describe(code::PERM_DENIED), "PAM_PERM_DENIED (6)");
        assert_eq!(code::describe(code::AUTH_ERR), "PAM_AUTH_ERR (7)");
        assert_eq!(
            code::describe(code::AUTHINFO_UNAVAIL),
            "PAM_AUTHINFO_UNAVAIL (9)"
        );
        assert_eq!(code::describe(code::USER_UNKNOWN), "PAM_USER_UNKNOWN (10)");
        assert_eq!(code::describe(code::CONV_ERR), "PAM_CONV_ERR (19)");
        assert_eq!(code::describe(code::IGNORE), "PAM_IGNORE (25)");
        assert_eq!(code::describe(31), "PAM_INCOMPLETE (31)");
        assert_eq!(code::describe(32), "unknown (32)");
        assert_eq!(code::describe(-1), "unknown (-1)");
    }
}

/// One login for [`authenticate_in_one_session`].
pub struct SessionLogin<'a> {
    pub service: &'a str,
    pub user: &'a str,
    pub attempt: Attempt,
}

/// Runs `logins` one after another, each by the `pam_login` program (path
/// `pam_login`), all inside one new terminal session whose leader is a
/// shell started here. The session is the test's own: what the module sees
/// of it does not depend on the session, or PID namespace, the suite was
/// started in (whose leader may be invisible, making `getsid` return 0).
/// `flags` and `null_conversation` are not supported by `pam_login`.
pub fn authenticate_in_one_session(
    pam_login: &Path,
    confdir: &Path,
    logins: &[SessionLogin],
) -> std::io::Result<Vec<AttemptResult>> {
    let mut script = String::from("set -e\n");
    for login in logins {
        let attempt = &login.attempt;
        assert!(
            attempt.flags == 0 && !attempt.null_conversation,
            "pam_login cannot run {attempt:?}"
        );
        let mut args = vec![pam_login.to_string_lossy().into_owned()];
        if let Some(tty) = &attempt.tty {
            args.extend(["--tty".to_string(), tty.clone()]);
        }
        if let Some(rhost) = &attempt.rhost {
            args.extend(["--rhost".to_string(), rhost.clone()]);
        }
        for entry in &attempt.env {
            args.extend(["--env".to_string(), entry.clone()]);
        }
        args.push(confdir.to_string_lossy().into_owned());
        args.extend([login.service.to_string(), login.user.to_string()]);
        args.extend(attempt.answers.iter().cloned());
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        script.push_str(&quoted.join(" "));
        script.push('\n');
    }
    let output = std::process::Command::new("setsid")
        .args(["--wait", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .output()?;
    let printed = String::from_utf8_lossy(&output.stdout);
    let results = parse_pam_login_output(&printed);
    if !output.status.success() || results.len() != logins.len() {
        return Err(std::io::Error::other(format!(
            "{} logins in one session gave {} results ({}):\n{printed}\n{}",
            logins.len(),
            results.len(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(results)
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The results printed by `pam_login`, one per `code=N` line. Its output
/// does not tell echoed prompts from hidden ones; both come back hidden.
pub fn parse_pam_login_output(printed: &str) -> Vec<AttemptResult> {
    let mut results = Vec::new();
    let mut shown = Vec::new();
    let mut unused_answers = 0;
    for line in printed.lines() {
        if let Some(text) = line.strip_prefix("info: ") {
            shown.push(Shown::Info(text.to_string()));
        } else if let Some(text) = line.strip_prefix("error: ") {
            shown.push(Shown::Error(text.to_string()));
        } else if let Some(text) = line.strip_prefix("prompt: ") {
            shown.push(Shown::HiddenPrompt(text.to_string()));
        } else if let Some(count) = line.strip_prefix("unused=") {
            unused_answers = count.parse().expect("pam_login prints a count");
        } else if let Some(code) = line.strip_prefix("code=") {
            results.push(AttemptResult {
                code: code.parse().expect("pam_login prints a number"),
                shown: std::mem::take(&mut shown),
                unused_answers,
            });
            unused_answers = 0;
        }
    }
    results
}

#[cfg(test)]
mod pam_login_program_tests {
    use super::*;

    #[test]
    fn pam_login_output_parses_into_results() {
        let printed = "prompt: Verification code: \nerror: Sorry.\nunused=0\ncode=7\n\
                       info: hello\nunused=2\ncode=0\n";
        let results = parse_pam_login_output(printed);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].code, 7);
        assert_eq!(results[0].prompts(), ["Verification code: "]);
        assert!(results[0].shown_error("Sorry."));
        assert_eq!(results[1].code, 0);
        assert_eq!(results[1].unused_answers, 2);
        assert!(matches!(&results[1].shown[..], [Shown::Info(t)] if t == "hello"));
    }

    #[test]
    fn shell_quoting_keeps_every_byte() {
        let odd = "it's $HOME `x` \"y\"";
        let output = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {}", shell_quote(odd))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), odd);
    }
}
