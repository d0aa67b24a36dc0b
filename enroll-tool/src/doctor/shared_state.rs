//! The fleet's shared state (`state_backend = "redis"`): the password file
//! as the module checks it, the primary reached as a login reaches it
//! (through Sentinel when configured) and its round trip, and the server
//! settings under which a spent backup code or a used TOTP code could be
//! accepted again: the shared state is what refuses them on every other
//! host, so a server that can lose it revives them there.
//!
//! The settings are read where the ACL allows `CONFIG GET` and `INFO`; the
//! judgement of what was read is [`judge_server`], a pure function.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use twofactor_core::config::{Config, RedisUnavailable, StateBackend};
use twofactor_core::shared_state::{RedisSettings, SharedStateError, SharedStore};

use super::config::LineConfig;
use super::findings::Findings;

const CHECK: &str = "shared state";

/// Check the shared state of every configuration that uses one, each
/// server (and way of reaching it) once.
pub(super) fn check_shared_states(findings: &mut Findings, configs: &[(LineConfig, Vec<String>)]) {
    let mut checked: Vec<String> = Vec::new();
    for (line_config, services) in configs {
        let config = &line_config.config;
        if config.state_backend != StateBackend::Redis {
            continue;
        }
        let key = target_key(config);
        if checked.contains(&key) {
            continue;
        }
        checked.push(key);
        let who = format!("{} ({})", line_config.source, services.join(", "));
        check_one(findings, config, &who);
    }
}

/// What makes two configurations reach the shared state the same way.
fn target_key(config: &Config) -> String {
    format!(
        "{:?}",
        (
            &config.redis_url,
            &config.redis_sentinels,
            &config.redis_master_name,
            config.redis_tls,
            &config.redis_ca_file,
            &config.redis_user,
            &config.redis_password_file,
            config.redis_wait_replicas,
            config.redis_unavailable == RedisUnavailable::Local,
        )
    )
}

/// Where the shared state is, for messages (no credentials: the URL holds
/// none, the configuration refuses them there).
fn place(config: &Config) -> String {
    if config.redis_url.is_empty() {
        format!(
            "the primary {:?} named by the Sentinels {}",
            config.redis_master_name,
            config.redis_sentinels.join(", ")
        )
    } else {
        config.redis_url.clone()
    }
}

fn check_one(findings: &mut Findings, config: &Config, who: &str) {
    let password_file_fine = check_password_file(findings, config, who);
    let settings = match RedisSettings::from_config(config, 0) {
        Ok(settings) => settings,
        Err(err) => {
            // The password file's own problem is reported already.
            if password_file_fine {
                findings.problem(
                    CHECK,
                    format!("{who}: {err}: every login through it fails"),
                    "correct the redis_* settings and the files they name (see \
                     pam_twofactor.toml(5))",
                );
            }
            return;
        }
    };
    let place = place(config);
    let mut store = match settings.connect() {
        Ok(store) => store,
        Err(err) => {
            unreachable(findings, config, who, &place, &err);
            return;
        }
    };
    match store.ping() {
        Ok(round_trip) => {
            let timeout = Duration::from_millis(config.redis_command_timeout_ms);
            let (slow, text) = judge_latency(round_trip, timeout);
            let message = format!("{who}: {place} reached; {text}");
            if slow {
                findings.note(CHECK, message);
            } else {
                findings.ok(CHECK, message);
            }
        }
        Err(err) => {
            unreachable(findings, config, who, &place, &err);
            return;
        }
    }
    let read = read_server(&mut store);
    for verdict in judge_server(&read, config.redis_wait_replicas) {
        match verdict {
            Verdict::Ok(text) => findings.ok(CHECK, format!("{who}: {text}")),
            Verdict::Note(text) => findings.note(CHECK, format!("{who}: {text}")),
            Verdict::Problem(text, fix) => findings.problem(CHECK, format!("{who}: {text}"), fix),
        }
    }
}

