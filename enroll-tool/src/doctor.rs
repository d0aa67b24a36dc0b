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
//! usable; sshd's effective configuration (`sshd -T`) runs the stack and
//! cannot bypass it; and the user (the administrator who ran sudo, or
//! `--user`) has a usable enrollment and is not locked out.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use twofactor_core::config::{Config, UnenrolledPolicy, DEFAULT_CONFIG_PATH, MAX_CONFIG_BYTES};
use twofactor_core::error::FileProblem;
use twofactor_core::files::{read_checked_text, FileRequirements};
use twofactor_core::ratelimit::{self, Locks};
use twofactor_core::state::FailureKind;
use twofactor_core::verify::{clock_problem, remaining_backup_codes};

use crate::account::{self, Account};
use crate::cli::DoctorArgs;
use crate::elf;
use crate::enrollment_file::{self, EnrollmentFile};
use crate::error::CliError;
use crate::login_state::StateView;
use crate::output;
use crate::pam_stacks::{self, PamLine};
use crate::sshd_check;
use crate::system_config;
use twofactor_core::timefmt;

/// How a finding counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    /// Checked and fine.
    Ok,
    /// Worth knowing; not a problem.
    Note,
    /// Would lock someone out, or let someone in without the second factor.
    Problem,
}

#[derive(Debug, Serialize)]
struct Finding {
    level: Level,
    check: &'static str,
    message: String,
    fix: Option<String>,
}

#[derive(Serialize)]
struct Report {
    user: String,
    problems: usize,
    findings: Vec<Finding>,
}

/// The policy that applies to one module line: the configuration it reads
/// (`config=` or the default one) with its own `key=value` overrides.
#[derive(Clone)]
struct LineConfig {
    config: Config,
    /// Where it came from, for messages.
    source: String,
}

struct Doctor {
    findings: Vec<Finding>,
}

impl Doctor {
    fn add(&mut self, level: Level, check: &'static str, message: String, fix: Option<String>) {
        self.findings.push(Finding {
            level,
            check,
            message,
            fix,
        });
    }

    fn ok(&mut self, check: &'static str, message: String) {
        self.add(Level::Ok, check, message, None);
    }

    fn note(&mut self, check: &'static str, message: String) {
        self.add(Level::Note, check, message, None);
    }

    fn problem(&mut self, check: &'static str, message: String, fix: impl Into<String>) {
        self.add(Level::Problem, check, message, Some(fix.into()));
    }
}

