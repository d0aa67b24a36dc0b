//! sshd's effective configuration for one user (`sshd -T -C ...`), and what
//! it means for a PAM stack that asks for a second factor.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use twofactor_spawn::StandardStreamsOnly;

use crate::account::Account;
use crate::cli::DoctorArgs;

use super::findings::Findings;

/// Whether sshd runs the stack for the user, and cannot be got through
/// without it. Only when a stack sshd uses asks for the code (`asking`).
pub(super) fn check_sshd(
    findings: &mut Findings,
    args: &DoctorArgs,
    account: &Account,
    asking: &[String],
) {
    if !args.sshd.exists() {
        findings.note(
            "sshd",
            format!("{} is not installed: SSH not checked", args.sshd.display()),
        );
        return;
    }
    if !asking.iter().any(|s| s == "sshd") {
        findings.note(
            "sshd",
            format!(
                "{}/sshd does not ask for the second factor: SSH logins are not affected",
                args.pam_dir.display()
            ),
        );
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        findings.note(
            "sshd",
            "sshd's configuration not checked: 'sshd -T' needs root (run with sudo)".to_string(),
        );
        return;
    }
    match effective(&args.sshd, args.sshd_config.as_deref(), &account.name) {
        Err(why) => findings.problem(
            "sshd",
            format!("{why}: sshd would not start with this configuration"),
            "correct sshd_config ('sshd -t' shows the error)",
        ),
        Ok(settings) => {
            let found = problems(&settings, &account.name);
            if found.is_empty() {
                findings.ok(
                    "sshd",
                    format!(
                        "sshd runs the PAM stack for {} through keyboard-interactive, with no \
                         way around it",
                        account.name
                    ),
                );
            }
            for (problem, fix) in found {
                findings.problem("sshd", problem, fix);
            }
        }
    }
}

/// sshd's effective settings (lower-case keys, as `sshd -T` prints them).
struct SshdSettings(BTreeMap<String, String>);

/// Run `sshd -T` for `user` connecting from 127.0.0.1 (so `Match` blocks
/// for that user apply). Needs root, as sshd reads its host keys.
fn effective(sshd: &Path, config: Option<&Path>, user: &str) -> Result<SshdSettings, String> {
    let mut command = Command::new(sshd);
    command
        .standard_streams_only()
        .arg("-T")
        .arg("-C")
        .arg(format!("user={user},host=localhost,addr=127.0.0.1"));
    if let Some(config) = config {
        command.arg("-f").arg(config);
    }
    let output = command.output().map_err(|e| {
        format!(
            "cannot run {}: {}",
            sshd.display(),
            twofactor_core::files::describe_io_error(&e)
        )
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let why = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(format!(
            "{} -T fails ({}): {why}",
            sshd.display(),
            output.status
        ));
    }
    Ok(parse(&String::from_utf8_lossy(&output.stdout)))
}

/// Parse `sshd -T` output.
fn parse(text: &str) -> SshdSettings {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        if let Some((key, value)) = line.trim().split_once(' ') {
            map.entry(key.to_ascii_lowercase())
                .or_insert_with(|| value.trim().to_string());
        }
    }
    SshdSettings(map)
}

