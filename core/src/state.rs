//! The root-owned login state of one user: what must survive between logins
//! and must not be in the user's hands (replay protection, spent codes,
//! recent outcomes). Stored under the state directory, one file per user,
//! replaced atomically under a per-user lock.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{parse_json_or_toml, Error};
use crate::files::{self, FileRequirements, LockGuard};

/// Current version of the state document.
pub const STATE_VERSION: u32 = 1;
/// Largest state file a login reads (bytes): several times the largest
/// state the module can write (the limits of the configuration bound the
/// failure records, [`crate::origin::bounded`] their hosts, the enrollment
/// the spent codes; see the `worst_case_state_fits` test).
pub const MAX_STATE_BYTES: u64 = 1024 * 1024;
/// Largest state file `twofactor reset-lockout` reads to repair one that
/// grew past [`MAX_STATE_BYTES`] (written by an earlier version that kept
/// origins verbatim): its failures are dropped, its replay protection kept.
pub const MAX_REPAIRED_STATE_BYTES: u64 = 512 * 1024 * 1024;
/// Trusted-origin records kept (grace period).
pub const MAX_GRACE_RECORDS: usize = 64;
/// How long a login waits for another login of the same user to finish.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pam_twofactor";

/// A second-factor method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A TOTP code.
    Totp,
    /// A backup code.
    BackupCode,
    /// A FIDO2 security key.
    SecurityKey,
}

impl Method {
    /// Name used in logs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::BackupCode => "backup-code",
            Method::SecurityKey => "security-key",
        }
    }
}

/// What a failed attempt was an attempt at, for the rate limits: TOTP-shaped
/// and malformed answers count against codes, backup-code-shaped ones against
/// backup codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// A TOTP code (or an answer of no recognizable shape).
    Code,
    /// A backup code.
    BackupCode,
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRecord {
    /// Unix time of the attempt.
    pub time: u64,
    /// What was attempted.
    pub kind: FailureKind,
    /// Remote host (PAM_RHOST) of the attempt, if any, in its bounded form
    /// ([`crate::origin::bounded`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// An administrator ended the lockout after it (`twofactor
    /// reset-lockout`): kept for the history, counted against no limit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cleared: bool,
}

/// One `twofactor reset-lockout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockoutReset {
    /// Unix time of the reset.
    pub time: u64,
    /// Who ran it (login name of the real uid, escaped).
    pub by: String,
    /// Failures it cleared.
    pub cleared: usize,
}

/// Lockout resets kept for the history (the most recent).
pub const MAX_LOCKOUT_RESETS: usize = 8;

/// A successful second factor from an origin (remote host or terminal), for
/// the optional grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraceRecord {
    /// Service and origin ([`crate::origin::grace_origin`]).
    pub origin: String,
    /// Unix time of the success.
    pub time: u64,
}

/// The highest signature counter seen from one security-key credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fido2Counter {
    /// The credential's fingerprint (`fido2::credential_fingerprint`).
    pub credential: String,
    /// The counter of its last accepted assertion.
    pub counter: u32,
    /// Unix time of that assertion.
    pub time: u64,
}

/// Security-key counters kept (the most recently used).
pub const MAX_FIDO2_COUNTERS: usize = 64;
/// TOTP enrollments whose replay protection is kept (the most recently used).
pub const MAX_TOTP_ENROLLMENTS: usize = 8;
/// Accepted steps kept exactly per enrollment; older ones are folded into
/// the floor.
pub const MAX_KEPT_STEPS: usize = 32;