/// Run `twofactor doctor`. Returns the exit code: 0 fine, 1 problems.
pub fn run(args: &DoctorArgs) -> Result<u8, CliError> {
    let account = target_account(args.user.as_deref())?;
    let mut doctor = Doctor {
        findings: Vec::new(),
    };

    let base = check_config(&mut doctor, args.config.as_deref());
    let services = pam_stacks::services(&args.pam_dir)
        .map_err(|why| CliError::System(format!("cannot read the PAM stacks: {why}")))?;
    let module_dir = args.module_dir.clone().or_else(default_module_dir);

    // Every line naming the module, in every file (common-* included).
    let mut lines: Vec<PamLine> = Vec::new();
    for name in all_files(&args.pam_dir)? {
        let path = args.pam_dir.join(&name);
        if let Ok(text) = fs::read_to_string(&path) {
            lines.extend(
                pam_stacks::parse(&path, &text)
                    .into_iter()
                    .filter(PamLine::is_twofactor),
            );
        }
    }
    // Which services run each line in their auth stack.
    let mut users_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut asking_services: Vec<String> = Vec::new();
    for service in &services {
        let stack = pam_stacks::expanded(&args.pam_dir, service, "auth");
        let ours: Vec<&PamLine> = stack.iter().filter(|l| l.is_twofactor()).collect();
        if ours.len() > 1 {
            let places: Vec<String> = ours.iter().map(|l| l.place()).collect();
            doctor.problem(
                "stack",
                format!(
                    "{service} asks for the second factor {} times ({}): a TOTP code works \
                     once, so the second prompt refuses the code just used",
                    ours.len(),
                    places.join(", ")
                ),
                format!("keep one pam_twofactor line in the auth stack of {service}"),
            );
        }
        if !ours.is_empty() {
            asking_services.push(service.clone());
        }
        for line in ours {
            push_new(users_of.entry(line.place()).or_default(), service);
        }
    }

    if lines.is_empty() {
        doctor.note(
            "stack",
            format!(
                "no PAM stack in {} uses pam_twofactor: no second factor is asked anywhere \
                 (enable it with 'pam-auth-update --enable twofactor' or a line in /etc/pam.d)",
                args.pam_dir.display()
            ),
        );
    }

    let mut configs: Vec<(LineConfig, Vec<String>)> = Vec::new();
    let mut modules_checked: Vec<PathBuf> = Vec::new();
    for line in &lines {
        let services = users_of.get(&line.place()).cloned().unwrap_or_default();
        let who = if services.is_empty() {
            "no service includes it".to_string()
        } else {
            format!("used by {}", services.join(", "))
        };
        check_line_shape(&mut doctor, line, &services);
        if let Some(path) = module_path(line, module_dir.as_deref()) {
            if !modules_checked.contains(&path) {
                check_module(&mut doctor, &path, line, &services);
                modules_checked.push(path);
            }
        } else {
            doctor.problem(
                "module",
                format!(
                    "{}: the module is named without a path and no PAM module directory was \
                     found; libpam cannot load it",
                    line.place()
                ),
                "name the module by its absolute path, or install it in /usr/lib/<multiarch>/security",
            );
        }
        if let Some(config) = line_config(&mut doctor, line, base.as_ref()) {
            doctor.ok(
                "arguments",
                format!("{}: arguments valid ({who})", line.place()),
            );
            if !services.is_empty() {
                match configs.iter_mut().find(|(c, _)| c.config == config.config) {
                    Some((_, users)) => services.iter().for_each(|s| push_new(users, s)),
                    None => configs.push((config, services.clone())),
                }
            }
        }
    }

    let mut state_dirs: Vec<String> = Vec::new();
    for (config, _) in &configs {
        if !state_dirs.contains(&config.config.state_dir) {
            check_state_dir(&mut doctor, Path::new(&config.config.state_dir));
            state_dirs.push(config.config.state_dir.clone());
        }
    }

    for (config, services) in &configs {
        check_limits(&mut doctor, config, services);
    }

    check_sshd(&mut doctor, args, &account, &asking_services);

    // Last: reading the enrollment means becoming the user for good.
    check_user(&mut doctor, &account, &configs);

    let problems = doctor
        .findings
        .iter()
        .filter(|f| f.level == Level::Problem)
        .count();
    let report = Report {
        user: account.name.clone(),
        problems,
        findings: doctor.findings,
    };
    if args.json {
        output::print(&output::json_line(&report)?)?;
    } else {
        output::print(&report.text(&args.pam_dir))?;
    }
    Ok(if problems == 0 { 0 } else { 1 })
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

fn all_files(dir: &Path) -> Result<Vec<String>, CliError> {
    let entries = fs::read_dir(dir).map_err(|e| {
        CliError::System(format!(
            "cannot read {}: {}",
            dir.display(),
            twofactor_core::files::describe_io_error(&e)
        ))
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !pam_stacks::is_leftover(name))
        .collect();
    names.sort();
    Ok(names)
}

/// libpam's directory for modules named without a path.
fn default_module_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(triplet) = elf::multiarch() {
        candidates.push(PathBuf::from(format!("/lib/{triplet}/security")));
        candidates.push(PathBuf::from(format!("/usr/lib/{triplet}/security")));
    }
    for dir in ["/lib64/security", "/usr/lib64/security", "/lib/security"] {
        candidates.push(PathBuf::from(dir));
    }
    candidates.into_iter().find(|dir| dir.is_dir())
}

fn module_path(line: &PamLine, module_dir: Option<&Path>) -> Option<PathBuf> {
    if line.module.starts_with('/') {
        Some(PathBuf::from(&line.module))
    } else {
        module_dir.map(|dir| dir.join(&line.module))
    }
}

fn check_config(doctor: &mut Doctor, explicit: Option<&Path>) -> Option<Config> {
    let shown = explicit
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| DEFAULT_CONFIG_PATH.to_string());
    match system_config::load(explicit) {
        Ok(config) => {
            let missing = explicit.is_none() && !Path::new(DEFAULT_CONFIG_PATH).exists();
            doctor.ok(
                "configuration",
                if missing {
                    format!("{shown} does not exist: the built-in defaults apply")
                } else {
                    format!("{shown} parses and is root's")
                },
            );
            Some(config)
        }
        Err(err) => {
            doctor.problem(
                "configuration",
                format!("{}: every login through the module fails", err.message()),
                format!(
                    "correct {shown} (see pam_twofactor.toml(5)): owned by root, not \
                     writable by group or others, known keys only"
                ),
            );
            None
        }
    }
}

