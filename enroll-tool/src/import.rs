//! `twofactor import google-authenticator`: turn `~/.google_authenticator`
//! into an enrollment, so users keep their authenticator entry (and, as
//! legacy backup codes, their scratch codes) when a site switches modules.
//!
//! Decisions (see docs/admin-guide.md, "google-authenticator"):
//! - TOTP files are imported (SHA1, 6 digits, the file's step size).
//! - HOTP (counter-based) files are refused with nothing written: the module
//!   verifies time-based codes only, and a counter would have to live in the
//!   root-owned state with a resynchronisation window of its own.
//! - Scratch codes become legacy backup codes: salted SHA-256 like our own
//!   codes, but 8 digits are brute-forceable offline, which the user is told,
//!   with the advice to replace them (`twofactor backup-codes`).
//! - Options that are system-wide here (window, rate limit) are reported
//!   with the setting that now applies, never silently dropped.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;
use zeroize::Zeroizing;

use twofactor_core::backup::{self, BackupCodeHash};
use twofactor_core::config::Config;
use twofactor_core::enrollment::Enrollment;
use twofactor_core::files::{read_checked_text, FileRequirements};
use twofactor_core::google_authenticator::{
    GoogleAuthenticatorFile, DEFAULT_FILE_NAME, DEFAULT_STEP_SIZE, MAX_FILE_BYTES,
};
use twofactor_core::notify::EVENT_ENROLLED;
use twofactor_core::secret::SecretBytes;
use twofactor_core::totp::{Algorithm, TotpParams, PERIOD_RANGE};

use crate::account::{self, Account};
use crate::cli::{GoogleAuthenticatorImportArgs, ImportArgs, ImportSource};
use crate::enrollment_file::{self, EnrollmentFile};
use crate::error::CliError;
use crate::events::{self, Event};
use crate::output;
use crate::system_config;

/// Run `twofactor import SOURCE`.
pub fn run(args: &ImportArgs) -> Result<(), CliError> {
    match &args.source {
        ImportSource::GoogleAuthenticator(args) => google_authenticator(args),
        ImportSource::PamU2f(args) => crate::fido2::import_pam_u2f(args),
    }
}

/// One line of the report: how an option of the old file was mapped.
#[derive(Debug, Serialize)]
struct Note {
    /// The option (`WINDOW_SIZE`, `RATE_LIMIT`, ...) or `scratch codes`.
    option: String,
    /// `imported`, `system-wide`, `always-on`, `not-imported` or `warning`.
    outcome: &'static str,
    /// A sentence for the user.
    text: String,
}

#[derive(Serialize)]
struct Report<'a> {
    user: &'a str,
    source: String,
    enrollment_path: String,
    written: bool,
    replaced: bool,
    totp: Option<TotpReport>,
    legacy_backup_codes: usize,
    notes: &'a [Note],
}

#[derive(Serialize)]
struct TotpReport {
    algorithm: &'static str,
    digits: u8,
    period: u64,
    secret_bits: usize,
}

fn google_authenticator(args: &GoogleAuthenticatorImportArgs) -> Result<(), CliError> {
    let config = system_config::load(args.target.config.as_deref())?;
    let account = account::resolve_target(args.target.user.as_deref())?;
    let caller = account::caller_name();
    let path = enrollment_file::path_of(&config, &account)?;
    let source = match &args.path {
        Some(path) => std::path::absolute(path).map_err(|err| {
            CliError::System(format!(
                "cannot resolve {}: {}",
                path.display(),
                twofactor_core::files::describe_io_error(&err)
            ))
        })?,
        None => account.home.join(DEFAULT_FILE_NAME),
    };

    let text = read_source(
        &source,
        args.path.is_some(),
        &account,
        &SourceRules {
            what: "google-authenticator file",
            // The secret must be the user's alone: google-authenticator-libpam's
            // own check. A root-owned file (its `user=root secret=...` setups)
            // only when root names it.
            root_may_own: false,
            forbidden_mode: 0o077,
            max_size: MAX_FILE_BYTES,
        },
    )?;
    let file = parse_source(&text, &source)?;
    let (enrollment, notes) = convert(&file, &config, !args.no_scratch_codes, &source)?;
    let existing = EnrollmentFile::find(&path)?;
    let exists = existing.exists();
    if exists && !args.force && !args.dry_run {
        return Err(CliError::Refused(format!(
            "{} already exists: importing replaces it, and the authenticator entry and \
             backup codes of that enrollment stop working; use --force if that is what \
             you want",
            existing.source().display()
        )));
    }
    if !args.dry_run {
        enrollment_file::create_parent_dirs(&path)?;
        enrollment_file::check_parent_dir(&path, &account)?;
        enrollment_file::save(&path, &account, &enrollment)?;
    }

    let legacy = enrollment.backup_codes.len();
    let totp = enrollment.totp.as_ref().map(|t| TotpReport {
        algorithm: t.algorithm.name(),
        digits: t.digits,
        period: t.period,
        secret_bits: t.secret.len() * 8,
    });
    let report = Report {
        user: &account.name,
        source: source.display().to_string(),
        enrollment_path: path.display().to_string(),
        written: !args.dry_run,
        replaced: exists && !args.dry_run,
        totp,
        legacy_backup_codes: legacy,
        notes: &notes,
    };
    if args.json {
        output::print(&output::json_line(&report)?)?;
    } else {
        output::print(&report.text())?;
    }
    if args.dry_run {
        return Ok(());
    }
    let event = Event {
        name: EVENT_ENROLLED,
        user: &account.name,
        by: &caller,
        details: format!(
            "imported=google-authenticator methods={} legacy_backup_codes={legacy} replaced={}",
            if enrollment.totp.is_some() {
                "totp,backup-codes"
            } else {
                "backup-codes"
            },
            if exists { "yes" } else { "no" }
        ),
        notify: true,
    };
    if let Some(warning) = events::announce(&config, &event) {
        output::warn(&warning);
    }
    Ok(())
}