/// Which steps of one TOTP enrollment were accepted: exactly the newest
/// ones, and every step at or below `floor`. Exact rather than "everything
/// up to the last accepted step", so that steps accepted while the clock was
/// ahead stay refused without refusing today's codes once the clock is
/// right again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpReplay {
    /// The enrollment's [`crate::totp::TotpParams::fingerprint`].
    pub fingerprint: String,
    /// Steps at or below this one are refused (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub floor: u64,
    /// Accepted steps above `floor`, ascending, at most [`MAX_KEPT_STEPS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<u64>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl TotpReplay {
    /// True when `step` may not be accepted at a time whose latest valid
    /// step is `latest_valid`: it was accepted before, it is at or below the
    /// floor, or a later step that is valid by now was accepted already (so
    /// codes are accepted in order). Accepted steps after `latest_valid` do
    /// not order anything: they were accepted while the clock was ahead.
    pub fn refuses(&self, step: u64, latest_valid: u64) -> bool {
        let newest_in_time = self.steps.iter().rev().find(|&&s| s <= latest_valid);
        (self.floor > 0 && step <= self.floor)
            || self.steps.binary_search(&step).is_ok()
            || newest_in_time.is_some_and(|&newer| newer > step)
    }

    /// True when `step` is refused only because it is at or below a floor
    /// that lies after `current_step`: a floor in the future is a clock that
    /// was ahead when those steps were accepted (or is behind now).
    pub fn refuses_by_future_floor(&self, step: u64, current_step: u64) -> bool {
        self.floor > current_step && step <= self.floor && self.steps.binary_search(&step).is_err()
    }

    /// The latest step accepted (or the floor, when no step is kept).
    pub fn newest(&self) -> Option<u64> {
        self.steps
            .last()
            .copied()
            .or((self.floor > 0).then_some(self.floor))
    }

    fn accept(&mut self, step: u64) {
        if let Err(at) = self.steps.binary_search(&step) {
            self.steps.insert(at, step);
        }
        while self.steps.len() > MAX_KEPT_STEPS {
            let oldest = self.steps.remove(0);
            self.floor = self.floor.max(oldest);
        }
    }
}

/// One user's login state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginState {
    /// Document version.
    #[serde(default = "current_version")]
    pub version: u32,
    /// The last TOTP step accepted, as earlier versions kept it (for
    /// whatever enrollment there was; codes of this or earlier steps were
    /// refused). Taken over as the floor of the first enrollment that logs
    /// in, then cleared: see [`LoginState::totp_replay`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_totp_step: Option<u64>,
    /// Replay protection per TOTP enrollment (secret and parameters), most
    /// recently used last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub totp_replay: Vec<TotpReplay>,
    /// Salts (ids) of spent backup codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spent_backup_codes: Vec<String>,
    /// Unix time of the last successful second factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<u64>,
    /// Method of the last successful second factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_method: Option<Method>,
    /// Recent failed attempts, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<FailureRecord>,
    /// Recent successes by origin (only kept while a grace period is configured).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grace: Vec<GraceRecord>,
    /// Signature counters of security keys. Here, not in the user's
    /// enrollment, so that a user (or whoever has their files) cannot lower
    /// one to hide a cloned key. Absent in states written before keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fido2_counters: Vec<Fido2Counter>,
    /// The states kept under the account's other names (aliases sharing
    /// its uid, from before every name shared this one) were taken in.
    #[serde(default, skip_serializing_if = "is_false")]
    pub aliases_merged: bool,
    /// The latest lockout resets, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lockout_resets: Vec<LockoutReset>,
}

fn is_false(value: &bool) -> bool {
    !value
}

fn current_version() -> u32 {
    STATE_VERSION
}

impl Default for LoginState {
    fn default() -> Self {
        LoginState {
            version: STATE_VERSION,
            last_totp_step: None,
            spent_backup_codes: Vec::new(),
            last_success: None,
            last_success_method: None,
            failures: Vec::new(),
            grace: Vec::new(),
            fido2_counters: Vec::new(),
            aliases_merged: false,
            totp_replay: Vec::new(),
            lockout_resets: Vec::new(),
        }
    }
}

