//! `twofactor fido2 add|list|remove` and `twofactor import pam-u2f`:
//! security keys in the user's enrollment.
//!
//! Registration talks to the key through twofactor-fido2-hid (ctap-hid-fido2
//! with its output off and its panics caught) before the switch to the
//! user: the hidraw devices are often root's, and nothing of the user's is
//! touched until then. The key's answer is checked by twofactor-core (the
//! relying party, user presence, the COSE public key); its attestation is not
//! judged, so any FIDO2 key can be registered.

use std::path::{Path, PathBuf};

use serde::Serialize;

use twofactor_core::config::Config;
use twofactor_core::enrollment::Enrollment;
use twofactor_core::fido2::pam_u2f::parse_u2f_keys;
use twofactor_core::fido2::{
    new_challenge, parse_registration, validate_name, Credential, Origin, MAX_CREDENTIALS,
};
use twofactor_fido2_hid::{attached, Attached, Key};

use crate::account::{self, Account};
use crate::cli::{
    Fido2AddArgs, Fido2Args, Fido2Command, Fido2ListArgs, Fido2RemoveArgs, PamU2fImportArgs,
};
use crate::enrollment_file;
use crate::error::CliError;
use crate::events::{self, Event};
use crate::output;
use crate::system_config;
use crate::terminal::{Answer, Terminal, NOTHING_CHANGED, NOTHING_WRITTEN};

/// Event names (syslog and notify_command).
const EVENT_KEY_ADDED: &str = "security-key-added";
const EVENT_KEY_REMOVED: &str = "security-key-removed";

/// Run `twofactor fido2 ...`.
pub fn run(args: &Fido2Args) -> Result<(), CliError> {
    match &args.command {
        Fido2Command::Add(args) => add(args),
        Fido2Command::List(args) => list(args),
        Fido2Command::Remove(args) => remove(args),
    }
}

/// The relying-party id new credentials get: the one the module asks for.
pub fn relying_party(config: &Config) -> String {
    twofactor_core::fido2::relying_party(config)
}

#[derive(Serialize)]
struct KeyReport {
    name: String,
    algorithm: &'static str,
    rp_id: String,
    user_verification: bool,
    origin: &'static str,
    created: u64,
    credential: String,
}

fn report(credential: &Credential) -> KeyReport {
    KeyReport {
        name: credential.name.clone(),
        algorithm: credential.public_key.algorithm().name(),
        rp_id: credential.rp_id.clone(),
        user_verification: credential.user_verification,
        origin: match credential.origin {
            Origin::Registered => "registered",
            Origin::PamU2f => "pam-u2f",
        },
        created: credential.created,
        credential: credential.fingerprint()[..16].to_string(),
    }
}

