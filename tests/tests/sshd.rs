//! Logins through a real OpenSSH server and client: `/usr/sbin/sshd` with
//! `UsePAM yes` and the production module (real clock) in its PAM stack,
//! accounts enrolled by the real `twofactor` tool, `ssh` answering the
//! module's prompt through an askpass script.
//!
//! One sshd serves every trial. tf-user37 logs in with keyboard-interactive
//! alone; a Match block makes tf-user38 need a public key first; tf-user36
//! is guessed at from many source addresses (failures count per host);
//! tf-user34's logins go to the module configured with the Redis backend.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use libtest_mimic::{Arguments, Failed, Trial};
use twofactor_integration_tests::checks::ensure as check;
use twofactor_integration_tests::fixtures::Stack;
use twofactor_integration_tests::namespace::{self, bind_file, TestNamespace};
use twofactor_integration_tests::pam_client::code;
use twofactor_integration_tests::redis_servers::{RedisOptions, RedisServer};
use twofactor_integration_tests::sshd::{
    enroll_with_tool, generate_key, run_ssh, syslog_flushed, syslog_mark, syslog_since, SshOutcome,
    SshServer, ToolEnrollment,
};
use twofactor_integration_tests::terminal::Console;
use twofactor_integration_tests::users::{user, TestUser};
use twofactor_integration_tests::{production_module, test_clock_module};

const CODE_ONLY_USER: u32 = 37;
const KEY_AND_CODE_USER: u32 = 38;
const ROTATED_USER: u32 = 36;
const LOW_CODES_USER: u32 = 35;
const FLEET_USER: u32 = 34;
const REMOTE_COMMAND: &str = "echo logged-in-$(id -un)";
const PROMPT: &str = "Verification code:";

/// An enrolled account. Trials lock it for their whole run: one login at a
/// time per account, so the module lines naming it after a trial's mark
/// come from that trial's own attempts.
struct Account {
    user: TestUser,
    enrollment: ToolEnrollment,
}

struct World {
    server: SshServer,
    dir: PathBuf,
    client_key: PathBuf,
    code_only: Mutex<Account>,
    key_and_code: Mutex<Account>,
    rotated: Mutex<Account>,
    low_codes: Mutex<Account>,
    /// Routed to the Redis backend.
    fleet: Mutex<Account>,
    redis: RedisServer,
    fleet_config: PathBuf,
    state_dir: PathBuf,
    attempts: AtomicUsize,
}

/// Built by the first trial that needs it; later trials get the same
/// result, so a broken setup fails each of them with its reason.
struct Shared {
    ns: TestNamespace,
    world: OnceLock<Result<World, String>>,
}

impl Shared {
    fn world(&self) -> Result<&World, Failed> {
        self.world
            .get_or_init(|| World::set_up(&self.ns))
            .as_ref()
            .map_err(|why| format!("setting up sshd failed: {why}").into())
    }
}