impl LoginState {
    /// Parse a state document; `origin` names it in errors. The module
    /// writes JSON (cheapest to read and write on every login); TOML, which
    /// earlier versions wrote, is still read.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        let invalid = |why: String| Error::Parse {
            what: format!("state file {origin}"),
            why,
        };
        let state: LoginState = parse_json_or_toml(text).map_err(invalid)?;
        if state.version != STATE_VERSION {
            return Err(invalid(format!("unsupported version {}", state.version)));
        }
        Ok(state)
    }

    /// The document's text (JSON, one line).
    pub fn to_text(&self) -> String {
        let mut state = self.clone();
        state.version = STATE_VERSION;
        let mut text = serde_json::to_string(&state).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The replay protection of the TOTP enrollment with `fingerprint`. A
    /// state from an earlier version (one step for whatever enrollment there
    /// was) lends its step as the floor of the first enrollment asked about:
    /// it cannot tell which one it belonged to, and refusing too much is
    /// the safe side (a new enrollment then starts afresh).
    pub fn totp_replay(&self, fingerprint: &str) -> TotpReplay {
        if let Some(record) = self
            .totp_replay
            .iter()
            .find(|r| r.fingerprint == fingerprint)
        {
            return record.clone();
        }
        TotpReplay {
            fingerprint: fingerprint.to_string(),
            floor: match (self.totp_replay.is_empty(), self.last_totp_step) {
                (true, Some(step)) => step,
                _ => 0,
            },
            steps: Vec::new(),
        }
    }

    /// Record that `step` of the enrollment with `fingerprint` was accepted.
    pub fn record_totp_step(&mut self, fingerprint: &str, step: u64) {
        let mut record = self.totp_replay(fingerprint);
        record.accept(step);
        self.totp_replay.retain(|r| r.fingerprint != fingerprint);
        self.totp_replay.push(record);
        self.last_totp_step = None;
        let excess = self.totp_replay.len().saturating_sub(MAX_TOTP_ENROLLMENTS);
        self.totp_replay.drain(..excess);
    }

    /// The latest TOTP step accepted for the most recently used enrollment.
    pub fn newest_totp_step(&self) -> Option<u64> {
        match self.totp_replay.last() {
            Some(record) => record.newest(),
            None => self.last_totp_step,
        }
    }

    /// True when the backup code with this id was spent.
    pub fn is_spent(&self, id: &str) -> bool {
        self.spent_backup_codes.iter().any(|s| s == id)
    }

    /// Record a success.
    pub fn record_success(&mut self, method: Method, now: u64) {
        self.last_success = Some(now);
        self.last_success_method = Some(method);
    }

    /// Append a failed attempt as it is. Logins record through
    /// [`crate::ratelimit::record_failure`], which also keeps the list
    /// bounded by the limits.
    pub fn record_failure(&mut self, kind: FailureKind, host: Option<&str>, now: u64) {
        self.failures.push(FailureRecord {
            time: now,
            kind,
            host: host.map(str::to_string),
            cleared: false,
        });
    }

    /// End every lockout (`twofactor reset-lockout`): the failures stay in
    /// the history, marked cleared, and the reset is recorded with who ran
    /// it. Hosts are brought to their bounded form on the way, which
    /// shrinks a state an earlier version let grow. Returns how many
    /// failures were cleared.
    pub fn clear_failures(&mut self, by: &str, now: u64) -> usize {
        let mut cleared = 0;
        for failure in &mut self.failures {
            if !failure.cleared {
                failure.cleared = true;
                cleared += 1;
            }
            if let Some(host) = &failure.host {
                failure.host = Some(crate::origin::bounded(host));
            }
        }
        if cleared > 0 {
            self.lockout_resets.push(LockoutReset {
                time: now,
                by: crate::audit::sanitize(by),
                cleared,
            });
            let excess = self.lockout_resets.len().saturating_sub(MAX_LOCKOUT_RESETS);
            self.lockout_resets.drain(..excess);
        }
        cleared
    }

    /// Take in the state of the same account kept under another name (an
    /// alias sharing its uid), so that nothing either name accepted or spent
    /// can be accepted again: the later TOTP step, every spent code, the
    /// higher key counter, every failure and grace record.
    pub fn merge(&mut self, other: LoginState) {
        self.take_replay_defences(&other);
        if other.last_success > self.last_success {
            self.last_success = other.last_success;
            self.last_success_method = other.last_success_method;
        }
        self.failures.extend(other.failures);
        self.failures.sort_by_key(|f| f.time);
        for record in other.grace {
            if !self.grace.contains(&record) {
                self.grace.push(record);
            }
        }
        self.grace.sort_by_key(|g| g.time);
        let excess = self.grace.len().saturating_sub(MAX_GRACE_RECORDS);
        self.grace.drain(..excess);
    }

    /// Take in what makes `other` refuse a replay: the later TOTP steps,
    /// every spent backup code, the higher key counters. Only grows what
    /// it touches, so it can be applied any number of times (a host's own
    /// state over the fleet's shared one, at every login).
    pub fn take_replay_defences(&mut self, other: &LoginState) {
        self.last_totp_step = self.last_totp_step.max(other.last_totp_step);
        for theirs in &other.totp_replay {
            let mut mine = self.totp_replay(&theirs.fingerprint);
            mine.floor = mine.floor.max(theirs.floor);
            for &step in &theirs.steps {
                mine.accept(step);
            }
            mine.steps.retain(|&s| s > mine.floor);
            self.totp_replay
                .retain(|r| r.fingerprint != mine.fingerprint);
            self.totp_replay.push(mine);
        }
        let excess = self.totp_replay.len().saturating_sub(MAX_TOTP_ENROLLMENTS);
        self.totp_replay.drain(..excess);
        for id in &other.spent_backup_codes {
            if !self.is_spent(id) {
                self.spent_backup_codes.push(id.clone());
            }
        }
        for counter in &other.fido2_counters {
            match self
                .fido2_counters
                .iter_mut()
                .find(|c| c.credential == counter.credential)
            {
                Some(mine) => {
                    mine.counter = mine.counter.max(counter.counter);
                    mine.time = mine.time.max(counter.time);
                }
                None => self.fido2_counters.push(counter.clone()),
            }
        }
        let excess = self.fido2_counters.len().saturating_sub(MAX_FIDO2_COUNTERS);
        self.fido2_counters.drain(..excess);
    }

    /// Remember a success from `origin` for the grace period.
    pub fn record_grace(&mut self, origin: &str, now: u64) {
        self.grace.retain(|g| g.origin != origin);
        self.grace.push(GraceRecord {
            origin: origin.to_string(),
            time: now,
        });
        let excess = self.grace.len().saturating_sub(MAX_GRACE_RECORDS);
        self.grace.drain(..excess);
    }

    /// True when `origin` had a success less than `period` seconds ago.
    pub fn within_grace(&self, origin: &str, now: u64, period: u64) -> bool {
        period > 0
            && self
                .grace
                .iter()
                .any(|g| g.origin == origin && g.time <= now && now - g.time < period)
    }

    /// The last accepted counter of the credential with `fingerprint`.
    pub fn fido2_counter(&self, fingerprint: &str) -> Option<u32> {
        self.fido2_counters
            .iter()
            .find(|c| c.credential == fingerprint)
            .map(|c| c.counter)
    }

    /// Record an accepted counter (most recent last; bounded).
    pub fn record_fido2_counter(&mut self, fingerprint: &str, counter: u32, now: u64) {
        self.fido2_counters.retain(|c| c.credential != fingerprint);
        self.fido2_counters.push(Fido2Counter {
            credential: fingerprint.to_string(),
            counter,
            time: now,
        });
        let excess = self.fido2_counters.len().saturating_sub(MAX_FIDO2_COUNTERS);
        self.fido2_counters.drain(..excess);
    }

    /// Forget spent-code ids that no longer name a code of the enrollment
    /// (the codes were regenerated), so the file does not grow without bound.
    pub fn forget_unknown_backup_codes<'a>(&mut self, known: impl Iterator<Item = &'a str>) {
        let known: Vec<&str> = known.collect();
        self.spent_backup_codes
            .retain(|id| known.iter().any(|k| k == id));
    }
}

