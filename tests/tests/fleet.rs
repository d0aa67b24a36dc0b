//! The fleet backend (`state_backend = "redis"`) through the real libpam,
//! against real `redis-server` and `redis-sentinel` processes on loopback:
//! several "hosts" (stacks with their own configuration and state
//! directory, enrolled with the same secrets as configuration management
//! would) share one login state.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use libtest_mimic::Failed;
use twofactor_core::enrollment::encode_base32_secret;
use twofactor_core::login_states::LoginStates;
use twofactor_core::shared_state::{account_keys, SharedStateError};
use twofactor_core::state::{FailureKind, LoginState};
use twofactor_integration_tests::checks::{assert_logged, assert_not_logged, check, ensure};
use twofactor_integration_tests::fixtures::{answer_in_mode, Enrolled, Stack, PASS_MODES};
use twofactor_integration_tests::namespace::{self, TestNamespace};
use twofactor_integration_tests::pam_client::{self, code, Attempt, AttemptResult};
use twofactor_integration_tests::redis_servers::{
    RedisOptions, RedisServer, SentinelSetup, TlsFiles,
};
use twofactor_integration_tests::users::{user, TestUser};
use twofactor_integration_tests::{run_trials, test_clock_module, twofactor_binary};

const NOW: u64 = 1_800_000_000;
/// The ACL of the module's user: its keys and the commands it sends.
const MODULE_ACL: &str =
    "resetchannels ~tf:* -@all +evalsha +script|load +time +get +set +del +pttl +wait +ping +role";
const MODULE_PASSWORD: &str = "fleet-Pa55-word-not-to-be-seen";

/// A "host": a stack of the test-clock module with the Redis backend.
fn host(ns: &TestNamespace, name: &str, redis_config: &str) -> Stack {
    Stack::new(
        ns,
        name,
        &test_clock_module(),
        "",
        &format!("state_backend = \"redis\"\n{redis_config}"),
    )
}

/// A standalone server: no replica can confirm a spend, so none is asked.
fn url_of(server: &RedisServer) -> String {
    format!(
        "redis_url = \"{}\"\nredis_wait_replicas = 0\n",
        server.url()
    )
}

/// `N` hosts with `redis_config`, `user` enrolled on each with `enrolled`.
fn hosts<const N: usize>(
    ns: &TestNamespace,
    name: &str,
    redis_config: &str,
    user: &TestUser,
    enrolled: &Enrolled,
) -> [Stack; N] {
    std::array::from_fn(|i| {
        let stack = host(ns, &format!("{name}-{i}"), redis_config);
        stack.enroll(user, enrolled);
        stack
    })
}

fn accepted(result: &AttemptResult) -> bool {
    result.code == code::SUCCESS
}

/// `user`'s state as the server holds it.
fn shared_state(server: &RedisServer, user: &TestUser) -> Result<LoginState, Failed> {
    let mut admin = server.admin()?;
    let (key, _) = account_keys("tf", &user.name);
    let text: Option<String> = redis::cmd("GET").arg(&key).query(&mut admin)?;
    Ok(LoginState::parse(text.as_deref().unwrap_or(""), &key)?)
}

fn failures(state: &LoginState, kind: FailureKind) -> usize {
    state
        .failures
        .iter()
        .filter(|f| f.kind == kind && !f.cleared)
        .count()
}

fn codes_and_backup_codes_are_spent_fleet_wide(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    let u = user(0);
    let enrolled = Enrolled::standard();
    let [a, b, c] = &hosts(ns, "spent", &url_of(&server), &u, &enrolled);
    let totp = enrolled.code_at(NOW);
    check(accepted(&a.login_at(&u.name, &totp, NOW)), "host A: code")?;
    let on_b = b.login_at(&u.name, &totp, NOW + 1);
    check(
        !accepted(&on_b),
        format!(
            "host B accepted the code host A accepted: {}",
            code::describe(on_b.code)
        ),
    )?;
    assert_logged(b, "already used")?;
    let backup = &enrolled.backup_codes[0];
    check(
        accepted(&b.login_at(&u.name, backup, NOW + 2)),
        "host B: backup code",
    )?;
    for (name, stack) in [("A", a), ("C", c)] {
        let again = stack.login_at(&u.name, backup, NOW + 3);
        check(
            !accepted(&again),
            format!("host {name} accepted a backup code spent on B"),
        )?;
    }
    // The shared document holds steps and salts, never a secret or a code.
    let mut admin = server.admin()?;
    let (key, _) = account_keys("tf", &u.name);
    let text: String = redis::cmd("GET").arg(&key).query(&mut admin)?;
    let secret = enrolled
        .enrollment
        .totp
        .as_ref()
        .map(|t| encode_base32_secret(&t.secret).to_string())
        .ok_or("no TOTP secret")?;
    ensure(
        !text.contains(backup.as_str()) && !text.contains(&totp) && !text.contains(&secret),
        || format!("the shared state holds a secret or a code: {text}"),
    )?;
    // Keys are the hex of the name inside a hash tag: nothing a name
    // holds reaches a key unescaped.
    check(
        key == format!("tf:{{{}}}:state", hex::encode(u.name.as_bytes())),
        key.clone(),
    )
}

