//! The PAM stacks: which services run the module, how many times, and
//! whether each line naming it can enforce it (group, control, a leading
//! `-`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::error::CliError;

use super::findings::Findings;
use super::pam_d::{self, PamLine};

/// Every line naming the module, and the services whose auth stack runs it.
pub(super) struct Stacks {
    /// In every file of the directory (common-* included), in file order.
    pub(super) lines: Vec<PamLine>,
    /// The services that run each line (by its place) in their auth stack.
    users_of: BTreeMap<String, Vec<String>>,
    /// The services whose auth stack asks for the second factor.
    pub(super) asking: Vec<String>,
}

impl Stacks {
    /// Read the stacks of `pam_dir`: a service that asks for the second
    /// factor twice, or no stack asking for it at all, is a finding.
    pub(super) fn read(findings: &mut Findings, pam_dir: &Path) -> Result<Stacks, CliError> {
        let services = pam_d::services(pam_dir)
            .map_err(|why| CliError::System(format!("cannot read the PAM stacks: {why}")))?;

        let mut lines: Vec<PamLine> = Vec::new();
        for name in all_files(pam_dir)? {
            let path = pam_dir.join(&name);
            if let Ok(text) = fs::read_to_string(&path) {
                lines.extend(
                    pam_d::parse(&path, &text)
                        .into_iter()
                        .filter(PamLine::is_twofactor),
                );
            }
        }
        let mut users_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut asking: Vec<String> = Vec::new();
        for service in &services {
            let stack = pam_d::expanded(pam_dir, service, "auth");
            let ours: Vec<&PamLine> = stack.iter().filter(|l| l.is_twofactor()).collect();
            if ours.len() > 1 {
                let places: Vec<String> = ours.iter().map(|l| l.place()).collect();
                findings.problem(
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
                asking.push(service.clone());
            }
            for line in ours {
                push_new(users_of.entry(line.place()).or_default(), service);
            }
        }

        if lines.is_empty() {
            findings.note(
                "stack",
                format!(
                    "no PAM stack in {} uses pam_twofactor: no second factor is asked anywhere \
                     (enable it with 'pam-auth-update --enable twofactor' or a line in /etc/pam.d)",
                    pam_dir.display()
                ),
            );
        }
        Ok(Stacks {
            lines,
            users_of,
            asking,
        })
    }

    /// The services that run `line` in their auth stack.
    pub(super) fn services_running(&self, line: &PamLine) -> Vec<String> {
        self.users_of
            .get(&line.place())
            .cloned()
            .unwrap_or_default()
    }
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
        .filter(|name| !pam_d::is_leftover(name))
        .collect();
    names.sort();
    Ok(names)
}

/// The group and control of a module line.
pub(super) fn check_line_shape(findings: &mut Findings, line: &PamLine, services: &[String]) {
    let affected = if services.is_empty() {
        "logins through this file".to_string()
    } else {
        format!("{} logins", services.join(", "))
    };
    if line.group != "auth" {
        findings.problem(
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
        "sufficient" => findings.problem(
            "stack",
            format!(
                "{}: \"sufficient\": a code ends the stack with success, so the modules after \
                 it (such as the password) are skipped",
                line.place()
            ),
            "use requisite",
        ),
        "optional" => findings.problem(
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
                findings.problem(
                    "stack",
                    format!(
                        "{}: the control [{control}] ignores a failure of the module, so a \
                         wrong code does not stop {affected}",
                        line.place()
                    ),
                    "use requisite",
                );
            } else {
                findings.note(
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
        findings.note(
            "stack",
            format!(
                "{}: the leading '-' makes libpam skip the line silently when the module is \
                 missing (no second factor then)",
                line.place()
            ),
        );
    }
}

/// Add `service` to `services` unless it is there: a service that runs the
/// module twice (reported on its own) is still one service.
pub(super) fn push_new(services: &mut Vec<String>, service: &str) {
    if !services.iter().any(|s| s == service) {
        services.push(service.to_string());
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