/// Where the state of users lives, and how it is locked and replaced.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

/// Mode of a new state directory: others may pass through (to read their
/// own state file) but not list it.
pub const STATE_DIR_MODE: u32 = 0o711;

/// The state of one user, loaded under that user's lock. Saving replaces the
/// file atomically; dropping releases the lock.
#[derive(Debug)]
pub struct LockedState {
    path: PathBuf,
    reader_gid: Option<u32>,
    /// The state as loaded (or default when the user has none yet).
    pub state: LoginState,
    _lock: LockGuard,
}

/// The name a user's login state is kept under: the first name the system
/// gives their uid (`getpwuid`), so that every alias of an account
/// (`useradd -o`: same uid, another name) shares one replay and failure
/// state; the login name itself when the uid has no name of its own.
pub fn state_name(login_name: &str, name_of_uid: Option<String>) -> String {
    name_of_uid.unwrap_or_else(|| login_name.to_string())
}

/// The names `/etc/passwd` (its text) gives `uid`, in file order: the local
/// aliases of an account, whose earlier states are taken in once.
pub fn local_names_of_uid(passwd: &str, uid: u32) -> Vec<String> {
    passwd
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let entry_uid: u32 = fields.nth(1)?.parse().ok()?;
            (entry_uid == uid && !name.is_empty() && !name.starts_with(['+', '-']))
                .then(|| name.to_string())
        })
        .collect()
}

