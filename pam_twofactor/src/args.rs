//! Module arguments from the pam.d line.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use twofactor_core::config::{Config, DEFAULT_CONFIG_PATH};
use twofactor_core::Error;

/// Where the code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PassMode {
    /// Ask for it.
    #[default]
    Prompt,
    /// Try PAM_AUTHTOK from an earlier module first, then ask.
    TryFirstPass,
    /// Only PAM_AUTHTOK; never ask.
    UseFirstPass,
}

/// Parsed module arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleArgs {
    /// `config=PATH`: the system configuration to read.
    pub config_path: Option<PathBuf>,
    /// `try_first_pass` / `use_first_pass`.
    pub pass_mode: PassMode,
    /// `forward_pass`: ask for password and code in one answer and hand the
    /// password to the next module as PAM_AUTHTOK.
    pub forward_pass: bool,
    /// `key=value` overrides of configuration keys, in order.
    pub overrides: Vec<(String, String)>,
}

impl ModuleArgs {
    /// Parse the arguments. Unknown flags are errors (fail closed): a typo in
    /// a security option must not silently change behaviour.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Self, Error> {
        let mut parsed = ModuleArgs::default();
        for arg in args {
            let arg = arg.as_ref();
            match arg {
                "try_first_pass" | "use_first_pass" => {
                    if parsed.pass_mode != PassMode::Prompt {
                        return Err(Error::Config(
                            "use only one of try_first_pass and use_first_pass".into(),
                        ));
                    }
                    parsed.pass_mode = if arg == "try_first_pass" {
                        PassMode::TryFirstPass
                    } else {
                        PassMode::UseFirstPass
                    };
                }
                "forward_pass" => parsed.forward_pass = true,
                "nullok" => parsed
                    .overrides
                    .push(("unenrolled".into(), "ignore".into())),
                _ => match arg.split_once('=') {
                    Some(("config", path)) if path.starts_with('/') => {
                        parsed.config_path = Some(PathBuf::from(path));
                    }
                    Some(("config", _)) => {
                        return Err(Error::Config("config= needs an absolute path".into()))
                    }
                    Some((key, value)) => {
                        // Check the key now so the error names the argument.
                        Config::default()
                            .set(key, value)
                            .map_err(|e| Error::Config(format!("module argument {arg:?}: {e}")))?;
                        parsed.overrides.push((key.to_string(), value.to_string()));
                    }
                    None => return Err(Error::Config(format!("unknown module argument {arg:?}"))),
                },
            }
        }
        Ok(parsed)
    }

    /// The configuration file to read.
    pub fn config_path(&self) -> PathBuf {
        self.config_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    /// True when the configuration file was named explicitly.
    pub fn config_is_explicit(&self) -> bool {
        self.config_path.is_some()
    }

    /// Apply the overrides to `config`.
    pub fn apply(&self, config: &mut Config) -> Result<(), Error> {
        for (key, value) in &self.overrides {
            config.set(key, value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twofactor_core::config::UnenrolledPolicy;

    #[test]
    fn parses_flags_and_overrides() {
        let args = ModuleArgs::parse(&[
            "try_first_pass",
            "forward_pass",
            "config=/etc/x.toml",
            "window=2",
            "nullok",
            "prompt=Code please: ",
        ])
        .unwrap();
        assert_eq!(args.pass_mode, PassMode::TryFirstPass);
        assert!(args.forward_pass);
        assert_eq!(args.config_path(), PathBuf::from("/etc/x.toml"));
        let mut config = Config::default();
        args.apply(&mut config).unwrap();
        assert_eq!(config.window, 2);
        assert_eq!(config.unenrolled, UnenrolledPolicy::Ignore);
        assert_eq!(config.prompt, "Code please: ");
    }

    #[test]
    fn rejects_unknown_and_conflicting_arguments() {
        for bad in [
            &["debugg"][..],
            &["window=7"],
            &["windw=1"],
            &["config=relative.toml"],
            &["try_first_pass", "use_first_pass"],
            &["unenrolled=sometimes"],
        ] {
            assert!(ModuleArgs::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn no_arguments_means_defaults() {
        let args = ModuleArgs::parse::<&str>(&[]).unwrap();
        assert_eq!(args, ModuleArgs::default());
        assert_eq!(args.config_path(), PathBuf::from(DEFAULT_CONFIG_PATH));
    }
}
