//! The fleet's login state on Redis (`state_backend = "redis"`).
//!
//! One document per account, the same [`LoginState`] a host keeps in its
//! state file, under `PREFIX:{HEX}:state`, where HEX is the account's state
//! name in hexadecimal: no byte of a user name can reach a key unescaped,
//! and the braces (a hash tag) keep one account's keys in one Redis Cluster
//! slot. Nothing secret leaves the host: the document holds TOTP steps,
//! salts of spent backup codes, key counters, failure times and origins.
//!
//! Every decision runs under the account's lease (`PREFIX:{HEX}:lease`,
//! taken with `SET NX PX` by a script that also returns the server's clock
//! and the document), so decisions about one account are serialized across
//! the fleet exactly as a host serializes them with its file lock, and by
//! the same rules ([`crate::attempt::decide`], no copy of them in Lua).
//! The store script writes only while the lease is still ours (fencing): a
//! login stalled past its lease stores nothing and fails closed. Failure
//! windows, lockouts and grace run on the server's clock, so a host whose
//! clock is wrong cannot stretch them.
//!
//! The client is the `redis` crate's synchronous connection: a blocking
//! socket with timeouts, no async runtime, no thread inside sshd.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::RngCore;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, Value};

use crate::config::Config;
use crate::error::Error;
use crate::files::{self, FileRequirements};
use crate::secret::SecretString;
use crate::state::{LoginState, MAX_STATE_BYTES};

/// How long a lease lasts unless released: longer than any decision takes
/// (a few milliseconds), short enough that a login killed while holding it
/// delays the account's next login by at most this.
pub const LEASE: Duration = Duration::from_millis(2000);
/// How long a login waits for another login's lease: one whole lease, so a
/// lease left by a killed login runs out while it waits.
pub const LEASE_WAIT: Duration = Duration::from_millis(2500);
/// Largest password file read.
const MAX_PASSWORD_BYTES: u64 = 4096;
/// Largest CA file read.
const MAX_CA_BYTES: u64 = 256 * 1024;

/// What went wrong with the shared state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedStateError {
    /// No server could be reached or asked in time (connect, I/O, timeout,
    /// no Sentinel answered, the named primary is not one): the case
    /// `redis_unavailable = "local"` falls back on.
    Unreachable(String),
    /// A server answered but refused (authentication, ACL, a script error).
    Refused(String),
    /// Another login held the account's lease for longer than
    /// [`LEASE_WAIT`].
    Busy,
    /// The lease ran out before the decision was stored: another login may
    /// have decided since, so this one's is not stored.
    LeaseLost,
    /// Fewer replicas than required acknowledged a backup-code spend.
    NotConfirmed {
        /// replicas that acknowledged
        acknowledged: u32,
        /// `redis_wait_replicas`
        wanted: u32,
    },
}

impl SharedStateError {
    /// True for the failures that `redis_unavailable = "local"` falls back
    /// on: only a server that cannot be reached. A busy lease, a refusal
    /// and a lost lease fail closed whatever the setting, since someone
    /// who can cause them must not thereby get per-host limits.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SharedStateError::Unreachable(_))
    }
}

impl fmt::Display for SharedStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedStateError::Unreachable(why) => write!(f, "Redis unreachable: {why}"),
            SharedStateError::Refused(why) => write!(f, "Redis refused: {why}"),
            SharedStateError::Busy => write!(
                f,
                "Redis: another login held the account's lease for over {} ms",
                LEASE_WAIT.as_millis()
            ),
            SharedStateError::LeaseLost => write!(
                f,
                "Redis: the account's lease ran out before the decision was stored \
                 (this login stalled for over {} ms); nothing stored",
                LEASE.as_millis()
            ),
            SharedStateError::NotConfirmed {
                acknowledged,
                wanted,
            } => write!(
                f,
                "Redis: the backup-code spend was acknowledged by {acknowledged} of the \
                 {wanted} replicas required (redis_wait_replicas); the code stays spent"
            ),
        }
    }
}

impl From<SharedStateError> for Error {
    fn from(e: SharedStateError) -> Self {
        Error::SharedState(e)
    }
}