fn choose_device(requested: Option<&Path>) -> Result<Attached, CliError> {
    let devices = attached().map_err(|f| CliError::System(f.message))?;
    if let Some(path) = requested {
        let path = path.to_string_lossy();
        return devices.into_iter().find(|d| d.path == path).ok_or_else(|| {
            CliError::Refused(format!("{path} is not an attached FIDO2 security key"))
        });
    }
    let mut devices = devices;
    match devices.len() {
        0 => Err(CliError::Refused(
            "no FIDO2 security key is attached; plug one in and run the command again".into(),
        )),
        1 => Ok(devices.remove(0)),
        _ => Err(CliError::Refused(format!(
            "{} security keys are attached; choose one with --device PATH: {}",
            devices.len(),
            devices
                .iter()
                .map(|d| format!("{} ({})", d.path, d.product))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn free_name(enrollment: Option<&Enrollment>, prefix: &str) -> String {
    (1..)
        .map(|n| format!("{prefix}{n}"))
        .find(|name| !enrollment.is_some_and(|e| e.fido2.iter().any(|c| &c.name == name)))
        .unwrap_or_else(|| prefix.to_string())
}

fn add(args: &Fido2AddArgs) -> Result<(), CliError> {
    let config = system_config::load(args.target.config.as_deref())?;
    let account = account::resolve_target(args.target.user.as_deref())?;
    let caller = account::caller_name();
    let path = enrollment_file::path_of(&config, &account)?;
    if let Some(name) = &args.name {
        validate_name(name).map_err(CliError::Refused)?;
    }
    let rp_id = relying_party(&config);
    let device = choose_device(args.device.as_deref())?;
    let key = Key::open(&device.path).map_err(|f| CliError::System(f.message))?;
    let info = key.info().map_err(|f| CliError::System(f.message))?;

    let mut pin = None;
    let mut terminal = None;
    if info.pin_set {
        let mut t = Terminal::open(
            "to ask for the security key's PIN on",
            "run it in a terminal",
            NOTHING_WRITTEN,
        )?;
        match t.ask("Security key PIN: ", false)? {
            Answer::Line(line) => pin = Some(line),
            Answer::End => {
                return Err(CliError::Refused(
                    "no PIN given; nothing was written".into(),
                ))
            }
        }
        terminal = Some(t);
    } else if config.fido2_user_verification && !info.uv_builtin {
        return Err(CliError::Refused(
            "this system requires user verification (fido2_user_verification), but the key \
             has no PIN and no built-in verification: set a PIN on it first"
                .into(),
        ));
    }
    let user_verification = pin.is_some() || (config.fido2_user_verification && info.uv_builtin);
    if let Some(t) = terminal.as_mut() {
        t.say("Touch your security key.\n")?;
    } else if !args.json {
        output::print("Touch your security key.\n")?;
    }
    let challenge = new_challenge();
    let auth_data = key
        .register(
            &rp_id,
            &challenge,
            info.eddsa,
            pin.as_ref().map(|p| p.as_str()),
            user_verification && pin.is_none(),
            &[],
        )
        .map_err(|f| CliError::Refused(format!("the key refused: {}", f.message)))?;
    drop(pin);
    let new = parse_registration(&auth_data, &rp_id)
        .map_err(|why| CliError::System(format!("the key's answer is unusable: {why}")))?;
    let now = output::now()?;

    account::become_user(&account)?;
    let existing = enrollment_file::load(&path, &account)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| free_name(existing.as_ref(), "key-"));
    let credential = Credential {
        name: name.clone(),
        rp_id: rp_id.clone(),
        credential_id: new.credential_id,
        public_key: new.public_key,
        // A key with a PIN keeps asking for it: a stolen key alone is not
        // enough then.
        user_verification,
        flags: new.flags,
        sign_count: new.sign_count,
        created: now,
        origin: Origin::Registered,
    };
    let mut enrollment = existing.clone().unwrap_or_default();
    insert(&mut enrollment, credential.clone())?;
    write(&path, &account, existing.is_some(), &enrollment)?;

    if args.json {
        output::print(&output::json_line(&serde_json::json!({
            "user": account.name,
            "enrollment_path": path.to_string_lossy(),
            "device": device.path,
            "key": report(&credential),
        }))?)?;
    } else {
        output::print(&format!(
            "Registered security key {name:?} ({}, {}) for {} as {}.\n\
             It is asked for at console logins{}; keep another way in (a code, or a second key).\n",
            credential.public_key.algorithm().name().to_uppercase(),
            if user_verification {
                "with PIN"
            } else {
                "touch only"
            },
            account.name,
            rp_id,
            if config.fido2_remote {
                " and remote logins"
            } else {
                ""
            },
        ))?;
    }
    announce(&config, EVENT_KEY_ADDED, &account, &caller, &credential);
    Ok(())
}

fn insert(enrollment: &mut Enrollment, credential: Credential) -> Result<(), CliError> {
    if enrollment.fido2.iter().any(|c| c.name == credential.name) {
        return Err(CliError::Refused(format!(
            "a security key named {:?} is already registered; choose another --name",
            credential.name
        )));
    }
    if enrollment
        .fido2
        .iter()
        .any(|c| c.credential_id == credential.credential_id)
    {
        return Err(CliError::Refused(format!(
            "this credential is already registered (as {:?})",
            credential.name
        )));
    }
    if enrollment.fido2.len() >= MAX_CREDENTIALS {
        return Err(CliError::Refused(format!(
            "at most {MAX_CREDENTIALS} security keys can be registered"
        )));
    }
    enrollment.fido2.push(credential);
    Ok(())
}

fn write(
    path: &Path,
    account: &Account,
    existed: bool,
    enrollment: &Enrollment,
) -> Result<(), CliError> {
    if !existed {
        enrollment_file::create_parent_dirs(path)?;
    }
    enrollment_file::check_parent_dir(path, account)?;
    enrollment_file::save(path, account, enrollment)
}

fn announce(config: &Config, event: &'static str, account: &Account, by: &str, key: &Credential) {
    let details = format!(
        "key={} credential={} algorithm={}",
        key.name
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect::<String>(),
        &key.fingerprint()[..16],
        key.public_key.algorithm().name()
    );
    let event = Event {
        name: event,
        user: &account.name,
        by,
        details,
        notify: true,
    };
    if let Some(warning) = events::announce(config, &event) {
        output::warn(&warning);
    }
}

fn list(args: &Fido2ListArgs) -> Result<(), CliError> {
    let config = system_config::load(args.target.config.as_deref())?;
    let account = account::resolve_target(args.target.user.as_deref())?;
    let path = enrollment_file::path_of(&config, &account)?;
    let rp_id = relying_party(&config);
    account::become_user(&account)?;
    let keys = enrollment_file::load(&path, &account)?
        .map(|e| e.fido2)
        .unwrap_or_default();
    if args.json {
        return output::print(&output::json_line(&serde_json::json!({
            "user": account.name,
            "rp_id": rp_id,
            "keys": keys.iter().map(report).collect::<Vec<_>>(),
        }))?);
    }
    if keys.is_empty() {
        return output::print(&format!(
            "{} has no security key registered ('twofactor fido2 add' registers one).\n",
            account.name
        ));
    }
    let mut text = format!("Security keys of {}:\n", account.name);
    for key in &keys {
        let r = report(key);
        text.push_str(&format!(
            "  {:<20} {:<6} {}{}{}\n",
            r.name,
            r.algorithm,
            if r.user_verification { "PIN/UV, " } else { "" },
            if r.origin == "pam-u2f" {
                "from pam_u2f, "
            } else {
                ""
            },
            r.rp_id
        ));
        if key.rp_id != rp_id {
            text.push_str(&format!(
                "  {:<20} warning: not usable here: this system's relying-party id is {rp_id}\n",
                ""
            ));
        }
    }
    output::print(&text)
}

fn remove(args: &Fido2RemoveArgs) -> Result<(), CliError> {
    let config = system_config::load(args.target.config.as_deref())?;
    let account = account::resolve_target(args.target.user.as_deref())?;
    let caller = account::caller_name();
    let path = enrollment_file::path_of(&config, &account)?;
    let mut terminal = if args.yes {
        None
    } else {
        Some(Terminal::open(
            "to ask for confirmation on",
            "add --yes to remove without asking",
            NOTHING_CHANGED,
        )?)
    };
    account::become_user(&account)?;
    let mut enrollment = enrollment_file::load_existing(&path, &account)?;
    let Some(index) = enrollment.fido2.iter().position(|c| c.name == args.name) else {
        return Err(CliError::Refused(format!(
            "{} has no security key named {:?} (see 'twofactor fido2 list')",
            account.name, args.name
        )));
    };
    let removed = enrollment.fido2.remove(index);
    if let Some(t) = terminal.as_mut() {
        let left = if enrollment.has_any_method() {
            "Your other second factors stay."
        } else {
            "Nothing else is enrolled: the enrollment file is removed."
        };
        t.say(&format!(
            "This removes security key {:?} of {}. {left}\n",
            removed.name, account.name
        ))?;
        if !t.confirm("Remove it?")? {
            return Err(CliError::Refused(
                "not confirmed; nothing was changed".into(),
            ));
        }
        t.check_interrupted()?;
    }
    let file_removed = !enrollment.has_any_method();
    if file_removed {
        enrollment_file::remove_all(&path)?;
    } else {
        write(&path, &account, true, &enrollment)?;
    }
    if args.json {
        output::print(&output::json_line(&serde_json::json!({
            "user": account.name,
            "enrollment_path": path.to_string_lossy(),
            "removed": report(&removed),
            "file_removed": file_removed,
        }))?)?;
    } else {
        output::print(&format!(
            "Removed security key {:?} of {}.\n",
            removed.name, account.name
        ))?;
    }
    announce(&config, EVENT_KEY_REMOVED, &account, &caller, &removed);
    Ok(())
}

/// `twofactor import pam-u2f [PATH]`.
pub fn import_pam_u2f(args: &PamU2fImportArgs) -> Result<(), CliError> {
    let config = system_config::load(args.target.config.as_deref())?;
    let account = account::resolve_target(args.target.user.as_deref())?;
    let caller = account::caller_name();
    let path = enrollment_file::path_of(&config, &account)?;
    let rp_id = relying_party(&config);
    let source: PathBuf = args
        .path
        .clone()
        .unwrap_or_else(|| account.home.join(".config/Yubico/u2f_keys"));
    let now = output::now()?;
    let text = crate::import::read_source(
        &source,
        args.path.is_some(),
        &account,
        &crate::import::SourceRules {
            what: "u2f_keys file",
            // pam_u2f's central file (authfile=/etc/u2f_mappings) is root's,
            // and readable by all or by root only; a per-user file is the
            // user's. Either is accepted, but not one others may write.
            root_may_own: true,
            forbidden_mode: 0o022,
            max_size: 256 * 1024,
        },
    )?;
    let import = parse_u2f_keys(&text, &account.name);
    if import.credentials.is_empty() {
        return Err(CliError::Refused(format!(
            "{} holds no usable key for {}{}",
            source.display(),
            account.name,
            if import.skipped.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} skipped: {})",
                    import.skipped.len(),
                    import
                        .skipped
                        .iter()
                        .map(|(n, why)| format!("#{n}: {why}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        )));
    }
    let existing = enrollment_file::load(&path, &account)?;
    let mut enrollment = existing.clone().unwrap_or_default();
    let mut added = Vec::new();
    // Names of the imported keys pam_u2f let answer without a touch.
    let mut untouched = Vec::new();
    let mut already = 0;
    for key in import.credentials {
        if enrollment
            .fido2
            .iter()
            .any(|c| c.credential_id == key.credential_id)
        {
            already += 1;
            continue;
        }
        let credential = Credential {
            name: free_name(Some(&enrollment), "pam-u2f-"),
            rp_id: rp_id.clone(),
            credential_id: key.credential_id,
            public_key: key.public_key,
            user_verification: key.user_verification,
            flags: 0,
            sign_count: 0,
            created: now,
            origin: Origin::PamU2f,
        };
        if !key.user_presence {
            untouched.push(credential.name.clone());
        }
        insert(&mut enrollment, credential.clone())?;
        added.push(credential);
    }
    if !args.dry_run && !added.is_empty() {
        write(&path, &account, existing.is_some(), &enrollment)?;
        for key in &added {
            announce(&config, EVENT_KEY_ADDED, &account, &caller, key);
        }
    }
    // pam_twofactor checks user presence on every assertion: a key set up
    // in pam_u2f to answer untouched will want a touch from now on.
    for name in &untouched {
        output::warn(&format!(
            "{name} was set up in pam_u2f without +presence (no touch needed there); \
             pam_twofactor always requires a touch of the key"
        ));
    }
    if args.json {
        let imported: Vec<serde_json::Value> = added
            .iter()
            .map(|key| {
                let mut entry = serde_json::json!(report(key));
                entry["pam_u2f_presence"] = (!untouched.contains(&key.name)).into();
                entry
            })
            .collect();
        return output::print(&output::json_line(&serde_json::json!({
            "user": account.name,
            "source": source.to_string_lossy(),
            "enrollment_path": path.to_string_lossy(),
            "written": !args.dry_run && !added.is_empty(),
            "rp_id": rp_id,
            "imported": imported,
            "already_registered": already,
            "skipped": import.skipped.iter().map(|(n, why)| serde_json::json!({"position": n, "reason": why})).collect::<Vec<_>>(),
        }))?);
    }
    let mut text = format!(
        "{} {} key{} of {} from {} (relying-party id {rp_id}; pamu2fcfg's default origin is pam://HOSTNAME).\n",
        if args.dry_run { "Would import" } else { "Imported" },
        added.len(),
        if added.len() == 1 { "" } else { "s" },
        account.name,
        source.display()
    );
    for key in &added {
        text.push_str(&format!(
            "  {} ({}{}{})\n",
            key.name,
            key.public_key.algorithm().name(),
            if key.user_verification {
                ", user verification"
            } else {
                ""
            },
            if untouched.contains(&key.name) {
                ", a touch now required"
            } else {
                ""
            }
        ));
    }
    if already > 0 {
        text.push_str(&format!(
            "{already} already registered, left as they are.\n"
        ));
    }
    for (n, why) in &import.skipped {
        text.push_str(&format!("Skipped credential #{n}: {why}.\n"));
    }
    output::print(&text)
}
