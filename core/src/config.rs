//! The system configuration (`/etc/security/pam_twofactor.toml`) and the
//! module-argument overrides that share its keys.

use serde::Deserialize;

use crate::enrollment::DEFAULT_ENROLLMENT_PATH;
use crate::error::{redact_toml_error, Error};
use crate::ratelimit::{Limit, Limits};
use crate::state::DEFAULT_STATE_DIR;
use crate::totp::{Algorithm, DIGITS_RANGE, MAX_WINDOW, PERIOD_RANGE};

/// Default location of the system configuration.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/security/pam_twofactor.toml";
/// Largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// Default prompt.
pub const DEFAULT_PROMPT: &str = "Verification code: ";
/// Default prompt when the password and the code are asked together.
pub const DEFAULT_FORWARD_PASS_PROMPT: &str = "Password & verification code: ";
const MAX_PROMPT_CHARS: usize = 200;
/// Longest rate-limit window and grace period: one week.
pub const MAX_PERIOD_SECONDS: u64 = 7 * 24 * 60 * 60;
/// Largest failure limit accepted.
pub const MAX_FAILURE_LIMIT: u32 = 1000;
/// With `rate_limit_by_host` and no all-hosts limit set: all hosts together
/// get this many times one host's budget.
pub const ALL_HOSTS_FACTOR: u32 = 4;

/// A name that fits in a Redis key, an ACL rule or a command unquoted.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The all-hosts limit in force for a per-host limit.
fn all_hosts(per_host: u32, configured: Option<u32>) -> u32 {
    configured.unwrap_or_else(|| {
        per_host
            .saturating_mul(ALL_HOSTS_FACTOR)
            .min(MAX_FAILURE_LIMIT)
            .max(per_host)
    })
}

/// What happens to a user who has not enrolled a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnenrolledPolicy {
    /// Ask for a code anyway, and fail (the default: no factor, no login).
    Fail,
    /// Return PAM_IGNORE without asking, so the rest of the stack decides
    /// (google-authenticator's `nullok`, for rolling out gradually).
    Ignore,
}

/// How FIDO2 security keys take part in a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fido2Policy {
    /// A registered key is tried first; without one (none attached, not
    /// touched in time) the user can type a code (the default).
    Optional,
    /// Users with a registered key must use it: no code is asked.
    Required,
    /// Keys are ignored.
    Off,
}

/// Default path of the FIDO2 helper program.
pub const DEFAULT_FIDO2_HELPER: &str = "/usr/libexec/pam_twofactor/twofactor-fido2-helper";
/// Longest touch timeout, in seconds.
pub const MAX_FIDO2_TIMEOUT: u64 = 120;

/// Where the login state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// Files in `state_dir`, this host only (the default).
    Local,
    /// One state for a fleet, on Redis, with the host's files kept as well.
    Redis,
}

/// What a login does when the Redis backend cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisUnavailable {
    /// Refuse: PAM_AUTHINFO_UNAVAIL, with a log line (the default).
    Fail,
    /// Go on with this host's state alone; backup codes only when
    /// `redis_fallback_backup_codes` allows them.
    Local,
}

/// Longest Redis connect, command or WAIT timeout, in milliseconds.
pub const MAX_REDIS_TIMEOUT_MS: u64 = 10_000;
/// Default Redis connect and command timeouts, in milliseconds.
pub const DEFAULT_REDIS_TIMEOUT_MS: u64 = 500;

