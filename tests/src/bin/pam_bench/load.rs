//! The load cost of each module in a C host: dlopen + dlclose alone in the
//! C program of scripts/bench.sh, which has libpam loaded and no libgcc_s
//! (as sshd, su and login).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::context::security_dir_module;
use crate::measurement::{callgrind_command, callgrind_total, log, Bench, Wall};

/// The label of the module that the scenarios ran.
pub const BENCHMARKED: &str = "pam_twofactor (benchmarked build)";

/// Fresh processes whose wall times give the medians.
const SAMPLES: usize = 30;

/// One module's load cost (under the report's JSON names).
#[derive(Debug, Clone, Serialize)]
pub struct ModuleLoad {
    pub module: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub load_instructions: Option<f64>,
    pub unload_instructions: Option<f64>,
    pub load_us_median: f64,
    pub unload_us_median: f64,
}

impl Bench {
    /// Callgrind instructions of dlopen and of dlclose of each module, and
    /// their median wall times over fresh processes; None without the probe.
    pub fn run_load_probe(&mut self) -> Option<Vec<ModuleLoad>> {
        let probe = self.opts.dlopen_probe.clone()?;
        let mut modules: Vec<(&str, PathBuf)> = Vec::new();
        if let Some(m) = &self.opts.production_module {
            modules.push(("pam_twofactor (stripped, as installed)", m.clone()));
        }
        modules.push((BENCHMARKED, self.disk.module.clone()));
        for (label, name) in [
            ("pam_google_authenticator", "pam_google_authenticator.so"),
            ("pam_oath", "pam_oath.so"),
            ("pam_permit", "pam_permit.so"),
        ] {
            if let Some(path) = security_dir_module(name) {
                modules.push((label, path));
            }
        }
        let mut report = Vec::new();
        for (label, path) in modules {
            let mut ir = Vec::new();
            for function in ["probe_load", "probe_unload"] {
                let out_file =
                    self.out_file(&format!("callgrind.dlopen.{}.{function}.out", report.len()));
                let status = callgrind_command(&out_file, Some(function))
                    .arg(&probe)
                    .arg(&path)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("valgrind dlopen probe");
                assert!(
                    status.success(),
                    "dlopen probe failed for {}",
                    path.display()
                );
                ir.push(callgrind_total(&out_file));
            }
            let mut load_us = Vec::new();
            let mut unload_us = Vec::new();
            for _ in 0..SAMPLES {
                let out = Command::new(&probe).arg(&path).output().expect("probe");
                let text = String::from_utf8_lossy(&out.stdout);
                let mut f = text
                    .split_whitespace()
                    .map(|v| v.parse::<f64>().unwrap_or(0.0));
                load_us.push(f.next().unwrap_or(0.0) / 1000.0);
                unload_us.push(f.next().unwrap_or(0.0) / 1000.0);
            }
            let entry = ModuleLoad {
                module: label.to_string(),
                bytes: fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                path,
                load_instructions: ir[0],
                unload_instructions: ir[1],
                load_us_median: Wall::of(load_us).median_us,
                unload_us_median: Wall::of(unload_us).median_us,
            };
            log(&format!("load cost: {}", serde_json::json!(entry)));
            report.push(entry);
        }
        Some(report)
    }
}