fn failures_on_all_hosts_add_up(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    let u = user(1);
    let enrolled = Enrolled::standard();
    let [a, b, c] = &hosts(ns, "failures", &url_of(&server), &u, &enrolled);
    let wrong = enrolled.wrong_code(NOW);
    for (stack, count) in [(a, 3), (b, 2)] {
        for i in 0..count {
            let result = stack.login_at(&u.name, &wrong, NOW + i);
            check(!accepted(&result), "a wrong code was accepted")?;
        }
    }
    let state = shared_state(&server, &u)?;
    check(
        failures(&state, FailureKind::Code) == 5,
        format!("{} failures shared", failures(&state, FailureKind::Code)),
    )?;
    // Five failures over two hosts: codes are locked on a third.
    let right = enrolled.code_at(NOW + 30);
    let result = c.login_at(&u.name, &right, NOW + 30);
    check(
        !accepted(&result) && result.shown_error("Too many failed attempts"),
        format!("host C after 3 + 2 failures elsewhere: {result:?}"),
    )?;
    // A backup code still works, and the lockout is on the server's clock:
    // a host whose clock is a day ahead does not see it expired.
    let later = NOW + 86_400;
    let skewed = c.login_at(&u.name, &enrolled.code_at(later), later);
    check(
        !accepted(&skewed),
        "a host a day ahead saw the lockout expired",
    )?;
    check(
        accepted(&c.login_at(&u.name, &enrolled.backup_codes[0], NOW + 31)),
        "a backup code during the code lockout",
    )
}