/// What is wrong with sshd for a stack that asks for the code: each entry
/// is (problem, fix). For `user` root, whether root can log in at all.
fn problems(settings: &SshdSettings, user: &str) -> Vec<(String, String)> {
    let get = |key: &str| settings.0.get(key).map(String::as_str).unwrap_or("");
    let yes = |key: &str| get(key).eq_ignore_ascii_case("yes");
    let mut out = Vec::new();
    if !yes("usepam") {
        out.push((
            "sshd has UsePAM no: its PAM stack, and so the second factor, is never used over SSH"
                .to_string(),
            "set UsePAM yes in sshd_config".to_string(),
        ));
        return out;
    }
    let kbd = yes("kbdinteractiveauthentication");
    let methods = get("authenticationmethods");
    let lists: Vec<Vec<&str>> = if methods.is_empty() || methods == "any" {
        let mut any = Vec::new();
        if yes("pubkeyauthentication") {
            any.push(vec!["publickey"]);
        }
        if yes("passwordauthentication") {
            any.push(vec!["password"]);
        }
        if kbd {
            any.push(vec!["keyboard-interactive"]);
        }
        any
    } else {
        methods
            .split_whitespace()
            .map(|list| list.split(',').collect())
            .collect()
    };
    let asks_code = |list: &Vec<&str>| {
        list.iter()
            .any(|m| *m == "keyboard-interactive" || m.starts_with("keyboard-interactive:"))
    };
    let fix_methods = "set AuthenticationMethods publickey,keyboard-interactive (key, then code) \
                       or keyboard-interactive (password and code) in sshd_config";
    for list in &lists {
        if list.contains(&"password") {
            out.push((
                format!(
                    "sshd allows the password method ({}): it answers every PAM prompt with the \
                     password, so the code prompt fails and password logins are refused (and \
                     count as failed codes)",
                    list.join(",")
                ),
                format!("set PasswordAuthentication no and {fix_methods}"),
            ));
        } else if !asks_code(list) {
            out.push((
                format!(
                    "sshd lets {user} in with {} alone: the PAM stack is not run, no second \
                     factor is asked",
                    list.join(",")
                ),
                fix_methods.to_string(),
            ));
        }
    }
    if !kbd {
        out.push((
            "sshd has KbdInteractiveAuthentication no: it cannot ask for the code".to_string(),
            "set KbdInteractiveAuthentication yes in sshd_config".to_string(),
        ));
    }
    if user == "root" {
        let permit = get("permitrootlogin");
        let every_list_asks = !lists.is_empty() && lists.iter().all(asks_code);
        if permit == "no" {
            out.push((
                "root cannot log in over SSH at all (PermitRootLogin no)".to_string(),
                "log in as an unprivileged, enrolled user and use su or sudo; check that \
                 user with --user"
                    .to_string(),
            ));
        } else if matches!(
            permit,
            "prohibit-password" | "without-password" | "forced-commands-only"
        ) && every_list_asks
        {
            out.push((
                format!(
                    "root cannot log in over SSH: PermitRootLogin {permit} refuses \
                     keyboard-interactive, which every allowed method list needs"
                ),
                "log in as an unprivileged, enrolled user and use su or sudo (check that user \
                 with --user), or allow root with a Match User root block"
                    .to_string(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> SshdSettings {
        parse(&format!(
            "usepam yes\nkbdinteractiveauthentication yes\npasswordauthentication no\n\
             pubkeyauthentication yes\npermitrootlogin prohibit-password\n{extra}"
        ))
    }

    #[test]
    fn good_configurations_have_no_problems() {
        for methods in [
            "publickey,keyboard-interactive",
            "keyboard-interactive",
            "publickey,keyboard-interactive:pam keyboard-interactive",
        ] {
            let s = settings(&format!("authenticationmethods {methods}\n"));
            assert!(problems(&s, "alice").is_empty(), "{methods}");
        }
    }

    #[test]
    fn bypasses_and_lockouts_are_found() {
        let s = settings("authenticationmethods any\n");
        let found = problems(&s, "alice");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].0.contains("publickey alone"), "{found:?}");

        let s = parse("usepam no\n");
        assert!(problems(&s, "alice")[0].0.contains("UsePAM no"));

        let s = settings("authenticationmethods password\n");
        assert!(problems(&s, "alice")[0].0.contains("password method"));

        let s = parse("usepam yes\nkbdinteractiveauthentication no\nauthenticationmethods any\npubkeyauthentication no\npasswordauthentication no\n");
        assert!(problems(&s, "alice")
            .iter()
            .any(|p| p.0.contains("KbdInteractiveAuthentication no")));

        let s = settings("authenticationmethods publickey,keyboard-interactive\n");
        let found = problems(&s, "root");
        assert!(found[0].0.contains("root cannot log in"), "{found:?}");
    }
}