/// The system configuration, validated. Every key has a safe default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where a user's enrollment lives; `%u` user name, `%h` home directory.
    pub enrollment_path: String,
    /// Root-owned directory of the login state.
    pub state_dir: String,
    /// The prompt for the code.
    pub prompt: String,
    /// Steps accepted either side of the current one (0 to 4).
    pub window: u8,
    /// Users without an enrollment: "fail" or "ignore".
    pub unenrolled: UnenrolledPolicy,
    /// Issuer shown in authenticator apps; empty means the host name.
    pub issuer: String,
    /// Hash for new TOTP enrollments.
    pub totp_algorithm: Algorithm,
    /// Digits of new TOTP enrollments.
    pub totp_digits: u8,
    /// Period of new TOTP enrollments, in seconds.
    pub totp_period: u64,
    /// Failed TOTP codes (and malformed answers) that start a lockout; 0 disables.
    pub max_code_failures: u32,
    /// Window of `max_code_failures`, in seconds.
    pub code_failure_window: u64,
    /// Failed backup codes that start a lockout of backup codes; 0 disables.
    pub max_backup_code_failures: u32,
    /// Window of `max_backup_code_failures`, in seconds.
    pub backup_code_failure_window: u64,
    /// Count failures per remote host, so one attacking address does not
    /// lock the user out from everywhere.
    pub rate_limit_by_host: bool,
    /// With `rate_limit_by_host`: failed codes from all hosts together
    /// (within `code_failure_window`) that lock codes from every host.
    /// Unset: [`ALL_HOSTS_FACTOR`] times `max_code_failures`.
    pub max_code_failures_all_hosts: Option<u32>,
    /// With `rate_limit_by_host`: failed backup codes from all hosts together
    /// (within `backup_code_failure_window`) that lock them from every host.
    /// Unset: [`ALL_HOSTS_FACTOR`] times `max_backup_code_failures`.
    pub max_backup_code_failures_all_hosts: Option<u32>,
    /// After a success, the same user from the same remote host (or, for
    /// local logins, the same terminal) is not asked again for this many
    /// seconds. 0 (the default) turns it off.
    pub grace_period: u64,
    /// Program (and leading arguments) run on events: enrollment changes,
    /// a backup code used, a lockout started. Gets the event name and the
    /// user name as two more arguments; run without a shell, time-bounded.
    pub notify_command: Vec<String>,
    /// Security keys: "optional" (tried first, codes as fallback),
    /// "required" or "off".
    pub fido2: Fido2Policy,
    /// Relying-party id of security-key credentials; empty means
    /// `pam://HOSTNAME` (pam_u2f's default).
    pub fido2_rp_id: String,
    /// Seconds to wait for the key to be found and touched.
    pub fido2_timeout: u64,
    /// Require user verification (PIN or built-in) for every key.
    pub fido2_user_verification: bool,
    /// Use security keys for remote logins too (PAM_RHOST set). Off: a key
    /// attached to the server is not the remote user's.
    pub fido2_remote: bool,
    /// The helper program that talks to the keys (absolute path).
    pub fido2_helper: String,
    /// Where the login state lives: "local" or "redis".
    pub state_backend: StateBackend,
    /// One Redis server: `redis://HOST:PORT[/DB]` or `rediss://…` (TLS).
    pub redis_url: String,
    /// Or Sentinels (`HOST:PORT`) to ask for the primary of
    /// `redis_master_name`.
    pub redis_sentinels: Vec<String>,
    /// The Sentinel master name.
    pub redis_master_name: String,
    /// TLS to the Sentinels and the servers they name.
    pub redis_tls: bool,
    /// PEM file of the CA that signs the servers' certificates (empty: the
    /// system's trust store).
    pub redis_ca_file: String,
    /// ACL user name (empty: the default user).
    pub redis_user: String,
    /// Root-only file holding the Redis password (never in this file).
    pub redis_password_file: String,
    /// Connect timeout (TCP, TLS and authentication), milliseconds.
    pub redis_connect_timeout_ms: u64,
    /// Timeout of each command, milliseconds.
    pub redis_command_timeout_ms: u64,
    /// "fail" or "local".
    pub redis_unavailable: RedisUnavailable,
    /// In the "local" fallback, accept backup codes too (a code spent on
    /// another host during the outage would then work here).
    pub redis_fallback_backup_codes: bool,
    /// Replicas that must acknowledge a backup-code spend (`WAIT`) before
    /// the login succeeds; 0 does not wait.
    pub redis_wait_replicas: u32,
    /// How long to wait for those acknowledgements, milliseconds.
    pub redis_wait_timeout_ms: u64,
    /// Prefix of every key (`PREFIX:{user}:state`), for an ACL key pattern.
    pub redis_key_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enrollment_path: DEFAULT_ENROLLMENT_PATH.to_string(),
            state_dir: DEFAULT_STATE_DIR.to_string(),
            prompt: DEFAULT_PROMPT.to_string(),
            window: 1,
            unenrolled: UnenrolledPolicy::Fail,
            issuer: String::new(),
            totp_algorithm: Algorithm::SHA1,
            totp_digits: 6,
            totp_period: 30,
            max_code_failures: 5,
            code_failure_window: 15 * 60,
            max_backup_code_failures: 10,
            backup_code_failure_window: 60 * 60,
            rate_limit_by_host: false,
            max_code_failures_all_hosts: None,
            max_backup_code_failures_all_hosts: None,
            grace_period: 0,
            notify_command: Vec::new(),
            fido2: Fido2Policy::Optional,
            fido2_rp_id: String::new(),
            fido2_timeout: 30,
            fido2_user_verification: false,
            fido2_remote: false,
            fido2_helper: DEFAULT_FIDO2_HELPER.to_string(),
            state_backend: StateBackend::Local,
            redis_url: String::new(),
            redis_sentinels: Vec::new(),
            redis_master_name: String::new(),
            redis_tls: false,
            redis_ca_file: String::new(),
            redis_user: String::new(),
            redis_password_file: String::new(),
            redis_connect_timeout_ms: DEFAULT_REDIS_TIMEOUT_MS,
            redis_command_timeout_ms: DEFAULT_REDIS_TIMEOUT_MS,
            redis_unavailable: RedisUnavailable::Fail,
            redis_fallback_backup_codes: false,
            redis_wait_replicas: 1,
            redis_wait_timeout_ms: DEFAULT_REDIS_TIMEOUT_MS,
            redis_key_prefix: "tf".to_string(),
        }
    }
}

