//! The command line: the orchestrator's options, and the internal modes that
//! the orchestrator starts as subprocesses of this same binary.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::scenarios::{Scenario, WARMUP};

#[derive(Debug, Parser)]
#[command(
    name = "pam_bench",
    about = "The cost of a login through pam_twofactor, measured through the real libpam, \
             side by side with pam_permit, pam_google_authenticator and pam_oath. \
             Run it with `sudo scripts/bench.sh`.",
    // A later occurrence of an option replaces an earlier one, so that
    // `scripts/bench.sh --quick --iterations 50` overrides what it passes.
    args_override_self = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Option<Mode>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What the orchestrator is asked to do.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The module to benchmark, built with the `test-clock` feature.
    #[arg(long, required = true, value_parser = existing_path)]
    pub module: Option<PathBuf>,
    /// Measured logins per scenario in a warm wall-time run [default: 500, --quick 100].
    #[arg(long, value_name = "N")]
    pub iterations: Option<u64>,
    /// Processes (samples) per scenario for the cold wall time [default: 50, --quick 10].
    #[arg(long, value_name = "N")]
    pub cold: Option<u64>,
    /// Measured logins per scenario under callgrind [default: 100, --quick 20].
    #[arg(long, value_name = "N")]
    pub callgrind_iterations: Option<u64>,
    /// Logins in one process for the RSS check [default: 10000, --quick 1000].
    #[arg(long, value_name = "N")]
    pub leak_logins: Option<u64>,
    /// Logins in one process under memcheck [default: 10000, --quick 200].
    #[arg(long, value_name = "N")]
    pub memcheck_logins: Option<u64>,
    /// Processes at once in the concurrency benchmark (at most 16).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub workers: u64,
    /// Parts of the benchmark to leave out.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub skip: Vec<Phase>,
    /// Scenarios to run (all when not given), by the names in the report.
    #[arg(long, value_name = "SCENARIOS", value_delimiter = ',')]
    pub only: Vec<Scenario>,
    /// Where to write the report as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Where callgrind, memcheck and the subprocesses' files go.
    #[arg(long, value_name = "DIR", default_value = "target/bench/out")]
    pub out_dir: PathBuf,
    /// Smaller iteration counts (the defaults in brackets above).
    #[arg(long)]
    pub quick: bool,
    /// Log one probe login per scenario, and what GA and pam_oath wrote back.
    #[arg(long)]
    pub verbose: bool,
    /// The module as installed (stripped), for its size and load cost.
    #[arg(long, value_name = "PATH")]
    pub production_module: Option<PathBuf>,
    /// The C program of scripts/bench.sh that only dlopens a module.
    #[arg(long, value_name = "PATH")]
    pub dlopen_probe: Option<PathBuf>,
}

fn existing_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} does not exist", path.display()))
    }
}

/// A part of the benchmark that `--skip` leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    Wall,
    Cold,
    Callgrind,
    Crosscheck,
    Load,
    Concurrency,
    Leak,
    Memcheck,
    /// The login state on a Redis server (`state_backend = "redis"`): the
    /// fleet scenarios and the fleet concurrency runs, and the server.
    Fleet,
}

/// The internal modes: subprocesses the orchestrator starts inside its
/// namespace, not meant to be run by hand.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// `--warmup` unmeasured then `--count` measured logins of one scenario,
    /// iterations numbered from `--first` (run under callgrind).
    #[command(hide = true)]
    Loop {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = WARMUP)]
        warmup: u64,
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
    /// One `pam_permit` transaction (libpam warm), then the first login
    /// through the scenario's module in this process. Prints NANOSECONDS.
    #[command(hide = true)]
    Once {
        #[command(flatten)]
        target: Target,
    },
    /// The logins of a plan file (`STACK USER NOW ANSWER` per line), started
    /// at `--start-at` (unix nanoseconds). Prints one return code per line,
    /// then `elapsed NANOSECONDS`. `--counter`: the file of the counter that
    /// NOW = `next@BASE` takes the next value of.
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        ctx: PathBuf,
        #[arg(long)]
        plan: PathBuf,
        #[arg(long, default_value_t = 0)]
        start_at: u64,
        #[arg(long)]
        counter: Option<PathBuf>,
    },
    /// `--count` logins in this one process, cycling through our scenarios;
    /// prints `rss LOGINS KIB` every `--rss-every` logins.
    #[command(hide = true)]
    Leak {
        #[arg(long)]
        ctx: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        #[arg(long, default_value_t = 1000)]
        rss_every: u64,
        #[arg(long, default_value_t = 0)]
        first: u64,
    },
}

/// The context file, scenario and first iteration of a `loop` or `once`.
#[derive(Debug, Args)]
pub struct Target {
    #[arg(long)]
    pub ctx: PathBuf,
    #[arg(long)]
    pub scenario: Scenario,
    #[arg(long, default_value_t = 0)]
    pub first: u64,
}

/// The orchestrator's settings; the counts are the report's `options`.
#[derive(Debug, Serialize)]
pub struct Options {
    pub iterations: u64,
    pub cold: u64,
    pub callgrind_iterations: u64,
    pub leak_logins: u64,
    pub memcheck_logins: u64,
    pub workers: u64,
    #[serde(skip)]
    pub module: PathBuf,
    #[serde(skip)]
    pub skip: Vec<Phase>,
    #[serde(skip)]
    pub only: Vec<Scenario>,
    #[serde(skip)]
    pub json: Option<PathBuf>,
    #[serde(skip)]
    pub out_dir: PathBuf,
    #[serde(skip)]
    pub verbose: bool,
    #[serde(skip)]
    pub production_module: Option<PathBuf>,
    #[serde(skip)]
    pub dlopen_probe: Option<PathBuf>,
}