/// The password file as [`RedisSettings::from_config`] will require it:
/// root's, no access for group or others. Returns whether it is fine (or
/// not configured).
fn check_password_file(findings: &mut Findings, config: &Config, who: &str) -> bool {
    let path = Path::new(&config.redis_password_file);
    if config.redis_password_file.is_empty() {
        findings.note(
            CHECK,
            format!(
                "{who}: no redis_password_file: the server is used without a password, so \
                 whoever can reach it can change every account's login state (clear \
                 failures, forget spent backup codes)"
            ),
        );
        return true;
    }
    let fix = format!(
        "chown root:root {0} && chmod 0600 {0} (the password on its first line)",
        path.display()
    );
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            findings.problem(
                CHECK,
                format!(
                    "{who}: redis_password_file {} is a symbolic link: the module refuses \
                     it, and every login through it fails",
                    path.display()
                ),
                format!("replace it by the file itself; {fix}"),
            );
            false
        }
        Ok(meta) if !meta.is_file() => {
            findings.problem(
                CHECK,
                format!(
                    "{who}: redis_password_file {} is not a regular file: every login \
                     through it fails",
                    path.display()
                ),
                format!("write the password into a file there; {fix}"),
            );
            false
        }
        Ok(meta) if meta.uid() != 0 || meta.mode() & 0o077 != 0 => {
            findings.problem(
                CHECK,
                format!(
                    "{who}: redis_password_file {} is owned by uid {} with mode {:04o}: the \
                     module refuses a password file that is not root's alone, and every \
                     login through it fails",
                    path.display(),
                    meta.uid(),
                    meta.mode() & 0o7777
                ),
                fix,
            );
            false
        }
        Ok(meta) => {
            findings.ok(
                CHECK,
                format!(
                    "{who}: redis_password_file {} (root, {:04o})",
                    path.display(),
                    meta.mode() & 0o7777
                ),
            );
            true
        }
        Err(err) => {
            let why = if err.kind() == io::ErrorKind::NotFound {
                "does not exist".to_string()
            } else {
                format!(
                    "cannot be read ({})",
                    twofactor_core::files::describe_io_error(&err)
                )
            };
            findings.problem(
                CHECK,
                format!(
                    "{who}: redis_password_file {} {why}: every login through it fails",
                    path.display()
                ),
                format!("create it with the password on its first line; {fix}"),
            );
            false
        }
    }
}

fn unreachable(
    findings: &mut Findings,
    config: &Config,
    who: &str,
    place: &str,
    err: &SharedStateError,
) {
    let fix = "check that the server runs and that this host may reach it (address, port, \
               TLS, firewall), and redis_user and redis_password_file against its ACL";
    if err.is_unreachable() && config.redis_unavailable == RedisUnavailable::Local {
        // Logins go on, on this host's own state and limits.
        findings.note(
            CHECK,
            format!(
                "{who}: {place} cannot be reached ({err}): logins on this host decide on \
                 its own state meanwhile (redis_unavailable = \"local\"), with backup codes \
                 {}",
                if config.redis_fallback_backup_codes {
                    "accepted (redis_fallback_backup_codes)"
                } else {
                    "refused"
                }
            ),
        );
    } else {
        findings.problem(
            CHECK,
            format!(
                "{who}: {place} {} ({err}): every login through it fails",
                if err.is_unreachable() {
                    "cannot be reached"
                } else {
                    "refuses this host"
                }
            ),
            fix,
        );
    }
}

/// Whether a round trip is slow against the command timeout, and how it
/// reads.
fn judge_latency(round_trip: Duration, command_timeout: Duration) -> (bool, String) {
    let ms = round_trip.as_secs_f64() * 1000.0;
    let text = format!("PING round trip {ms:.1} ms");
    // A login makes a few round trips under the lease; one taking half the
    // timeout leaves no room for a busy moment.
    if round_trip * 2 > command_timeout {
        (
            true,
            format!(
                "{text}, over half of redis_command_timeout_ms ({} ms): a busier moment \
                 fails logins",
                command_timeout.as_millis()
            ),
        )
    } else {
        (false, text)
    }
}

/// What could be read of the server: each setting, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerRead {
    /// `CONFIG GET` of the settings, or why they could not be read.
    settings: Result<ServerSettings, String>,
    /// `INFO replication`, or why it could not be read.
    replication: Result<Replication, String>,
}

/// The settings that decide whether the server can lose a state.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerSettings {
    maxmemory_policy: String,
    appendonly: String,
    save: String,
    min_replicas_to_write: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Replication {
    /// "master", or "slave" for a replica.
    role: String,
    connected_replicas: u32,
    /// Of those, the ones done with their first sync: only they can
    /// acknowledge a `WAIT`.
    online_replicas: u32,
}

fn read_server(store: &mut SharedStore) -> ServerRead {
    ServerRead {
        settings: read_settings(store),
        replication: store
            .info("replication")
            .map_err(|e| e.to_string())
            .and_then(|text| parse_replication(&text)),
    }
}

