//! Reading `/etc/pam.d` the way libpam does, for `twofactor doctor`: one
//! line per module (continuations joined, comments dropped), `[...]`
//! controls and arguments kept whole, and each service's stack of one
//! management group expanded through `@include`, `include` and `substack`.

use std::fs;
use std::path::{Path, PathBuf};

/// Files in a pam.d directory that are not services: package managers'
/// and editors' leftovers, which libpam would read only if asked by name.
pub(super) fn is_leftover(name: &str) -> bool {
    [
        ".dpkg-", ".pam-old", ".ucf-", ".rpmnew", ".rpmsave", ".bak", ".orig", ".save",
    ]
    .iter()
    .any(|marker| name.contains(marker))
        || name.ends_with('~')
        || name.starts_with('.')
}

/// One module line of a pam.d file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PamLine {
    /// The file it is in.
    pub(super) file: PathBuf,
    /// Its line number (the first line, for continued lines).
    pub(super) number: usize,
    /// `auth`, `account`, `session` or `password` (lower case, without `-`).
    pub(super) group: String,
    /// A leading `-`: libpam skips the line silently when the module is missing.
    pub(super) quiet_if_missing: bool,
    /// `required`, `requisite`, `sufficient`, `optional`, `include`,
    /// `substack`, or a `[value=action ...]` control as written.
    pub(super) control: String,
    /// The module path as written, or the included file's name.
    pub(super) module: String,
    /// Module arguments, brackets removed.
    pub(super) args: Vec<String>,
}

impl PamLine {
    /// True when the line names pam_twofactor, by name or by path (any
    /// `pam_twofactor*.so`, so a renamed build such as a test's counts too).
    pub(super) fn is_twofactor(&self) -> bool {
        let file = self.module.rsplit('/').next().unwrap_or_default();
        self.control != "include"
            && self.control != "substack"
            && file.starts_with("pam_twofactor")
            && file.ends_with(".so")
    }

    /// `file:line` for messages.
    pub(super) fn place(&self) -> String {
        format!("{}:{}", self.file.display(), self.number)
    }
}

/// Split a logical line into words, keeping `[ ... ]` together (brackets
/// dropped, `\]` read as `]`), as libpam's parser does.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '[' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&']') => {
                        word.push(']');
                        chars.next();
                    }
                    ']' => break,
                    other => word.push(other),
                }
            }
            out.push(word);
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            out.push(word);
        }
    }
    out
}

/// Parse a pam.d file's text. `@include FILE` becomes an `include` line of
/// every group. Lines that cannot be module lines are skipped (libpam logs
/// and ignores them too).
pub(super) fn parse(file: &Path, text: &str) -> Vec<PamLine> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            start = index + 1;
        }
        let without_comment = match raw.find('#') {
            Some(cut) => &raw[..cut],
            None => raw,
        };
        if let Some(continued) = without_comment.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            continue;
        }
        pending.push_str(without_comment);
        let logical = std::mem::take(&mut pending);
        let words = words(&logical);
        let Some(first) = words.first() else { continue };
        if first == "@include" {
            if let Some(target) = words.get(1) {
                for group in ["auth", "account", "password", "session"] {
                    lines.push(PamLine {
                        file: file.to_path_buf(),
                        number: start,
                        group: group.to_string(),
                        quiet_if_missing: false,
                        control: "include".into(),
                        module: target.clone(),
                        args: Vec::new(),
                    });
                }
            }
            continue;
        }
        if words.len() < 3 {
            continue;
        }
        let (quiet, group) = match first.strip_prefix('-') {
            Some(group) => (true, group.to_ascii_lowercase()),
            None => (false, first.to_ascii_lowercase()),
        };
        lines.push(PamLine {
            file: file.to_path_buf(),
            number: start,
            group,
            quiet_if_missing: quiet,
            control: words[1].clone(),
            module: words[2].clone(),
            args: words[3..].to_vec(),
        });
    }
    lines
}

/// The services of a pam.d directory: every file except leftovers and the
/// `common-*` files Debian includes from services. Sorted.
pub(super) fn services(dir: &Path) -> Result<Vec<String>, String> {
    let entries = fs::read_dir(dir).map_err(|e| {
        format!(
            "{}: {}",
            dir.display(),
            twofactor_core::files::describe_io_error(&e)
        )
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !is_leftover(name) && !name.starts_with("common-"))
        .collect();
    names.sort();
    Ok(names)
}

/// Every module line of `group` that `service` runs, includes expanded in
/// place. Include cycles and very deep nesting end the expansion (libpam
/// gives up the same way).
pub(super) fn expanded(dir: &Path, service: &str, group: &str) -> Vec<PamLine> {
    let mut out = Vec::new();
    expand_into(dir, service, group, 0, &mut out);
    out
}

fn expand_into(dir: &Path, name: &str, group: &str, depth: usize, out: &mut Vec<PamLine>) {
    if depth > 8 {
        return;
    }
    let path = if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        dir.join(name)
    };
    let Ok(text) = fs::read_to_string(&path) else {
        return;
    };
    for line in parse(&path, &text) {
        if line.group != group {
            continue;
        }
        if line.control == "include" || line.control == "substack" {
            expand_into(dir, &line.module, group, depth + 1, out);
        } else {
            out.push(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_libpam_reads_them() {
        let text = "# comment\n\
            @include common-auth\n\
            auth requisite pam_twofactor.so window=0 [prompt=Code \\] please: ] # trailing\n\
            -session optional pam_systemd.so\n\
            auth [success=1 default=ignore] pam_unix.so nullok\n\
            account required \\\n   pam_unix.so\n\
            garbage\n";
        let lines = parse(Path::new("/x/svc"), text);
        let auth: Vec<&PamLine> = lines.iter().filter(|l| l.group == "auth").collect();
        assert_eq!(auth.len(), 3);
        assert_eq!(auth[0].control, "include");
        assert_eq!(auth[0].module, "common-auth");
        assert!(auth[1].is_twofactor());
        assert_eq!(auth[1].args, ["window=0", "prompt=Code ] please: "]);
        assert_eq!(auth[1].number, 3);
        assert_eq!(auth[2].control, "success=1 default=ignore");
        let session: Vec<&PamLine> = lines.iter().filter(|l| l.group == "session").collect();
        assert_eq!(session.len(), 2, "{session:?}");
        assert!(session[1].quiet_if_missing);
        let account: Vec<&PamLine> = lines.iter().filter(|l| l.group == "account").collect();
        assert_eq!(account.last().unwrap().module, "pam_unix.so");
        assert_eq!(account.last().unwrap().number, 6);
    }

    #[test]
    fn includes_are_expanded_and_services_listed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("common-auth"),
            "auth required pam_unix.so\nauth requisite pam_twofactor.so\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("sshd"),
            "@include common-auth\nauth include loop\nauth required /x/pam_twofactor.so\n",
        )
        .unwrap();
        fs::write(dir.path().join("loop"), "auth substack loop\n").unwrap();
        fs::write(dir.path().join("sshd.dpkg-old"), "").unwrap();
        let stack = expanded(dir.path(), "sshd", "auth");
        let modules: Vec<&str> = stack.iter().map(|l| l.module.as_str()).collect();
        assert_eq!(
            modules,
            ["pam_unix.so", "pam_twofactor.so", "/x/pam_twofactor.so"]
        );
        assert_eq!(stack.iter().filter(|l| l.is_twofactor()).count(), 2);
        assert_eq!(services(dir.path()).unwrap(), ["loop", "sshd"]);
    }
}