/// File-name form of a user name: safe characters kept, the rest `%XX`.
pub fn user_file_stem(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for (i, b) in user.bytes().enumerate() {
        let safe = b.is_ascii_alphanumeric() || b"_-@".contains(&b) || (b == b'.' && i > 0);
        if safe {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The user name whose file-name form is `stem` (the inverse of
/// [`user_file_stem`]), or `None` when no user name has that form: a stem
/// that does not round-trip (`%41` for a kept character, lower-case hex, a
/// leading `.`, bytes that are not UTF-8) was not written by this store, and
/// acting on it could reach another user's state.
pub fn user_of_file_stem(stem: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(stem.len());
    let mut rest = stem.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail.get(..2)?;
            let text = std::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(text, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    let user = String::from_utf8(bytes).ok()?;
    (!user.is_empty() && user_file_stem(&user) == stem).then_some(user)
}

impl StateStore {
    /// A store in `dir` (not touched until used).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a user's state file.
    pub fn state_path(&self, user: &str) -> PathBuf {
        self.dir.join(format!("{}.state", user_file_stem(user)))
    }

    fn lock_path(&self, user: &str) -> PathBuf {
        self.dir.join(format!("{}.lock", user_file_stem(user)))
    }

    /// Lock and load a user's state. The directory is created (mode 0711,
    /// owned by the caller, which must be root in production) when missing,
    /// and refused when it is a symlink or writable by others.
    ///
    /// `reader_gid` is the user's primary group: the saved file gets that
    /// group with mode 0640, so `twofactor status` can show users their own
    /// state while only root can change it.
    pub fn lock(
        &self,
        user: &str,
        owner_uid: u32,
        reader_gid: Option<u32>,
    ) -> Result<LockedState, Error> {
        self.lock_reading_at_most(user, owner_uid, reader_gid, MAX_STATE_BYTES)
    }

    /// [`StateStore::lock`] for `twofactor reset-lockout`, which also takes
    /// a state file up to [`MAX_REPAIRED_STATE_BYTES`], so that one grown
    /// too large for a login can be repaired without losing what it holds.
    pub fn lock_for_repair(
        &self,
        user: &str,
        owner_uid: u32,
        reader_gid: Option<u32>,
    ) -> Result<LockedState, Error> {
        self.lock_reading_at_most(user, owner_uid, reader_gid, MAX_REPAIRED_STATE_BYTES)
    }

    fn lock_reading_at_most(
        &self,
        user: &str,
        owner_uid: u32,
        reader_gid: Option<u32>,
        max_size: u64,
    ) -> Result<LockedState, Error> {
        files::ensure_private_dir(&self.dir, owner_uid, STATE_DIR_MODE)?;
        let lock = files::lock_exclusive(&self.lock_path(user), LOCK_TIMEOUT)?;
        let path = self.state_path(user);
        let state = Self::read(&path, owner_uid, max_size)?;
        Ok(LockedState {
            path,
            reader_gid,
            state,
            _lock: lock,
        })
    }

    /// The users whose states the directory holds (every `STEM.state`
    /// whose stem a user name encodes to), sorted, and the names of the
    /// `.state` files that no user name encodes to (left alone). No
    /// directory yet: none.
    pub fn stored_users(&self) -> Result<(Vec<String>, Vec<String>), Error> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), Vec::new()))
            }
            Err(e) => {
                return Err(Error::file(
                    &self.dir,
                    crate::error::FileProblem::Io(files::describe_io_error(&e)),
                ))
            }
        };
        let (mut users, mut strays) = (Vec::new(), Vec::new());
        for entry in entries {
            let entry = entry.map_err(|e| {
                Error::file(
                    &self.dir,
                    crate::error::FileProblem::Io(files::describe_io_error(&e)),
                )
            })?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".state")) else {
                if name.as_encoded_bytes().ends_with(b".state") {
                    strays.push(
                        crate::audit::escape_control_chars(&name.to_string_lossy()).into_owned(),
                    );
                }
                continue;
            };
            match user_of_file_stem(stem) {
                Some(user) => users.push(user),
                None => strays
                    .push(crate::audit::escape_control_chars(&name.to_string_lossy()).into_owned()),
            }
        }
        users.sort();
        strays.sort();
        Ok((users, strays))
    }

    /// Read a user's state without locking (for display).
    pub fn peek(&self, user: &str, owner_uid: u32) -> Result<LoginState, Error> {
        Self::read(&self.state_path(user), owner_uid, MAX_STATE_BYTES)
    }

    /// Move the state kept under `alias` (another name of the same account)
    /// into `locked` and save it, then remove the alias's file: from then on
    /// every name of the account shares one replay and failure state. Done
    /// under both names' locks; a crash before the removal only means the
    /// (idempotent) merge happens again.
    pub fn absorb_alias(
        &self,
        locked: &mut LockedState,
        alias: &str,
        owner_uid: u32,
    ) -> Result<(), Error> {
        let alias_path = self.state_path(alias);
        if alias_path == locked.path || !alias_path.exists() {
            return Ok(());
        }
        let _alias_lock = files::lock_exclusive(&self.lock_path(alias), LOCK_TIMEOUT)?;
        let state = match Self::read(&alias_path, owner_uid, MAX_STATE_BYTES) {
            Ok(state) => state,
            Err(e) if e.is_missing_file() => return Ok(()),
            Err(e) => return Err(e),
        };
        locked.state.merge(state);
        locked.save()?;
        std::fs::remove_file(&alias_path).map_err(|e| {
            Error::file(
                &alias_path,
                crate::error::FileProblem::Io(files::describe_io_error(&e)),
            )
        })
    }

    fn read(path: &Path, owner_uid: u32, max_size: u64) -> Result<LoginState, Error> {
        // Group read is allowed (see `lock`); nothing else.
        let requirements = FileRequirements {
            owner: owner_uid,
            forbidden_mode: 0o037,
            max_size,
        };
        match files::read_checked_text(path, &requirements) {
            Ok(text) => LoginState::parse(&text, &path.display().to_string()),
            Err(e) if e.is_missing_file() => Ok(LoginState::default()),
            Err(e) => Err(e),
        }
    }
}

