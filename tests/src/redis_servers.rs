//! Real `redis-server` and `redis-sentinel` processes on 127.0.0.1 for the
//! fleet-state tests: each in a private temporary directory (configuration,
//! data, logs), on a free port, in the foreground as a child of the test,
//! killed when dropped (also when a test panics).
//!
//! Secrets (passwords, ACL lines) go into the configuration files only,
//! never into a process's argv or environment.
//!
//! A process that outlives the test binary itself (SIGKILL of the test) is
//! not reaped: nothing here asks the kernel to kill children with their
//! parent, because the parent *thread* of a fixture is not always the thread
//! that last uses it.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use redis::IntoConnectionInfo;

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const REDIS_SENTINEL: &str = "/usr/bin/redis-sentinel";
/// A redis-server starts in a few milliseconds; this only bounds a broken one.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// Sentinels find each other through hello messages sent every 2 s.
const SETUP_DEADLINE: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Long enough for any command of a healthy local server, short enough that
/// a frozen one fails a test quickly instead of hanging it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);
/// Another process may take a free port between our probe and the server's
/// bind; a new port is tried that many times.
const PORT_ATTEMPTS: usize = 5;

/// A port nobody listens on right now. The probe listener is dropped before
/// the server binds, so the port can be taken in between: callers retry.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A value as a double-quoted redis.conf string (the configuration parser's
/// escapes), so that spaces or quotes in paths and passwords stay one token.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn path_value(path: &Path) -> String {
    quoted(&path.to_string_lossy())
}

fn run_openssl(args: &[&str], dir: &Path) -> Result<(), String> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The extensions are spelled out instead of relying on the host's
/// openssl.cnf: rustls (webpki) insists on a CA marked as one and on the
/// server's address in subjectAltName, not in the CN.
const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = unused