/// Settings that let more guesses through than the defaults: each is a
/// choice an administrator may make, so a note with the guesses a day it
/// allows rather than a problem.
fn check_limits(doctor: &mut Doctor, line_config: &LineConfig, services: &[String]) {
    let config = &line_config.config;
    let defaults = Config::default();
    let limits = config.limits();
    let who = format!("{} ({})", line_config.source, services.join(", "));
    for (kind, name, max, window, default_max, default_window) in [
        (
            FailureKind::Code,
            "codes",
            config.max_code_failures,
            config.code_failure_window,
            defaults.max_code_failures,
            defaults.code_failure_window,
        ),
        (
            FailureKind::BackupCode,
            "backup codes",
            config.max_backup_code_failures,
            config.backup_code_failure_window,
            defaults.max_backup_code_failures,
            defaults.backup_code_failure_window,
        ),
    ] {
        match ratelimit::guesses_per_day(&limits, kind) {
            None => doctor.note(
                "limits",
                format!("{who}: the limit on wrong {name} is off: guesses are unlimited"),
            ),
            Some(per_day) => {
                let weaker = max > default_max || window < default_window || limits.by_host;
                if weaker {
                    let default_per_day =
                        ratelimit::guesses_per_day(&defaults.limits(), kind).unwrap_or(0);
                    doctor.note(
                        "limits",
                        format!(
                            "{who}: up to {per_day} wrong {name} a day are checked per user (the defaults allow {default_per_day}){}",
                            if limits.by_host {
                                " because rate_limit_by_host gives every host its own budget within the all-hosts one"
                            } else {
                                ""
                            }
                        ),
                    );
                }
            }
        }
    }
    if config.window > defaults.window {
        doctor.note(
            "limits",
            format!(
                "{who}: window = {} accepts {} codes at once ({} with the default), so each guess is likelier to hit",
                config.window,
                2 * u32::from(config.window) + 1,
                2 * u32::from(defaults.window) + 1
            ),
        );
    }
    if config.grace_period > 0 {
        doctor.note(
            "limits",
            format!(
                "{who}: grace_period = {} s: a login from the same host (or terminal session) within that time needs no second factor",
                config.grace_period
            ),
        );
    }
}