impl LockedState {
    /// Replace the state file with the current `state`.
    pub fn save(&self) -> Result<(), Error> {
        let mode = if self.reader_gid.is_some() {
            0o640
        } else {
            0o600
        };
        // One fixed temporary name per user, written only under the user's
        // lock: a save killed half-way leaves at most that file, which the
        // next save truncates and renames, so nothing accumulates and no
        // directory scan is needed.
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("state");
        let temporary = self.path.with_file_name(format!(".{name}.tmp"));
        files::replace_through(
            &temporary,
            &self.path,
            self.state.to_text().as_bytes(),
            mode,
            self.reader_gid,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn me() -> u32 {
        std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap()
    }

    #[test]
    fn round_trip_and_defaults() {
        let mut state = LoginState::default();
        assert_eq!(LoginState::parse("", "t").unwrap(), state);
        state.last_totp_step = Some(42);
        state.spent_backup_codes.push("ab".into());
        state.record_success(Method::BackupCode, 7);
        state.record_failure(FailureKind::Code, Some("192.0.2.1"), 5);
        state.record_failure(FailureKind::BackupCode, None, 6);
        state.record_grace("host:192.0.2.1", 7);
        state.record_fido2_counter("00ff", 12, 7);
        state.record_success(Method::SecurityKey, 8);
        assert_eq!(LoginState::parse(&state.to_text(), "t").unwrap(), state);
        assert!(state.to_text().starts_with('{'));
        assert_eq!(state.fido2_counter("00ff"), Some(12));
        assert_eq!(state.fido2_counter("11ff"), None);
    }

    #[test]
    fn rejects_unknown_fields_and_versions() {
        assert!(LoginState::parse("version = 9", "t").is_err());
        assert!(LoginState::parse("surprise = 1", "t").is_err());
        assert!(LoginState::parse("last_totp_step = -1", "t").is_err());
        assert!(LoginState::parse("{\"version\": 9}", "t").is_err());
        assert!(LoginState::parse("{\"surprise\": 1}", "t").is_err());
        assert!(LoginState::parse("{\"last_totp_step\": -1}", "t").is_err());
        assert!(LoginState::parse("{\"last_totp_step\": ", "t").is_err());
    }

    #[test]
    fn older_toml_state_is_still_read() {
        let old = "version = 1\nlast_totp_step = 42\nspent_backup_codes = [\"ab\"]\n";
        let state = LoginState::parse(old, "t").unwrap();
        assert_eq!(state.last_totp_step, Some(42));
        assert!(state.is_spent("ab"));
    }

    #[test]
    fn json_errors_do_not_quote_the_input() {
        let err = LoginState::parse("{\"spent_backup_codes\": \"SECRETISH\"}", "t")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRETISH"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn worst_case_state_fits() {
        use crate::ratelimit::{Limit, Limits};
        // The largest limits the configuration accepts, every failure from
        // a distinct host of the longest stored form, the most grace records
        // and key counters, and the spent codes of a full enrollment.
        let limit = Limit {
            max_failures: crate::config::MAX_FAILURE_LIMIT,
            window: crate::config::MAX_PERIOD_SECONDS,
            max_failures_all_hosts: crate::config::MAX_FAILURE_LIMIT,
        };
        let limits = Limits {
            code: limit,
            backup_code: limit,
            by_host: true,
        };
        let mut state = LoginState::default();
        let now = 4_000_000_000;
        for i in 0..3 * crate::config::MAX_FAILURE_LIMIT as u64 {
            let host = crate::origin::bounded(&format!("{i}{}", "h".repeat(300)));
            assert!(host.len() <= crate::origin::MAX_ORIGIN_BYTES);
            for kind in [FailureKind::Code, FailureKind::BackupCode] {
                crate::ratelimit::record_failure(&mut state, &limits, kind, Some(&host), now - i);
            }
        }
        for i in 0..MAX_GRACE_RECORDS * 2 {
            // A local origin: the longest there is (terminal, session and
            // machine).
            let origin = crate::origin::grace_origin(
                &"s".repeat(300),
                None,
                Some(&format!("{i}{}", "t".repeat(300))),
                Some(crate::origin::TerminalSession {
                    id: u32::MAX,
                    leader_start: u64::MAX,
                }),
                &"m".repeat(300),
            )
            .unwrap();
            state.record_grace(&origin, now);
        }
        for i in 0..MAX_FIDO2_COUNTERS * 2 {
            state.record_fido2_counter(&format!("{i:064x}"), u32::MAX, now);
        }
        // An enrollment of at most 64 KiB holds fewer than 1000 codes.
        state.spent_backup_codes = (0..1000).map(|i| format!("{i:032x}")).collect();
        state.last_totp_step = Some(u64::MAX);
        let size = state.to_text().len() as u64;
        assert!(
            size * 2 < MAX_STATE_BYTES,
            "worst case {size} bytes against a limit of {MAX_STATE_BYTES}"
        );
    }

    #[test]
    fn local_names_of_a_uid() {
        let passwd = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n\
                      toor:x:0:0::/root:/bin/sh\nbad line\n+nis:x:0:0:::\nalias:x:1000:1000:::\n";
        assert_eq!(local_names_of_uid(passwd, 0), ["root", "toor"]);
        assert_eq!(local_names_of_uid(passwd, 1000), ["alice", "alias"]);
        assert!(local_names_of_uid(passwd, 7).is_empty());
    }

    #[test]
    fn merge_keeps_everything_either_side_used() {
        let mut mine = LoginState {
            last_totp_step: Some(10),
            spent_backup_codes: vec!["a".into()],
            ..LoginState::default()
        };
        mine.record_fido2_counter("k1", 5, 1);
        mine.record_failure(FailureKind::Code, None, 30);
        let mut alias = LoginState {
            last_totp_step: Some(12),
            spent_backup_codes: vec!["a".into(), "b".into()],
            ..LoginState::default()
        };
        alias.record_fido2_counter("k1", 9, 2);
        alias.record_fido2_counter("k2", 1, 2);
        alias.record_failure(FailureKind::BackupCode, Some("192.0.2.1"), 20);
        alias.record_success(Method::Totp, 40);
        mine.merge(alias);
        assert_eq!(mine.last_totp_step, Some(12));
        assert!(mine.is_spent("a") && mine.is_spent("b"));
        assert_eq!(mine.spent_backup_codes.len(), 2);
        assert_eq!(mine.fido2_counter("k1"), Some(9));
        assert_eq!(mine.fido2_counter("k2"), Some(1));
        assert_eq!(
            mine.failures.iter().map(|f| f.time).collect::<Vec<_>>(),
            [20, 30]
        );
        assert_eq!(mine.last_success, Some(40));
    }

    #[test]
    fn an_alias_state_is_absorbed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state"));
        {
            let mut alias = store.lock("alias", me(), None).unwrap();
            alias.state.spent_backup_codes.push("spent".into());
            alias.state.last_totp_step = Some(77);
            alias.save().unwrap();
        }
        let mut locked = store.lock("owner", me(), None).unwrap();
        store.absorb_alias(&mut locked, "alias", me()).unwrap();
        assert!(locked.state.is_spent("spent"));
        drop(locked);
        assert!(!store.state_path("alias").exists());
        let reread = store.peek("owner", me()).unwrap();
        assert_eq!(reread.last_totp_step, Some(77));
        // Nothing left to take in: a no-op.
        let mut locked = store.lock("owner", me(), None).unwrap();
        store.absorb_alias(&mut locked, "alias", me()).unwrap();
        assert!(locked.state.is_spent("spent"));
    }

    #[test]
    fn a_state_too_large_for_a_login_can_be_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state"));
        drop(store.lock("big", me(), None).unwrap());
        let mut state = LoginState::default();
        state.spent_backup_codes.push("spent".into());
        state.last_totp_step = Some(5);
        state.record_failure(FailureKind::Code, Some(&"h".repeat(2_000_000)), 1);
        std::fs::write(store.state_path("big"), state.to_text()).unwrap();
        std::fs::set_permissions(
            store.state_path("big"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        assert!(store.lock("big", me(), None).is_err());
        let mut repaired = store.lock_for_repair("big", me(), None).unwrap();
        assert_eq!(repaired.state.clear_failures("root", 2), 1);
        repaired.save().unwrap();
        drop(repaired);
        let state = store.lock("big", me(), None).unwrap().state;
        assert!(state.is_spent("spent"));
        assert_eq!(state.last_totp_step, Some(5));
    }

    #[test]
    fn grace_records() {
        let mut state = LoginState::default();
        assert!(!state.within_grace("tty:/dev/tty1", 100, 60));
        state.record_grace("tty:/dev/tty1", 100);
        state.record_grace("tty:/dev/tty1", 110);
        assert_eq!(state.grace.len(), 1);
        assert!(state.within_grace("tty:/dev/tty1", 169, 60));
        assert!(!state.within_grace("tty:/dev/tty1", 170, 60));
        assert!(!state.within_grace("tty:/dev/tty2", 120, 60));
        assert!(!state.within_grace("tty:/dev/tty1", 120, 0));
        // A record from the future (clock stepped back) grants nothing.
        assert!(!state.within_grace("tty:/dev/tty1", 50, 60));
    }

    #[test]
    fn store_locks_saves_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state"));
        {
            let mut locked = store.lock("alice", me(), None).unwrap();
            locked.state.last_totp_step = Some(9);
            locked.save().unwrap();
        }
        let path = store.state_path("alice");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(store.peek("alice", me()).unwrap().last_totp_step, Some(9));
    }

    #[test]
    fn a_leftover_temporary_is_reused_not_accumulated() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state"));
        let temporary = dir.path().join("state/.alice.state.tmp");
        let mut locked = store.lock("alice", me(), None).unwrap();
        // What a save killed before its rename leaves behind.
        std::fs::write(&temporary, "last_totp_step = [ partial").unwrap();
        locked.state.last_totp_step = Some(5);
        locked.save().unwrap();
        drop(locked);
        assert!(!temporary.exists());
        assert_eq!(store.peek("alice", me()).unwrap().last_totp_step, Some(5));
        assert_eq!(
            std::fs::read_dir(dir.path().join("state")).unwrap().count(),
            2
        );
    }