fn describe(e: &redis::RedisError) -> SharedStateError {
    // The crate's messages hold the server's reply and the I/O error, never
    // the password (it is sent, not quoted).
    let text = crate::audit::escape_control_chars(&e.to_string()).into_owned();
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        SharedStateError::Unreachable(text)
    } else {
        SharedStateError::Refused(text)
    }
}

/// `redis://HOST:PORT[/DB]` or `rediss://…`, without credentials (they
/// come from `redis_user` and `redis_password_file`).
pub fn validate_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
        .ok_or("must start with redis:// or rediss://")?;
    if rest.contains('@') {
        return Err(
            "must not hold a user or password: use redis_user and redis_password_file".into(),
        );
    }
    if rest.contains('?') || rest.contains('#') {
        return Err("takes no query parameters".into());
    }
    let (authority, db) = match rest.split_once('/') {
        Some((authority, db)) => (authority, db),
        None => (rest, ""),
    };
    if !db.is_empty() && db.parse::<u16>().is_err() {
        return Err(format!("database {db:?} is not a number"));
    }
    validate_host_port(authority)
}

/// `HOST:PORT` (an IPv6 address in brackets).
pub fn validate_host_port(address: &str) -> Result<(), String> {
    let (host, port) = split_host_port(address)?;
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
    {
        return Err(format!("{address:?}: not a host name or address"));
    }
    if port == 0 {
        return Err(format!("{address:?}: port 0"));
    }
    Ok(())
}

fn split_host_port(address: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
        let (host, rest) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("{address:?}: unclosed ["))?;
        (
            host,
            rest.strip_prefix(':')
                .ok_or_else(|| format!("{address:?}: no port"))?,
        )
    } else {
        address
            .rsplit_once(':')
            .ok_or_else(|| format!("{address:?}: no port (HOST:PORT)"))?
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{address:?}: bad port"))?;
    Ok((host, port))
}

/// Where the server is.
#[derive(Clone)]
enum Target {
    /// One server.
    Url(ConnectionInfo),
    /// Ask these Sentinels for the primary of `master`.
    Sentinels {
        addresses: Vec<(String, u16)>,
        master: String,
        tls: bool,
    },
}

