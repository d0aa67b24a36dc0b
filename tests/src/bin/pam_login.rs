//! A minimal PAM application for the FIDO2 end-to-end test in the QEMU guest
//! (tests/fido2-vm): `pam_login CONFDIR SERVICE USER [ANSWER...]` runs
//! pam_authenticate for USER with the stack SERVICE of CONFDIR (as a local
//! login on tty1), answers prompts with the ANSWERs in order, and prints
//! every message shown and the result, one per line:
//! `info: ...`, `error: ...`, `prompt: ...`, then `code=N`.

use std::path::Path;
use std::process::ExitCode;

use twofactor_integration_tests::pam_client::{authenticate, Attempt, Shown};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: pam_login CONFDIR SERVICE USER [ANSWER...]");
        return ExitCode::from(2);
    }
    let attempt = Attempt {
        answers: args[4..].to_vec(),
        tty: Some("tty1".into()),
        ..Attempt::default()
    };
    let result = authenticate(Path::new(&args[1]), &args[2], &args[3], &attempt);
    for shown in &result.shown {
        match shown {
            Shown::Info(text) => println!("info: {text}"),
            Shown::Error(text) => println!("error: {text}"),
            Shown::HiddenPrompt(text) | Shown::EchoPrompt(text) => println!("prompt: {text}"),
        }
    }
    println!("code={}", result.code);
    ExitCode::SUCCESS
}
