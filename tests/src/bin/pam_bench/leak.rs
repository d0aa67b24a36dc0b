//! The leak check: many logins in one process, with its RSS sampled along
//! the way, and memcheck over 0, N/10 and N logins.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::cli::Phase;
use crate::context::Ctx;
use crate::measurement::{log, Bench};
use crate::scenarios::{Runner, LEAK_MIX};

/// What the leak check found (under the report's JSON names).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Leak {
    /// (logins, KiB) along the RSS run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_kib: Option<Vec<(u64, u64)>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_growth_after_first_tenth_kib: Option<i64>,
    /// Keyed `memcheck_N_logins`.
    #[serde(flatten)]
    pub memcheck: BTreeMap<String, Memcheck>,
}

impl Leak {
    pub fn memcheck_key(logins: u64) -> String {
        format!("memcheck_{logins}_logins")
    }
}

/// memcheck's summary of one run, in bytes.
#[derive(Debug, Clone, Serialize)]
pub struct Memcheck {
    pub definitely_lost: u64,
    pub indirectly_lost: u64,
    pub possibly_lost: u64,
    pub still_reachable: u64,
    pub errors: u64,
    pub log: PathBuf,
}

impl Memcheck {
    /// From memcheck's log; what is missing counts as 0.
    fn parse(text: &str, log: PathBuf) -> Memcheck {
        // `==1== definitely lost: 0 bytes in 0 blocks`, `ERROR SUMMARY: 0 errors ...`.
        let after = |label: &str| {
            text.lines()
                .find_map(|l| l.split_once(label).map(|(_, r)| r))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.replace(',', "").parse::<u64>().ok())
                .unwrap_or(0)
        };
        Memcheck {
            definitely_lost: after("definitely lost: "),
            indirectly_lost: after("indirectly lost: "),
            possibly_lost: after("possibly lost: "),
            still_reachable: after("still reachable: "),
            errors: after("ERROR SUMMARY: "),
            log,
        }
    }
}

fn rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `leak`: `count` logins in this one process, cycling through our
/// scenarios; prints `rss LOGINS KIB` every `every` logins.
pub fn logins_in_one_process(ctx: &Ctx, count: u64, every: u64, first: u64) {
    let every = every.max(1);
    let mut runners: Vec<Runner> = LEAK_MIX.iter().map(|s| Runner::new(ctx, *s)).collect();
    println!("rss 0 {}", rss_kib());
    for n in 0..count {
        let runner = &mut runners[(n as usize) % LEAK_MIX.len()];
        runner.warm(first + n / LEAK_MIX.len() as u64);
        if (n + 1) % every == 0 {
            println!("rss {} {}", n + 1, rss_kib());
        }
    }
}

impl Bench {
    pub fn run_leak(&mut self) -> Leak {
        let mut report = Leak::default();
        if !self.skip(Phase::Leak) {
            let n = self.opts.leak_logins;
            log(&format!("leak: {n} logins in one process, RSS"));
            let first = self.take_iterations(n);
            let out = self
                .subprocess("leak", true)
                .args(["--count", &n.to_string(), "--first", &first.to_string()])
                .args(["--rss-every", &(n / 10).max(1).to_string()])
                .stderr(Stdio::inherit())
                .output()
                .expect("leak run");
            assert!(out.status.success(), "leak run failed");
            let rss: Vec<(u64, u64)> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() == 3 && f[0] == "rss")
                        .then(|| (f[1].parse().unwrap_or(0), f[2].parse().unwrap_or(0)))
                })
                .collect();
            // Flat: no growth between the first tenth and the end.
            let after_first = rss.get(1).map(|r| r.1).unwrap_or(0);
            let last = rss.last().map(|r| r.1).unwrap_or(0);
            log(&format!("leak: RSS (logins, KiB) {rss:?}"));
            report.rss_growth_after_first_tenth_kib = Some(last as i64 - after_first as i64);
            report.rss_kib = Some(rss);
        }
        if !self.skip(Phase::Memcheck) {
            let n = self.opts.memcheck_logins;
            for n in [0, n / 10, n] {
                log(&format!("leak: memcheck over {n} logins"));
                let first = self.take_iterations(n);
                let log_file = self.out_file(&format!("memcheck.{n}.log"));
                let status = Command::new("valgrind")
                    .args([
                        "--tool=memcheck",
                        "--leak-check=full",
                        "--show-leak-kinds=definite,indirect,possible",
                        // Only definite leaks count as errors (the possibly
                        // lost blocks are listed and reported separately).
                        "--errors-for-leak-kinds=definite",
                        "--num-callers=30",
                    ])
                    .arg(format!("--log-file={}", log_file.display()))
                    .arg(&self.disk.exe)
                    .args(["leak", "--ctx"])
                    .arg(&self.tmpfs.path)
                    .args(["--count", &n.to_string(), "--first", &first.to_string()])
                    .args(["--rss-every", "1000000"])
                    .stdout(Stdio::null())
                    .status()
                    .expect("memcheck");
                assert!(status.success(), "memcheck run failed");
                let text = fs::read_to_string(&log_file).unwrap_or_default();
                let summary = Memcheck::parse(&text, log_file);
                log(&format!(
                    "leak: memcheck {n} logins: {}",
                    serde_json::json!(summary)
                ));
                report.memcheck.insert(Leak::memcheck_key(n), summary);
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memcheck_summary_is_read_from_its_log() {
        let text = "==7== HEAP SUMMARY:\n\
                    ==7==     in use at exit: 2,452 bytes in 5 blocks\n\
                    ==7== LEAK SUMMARY:\n\
                    ==7==    definitely lost: 16 bytes in 1 blocks\n\
                    ==7==    indirectly lost: 0 bytes in 0 blocks\n\
                    ==7==      possibly lost: 1,024 bytes in 2 blocks\n\
                    ==7==    still reachable: 2,452 bytes in 5 blocks\n\
                    ==7== ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0)\n";
        let m = Memcheck::parse(text, PathBuf::from("m.log"));
        assert_eq!(
            (
                m.definitely_lost,
                m.indirectly_lost,
                m.possibly_lost,
                m.still_reachable,
                m.errors
            ),
            (16, 0, 1024, 2452, 1)
        );
    }
}