[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// A throwaway CA and one certificate for 127.0.0.1 and localhost signed by
/// it, made with the `openssl` CLI. Servers and sentinels of one setup share
/// it: replicas and sentinels check their peers against the same CA.
pub struct TlsFiles {
    /// The CA certificate (PEM): the clients' trust anchor.
    pub ca_cert: PathBuf,
    /// The server certificate (PEM), also presented by replicas and
    /// sentinels when they connect to a server.
    pub cert: PathBuf,
    /// The server certificate's private key (PEM).
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsFiles {
    /// A new CA and server certificate (P-256, valid for two days).
    pub fn generate() -> Result<Arc<TlsFiles>, String> {
        let dir = tempfile::Builder::new()
            .prefix("redis-tls.")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let path = dir.path();
        fs::write(path.join("openssl.cnf"), OPENSSL_CONFIG)
            .map_err(|e| format!("write openssl.cnf: {e}"))?;
        let openssl = |args: &str| {
            let args: Vec<&str> = args.split_whitespace().collect();
            run_openssl(&args, path)
        };
        openssl(
            "req -x509 -config openssl.cnf -extensions ca -subj /CN=pam_twofactor-test-CA \
             -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
             -days 2",
        )?;
        openssl(
            "req -new -config openssl.cnf -subj /CN=localhost \
             -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
             -out server.csr",
        )?;
        openssl(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 \
             -extfile openssl.cnf -extensions server -out server.pem",
        )?;
        Ok(Arc::new(TlsFiles {
            ca_cert: path.join("ca.pem"),
            cert: path.join("server.pem"),
            key: path.join("server.key"),
            _dir: dir,
        }))
    }

    /// The CA certificate's PEM text.
    pub fn ca_pem(&self) -> Result<Vec<u8>, String> {
        fs::read(&self.ca_cert).map_err(|e| format!("read {}: {e}", self.ca_cert.display()))
    }

    fn certificates(&self) -> Result<redis::TlsCertificates, String> {
        Ok(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(self.ca_pem()?),
        })
    }

    /// The configuration lines that make a server or sentinel listen with
    /// TLS only on `port` and connect to its primary with TLS.
    fn config_lines(&self, port: u16) -> Vec<String> {
        vec![
            "port 0".to_string(),
            format!("tls-port {port}"),
            format!("tls-cert-file {}", path_value(&self.cert)),
            format!("tls-key-file {}", path_value(&self.key)),
            format!("tls-ca-cert-file {}", path_value(&self.ca_cert)),
            // Clients authenticate with passwords; client certificates are
            // not part of the fleet design.
            "tls-auth-clients no".to_string(),
            // Replicas and sentinels reach their primary through its TLS
            // port: there is no other.
            "tls-replication yes".to_string(),
        ]
    }
}

/// How a [`RedisServer`] is configured. `Default` is a plain, password-less,
/// non-persistent primary.
#[derive(Clone, Default)]
pub struct RedisOptions {
    /// `requirepass`: the default (admin) user's password. It is also the
    /// `masterauth` a replica presents to its primary.
    pub password: Option<String>,
    /// Whole ACL lines, written as `user` directives of the configuration,
    /// e.g. `user pam_twofactor on >secret ~tf:* +eval +evalsha +wait +ping`.
    pub acl_users: Vec<String>,
    /// Listen with TLS only (`port 0`, `tls-port`), with these certificates.
    pub tls: Option<Arc<TlsFiles>>,
    /// `appendonly yes`: writes survive [`RedisServer::stop`] and
    /// [`RedisServer::restart`]. Without it nothing is persisted at all.
    pub appendonly: bool,
    /// `maxmemory-policy`, e.g. `noeviction`.
    pub maxmemory_policy: Option<String>,
    /// `min-replicas-to-write`: writes are refused unless that many
    /// replicas are connected.
    pub min_replicas_to_write: Option<u32>,
    /// `replicaof 127.0.0.1 <port>`: start as a replica of that primary.
    pub replicaof: Option<u16>,
    /// Further configuration lines, verbatim.
    pub extra_config: Vec<String>,
}

impl RedisOptions {
    fn server_config(&self, dir: &Path, port: u16) -> Result<String, String> {
        let mut lines = vec![
            "bind 127.0.0.1".to_string(),
            "daemonize no".to_string(),
            format!("dir {}", path_value(dir)),
            format!("logfile {}", path_value(&dir.join("redis.log"))),
            // No RDB snapshots: a background save forks a copy of the
            // server on a 2-core machine shared with other tests.
            "save \"\"".to_string(),
            format!("appendonly {}", if self.appendonly { "yes" } else { "no" }),
            // The default 5 s wait for more replicas before a full sync
            // would dominate the start of every replica.
            "repl-diskless-sync-delay 0".to_string(),
        ];
        match &self.tls {
            Some(tls) => lines.extend(tls.config_lines(port)),
            None => lines.push(format!("port {port}")),
        }
        if let Some(password) = &self.password {
            lines.push(format!("requirepass {}", quoted(password)));
            // Also on a primary: after a failover sentinel turns it into a
            // replica of a server with the same password.
            lines.push(format!("masterauth {}", quoted(password)));
        }
        for acl in &self.acl_users {
            if !acl.starts_with("user ") || acl.contains(['\n', '\r']) {
                return Err(format!(
                    "an ACL line is one line starting with \"user \", not {acl:?}"
                ));
            }
            lines.push(acl.clone());
        }
        if let Some(policy) = &self.maxmemory_policy {
            lines.push(format!("maxmemory-policy {policy}"));
        }
        if let Some(count) = self.min_replicas_to_write {
            lines.push(format!("min-replicas-to-write {count}"));
        }
        if let Some(primary) = self.replicaof {
            lines.push(format!("replicaof 127.0.0.1 {primary}"));
        }
        lines.extend(self.extra_config.iter().cloned());
        lines.push(String::new());
        Ok(lines.join("\n"))
    }
}

/// One child process (a server or a sentinel) and its private directory.
struct Instance {
    program: &'static str,
    port: u16,
    tls: Option<Arc<TlsFiles>>,
    /// The default user's password, for admin connections.
    password: Option<String>,
    config_path: PathBuf,
    log_path: PathBuf,
    stderr_path: PathBuf,
    child: Mutex<Option<Child>>,
    frozen: AtomicBool,
    dir: tempfile::TempDir,
}

impl Instance {
    /// Start `program` with the configuration `config(dir, port)` on a free
    /// port, retrying with another port when that one was taken meanwhile,
    /// and return once it answers PING.
    fn launch(
        program: &'static str,
        tls: Option<Arc<TlsFiles>>,
        password: Option<String>,
        config: impl Fn(&Path, u16) -> Result<String, String>,
    ) -> Result<Instance, String> {
        let name = Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix(&format!("{name}."))
                .tempdir()
                .map_err(|e| format!("tempdir: {e}"))?;
            let port = free_port()?;
            let config_path = dir.path().join(format!("{name}.conf"));
            fs::write(&config_path, config(dir.path(), port)?)
                .map_err(|e| format!("write {}: {e}", config_path.display()))?;
            let instance = Instance {
                program,
                port,
                tls: tls.clone(),
                password: password.clone(),
                config_path,
                log_path: dir.path().join(if name == "redis-sentinel" {
                    "sentinel.log"
                } else {
                    "redis.log"
                }),
                stderr_path: dir.path().join("stderr"),
                child: Mutex::new(None),
                frozen: AtomicBool::new(false),
                dir,
            };
            match instance.spawn_and_wait() {
                Ok(()) => return Ok(instance),
                Err(e) if instance.lost_port() => last_error = e,
                Err(e) => return Err(e),
            }
        }
        Err(format!(
            "{name}: no free port after {PORT_ATTEMPTS} attempts; last: {last_error}"
        ))
    }

    fn name(&self) -> String {
        format!("{} on port {}", self.program, self.port)
    }

    fn spawn_and_wait(&self) -> Result<(), String> {
        self.kill();
        let stderr = fs::File::create(&self.stderr_path)
            .map_err(|e| format!("create {}: {e}", self.stderr_path.display()))?;
        let child = Command::new(self.program)
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program))?;
        *self.lock_child() = Some(child);
        self.frozen.store(false, Ordering::SeqCst);
        self.wait_until_ready()
    }

    fn wait_until_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let answer = self
                .connect(None, self.password.as_deref(), COMMAND_TIMEOUT)
                .and_then(|mut con| {
                    redis::cmd("PING")
                        .query::<String>(&mut con)
                        .map_err(|e| e.to_string())
                });
            let last = match answer {
                Ok(pong) if pong == "PONG" => return Ok(()),
                Ok(other) => format!("PING answered {other:?}"),
                Err(e) => e,
            };
            if let Some(status) = self.exit_status() {
                return Err(format!(
                    "{} exited ({status}) before answering PING{}",
                    self.name(),
                    self.output()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} does not answer PING after {READY_DEADLINE:?} ({last}){}",
                    self.name(),
                    self.output()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether the last start failed because another process had the port.
    fn lost_port(&self) -> bool {
        self.output().contains("Address already in use")
    }

    fn lock_child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        self.lock_child()
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    fn is_running(&self) -> bool {
        let mut guard = self.lock_child();
        matches!(guard.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn pid(&self) -> Result<Pid, String> {
        let mut guard = self.lock_child();
        if let Some(child) = guard.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                return Ok(Pid::from_raw(child.id() as i32));
            }
        }
        Err(format!("{} is not running", self.name()))
    }

    /// SIGKILL and reap. Idempotent.
    fn kill(&self) {
        let mut guard = self.lock_child();
        if let Some(mut child) = guard.take() {
            // SIGKILL also ends a stopped (frozen) process.
            let _ = child.kill();
            let _ = child.wait();
        }
        self.frozen.store(false, Ordering::SeqCst);
    }

    fn freeze(&self) -> Result<(), String> {
        let pid = self.pid()?;
        kill(pid, Signal::SIGSTOP).map_err(|e| format!("SIGSTOP {}: {e}", self.name()))?;
        self.frozen.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn thaw(&self) -> Result<(), String> {
        let pid = self.pid()?;
        kill(pid, Signal::SIGCONT).map_err(|e| format!("SIGCONT {}: {e}", self.name()))?;
        self.frozen.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn client(&self, user: Option<&str>, password: Option<&str>) -> Result<redis::Client, String> {
        let url = self.url();
        let info = url
            .as_str()
            .into_connection_info()
            .map_err(|e| format!("{url}: {e}"))?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = user {
            settings = settings.set_username(user);
        }
        if let Some(password) = password {
            settings = settings.set_password(password);
        }
        let info = info.set_redis_settings(settings);
        match &self.tls {
            Some(tls) => redis::Client::build_with_tls(info, tls.certificates()?),
            None => redis::Client::open(info),
        }
        .map_err(|e| format!("client for {url}: {e}"))
    }

    fn connect(
        &self,
        user: Option<&str>,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<redis::Connection, String> {
        let client = self.client(user, password)?;
        let con = client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|e| format!("connect to {}: {e}", self.name()))?;
        con.set_read_timeout(Some(timeout))
            .and_then(|()| con.set_write_timeout(Some(timeout)))
            .map_err(|e| format!("timeouts on {}: {e}", self.name()))?;
        Ok(con)
    }

    fn output(&self) -> String {
        let log = fs::read_to_string(&self.log_path).unwrap_or_else(|e| format!("({e})\n"));
        let stderr = fs::read_to_string(&self.stderr_path).unwrap_or_default();
        format!(
            "\n--- {} log ---\n{log}--- stderr ---\n{stderr}--- end of output ---",
            self.name()
        )
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `redis-server`, killed when dropped.
pub struct RedisServer {
    instance: Instance,
}

impl RedisServer {
    /// Start a server configured by `options` on a free port of 127.0.0.1;
    /// returns once it answers PING (a replica need not have synced yet).
    pub fn start(options: RedisOptions) -> Result<RedisServer, String> {
        let instance = Instance::launch(
            REDIS_SERVER,
            options.tls.clone(),
            options.password.clone(),
            |dir, port| options.server_config(dir, port),
        )?;
        Ok(RedisServer { instance })
    }

    /// The port it listens on (the TLS port when it uses TLS).
    pub fn port(&self) -> u16 {
        self.instance.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        self.instance.addr()
    }

    /// `redis://127.0.0.1:<port>` or `rediss://…`, without credentials.
    pub fn url(&self) -> String {
        self.instance.url()
    }

    /// The CA certificate that its TLS certificate chains to.
    pub fn ca_file(&self) -> Option<&Path> {
        self.instance.tls.as_ref().map(|t| t.ca_cert.as_path())
    }

    /// A client (TLS configured) that authenticates as `user` (the default
    /// user when `None`) with `password`.
    pub fn client(
        &self,
        user: Option<&str>,
        password: Option<&str>,
    ) -> Result<redis::Client, String> {
        self.instance.client(user, password)
    }

    /// A connection as `user` with `password`; an authentication failure is
    /// an error here.
    pub fn connect_as(
        &self,
        user: Option<&str>,
        password: Option<&str>,
    ) -> Result<redis::Connection, String> {
        self.instance.connect(user, password, COMMAND_TIMEOUT)
    }

    /// A connection as the default user (with `requirepass`, if any): every
    /// command is allowed.
    pub fn admin(&self) -> Result<redis::Connection, String> {
        self.instance
            .connect(None, self.instance.password.as_deref(), COMMAND_TIMEOUT)
    }

    /// `INFO <section>` as admin.
    pub fn info(&self, section: &str) -> Result<String, String> {
        let mut con = self.admin()?;
        redis::cmd("INFO")
            .arg(section)
            .query(&mut con)
            .map_err(|e| format!("INFO {section} on {}: {e}", self.instance.name()))
    }

    /// The value of `field` in `INFO <section>`.
    pub fn info_field(&self, section: &str, field: &str) -> Result<Option<String>, String> {
        Ok(info_value(&self.info(section)?, field))
    }

    /// Kill it (SIGKILL, then reap). Idempotent; [`RedisServer::restart`]
    /// brings it back.
    pub fn stop(&self) {
        self.instance.kill();
    }

    /// SIGSTOP: connections stay open and nothing is answered, as with a
    /// host that vanished from the network.
    pub fn freeze(&self) -> Result<(), String> {
        self.instance.freeze()
    }

    /// SIGCONT after [`RedisServer::freeze`].
    pub fn thaw(&self) -> Result<(), String> {
        self.instance.thaw()
    }

    /// Kill it if it runs, and start it again on the same port with its
    /// configuration file (as rewritten by sentinel, if it was). Fails if
    /// another process took the port meanwhile.
    pub fn restart(&self) -> Result<(), String> {
        self.instance.spawn_and_wait()
    }

    /// Whether the process is alive (a frozen one is).
    pub fn is_running(&self) -> bool {
        self.instance.is_running()
    }

    /// Whether it is stopped by [`RedisServer::freeze`].
    pub fn is_frozen(&self) -> bool {
        self.instance.is_frozen()
    }

    /// Its private directory (configuration, data, log).
    pub fn dir(&self) -> &Path {
        self.instance.dir.path()
    }

    /// Its log and stderr, for failure messages.
    pub fn log(&self) -> String {
        self.instance.output()
    }
}

/// A running `redis-sentinel`, killed when dropped.
pub struct RedisSentinel {
    instance: Instance,
}

impl RedisSentinel {
    /// The port it listens on (the TLS port when it uses TLS).
    pub fn port(&self) -> u16 {
        self.instance.port
    }

    /// `127.0.0.1:<port>`, as in the `redis_sentinels` configuration key.
    pub fn addr(&self) -> String {
        self.instance.addr()
    }

    /// A connection to it (sentinels have no password here).
    pub fn connect(&self) -> Result<redis::Connection, String> {
        self.instance.connect(None, None, COMMAND_TIMEOUT)
    }

    /// Kill it (SIGKILL, then reap). Idempotent.
    pub fn stop(&self) {
        self.instance.kill();
    }

    /// SIGSTOP.
    pub fn freeze(&self) -> Result<(), String> {
        self.instance.freeze()
    }

    /// SIGCONT.
    pub fn thaw(&self) -> Result<(), String> {
        self.instance.thaw()
    }

    /// Start it again on the same port, with the configuration it rewrote.
    pub fn restart(&self) -> Result<(), String> {
        self.instance.spawn_and_wait()
    }

    /// Whether the process is alive (a frozen one is).
    pub fn is_running(&self) -> bool {
        self.instance.is_running()
    }

    /// Its configuration file, which sentinel rewrites as it learns.
    pub fn config_path(&self) -> &Path {
        &self.instance.config_path
    }

    /// Its log and stderr, for failure messages.
    pub fn log(&self) -> String {
        self.instance.output()
    }

    /// The primary it names for `master_name` (`SENTINEL
    /// get-master-addr-by-name`), as a port of 127.0.0.1.
    pub fn primary_port(&self, master_name: &str) -> Result<u16, String> {
        // Short: a caller asking several sentinels moves on from a frozen one.
        let mut con = self.instance.connect(None, None, CONNECT_TIMEOUT)?;
        let addr: Option<(String, String)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(master_name)
            .query(&mut con)
            .map_err(|e| format!("SENTINEL get-master-addr-by-name on {}: {e}", self.addr()))?;
        let (host, port) = addr.ok_or_else(|| format!("{} knows no {master_name}", self.addr()))?;
        if host != "127.0.0.1" {
            return Err(format!("{} names primary {host}:{port}", self.addr()));
        }
        port.parse()
            .map_err(|e| format!("{} names port {port:?}: {e}", self.addr()))
    }

    /// `SENTINEL <subcommand> <master_name>` answered with a list of
    /// instances (replicas, sentinels), each as field/value pairs.
    fn instances(
        &self,
        subcommand: &str,
        master_name: &str,
    ) -> Result<Vec<Vec<(String, String)>>, String> {
        let mut con = self.instance.connect(None, None, CONNECT_TIMEOUT)?;
        let flat: Vec<Vec<String>> = redis::cmd("SENTINEL")
            .arg(subcommand)
            .arg(master_name)
            .query(&mut con)
            .map_err(|e| format!("SENTINEL {subcommand} on {}: {e}", self.addr()))?;
        Ok(flat
            .into_iter()
            .map(|fields| {
                fields
                    .chunks(2)
                    .filter_map(|pair| match pair {
                        [key, value] => Some((key.clone(), value.clone())),
                        _ => None,
                    })
                    .collect()
            })
            .collect())
    }

    /// What is still missing before this sentinel could take part in a
    /// failover of `master_name` at `primary` with `replicas` replicas and
    /// `peers` other sentinels; `None` when nothing is.
    fn missing(
        &self,
        master_name: &str,
        primary: u16,
        replicas: usize,
        peers: usize,
    ) -> Option<String> {
        match self.primary_port(master_name) {
            Ok(port) if port == primary => {}
            Ok(port) => return Some(format!("{} names primary port {port}", self.addr())),
            Err(e) => return Some(e),
        }
        let field = |instance: &Vec<(String, String)>, name: &str| {
            instance
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        match self.instances("replicas", master_name) {
            Ok(list) => {
                let online = list
                    .iter()
                    .filter(|r| {
                        field(r, "flags") == "slave" && field(r, "master-link-status") == "ok"
                    })
                    .count();
                if online != replicas {
                    return Some(format!(
                        "{} sees {online} of {replicas} replicas online",
                        self.addr()
                    ));
                }
            }
            Err(e) => return Some(e),
        }
        match self.instances("sentinels", master_name) {
            Ok(list) if list.len() == peers => {}
            Ok(list) => {
                return Some(format!(
                    "{} knows {} of {peers} other sentinels",
                    self.addr(),
                    list.len()
                ))
            }
            Err(e) => return Some(e),
        }
        let quorum = self
            .instance
            .connect(None, None, CONNECT_TIMEOUT)
            .and_then(|mut con| {
                redis::cmd("SENTINEL")
                    .arg("ckquorum")
                    .arg(master_name)
                    .query::<String>(&mut con)
                    .map_err(|e| e.to_string())
            });
        quorum
            .err()
            .map(|e| format!("SENTINEL ckquorum on {}: {e}", self.addr()))
    }
}

/// The value of `field` in the text of an INFO reply.
pub fn info_value(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| {
        line.trim_end()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::to_string)
    })
}

/// Replicas that INFO replication of a primary shows as `state=online`.
fn online_replicas(info: &str) -> usize {
    info.lines()
        .filter(|line| line.starts_with("slave") && line.contains("state=online"))
        .count()
}

/// A primary, its replicas and sentinels monitoring it, all on 127.0.0.1.
pub struct SentinelSetup {
    /// The name the sentinels monitor the primary under
    /// (`redis_master_name`).
    pub master_name: String,
    // Sentinels go first (fields drop in order): killed before the
    // servers, they start no failover while the setup is torn down.
    sentinels: Vec<RedisSentinel>,
    servers: Vec<RedisServer>,
    tls: Option<Arc<TlsFiles>>,
}

impl SentinelSetup {
    /// A plain primary with `replicas` replicas and `sentinels` sentinels;
    /// see [`SentinelSetup::start_with`].
    pub fn start(master_name: &str, replicas: usize, sentinels: usize) -> Result<Self, String> {
        Self::start_with(master_name, replicas, sentinels, RedisOptions::default())
    }

    /// Servers configured by `options` (its `replicaof` is set here): a
    /// primary and `replicas` replicas of it, then `sentinels` sentinels
    /// monitoring it with a quorum of 2 (1 for a single sentinel). With a
    /// password the sentinels authenticate with it (`sentinel auth-pass`);
    /// with TLS the sentinels listen with TLS too and reach the servers
    /// over TLS. Returns once the replicas are in sync and every sentinel
    /// knows the primary, all replicas and all other sentinels, and can
    /// reach its quorum.
    pub fn start_with(
        master_name: &str,
        replicas: usize,
        sentinels: usize,
        options: RedisOptions,
    ) -> Result<Self, String> {
        if sentinels == 0 {
            return Err("a sentinel setup needs at least one sentinel".to_string());
        }
        if master_name.is_empty()
            || !master_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!("unusable master name {master_name:?}"));
        }
        let primary = RedisServer::start(RedisOptions {
            replicaof: None,
            ..options.clone()
        })?;
        let mut servers = vec![primary];
        for _ in 0..replicas {
            servers.push(RedisServer::start(RedisOptions {
                replicaof: Some(servers[0].port()),
                ..options.clone()
            })?);
        }
        // Sentinels started after the replicas are in sync learn all of
        // them from their first INFO of the primary instead of 10 s later.
        wait_until(SETUP_DEADLINE, "replicas in sync", || {
            let online = online_replicas(&servers[0].info("replication")?);
            if online == replicas {
                Ok(None)
            } else {
                Ok(Some(format!("{online} of {replicas} replicas online")))
            }
        })?;
        let primary_port = servers[0].port();
        let quorum = sentinels.min(2);
        let mut started = Vec::with_capacity(sentinels);
        for _ in 0..sentinels {
            let instance =
                Instance::launch(REDIS_SENTINEL, options.tls.clone(), None, |dir, port| {
                    Ok(sentinel_config(
                        dir,
                        port,
                        master_name,
                        primary_port,
                        quorum,
                        &options,
                    ))
                })?;
            started.push(RedisSentinel { instance });
        }
        let setup = SentinelSetup {
            master_name: master_name.to_string(),
            sentinels: started,
            servers,
            tls: options.tls.clone(),
        };
        wait_until(SETUP_DEADLINE, "sentinels ready", || {
            Ok(setup
                .sentinels
                .iter()
                .find_map(|s| s.missing(master_name, primary_port, replicas, sentinels - 1)))
        })?;
        Ok(setup)
    }

    /// Every server, the first primary first.
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The server listening on `port`.
    pub fn server(&self, port: u16) -> Option<&RedisServer> {
        self.servers.iter().find(|s| s.port() == port)
    }

    /// The sentinels.
    pub fn sentinels(&self) -> &[RedisSentinel] {
        &self.sentinels
    }

    /// `127.0.0.1:<port>` of every sentinel, as in `redis_sentinels`.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisSentinel::addr).collect()
    }

    /// The CA the servers' and sentinels' certificates chain to.
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_cert.as_path())
    }

    /// The primary's port according to the first sentinel that answers.
    pub fn current_primary_port(&self) -> Result<u16, String> {
        let mut errors = Vec::new();
        for sentinel in self.live_sentinels() {
            match sentinel.primary_port(&self.master_name) {
                Ok(port) => return Ok(port),
                Err(e) => errors.push(e),
            }
        }
        Err(format!("no sentinel names the primary: {errors:?}"))
    }

    /// The current primary (see [`SentinelSetup::current_primary_port`]).
    pub fn current_primary(&self) -> Result<&RedisServer, String> {
        let port = self.current_primary_port()?;
        self.server(port)
            .ok_or_else(|| format!("the sentinels name port {port}, none of this setup's servers"))
    }

    /// Wait until every sentinel still running names one primary other
    /// than `old_port` and that server says it is a primary; its port.
    pub fn wait_for_failover(&self, old_port: u16, timeout: Duration) -> Result<u16, String> {
        let mut new_port = 0;
        wait_until(timeout, "failover", || {
            let mut ports = Vec::new();
            for sentinel in self.live_sentinels() {
                match sentinel.primary_port(&self.master_name) {
                    Ok(port) => ports.push(port),
                    Err(e) => return Ok(Some(e)),
                }
            }
            let Some(&port) = ports.first() else {
                return Err("no sentinel is running".to_string());
            };
            if port == old_port || ports.iter().any(|&p| p != port) {
                return Ok(Some(format!("sentinels name ports {ports:?}")));
            }
            let server = self
                .server(port)
                .ok_or_else(|| format!("sentinels name port {port}, not a server of this setup"))?;
            match server.info_field("replication", "role") {
                Ok(Some(role)) if role == "master" => {
                    new_port = port;
                    Ok(None)
                }
                Ok(role) => Ok(Some(format!("port {port} has role {role:?}"))),
                Err(e) => Ok(Some(e)),
            }
        })?;
        Ok(new_port)
    }

    fn live_sentinels(&self) -> impl Iterator<Item = &RedisSentinel> {
        self.sentinels
            .iter()
            .filter(|s| s.is_running() && !s.instance.is_frozen())
    }
}

