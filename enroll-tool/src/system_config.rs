//! Loading the system configuration that decides where enrollments live and
//! which TOTP parameters new ones get.

use std::path::Path;

use twofactor_core::config::{Config, DEFAULT_CONFIG_PATH};

use crate::error::CliError;

/// Load the configuration named with `--config`, or the default one.
///
/// A missing file at the default location means the built-in defaults, which
/// are also what the module uses then. A missing file the caller named is an
/// error: they expected its settings to apply.
pub fn load(explicit_path: Option<&Path>) -> Result<Config, CliError> {
    match explicit_path {
        // Made absolute: the safety checks look at the file's directory,
        // and a bare "c.toml" has an empty one.
        Some(path) => {
            let absolute = std::path::absolute(path).map_err(|err| {
                CliError::System(format!(
                    "cannot resolve {}: {}",
                    path.display(),
                    twofactor_core::files::describe_io_error(&err)
                ))
            })?;
            load_from(&absolute, false)
        }
        None => load_from(Path::new(DEFAULT_CONFIG_PATH), true),
    }
}

fn load_from(path: &Path, missing_means_defaults: bool) -> Result<Config, CliError> {
    // The module's own reading: enrolling must never follow a configuration
    // the module would refuse.
    Ok(twofactor_core::config::load(path, missing_means_defaults)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EXIT_SYSTEM;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn missing_file_means_defaults_only_at_the_default_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.toml");
        assert_eq!(load_from(&missing, true).unwrap(), Config::default());
        let err = load_from(&missing, false).unwrap_err();
        assert_eq!(err.exit_code(), EXIT_SYSTEM);
        assert!(err.message().contains("does not exist"), "{err:?}");
    }

    #[test]
    fn invalid_or_unsafe_config_is_an_error() {
        // The file must be root-owned to pass the checks at all; the suite
        // runs as root (tests/run-all.sh), and a test that checked nothing
        // must not pass.
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test must run as root (tests/run-all.sh)"
        );
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("pam_twofactor.toml");
        fs::write(&path, "totp_digits = 9\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_from(&path, true).unwrap_err();
        assert!(err.message().contains("totp_digits"), "{err:?}");

        fs::write(&path, "totp_digits = 8\n").unwrap();
        assert_eq!(load_from(&path, false).unwrap().totp_digits, 8);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let err = load_from(&path, false).unwrap_err();
        assert!(err.message().contains("unsafe permissions"), "{err:?}");
    }
}