/// What an import requires of the file it reads.
pub struct SourceRules {
    /// For messages: "google-authenticator file", "u2f_keys file".
    pub what: &'static str,
    /// A file of root's is accepted besides one of the user's (when root
    /// reads it, root's is accepted anyway).
    pub root_may_own: bool,
    /// Mode bits that must be clear.
    pub forbidden_mode: u32,
    /// Largest size accepted.
    pub max_size: u64,
}

/// Read the file an import takes its factors from, then become the user
/// for good (everything written afterwards is the user's).
///
/// A file root names on the command line is read with root's rights: the
/// central files other modules keep (pam_u2f's `authfile=`, a
/// google-authenticator `secret=` outside the home) are root's and often
/// mode 0600. Anything else is read with the user's rights: a user cannot
/// read through this command what they could not read themselves, and root
/// importing a user's default file cannot be led by a link in that home to
/// a file of root's. The file's owner must be the user (or root, see
/// [`SourceRules`]); it must not be a symbolic link, and its directory must
/// not be writable by others.
pub fn read_source(
    source: &Path,
    named: bool,
    account: &Account,
    rules: &SourceRules,
) -> Result<Zeroizing<String>, CliError> {
    let as_root = named && account::caller_is_root();
    if !as_root {
        account::become_user(account)?;
    }
    let root_owned = std::fs::symlink_metadata(source).is_ok_and(|meta| meta.uid() == 0);
    let root_accepted = if as_root {
        through_root_dirs(source)
    } else {
        rules.root_may_own
    };
    let owner = if root_owned && root_accepted {
        0
    } else {
        account.uid.as_raw()
    };
    let requirements = FileRequirements {
        owner,
        forbidden_mode: rules.forbidden_mode,
        max_size: rules.max_size,
    };
    let text = match read_checked_text(source, &requirements) {
        Ok(text) => text,
        Err(err) if err.is_missing_file() => {
            return Err(CliError::Refused(format!(
                "{} does not exist: {} has no {} there (name another one as PATH)",
                source.display(),
                account.name,
                rules.what
            )))
        }
        Err(err) => return Err(err.into()),
    };
    account::become_user(account)?;
    Ok(text)
}

/// Root takes a file of root's only along directories of root's: through
/// a link or a directory of a user's in the path typed, that user could
/// otherwise show root a secret of root's (another user's central
/// google-authenticator file) as theirs.
fn through_root_dirs(path: &Path) -> bool {
    let Ok(absolute) = std::path::absolute(path) else {
        return false;
    };
    absolute.ancestors().skip(1).all(|dir| {
        std::fs::symlink_metadata(dir).is_ok_and(|meta| meta.is_dir() && meta.uid() == 0)
    })
}

fn parse_source(text: &str, source: &Path) -> Result<GoogleAuthenticatorFile, CliError> {
    GoogleAuthenticatorFile::parse(text).map_err(|why| {
        CliError::System(format!(
            "{} is not a google-authenticator file this command understands: {why}; \
             nothing was written",
            source.display()
        ))
    })
}