fn lock(account: &Mutex<Account>) -> MutexGuard<'_, Account> {
    // A trial that panicked holding the lock leaves the account usable.
    account.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn write_root_file(path: &Path, contents: &str, mode: u32) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("write {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// `public_key` as the only line of the user's ~/.ssh/authorized_keys, with
/// the ownership and modes sshd's StrictModes demands.
fn authorize_key(account: &TestUser, public_key: &Path) -> Result<(), String> {
    let ssh_dir = account.home.join(".ssh");
    let keys = ssh_dir.join("authorized_keys");
    fs::create_dir_all(&ssh_dir).map_err(|e| format!("mkdir {}: {e}", ssh_dir.display()))?;
    fs::copy(public_key, &keys).map_err(|e| format!("copy the public key: {e}"))?;
    for (path, mode) in [(&ssh_dir, 0o700), (&keys, 0o600)] {
        chown(path, Some(account.uid), Some(account.uid))
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The installed /etc/pam.d/sshd as docs/admin-guide.md ("SSH") tells an
/// administrator to change it for the code alone: `@include common-auth`
/// (pam_unix would ask for a password as well) replaced by the module. The
/// rest of Debian's stack (nologin, common-account, loginuid, limits, env,
/// common-session, motd) stays, so the login goes through everything a real
/// one does. `fleet_user` is routed (pam_succeed_if) to the module with
/// `fleet_config`, the Redis backend; everyone else to `config`.
fn sshd_stack(config: &Path, fleet_config: &Path, fleet_user: &str) -> Result<String, String> {
    let installed = fs::read_to_string("/etc/pam.d/sshd")
        .map_err(|e| format!("read /etc/pam.d/sshd (is openssh-server installed?): {e}"))?;
    let module = production_module();
    let module_line = format!(
        "auth [success=2 default=ignore] pam_succeed_if.so quiet user = {fleet_user}\n\
         auth requisite {} config={}\n\
         auth [success=1 default=ignore] pam_permit.so\n\
         auth requisite {} config={}",
        module.display(),
        config.display(),
        module.display(),
        fleet_config.display()
    );
    let mut replaced = 0;
    let lines: Vec<String> = installed
        .lines()
        .map(|line| {
            if line.trim() == "@include common-auth" {
                replaced += 1;
                module_line.clone()
            } else {
                line.to_string()
            }
        })
        .collect();
    if replaced != 1 {
        return Err(format!(
            "/etc/pam.d/sshd has {replaced} `@include common-auth` lines, expected Debian's one:\n{installed}"
        ));
    }
    Ok(lines.join("\n") + "\n")
}

fn enroll(index: u32, config: &Path) -> Result<Account, String> {
    let account = user(index);
    let enrollment = enroll_with_tool(&account.name, config)?;
    // The configuration leaves enrollment_path at its default.
    let expected = account.home.join(".config/twofactor/enrollment.json");
    if enrollment.enrollment_path != expected || !expected.is_file() {
        return Err(format!(
            "the tool wrote {}, expected the default {}",
            enrollment.enrollment_path.display(),
            expected.display()
        ));
    }
    Ok(Account {
        user: account,
        enrollment,
    })
}

impl World {
    fn set_up(ns: &TestNamespace) -> Result<World, String> {
        let dir = ns.scratch.join("sshd");
        fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;

        let config = dir.join("pam_twofactor.toml");
        write_root_file(
            &config,
            &format!(
                "state_dir = \"{}\"\nrate_limit_by_host = true\n",
                dir.join("state").display()
            ),
            0o644,
        )?;
        let redis = RedisServer::start(RedisOptions::default())?;
        let fleet_config = dir.join("pam_twofactor-fleet.toml");
        write_root_file(
            &fleet_config,
            &format!(
                "state_dir = \"{}\"\nstate_backend = \"redis\"\nredis_url = \"{}\"\n\
                 redis_wait_replicas = 0\n",
                dir.join("fleet-state").display(),
                redis.url()
            ),
            0o644,
        )?;
        let pam_file = dir.join("pam-sshd");
        write_root_file(
            &pam_file,
            &sshd_stack(&config, &fleet_config, &user(FLEET_USER).name)?,
            0o644,
        )?;
        bind_file(&pam_file, Path::new("/etc/pam.d/sshd"));

        let code_only = enroll(CODE_ONLY_USER, &config)?;
        let key_and_code = enroll(KEY_AND_CODE_USER, &config)?;
        let rotated = enroll(ROTATED_USER, &config)?;
        let low_codes = enroll(LOW_CODES_USER, &config)?;
        let fleet = enroll(FLEET_USER, &fleet_config)?;
        let client_key = dir.join("client_ed25519");
        generate_key(&client_key)?;
        authorize_key(&key_and_code.user, &client_key.with_extension("pub"))?;

        let server = SshServer::start(
            &dir,
            &format!(
                "UsePAM yes\n\
                 KbdInteractiveAuthentication yes\n\
                 PasswordAuthentication no\n\
                 PubkeyAuthentication yes\n\
                 LogLevel VERBOSE\n\
                 Match User {}\n\
                 \tAuthenticationMethods publickey,keyboard-interactive\n",
                key_and_code.user.name
            ),
        )?;
        Ok(World {
            server,
            state_dir: dir.join("state"),
            dir,
            client_key,
            code_only: Mutex::new(code_only),
            key_and_code: Mutex::new(key_and_code),
            rotated: Mutex::new(rotated),
            low_codes: Mutex::new(low_codes),
            fleet: Mutex::new(fleet),
            redis,
            fleet_config,
            attempts: AtomicUsize::new(0),
        })
    }

    /// Log in as `account` over SSH, typing `answer` at every prompt.
    fn ssh(&self, account: &TestUser, answer: &str, auth: ClientAuth) -> Result<Login, Failed> {
        self.ssh_from("127.0.0.1", account, answer, auth)
    }

    /// [`World::ssh`] from the client address `source` (on the loopback).
    fn ssh_from(
        &self,
        source: &str,
        account: &TestUser,
        answer: &str,
        auth: ClientAuth,
    ) -> Result<Login, Failed> {
        self.ssh_with(source, account, answer, auth, &[])
    }

    /// [`World::ssh_from`] with more client options (`-q`).
    fn ssh_with(
        &self,
        source: &str,
        account: &TestUser,
        answer: &str,
        auth: ClientAuth,
        extra: &[&str],
    ) -> Result<Login, Failed> {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        let mut options: Vec<String> = extra.iter().map(|o| o.to_string()).collect();
        let mut option = |value: &str| options.extend(["-o".to_string(), value.to_string()]);
        match auth {
            ClientAuth::CodeOnly => option("PreferredAuthentications=keyboard-interactive"),
            ClientAuth::KeyThenCode => {
                option("PreferredAuthentications=publickey,keyboard-interactive");
                option("IdentitiesOnly=yes");
                option(&format!("IdentityFile={}", self.client_key.display()));
            }
            ClientAuth::CodeWithoutKey => {
                option("PreferredAuthentications=publickey,keyboard-interactive");
                option("IdentitiesOnly=yes");
                // Not even root's default ~/.ssh/id_* files.
                option("IdentityFile=none");
            }
        }
        option(&format!("BindAddress={source}"));
        let mark = syslog_mark();
        let outcome = run_ssh(
            &self.dir.join(format!("client-{attempt}")),
            self.server.port,
            &options,
            &format!("{}@127.0.0.1", account.name),
            REMOTE_COMMAND,
            answer,
        )
        .map_err(|why| format!("{why}{}", self.server.log()))?;
        let module_lines = syslog_since(mark)?
            .into_iter()
            .filter(|line| line.contains("pam_twofactor(sshd:auth)") && names(line, account))
            .collect();
        Ok(Login {
            outcome,
            module_lines,
        })
    }

    /// Everything needed to understand a failed assertion about `login`.
    fn explain(&self, login: &Login) -> String {
        format!(
            "{}\nmodule lines: {:#?}{}",
            login.outcome.describe(),
            login.module_lines,
            self.server.log()
        )
    }

    /// No log line anywhere (syslog, sshd's log file) holds what was typed.
    fn assert_not_logged(&self, typed: &[&str]) -> Result<(), Failed> {
        let syslog = syslog_flushed()?;
        let sshd_log = self.server.log_file();
        for secret in typed {
            let leaks: Vec<&String> = syslog.iter().filter(|l| l.contains(secret)).collect();
            check(leaks.is_empty(), || {
                format!("syslog lines contain a typed code: {leaks:#?}")
            })?;
            check(!sshd_log.contains(secret), || {
                format!("sshd's log contains a typed code:{}", self.server.log())
            })?;
        }
        Ok(())
    }
}

enum ClientAuth {
    /// keyboard-interactive only.
    CodeOnly,
    /// The authorized key, then keyboard-interactive.
    KeyThenCode,
    /// publickey and keyboard-interactive allowed, but no key to offer.
    CodeWithoutKey,
}

struct Login {
    outcome: SshOutcome,
    /// The module's lines about this account during the login.
    module_lines: Vec<String>,
}

impl Login {
    fn logged_in_as(&self, account: &TestUser) -> bool {
        let expected = format!("logged-in-{}", account.name);
        self.outcome.status.success() && self.outcome.stdout.lines().any(|l| l == expected)
    }

    fn command_ran(&self) -> bool {
        self.outcome.stdout.contains("logged-in-")
    }

    fn refused(&self) -> bool {
        !self.outcome.status.success() && !self.command_ran()
    }

    fn asked_once_for_a_code(&self) -> bool {
        self.outcome.prompts.len() == 1 && self.outcome.prompts[0].contains(PROMPT)
    }

    fn module_logged(&self, needle: &str) -> bool {
        self.module_lines.iter().any(|l| l.contains(needle))
    }

    /// What the askpass helper was shown, lines joined again.
    fn prompt_text(&self) -> String {
        self.outcome.prompts.join("\n")
    }
}

fn names(line: &str, account: &TestUser) -> bool {
    let field = format!("user={}", account.name);
    line.contains(&format!("{field} ")) || line.ends_with(&field)
}

/// A code of the right length that no step near now accepts (window 1,
/// plus one step for the clock moving on while ssh connects).
fn wrong_code(enrollment: &ToolEnrollment) -> String {
    let totp = &enrollment.totp;
    let t = now();
    let nearby: Vec<String> = [
        t - 2 * totp.period,
        t - totp.period,
        t,
        t + totp.period,
        t + 2 * totp.period,
    ]
    .iter()
    .map(|&at| totp.code_at(at).to_string())
    .collect();
    let modulus = 10u64.pow(u32::from(totp.digits));
    let right: u64 = nearby[2].parse().expect("codes are digits");
    (1..)
        .map(|offset| {
            format!(
                "{:0width$}",
                (right + offset) % modulus,
                width = usize::from(totp.digits)
            )
        })
        .find(|candidate| !nearby.contains(candidate))
        .expect("some code is wrong")
}

fn totp_code_logs_in(shared: &Shared) -> Result<(), Failed> {
    let world = shared.world()?;
    let account = lock(&world.code_only);
    let code = account.enrollment.totp.code_at(now()).to_string();
    let login = world.ssh(&account.user, &code, ClientAuth::CodeOnly)?;
    check(login.logged_in_as(&account.user), || {
        format!(
            "a correct TOTP code did not log in:\n{}",
            world.explain(&login)
        )
    })?;
    check(login.asked_once_for_a_code(), || {
        format!(
            "expected one prompt with {PROMPT:?}:\n{}",
            world.explain(&login)
        )
    })?;
    // sshd told the module where the login comes from.
    check(
        login.module_logged(&format!(
            "second factor accepted: user={} rhost=127.0.0.1",
            account.user.name
        )) && login.module_logged("method=totp"),
        || {
            format!(
                "no acceptance line with method=totp:\n{}",
                world.explain(&login)
            )
        },
    )?;
    world.assert_not_logged(&[&code])
}

fn wrong_code_is_refused(shared: &Shared) -> Result<(), Failed> {
    let world = shared.world()?;
    let account = lock(&world.code_only);
    let wrong = wrong_code(&account.enrollment);
    let login = world.ssh(&account.user, &wrong, ClientAuth::CodeOnly)?;
    check(login.refused(), || {
        format!("a wrong code was not refused:\n{}", world.explain(&login))
    })?;
    check(login.asked_once_for_a_code(), || {
        format!(
            "expected one prompt with {PROMPT:?}:\n{}",
            world.explain(&login)
        )
    })?;
    check(
        login.module_logged("second factor refused: wrong code"),
        || {
            format!(
                "no refusal line for the wrong code:\n{}",
                world.explain(&login)
            )
        },
    )?;
    check(!login.module_logged("second factor accepted"), || {
        format!("the module accepted something:\n{}", world.explain(&login))
    })?;
    world.assert_not_logged(&[&wrong])
}

fn backup_code_works_once(shared: &Shared) -> Result<(), Failed> {
    let world = shared.world()?;
    let account = lock(&world.code_only);
    let backup = account.enrollment.backup_codes[0].clone();
    let first = world.ssh(&account.user, &backup, ClientAuth::CodeOnly)?;
    check(first.logged_in_as(&account.user), || {
        format!(
            "a fresh backup code did not log in:\n{}",
            world.explain(&first)
        )
    })?;
    // The module's PAM_TEXT_INFO travels through sshd's keyboard-interactive.
    check(
        first
            .outcome
            .stderr
            .contains("Backup code accepted. 9 backup codes left."),
        || {
            format!(
                "the remaining-codes message did not reach the client:\n{}",
                world.explain(&first)
            )
        },
    )?;
    check(first.module_logged("method=backup-code"), || {
        format!(
            "no acceptance line with method=backup-code:\n{}",
            world.explain(&first)
        )
    })?;
    let again = world.ssh(&account.user, &backup, ClientAuth::CodeOnly)?;
    check(again.refused(), || {
        format!(
            "a spent backup code logged in again:\n{}",
            world.explain(&again)
        )
    })?;
    check(
        again.module_logged("second factor refused: backup code already used"),
        || {
            format!(
                "no refusal line for the spent code:\n{}",
                world.explain(&again)
            )
        },
    )?;
    world.assert_not_logged(&[&backup])
}

fn public_key_and_code_are_both_required(shared: &Shared) -> Result<(), Failed> {
    let world = shared.world()?;
    let account = lock(&world.key_and_code);
    let code = account.enrollment.totp.code_at(now()).to_string();

    // First, while the code is still unused: a refusal now cannot be
    // blamed on replay protection, and the last step below shows the code
    // was good.
    let without_key = world.ssh(&account.user, &code, ClientAuth::CodeWithoutKey)?;
    check(without_key.refused(), || {
        format!(
            "logged in without the key:\n{}",
            world.explain(&without_key)
        )
    })?;
    check(
        without_key.outcome.prompts.is_empty() && without_key.module_lines.is_empty(),
        || {
            format!(
                "the code was asked for before the key was accepted:\n{}",
                world.explain(&without_key)
            )
        },
    )?;

    let wrong = wrong_code(&account.enrollment);
    let wrong_with_key = world.ssh(&account.user, &wrong, ClientAuth::KeyThenCode)?;
    check(wrong_with_key.refused(), || {
        format!(
            "the key with a wrong code logged in:\n{}",
            world.explain(&wrong_with_key)
        )
    })?;
    check(
        wrong_with_key.asked_once_for_a_code()
            && wrong_with_key.module_logged("second factor refused: wrong code"),
        || {
            format!(
                "the wrong code was not asked for and refused by the module:\n{}",
                world.explain(&wrong_with_key)
            )
        },
    )?;

    let with_key = world.ssh(&account.user, &code, ClientAuth::KeyThenCode)?;
    check(with_key.logged_in_as(&account.user), || {
        format!(
            "the key with a correct code did not log in:\n{}",
            world.explain(&with_key)
        )
    })?;
    check(
        with_key.asked_once_for_a_code() && with_key.module_logged("method=totp"),
        || {
            format!(
                "the login did not go through the module:\n{}",
                world.explain(&with_key)
            )
        },
    )?;
    check(
        world
            .server
            .log_file()
            .contains(&format!("Partial publickey for {}", account.user.name)),
        || {
            format!(
                "sshd did not log the key as the first of two steps:{}",
                world.server.log()
            )
        },
    )?;
    world.assert_not_logged(&[&code, &wrong])
}

/// Guessing from ever new source addresses under `rate_limit_by_host`: a
/// host's lock holds, and all hosts together get the all-hosts budget (20
/// per 15 minutes by default), not five guesses per address.
fn rotating_source_addresses_buys_a_bounded_budget(shared: &Shared) -> Result<(), Failed> {
    let world = shared.world()?;
    let account = lock(&world.rotated);
    let wrong = wrong_code(&account.enrollment);
    let state_path = world.state_dir.join(format!("{}.state", account.user.name));
    let code_failures = || -> Result<usize, Failed> {
        let text = fs::read_to_string(&state_path)?;
        let state = twofactor_core::state::LoginState::parse(&text, "sshd test")?;
        Ok(state
            .failures
            .iter()
            .filter(|f| f.kind == twofactor_core::state::FailureKind::Code)
            .count())
    };
    // One address guesses until its limit of five locks it.
    let mut runs = 0;
    loop {
        let login = world.ssh_from("127.0.0.2", &account.user, &wrong, ClientAuth::CodeOnly)?;
        runs += 1;
        if login.module_logged("lockout started") {
            break;
        }
        check(runs < 5, || format!("no lockout after {runs} runs"))?;
    }
    check(code_failures()? == 5, || {
        "five failures lock one address".to_string()
    })?;
    let right = account.enrollment.totp.code_at(now()).to_string();
    let login = world.ssh_from("127.0.0.2", &account.user, &right, ClientAuth::CodeOnly)?;
    check(
        login.refused() && login.module_logged("locked out until"),
        || format!("the locked address got in:\n{}", world.explain(&login)),
    )?;
    // Then one guess from each new address: only 15 more are checked, up to
    // the all-hosts budget of 20, however many addresses follow.
    for n in 3..28 {
        world.ssh_from(
            &format!("127.0.0.{n}"),
            &account.user,
            &wrong,
            ClientAuth::CodeOnly,
        )?;
    }
    let checked = code_failures()?;
    check(checked == 20, || {
        format!("{checked} guesses were checked from 26 addresses, expected 20")
    })?;
    let login = world.ssh_from("127.0.0.28", &account.user, &right, ClientAuth::CodeOnly)?;
    check(
        login.refused() && login.module_logged("locked out until"),
        || {
            format!(
                "a fresh address got in past the all-hosts budget:
{}",
                world.explain(&login)
            )
        },
    )?;
    check(code_failures()? == 20, || {
        "a locked attempt was counted".to_string()
    })?;
    world.assert_not_logged(&[&wrong, &right])
}

/// `ssh -tt ... ACCOUNT@127.0.0.1 [COMMAND]` on a terminal of its own, as a
/// person runs it: the code is typed at ssh's prompt.
fn ssh_on_terminal(
    world: &World,
    account: &TestUser,
    command: Option<&str>,
) -> Result<Console, Failed> {
    let port = world.server.port.to_string();
    let destination = format!("{}@127.0.0.1", account.name);
    let mut args = vec![
        "-F",
        "/dev/null",
        "-p",
        &port,
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "PreferredAuthentications=keyboard-interactive",
        "-o",
        "IdentityAgent=none",
        "-tt",
        &destination,
    ];
    args.extend(command);
    Ok(Console::spawn("ssh", &args)?)
}

/// A user running out of backup codes learns it over SSH, whatever the
/// client: the advice after a backup code is accepted comes after the last
/// prompt, which sshd sends as a banner that quiet clients (`ssh -q`) drop;
/// the reminder before the prompt is part of the prompt itself.
fn running_out_of_backup_codes_is_told_over_ssh(shared: &Shared) -> Result<(), Failed> {
    let world = shared.world()?;
    let account = lock(&world.low_codes);
    let user = &account.user;
    let codes = account.enrollment.backup_codes.clone();
    let advice = "Make new ones with `twofactor backup-codes`.";
    // Six codes used, four left: nothing said before the prompt; the count
    // after each, on stderr of a plain `ssh host command`.
    for (used, code) in codes[..7].iter().enumerate() {
        let login = world.ssh(user, code, ClientAuth::CodeOnly)?;
        let left = 9 - used;
        let accepted = format!(
            "Backup code accepted. {left} backup codes left.{}",
            if left <= 3 {
                format!(" {advice}")
            } else {
                String::new()
            }
        );
        check(
            login.logged_in_as(user)
                && login.asked_once_for_a_code()
                && !login.prompt_text().contains("left")
                && login.outcome.stderr.contains(&accepted),
            || format!("backup code {used}:\n{}", world.explain(&login)),
        )?;
    }

    // Three left. Quietly (-q), which drops what comes after the prompt:
    // the reminder is in the prompt.
    let reminder = "Only 3 backup codes left: make new ones with `twofactor backup-codes`.";
    let code = account.enrollment.totp.code_at(now()).to_string();
    let quiet = world.ssh_with("127.0.0.1", user, &code, ClientAuth::CodeOnly, &["-q"])?;
    check(
        quiet.logged_in_as(user)
            && quiet
                .prompt_text()
                .contains(&format!("{reminder}\nVerification code: "))
            && quiet.outcome.stderr.is_empty(),
        || format!("a quiet client with a code:\n{}", world.explain(&quiet)),
    )?;
    let quiet = world.ssh_with("127.0.0.1", user, &codes[7], ClientAuth::CodeOnly, &["-q"])?;
    check(
        quiet.logged_in_as(user)
            && quiet.prompt_text().contains(reminder)
            && !quiet.outcome.stderr.contains("Backup code accepted"),
        || {
            format!(
                "a quiet client with a backup code:\n{}",
                world.explain(&quiet)
            )
        },
    )?;

    // On a terminal, with a command: the reminder above the prompt, the
    // count after it.
    let mut terminal = ssh_on_terminal(world, user, Some("echo logged-in-$(id -un)"))?;
    terminal.expect(
        "Only 2 backup codes left: make new ones with `twofactor backup-codes`.\nVerification code: ",
    )?;
    terminal.send(&format!("{}\n", codes[8]))?;
    terminal.expect(&format!(
        "Backup code accepted. 1 backup code left. {advice}"
    ))?;
    terminal.expect(&format!("logged-in-{}", user.name))?;
    let status = terminal.wait(std::time::Duration::from_secs(20))?;
    check(status.success(), || {
        format!("ssh -tt: {status}\n{}", terminal.screen())
    })?;

    // A login shell: the same, and sshd repeats the count at the session's
    // start (unless ~/.hushlogin exists).
    let mut terminal = ssh_on_terminal(world, user, None)?;
    terminal.expect(
        "Only 1 backup code left: make new ones with `twofactor backup-codes`.\nVerification code: ",
    )?;
    terminal.send(&format!("{}\n", codes[9]))?;
    let accepted = format!("Backup code accepted. 0 backup codes left. {advice}");
    terminal.expect(&accepted)?;
    terminal.send("echo shell-$((6*7)); exit\n")?;
    terminal.expect("shell-42")?;
    let status = terminal.wait(std::time::Duration::from_secs(20))?;
    let screen = terminal.screen();
    check(
        status.success() && screen.matches(&accepted).count() == 2,
        || format!("login shell: {status}\n{screen}"),
    )?;

    // None left, TOTP still works: said before every prompt.
    let code = account.enrollment.totp.code_at(now() + 30).to_string();
    let login = world.ssh_with("127.0.0.1", user, &code, ClientAuth::CodeOnly, &["-q"])?;
    check(
        login.logged_in_as(user)
            && login.prompt_text().contains(
                "No backup codes left: make new ones with `twofactor backup-codes`.\nVerification code: ",
            ),
        || format!("no codes left:\n{}", world.explain(&login)),
    )?;
    Ok(())
}

type Test = fn(&Shared) -> Result<(), Failed>;

/// sshd with the Redis backend: the login is decided on the shared state,
/// so another host (a libpam stack with its own state directory on the
/// same server) refuses the code sshd accepted, and failures over SSH count
/// on the server.
fn fleet_backend_end_to_end(shared: &Shared) -> Result<(), Failed> {
    let world = shared.world()?;
    let account = lock(&world.fleet);
    let t = now();
    let code_now = account.enrollment.totp.code_at(t).to_string();
    let login = world.ssh(&account.user, &code_now, ClientAuth::CodeOnly)?;
    check(login.logged_in_as(&account.user), || {
        format!(
            "a correct code with the Redis backend did not log in:\n{}",
            world.explain(&login)
        )
    })?;
    let key = twofactor_core::shared_state::account_keys("tf", &account.user.name).0;
    let shared_state = || -> Result<twofactor_core::state::LoginState, Failed> {
        let mut admin = world.redis.admin()?;
        let text: Option<String> = redis::cmd("GET").arg(&key).query(&mut admin)?;
        Ok(twofactor_core::state::LoginState::parse(
            text.as_deref().unwrap_or(""),
            &key,
        )?)
    };
    let step = t / account.enrollment.totp.period;
    let stored = shared_state()?.newest_totp_step();
    check(stored.is_some_and(|s| s + 1 >= step), || {
        format!("the server holds step {stored:?} after a login at step {step}")
    })?;
    // Another host of the fleet: its own state directory, the same server.
    let other = Stack::new(
        &shared.ns,
        "fleet-other-host",
        &test_clock_module(),
        "",
        &fs::read_to_string(&world.fleet_config)?
            .lines()
            .filter(|l| !l.starts_with("state_dir"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    other.write_enrollment_text(
        &account.user,
        &fs::read_to_string(&account.enrollment.enrollment_path)?,
    );
    let replay = other.login_at(&account.user.name, &code_now, t);
    check(replay.code != code::SUCCESS, || {
        format!(
            "another host accepted the code sshd accepted: {}",
            code::describe(replay.code)
        )
    })?;
    let wrong = wrong_code(&account.enrollment);
    let before = shared_state()?.failures.len();
    let refused = world.ssh(&account.user, &wrong, ClientAuth::CodeOnly)?;
    check(refused.refused(), || {
        format!("a wrong code was not refused:\n{}", world.explain(&refused))
    })?;
    let after = shared_state()?.failures.len();
    check(after == before + 1, || {
        format!("failures on the server: {before} before a wrong code over SSH, {after} after")
    })?;
    world.assert_not_logged(&[&code_now, &wrong])
}

fn main() {
    let shared = Arc::new(Shared {
        ns: namespace::enter(),
        world: OnceLock::new(),
    });
    let args = Arguments::from_args();
    let tests: Vec<(&str, Test)> = vec![
        ("totp_code_logs_in", totp_code_logs_in),
        ("wrong_code_is_refused", wrong_code_is_refused),
        ("backup_code_works_once", backup_code_works_once),
        (
            "running_out_of_backup_codes_is_told_over_ssh",
            running_out_of_backup_codes_is_told_over_ssh,
        ),
        (
            "public_key_and_code_are_both_required",
            public_key_and_code_are_both_required,
        ),
        (
            "rotating_source_addresses_buys_a_bounded_budget",
            rotating_source_addresses_buys_a_bounded_budget,
        ),
        ("fleet_backend_end_to_end", fleet_backend_end_to_end),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let shared = Arc::clone(&shared);
            Trial::test(name, move || test(&shared))
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // exit() skips destructors: stop sshd before it.
    if let Some(Ok(world)) = shared.world.get() {
        world.server.stop();
        world.redis.stop();
    }
    drop(shared);
    conclusion.exit();
}
