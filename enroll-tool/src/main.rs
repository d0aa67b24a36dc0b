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
mod cli;
mod enroll;
mod error;
mod system_config;

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
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report(),
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Enroll(args) => enroll::run(&args),
    }
}