fn read_settings(store: &mut SharedStore) -> Result<ServerSettings, String> {
    let mut get = |name: &str| -> Result<String, String> {
        store
            .config_get(name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the server has no setting {name}"))
    };
    let min_replicas = get("min-replicas-to-write")?;
    Ok(ServerSettings {
        maxmemory_policy: get("maxmemory-policy")?,
        appendonly: get("appendonly")?,
        save: get("save")?,
        min_replicas_to_write: min_replicas
            .parse()
            .map_err(|_| format!("min-replicas-to-write = {min_replicas:?}"))?,
    })
}

/// `slaveN:ip=...,port=...,state=online,offset=...,lag=...`
fn is_online_replica(key: &str, value: &str) -> bool {
    key.strip_prefix("slave")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && value.split(',').any(|field| field == "state=online")
}

/// The role and replicas of an `INFO replication` text.
fn parse_replication(info: &str) -> Result<Replication, String> {
    let mut role = None;
    let mut connected = None;
    let mut online = 0;
    for line in info.lines() {
        match line.trim_end().split_once(':') {
            Some(("role", value)) => role = Some(value.to_string()),
            Some(("connected_slaves", value)) => connected = value.parse().ok(),
            Some((key, value)) if is_online_replica(key, value) => online += 1,
            _ => {}
        }
    }
    match (role, connected) {
        (Some(role), Some(connected_replicas)) => Ok(Replication {
            role,
            connected_replicas,
            online_replicas: online,
        }),
        _ => Err("INFO replication has no role or connected_slaves".into()),
    }
}

/// One judgement of what was read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Ok(String),
    Note(String),
    /// The problem and its fix.
    Problem(String, String),
}

