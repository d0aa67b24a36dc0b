//! `twofactor enroll`: a new TOTP secret and backup codes, written to the
//! user's enrollment file and shown once.

use std::fs::{self, DirBuilder};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nix::unistd::{self, AccessFlags};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::Serialize;
use zeroize::Zeroizing;

use twofactor_core::backup::{self, GeneratedBackupCode};
use twofactor_core::config::Config;
use twofactor_core::enrollment::{
    encode_base32_secret, expand_path, Enrollment, MAX_ENROLLMENT_BYTES,
};
use twofactor_core::error::FileProblem;
use twofactor_core::files::{
    self, atomic_write, describe_io_error, read_checked_text, FileRequirements,
};
use twofactor_core::otpauth::totp_uri;
use twofactor_core::secret::SecretBytes;
use twofactor_core::totp::{TotpParams, GENERATED_SECRET_BYTES};

use crate::account::{self, Account};
use crate::cli::EnrollArgs;
use crate::error::CliError;
use crate::system_config;

/// Run `twofactor enroll`.
///
/// `args.non_interactive` changes nothing yet: this version never prompts.
/// The flag exists so provisioning scripts are already written against the
/// contract the interactive enrollment will keep.
pub fn run(args: &EnrollArgs) -> Result<(), CliError> {
    // The configuration is root's: read it before giving up root.
    let config = system_config::load(args.config.as_deref())?;
    let account = account::resolve_target(args.user.as_deref())?;
    let path = expand_path(&config.enrollment_path, &account.name, &account.home)?;
    let host = host_name()?;

    account::become_user(&account)?;

    create_parent_dirs(&path)?;
    check_parent_dir(&path, &account)?;
    refuse_to_replace(&path, args.force)?;

    let totp = new_totp_params(&config)?;
    let codes = backup::generate(backup::DEFAULT_COUNT);
    let enrollment = Enrollment {
        totp: Some(totp),
        backup_codes: codes.iter().map(|code| code.stored.clone()).collect(),
    };
    let issuer = if config.issuer.is_empty() {
        host.as_str()
    } else {
        config.issuer.as_str()
    };
    let label = format!("{}@{host}", account.name);
    let shown = Shown {
        account: &account,
        path: &path,
        issuer,
        label: &label,
        enrollment: &enrollment,
        codes: &codes,
    };
    // Rendered before writing, so a failure to render cannot leave an
    // enrollment behind whose secret nobody has seen.
    let output = if args.json {
        shown.json()?
    } else {
        shown.text()?
    };

    atomic_write(&path, enrollment.to_toml().as_bytes(), 0o600)?;
    check_module_can_read(&path, &account, &enrollment)?;

    let mut stdout = io::stdout().lock();
    stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| {
            CliError::System(format!(
                "{} was written, but its secret and backup codes could not be shown \
                 ({}); run the command again with --force",
                path.display(),
                describe_io_error(&err)
            ))
        })
}

fn host_name() -> Result<String, CliError> {
    let name = unistd::gethostname()
        .map_err(|err| CliError::System(format!("cannot read the host name: {}", err.desc())))?;
    Ok(name.to_string_lossy().into_owned())
}

/// Missing directories are created private (0700): the enrollment's
/// directory is the user's, and its listing is nobody else's business.
fn create_parent_dirs(path: &Path) -> Result<(), CliError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|err| {
            CliError::System(format!(
                "cannot create {}: {}",
                parent.display(),
                describe_io_error(&err)
            ))
        })
}

/// The module refuses an enrollment whose directory others could write to
/// (the file could be swapped under it); refuse to write one there, rather
/// than hand out codes that will never work. Same rule as the module's.
fn check_parent_dir(path: &Path, account: &Account) -> Result<(), CliError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    files::check_parent(path, account.uid.as_raw()).map_err(|problem| match problem {
        FileProblem::Missing | FileProblem::Io(_) => {
            CliError::System(format!("cannot use {}: {problem}", parent.display()))
        }
        _ => CliError::Refused(format!(
            "{} is not a safe place for an enrollment ({problem}): pam_twofactor requires \
             its directory to be owned by root or by {} and not writable by group or others",
            path.display(),
            account.name
        )),
    })?;
    // Checked now, before anything is generated, so the failure is reported
    // plainly rather than through the temporary file's name.
    unistd::access(parent, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|err| {
        CliError::System(format!(
            "cannot write to {} as {}: {}",
            parent.display(),
            account.name,
            err.desc()
        ))
    })
}