/// The group and control of a module line.
fn check_line_shape(doctor: &mut Doctor, line: &PamLine, services: &[String]) {
    let affected = if services.is_empty() {
        "logins through this file".to_string()
    } else {
        format!("{} logins", services.join(", "))
    };
    if line.group != "auth" {
        doctor.problem(
            "stack",
            format!(
                "{}: pam_twofactor is in {} {} stack; it only provides auth, so libpam fails \
                 this line and {affected} fail",
                line.place(),
                article(&line.group),
                line.group
            ),
            "remove the line, or make it an auth line",
        );
        return;
    }
    match line.control.as_str() {
        "required" | "requisite" => {}
        "sufficient" => doctor.problem(
            "stack",
            format!(
                "{}: \"sufficient\": a code ends the stack with success, so the modules after \
                 it (such as the password) are skipped",
                line.place()
            ),
            "use requisite",
        ),
        "optional" => doctor.problem(
            "stack",
            format!(
                "{}: \"optional\": a wrong code is ignored, so {affected} succeed without \
                 the second factor",
                line.place()
            ),
            "use requisite",
        ),
        control => {
            let ignores_failure = control.split_whitespace().any(|action| {
                matches!(
                    action,
                    "default=ignore"
                        | "default=ok"
                        | "default=done"
                        | "auth_err=ignore"
                        | "auth_err=ok"
                )
            });
            if ignores_failure {
                doctor.problem(
                    "stack",
                    format!(
                        "{}: the control [{control}] ignores a failure of the module, so a \
                         wrong code does not stop {affected}",
                        line.place()
                    ),
                    "use requisite",
                );
            } else {
                doctor.note(
                    "stack",
                    format!(
                        "{}: control [{control}] is not checked; make sure a failure of the \
                         module fails the login",
                        line.place()
                    ),
                );
            }
        }
    }
    if line.quiet_if_missing {
        doctor.note(
            "stack",
            format!(
                "{}: the leading '-' makes libpam skip the line silently when the module is \
                 missing (no second factor then)",
                line.place()
            ),
        );
    }
}

fn check_module(doctor: &mut Doctor, path: &Path, line: &PamLine, services: &[String]) {
    let affected = if services.is_empty() {
        format!("the stack of {}", line.place())
    } else {
        format!("every {} login", services.join(", "))
    };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) => {
            doctor.problem(
                "module",
                format!(
                    "{} {}: libpam cannot load it, and {affected} fails",
                    path.display(),
                    twofactor_core::files::describe_io_error(&err).to_lowercase()
                ),
                "install the package (libpam-twofactor), or correct the path in the stack",
            );
            return;
        }
    };
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        doctor.problem(
            "module",
            format!(
                "{} is owned by uid {} with mode {:04o}: whoever can change it runs code in \
                 every login",
                path.display(),
                meta.uid(),
                meta.permissions().mode() & 0o7777
            ),
            format!("chown root:root {0} && chmod 0644 {0}", path.display()),
        );
    }
    match elf::examine(path) {
        Err(why) => doctor.problem(
            "module",
            format!(
                "{} {why}: libpam cannot load it, and {affected} fails",
                path.display()
            ),
            "reinstall the package (libpam-twofactor)",
        ),
        Ok(object) => {
            let host = elf::host_machine();
            let missing_libraries: Vec<&String> = object
                .needed
                .iter()
                .filter(|lib| elf::find_library(lib).is_none())
                .collect();
            if host.is_some_and(|m| m != object.machine) {
                doctor.problem(
                    "module",
                    format!(
                        "{} is built for {}, this machine is {}: libpam cannot load it, and \
                         {affected} fails",
                        path.display(),
                        elf::machine_name(object.machine),
                        host.map(elf::machine_name).unwrap_or_default()
                    ),
                    "install the package built for this architecture",
                );
            } else if !object
                .pam_functions
                .iter()
                .any(|f| f == "pam_sm_authenticate")
            {
                doctor.problem(
                    "module",
                    format!(
                        "{} is a shared object without pam_sm_authenticate: not a PAM auth \
                         module, and {affected} fails",
                        path.display()
                    ),
                    "reinstall the package (libpam-twofactor)",
                );
            } else if !missing_libraries.is_empty() {
                let names: Vec<&str> = missing_libraries.iter().map(|s| s.as_str()).collect();
                doctor.problem(
                    "module",
                    format!(
                        "{} needs {}, which is not installed: libpam cannot load it, and \
                         {affected} fails",
                        path.display(),
                        names.join(", ")
                    ),
                    "install the missing libraries (apt-get install libpam0g)",
                );
            } else {
                doctor.ok(
                    "module",
                    format!(
                        "{} is a {} PAM module ({})",
                        path.display(),
                        elf::machine_name(object.machine),
                        object.pam_functions.join(", ")
                    ),
                );
            }
        }
    }
}