/// What the settings read mean for the shared state, with `wait_replicas`
/// (`redis_wait_replicas`) configured.
fn judge_server(read: &ServerRead, wait_replicas: u32) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    let replication = read.replication.as_ref().ok();
    match &read.replication {
        Err(why) => verdicts.push(Verdict::Note(format!(
            "the server's replication could not be read ({why}): {} unchecked",
            if wait_replicas > 0 {
                format!("whether the redis_wait_replicas = {wait_replicas} replicas are online is")
            } else {
                "its role is".to_string()
            }
        ))),
        Ok(r) if r.role != "master" => verdicts.push(Verdict::Problem(
            format!(
                "the server is a replica (role {}), which refuses writes: every login \
                 through it fails",
                r.role
            ),
            "point redis_url at the primary, or use redis_sentinels and \
             redis_master_name"
                .into(),
        )),
        Ok(r) if r.online_replicas < wait_replicas => verdicts.push(Verdict::Problem(
            format!(
                "{} replica{} online ({} connected), fewer than redis_wait_replicas = \
                 {wait_replicas}: every login with a backup code fails (the spend is not \
                 confirmed; the code stays spent)",
                r.online_replicas,
                if r.online_replicas == 1 { "" } else { "s" },
                r.connected_replicas
            ),
            "connect the missing replicas, or lower redis_wait_replicas (0 turns the \
             wait off: a failover can then lose a spend)"
                .into(),
        )),
        Ok(r) => verdicts.push(Verdict::Ok(format!(
            "primary with {} replica{} online (redis_wait_replicas = {wait_replicas})",
            r.online_replicas,
            if r.online_replicas == 1 { "" } else { "s" }
        ))),
    }

    let settings = match &read.settings {
        Ok(settings) => settings,
        Err(why) => {
            // A restricted ACL is the recommended setup, not a fault.
            verdicts.push(Verdict::Note(format!(
                "the server's settings could not be read ({why}): eviction, persistence \
                 and min-replicas-to-write are unchecked; check them on the server \
                 (maxmemory-policy noeviction, appendonly yes)"
            )));
            return verdicts;
        }
    };
    let revives = "spent backup codes and used TOTP codes are accepted again on every \
                   other host, and failures are forgotten";
    let policy = settings.maxmemory_policy.as_str();
    if policy == "noeviction" {
        verdicts.push(Verdict::Ok("maxmemory-policy noeviction".into()));
    } else if policy.starts_with("volatile-") {
        // These evict only keys with an expiry: the leases, never a state
        // (stored without one). Still worth stating it outright.
        verdicts.push(Verdict::Note(format!(
            "maxmemory-policy {policy} evicts only keys with an expiry, which the account \
             states do not have; noeviction says so outright"
        )));
    } else {
        verdicts.push(Verdict::Problem(
            format!(
                "maxmemory-policy {policy}: when memory runs short the server evicts \
                 account states, and then {revives}"
            ),
            "CONFIG SET maxmemory-policy noeviction, and maxmemory-policy noeviction in \
             redis.conf"
                .into(),
        ));
    }

    let aof = settings.appendonly == "yes";
    let rdb = !settings.save.trim().is_empty();
    match (aof, rdb) {
        (true, _) => verdicts.push(Verdict::Ok("persistence: append-only file".into())),
        (false, true) => verdicts.push(Verdict::Note(format!(
            "persistence by snapshots only (save \"{}\"): a crash loses what was written \
             since the last one, and with it codes spent meanwhile; appendonly yes keeps \
             every write",
            settings.save
        ))),
        (false, false) => verdicts.push(Verdict::Problem(
            format!("no persistence (appendonly no, save \"\"): a restart of the server empties it, and then {revives}"),
            "CONFIG SET appendonly yes, and appendonly yes in redis.conf".into(),
        )),
    }

    let replicated = wait_replicas > 0 || replication.is_some_and(|r| r.connected_replicas > 0);
    if settings.min_replicas_to_write == 0 && replicated {
        if wait_replicas > 0 {
            // WAIT confirms each spend before the login is let in; only
            // what is not waited for can be lost in a failover.
            verdicts.push(Verdict::Note(
                "min-replicas-to-write 0: a primary cut off from its replicas still \
                 takes writes that a failover then loses: the TOTP steps and failures \
                 recorded meanwhile (backup-code spends are confirmed by \
                 redis_wait_replicas)"
                    .into(),
            ));
        } else {
            verdicts.push(Verdict::Problem(
                format!(
                    "min-replicas-to-write 0 and redis_wait_replicas = 0: a primary cut off \
                     from its replicas still takes writes that a failover then loses, and \
                     then {revives}"
                ),
                "set redis_wait_replicas = 1 (or more), and min-replicas-to-write 1 on the \
                 server"
                    .into(),
            ));
        }
    } else if settings.min_replicas_to_write > 0 {
        verdicts.push(Verdict::Ok(format!(
            "min-replicas-to-write {}",
            settings.min_replicas_to_write
        )));
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(settings: ServerSettings, role: &str, replicas: u32) -> ServerRead {
        ServerRead {
            settings: Ok(settings),
            replication: Ok(Replication {
                role: role.into(),
                connected_replicas: replicas,
                online_replicas: replicas,
            }),
        }
    }

    fn problems(verdicts: &[Verdict]) -> Vec<&str> {
        verdicts
            .iter()
            .filter_map(|v| match v {
                Verdict::Problem(text, _) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    fn notes(verdicts: &[Verdict]) -> Vec<&str> {
        verdicts
            .iter()
            .filter_map(|v| match v {
                Verdict::Note(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    fn safe() -> ServerSettings {
        ServerSettings {
            maxmemory_policy: "noeviction".into(),
            appendonly: "yes".into(),
            save: String::new(),
            min_replicas_to_write: 1,
        }
    }

    #[test]
    fn a_safe_replicated_server_has_no_problem() {
        let verdicts = judge_server(&read(safe(), "master", 2), 1);
        assert!(problems(&verdicts).is_empty(), "{verdicts:?}");
        assert!(notes(&verdicts).is_empty(), "{verdicts:?}");
    }

    #[test]
    fn eviction_is_a_problem_unless_only_expiring_keys_go() {
        for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random", "mystery"] {
            let settings = ServerSettings {
                maxmemory_policy: policy.into(),
                ..safe()
            };
            let verdicts = judge_server(&read(settings, "master", 1), 1);
            let found = problems(&verdicts);
            assert_eq!(found.len(), 1, "{policy}: {verdicts:?}");
            assert!(found[0].contains("evicts account states"), "{found:?}");
        }
        let settings = ServerSettings {
            maxmemory_policy: "volatile-lru".into(),
            ..safe()
        };
        let verdicts = judge_server(&read(settings, "master", 1), 1);
        assert!(problems(&verdicts).is_empty(), "{verdicts:?}");
        assert!(notes(&verdicts)[0].contains("only keys with an expiry"));
    }

    #[test]
    fn no_persistence_is_a_problem_and_snapshots_alone_a_note() {
        let none = ServerSettings {
            appendonly: "no".into(),
            save: String::new(),
            ..safe()
        };
        let verdicts = judge_server(&read(none, "master", 1), 1);
        assert_eq!(problems(&verdicts).len(), 1, "{verdicts:?}");
        assert!(problems(&verdicts)[0].contains("no persistence"));

        let snapshots = ServerSettings {
            appendonly: "no".into(),
            save: "3600 1 300 100".into(),
            ..safe()
        };
        let verdicts = judge_server(&read(snapshots, "master", 1), 1);
        assert!(problems(&verdicts).is_empty(), "{verdicts:?}");
        assert!(notes(&verdicts)[0].contains("snapshots only"));
    }

    #[test]
    fn min_replicas_to_write_matters_only_with_replication() {
        let zero = ServerSettings {
            min_replicas_to_write: 0,
            ..safe()
        };
        // A standalone server with no wait: nothing to say.
        let verdicts = judge_server(&read(zero.clone(), "master", 0), 0);
        assert!(problems(&verdicts).is_empty(), "{verdicts:?}");
        assert!(notes(&verdicts).is_empty(), "{verdicts:?}");
        // Spends confirmed by WAIT: a note.
        let verdicts = judge_server(&read(zero.clone(), "master", 1), 1);
        assert!(problems(&verdicts).is_empty(), "{verdicts:?}");
        assert!(notes(&verdicts)[0].contains("min-replicas-to-write 0"));
        // Replicas but nothing waits for them: a problem.
        let verdicts = judge_server(&read(zero, "master", 2), 0);
        assert_eq!(problems(&verdicts).len(), 1, "{verdicts:?}");
        assert!(problems(&verdicts)[0].contains("redis_wait_replicas = 0"));
    }

    #[test]
    fn too_few_replicas_or_a_replica_is_a_problem() {
        let verdicts = judge_server(&read(safe(), "master", 0), 1);
        assert_eq!(problems(&verdicts).len(), 1, "{verdicts:?}");
        assert!(problems(&verdicts)[0].contains("0 replicas online"));
        let verdicts = judge_server(&read(safe(), "master", 1), 2);
        assert!(problems(&verdicts)[0].contains("1 replica online"));
        // Still in its first sync: connected, but no acknowledgement yet.
        let mut syncing = read(safe(), "master", 1);
        if let Ok(r) = &mut syncing.replication {
            r.online_replicas = 0;
        }
        let verdicts = judge_server(&syncing, 1);
        assert!(
            problems(&verdicts)[0].contains("0 replicas online (1 connected)"),
            "{verdicts:?}"
        );
        let verdicts = judge_server(&read(safe(), "slave", 0), 0);
        assert!(problems(&verdicts)[0].contains("is a replica"));
    }

    #[test]
    fn settings_the_acl_refuses_are_a_note_not_a_problem() {
        let refused = ServerRead {
            settings: Err("Redis refused: NOPERM this user has no permissions".into()),
            replication: Err("Redis refused: NOPERM".into()),
        };
        let verdicts = judge_server(&refused, 1);
        assert!(problems(&verdicts).is_empty(), "{verdicts:?}");
        let found = notes(&verdicts);
        assert_eq!(found.len(), 2, "{verdicts:?}");
        assert!(found[1].contains("settings could not be read"), "{found:?}");
        assert!(found[1].contains("NOPERM"), "{found:?}");
    }

    #[test]
    fn replication_info_is_parsed() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
                    slave0:ip=127.0.0.1,port=6381,state=online,offset=1,lag=0\r\n\
                    slave1:ip=127.0.0.1,port=6382,state=wait_bgsave,offset=0,lag=0\r\n\
                    slave_read_repl_offset:1\r\n";
        assert_eq!(
            parse_replication(info).unwrap(),
            Replication {
                role: "master".into(),
                connected_replicas: 2,
                online_replicas: 1,
            }
        );
        assert!(parse_replication("# Replication\r\n").is_err());
    }

    #[test]
    fn latency_against_the_timeout() {
        let timeout = Duration::from_millis(500);
        let (slow, text) = judge_latency(Duration::from_micros(420), timeout);
        assert!(!slow);
        assert_eq!(text, "PING round trip 0.4 ms");
        let (slow, text) = judge_latency(Duration::from_millis(300), timeout);
        assert!(slow);
        assert!(text.contains("over half of redis_command_timeout_ms (500 ms)"));
    }
}