/// The enrollment a google-authenticator file becomes, and what the user
/// should know about each of its options.
fn convert(
    file: &GoogleAuthenticatorFile,
    config: &Config,
    with_scratch_codes: bool,
    source: &Path,
) -> Result<(Enrollment, Vec<Note>), CliError> {
    let mut notes = Vec::new();
    let mut note = |option: &str, outcome: &'static str, text: String| {
        notes.push(Note {
            option: option.to_string(),
            outcome,
            text,
        })
    };
    if file.hotp_counter.is_some() {
        return Err(CliError::Refused(format!(
            "{} is set up for counter-based (HOTP) codes (\" HOTP_COUNTER); pam_twofactor \
             accepts time-based (TOTP) codes only, so nothing was imported. Run 'twofactor \
             enroll' and add the new entry to the authenticator app instead",
            source.display()
        )));
    }
    let totp = if file.totp {
        let period = file.step_size.unwrap_or(DEFAULT_STEP_SIZE);
        if !PERIOD_RANGE.contains(&period) {
            return Err(CliError::Refused(format!(
                "{} uses a step size of {period} seconds (\" STEP_SIZE); pam_twofactor \
                 accepts {} to {} seconds, so nothing was imported. Run 'twofactor enroll' \
                 instead",
                source.display(),
                PERIOD_RANGE.start(),
                PERIOD_RANGE.end()
            )));
        }
        note(
            "TOTP_AUTH",
            "imported",
            format!(
                "TOTP secret ({} bits), SHA1, 6 digits, every {period} seconds: the \
                 authenticator app's entry keeps working.",
                file.secret.len() * 8
            ),
        );
        Some(TotpParams {
            secret: SecretBytes::new(file.secret.expose().to_vec()),
            algorithm: Algorithm::SHA1,
            digits: 6,
            period,
        })
    } else {
        note(
            "TOTP_AUTH",
            "not-imported",
            "the file does not enable time-based codes (no \" TOTP_AUTH): only its \
             scratch codes worked with it, and only they are imported."
                .to_string(),
        );
        None
    };

    let (before, after) = file.window_steps();
    let window = u32::from(config.window);
    let window_text = if before == window && after == window {
        format!(
            "google-authenticator accepted {before} step(s) either side; so does \
             pam_twofactor here (window = {window} in pam_twofactor.toml)."
        )
    } else {
        format!(
            "google-authenticator accepted {before} step(s) before and {after} after the \
             current one; pam_twofactor's window is system-wide: {window} step(s) either \
             side (window in pam_twofactor.toml, at most 4)."
        )
    };
    note("WINDOW_SIZE", "system-wide", window_text);
    if let Some(limit) = file.rate_limit {
        note(
            "RATE_LIMIT",
            "system-wide",
            format!(
                "google-authenticator allowed {} login(s) every {} seconds; pam_twofactor \
                 counts failures only, system-wide: {} failed codes within {} seconds lock \
                 codes (max_code_failures, code_failure_window).",
                limit.attempts, limit.seconds, config.max_code_failures, config.code_failure_window
            ),
        );
    }
    if file.totp {
        match &file.disallow_reuse {
            Some(_) => note(
                "DISALLOW_REUSE",
                "always-on",
                "pam_twofactor accepts each time step once per user, always.".to_string(),
            ),
            None => note(
                "DISALLOW_REUSE",
                "always-on",
                "google-authenticator let a code be used again within its step; \
                 pam_twofactor never does."
                    .to_string(),
            ),
        }
    }
    if let Some(skew) = file.time_skew {
        note(
            "TIME_SKEW",
            "not-imported",
            format!(
                "the clock skew google-authenticator had learnt ({skew} steps) is not \
                 used: pam_twofactor does not adjust for skew, keep the clocks right (NTP)."
            ),
        );
    }
    for option in &file.other_options {
        note(
            option,
            "not-imported",
            "an option pam_twofactor does not know; ignored.".to_string(),
        );
    }

    let mut backup_codes: Vec<BackupCodeHash> = Vec::new();
    if with_scratch_codes {
        for code in &file.scratch_codes {
            // normalize_legacy accepted the code when parsing, so it hashes.
            if let Some(stored) = backup::hash_legacy(code) {
                backup_codes.push(stored);
            }
        }
        if !backup_codes.is_empty() {
            note(
                "scratch codes",
                "warning",
                format!(
                    "{} scratch code(s) imported as legacy backup codes: each works once. \
                     They have 8 digits, so unlike pam_twofactor's own codes they could be \
                     guessed from a stolen copy of the enrollment file: replace them with \
                     'twofactor backup-codes' once you can store new ones.",
                    backup_codes.len()
                ),
            );
        }
    } else if !file.scratch_codes.is_empty() {
        note(
            "scratch codes",
            "not-imported",
            format!(
                "{} scratch code(s) left out (--no-scratch-codes): run 'twofactor \
                 backup-codes' for new backup codes.",
                file.scratch_codes.len()
            ),
        );
    }
    if totp.is_none() && backup_codes.is_empty() {
        return Err(CliError::Refused(format!(
            "{} holds nothing pam_twofactor can use (no TOTP, no scratch codes); nothing \
             was imported. Run 'twofactor enroll' instead",
            source.display()
        )));
    }
    note(
        "file",
        "warning",
        format!(
            "{} was left as it is. Once pam_google_authenticator is out of the PAM stacks, \
             delete it: until then a code used with one module still works with the other.",
            source.display()
        ),
    );
    let enrollment = Enrollment {
        totp,
        backup_codes,
        ..Enrollment::default()
    };
    Ok((enrollment, notes))
}

