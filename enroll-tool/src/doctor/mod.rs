//! `twofactor doctor`: before an administrator logs out, check that the
//! installed PAM stacks and sshd would let enrolled users in and would not
//! lock the administrator out. Every problem is one line with its fix; the
//! exit status is 0 when there is none, 1 otherwise.
//!
//! What is checked: the configuration (and each `config=` of a module line)
//! parses and is safe; every line naming the module is an `auth` line with
//! a control that enforces it, with valid arguments; the module file exists,
//! is root's, and is an ELF shared object of this machine exporting
//! `pam_sm_authenticate` whose libraries are installed (examined, never
//! loaded); no service asks for the code twice; the state directory is
//! usable, and with `state_backend = "redis"` the shared state is
//! reachable and kept safely; sshd's effective configuration (`sshd -T`)
//! runs the stack and cannot bypass it; and the user (the administrator who ran sudo, or
//! `--user`) has a usable enrollment and is not locked out.
//!
//! Modules: `findings` holds what every check shares and depends on no
//! other part; `pam_d` reads `/etc/pam.d` as libpam does and depends on
//! none either. `stacks` checks the stacks and their module lines,
//! `config` the configurations, limits and state directories,
//! `module_file` the module's file (an ELF image, examined, never loaded),
//! `shared_state` the fleet's Redis server, `sshd` sshd's effective
//! configuration, and `user` the user's enrollment,
//! lockout and clock (it takes each line's configuration from `config`).
//! The run and the report are here; no part depends on this file.

mod config;
mod findings;
mod module_file;
mod pam_d;
mod shared_state;
mod sshd;
mod stacks;
mod user;

use std::path::{Path, PathBuf};

use serde::Serialize;

use twofactor_core::config::Config;

use crate::account::{self, Account};
use crate::cli::DoctorArgs;
use crate::error::CliError;
use crate::output;

use config::LineConfig;
use findings::{Finding, Findings, Level};
use stacks::Stacks;

#[derive(Serialize)]
struct Report {
    user: String,
    problems: usize,
    findings: Vec<Finding>,
}

/// Run `twofactor doctor`. Returns the exit code: 0 fine, 1 problems.
pub fn run(args: &DoctorArgs) -> Result<u8, CliError> {
    let account = target_account(args.user.as_deref())?;
    let mut findings = Findings::default();

    let base = config::check_config(&mut findings, args.config.as_deref());
    let stacks = Stacks::read(&mut findings, &args.pam_dir)?;
    let module_dir = args
        .module_dir
        .clone()
        .or_else(module_file::default_module_dir);
    let configs = check_lines(&mut findings, &stacks, module_dir.as_deref(), base.as_ref());

    let mut state_dirs: Vec<String> = Vec::new();
    for (config, _) in &configs {
        if !state_dirs.contains(&config.config.state_dir) {
            config::check_state_dir(&mut findings, Path::new(&config.config.state_dir));
            state_dirs.push(config.config.state_dir.clone());
        }
    }

    for (config, services) in &configs {
        config::check_limits(&mut findings, config, services);
    }

    shared_state::check_shared_states(&mut findings, &configs);

    sshd::check_sshd(&mut findings, args, &account, &stacks.asking);

    // Last: reading the enrollment means becoming the user for good.
    user::check_user(&mut findings, &account, &configs);

    let report = Report {
        user: account.name.clone(),
        problems: findings.problems(),
        findings: findings.into_vec(),
    };
    if args.json {
        output::print(&output::json_line(&report)?)?;
    } else {
        output::print(&report.text(&args.pam_dir))?;
    }
    Ok(if report.problems == 0 { 0 } else { 1 })
}

/// Check every line naming the module: its shape, its module file (each
/// file once) and its arguments. Returns each distinct configuration in
/// use with the services that run it.
fn check_lines(
    findings: &mut Findings,
    stacks: &Stacks,
    module_dir: Option<&Path>,
    base: Option<&Config>,
) -> Vec<(LineConfig, Vec<String>)> {
    let mut configs: Vec<(LineConfig, Vec<String>)> = Vec::new();
    let mut modules_checked: Vec<PathBuf> = Vec::new();
    for line in &stacks.lines {
        let services = stacks.services_running(line);
        let who = if services.is_empty() {
            "no service includes it".to_string()
        } else {
            format!("used by {}", services.join(", "))
        };
        stacks::check_line_shape(findings, line, &services);
        module_file::check_line_module(findings, line, module_dir, &services, &mut modules_checked);
        if let Some(config) = config::line_config(findings, line, base) {
            findings.ok(
                "arguments",
                format!("{}: arguments valid ({who})", line.place()),
            );
            if !services.is_empty() {
                match configs.iter_mut().find(|(c, _)| c.config == config.config) {
                    Some((_, users)) => services.iter().for_each(|s| stacks::push_new(users, s)),
                    None => configs.push((config, services.clone())),
                }
            }
        }
    }
    configs
}

/// `--user`; else, for root, the administrator who ran sudo; else the caller.
fn target_account(requested: Option<&str>) -> Result<Account, CliError> {
    if requested.is_some() {
        return account::resolve_target(requested);
    }
    if nix::unistd::getuid().is_root() {
        if let Ok(name) = std::env::var("SUDO_USER") {
            if !name.is_empty() && name != "root" {
                return account::resolve_target(Some(&name));
            }
        }
    }
    account::resolve_target(None)
}

impl Report {
    fn text(&self, pam_dir: &Path) -> String {
        let mut out = format!(
            "twofactor doctor: PAM stacks in {}, the configuration, sshd, and {}'s enrollment\n",
            pam_dir.display(),
            self.user
        );
        for finding in &self.findings {
            let label = match finding.level {
                Level::Ok => "ok     ",
                Level::Note => "note   ",
                Level::Problem => "PROBLEM",
            };
            let message = finding
                .message
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            match &finding.fix {
                Some(fix) => out.push_str(&format!("{label} {message}. Fix: {fix}.\n")),
                None => out.push_str(&format!("{label} {message}\n")),
            }
        }
        out.push_str(&match self.problems {
            0 => "No problems found.\n".to_string(),
            1 => "1 problem found: fix it before logging out.\n".to_string(),
            n => format!("{n} problems found: fix them before logging out.\n"),
        });
        out
    }
}
