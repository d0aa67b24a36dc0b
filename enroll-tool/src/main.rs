//! `twofactor`: enroll and manage the second factors checked by pam_twofactor.
//!
//! `main` only parses the command line and turns the outcome into an exit
//! code; each subcommand lives in its own module.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod account;
mod backup_codes;
mod cli;
mod config_man;
mod disable;
mod doctor;
mod enroll;
mod enrollment_file;
mod error;
mod events;
mod fido2;
mod fleet;
mod import;
mod login_state;
mod man;
mod output;
mod qr;
mod reset_lockout;
mod status;
mod system_config;
mod terminal;
mod verify;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version arrive as "errors" that belong on stdout.
        Err(err) if !err.use_stderr() => {
            return match err.print() {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(error::EXIT_SYSTEM),
            };
        }
        Err(err) => return CliError::from_clap(&err).report(),
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => err.report(),
    }
}

fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Enroll(args) => enroll::run(&args).map(|()| 0),
        Command::Status(args) => status::run(&args).map(|()| 0),
        Command::Verify(args) => verify::run(&args),
        Command::BackupCodes(args) => backup_codes::run(&args).map(|()| 0),
        Command::Disable(args) => disable::run(&args).map(|()| 0),
        Command::ResetLockout(args) => reset_lockout::run(&args).map(|()| 0),
        Command::Import(args) => import::run(&args).map(|()| 0),
        Command::Doctor(args) => doctor::run(&args),
        Command::Fleet(args) => fleet::run(&args),
        Command::Fido2(args) => fido2::run(&args).map(|()| 0),
        Command::GenerateMan(args) => man::run(&args).map(|()| 0),
    }
}