fn sentinel_config(
    dir: &Path,
    port: u16,
    master_name: &str,
    primary_port: u16,
    quorum: usize,
    options: &RedisOptions,
) -> String {
    let mut lines = vec![
        "bind 127.0.0.1".to_string(),
        "daemonize no".to_string(),
        format!("dir {}", path_value(dir)),
        format!("logfile {}", path_value(&dir.join("sentinel.log"))),
    ];
    match &options.tls {
        Some(tls) => lines.extend(tls.config_lines(port)),
        None => lines.push(format!("port {port}")),
    }
    lines.extend([
        "sentinel resolve-hostnames no".to_string(),
        format!("sentinel monitor {master_name} 127.0.0.1 {primary_port} {quorum}"),
        format!("sentinel down-after-milliseconds {master_name} 1000"),
        format!("sentinel failover-timeout {master_name} 3000"),
        format!("sentinel parallel-syncs {master_name} 1"),
    ]);
    if let Some(password) = &options.password {
        lines.push(format!(
            "sentinel auth-pass {master_name} {}",
            quoted(password)
        ));
    }
    lines.push(String::new());
    lines.join("\n")
}

/// Poll `check` until it reports nothing missing (`Ok(None)`); an `Err`
/// ends the wait at once. The last thing missing is in the timeout error.
fn wait_until(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<Option<String>, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let missing = match check()? {
            None => return Ok(()),
            Some(missing) => missing,
        };
        if Instant::now() >= deadline {
            return Err(format!("no {what} after {timeout:?}: {missing}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outcome = Result<(), String>;

    fn run<T: redis::FromRedisValue>(
        con: &mut redis::Connection,
        args: &[&str],
    ) -> Result<T, String> {
        let mut cmd = redis::Cmd::new();
        for arg in args {
            cmd.arg(*arg);
        }
        cmd.query(con).map_err(|e| format!("{args:?}: {e}"))
    }

    /// The error of `result`, lowercased: redis-rs words the server's error
    /// codes its own way (NOPERM becomes "NoPerm").
    fn error_of<T>(result: Result<T, String>, unexpected: &str) -> Result<String, String> {
        match result {
            Ok(_) => Err(unexpected.to_string()),
            Err(e) => Ok(e.to_lowercase()),
        }
    }

    #[test]
    fn redis_standalone_set_get_freeze_and_restart() -> Outcome {
        let server = RedisServer::start(RedisOptions {
            appendonly: true,
            maxmemory_policy: Some("noeviction".to_string()),
            ..RedisOptions::default()
        })?;
        assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port()));
        let mut con = server.admin()?;
        let () = run(&mut con, &["SET", "tf:k", "v1"])?;
        let value: String = run(&mut con, &["GET", "tf:k"])?;
        assert_eq!(value, "v1");
        let policy: Vec<String> = run(&mut con, &["CONFIG", "GET", "maxmemory-policy"])?;
        assert_eq!(policy, ["maxmemory-policy", "noeviction"]);

        server.freeze()?;
        let frozen = server
            .instance
            .connect(None, None, Duration::from_millis(300))
            .and_then(|mut c| run::<String>(&mut c, &["PING"]));
        assert!(frozen.is_err(), "a frozen server answered: {frozen:?}");
        server.thaw()?;
        let pong: String = run(&mut server.admin()?, &["PING"])?;
        assert_eq!(pong, "PONG");

        // appendonly: the write reached the file before the reply, so a
        // SIGKILL loses nothing.
        let port = server.port();
        server.stop();
        assert!(!server.is_running());
        assert!(
            server.admin().is_err(),
            "a killed server accepted a connection"
        );
        server.restart()?;
        assert_eq!(server.port(), port);
        let value: Option<String> = run(&mut server.admin()?, &["GET", "tf:k"])?;
        assert_eq!(value.as_deref(), Some("v1"), "{}", server.log());
        Ok(())
    }

    #[test]
    fn redis_min_replicas_to_write_needs_a_replica() -> Outcome {
        let primary = RedisServer::start(RedisOptions {
            min_replicas_to_write: Some(1),
            ..RedisOptions::default()
        })?;
        let refused = run::<()>(&mut primary.admin()?, &["SET", "tf:k", "1"]);
        let error = error_of(refused, "a write without replicas was accepted")?;
        assert!(error.contains("noreplicas"), "{error}");

        let replica = RedisServer::start(RedisOptions {
            replicaof: Some(primary.port()),
            ..RedisOptions::default()
        })?;
        wait_until(Duration::from_secs(10), "replica online", || {
            let online = online_replicas(&primary.info("replication")?);
            Ok((online != 1).then(|| format!("{online} replicas online")))
        })?;
        let mut con = primary.admin()?;
        let () = run(&mut con, &["SET", "tf:k", "1"])?;
        let acknowledged: i64 = run(&mut con, &["WAIT", "1", "2000"])?;
        assert_eq!(acknowledged, 1);
        let copied: String = run(&mut replica.admin()?, &["GET", "tf:k"])?;
        assert_eq!(copied, "1");
        Ok(())
    }

    #[test]
    fn redis_tls_server_with_acl_user() -> Outcome {
        let server = RedisServer::start(RedisOptions {
            tls: Some(TlsFiles::generate()?),
            // A space and a quote: the configuration file's quoting.
            password: Some("admin \"secret\"".to_string()),
            acl_users: vec![
                "user pam_twofactor on >right-password ~tf:* +eval +evalsha +wait +ping +get +set"
                    .to_string(),
            ],
            ..RedisOptions::default()
        })?;
        assert_eq!(
            server.url(),
            format!("rediss://127.0.0.1:{}", server.port())
        );
        assert!(server.ca_file().is_some_and(Path::exists));

        let wrong = server.connect_as(Some("pam_twofactor"), Some("wrong-password"));
        let error = error_of(wrong.map(drop), "a wrong password was accepted")?;
        assert!(
            error.contains("wrongpass") || error.contains("authentication failed"),
            "{error}"
        );
        let anonymous = server
            .connect_as(None, None)
            .and_then(|mut c| run::<Option<String>>(&mut c, &["GET", "tf:x"]));
        let error = error_of(anonymous, "a client without a password was served")?;
        assert!(error.contains("noauth"), "{error}");

        let mut user = server.connect_as(Some("pam_twofactor"), Some("right-password"))?;
        let () = run(&mut user, &["SET", "tf:x", "1"])?;
        let value: String = run(&mut user, &["GET", "tf:x"])?;
        assert_eq!(value, "1");
        let outside = run::<()>(&mut user, &["SET", "other:x", "1"]);
        let error = error_of(outside, "a key outside ~tf:* was written")?;
        assert!(error.contains("noperm"), "{error}");
        let config = run::<Vec<String>>(&mut user, &["CONFIG", "GET", "dir"]);
        let error = error_of(config, "CONFIG was allowed")?;
        assert!(error.contains("noperm"), "{error}");

        let users: Vec<String> = run(&mut server.admin()?, &["ACL", "USERS"])?;
        assert_eq!(users, ["default", "pam_twofactor"]);

        // Sentinel sends CONFIG REWRITE with every reconfiguration: the
        // rewritten file (users as hashes) must still start the same server.
        let () = run(&mut server.admin()?, &["CONFIG", "REWRITE"])?;
        server.restart()?;
        let pong: String = run(
            &mut server.connect_as(Some("pam_twofactor"), Some("right-password"))?,
            &["PING"],
        )?;
        assert_eq!(pong, "PONG");
        Ok(())
    }

    #[test]
    fn redis_start_retries_when_the_port_is_taken() -> Outcome {
        let taken = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let taken_port = taken.local_addr().map_err(|e| e.to_string())?.port();
        let options = RedisOptions::default();
        let attempts = std::cell::Cell::new(0);
        let instance = Instance::launch(REDIS_SERVER, None, None, |dir, port| {
            attempts.set(attempts.get() + 1);
            // The first attempt's port is taken by the time the server binds.
            let port = if attempts.get() == 1 {
                taken_port
            } else {
                port
            };
            options.server_config(dir, port)
        })?;
        assert_eq!(attempts.get(), 2);
        assert_ne!(instance.port, taken_port);
        assert!(instance.is_running());
        Ok(())
    }

    #[test]
    fn redis_sentinel_failover_promotes_a_replica() -> Outcome {
        let started = Instant::now();
        let setup = SentinelSetup::start("tfmaster", 2, 3)?;
        eprintln!(
            "sentinel setup (1 primary, 2 replicas, 3 sentinels) ready in {:?}",
            started.elapsed()
        );
        assert_eq!(setup.sentinel_addrs().len(), 3);
        let old_port = setup.current_primary_port()?;
        assert_eq!(old_port, setup.servers()[0].port());

        let primary = setup.current_primary()?;
        let mut con = primary.admin()?;
        let () = run(&mut con, &["SET", "tf:k", "before"])?;
        let acknowledged: i64 = run(&mut con, &["WAIT", "2", "2000"])?;
        assert_eq!(acknowledged, 2);

        let killed = Instant::now();
        primary.stop();
        let new_port = setup
            .wait_for_failover(old_port, Duration::from_secs(20))
            .map_err(|e| format!("{e}{}", setup.sentinels()[0].log()))?;
        let promoted_after = killed.elapsed();
        assert_ne!(new_port, old_port);
        let promoted = setup.server(new_port).ok_or("unknown promoted port")?;
        let mut con = promoted.admin()?;
        let value: String = run(&mut con, &["GET", "tf:k"])?;
        assert_eq!(value, "before");
        let () = run(&mut con, &["SET", "tf:k", "after"])?;

        // Backup-code spends WAIT for a replica: how long the new primary
        // has none.
        wait_until(
            Duration::from_secs(15),
            "replica of the new primary",
            || {
                let online = online_replicas(&promoted.info("replication")?);
                Ok((online != 1).then(|| format!("{online} replicas online")))
            },
        )?;
        eprintln!(
            "failover: primary {old_port} killed; replica {new_port} promoted and named by \
             every sentinel after {promoted_after:?}; the other replica following it after {:?}",
            killed.elapsed()
        );
        Ok(())
    }

    #[test]
    fn redis_sentinel_with_tls_and_password_fails_over_a_frozen_primary() -> Outcome {
        let setup = SentinelSetup::start_with(
            "tfsecure",
            1,
            3,
            RedisOptions {
                tls: Some(TlsFiles::generate()?),
                password: Some("fleet-admin".to_string()),
                ..RedisOptions::default()
            },
        )?;
        assert!(setup.ca_file().is_some());
        let config = fs::read_to_string(setup.sentinels()[0].config_path())
            .map_err(|e| format!("read sentinel config: {e}"))?;
        assert!(config.contains("sentinel auth-pass tfsecure"), "{config}");

        let old_port = setup.current_primary_port()?;
        let frozen = Instant::now();
        setup.servers()[0].freeze()?;
        let new_port = setup.wait_for_failover(old_port, Duration::from_secs(20))?;
        eprintln!(
            "TLS failover: primary {old_port} frozen, replica {new_port} promoted after {:?}",
            frozen.elapsed()
        );
        assert_eq!(new_port, setup.servers()[1].port());
        let () = run(&mut setup.servers()[1].admin()?, &["SET", "tf:k", "1"])?;
        Ok(())
    }
}