/// The configuration a module line reads, with its overrides applied, or
/// `None` (and a problem) when the module would refuse it.
fn line_config(doctor: &mut Doctor, line: &PamLine, base: Option<&Config>) -> Option<LineConfig> {
    let mut explicit: Option<&str> = None;
    let mut overrides: Vec<(String, String)> = Vec::new();
    let mut pass_modes = 0;
    for arg in &line.args {
        match arg.as_str() {
            "try_first_pass" | "use_first_pass" => pass_modes += 1,
            "forward_pass" => {}
            "nullok" => overrides.push(("unenrolled".into(), "ignore".into())),
            _ => match arg.split_once('=') {
                Some(("config", path)) => explicit = Some(path),
                Some((key, value)) => overrides.push((key.to_string(), value.to_string())),
                None => {
                    doctor.problem(
                        "arguments",
                        format!(
                            "{}: unknown module argument {arg:?}: every login through this \
                             line fails",
                            line.place()
                        ),
                        "remove or correct it (see pam_twofactor(8))",
                    );
                    return None;
                }
            },
        }
    }
    if pass_modes > 1 {
        doctor.problem(
            "arguments",
            format!(
                "{}: both try_first_pass and use_first_pass: every login through this line fails",
                line.place()
            ),
            "keep one of them",
        );
        return None;
    }
    let (mut config, source) = match explicit {
        None => (base?.clone(), DEFAULT_CONFIG_PATH.to_string()),
        Some(path) if !path.starts_with('/') => {
            doctor.problem(
                "arguments",
                format!(
                    "{}: config={path} is not an absolute path: every login through this \
                     line fails",
                    line.place()
                ),
                "name the configuration by its absolute path",
            );
            return None;
        }
        Some(path) => {
            let loaded = read_checked_text(
                Path::new(path),
                &FileRequirements::root_policy(MAX_CONFIG_BYTES),
            )
            .and_then(|text| Config::parse(&text, path));
            match loaded {
                Ok(config) => (config, path.to_string()),
                Err(err) => {
                    doctor.problem(
                        "configuration",
                        format!(
                            "{}: config={path}: {err}: every login through this line fails",
                            line.place()
                        ),
                        format!("correct {path} (see pam_twofactor.toml(5))"),
                    );
                    return None;
                }
            }
        }
    };
    for (key, value) in &overrides {
        if key == "notify_command" || key.starts_with("totp_") {
            doctor.problem(
                "arguments",
                format!(
                    "{}: {key} cannot be set as a module argument: every login through this \
                     line fails",
                    line.place()
                ),
                format!("set {key} in {source} instead"),
            );
            return None;
        }
        if let Err(err) = config.set(key, value) {
            doctor.problem(
                "arguments",
                format!(
                    "{}: module argument {key}={value}: {err}: every login through this line fails",
                    line.place()
                ),
                "correct it (see pam_twofactor.toml(5))",
            );
            return None;
        }
    }
    Some(LineConfig { config, source })
}

