//! The configurations: the system one, the one each module line reads
//! (`config=` and its own `key=value` overrides), the limits they set, and
//! the state directories they name.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use twofactor_core::config::{Config, DEFAULT_CONFIG_PATH, MAX_CONFIG_BYTES};
use twofactor_core::files::{read_checked_text, FileRequirements};
use twofactor_core::ratelimit;
use twofactor_core::state::FailureKind;

use crate::system_config;

use super::findings::Findings;
use super::pam_d::PamLine;

/// The policy that applies to one module line: the configuration it reads
/// (`config=` or the default one) with its own `key=value` overrides.
#[derive(Clone)]
pub(super) struct LineConfig {
    pub(super) config: Config,
    /// Where it came from, for messages.
    pub(super) source: String,
}

/// The system configuration (`--config`, or the default path), which lines
/// without `config=` read.
pub(super) fn check_config(findings: &mut Findings, explicit: Option<&Path>) -> Option<Config> {
    let shown = explicit
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| DEFAULT_CONFIG_PATH.to_string());
    match system_config::load(explicit) {
        Ok(config) => {
            let missing = explicit.is_none() && !Path::new(DEFAULT_CONFIG_PATH).exists();
            findings.ok(
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
            findings.problem(
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
pub(super) fn check_limits(findings: &mut Findings, line_config: &LineConfig, services: &[String]) {
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
            None => findings.note(
                "limits",
                format!("{who}: the limit on wrong {name} is off: guesses are unlimited"),
            ),
            Some(per_day) => {
                let weaker = max > default_max || window < default_window || limits.by_host;
                if weaker {
                    let default_per_day =
                        ratelimit::guesses_per_day(&defaults.limits(), kind).unwrap_or(0);
                    findings.note(
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
        findings.note(
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
        findings.note(
            "limits",
            format!(
                "{who}: grace_period = {} s: a login from the same host (or terminal session) within that time needs no second factor",
                config.grace_period
            ),
        );
    }
}

/// The configuration a module line reads, with its overrides applied, or
/// `None` (and a problem) when the module would refuse it.
pub(super) fn line_config(
    findings: &mut Findings,
    line: &PamLine,
    base: Option<&Config>,
) -> Option<LineConfig> {
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
                    findings.problem(
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
        findings.problem(
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
            findings.problem(
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
                    findings.problem(
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
            findings.problem(
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
            findings.problem(
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

/// The state directory a configuration names, as the module will find it.
pub(super) fn check_state_dir(findings: &mut Findings, dir: &Path) {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => findings.problem(
            "state",
            format!(
                "the state directory {} is a symbolic link: the module refuses it, and every \
                 login through it fails",
                dir.display()
            ),
            format!("replace it by a directory: mkdir -m 0711 {}", dir.display()),
        ),
        Ok(meta) if !meta.is_dir() => findings.problem(
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
        Ok(meta) if meta.uid() != 0 || meta.mode() & 0o022 != 0 => findings.problem(
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
            findings.ok(
                "state",
                format!(
                    "state directory {} (root, {:04o})",
                    dir.display(),
                    meta.mode() & 0o7777
                ),
            );
            if meta.mode() & 0o011 == 0 {
                findings.note(
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
            Some(Ok(parent)) if parent.is_dir() => findings.ok(
                "state",
                format!(
                    "state directory {} does not exist yet: the module creates it at the \
                     first login",
                    dir.display()
                ),
            ),
            _ => findings.problem(
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
