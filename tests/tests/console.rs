//! Console and local logins end to end: the real `login` (run as root on a
//! pseudo-terminal), `su -` (run by an unprivileged user) and `sudo`, each
//! with Debian's own PAM stack plus the production module (real clock)
//! right after `@include common-auth`, bind-mounted over /etc/pam.d/<svc>
//! inside the test namespace. Each case logs in a freshly enrolled account,
//! so a TOTP code is never refused as a replay of another case's.
//!
//! login, su and sudo do not let a caller set the PAM environment, so the
//! test clock cannot be used: codes are computed for the current time.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libtest_mimic::{Arguments, Failed, Trial};
use twofactor_integration_tests::checks::ensure as check;
use twofactor_integration_tests::fixtures::Enrolled;
use twofactor_integration_tests::namespace::{self, bind_file, TestNamespace};
use twofactor_integration_tests::production_module;
use twofactor_integration_tests::sshd::{syslog_mark, syslog_since};
use twofactor_integration_tests::terminal::Console;
use twofactor_integration_tests::users::{user, TestUser, PASSWORD};

const PROMPT: &str = "Verification code: ";
/// The unprivileged user who runs `su -`.
const SU_CALLER: u32 = 30;

struct World {
    dir: PathBuf,
}

struct Shared {
    ns: TestNamespace,
    world: OnceLock<Result<World, String>>,
}