fn check_state_dir(doctor: &mut Doctor, dir: &Path) {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => doctor.problem(
            "state",
            format!(
                "the state directory {} is a symbolic link: the module refuses it, and every \
                 login through it fails",
                dir.display()
            ),
            format!("replace it by a directory: mkdir -m 0711 {}", dir.display()),
        ),
        Ok(meta) if !meta.is_dir() => doctor.problem(
            "state",
            format!(
                "the state directory {} is not a directory: every login through the module fails",
                dir.display()
            ),
            format!(
                "remove it; the module creates {} (mode 0711)",
                dir.display()
            ),
        ),
        Ok(meta) if meta.uid() != 0 || meta.mode() & 0o022 != 0 => doctor.problem(
            "state",
            format!(
                "the state directory {} is owned by uid {} with mode {:04o}: the module \
                 refuses it, and every login through it fails",
                dir.display(),
                meta.uid(),
                meta.mode() & 0o7777
            ),
            format!("chown root:root {0} && chmod 0711 {0}", dir.display()),
        ),
        Ok(meta) => {
            doctor.ok(
                "state",
                format!(
                    "state directory {} (root, {:04o})",
                    dir.display(),
                    meta.mode() & 0o7777
                ),
            );
            if meta.mode() & 0o011 == 0 {
                doctor.note(
                    "state",
                    format!(
                        "{} is 0700: users cannot read their own state, so 'twofactor status' \
                         does not show them their last login, failures or lockouts (chmod 0711 \
                         shows it)",
                        dir.display()
                    ),
                );
            }
        }
        Err(_) => match dir.parent().map(fs::metadata) {
            Some(Ok(parent)) if parent.is_dir() => doctor.ok(
                "state",
                format!(
                    "state directory {} does not exist yet: the module creates it at the \
                     first login",
                    dir.display()
                ),
            ),
            _ => doctor.problem(
                "state",
                format!(
                    "the state directory {} cannot be created (its parent is missing): every \
                     login through the module fails",
                    dir.display()
                ),
                format!("mkdir -p -m 0711 {}", dir.display()),
            ),
        },
    }
}

fn check_sshd(doctor: &mut Doctor, args: &DoctorArgs, account: &Account, asking: &[String]) {
    if !args.sshd.exists() {
        doctor.note(
            "sshd",
            format!("{} is not installed: SSH not checked", args.sshd.display()),
        );
        return;
    }
    if !asking.iter().any(|s| s == "sshd") {
        doctor.note(
            "sshd",
            format!(
                "{}/sshd does not ask for the second factor: SSH logins are not affected",
                args.pam_dir.display()
            ),
        );
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        doctor.note(
            "sshd",
            "sshd's configuration not checked: 'sshd -T' needs root (run with sudo)".to_string(),
        );
        return;
    }
    match sshd_check::effective(&args.sshd, args.sshd_config.as_deref(), &account.name) {
        Err(why) => doctor.problem(
            "sshd",
            format!("{why}: sshd would not start with this configuration"),
            "correct sshd_config ('sshd -t' shows the error)",
        ),
        Ok(settings) => {
            let found = sshd_check::problems(&settings, &account.name);
            if found.is_empty() {
                doctor.ok(
                    "sshd",
                    format!(
                        "sshd runs the PAM stack for {} through keyboard-interactive, with no \
                         way around it",
                        account.name
                    ),
                );
            }
            for (problem, fix) in found {
                doctor.problem("sshd", problem, fix);
            }
        }
    }
}