/// Run `logins` at once (threads released together), over the hosts in
/// turn, returning each PAM result code.
fn at_once(stacks: &[Stack], user: &TestUser, answers: &[String], now: u64) -> Vec<i32> {
    let barrier = Arc::new(Barrier::new(answers.len()));
    std::thread::scope(|scope| {
        let handles: Vec<_> = answers
            .iter()
            .enumerate()
            .map(|(i, answer)| {
                let stack = &stacks[i % stacks.len()];
                let barrier = Arc::clone(&barrier);
                scope.spawn(move || {
                    barrier.wait();
                    stack.login_at(&user.name, answer, now).code
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("login thread"))
            .collect()
    })
}

fn concurrent_logins_over_hosts(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    let u = user(2);
    let enrolled = Enrolled::standard();
    let stacks: [Stack; 4] = hosts(ns, "concurrent", &url_of(&server), &u, &enrolled);
    // One backup code, 100 logins at once over four hosts: one success.
    let backup = vec![enrolled.backup_codes[0].clone(); 100];
    let results = at_once(&stacks, &u, &backup, NOW);
    let successes = results.iter().filter(|c| **c == code::SUCCESS).count();
    check(
        successes == 1,
        format!("one backup code, 100 logins: {successes} successes ({results:?})"),
    )?;
    check(
        results
            .iter()
            .all(|c| *c == code::SUCCESS || *c == code::AUTH_ERR),
        format!("{results:?}"),
    )?;

    // 100 wrong codes at once over four hosts: exactly the limit (5) is
    // checked and recorded; the rest are refused unchecked.
    let v = user(3);
    for stack in &stacks {
        stack.enroll(&v, &enrolled);
    }
    let wrong = vec![enrolled.wrong_code(NOW); 100];
    let results = at_once(&stacks, &v, &wrong, NOW);
    check(
        results.iter().all(|c| *c == code::AUTH_ERR),
        format!("{results:?}"),
    )?;
    let state = shared_state(&server, &v)?;
    check(
        failures(&state, FailureKind::Code) == 5,
        format!(
            "100 concurrent wrong codes: {} checked and recorded, not the limit of 5",
            failures(&state, FailureKind::Code)
        ),
    )
}

/// A login on `stack` with `answer` at `now` is refused as unavailable
/// (PAM_AUTHINFO_UNAVAIL) within `bound`; prints how long it took.
fn refused_in_time(
    stack: &Stack,
    user: &TestUser,
    answer: &str,
    now: u64,
    what: &str,
    bound: Duration,
) -> Result<(), Failed> {
    let started = Instant::now();
    let result = stack.login_at(&user.name, answer, now);
    let took = started.elapsed();
    println!("  {what}: login refused after {took:?}");
    check(
        result.code == code::AUTHINFO_UNAVAIL && took < bound,
        format!("{what}: {} after {took:?}", code::describe(result.code)),
    )?;
    assert_logged(stack, "Redis unreachable")
}

fn unavailable_server_fails_closed_in_time(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    let u = user(4);
    let enrolled = Enrolled::standard();
    let timeouts = "redis_connect_timeout_ms = 300\nredis_command_timeout_ms = 300\n";
    let config = format!("{}{timeouts}", url_of(&server));
    let [fail] = &hosts(ns, "unavailable", &config, &u, &enrolled);
    let local = host(
        ns,
        "unavailable-local",
        &format!("{config}redis_unavailable = \"local\"\n"),
    );
    local.enroll(&u, &enrolled);
    check(
        accepted(&fail.login_at(&u.name, &enrolled.code_at(NOW), NOW)),
        "a login while the server runs",
    )?;
    // Frozen (SIGSTOP): connections are accepted by the kernel but never
    // answered; the login fails within the command timeout.
    server.freeze()?;
    // Bounded by the read before the prompt (its command timeout) and
    // nothing after: an unreachable server is not asked twice in a login.
    refused_in_time(
        fail,
        &u,
        &enrolled.code_at(NOW + 30),
        NOW + 30,
        "frozen server",
        Duration::from_millis(300 * 2 + 400),
    )?;
    // The "local" fallback decides on the host's own state: TOTP works,
    // backup codes are refused.
    let result = local.login_at(&u.name, &enrolled.code_at(NOW + 60), NOW + 60);
    check(
        accepted(&result),
        format!("local fallback, TOTP: {}", code::describe(result.code)),
    )?;
    assert_logged(&local, "deciding on this host's state alone")?;
    let fallback_lines = |stack: &Stack| {
        stack
            .log_lines()
            .iter()
            .filter(|l| l.contains("deciding on this host's state alone"))
            .count()
    };
    check(
        fallback_lines(&local) == 1,
        format!("one login, fallback said {} times", fallback_lines(&local)),
    )?;
    let result = local.login_at(&u.name, &enrolled.backup_codes[0], NOW + 61);
    check(
        !accepted(&result),
        "local fallback accepted a backup code without redis_fallback_backup_codes",
    )?;
    server.thaw()?;
    // Stopped: connection refused at once.
    server.stop();
    refused_in_time(
        fail,
        &u,
        &enrolled.code_at(NOW + 90),
        NOW + 90,
        "stopped server",
        Duration::from_millis(700),
    )?;
    // Unreachable in the middle of connecting: a listener that never
    // answers the TLS handshake. Bounded by the connect timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let silent_config = format!(
        "redis_url = \"rediss://127.0.0.1:{}\"\n{timeouts}",
        silent.local_addr()?.port()
    );
    let silent_host = host(ns, "unavailable-silent", &silent_config);
    silent_host.enroll(&u, &enrolled);
    refused_in_time(
        &silent_host,
        &u,
        &enrolled.code_at(NOW + 100),
        NOW + 100,
        "TLS handshake never answered",
        Duration::from_millis(700),
    )?;
    drop(silent);
    let allowing = host(
        ns,
        "unavailable-backup",
        &format!("{config}redis_unavailable = \"local\"\nredis_fallback_backup_codes = true\n"),
    );
    allowing.enroll(&u, &enrolled);
    check(
        accepted(&allowing.login_at(&u.name, &enrolled.backup_codes[1], NOW + 120)),
        "redis_fallback_backup_codes = true: a backup code in the fallback",
    )
}

fn the_host_state_refuses_what_the_server_lost(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    let u = user(5);
    let enrolled = Enrolled::standard();
    let [a, b] = &hosts(ns, "lost", &url_of(&server), &u, &enrolled);
    let totp = enrolled.code_at(NOW);
    let backup = &enrolled.backup_codes[0];
    check(accepted(&a.login_at(&u.name, &totp, NOW)), "host A: code")?;
    check(
        accepted(&a.login_at(&u.name, backup, NOW + 1)),
        "host A: backup code",
    )?;
    // A failover that lost the writes: the server forgets everything.
    let mut admin = server.admin()?;
    redis::cmd("FLUSHALL").query::<()>(&mut admin)?;
    check(
        !accepted(&a.login_at(&u.name, &totp, NOW + 2)),
        "host A accepted its own code again after the server lost it",
    )?;
    check(
        !accepted(&a.login_at(&u.name, backup, NOW + 3)),
        "host A accepted its own backup code again after the server lost it",
    )?;
    // Host A's logins put its spends back into the shared state: host B
    // refuses them too.
    check(
        !accepted(&b.login_at(&u.name, backup, NOW + 4)),
        "host B accepted a backup code host A had pushed back",
    )
}

fn switching_on_brings_the_host_state_along(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    let u = user(6);
    let enrolled = Enrolled::standard();
    // A host running with its own state spends a code and a backup code.
    let a = Stack::new(ns, "switch-a", &test_clock_module(), "", "");
    a.enroll(&u, &enrolled);
    let totp = enrolled.code_at(NOW);
    let backup = &enrolled.backup_codes[0];
    check(accepted(&a.login_at(&u.name, &totp, NOW)), "local: code")?;
    check(
        accepted(&a.login_at(&u.name, backup, NOW + 1)),
        "local: backup code",
    )?;
    // Switched on: its next login (a wrong code) takes its state in.
    let config = fs::read_to_string(&a.config_path)?;
    fs::write(
        &a.config_path,
        format!("{config}state_backend = \"redis\"\n{}", url_of(&server)),
    )?;
    a.login_at(&u.name, &enrolled.wrong_code(NOW + 2), NOW + 2);
    let b = host(ns, "switch-b", &url_of(&server));
    b.enroll(&u, &enrolled);
    check(
        !accepted(&b.login_at(&u.name, backup, NOW + 3)),
        "another host accepted a backup code spent before the switch",
    )?;
    check(
        !accepted(&b.login_at(&u.name, &totp, NOW + 4)),
        "another host accepted a code accepted before the switch",
    )
}

fn sentinel_failover(ns: &TestNamespace) -> Result<(), Failed> {
    let setup = SentinelSetup::start("twofactor", 2, 3)?;
    let sentinels = setup
        .sentinel_addrs()
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = format!(
        "redis_sentinels = [{sentinels}]\nredis_master_name = \"twofactor\"\n\
         redis_wait_timeout_ms = 300\n"
    );
    let u = user(7);
    let enrolled = Enrolled::standard();
    let [a, b] = &hosts(ns, "sentinel", &config, &u, &enrolled);
    check(
        accepted(&a.login_at(&u.name, &enrolled.code_at(NOW), NOW)),
        "through Sentinel",
    )?;
    check(
        accepted(&a.login_at(&u.name, &enrolled.backup_codes[0], NOW + 1)),
        "a backup code confirmed by a replica",
    )?;
    let old = setup.current_primary_port()?;
    setup
        .server(old)
        .ok_or("no server on the primary's port")?
        .stop();
    let started = Instant::now();
    let new = setup.wait_for_failover(old, Duration::from_secs(30))?;
    // Logins resume once a replica is promoted; until then they fail
    // closed.
    let mut resumed = None;
    for i in 0..100 {
        let t = NOW + 30 * (i + 1);
        if accepted(&b.login_at(&u.name, &enrolled.code_at(t), t)) {
            resumed = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let resumed = resumed.ok_or("no login succeeded after the failover")?;
    println!("  failover {old} -> {new}: logins resumed {resumed:?} after the primary stopped");
    // What was spent before the failover stays spent (replicated before
    // the login succeeded: WAIT).
    check(
        !accepted(&b.login_at(&u.name, &enrolled.backup_codes[0], NOW + 5000)),
        "a backup code spent before the failover worked after it",
    )?;
    // With every replica stopped no spend can be confirmed: the login is
    // refused and the code stays spent.
    for server in setup.servers() {
        if server.port() != new {
            server.stop();
        }
    }
    let spent_unconfirmed = &enrolled.backup_codes[1];
    let result = b.login_at(&u.name, spent_unconfirmed, NOW + 5001);
    check(
        result.code != code::SUCCESS,
        format!("unconfirmed spend: {}", code::describe(result.code)),
    )?;
    assert_logged(b, "acknowledged by 0 of the 1 replicas")?;
    let primary = setup.server(new).ok_or("no promoted server")?;
    let state = shared_state(primary, &u)?;
    check(
        state.spent_backup_codes.len() == 2,
        format!("spent on the primary: {:?}", state.spent_backup_codes),
    )?;
    check(
        !accepted(&a.login_at(&u.name, spent_unconfirmed, NOW + 5002)),
        "an unconfirmed spend was revived",
    )
}

fn tls_and_acl(ns: &TestNamespace) -> Result<(), Failed> {
    let tls = TlsFiles::generate()?;
    let server = RedisServer::start(RedisOptions {
        tls: Some(Arc::clone(&tls)),
        password: Some("admin-secret".into()),
        acl_users: vec![format!(
            "user pam_twofactor on >{MODULE_PASSWORD} {MODULE_ACL}"
        )],
        ..RedisOptions::default()
    })?;
    let ca = server.ca_file().ok_or("no CA file")?.to_path_buf();
    let dir = ns.scratch.join("fleet-tls");
    fs::create_dir_all(&dir)?;
    let password_file = |name: &str, text: &str| -> Result<PathBuf, Failed> {
        let path = dir.join(name);
        fs::write(&path, format!("{text}\n"))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        Ok(path)
    };
    let right = password_file("right", MODULE_PASSWORD)?;
    let wrong = password_file("wrong", "not-the-password")?;
    let config = |password: &PathBuf, ca: &PathBuf| {
        format!(
            "redis_url = \"rediss://127.0.0.1:{}\"\nredis_user = \"pam_twofactor\"\n\
             redis_password_file = {:?}\nredis_ca_file = {:?}\nredis_wait_replicas = 0\n",
            server.port(),
            password.display().to_string(),
            ca.display().to_string()
        )
    };
    let u = user(8);
    let enrolled = Enrolled::standard();
    let good = host(ns, "tls-good", &config(&right, &ca));
    good.enroll(&u, &enrolled);
    let result = good.login_at(&u.name, &enrolled.code_at(NOW), NOW);
    ensure(accepted(&result), || {
        format!(
            "TLS with the ACL user: {}: {:#?}",
            code::describe(result.code),
            good.log_lines()
        )
    })?;
    check(
        accepted(&good.login_at(&u.name, &enrolled.backup_codes[0], NOW + 1)),
        "TLS with the ACL user: backup code",
    )?;
    let bad_password = host(ns, "tls-wrongpass", &config(&wrong, &ca));
    bad_password.enroll(&u, &enrolled);
    let result = bad_password.login_at(&u.name, &enrolled.code_at(NOW + 30), NOW + 30);
    check(
        result.code == code::AUTHINFO_UNAVAIL,
        format!("wrong password: {}", code::describe(result.code)),
    )?;
    assert_logged(&bad_password, "authentication failed")?;
    // A CA that did not sign the server's certificate.
    let other = TlsFiles::generate()?;
    let other_ca = dir.join("other-ca.pem");
    fs::write(&other_ca, other.ca_pem()?)?;
    let bad_ca = host(ns, "tls-wrongca", &config(&right, &other_ca));
    bad_ca.enroll(&u, &enrolled);
    let result = bad_ca.login_at(&u.name, &enrolled.code_at(NOW + 60), NOW + 60);
    check(
        result.code == code::AUTHINFO_UNAVAIL,
        format!("wrong CA: {}", code::describe(result.code)),
    )?;
    assert_logged(&bad_ca, "certificate")?;
    // A password file others can read is refused, not used.
    fs::set_permissions(&right, fs::Permissions::from_mode(0o644))?;
    let result = good.login_at(&u.name, &enrolled.code_at(NOW + 90), NOW + 90);
    fs::set_permissions(&right, fs::Permissions::from_mode(0o600))?;
    check(
        result.code != code::SUCCESS,
        "a world-readable password file was used",
    )?;
    assert_not_logged(MODULE_PASSWORD)?;
    assert_not_logged("not-the-password")?;
    // Nor in the environment or the command line of any process.
    for entry in fs::read_dir("/proc")?.flatten() {
        for file in ["cmdline", "environ"] {
            if let Ok(bytes) = fs::read(entry.path().join(file)) {
                let text = String::from_utf8_lossy(&bytes);
                check(
                    !text.contains(MODULE_PASSWORD),
                    format!("the password is in {}/{file}", entry.path().display()),
                )?;
            }
        }
    }
    Ok(())
}

/// Run `twofactor ARGS --config CONFIG`; its exit code and standard output.
fn tool(args: &[&str], config: &std::path::Path) -> Result<(i32, String), Failed> {
    let output = std::process::Command::new(twofactor_binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()?;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    ))
}

fn the_tool_works_on_the_shared_state(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    let u = user(9);
    let enrolled = Enrolled::standard();
    let [a, b] = &hosts(ns, "tool", &url_of(&server), &u, &enrolled);
    let wrong = enrolled.wrong_code(NOW);
    for i in 0..5 {
        a.login_at(&u.name, &wrong, NOW + i);
    }
    // Host B's tool sees the lockout host A's logins caused.
    let (status, printed) = tool(&["status", "--user", &u.name, "--json"], &b.config_path)?;
    let json: serde_json::Value = serde_json::from_str(printed.trim())
        .map_err(|e| format!("status --json: {e}: {printed}"))?;
    check(
        status == 0 && json["state"]["backend"] == "redis",
        format!("status on host B: {status}: {printed}"),
    )?;
    ensure(json["lockout"]["codes"]["locked"] == true, || {
        format!("status on host B does not show the lockout: {printed}")
    })?;
    // reset-lockout on host B clears it for the fleet: host A lets the
    // user in again.
    let (status, printed) = tool(&["reset-lockout", "--user", &u.name], &b.config_path)?;
    check(status == 0, format!("reset-lockout: {status}: {printed}"))?;
    check(
        failures(&shared_state(&server, &u)?, FailureKind::Code) == 0,
        "failures left on the server after reset-lockout",
    )?;
    // The tool's clock is the real one: so is this login's.
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let current = enrolled.code_at(real_now);
    check(
        accepted(&a.login_at(&u.name, &current, real_now)),
        "host A after a reset on host B",
    )?;
    // verify on host B knows the code host A accepted.
    let output = std::process::Command::new(twofactor_binary())
        .args(["verify", "--user", &u.name, "--config"])
        .arg(&b.config_path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("{current}\n").as_bytes())?;
            child.wait_with_output()
        })?;
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    ensure(said.contains("replay"), || {
        format!("verify on host B of a code host A accepted: {said}")
    })?;

    // fleet push: a host that spent a backup code on its own state brings
    // it to the server at once.
    let c = Stack::new(ns, "tool-push", &test_clock_module(), "", "");
    c.enroll(&u, &enrolled);
    check(
        accepted(&c.login_at(&u.name, &enrolled.backup_codes[3], NOW + 60)),
        "a backup code on a host with its own state",
    )?;
    let config = fs::read_to_string(&c.config_path)?;
    fs::write(
        &c.config_path,
        format!("{config}state_backend = \"redis\"\n{}", url_of(&server)),
    )?;
    let (status, printed) = tool(&["fleet", "push", "--json"], &c.config_path)?;
    check(status == 0, format!("fleet push: {status}: {printed}"))?;
    let report: serde_json::Value = serde_json::from_str(printed.trim())
        .map_err(|e| format!("fleet push --json: {e}: {printed}"))?;
    check(report["pushed"] == 1, format!("fleet push: {printed}"))?;
    check(
        !accepted(&b.login_at(&u.name, &enrolled.backup_codes[3], NOW + 61)),
        "host B accepted a backup code pushed as spent",
    )
}

/// The lease: a login waits for another's and then decides; a lease held
/// for longer than a login waits fails the login closed; a decision whose
/// lease ran out is not stored.
fn the_lease_serializes_and_fences(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    let u = user(10);
    let enrolled = Enrolled::standard();
    let [a] = &hosts(ns, "lease", &url_of(&server), &u, &enrolled);
    let (_, lease_key) = account_keys("tf", &u.name);
    let mut admin = server.admin()?;
    // Another login's lease with 800 ms left: this one waits it out.
    redis::cmd("SET")
        .arg(&lease_key)
        .arg("someone-else")
        .arg("PX")
        .arg(800)
        .query::<()>(&mut admin)?;
    let started = Instant::now();
    let result = a.login_at(&u.name, &enrolled.code_at(NOW), NOW);
    let waited = started.elapsed();
    println!("  a login waited {waited:?} for a lease with 800 ms left");
    check(
        accepted(&result) && waited >= Duration::from_millis(700),
        format!("{} after {waited:?}", code::describe(result.code)),
    )?;
    // A lease that outlasts the wait: refused, said why.
    redis::cmd("SET")
        .arg(&lease_key)
        .arg("someone-else")
        .arg("PX")
        .arg(10_000)
        .query::<()>(&mut admin)?;
    let result = a.login_at(&u.name, &enrolled.code_at(NOW + 30), NOW + 30);
    check(
        result.code == code::AUTHINFO_UNAVAIL,
        format!("busy lease: {}", code::describe(result.code)),
    )?;
    assert_logged(a, "held the account's lease")?;
    redis::cmd("DEL").arg(&lease_key).query::<()>(&mut admin)?;

    // Fencing, through the library the module uses: a lease taken, then
    // lost (it ran out and another login took it), stores nothing.
    let config = twofactor_core::config::load(&a.config_path, false)?;
    let states = LoginStates::new(&config, 0);
    let local = states.local().lock(&u.name, 0, None)?;
    let mut held = states.hold(local, &u.name, NOW)?;
    redis::cmd("SET")
        .arg(&lease_key)
        .arg("the-next-login")
        .query::<()>(&mut admin)?;
    let before = shared_state(&server, &u)?;
    held.state.spent_backup_codes.push("fenced".into());
    let saved = held.save();
    check(
        matches!(
            saved,
            Err(twofactor_core::Error::SharedState(
                SharedStateError::LeaseLost
            ))
        ),
        format!("a save under a lost lease: {saved:?}"),
    )?;
    check(
        shared_state(&server, &u)? == before,
        "a decision under a lost lease was stored",
    )?;
    redis::cmd("DEL").arg(&lease_key).query::<()>(&mut admin)?;
    Ok(())
}

/// The connection a login opened for its read before the prompt may have
/// gone stale by the time the answer comes (the server restarted): the
/// decision then takes a new one instead of failing.
fn a_connection_gone_stale_is_replaced(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions {
        appendonly: true,
        ..RedisOptions::default()
    })?;
    let u = user(12);
    let stack = host(ns, "stale", &url_of(&server));
    let config = twofactor_core::config::load(&stack.config_path, false)?;
    let states = LoginStates::new(&config, 0);
    let before = states.peek(&u.name, NOW)?;
    check(before.fallback.is_none(), "the server was not reached")?;
    server.restart()?;
    let local = states.local().lock(&u.name, 0, None)?;
    let mut held = states.hold(local, &u.name, NOW)?;
    held.state.spent_backup_codes.push("after-restart".into());
    held.save()?;
    check(
        shared_state(&server, &u)?.is_spent("after-restart"),
        "the decision after the restart was not stored",
    )
}

