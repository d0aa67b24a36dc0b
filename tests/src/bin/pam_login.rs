//! A minimal PAM application: `pam_login [--tty TTY] [--rhost HOST]
//! [--env NAME=VALUE]... CONFDIR SERVICE USER [ANSWER...]` runs
//! pam_authenticate for USER with the stack SERVICE of CONFDIR (as a local
//! login on TTY, tty1 unless given), answers prompts with the ANSWERs in
//! order, and prints every message shown and the result, one per line:
//! `info: ...`, `error: ...`, `prompt: ...`, then `unused=N` (answers not
//! asked for) and `code=N`. Used by the FIDO2 end-to-end test in the QEMU guest
//! (tests/fido2-vm) and by tests that need a login in another process or
//! terminal session.

use std::path::Path;
use std::process::ExitCode;

use twofactor_integration_tests::pam_client::{authenticate, Attempt, Shown};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut attempt = Attempt {
        tty: Some("tty1".into()),
        ..Attempt::default()
    };
    while args.len() >= 2 && args[0].starts_with("--") {
        let value = args.remove(1);
        match args.remove(0).as_str() {
            "--tty" => attempt.tty = Some(value),
            "--rhost" => attempt.rhost = Some(value),
            "--env" => attempt.env.push(value),
            other => {
                eprintln!("pam_login: unknown option {other}");
                return ExitCode::from(2);
            }
        }
    }
    if args.len() < 3 {
        eprintln!(
            "usage: pam_login [--tty TTY] [--rhost HOST] [--env NAME=VALUE]... \
             CONFDIR SERVICE USER [ANSWER...]"
        );
        return ExitCode::from(2);
    }
    attempt.answers = args[3..].to_vec();
    let result = authenticate(Path::new(&args[0]), &args[1], &args[2], &attempt);
    for shown in &result.shown {
        match shown {
            Shown::Info(text) => println!("info: {text}"),
            Shown::Error(text) => println!("error: {text}"),
            Shown::HiddenPrompt(text) | Shown::EchoPrompt(text) => println!("prompt: {text}"),
        }
    }
    println!("unused={}", result.unused_answers);
    println!("code={}", result.code);
    ExitCode::SUCCESS
}