impl Shared {
    fn world(&self) -> Result<&World, Failed> {
        self.world
            .get_or_init(|| World::set_up(&self.ns))
            .as_ref()
            .map_err(|why| format!("setting up the console stacks failed: {why}").into())
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("write {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// The installed /etc/pam.d/<service> with the module right after
/// `@include common-auth`: the password first, then the code, as the
/// administrator's guide (docs/admin-guide.md) says, and as pam-auth-update's
/// profile does.
fn stack_with_module(service: &str, config: &Path) -> Result<String, String> {
    let installed = fs::read_to_string(Path::new("/etc/pam.d").join(service)).map_err(|e| {
        format!("read /etc/pam.d/{service} (is the program installed? scripts/install-deps.sh --test): {e}")
    })?;
    let module_line = format!(
        "auth requisite {} config={}",
        production_module().display(),
        config.display()
    );
    let mut out = String::new();
    let mut inserted = 0;
    for line in installed.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim() == "@include common-auth" {
            out.push_str(&module_line);
            out.push('\n');
            inserted += 1;
        }
    }
    if inserted != 1 {
        return Err(format!(
            "/etc/pam.d/{service} has {inserted} `@include common-auth` lines, expected one"
        ));
    }
    Ok(out)
}

impl World {
    fn set_up(ns: &TestNamespace) -> Result<World, String> {
        let dir = ns.scratch.join("console");
        fs::create_dir(&dir).map_err(|e| format!("mkdir: {e}"))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod: {e}"))?;
        let enroll_root = dir.join("enroll");
        fs::create_dir(&enroll_root).map_err(|e| format!("mkdir: {e}"))?;
        fs::set_permissions(&enroll_root, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod: {e}"))?;
        let config = dir.join("pam_twofactor.toml");
        write_file(
            &config,
            &format!(
                "enrollment_path = \"{}/%u/enrollment.json\"\nstate_dir = \"{}\"\n",
                enroll_root.display(),
                dir.join("state").display()
            ),
            0o644,
        )?;
        for service in ["login", "su", "sudo"] {
            let file = dir.join(format!("pam-{service}"));
            write_file(&file, &stack_with_module(service, &config)?, 0o644)?;
            bind_file(&file, &Path::new("/etc/pam.d").join(service));
        }
        // sudo: the enrolled callers may run anything; no cached credentials
        // (every case authenticates), no lecture, timestamps in the scratch
        // directory rather than the host's /run/sudo.
        let mut sudoers = String::from(
            "Defaults env_reset\nDefaults lecture=never\nDefaults timestamp_timeout=0\n\
             Defaults passwd_tries=1\nDefaults !mail_badpass\n",
        );
        sudoers.push_str(&format!(
            "Defaults timestampdir={}\nroot ALL=(ALL:ALL) ALL\n",
            dir.join("sudo-ts").display()
        ));
        for case in SUDO_USERS {
            sudoers.push_str(&format!("{} ALL=(ALL:ALL) ALL\n", user(case).name));
        }
        let sudoers_file = dir.join("sudoers");
        write_file(&sudoers_file, &sudoers, 0o440)?;
        bind_file(&sudoers_file, Path::new("/etc/sudoers"));
        // login and su record sessions and failures: keep the host's
        // records free of test accounts.
        for record in [
            "/var/log/wtmp",
            "/var/log/btmp",
            "/var/log/lastlog",
            "/run/utmp",
        ] {
            let record = Path::new(record);
            if record.exists() {
                let copy = dir.join(record.file_name().unwrap_or_default());
                write_file(&copy, "", 0o664)?;
                bind_file(&copy, record);
            }
        }
        Ok(World { dir })
    }

    /// Enroll `account` (TOTP and ten backup codes) where the stacks'
    /// configuration looks.
    fn enroll(&self, account: &TestUser) -> Result<Enrolled, String> {
        let enrolled = Enrolled::standard();
        let dir = self.dir.join("enroll").join(&account.name);
        fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let path = dir.join("enrollment.json");
        write_file(&path, &enrolled.enrollment.to_json(), 0o600)?;
        for (p, mode) in [(&dir, 0o700), (&path, 0o600)] {
            chown(p, Some(account.uid), Some(account.uid)).map_err(|e| format!("chown: {e}"))?;
            fs::set_permissions(p, fs::Permissions::from_mode(mode))
                .map_err(|e| format!("chmod: {e}"))?;
        }
        Ok(enrolled)
    }
}

/// A code that no step near now accepts.
fn wrong_code(enrolled: &Enrolled) -> String {
    let t = now();
    let nearby: Vec<String> = (0..7).map(|i| enrolled.code_at(t + i * 30 - 90)).collect();
    (0..1_000_000u64)
        .map(|n| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
        .find(|c| !nearby.contains(c))
        .expect("some code is wrong")
}

/// How the second factor is answered in a case.
#[derive(Clone, Copy)]
enum Answer {
    Totp,
    Wrong,
    Backup,
}

const LOGIN_USERS: [u32; 3] = [0, 1, 2];
const SU_USERS: [u32; 3] = [3, 4, 5];
const SUDO_USERS: [u32; 3] = [6, 7, 8];

struct Case {
    service: &'static str,
    /// The account whose factors are asked for.
    account: TestUser,
    answer: Answer,
}

impl Case {
    fn answer_text(&self, enrolled: &Enrolled) -> String {
        match self.answer {
            Answer::Totp => enrolled.code_at(now()),
            Answer::Wrong => wrong_code(enrolled),
            Answer::Backup => enrolled.backup_codes[0].clone(),
        }
    }

    /// Start the program of the case on a terminal.
    fn spawn(&self) -> Result<Console, String> {
        match self.service {
            "login" => Console::spawn("login", &[&self.account.name]),
            "su-l" => {
                let caller = user(SU_CALLER);
                Console::spawn(
                    "setpriv",
                    &[
                        &format!("--reuid={}", caller.uid),
                        &format!("--regid={}", caller.uid),
                        "--init-groups",
                        "su",
                        "-",
                        &self.account.name,
                    ],
                )
            }
            _ => Console::spawn(
                "setpriv",
                &[
                    &format!("--reuid={}", self.account.uid),
                    &format!("--regid={}", self.account.uid),
                    "--init-groups",
                    "sudo",
                    "/bin/sh",
                    "-c",
                    "echo ran-as-$(id -un)",
                ],
            ),
        }
    }
}

fn run_case(shared: &Shared, case: &Case) -> Result<(), Failed> {
    let world = shared.world()?;
    let enrolled = world.enroll(&case.account)?;
    let answer = case.answer_text(&enrolled);
    let mark = syslog_mark();
    let started = Instant::now();
    let mut console = case.spawn()?;
    console.expect("assword")?;
    console.expect(": ")?;
    console.send(&format!("{PASSWORD}\n"))?;
    console.expect(PROMPT)?;
    console.send(&format!("{answer}\n"))?;

    let success_marker = match case.service {
        "sudo" => "ran-as-root".to_string(),
        _ => format!("logged-in-{}", case.account.name),
    };
    match (case.answer, case.service) {
        (Answer::Wrong, "login") => {
            console.expect("Login incorrect")?;
        }
        (Answer::Wrong, "su-l") => {
            console.expect("Authentication failure")?;
            let status = console.wait(Duration::from_secs(10))?;
            check(!status.success(), || format!("su exited with {status}"))?;
        }
        (Answer::Wrong, _) => {
            let status = console.wait(Duration::from_secs(10))?;
            check(!status.success(), || {
                format!("sudo exited with {status}:\n{}", console.screen())
            })?;
        }
        (_, "sudo") => {
            // sudo authenticates with PAM_SILENT (its pam_silent default), so
            // the module keeps "Backup code accepted" to itself.
            console.expect(&success_marker)?;
            let status = console.wait(Duration::from_secs(10))?;
            check(status.success(), || format!("sudo exited with {status}"))?;
        }
        (_, _) => {
            if matches!(case.answer, Answer::Backup) {
                console.expect("Backup code accepted. 9 backup codes left.")?;
            }
            console.expect("$ ")?;
            console.send("echo logged-in-$(id -un); exit\n")?;
            console.expect(&success_marker)?;
        }
    }
    let elapsed = started.elapsed();
    let screen = console.hang_up();
    let logged_in = screen
        .lines()
        .any(|l| l.trim() == success_marker || l.trim_end().ends_with(&success_marker));
    let expect_success = !matches!(case.answer, Answer::Wrong);
    check(logged_in == expect_success, || {
        format!(
            "{}: expected {}, the terminal shows:\n{screen}",
            case.service,
            if expect_success {
                "a shell"
            } else {
                "a refusal"
            }
        )
    })?;
    check(!screen.contains(&answer), || {
        format!("the typed code was echoed:\n{screen}")
    })?;

    let tag = format!("pam_twofactor({}:auth)", case.service);
    let field = format!("user={}", case.account.name);
    let lines: Vec<String> = syslog_since(mark)?
        .into_iter()
        .filter(|l| l.contains(&tag) && l.contains(&field))
        .collect();
    let expected = match case.answer {
        Answer::Totp => "second factor accepted",
        Answer::Backup => "second factor accepted",
        Answer::Wrong => "second factor refused: wrong code",
    };
    check(lines.iter().any(|l| l.contains(expected)), || {
        format!("no module line {expected:?} with {tag} for {field}: {lines:#?}")
    })?;
    if let Answer::Backup = case.answer {
        check(
            lines.iter().any(|l| l.contains("method=backup-code")),
            || format!("{lines:#?}"),
        )?;
    }
    check(
        lines
            .iter()
            .all(|l| !l.contains(&answer) && !l.contains(PASSWORD)),
        || format!("a log line holds what was typed: {lines:#?}"),
    )?;
    eprintln!(
        "  {} {:?}: {:.1} s",
        case.service,
        match case.answer {
            Answer::Totp => "totp",
            Answer::Wrong => "wrong",
            Answer::Backup => "backup",
        },
        elapsed.as_secs_f64()
    );
    Ok(())
}

fn main() {
    let shared = Arc::new(Shared {
        ns: namespace::enter(),
        world: OnceLock::new(),
    });
    let args = Arguments::from_args();
    let answers = [
        ("correct_code", Answer::Totp),
        ("wrong_code", Answer::Wrong),
        ("backup_code", Answer::Backup),
    ];
    let mut trials = Vec::new();
    for (service, name, users) in [
        ("login", "login", LOGIN_USERS),
        ("su-l", "su", SU_USERS),
        ("sudo", "sudo", SUDO_USERS),
    ] {
        for ((label, answer), index) in answers.iter().zip(users) {
            let shared = Arc::clone(&shared);
            let case = Case {
                service,
                account: user(index),
                answer: *answer,
            };
            trials.push(Trial::test(format!("{name}_{label}"), move || {
                run_case(&shared, &case)
            }));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop(shared);
    conclusion.exit();
}
