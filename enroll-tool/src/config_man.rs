//! `pam_twofactor.toml(5)`, generated from the shipped, commented default
//! configuration (`config/pam_twofactor.toml`), so the page documents every
//! key the file documents and cannot fall behind it. Written by
//! `twofactor generate-man` next to the command's own pages.

/// The shipped default configuration, which documents every key.
const SHIPPED_CONFIG: &str = include_str!("../../config/pam_twofactor.toml");

/// File name and roff text of the page.
pub fn page() -> (String, String) {
    ("pam_twofactor.toml.5".to_string(), render(SHIPPED_CONFIG))
}

/// One stretch of the file between blank lines: its comment lines (without
/// the `# `) and its `key = value` lines.
struct Block {
    comments: Vec<String>,
    keys: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current = Block {
        comments: Vec::new(),
        keys: Vec::new(),
    };
    for line in text.lines().chain(std::iter::once("")) {
        let line = line.trim_end();
        if line.is_empty() {
            if !current.comments.is_empty() || !current.keys.is_empty() {
                out.push(current);
                current = Block {
                    comments: Vec::new(),
                    keys: Vec::new(),
                };
            }
        } else if let Some(comment) = line.strip_prefix('#') {
            current
                .comments
                .push(comment.strip_prefix(' ').unwrap_or(comment).to_string());
        } else {
            current.keys.push(line.to_string());
        }
    }
    out
}

/// Escape text for roff: backslashes, and a leading `.` or `'` that would
/// read as a request.
fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Comment lines as roff: ordinary lines are filled into a paragraph;
/// indented lines (lists such as the `unenrolled` values) keep their layout,
/// within the indentation of the key's paragraph.
fn prose(lines: &[String]) -> String {
    let mut out = String::new();
    let mut in_literal = false;
    for line in lines {
        let literal = line.starts_with("  ");
        if literal && !in_literal {
            out.push_str(".nf\n");
        } else if !literal && in_literal {
            out.push_str(".fi\n");
        }
        in_literal = literal;
        let text = if literal { &line[2..] } else { line.as_str() };
        out.push_str(&escape(text));
        out.push('\n');
    }
    if in_literal {
        out.push_str(".fi\n");
    }
    out
}

/// A `key = value` line in bold, quotes and spaces kept (a `.B` request
/// would take the quotes as its own).
fn key_line(key: &str) -> String {
    format!("\\fB{}\\fR\n", escape(key).replace(' ', "\\ "))
}

fn render(config: &str) -> String {
    let mut blocks = blocks(config).into_iter();
    let mut out = String::new();
    out.push_str(&format!(
        ".TH PAM_TWOFACTOR.TOML 5 \"\" \"pam_twofactor {}\" \"pam_twofactor\"\n",
        env!("CARGO_PKG_VERSION")
    ));
    out.push_str(
        ".SH NAME\npam_twofactor.toml \\- system configuration of the pam_twofactor module\n\
         .SH SYNOPSIS\n.B /etc/security/pam_twofactor.toml\n.SH DESCRIPTION\n",
    );
    if let Some(header) = blocks.next() {
        // The first line names the file, which SYNOPSIS already does.
        let body: Vec<String> = header
            .comments
            .iter()
            .skip_while(|l| l.starts_with("/etc/security/") || l.is_empty())
            .cloned()
            .collect();
        out.push_str(&prose(&body));
    }
    out.push_str(
        ".PP\nThe file is TOML. It must be owned by root and not writable by group or \
         others. A missing file at the default path means the defaults shown below.\n\
         .SH KEYS\nEach key is shown with its default value.\n",
    );
    for block in blocks {
        if block.keys.is_empty() {
            out.push_str(".PP\n");
            out.push_str(&prose(&block.comments));
            continue;
        }
        for (i, key) in block.keys.iter().enumerate() {
            out.push_str(if i == 0 { ".TP\n" } else { ".TQ\n" });
            out.push_str(&key_line(key));
        }
        out.push_str(&prose(&block.comments));
    }
    out.push_str(
        ".SH \"MODULE ARGUMENTS\"\nA module argument \\fIkey\\fR=\\fIvalue\\fR on the \
         pam.d line overrides the key of the same name for that service, except \
         \\fBissuer\\fR and the \\fBtotp_*\\fR enrollment defaults, \\fBnotify_command\\fR, \
         \\fBfido2_helper\\fR, \\fBstate_backend\\fR and the \\fBredis_*\\fR keys; see \
         \\fBpam_twofactor\\fR(8).\n\
         .SH FILES\n.TP\n.B /etc/security/pam_twofactor.toml\nthis file\n\
         .TP\n.B /var/lib/pam_twofactor/\nthe default \\fBstate_dir\\fR\n\
         .SH \"SEE ALSO\"\n\\fBpam_twofactor\\fR(8), \\fBtwofactor\\fR(1), \\fBpam.d\\fR(5)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_the_shipped_config_is_a_term() {
        let (name, text) = page();
        assert_eq!(name, "pam_twofactor.toml.5");
        let keys: Vec<&str> = SHIPPED_CONFIG
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(" = "))
            .filter_map(|l| l.split(" = ").next())
            .collect();
        assert!(keys.len() >= 16, "{keys:?}");
        for key in keys {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("\\fB{key}\\ =\\ "))),
                "{key} is not documented:\n{text}"
            );
        }
    }

    #[test]
    fn layout_and_escaping() {
        let text = render(
            "# /etc/security/x.toml\n#\n# Intro.\n\n# About a.\n#   \"x\"  one\n# .dot\na = 1\nb = \"\\\\\"\n",
        );
        assert!(text.contains(".SH DESCRIPTION\nIntro.\n"), "{text}");
        assert!(
            text.contains(
                ".TP\n\\fBa\\ =\\ 1\\fR\n.TQ\n\\fBb\\ =\\ \"\\e\\e\"\\fR\nAbout a.\n.nf\n\"x\"  one\n.fi\n\\&.dot\n"
            ),
            "{text}"
        );
    }
}