fn failures_count_per_host_fleet_wide(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    let u = user(11);
    let enrolled = Enrolled::standard();
    let config = format!("{}rate_limit_by_host = true\n", url_of(&server));
    let [a, b] = &hosts(ns, "byhost", &config, &u, &enrolled);
    let attacker = Some("192.0.2.66");
    let wrong = enrolled.wrong_code(NOW);
    // Three guesses from one address through host A, two through host B:
    // that address is locked on both.
    for i in 0..3 {
        a.login_from(&u.name, &[&wrong], NOW + i, attacker);
    }
    for i in 3..5 {
        b.login_from(&u.name, &[&wrong], NOW + i, attacker);
    }
    let right = enrolled.code_at(NOW + 30);
    let locked = a.login_from(&u.name, &[&right], NOW + 30, attacker);
    check(
        !accepted(&locked),
        "an address with 3 + 2 failures over two hosts was not locked",
    )?;
    // Another address is not.
    let elsewhere = b.login_from(&u.name, &[&right], NOW + 30, Some("192.0.2.7"));
    check(
        accepted(&elsewhere),
        format!("another address: {}", code::describe(elsewhere.code)),
    )
}

/// The fleet's guarantees whichever way the module is stacked: the code
/// alone at its prompt, or password and code in one answer (forward_pass,
/// use_first_pass, try_first_pass), with `rate_limit_by_host`.
fn every_stacking_mode_over_the_fleet(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    let config = format!(
        "state_backend = \"redis\"\n{}rate_limit_by_host = true\n",
        url_of(&server)
    );
    for (index, mode) in (13u32..).zip(PASS_MODES) {
        let name = if mode.is_empty() { "prompt" } else { mode };
        let u = user(index);
        let enrolled = Enrolled::standard();
        let [a, b]: [Stack; 2] = std::array::from_fn(|i| {
            let stack = Stack::in_pass_mode(
                ns,
                &format!("modes-{name}-{i}"),
                &test_clock_module(),
                mode,
                &config,
            );
            stack.enroll(&u, &enrolled);
            stack
        });
        let answer = |code: &str| answer_in_mode(mode, code);
        let home = Some("192.0.2.10");
        // A code accepted on A is refused on B.
        let code_now = answer(&enrolled.code_at(NOW));
        let result = a.login_from(&u.name, &[&code_now], NOW, home);
        check(
            accepted(&result),
            format!("{name}: host A: {}", result.code),
        )?;
        let result = b.login_from(&u.name, &[&code_now], NOW + 1, home);
        check(
            !accepted(&result),
            format!("{name}: host B accepted host A's code"),
        )?;
        // A backup code spent on B is refused on A.
        let backup = answer(&enrolled.backup_codes[0]);
        let result = b.login_from(&u.name, &[&backup], NOW + 2, home);
        check(
            accepted(&result),
            format!("{name}: backup code on B: {}", result.code),
        )?;
        let result = a.login_from(&u.name, &[&backup], NOW + 3, home);
        check(
            !accepted(&result),
            format!("{name}: host A accepted a backup code spent on B"),
        )?;
        // One address's budget is shared by the hosts: 3 guesses on A and
        // 2 on B lock it on both; another address is not locked.
        let wrong = answer(&enrolled.wrong_code(NOW + 30));
        let attacker = Some("192.0.2.66");
        for (stack, count) in [(&a, 3), (&b, 2)] {
            for i in 0..count {
                stack.login_from(&u.name, &[&wrong], NOW + 30 + i, attacker);
            }
        }
        let right = answer(&enrolled.code_at(NOW + 60));
        let result = a.login_from(&u.name, &[&right], NOW + 60, attacker);
        check(
            !accepted(&result),
            format!("{name}: a locked address got in through host A"),
        )?;
        let result = b.login_from(&u.name, &[&right], NOW + 61, Some("192.0.2.7"));
        check(
            accepted(&result),
            format!("{name}: another address was locked too: {}", result.code),
        )?;
        // 15 more addresses, one guess each over both hosts: the all-hosts
        // budget of 20 checked in all, then a fresh address is refused.
        for i in 0..15u64 {
            let stack = if i % 2 == 0 { &a } else { &b };
            let from = format!("198.51.100.{}", i + 1);
            stack.login_from(&u.name, &[&wrong], NOW + 70 + i, Some(&from));
        }
        let checked = failures(&shared_state(&server, &u)?, FailureKind::Code);
        check(
            checked == 20,
            format!("{name}: {checked} guesses checked over the fleet, not 20"),
        )?;
        let right = answer(&enrolled.code_at(NOW + 120));
        let result = a.login_from(&u.name, &[&right], NOW + 120, Some("203.0.113.9"));
        check(
            !accepted(&result),
            format!("{name}: a fresh address got in past the all-hosts budget"),
        )?;
    }
    Ok(())
}

