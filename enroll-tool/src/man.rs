//! Man pages generated from the command-line definition, so they cannot
//! drift from `--help`: `twofactor.1` and one `twofactor-COMMAND.1` per
//! command. `twofactor generate-man DIR` writes them; a test checks that
//! the committed `man/` equals what the definitions generate.

use std::fs;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, GenerateManArgs};
use crate::error::CliError;

/// The pages: file name and roff text.
pub fn pages() -> Result<Vec<(String, String)>, CliError> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = vec![render(command.clone())?];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push(render(sub.clone())?);
        // Commands with subcommands of their own (`import`): one page each.
        for nested in sub
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            pages.push(render(nested.clone())?);
        }
    }
    // pam_twofactor.toml(5), from the commented default configuration.
    pages.push(crate::config_man::page());
    Ok(pages)
}

fn render(command: clap::Command) -> Result<(String, String), CliError> {
    let man = clap_mangen::Man::new(command).manual("pam_twofactor");
    let mut roff = Vec::new();
    man.render(&mut roff)
        .map_err(|err| CliError::System(format!("cannot render the man page: {err}")))?;
    let text = String::from_utf8(roff)
        .map_err(|_| CliError::System("the man page is not UTF-8".into()))?;
    Ok((man.get_filename(), retitle_after_help(&text)))
}

/// clap_mangen titles the after-help text "EXTRA" and lets roff fill it
/// into paragraphs; ours holds examples laid out line by line, notes and
/// the exit status, so it becomes sections of their own ("EXAMPLES", or
/// "EXAMPLES AND NOTES", then "EXIT STATUS"), not filled.
fn retitle_after_help(text: &str) -> String {
    let Some(start) = text.find(".SH EXTRA\n") else {
        return text.to_string();
    };
    let body_start = start + ".SH EXTRA\n".len();
    let body_end = text[body_start..]
        .find("\n.SH ")
        .map_or(text.len(), |end| body_start + end + 1);
    let body = &text[body_start..body_end];
    let (examples, exit_status) = match body.find("\nExit status") {
        Some(at) => (&body[..at + 1], Some(&body[at + 1..])),
        None => (body, None),
    };
    let has_notes = examples
        .lines()
        .any(|line| !line.is_empty() && !line.starts_with(' ') && line != "Examples:");
    let mut out = format!(
        "{}.SH {}\n.nf\n{}.fi\n",
        &text[..start],
        if has_notes {
            "\"EXAMPLES AND NOTES\""
        } else {
            "EXAMPLES"
        },
        examples.trim_end_matches('\n').to_string() + "\n"
    );
    if let Some(exit_status) = exit_status {
        out.push_str(&format!(".SH \"EXIT STATUS\"\n.nf\n{exit_status}.fi\n"));
    }
    out.push_str(&text[body_end..]);
    out
}

/// Run `twofactor generate-man DIR`.
pub fn run(args: &GenerateManArgs) -> Result<(), CliError> {
    for (name, text) in pages()? {
        let path = args.dir.join(&name);
        write(&path, &text)?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    fs::write(path, text).map_err(|err| {
        CliError::System(format!(
            "cannot write {}: {}",
            path.display(),
            twofactor_core::files::describe_io_error(&err)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The committed pages are exactly what the CLI generates. When this
    /// fails after a change of the CLI, regenerate them:
    /// `cargo run -p twofactor -- generate-man enroll-tool/man`.
    #[test]
    fn committed_man_pages_are_current() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
        let generated: BTreeMap<String, String> = pages().unwrap().into_iter().collect();
        let mut committed = BTreeMap::new();
        for entry in fs::read_dir(&dir).expect("enroll-tool/man exists") {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            committed.insert(name, fs::read_to_string(entry.path()).unwrap());
        }
        assert_eq!(
            committed.keys().collect::<Vec<_>>(),
            generated.keys().collect::<Vec<_>>(),
            "man page files differ; run: cargo run -p twofactor -- generate-man enroll-tool/man"
        );
        for (name, text) in &generated {
            assert!(
                committed[name] == *text,
                "{name} is stale; run: cargo run -p twofactor -- generate-man enroll-tool/man"
            );
        }
        assert!(generated.contains_key("twofactor.1"));
        // One exit-status rule, in its own section of twofactor(1); every
        // command's page has the section and points there.
        let main = &generated["twofactor.1"];
        assert!(main.contains(".SH \"EXIT STATUS\"\n.nf\nExit status, the same rule"));
        assert!(main.contains("a file or the system is in the way"));
        for (name, text) in &generated {
            if name.starts_with("twofactor-") {
                assert!(text.contains(".SH \"EXIT STATUS\""), "{name}");
            }
        }
        assert!(generated.contains_key("twofactor-enroll.1"));
        assert!(!generated.contains_key("twofactor-generate-man.1"));
    }
}