/// Replacing an enrollment silently would lock the user out of every
/// authenticator and backup code they already have.
fn refuse_to_replace(path: &Path, force: bool) -> Result<(), CliError> {
    // symlink_metadata: a symlink (even a dangling one) is something to
    // replace, never something to follow.
    match fs::symlink_metadata(path) {
        Ok(_) if force => Ok(()),
        Ok(_) => Err(CliError::Refused(format!(
            "{} already exists: enrolling again replaces it, and the authenticator entry \
             and backup codes from the old enrollment stop working; use --force if that is \
             what you want",
            path.display()
        ))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(CliError::System(format!(
            "cannot check {}: {}",
            path.display(),
            describe_io_error(&err)
        ))),
    }
}

fn new_totp_params(config: &Config) -> Result<TotpParams, CliError> {
    let mut secret = Zeroizing::new(vec![0u8; GENERATED_SECRET_BYTES]);
    OsRng.try_fill_bytes(&mut secret).map_err(|err| {
        CliError::System(format!("cannot get random bytes from the system: {err}"))
    })?;
    Ok(TotpParams {
        secret: SecretBytes::new(std::mem::take(&mut *secret)),
        algorithm: config.totp_algorithm,
        digits: config.totp_digits,
        period: config.totp_period,
    })
}

/// Read the file back the way the module will (owner, mode, parent, parse),
/// so a success here means the printed codes work at the next login.
fn check_module_can_read(
    path: &Path,
    account: &Account,
    written: &Enrollment,
) -> Result<(), CliError> {
    let requirements = FileRequirements::secret_of(account.uid.as_raw(), MAX_ENROLLMENT_BYTES);
    let text = read_checked_text(path, &requirements)?;
    let reread = Enrollment::parse(&text, &path.display().to_string())?;
    if &reread != written {
        return Err(CliError::System(format!(
            "{} changed while it was being written; run the command again with --force",
            path.display()
        )));
    }
    Ok(())
}

/// What is shown to the user once the enrollment exists.
struct Shown<'a> {
    account: &'a Account,
    path: &'a Path,
    issuer: &'a str,
    label: &'a str,
    enrollment: &'a Enrollment,
    codes: &'a [GeneratedBackupCode],
}

#[derive(Serialize)]
struct JsonReport<'a> {
    user: &'a str,
    uid: u32,
    enrollment_path: String,
    issuer: &'a str,
    account: &'a str,
    otpauth_uri: &'a str,
    secret: &'a str,
    algorithm: &'static str,
    digits: u8,
    period: u64,
    backup_codes: Vec<&'a str>,
}

impl Shown<'_> {
    fn totp(&self) -> Result<&TotpParams, CliError> {
        self.enrollment
            .totp
            .as_ref()
            .ok_or_else(|| CliError::System("internal error: enrollment without TOTP".into()))
    }

    fn json(&self) -> Result<Zeroizing<String>, CliError> {
        let totp = self.totp()?;
        let uri = totp_uri(totp, self.issuer, self.label);
        let secret = encode_base32_secret(&totp.secret);
        let report = JsonReport {
            user: &self.account.name,
            uid: self.account.uid.as_raw(),
            enrollment_path: self.path.to_string_lossy().into_owned(),
            issuer: self.issuer,
            account: self.label,
            otpauth_uri: &uri,
            secret: &secret,
            algorithm: totp.algorithm.name(),
            digits: totp.digits,
            period: totp.period,
            backup_codes: self
                .codes
                .iter()
                .map(|code| code.display.as_str())
                .collect(),
        };
        let mut text =
            Zeroizing::new(serde_json::to_string(&report).map_err(|err| {
                CliError::System(format!("cannot encode the result as JSON: {err}"))
            })?);
        text.push('\n');
        Ok(text)
    }

    fn text(&self) -> Result<Zeroizing<String>, CliError> {
        let totp = self.totp()?;
        let uri = totp_uri(totp, self.issuer, self.label);
        let secret = encode_base32_secret(&totp.secret);
        let mut out = Zeroizing::new(String::new());
        out.push_str(&format!(
            "Enrolled {} for two-factor login ({}).\n\n",
            self.account.name,
            self.path.display()
        ));
        out.push_str("Add the account to your authenticator app with this link:\n");
        out.push_str(&format!("  {}\n\n", uri.as_str()));
        out.push_str(&format!(
            "or enter the key by hand ({}, {} digits, {} seconds):\n",
            totp.algorithm.name(),
            totp.digits,
            totp.period
        ));
        out.push_str(&format!("  {}\n\n", group_by_four(&secret).as_str()));
        out.push_str(
            "Backup codes: each works once. Keep them somewhere safe; they are not shown again.\n",
        );
        for code in self.codes {
            out.push_str(&format!("  {}\n", code.display.as_str()));
        }
        Ok(out)
    }
}

/// `ABCDEFGH...` as `ABCD EFGH ...`: easier to type, and apps ignore spaces.
fn group_by_four(secret: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(secret.len() + secret.len() / 4));
    for (i, c) in secret.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_grouped_by_four() {
        assert_eq!(group_by_four("ABCDEFGHIJ").as_str(), "ABCD EFGH IJ");
        assert_eq!(group_by_four("ABCD").as_str(), "ABCD");
        assert_eq!(group_by_four("").as_str(), "");
    }

    #[test]
    fn generated_params_follow_the_config() {
        let config = Config {
            totp_algorithm: twofactor_core::totp::Algorithm::SHA256,
            totp_digits: 8,
            totp_period: 60,
            ..Config::default()
        };
        let params = new_totp_params(&config).unwrap();
        assert_eq!(params.secret.len(), GENERATED_SECRET_BYTES);
        assert_eq!((params.digits, params.period), (8, 60));
        assert_eq!(params.algorithm, twofactor_core::totp::Algorithm::SHA256);
        assert_ne!(params.secret, new_totp_params(&config).unwrap().secret);
    }
}