/// A grace period with the shared state: earned from an address through a
/// service, it holds for that address on every host, for no other address.
fn grace_over_the_fleet(ns: &TestNamespace) -> Result<(), Failed> {
    let server = RedisServer::start(RedisOptions::default())?;
    let u = user(17);
    let enrolled = Enrolled::standard();
    let config = format!("{}grace_period = 300\n", url_of(&server));
    let [a, b] = &hosts(ns, "grace", &config, &u, &enrolled);
    // Grace is scoped by PAM service: host B's stack under host A's
    // service name (its own configuration and state directory still).
    fs::copy(b.confdir.join(&b.service), b.confdir.join(&a.service))?;
    let on_b = |answers: &[&str], now: u64, from: &str| {
        pam_client::authenticate(
            &b.confdir,
            &a.service,
            &u.name,
            &Attempt {
                answers: answers.iter().map(|a| a.to_string()).collect(),
                rhost: Some(from.to_string()),
                env: vec![format!("PAM_TWOFACTOR_TEST_NOW={now}")],
                ..Attempt::default()
            },
        )
    };
    let home = "192.0.2.10";
    let result = a.login_from(&u.name, &[&enrolled.code_at(NOW)], NOW, Some(home));
    check(accepted(&result), format!("host A: {}", result.code))?;
    let result = on_b(&[], NOW + 10, home);
    check(
        accepted(&result) && result.prompts().is_empty(),
        format!("the same address on host B within the grace: {result:?}"),
    )?;
    let result = on_b(&[], NOW + 10, "192.0.2.11");
    check(
        !accepted(&result) && result.prompts().len() == 1,
        format!("another address on host B: {result:?}"),
    )?;
    // Host B's own service is another service: no grace there.
    let result = b.login_from(&u.name, &[], NOW + 20, Some(home));
    check(
        !accepted(&result) && result.prompts().len() == 1,
        format!("another service on host B: {result:?}"),
    )
}

