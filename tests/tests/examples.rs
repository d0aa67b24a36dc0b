//! The example sshd_config drop-ins and pam.d snippets of config/examples,
//! used as docs/admin-guide.md tells administrators to use them: each drop-in's
//! settings given to a real sshd, each snippet put into Debian's
//! /etc/pam.d/sshd (bind-mounted in the test namespace) with the production
//! module, and real OpenSSH logins with and without each factor. Then
//! `twofactor doctor` must find nothing wrong with the same files.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use libtest_mimic::Failed;
use twofactor_integration_tests::checks::ensure as check;
use twofactor_integration_tests::namespace::{self, bind_file, TestNamespace};
use twofactor_integration_tests::run_trials;
use twofactor_integration_tests::sshd::{
    enroll_with_tool, generate_key, run_ssh_answering, SshOutcome, SshServer, ToolEnrollment,
};
use twofactor_integration_tests::users::{user, TestUser, PASSWORD};
use twofactor_integration_tests::{production_module, twofactor_binary};

const CODE: &str = "Verification code";

struct Shared {
    ns: TestNamespace,
    /// One example at a time: they all bind their stack over /etc/pam.d/sshd.
    serial: Mutex<()>,
    /// Debian's /etc/pam.d/sshd, read before any example replaced it.
    debian_sshd: String,
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .join("config/examples")
}