impl Report<'_> {
    fn text(&self) -> String {
        let mut out = if self.written {
            format!(
                "Imported {} for {} into {}{}.\n",
                self.source,
                self.user,
                self.enrollment_path,
                if self.replaced {
                    " (the previous enrollment was replaced)"
                } else {
                    ""
                }
            )
        } else {
            format!(
                "Dry run: importing {} for {} would write {}. Nothing was written.\n",
                self.source, self.user, self.enrollment_path
            )
        };
        for note in self.notes {
            let label = match note.outcome {
                "warning" => "Warning",
                _ => note.option.as_str(),
            };
            out.push_str(&format!("  {label}: {}\n", note.text));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> GoogleAuthenticatorFile {
        GoogleAuthenticatorFile::parse(text).unwrap()
    }

    const SECRET: &str = "YQGZRSZWZ37QUXVQIOKA3HNRWI";

    #[test]
    fn totp_file_with_scratch_codes() {
        let file = parse(&format!(
            "{SECRET}\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE\n\
             \" TOTP_AUTH\n19317516\n21858389\n"
        ));
        let (e, notes) = convert(&file, &Config::default(), true, Path::new("/x")).unwrap();
        let totp = e.totp.as_ref().unwrap();
        assert_eq!((totp.digits, totp.period), (6, 30));
        assert_eq!(totp.algorithm, Algorithm::SHA1);
        assert_eq!(e.backup_codes.len(), 2);
        assert!(e
            .backup_codes
            .iter()
            .all(|c| c.kind == backup::BackupCodeKind::LegacyScratch));
        let text: Vec<String> = notes.iter().map(|n| n.text.clone()).collect();
        let all = text.join("\n");
        assert!(all.contains("8 step(s) before and 8 after"), "{all}");
        assert!(all.contains("3 login(s) every 30 seconds"), "{all}");
        assert!(all.contains("twofactor backup-codes"), "{all}");
        // No secret or code in the report.
        assert!(!all.contains(SECRET) && !all.contains("19317516"), "{all}");
    }

    #[test]
    fn hotp_and_odd_step_sizes_are_refused() {
        let hotp = parse(&format!("{SECRET}\n\" HOTP_COUNTER 1\n12345678\n"));
        let err = convert(&hotp, &Config::default(), true, Path::new("/x")).unwrap_err();
        assert!(err.message().contains("HOTP"), "{err:?}");
        assert!(err.message().contains("nothing was imported"), "{err:?}");
        let fast = parse(&format!("{SECRET}\n\" STEP_SIZE 10\n\" TOTP_AUTH\n"));
        let err = convert(&fast, &Config::default(), true, Path::new("/x")).unwrap_err();
        assert!(err.message().contains("step size of 10 seconds"), "{err:?}");
        let slow = parse(&format!("{SECRET}\n\" STEP_SIZE 60\n\" TOTP_AUTH\n"));
        let (e, _) = convert(&slow, &Config::default(), true, Path::new("/x")).unwrap();
        assert_eq!(e.totp.unwrap().period, 60);
    }

    #[test]
    fn scratch_codes_only_or_left_out() {
        let file = parse(&format!("{SECRET}\n12345678\n"));
        let (e, _) = convert(&file, &Config::default(), true, Path::new("/x")).unwrap();
        assert!(e.totp.is_none());
        assert_eq!(e.backup_codes.len(), 1);
        let err = convert(&file, &Config::default(), false, Path::new("/x")).unwrap_err();
        assert!(err.message().contains("nothing pam_twofactor can use"));
        let file = parse(&format!("{SECRET}\n\" TOTP_AUTH\n12345678\n"));
        let (e, notes) = convert(&file, &Config::default(), false, Path::new("/x")).unwrap();
        assert!(e.backup_codes.is_empty());
        assert!(notes.iter().any(|n| n.text.contains("--no-scratch-codes")));
    }
}