fn keys_of_odd_names_stay_apart(_ns: &TestNamespace) -> Result<(), Failed> {
    let names = ["a", "a}", "{a", "a:b", "a b", "ä", "a\u{0}", "tf:{x}:state"];
    let keys: HashSet<String> = names.iter().map(|n| account_keys("tf", n).0).collect();
    check(keys.len() == names.len(), format!("{keys:?}"))?;
    for key in &keys {
        let tag = &key[key.find('{').ok_or("no tag")? + 1..key.find('}').ok_or("no tag")?];
        check(
            tag.bytes().all(|b| b.is_ascii_hexdigit()),
            format!("key {key:?}"),
        )?;
    }
    Ok(())
}

fn main() {
    let ns = namespace::enter();
    run_trials(
        ns,
        vec![
            (
                "codes_and_backup_codes_are_spent_fleet_wide",
                codes_and_backup_codes_are_spent_fleet_wide,
            ),
            ("failures_on_all_hosts_add_up", failures_on_all_hosts_add_up),
            ("concurrent_logins_over_hosts", concurrent_logins_over_hosts),
            (
                "unavailable_server_fails_closed_in_time",
                unavailable_server_fails_closed_in_time,
            ),
            (
                "the_host_state_refuses_what_the_server_lost",
                the_host_state_refuses_what_the_server_lost,
            ),
            (
                "switching_on_brings_the_host_state_along",
                switching_on_brings_the_host_state_along,
            ),
            ("sentinel_failover", sentinel_failover),
            ("tls_and_acl", tls_and_acl),
            ("keys_of_odd_names_stay_apart", keys_of_odd_names_stay_apart),
            (
                "every_stacking_mode_over_the_fleet",
                every_stacking_mode_over_the_fleet,
            ),
            ("grace_over_the_fleet", grace_over_the_fleet),
            (
                "the_tool_works_on_the_shared_state",
                the_tool_works_on_the_shared_state,
            ),
            (
                "the_lease_serializes_and_fences",
                the_lease_serializes_and_fences,
            ),
            (
                "failures_count_per_host_fleet_wide",
                failures_count_per_host_fleet_wide,
            ),
            (
                "a_connection_gone_stale_is_replaced",
                a_connection_gone_stale_is_replaced,
            ),
        ],
    );
}