impl RunArgs {
    pub fn options(self) -> Options {
        let default = |full: u64, quick: u64| if self.quick { quick } else { full };
        Options {
            iterations: self.iterations.unwrap_or(default(500, 100)),
            cold: self.cold.unwrap_or(default(50, 10)),
            callgrind_iterations: self.callgrind_iterations.unwrap_or(default(100, 20)),
            leak_logins: self.leak_logins.unwrap_or(default(10_000, 1000)),
            memcheck_logins: self.memcheck_logins.unwrap_or(default(10_000, 200)),
            workers: self.workers.clamp(1, 16),
            // `required = true` without a subcommand: always present here.
            module: self.module.unwrap_or_default(),
            skip: self.skip,
            only: self.only,
            json: self.json,
            out_dir: self.out_dir,
            verbose: self.verbose,
            production_module: self.production_module,
            dlopen_probe: self.dlopen_probe,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pam_bench").chain(args.iter().copied()))
    }

    fn options(args: &[&str]) -> Options {
        let cli = parse(args).expect("parses");
        assert!(cli.mode.is_none());
        cli.run.options()
    }

    #[test]
    fn the_invocation_of_scripts_bench_sh_parses_and_later_options_win() {
        let o = options(&[
            "--module",
            "/",
            "--production-module",
            "/p.so",
            "--dlopen-probe",
            "/probe",
            "--out-dir",
            "/out",
            "--json",
            "/r.json",
            "--quick",
            "--iterations",
            "50",
            "--iterations",
            "7",
            "--workers",
            "40",
            "--skip",
            "wall,cold,callgrind,crosscheck,load,concurrency,leak,memcheck,fleet",
            "--only",
            "totp-correct,ga/totp-correct,oath/unenrolled,locked-out,fleet/totp-wrong",
        ]);
        assert_eq!(o.module, PathBuf::from("/"));
        assert_eq!(o.production_module, Some(PathBuf::from("/p.so")));
        assert_eq!(o.dlopen_probe, Some(PathBuf::from("/probe")));
        assert_eq!(o.out_dir, PathBuf::from("/out"));
        assert_eq!(o.json, Some(PathBuf::from("/r.json")));
        // --quick's counts, but the last --iterations; --workers clamped to 16.
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({
                "iterations": 7, "cold": 10, "callgrind_iterations": 20,
                "leak_logins": 1000, "memcheck_logins": 200, "workers": 16
            })
        );
        assert_eq!(o.skip.len(), 9);
        assert_eq!(
            o.only,
            [
                Scenario::TotpOk,
                Scenario::GaTotpOk,
                Scenario::OathUnenrolled,
                Scenario::Locked,
                Scenario::FleetTotpWrong
            ]
        );
    }

    #[test]
    fn full_counts_without_quick() {
        let o = options(&["--module", "/"]);
        assert!(o.skip.is_empty() && o.only.is_empty() && !o.verbose);
        assert_eq!(o.out_dir, PathBuf::from("target/bench/out"));
        // The report's `options` are the counts alone.
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({
                "iterations": 500, "cold": 50, "callgrind_iterations": 100,
                "leak_logins": 10_000, "memcheck_logins": 10_000, "workers": 16
            })
        );
    }

    #[test]
    fn usage_errors() {
        for args in [
            &[][..],
            &["--module", "/nonexistent/pam_twofactor.so"],
            &["--module", "/", "--skip", "walls"],
            &["--module", "/", "--only", "totp-right"],
            &["--module", "/", "--iterations", "-1"],
            &["--module", "/", "stray"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }

    /// The subprocess command lines the orchestrator builds.
    #[test]
    fn internal_modes() {
        let cli = parse(&[
            "loop",
            "--ctx",
            "/c.json",
            "--scenario",
            "ga/totp-wrong",
            "--first",
            "12",
            "--warmup",
            "10",
            "--count",
            "0",
        ])
        .unwrap();
        let Some(Mode::Loop {
            target,
            warmup,
            count,
        }) = cli.mode
        else {
            panic!("not loop: {:?}", cli.mode)
        };
        assert_eq!(target.ctx, PathBuf::from("/c.json"));
        assert_eq!(target.scenario, Scenario::GaTotpWrong);
        assert_eq!((target.first, warmup, count), (12, 10, 0));

        let cli = parse(&["once", "--ctx", "/c.json", "--scenario", "pam_permit"]).unwrap();
        assert!(matches!(
            cli.mode,
            Some(Mode::Once {
                target: Target {
                    scenario: Scenario::Permit,
                    first: 0,
                    ..
                }
            })
        ));

        let cli = parse(&[
            "worker",
            "--ctx",
            "/c.json",
            "--plan",
            "/plan0",
            "--start-at",
            "1900000000123456789",
            "--counter",
            "/counter",
        ])
        .unwrap();
        let Some(Mode::Worker {
            start_at, counter, ..
        }) = cli.mode
        else {
            panic!("not worker: {:?}", cli.mode)
        };
        assert_eq!(start_at, 1_900_000_000_123_456_789);
        assert_eq!(counter, Some(PathBuf::from("/counter")));

        let cli = parse(&[
            "leak",
            "--ctx",
            "/c.json",
            "--count",
            "100",
            "--first",
            "3",
            "--rss-every",
            "10",
        ])
        .unwrap();
        assert!(matches!(
            cli.mode,
            Some(Mode::Leak {
                count: 100,
                first: 3,
                rss_every: 10,
                ..
            })
        ));
    }
}