/// Read the configuration at `path`: root-owned, not writable by group or
/// others, at most [`MAX_CONFIG_BYTES`], valid. A missing file means the
/// (secure) defaults only where `missing_means_defaults` (the default path);
/// a file someone named must exist, since its settings were expected to
/// apply. The module and `twofactor` both read it through here.
pub fn load(path: &std::path::Path, missing_means_defaults: bool) -> Result<Config, Error> {
    let requirements = crate::files::FileRequirements::root_policy(MAX_CONFIG_BYTES);
    match crate::files::read_checked_text(path, &requirements) {
        Ok(text) => Config::parse(&text, &path.display().to_string()),
        Err(e) if missing_means_defaults && e.is_missing_file() => Ok(Config::default()),
        Err(e) => Err(e),
    }
}

impl Config {
    /// Parse and validate a configuration document; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        let config: Config = toml::from_str(text).map_err(|e| Error::Parse {
            what: format!("configuration {origin}"),
            why: redact_toml_error(&e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Check ranges and shapes of every value.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::Config(why));
        if self.window > MAX_WINDOW {
            return bad(format!(
                "window = {} is too wide (at most {MAX_WINDOW})",
                self.window
            ));
        }
        if !DIGITS_RANGE.contains(&self.totp_digits) {
            return bad(format!("totp_digits = {} (6 to 8)", self.totp_digits));
        }
        if !PERIOD_RANGE.contains(&self.totp_period) {
            return bad(format!("totp_period = {} (15 to 300)", self.totp_period));
        }
        if self.prompt.is_empty() || self.prompt.chars().count() > MAX_PROMPT_CHARS {
            return bad(format!("prompt must be 1 to {MAX_PROMPT_CHARS} characters"));
        }
        if self.prompt.chars().any(|c| c.is_control()) {
            return bad("prompt must not contain control characters".into());
        }
        if !self.state_dir.starts_with('/') {
            return bad(format!("state_dir = {:?} is not absolute", self.state_dir));
        }
        for (name, window) in [
            ("code_failure_window", self.code_failure_window),
            (
                "backup_code_failure_window",
                self.backup_code_failure_window,
            ),
        ] {
            if !(1..=MAX_PERIOD_SECONDS).contains(&window) {
                return bad(format!(
                    "{name} = {window} (1 to {MAX_PERIOD_SECONDS} seconds)"
                ));
            }
        }
        if self.max_code_failures > MAX_FAILURE_LIMIT
            || self.max_backup_code_failures > MAX_FAILURE_LIMIT
        {
            return bad(format!("failure limits must be 0 to {MAX_FAILURE_LIMIT}"));
        }
        // Every host's budget stays within the all-hosts one, and the
        // all-hosts one exists whenever the limit does: without it, rotating
        // source addresses would buy unlimited guesses.
        for (name, per_host, all_hosts) in [
            (
                "max_code_failures_all_hosts",
                self.max_code_failures,
                self.max_code_failures_all_hosts,
            ),
            (
                "max_backup_code_failures_all_hosts",
                self.max_backup_code_failures,
                self.max_backup_code_failures_all_hosts,
            ),
        ] {
            let Some(all_hosts) = all_hosts else {
                continue;
            };
            if all_hosts > MAX_FAILURE_LIMIT || (per_host > 0 && all_hosts < per_host) {
                return bad(format!(
                    "{name} = {all_hosts} ({} to {MAX_FAILURE_LIMIT}: at least the per-host limit)",
                    per_host.max(1)
                ));
            }
        }
        if self.grace_period > MAX_PERIOD_SECONDS {
            return bad(format!(
                "grace_period = {} (at most {MAX_PERIOD_SECONDS} seconds)",
                self.grace_period
            ));
        }
        if let Some(program) = self.notify_command.first() {
            if !program.starts_with('/') {
                return bad(format!(
                    "notify_command program {program:?} must be an absolute path"
                ));
            }
        }
        if !(1..=MAX_FIDO2_TIMEOUT).contains(&self.fido2_timeout) {
            return bad(format!(
                "fido2_timeout = {} (1 to {MAX_FIDO2_TIMEOUT} seconds)",
                self.fido2_timeout
            ));
        }
        if !self.fido2_rp_id.is_empty() {
            crate::fido2::validate_rp_id(&self.fido2_rp_id)
                .map_err(|why| Error::Config(format!("fido2_rp_id: {why}")))?;
        }
        if !self.fido2_helper.starts_with('/') {
            return bad(format!(
                "fido2_helper = {:?} must be an absolute path",
                self.fido2_helper
            ));
        }
        if !(self.enrollment_path.starts_with('/') || self.enrollment_path.starts_with("%h")) {
            return bad(format!(
                "enrollment_path = {:?} must be absolute or start with %h",
                self.enrollment_path
            ));
        }
        self.validate_redis()
    }

    /// The Redis keys: checked whatever the backend, so that switching
    /// `state_backend` on never meets an error left waiting.
    fn validate_redis(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::Config(why));
        let uses_redis = self.state_backend == StateBackend::Redis;
        let has_url = !self.redis_url.is_empty();
        let has_sentinels = !self.redis_sentinels.is_empty();
        if has_url && has_sentinels {
            return bad("redis_url and redis_sentinels: give one of them".into());
        }
        if uses_redis && !has_url && !has_sentinels {
            return bad("state_backend = \"redis\" needs redis_url or redis_sentinels".into());
        }
        if has_url {
            crate::shared_state::validate_url(&self.redis_url)
                .map_err(|why| Error::Config(format!("redis_url: {why}")))?;
        }
        for address in &self.redis_sentinels {
            crate::shared_state::validate_host_port(address)
                .map_err(|why| Error::Config(format!("redis_sentinels: {why}")))?;
        }
        if has_sentinels && !valid_name(&self.redis_master_name) {
            return bad("redis_sentinels need redis_master_name (letters, digits, . _ -)".into());
        }
        if !self.redis_user.is_empty() && !valid_name(&self.redis_user) {
            return bad("redis_user: letters, digits, . _ - only".into());
        }
        for (name, path) in [
            ("redis_ca_file", &self.redis_ca_file),
            ("redis_password_file", &self.redis_password_file),
        ] {
            if !path.is_empty() && !path.starts_with('/') {
                return bad(format!("{name} = {path:?} must be an absolute path"));
            }
        }
        for (name, value) in [
            ("redis_connect_timeout_ms", self.redis_connect_timeout_ms),
            ("redis_command_timeout_ms", self.redis_command_timeout_ms),
            ("redis_wait_timeout_ms", self.redis_wait_timeout_ms),
        ] {
            if !(1..=MAX_REDIS_TIMEOUT_MS).contains(&value) {
                return bad(format!("{name} = {value} (1 to {MAX_REDIS_TIMEOUT_MS})"));
            }
        }
        if self.redis_wait_replicas > 16 {
            return bad(format!(
                "redis_wait_replicas = {} (0 to 16)",
                self.redis_wait_replicas
            ));
        }
        if self.redis_key_prefix.len() > 32 || !valid_name(&self.redis_key_prefix) {
            return bad("redis_key_prefix: 1 to 32 letters, digits, . _ -".into());
        }
        Ok(())
    }

    /// The rate limits in force.
    pub fn limits(&self) -> Limits {
        Limits {
            code: Limit {
                max_failures: self.max_code_failures,
                window: self.code_failure_window,
                max_failures_all_hosts: all_hosts(
                    self.max_code_failures,
                    self.max_code_failures_all_hosts,
                ),
            },
            backup_code: Limit {
                max_failures: self.max_backup_code_failures,
                window: self.backup_code_failure_window,
                max_failures_all_hosts: all_hosts(
                    self.max_backup_code_failures,
                    self.max_backup_code_failures_all_hosts,
                ),
            },
            by_host: self.rate_limit_by_host,
        }
    }

    /// Apply one `key=value` override (a module argument). Unknown keys and
    /// unparsable values are errors.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let invalid = |accepted: &str| {
            Error::Config(format!("invalid value for {key} (accepted: {accepted})"))
        };
        let number = || invalid("a whole number");
        let boolean = || invalid("true or false");
        match key {
            "enrollment_path" => self.enrollment_path = value.to_string(),
            "state_dir" => self.state_dir = value.to_string(),
            "prompt" => self.prompt = value.to_string(),
            "window" => self.window = value.parse().map_err(|_| number())?,
            "max_code_failures" => self.max_code_failures = value.parse().map_err(|_| number())?,
            "code_failure_window" => {
                self.code_failure_window = value.parse().map_err(|_| number())?
            }
            "max_backup_code_failures" => {
                self.max_backup_code_failures = value.parse().map_err(|_| number())?
            }
            "backup_code_failure_window" => {
                self.backup_code_failure_window = value.parse().map_err(|_| number())?
            }
            "rate_limit_by_host" => {
                self.rate_limit_by_host = value.parse().map_err(|_| boolean())?
            }
            "max_code_failures_all_hosts" => {
                self.max_code_failures_all_hosts = Some(value.parse().map_err(|_| number())?)
            }
            "max_backup_code_failures_all_hosts" => {
                self.max_backup_code_failures_all_hosts = Some(value.parse().map_err(|_| number())?)
            }
            "grace_period" => self.grace_period = value.parse().map_err(|_| number())?,
            "fido2" => {
                self.fido2 = match value {
                    "optional" => Fido2Policy::Optional,
                    "required" => Fido2Policy::Required,
                    "off" => Fido2Policy::Off,
                    _ => return Err(invalid("\"optional\", \"required\" or \"off\"")),
                }
            }
            "fido2_rp_id" => self.fido2_rp_id = value.to_string(),
            "fido2_timeout" => self.fido2_timeout = value.parse().map_err(|_| number())?,
            "fido2_user_verification" => {
                self.fido2_user_verification = value.parse().map_err(|_| boolean())?
            }
            "fido2_remote" => self.fido2_remote = value.parse().map_err(|_| boolean())?,
            "unenrolled" => {
                self.unenrolled = match value {
                    "fail" => UnenrolledPolicy::Fail,
                    "ignore" => UnenrolledPolicy::Ignore,
                    _ => return Err(invalid("\"fail\" or \"ignore\"")),
                }
            }
            _ => return Err(Error::Config(format!("unknown option {key:?}"))),
        }
        self.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_document_gives_defaults() {
        assert_eq!(Config::parse("", "t").unwrap(), Config::default());
    }

    #[test]
    fn redis_backend_settings() {
        let config = Config::parse(
            "state_backend = \"redis\"\nredis_url = \"rediss://10.0.0.5:6380/1\"\n\
             redis_user = \"pam_twofactor\"\n\
             redis_password_file = \"/etc/security/pam_twofactor.redis-password\"\n\
             redis_unavailable = \"local\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(config.state_backend, StateBackend::Redis);
        assert_eq!(config.redis_unavailable, RedisUnavailable::Local);
        assert_eq!(config.redis_connect_timeout_ms, 500);
        assert_eq!(config.redis_wait_replicas, 1);
        let sentinels = Config::parse(
            "state_backend = \"redis\"\nredis_sentinels = [\"10.0.0.1:26379\", \"[2001:db8::2]:26379\"]\n\
             redis_master_name = \"twofactor\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(sentinels.redis_sentinels.len(), 2);
        for (text, why) in [
            (
                "state_backend = \"redis\"",
                "needs redis_url or redis_sentinels",
            ),
            ("state_backend = \"cloud\"", "unknown variant"),
            ("redis_url = \"redis://u:pw@h:1\"", "redis_password_file"),
            (
                "redis_url = \"redis://h:1\"\nredis_sentinels = [\"h:2\"]",
                "give one of them",
            ),
            ("redis_sentinels = [\"h:2\"]", "redis_master_name"),
            ("redis_sentinels = [\"h\"]", "no port"),
            ("redis_password_file = \"relative\"", "absolute"),
            (
                "redis_command_timeout_ms = 0",
                "redis_command_timeout_ms = 0",
            ),
            ("redis_connect_timeout_ms = 10001", "1 to 10000"),
            ("redis_key_prefix = \"tf:{x}\"", "redis_key_prefix"),
            ("redis_user = \"a b\"", "redis_user"),
            ("redis_wait_replicas = 17", "0 to 16"),
        ] {
            let error = Config::parse(text, "t").unwrap_err().to_string();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn shipped_default_config_parses_to_defaults() {
        let shipped = include_str!("../../config/pam_twofactor.toml");
        assert_eq!(
            Config::parse(shipped, "shipped").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        for (text, expected) in [
            ("windw = 1", "unknown field"),
            ("window = 5", "too wide"),
            ("window = -1", "invalid"),
            ("unenrolled = \"maybe\"", "unknown variant"),
            ("prompt = \"\"", "prompt must be"),
            ("state_dir = \"relative\"", "not absolute"),
            ("enrollment_path = \"x/%u\"", "must be absolute"),
            ("totp_digits = 5", "totp_digits"),
            ("code_failure_window = 0", "code_failure_window"),
            ("grace_period = 9999999", "grace_period"),
            ("max_code_failures = 100000", "failure limits"),
            ("notify_command = [\"mail\"]", "absolute path"),
            ("fido2 = \"sometimes\"", "unknown variant"),
            ("fido2_timeout = 0", "fido2_timeout"),
            ("fido2_timeout = 121", "fido2_timeout"),
            ("fido2_rp_id = \"a b\"", "fido2_rp_id"),
            ("fido2_helper = \"helper\"", "absolute path"),
        ] {
            let err = Config::parse(text, "t").unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn overrides() {
        let mut c = Config::default();
        c.set("window", "2").unwrap();
        c.set("unenrolled", "ignore").unwrap();
        c.set("prompt", "Code: ").unwrap();
        assert_eq!(c.window, 2);
        assert_eq!(c.unenrolled, UnenrolledPolicy::Ignore);
        assert!(c.set("window", "9").is_err());
        assert!(c.set("bogus", "1").is_err());
        assert!(c.set("unenrolled", "yes").is_err());
        let mut c = Config::default();
        c.set("max_code_failures", "3").unwrap();
        c.set("rate_limit_by_host", "true").unwrap();
        c.set("grace_period", "600").unwrap();
        assert_eq!(c.limits().code.max_failures, 3);
        assert!(c.limits().by_host);
        assert_eq!(c.grace_period, 600);
        assert!(c.set("notify_command", "/bin/true").is_err());
        // The helper runs as root: only the configuration file may name it.
        assert!(c.set("fido2_helper", "/tmp/x").is_err());
        c.set("fido2", "required").unwrap();
        c.set("fido2_timeout", "5").unwrap();
        c.set("fido2_remote", "true").unwrap();
        c.set("fido2_user_verification", "true").unwrap();
        c.set("fido2_rp_id", "pam://cluster").unwrap();
        assert_eq!(c.fido2, Fido2Policy::Required);
        assert_eq!(c.fido2_timeout, 5);
        assert!(c.fido2_remote && c.fido2_user_verification);
        assert!(c.set("fido2", "maybe").is_err());
    }
}