/// Everything needed to reach the shared state, read from the
/// configuration and the files it names (the password file: owned by the
/// state owner, no access for group or others).
#[derive(Clone)]
pub struct RedisSettings {
    target: Target,
    ca_pem: Option<Vec<u8>>,
    user: Option<String>,
    password: Option<std::sync::Arc<SecretString>>,
    connect_timeout: Duration,
    command_timeout: Duration,
    wait_replicas: u32,
    wait_timeout: Duration,
    prefix: String,
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("RedisSettings")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSettings {
    /// The settings of `config` (which uses the Redis backend); `owner` is
    /// who must own the password file (root in production).
    pub fn from_config(config: &Config, owner: u32) -> Result<Self, Error> {
        let target = if config.redis_url.is_empty() {
            let addresses = config
                .redis_sentinels
                .iter()
                .map(|a| {
                    split_host_port(a)
                        .map(|(h, p)| (h.to_string(), p))
                        .map_err(|why| Error::Config(format!("redis_sentinels: {why}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if addresses.is_empty() {
                return Err(Error::Config(
                    "state_backend = \"redis\" needs redis_url or redis_sentinels".into(),
                ));
            }
            Target::Sentinels {
                addresses,
                master: config.redis_master_name.clone(),
                tls: config.redis_tls,
            }
        } else {
            let info = config
                .redis_url
                .as_str()
                .into_connection_info()
                .map_err(|e| Error::Config(format!("redis_url: {}", describe(&e))))?;
            Target::Url(info)
        };
        let ca_pem = if config.redis_ca_file.is_empty() {
            None
        } else {
            let requirements = FileRequirements::root_policy(MAX_CA_BYTES);
            Some(files::read_checked(Path::new(&config.redis_ca_file), &requirements)?.to_vec())
        };
        let password = if config.redis_password_file.is_empty() {
            None
        } else {
            let requirements = FileRequirements::secret_of(owner, MAX_PASSWORD_BYTES);
            let text =
                files::read_checked_text(Path::new(&config.redis_password_file), &requirements)?;
            let first_line = text.lines().next().unwrap_or("").trim_end_matches('\r');
            if first_line.is_empty() {
                return Err(Error::Config(format!(
                    "redis_password_file {} holds no password on its first line",
                    config.redis_password_file
                )));
            }
            Some(std::sync::Arc::new(SecretString::new(
                first_line.to_string(),
            )))
        };
        Ok(RedisSettings {
            target,
            ca_pem,
            user: (!config.redis_user.is_empty()).then(|| config.redis_user.clone()),
            password,
            connect_timeout: Duration::from_millis(config.redis_connect_timeout_ms),
            command_timeout: Duration::from_millis(config.redis_command_timeout_ms),
            wait_replicas: config.redis_wait_replicas,
            wait_timeout: Duration::from_millis(config.redis_wait_timeout_ms),
            prefix: config.redis_key_prefix.clone(),
        })
    }

    fn with_credentials(&self, info: ConnectionInfo) -> ConnectionInfo {
        let mut redis = RedisConnectionInfo::default()
            .set_db(info.redis_settings().db())
            // No CLIENT SETINFO: one command fewer for the ACL to allow.
            .set_skip_set_lib_name();
        if let Some(user) = &self.user {
            redis = redis.set_username(user);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password.expose());
        }
        info.set_redis_settings(redis)
    }

    fn open(
        &self,
        info: ConnectionInfo,
        deadline: Instant,
    ) -> Result<redis::Connection, SharedStateError> {
        let timeout = remaining(deadline)?;
        let info = self.with_credentials(info);
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        let client = if tls {
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: self.ca_pem.clone(),
                },
            )
        } else {
            redis::Client::open(info)
        }
        .map_err(|e| describe(&e))?;
        let connection = client
            .get_connection_with_timeout(timeout)
            .map_err(|e| describe(&e))?;
        connection
            .set_read_timeout(Some(self.command_timeout))
            .and_then(|()| connection.set_write_timeout(Some(self.command_timeout)))
            .map_err(|e| describe(&e))?;
        Ok(connection)
    }

    fn address(
        &self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> Result<ConnectionInfo, SharedStateError> {
        let addr = if tls {
            ConnectionAddr::TcpTls {
                host: host.to_string(),
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.to_string(), port)
        };
        addr.into_connection_info().map_err(|e| describe(&e))
    }

    /// A connection to the primary, within the connect timeout (all
    /// Sentinels together share it).
    pub fn connect(&self) -> Result<SharedStore, SharedStateError> {
        let deadline = Instant::now() + self.connect_timeout;
        let connection = match &self.target {
            Target::Url(info) => self.open(info.clone(), deadline)?,
            Target::Sentinels {
                addresses,
                master,
                tls,
            } => self.primary_from_sentinels(addresses, master, *tls, deadline)?,
        };
        Ok(SharedStore {
            connection,
            prefix: self.prefix.clone(),
            wait_replicas: self.wait_replicas,
            wait_timeout: self.wait_timeout,
            command_timeout: self.command_timeout,
        })
    }

    /// Ask each Sentinel in turn for the primary, and take it only once it
    /// says itself that it is one (a Sentinel may not have seen a failover
    /// yet): the procedure of Redis's Sentinel client guidelines.
    fn primary_from_sentinels(
        &self,
        addresses: &[(String, u16)],
        master: &str,
        tls: bool,
        deadline: Instant,
    ) -> Result<redis::Connection, SharedStateError> {
        let mut problems = Vec::new();
        for (host, port) in addresses {
            let asked = (|| {
                // Sentinels take no credentials here: they are given none.
                let timeout = remaining(deadline)?;
                let client = if tls {
                    redis::Client::build_with_tls(
                        self.address(host, *port, true)?,
                        redis::TlsCertificates {
                            client_tls: None,
                            root_cert: self.ca_pem.clone(),
                        },
                    )
                } else {
                    redis::Client::open(self.address(host, *port, false)?)
                }
                .map_err(|e| describe(&e))?;
                let mut sentinel = client
                    .get_connection_with_timeout(timeout)
                    .map_err(|e| describe(&e))?;
                let timeout = remaining(deadline)?;
                sentinel
                    .set_read_timeout(Some(timeout))
                    .map_err(|e| describe(&e))?;
                let named: Option<(String, u16)> = redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(master)
                    .query(&mut sentinel)
                    .map_err(|e| describe(&e))?;
                let (primary_host, primary_port) = named.ok_or_else(|| {
                    SharedStateError::Refused(format!("Sentinel knows no master {master:?}"))
                })?;
                let mut primary =
                    self.open(self.address(&primary_host, primary_port, tls)?, deadline)?;
                let role: Vec<Value> = redis::cmd("ROLE")
                    .query(&mut primary)
                    .map_err(|e| describe(&e))?;
                match role.first() {
                    Some(Value::BulkString(r)) if r == b"master" => Ok(primary),
                    _ => Err(SharedStateError::Unreachable(format!(
                        "{primary_host}:{primary_port}, named by the Sentinel, is not a primary"
                    ))),
                }
            })();
            match asked {
                Ok(primary) => return Ok(primary),
                Err(e) => problems.push(format!("Sentinel {host}:{port}: {e}")),
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(SharedStateError::Unreachable(problems.join("; ")))
    }
}

fn remaining(deadline: Instant) -> Result<Duration, SharedStateError> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| SharedStateError::Unreachable("connect timeout".into()))
}

/// The keys of one account: its state and its lease.
pub fn account_keys(prefix: &str, state_name: &str) -> (String, String) {
    let tag = hex::encode(state_name.as_bytes());
    (
        format!("{prefix}:{{{tag}}}:state"),
        format!("{prefix}:{{{tag}}}:lease"),
    )
}

/// Take the lease if free; always return the server's clock, and the
/// state when taken, else how long the lease has left.
const TAKE_LEASE: &str = r"
local now = redis.call('TIME')
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, now[1], redis.call('GET', KEYS[1]) or ''}
end
return {0, now[1], redis.call('PTTL', KEYS[2])}
";

/// Store the state and release the lease, only while the lease is ours.
const STORE: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
";

/// Release the lease if it is still ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
";

/// The server's clock and the state, without the lease (for display and
/// the checks made before asking).
const PEEK: &str = r"
local now = redis.call('TIME')
return {now[1], redis.call('GET', KEYS[1]) or ''}
";

/// The scripts, hashed once per process (their SHA-1 names them to
/// `EVALSHA`).
static SCRIPTS: std::sync::LazyLock<Scripts> = std::sync::LazyLock::new(|| Scripts {
    take_lease: redis::Script::new(TAKE_LEASE),
    store: redis::Script::new(STORE),
    release: redis::Script::new(RELEASE),
    peek: redis::Script::new(PEEK),
});

struct Scripts {
    take_lease: redis::Script,
    store: redis::Script,
    release: redis::Script,
    peek: redis::Script,
}

/// A connection to the primary holding the shared state.
pub struct SharedStore {
    connection: redis::Connection,
    prefix: String,
    wait_replicas: u32,
    wait_timeout: Duration,
    command_timeout: Duration,
}

/// The shared state of one account and the server's clock.
#[derive(Debug, Clone)]
pub struct Peeked {
    /// The state (default when the account has none yet).
    pub state: LoginState,
    /// The server's clock, unix seconds.
    pub now: u64,
}

/// An account's lease: while it is held, no other login decides about the
/// account. Given back by [`SharedStore::store`] or
/// [`SharedStore::release`] (else it runs out after [`LEASE`]).
#[derive(Debug)]
pub struct Lease {
    keys: (String, String),
    token: String,
    /// The state as loaded.
    pub state: LoginState,
    /// The server's clock when the lease was taken, unix seconds.
    pub now: u64,
}

fn parse_state(bytes: &[u8], keys: &(String, String)) -> Result<LoginState, Error> {
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(Error::Parse {
            what: format!("shared state {}", keys.0),
            why: format!("larger than {MAX_STATE_BYTES} bytes"),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Error::Parse {
        what: format!("shared state {}", keys.0),
        why: "not UTF-8".into(),
    })?;
    LoginState::parse(text, &format!("shared state {}", keys.0))
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn bytes(value: &Value) -> &[u8] {
    match value {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.as_bytes(),
        _ => b"",
    }
}

fn unexpected(what: &str) -> SharedStateError {
    SharedStateError::Refused(format!("unexpected reply to {what}"))
}

impl SharedStore {
    /// Round trip to the server (for `twofactor doctor`).
    pub fn ping(&mut self) -> Result<Duration, SharedStateError> {
        let start = Instant::now();
        redis::cmd("PING")
            .query::<String>(&mut self.connection)
            .map_err(|e| describe(&e))?;
        Ok(start.elapsed())
    }

    /// A server setting (`CONFIG GET`), when the ACL allows reading it.
    pub fn config_get(&mut self, name: &str) -> Result<Option<String>, SharedStateError> {
        let pairs: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(&mut self.connection)
            .map_err(|e| describe(&e))?;
        Ok(pairs.get(1).cloned())
    }

    /// The server's `INFO` section `section`, as text.
    pub fn info(&mut self, section: &str) -> Result<String, SharedStateError> {
        redis::cmd("INFO")
            .arg(section)
            .query(&mut self.connection)
            .map_err(|e| describe(&e))
    }

    /// The account's state and the server's clock, without the lease.
    pub fn peek(&mut self, state_name: &str) -> Result<Peeked, Error> {
        let keys = account_keys(&self.prefix, state_name);
        let reply: Vec<Value> = SCRIPTS
            .peek
            .key(&keys.0)
            .invoke(&mut self.connection)
            .map_err(|e| describe(&e))?;
        let [now, state] = &reply[..] else {
            return Err(unexpected("the peek script").into());
        };
        let now = integer(now).ok_or_else(|| unexpected("TIME"))?;
        Ok(Peeked {
            state: parse_state(bytes(state), &keys)?,
            now: u64::try_from(now).map_err(|_| unexpected("TIME"))?,
        })
    }

    /// Take the account's lease (waiting up to [`LEASE_WAIT`] for another
    /// login's) and load its state.
    pub fn lease(&mut self, state_name: &str) -> Result<Lease, Error> {
        let keys = account_keys(&self.prefix, state_name);
        let mut token_bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut token_bytes);
        let token = hex::encode(token_bytes);
        let script = &SCRIPTS.take_lease;
        let started = Instant::now();
        let mut pause = Duration::from_micros(100);
        loop {
            let reply: Vec<Value> = script
                .key(&keys.0)
                .key(&keys.1)
                .arg(&token)
                .arg(LEASE.as_millis() as u64)
                .invoke(&mut self.connection)
                .map_err(|e| describe(&e))?;
            let [taken, now, rest] = &reply[..] else {
                return Err(unexpected("the lease script").into());
            };
            let now = integer(now)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| unexpected("TIME"))?;
            if integer(taken) == Some(1) {
                let mut lease = Lease {
                    keys,
                    token,
                    state: LoginState::default(),
                    now,
                };
                match parse_state(bytes(rest), &lease.keys) {
                    Ok(state) => lease.state = state,
                    Err(e) => {
                        self.release(&lease);
                        return Err(e);
                    }
                }
                return Ok(lease);
            }
            let waited = started.elapsed();
            if waited >= LEASE_WAIT {
                return Err(SharedStateError::Busy.into());
            }
            // Poll, backing off; never past the lease's own end (PTTL).
            let left = integer(rest)
                .and_then(|ms| u64::try_from(ms).ok())
                .map(Duration::from_millis)
                .unwrap_or(pause);
            let nap = pause
                .min(left)
                .min(LEASE_WAIT - waited)
                .max(Duration::from_micros(50));
            std::thread::sleep(nap);
            pause = (pause * 2).min(Duration::from_millis(2));
        }
    }

    /// Store `state` (the lease's state, changed) and give the lease back.
    /// When `spent_a_backup_code`, wait for `redis_wait_replicas` replicas
    /// to acknowledge it: fewer is an error, and the spend stays stored.
    pub fn store(
        &mut self,
        lease: &Lease,
        state: &LoginState,
        spent_a_backup_code: bool,
    ) -> Result<(), Error> {
        let stored: i64 = SCRIPTS
            .store
            .key(&lease.keys.0)
            .key(&lease.keys.1)
            .arg(&lease.token)
            .arg(state.to_text())
            .invoke(&mut self.connection)
            .map_err(|e| describe(&e))?;
        if stored != 1 {
            return Err(SharedStateError::LeaseLost.into());
        }
        let wanted = self.wait_replicas;
        if spent_a_backup_code && wanted > 0 {
            // WAIT answers only after its own timeout when replicas are
            // missing: a socket timing out first would read a shortfall as
            // an unreachable server, and leave the late reply to be taken
            // for the next command's.
            self.connection
                .set_read_timeout(Some(self.wait_timeout + self.command_timeout))
                .map_err(|e| describe(&e))?;
            let acknowledged: i64 = redis::cmd("WAIT")
                .arg(wanted)
                .arg(self.wait_timeout.as_millis() as u64)
                .query(&mut self.connection)
                .map_err(|e| describe(&e))?;
            self.connection
                .set_read_timeout(Some(self.command_timeout))
                .map_err(|e| describe(&e))?;
            let acknowledged = u32::try_from(acknowledged).unwrap_or(0);
            if acknowledged < wanted {
                return Err(SharedStateError::NotConfirmed {
                    acknowledged,
                    wanted,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Give the lease back without storing (nothing changed). A failure
    /// only means the lease runs out by itself.
    pub fn release(&mut self, lease: &Lease) {
        let _ = SCRIPTS
            .release
            .key(&lease.keys.0)
            .key(&lease.keys.1)
            .arg(&lease.token)
            .invoke::<i64>(&mut self.connection);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_take_no_credentials() {
        assert_eq!(validate_url("redis://127.0.0.1:6379"), Ok(()));
        assert_eq!(validate_url("rediss://redis.example.org:6380/2"), Ok(()));
        assert_eq!(validate_url("redis://[2001:db8::1]:6379/0"), Ok(()));
        for (url, why) in [
            ("http://127.0.0.1:6379", "must start with"),
            (
                "redis://user:secret@127.0.0.1:6379",
                "must not hold a user or password",
            ),
            (
                "redis://:secret@127.0.0.1:6379",
                "must not hold a user or password",
            ),
            ("redis://127.0.0.1:6379/?password=x", "no query"),
            ("redis://127.0.0.1", "no port"),
            ("redis://127.0.0.1:0", "port 0"),
            ("redis://127.0.0.1:6379/x", "not a number"),
            ("redis://bad host:6379", "not a host"),
        ] {
            let error = validate_url(url).unwrap_err();
            assert!(error.contains(why), "{url}: {error}");
            assert!(!error.contains("secret"), "{url}: {error}");
        }
    }

    #[test]
    fn keys_are_hex_inside_one_hash_tag() {
        let (state, lease) = account_keys("tf", "a}b{c");
        assert_eq!(state, "tf:{617d627b63}:state");
        assert_eq!(lease, "tf:{617d627b63}:lease");
        assert_ne!(account_keys("tf", "ab").0, account_keys("tf", "a").0);
    }

    #[test]
    fn only_unreachable_servers_allow_the_fallback() {
        assert!(SharedStateError::Unreachable("x".into()).is_unreachable());
        for refused in [
            SharedStateError::Refused("NOPERM".into()),
            SharedStateError::Busy,
            SharedStateError::LeaseLost,
            SharedStateError::NotConfirmed {
                acknowledged: 0,
                wanted: 1,
            },
        ] {
            assert!(!refused.is_unreachable(), "{refused}");
        }
    }

    #[test]
    fn settings_never_show_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "hunter2-secret\n").unwrap();
        let owner = std::fs::metadata(&path).map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid()
        });
        let owner = owner.unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let config = Config {
            state_backend: crate::config::StateBackend::Redis,
            redis_url: "redis://127.0.0.1:1".into(),
            redis_password_file: path.display().to_string(),
            ..Config::default()
        };
        let settings = RedisSettings::from_config(&config, owner).unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
        // Nothing listens on port 1: unreachable, and said without it.
        let error = settings.connect().err().unwrap();
        assert!(error.is_unreachable(), "{error}");
        assert!(!error.to_string().contains("hunter2"));
        // Readable by others: refused.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let refused = RedisSettings::from_config(&config, owner).unwrap_err();
        assert!(!refused.to_string().contains("hunter2"), "{refused}");
    }
}