    #[test]
    fn corrupt_state_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state"));
        drop(store.lock("bob", me(), None).unwrap());
        std::fs::write(store.state_path("bob"), "last_totp_step = [").unwrap();
        std::fs::set_permissions(
            store.state_path("bob"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        assert!(store.lock("bob", me(), None).is_err());
    }

    #[test]
    fn user_names_become_safe_file_names() {
        assert_eq!(user_file_stem("alice"), "alice");
        assert_eq!(user_file_stem("a.b@example.com"), "a.b@example.com");
        assert_eq!(user_file_stem("../x"), "%2E.%2Fx");
        assert_eq!(user_file_stem("dom\\user"), "dom%5Cuser");
    }

    #[test]
    fn file_names_decode_back_to_user_names() {
        for user in [
            "alice",
            "a.b@example.com",
            "../x",
            "dom\\user",
            ".hidden",
            "x%41",
            "ünïcode",
            "with space",
            "%",
        ] {
            let stem = user_file_stem(user);
            assert_eq!(user_of_file_stem(&stem).as_deref(), Some(user), "{stem}");
        }
        // Forms no user name encodes to are refused, not guessed at.
        for stem in [
            "",      // no name
            "%41",   // a kept character escaped
            "%2e.x", // lower-case hex
            ".x",    // a leading dot is escaped
            "%",     // cut short
            "%4",    // cut short
            "%G0",   // not hex
            "%FF",   // not UTF-8
            "a/b",   // not a kept character
            "a b",   // not a kept character
            "%+1",   // from_str_radix would take the sign
        ] {
            assert_eq!(user_of_file_stem(stem), None, "{stem:?}");
        }
    }

    #[test]
    fn stored_users_are_listed_and_strays_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state"));
        assert_eq!(store.stored_users().unwrap(), (vec![], vec![]));
        for user in ["bob", "dom\\user", ".dot"] {
            let locked = store.lock(user, me(), None).unwrap();
            locked.save().unwrap();
        }
        std::fs::write(store.dir().join("%41.state"), "{}").unwrap();
        std::fs::write(store.dir().join("notes.txt"), "").unwrap();
        let (users, strays) = store.stored_users().unwrap();
        assert_eq!(users, [".dot", "bob", "dom\\user"]);
        assert_eq!(strays, ["%41.state"]);
    }
}