fn check_user(doctor: &mut Doctor, account: &Account, configs: &[(LineConfig, Vec<String>)]) {
    if configs.is_empty() {
        return;
    }
    // The login state is root's: read it before becoming the user.
    let states: Vec<StateView> = configs
        .iter()
        .map(|(c, _)| StateView::read(&c.config, &account.state_name))
        .collect();
    if let Err(err) = account::become_user(account) {
        doctor.problem(
            "user",
            format!(
                "cannot check {}'s enrollment: {}",
                account.name,
                err.message()
            ),
            "run twofactor doctor as root (sudo twofactor doctor)",
        );
        return;
    }
    let now = output::now().unwrap_or(0);
    for ((line_config, service_list), state) in configs.iter().zip(states) {
        let config = &line_config.config;
        let services = service_list.join(", ");
        // "sshd refuses alice", "login, sshd refuse alice".
        let refuse = verb(service_list, "refuses", "refuse");
        let path = match enrollment_file::path_of(config, account) {
            Ok(path) => path,
            Err(err) => {
                doctor.problem(
                    "user",
                    format!("{}: {}", account.name, err.message()),
                    format!("correct enrollment_path in {}", line_config.source),
                );
                continue;
            }
        };
        // Files that cannot even be looked at are reported by reading them.
        let file =
            EnrollmentFile::find(&path).unwrap_or_else(|_| EnrollmentFile::configured(&path));
        if let Some(legacy) = file.legacy_in_use() {
            doctor.note(
                "user",
                format!(
                    "{}'s enrollment is in the older TOML file {}: the next change, such as \
                     'twofactor backup-codes', moves it to {}",
                    account.name,
                    legacy.display(),
                    path.display()
                ),
            );
        }
        if let Some(leftover) = file.leftover() {
            doctor.note(
                "user",
                format!(
                    "{} is left over from an older version and ignored ({} is used): the next \
                     change removes it, or delete it",
                    leftover.display(),
                    path.display()
                ),
            );
        }
        let enrollment = match enrollment_file::load(&path, account) {
            Ok(Some(enrollment)) if enrollment.has_any_method() => enrollment,
            Ok(_) => {
                match config.unenrolled {
                    UnenrolledPolicy::Fail => doctor.problem(
                        "user",
                        format!(
                            "{} has no second factor ({} does not exist): {services} {refuse} \
                             {} (unenrolled = \"fail\")",
                            account.name,
                            path.display(),
                            account.name
                        ),
                        format!(
                            "run 'twofactor enroll' as {} (or 'twofactor enroll --user {}' as \
                             root), or set unenrolled = \"ignore\" until users have enrolled",
                            account.name, account.name
                        ),
                    ),
                    UnenrolledPolicy::Ignore => doctor.note(
                        "user",
                        format!(
                            "{} has not enrolled: {services} {} {} in without a second \
                             factor (unenrolled = \"ignore\")",
                            account.name,
                            verb(service_list, "lets", "let"),
                            account.name
                        ),
                    ),
                }
                continue;
            }
            Err(err) => {
                let fix = match err {
                    twofactor_core::Error::File {
                        problem: FileProblem::UnsafeParent(_),
                        ..
                    } => format!(
                        "make each directory from the home (or from the first directory {0} \
                         owns) down to the enrollment owned by {0} or root and not writable by \
                         group or others (chmod go-w), and check that the enrollment is still \
                         the one {0} made",
                        account.name
                    ),
                    _ => format!(
                        "fix the file's owner and mode (chmod 0600), or enroll again: \
                         'twofactor enroll --force' as {}",
                        account.name
                    ),
                };
                doctor.problem(
                    "user",
                    format!(
                        "{}'s enrollment is refused by the module ({err}): {services} {refuse} {}",
                        account.name, account.name
                    ),
                    fix,
                );
                continue;
            }
        };
        let view = state.state();
        let remaining = view
            .as_ref()
            .map(|s| remaining_backup_codes(&enrollment, s))
            .unwrap_or(enrollment.backup_codes.len());
        if enrollment.totp.is_none() && remaining == 0 && enrollment.fido2.is_empty() {
            doctor.problem(
                "user",
                format!(
                    "{} has no TOTP and every backup code is used: {services} {refuse} {}",
                    account.name, account.name
                ),
                format!("run 'twofactor enroll --force' as {}", account.name),
            );
            continue;
        }
        let mut methods = Vec::new();
        if let Some(totp) = &enrollment.totp {
            methods.push(format!("TOTP ({} digits)", totp.digits));
        }
        methods.push(format!("{remaining} backup codes left"));
        if !enrollment.fido2.is_empty() {
            methods.push(format!("{} security key(s)", enrollment.fido2.len()));
        }
        doctor.ok(
            "user",
            format!(
                "{} is enrolled for {services}: {}",
                account.name,
                methods.join(", ")
            ),
        );
        let legacy = enrollment
            .backup_codes
            .iter()
            .filter(|c| c.kind == twofactor_core::backup::BackupCodeKind::LegacyScratch)
            .count();
        if legacy > 0 {
            doctor.note(
                "user",
                format!(
                    "{} has {legacy} legacy scratch code(s) imported from google-authenticator \
                     (8 digits, guessable from a stolen enrollment file): 'twofactor \
                     backup-codes' replaces them",
                    account.name
                ),
            );
        }
        if remaining == 0 && enrollment.totp.is_some() {
            doctor.note(
                "user",
                format!(
                    "{} has no backup codes left: if the phone is lost, only root can help \
                     ('twofactor backup-codes' makes new ones)",
                    account.name
                ),
            );
        }
        if let Some(state) = &view {
            let local = Locks::of_login(state, &config.limits(), None, now);
            let reset = format!("twofactor reset-lockout --user {} (as root)", account.name);
            // A kind locked while the other still works is a partial
            // lockout: the user gets in, but should know which to use.
            let (codes_work, backup_codes_work) = (enrollment.totp.is_some(), remaining > 0);
            match (local.code, local.backup_code) {
                (Some(until), None) if backup_codes_work => doctor.note(
                    "user",
                    format!(
                        "{}'s codes from the app are locked until {} after too many failed \
                         codes; backup codes still work. '{reset}' lifts it",
                        account.name,
                        timefmt::rfc3339(until)
                    ),
                ),
                (None, Some(until)) if codes_work => doctor.note(
                    "user",
                    format!(
                        "{}'s backup codes are locked until {} after too many failed backup \
                         codes; codes from the app still work. '{reset}' lifts it",
                        account.name,
                        timefmt::rfc3339(until)
                    ),
                ),
                (None, None) => {}
                (code_until, backup_until) => doctor.problem(
                    "user",
                    format!(
                        "{} is locked out until {} after too many failed codes",
                        account.name,
                        timefmt::rfc3339(
                            code_until
                                .into_iter()
                                .chain(backup_until)
                                .min()
                                .unwrap_or(now)
                        )
                    ),
                    reset,
                ),
            }
            if let Some(clock) = clock_problem(&enrollment, state, now, config.window) {
                let message = format!(
                    "{}: a TOTP code of a time {} ahead of this host's clock was accepted: the \
                     clock was ahead then (a restored snapshot, a bad RTC, NTP) or is behind now",
                    account.name,
                    timefmt::duration(clock.seconds_ahead)
                );
                if clock.refuses_current_codes {
                    doctor.problem(
                        "clock",
                        format!("{message}; current TOTP codes are refused until the clock passes that time"),
                        format!(
                            "check the clock; backup codes still work, and 'twofactor enroll --force' \
                             (as {}) starts afresh",
                            account.name
                        ),
                    );
                } else {
                    doctor.note(
                        "clock",
                        format!("{message}; those codes stay used, current codes work"),
                    );
                }
            }
        }
    }
}

/// Add `service` to `services` unless it is there: a service that runs the
/// module twice (reported on its own) is still one service.
fn push_new(services: &mut Vec<String>, service: &str) {
    if !services.iter().any(|s| s == service) {
        services.push(service.to_string());
    }
}

/// The verb for `services` as its subject: one service or several.
fn verb<'a>(services: &[String], one: &'a str, several: &'a str) -> &'a str {
    if services.len() == 1 {
        one
    } else {
        several
    }
}

/// "an" before a vowel ("an account stack"), else "a".
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
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
