//! What the login flow needs from PAM, as a trait: the real handle implements
//! it in `pam/`, tests implement it with a scripted conversation.
#![forbid(unsafe_code)]

use twofactor_core::secret::SecretString;

/// The module's answer to libpam, decided in one place (`auth::decide_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PamCode {
    /// A second factor was verified.
    Success,
    /// Wrong, replayed or spent code, or no factor enrolled.
    AuthError,
    /// The user does not exist.
    UserUnknown,
    /// The enrollment or the login state could not be used.
    AuthInfoUnavailable,
    /// The configuration or the module arguments are invalid.
    ServiceError,
    /// Internal failure.
    SystemError,
    /// The application's conversation failed (e.g. the client went away).
    ConversationError,
    /// Unenrolled user under the `ignore` policy: let the stack decide.
    Ignore,
}

/// A conversation or item call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationError {
    /// The application provided no conversation function.
    Unavailable,
    /// The conversation returned an error or no answer.
    Failed,
}

/// One PAM transaction as the login flow sees it.
pub trait Session {
    /// The user being authenticated.
    fn user(&mut self) -> Option<String>;
    /// PAM_SERVICE.
    fn service(&self) -> Option<String>;
    /// PAM_RHOST (set by sshd for remote logins).
    fn remote_host(&self) -> Option<String>;
    /// PAM_RUSER.
    fn remote_user(&self) -> Option<String>;
    /// PAM_TTY.
    fn tty(&self) -> Option<String>;
    /// PAM_AUTHTOK as left by an earlier module.
    fn authtok(&self) -> Option<SecretString>;
    /// Replace PAM_AUTHTOK (the password part, for the next module); `None`
    /// clears it, so no code is ever handed on as a password.
    fn set_authtok(&mut self, value: Option<&str>) -> Result<(), ConversationError>;
    /// Ask a question whose answer is not echoed.
    fn prompt_hidden(&mut self, prompt: &str) -> Result<SecretString, ConversationError>;
    /// Show an informational message.
    fn info(&mut self, text: &str);
    /// Show an error message.
    fn error(&mut self, text: &str);
}