/// The lines of an example file that are not comments.
fn settings(name: &str) -> Result<Vec<String>, Failed> {
    Ok(fs::read_to_string(examples_dir().join(name))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// One example pair, set up: sshd running with the drop-in, the snippet in
/// /etc/pam.d/sshd, an enrolled account.
struct Example {
    dir: PathBuf,
    server: SshServer,
    account: TestUser,
    enrollment: ToolEnrollment,
    key: PathBuf,
    attempts: usize,
}

impl Example {
    fn set_up(shared: &Shared, name: &str, index: u32) -> Result<Example, Failed> {
        let ns = &shared.ns;
        let dir = ns.scratch.join(format!("example-{name}"));
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        let config = dir.join("pam_twofactor.toml");
        fs::write(
            &config,
            format!("state_dir = \"{}\"\n", dir.join("state").display()),
        )?;
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644))?;

        // Debian's /etc/pam.d/sshd with "@include common-auth" replaced by
        // the snippet, the module named by path and given the test config.
        let snippet: Vec<String> = settings(&format!("pam.d-sshd-{name}"))?
            .into_iter()
            .map(|line| {
                line.replace(
                    "pam_twofactor.so",
                    &format!(
                        "{} config={}",
                        production_module().display(),
                        config.display()
                    ),
                )
            })
            .collect();
        let installed = &shared.debian_sshd;
        check(
            installed
                .lines()
                .any(|l| l.trim() == "@include common-auth"),
            || "Debian's /etc/pam.d/sshd has no @include common-auth".into(),
        )?;
        let stack: Vec<String> = installed
            .lines()
            .flat_map(|line| {
                if line.trim() == "@include common-auth" {
                    snippet.clone()
                } else {
                    vec![line.to_string()]
                }
            })
            .collect();
        let pam_dir = dir.join("pam.d");
        fs::create_dir_all(&pam_dir)?;
        fs::write(pam_dir.join("sshd"), stack.join("\n") + "\n")?;
        fs::copy("/etc/pam.d/common-auth", pam_dir.join("common-auth"))?;
        bind_file(&pam_dir.join("sshd"), Path::new("/etc/pam.d/sshd"));

        let account = user(index);
        let enrollment = enroll_with_tool(&account.name, &config)?;
        let key = dir.join("client_ed25519");
        generate_key(&key)?;
        let ssh_dir = account.home.join(".ssh");
        fs::create_dir_all(&ssh_dir)?;
        fs::copy(key.with_extension("pub"), ssh_dir.join("authorized_keys"))?;
        for (path, mode) in [(&ssh_dir, 0o700), (&ssh_dir.join("authorized_keys"), 0o600)] {
            chown(path, Some(account.uid), Some(account.uid))?;
            fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        }
        let drop_in = settings(&format!("sshd_config.d-{name}.conf"))?.join("\n");
        let server = SshServer::start(&dir, &format!("{drop_in}\nLogLevel VERBOSE\n"))?;
        Ok(Example {
            dir,
            server,
            account,
            enrollment,
            key,
            attempts: 0,
        })
    }

    fn ssh(&mut self, with_key: bool, answers: &[(&str, &str)]) -> Result<SshOutcome, Failed> {
        self.attempts += 1;
        let mut options = vec![
            "-o".to_string(),
            "PreferredAuthentications=publickey,keyboard-interactive".to_string(),
            "-o".to_string(),
            "IdentitiesOnly=yes".to_string(),
            "-o".to_string(),
        ];
        options.push(if with_key {
            format!("IdentityFile={}", self.key.display())
        } else {
            "IdentityFile=none".to_string()
        });
        Ok(run_ssh_answering(
            &self.dir.join(format!("client-{}", self.attempts)),
            self.server.port,
            &options,
            &format!("{}@127.0.0.1", self.account.name),
            "echo logged-in-$(id -un)",
            answers,
        )
        .map_err(|why| format!("{why}{}", self.server.log()))?)
    }

    fn logged_in(&self, outcome: &SshOutcome) -> bool {
        outcome.status.success()
            && outcome
                .stdout
                .lines()
                .any(|l| l == format!("logged-in-{}", self.account.name))
    }

    fn code(&self) -> String {
        self.enrollment.totp.code_at(now()).to_string()
    }

    fn wrong_code(&self) -> String {
        let t = now();
        let near: Vec<String> = (0..5)
            .map(|i| self.enrollment.totp.code_at(t + i * 30 - 60).to_string())
            .collect();
        (0..1_000_000u64)
            .map(|n| format!("{:06}", (n * 7919 + 424_242) % 1_000_000))
            .find(|c| !near.contains(c))
            .expect("a wrong code")
    }

    /// doctor on the example's files: the stack, sshd's configuration.
    fn doctor_finds_nothing(&self) -> Result<(), Failed> {
        let output = Command::new(twofactor_binary())
            .arg("doctor")
            .arg("--pam-dir")
            .arg(self.dir.join("pam.d"))
            .arg("--sshd-config")
            .arg(self.dir.join("sshd_config"))
            .args(["--user", &self.account.name])
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        check(
            output.status.success() && text.contains("sshd runs the PAM stack"),
            || {
                format!(
                    "doctor: {}\n{text}{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                )
            },
        )
    }

    fn explain(&self, outcome: &SshOutcome) -> String {
        format!("{}{}", outcome.describe(), self.server.log())
    }
}

fn publickey_and_code(shared: &Shared) -> Result<(), Failed> {
    let _serial = shared.serial.lock().unwrap_or_else(|e| e.into_inner());
    let mut example = Example::set_up(shared, "publickey-and-code", 0)?;
    let code = example.code();
    let without_key = example.ssh(false, &[(CODE, &code)])?;
    check(
        !example.logged_in(&without_key) && without_key.prompts.is_empty(),
        || format!("the code alone:\n{}", example.explain(&without_key)),
    )?;
    let wrong = example.wrong_code();
    let outcome = example.ssh(true, &[(CODE, &wrong)])?;
    check(!example.logged_in(&outcome), || {
        format!("key and a wrong code:\n{}", example.explain(&outcome))
    })?;
    let outcome = example.ssh(true, &[(CODE, &code)])?;
    check(
        example.logged_in(&outcome)
            && outcome.prompts.len() == 1
            && outcome.prompts[0].contains(CODE),
        || format!("key and code:\n{}", example.explain(&outcome)),
    )?;
    example.doctor_finds_nothing()
}

fn password_and_code(shared: &Shared) -> Result<(), Failed> {
    let _serial = shared.serial.lock().unwrap_or_else(|e| e.into_inner());
    let mut example = Example::set_up(shared, "password-and-code", 1)?;
    let code = example.code();
    let outcome = example.ssh(false, &[("assword", "wrong password"), (CODE, &code)])?;
    check(
        !example.logged_in(&outcome) && !outcome.prompts.iter().any(|p| p.contains(CODE)),
        || {
            format!(
                "a wrong password must end it before the code:\n{}",
                example.explain(&outcome)
            )
        },
    )?;
    let wrong = example.wrong_code();
    let outcome = example.ssh(false, &[("assword", PASSWORD), (CODE, &wrong)])?;
    check(!example.logged_in(&outcome), || {
        format!("password and a wrong code:\n{}", example.explain(&outcome))
    })?;
    let outcome = example.ssh(false, &[("assword", PASSWORD), (CODE, &code)])?;
    check(
        example.logged_in(&outcome)
            && outcome.prompts.len() == 2
            && outcome.prompts[0].contains("assword")
            && outcome.prompts[1].contains(CODE),
        || format!("password and code:\n{}", example.explain(&outcome)),
    )?;
    example.doctor_finds_nothing()
}

fn code_only(shared: &Shared) -> Result<(), Failed> {
    let _serial = shared.serial.lock().unwrap_or_else(|e| e.into_inner());
    let mut example = Example::set_up(shared, "code-only", 2)?;
    let wrong = example.wrong_code();
    let outcome = example.ssh(true, &[(CODE, &wrong)])?;
    check(!example.logged_in(&outcome), || {
        format!("a wrong code:\n{}", example.explain(&outcome))
    })?;
    let code = example.code();
    let outcome = example.ssh(true, &[(CODE, &code)])?;
    check(
        example.logged_in(&outcome)
            && outcome.prompts.len() == 1
            && outcome.prompts[0].contains(CODE),
        || format!("the code:\n{}", example.explain(&outcome)),
    )?;
    check(
        !example.server.log_file().contains("Accepted publickey"),
        || "the key was used although PubkeyAuthentication is off".into(),
    )?;
    example.doctor_finds_nothing()
}

/// The workspace: the parent of config/examples/'s parent.
fn workspace() -> Result<PathBuf, Failed> {
    Ok(examples_dir()
        .parent()
        .and_then(Path::parent)
        .ok_or("workspace")?
        .to_path_buf())
}

/// The README and every page of docs/, sorted.
fn markdown_documentation() -> Result<Vec<PathBuf>, Failed> {
    let workspace = workspace()?;
    let mut pages = Vec::new();
    for entry in fs::read_dir(workspace.join("docs"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    check(pages.len() >= 5, || format!("docs/ holds only {pages:?}"))?;
    pages.insert(0, workspace.join("README.md"));
    Ok(pages)
}

/// One recommendation for the module's control, wherever a stack is shown
/// to administrators: `requisite` (docs/admin-guide.md, "Why requisite",
/// says why). Every pam_twofactor line of the README, docs/, the examples,
/// the pam-auth-update profile, the authselect notes and pam_twofactor(8)
/// uses it, and the administrator's guide and the man page recommend it
/// without an alternative.
fn every_documented_stack_uses_requisite(_shared: &Shared) -> Result<(), Failed> {
    let workspace = workspace()?;
    let mut documents = markdown_documentation()?;
    documents.extend([
        workspace.join("packaging/pam-configs/twofactor"),
        workspace.join("packaging/rpm/authselect.md"),
        workspace.join("packaging/man/pam_twofactor.8"),
    ]);
    for entry in fs::read_dir(examples_dir())? {
        documents.push(entry?.path());
    }
    let mut lines_seen = 0;
    for document in &documents {
        let text = fs::read_to_string(document)?;
        for line in text.lines() {
            let words: Vec<&str> = line
                .trim_start_matches(".B ")
                .split_whitespace()
                .filter(|w| !w.starts_with('{'))
                .collect();
            // "auth CONTROL pam_twofactor.so ...", or the profile's
            // "CONTROL pam_twofactor.so" under "Auth:".
            let Some(at) = words.iter().position(|w| w.ends_with("pam_twofactor.so")) else {
                continue;
            };
            let control = match at {
                1 => words[0],
                2 if words[0] == "auth" => words[1],
                _ => continue,
            };
            lines_seen += 1;
            check(control == "requisite", || {
                format!("{}: {line:?} is not requisite", document.display())
            })?;
        }
    }
    check(lines_seen >= 12, || {
        format!("only {lines_seen} module lines found")
    })?;
    let guide = fs::read_to_string(workspace.join("docs/admin-guide.md"))?;
    let man = fs::read_to_string(workspace.join("packaging/man/pam_twofactor.8"))?;
    check(
        guide.contains("Use the module with `requisite`")
            && man.contains("Use the module with \\fBrequisite\\fR,")
            && !man.contains("\\fBrequired\\fR or \\fBrequisite\\fR"),
        || "docs/admin-guide.md or pam_twofactor(8) does not recommend requisite".into(),
    )?;
    for page in markdown_documentation()? {
        let text = fs::read_to_string(&page)?;
        check(!text.contains("`required` (or `requisite`)"), || {
            format!("{} offers required as an alternative", page.display())
        })?;
    }
    Ok(())
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// turned into hyphens (`## Before you log out: `twofactor doctor`` is
/// `#before-you-log-out-twofactor-doctor`).
fn heading_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Markdown text without its fenced code blocks, where `](` is not a link.
fn outside_code_blocks(text: &str) -> String {
    let mut fenced = false;
    let mut kept = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// The anchors of a markdown file's headings; a repeated heading gets
/// `-1`, `-2`, ... as on GitHub.
fn anchors(text: &str) -> Vec<String> {
    let mut repeats: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = Vec::new();
    for line in outside_code_blocks(text).lines() {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = heading_anchor(heading.trim_start_matches('#'));
        let count = repeats.entry(base.clone()).or_insert(0);
        anchors.push(if *count == 0 {
            base
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// The manual is the README and docs/: every relative link between them,
/// and to the files they point to (configuration, examples, man pages),
/// leads to a file that exists and, with a `#fragment`, to a heading of that
/// page; the README links every page of docs/.
fn documentation_links_resolve(_shared: &Shared) -> Result<(), Failed> {
    let pages = markdown_documentation()?;
    let readme = &pages[0];
    let mut links_seen = 0;
    let mut linked_from_readme = Vec::new();
    for page in &pages {
        let text = fs::read_to_string(page)?;
        let dir = page.parent().ok_or("page directory")?;
        for piece in outside_code_blocks(&text).split("](").skip(1) {
            let Some(end) = piece.find(')') else {
                continue;
            };
            let target = &piece[..end];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            links_seen += 1;
            check(!target.contains(char::is_whitespace), || {
                format!("{}: a link target with a space: {target:?}", page.display())
            })?;
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target, None),
            };
            let linked = if path.is_empty() {
                page.clone()
            } else {
                dir.join(path)
            };
            check(linked.exists(), || {
                format!("{}: {target} leads to no file", page.display())
            })?;
            if page == readme {
                linked_from_readme.push(linked.canonicalize()?);
            }
            if let Some(fragment) = fragment {
                let anchors = anchors(&fs::read_to_string(&linked)?);
                check(anchors.iter().any(|a| a == fragment), || {
                    format!(
                        "{}: {target}: no heading #{fragment} in {} (headings: {anchors:?})",
                        page.display(),
                        linked.display()
                    )
                })?;
            }
        }
    }
    check(links_seen >= 30, || {
        format!("only {links_seen} links found")
    })?;
    for page in pages.iter().skip(1) {
        let canonical = page.canonicalize()?;
        check(linked_from_readme.contains(&canonical), || {
            format!("the README does not link {}", page.display())
        })?;
    }
    Ok(())
}

fn main() {
    let shared = Shared {
        ns: namespace::enter(),
        serial: Mutex::new(()),
        debian_sshd: fs::read_to_string("/etc/pam.d/sshd").unwrap_or_default(),
    };
    run_trials(
        shared,
        vec![
            ("publickey_and_code", publickey_and_code),
            ("password_and_code", password_and_code),
            ("code_only", code_only),
            (
                "every_documented_stack_uses_requisite",
                every_documented_stack_uses_requisite,
            ),
            ("documentation_links_resolve", documentation_links_resolve),
        ],
    );
}
