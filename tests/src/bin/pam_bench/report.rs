//! The report: printed as text (README "Performance" quotes it) and written
//! as JSON with `--json`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::cli::Options;
use crate::concurrency::Concurrency;
use crate::fleet::FleetReport;
use crate::leak::Leak;
use crate::load::{ModuleLoad, BENCHMARKED};
use crate::measurement::{Bench, Figures, Wall};
use crate::scenarios::Scenario;

/// The machine and the versions of what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
    pub date: String,
    pub os: String,
    pub libpam: String,
    #[serde(rename = "libpam-google-authenticator")]
    pub libpam_google_authenticator: String,
    #[serde(rename = "libpam-oath")]
    pub libpam_oath: String,
    pub valgrind: String,
}

/// The measurements beside the scenarios'; each is absent when skipped.
#[derive(Debug, Default, Serialize)]
pub struct Extra {
    /// `null` when no `--dlopen-probe` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<Option<Vec<ModuleLoad>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak: Option<Leak>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetReport>,
}

/// The `--json` document.
#[derive(Serialize)]
struct Document<'a> {
    machine: &'a Machine,
    module: &'a Path,
    options: &'a Options,
    scenarios: BTreeMap<&'static str, &'a Figures>,
    extra: &'a Extra,
    syslog_lines: u64,
}

pub fn machine_info() -> Machine {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
        })
        .unwrap_or_default();
    let cmd = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let version = |pkg: &str| cmd("dpkg-query", &["-W", "-f=${Version}", pkg]);
    Machine {
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu,
        kernel: cmd("uname", &["-r"]),
        date: cmd("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        os: cmd("sh", &["-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        libpam: version("libpam0g"),
        libpam_google_authenticator: version("libpam-google-authenticator"),
        libpam_oath: version("libpam-oath"),
        valgrind: cmd("valgrind", &["--version"]),
    }
}

pub fn write_json(path: &Path, bench: &Bench, machine: &Machine, syslog_lines: u64) {
    let doc = Document {
        machine,
        module: &bench.disk.module,
        options: &bench.opts,
        scenarios: bench.figures.iter().map(|(s, f)| (s.name(), f)).collect(),
        extra: &bench.extra,
        syslog_lines,
    };
    // Through a `Value`, whose objects keep their keys sorted: every report
    // lists its fields in the same order, so two reports diff line by line.
    let value = serde_json::to_value(&doc).expect("report json");
    let text = serde_json::to_vec_pretty(&value).expect("report json");
    fs::write(path, text).expect("write --json");
}

fn fmt_us(v: Option<f64>) -> String {
    v.map(|v| {
        if v >= 1000.0 {
            format!("{:.2} ms", v / 1000.0)
        } else {
            format!("{v:.0} µs")
        }
    })
    .unwrap_or_else(|| "-".into())
}

fn fmt_ir(v: Option<f64>) -> String {
    v.map(|v| {
        if v >= 1e6 {
            format!("{:.2}M", v / 1e6)
        } else {
            format!("{:.1}k", v / 1e3)
        }
    })
    .unwrap_or_else(|| "-".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "-".into())
}

/// "A vs B (A/B)".
fn fmt_versus(a: Option<f64>, b: Option<f64>) -> String {
    format!(
        "{} vs {} ({})",
        fmt_ir(a),
        fmt_ir(b),
        fmt_ratio(ratio(a, b))
    )
}

fn wall_cells(w: Option<Wall>) -> (String, String) {
    (fmt_us(w.map(|w| w.median_us)), fmt_us(w.map(|w| w.p99_us)))
}

fn median(w: Option<Wall>) -> Option<f64> {
    w.map(|w| w.median_us)
}

pub fn target(label: &str, value: Option<bool>, detail: String) {
    let verdict = match value {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    };
    println!("  [{verdict:^12}] {label}: {detail}");
}

pub fn print_report(bench: &Bench, machine: &Machine, sink_lines: u64) {
    let f = &bench.figures;
    let get = |s: Scenario| f.get(&s).cloned().unwrap_or_default();
    let or_not_installed = |v: &str| {
        if v.is_empty() {
            "not installed".to_string()
        } else {
            v.to_string()
        }
    };
    println!();
    println!("pam_twofactor login benchmark: each login is pam_start_confdir + pam_authenticate (+ pam_setcred) + pam_end");
    println!(
        "machine: {} CPU(s), {}, kernel {}, {}, {}",
        machine.nproc, machine.cpu, machine.kernel, machine.os, machine.date
    );
    println!(
        "module: {} (release, test-clock feature); libpam {}, GA {}, pam_oath {}",
        bench.disk.module.display(),
        machine.libpam,
        or_not_installed(&machine.libpam_google_authenticator),
        or_not_installed(&machine.libpam_oath),
    );
    println!("warm: N logins in one process, the module already loaded; cold: the first login through the module in a fresh process (one sample per process), as in one sshd connection");
    println!("disk: state and enrollment files on the disk (ext4 here, flushed with fsync); tmpfs: the same files on a tmpfs (CPU and system calls only)");
    println!();
    println!(
        "{:<19} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "wall per login",
        "warm-disk",
        "p99",
        "warm-tmpfs",
        "p99",
        "cold-disk",
        "p99",
        "cold-tmpfs",
        "p99"
    );
    println!(
        "{:<19} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "median", "", "median", "", "median", "", "median", ""
    );
    for (s, fig) in f {
        let (a, b) = wall_cells(fig.warm_disk);
        let (c, d) = wall_cells(fig.warm_tmpfs);
        let (e, g) = wall_cells(fig.cold_disk);
        let (h, i) = wall_cells(fig.cold_tmpfs);
        println!(
            "{:<19} {a:>9} {b:>9} {c:>9} {d:>9} {e:>9} {g:>9} {h:>9} {i:>9}",
            s.name()
        );
    }
    println!();
    println!(
        "{:<19} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "instructions", "per login", "first", "load Δ", "dl warm", "dl first", "state"
    );
    println!(
        "{:<19} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "(callgrind)", "warm", "(cold)", "cold-warm", "per login", "login", "bytes"
    );
    for (s, fig) in f {
        let load = match (fig.ir_cold, fig.ir_warm) {
            (Some(c), Some(w)) => Some(c - w),
            _ => None,
        };
        println!(
            "{:<19} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}{}",
            s.name(),
            fmt_ir(fig.ir_warm),
            fmt_ir(fig.ir_cold),
            fmt_ir(load),
            fmt_ir(fig.ir_dl_warm),
            fmt_ir(fig.ir_dl_cold),
            fig.state_bytes
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            fig.note
                .as_ref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default()
        );
    }
    println!("(dl = instructions inside dlopen + dlclose: loading, relocating and unloading modules and their libraries)");
    let cross: Vec<String> = f
        .iter()
        .filter_map(|(s, fig)| {
            fig.ir_warm_crosscheck.map(|c| {
                format!(
                    "{} {} (toggle-collect {})",
                    s.name(),
                    fmt_ir(Some(c)),
                    fmt_ir(fig.ir_warm)
                )
            })
        })
        .collect();
    if !cross.is_empty() {
        println!(
            "cross-check by differencing whole runs, (Ir of N iterations - Ir of 0) / N, preparation included: {}",
            cross.join("; ")
        );
    }
    if let Some(Some(load)) = &bench.extra.load {
        println!();
        println!("loading a module alone (dlopen + dlclose) in a C program with libpam and without libgcc_s, as sshd, su and login do once per process:");
        println!(
            "  {:<40} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "module", "bytes", "load Ir", "unload Ir", "load", "unload"
        );
        for m in load {
            println!(
                "  {:<40} {:>10} {:>10} {:>10} {:>10} {:>10}",
                m.module,
                m.bytes,
                fmt_ir(m.load_instructions),
                fmt_ir(m.unload_instructions),
                fmt_us(Some(m.load_us_median)),
                fmt_us(Some(m.unload_us_median)),
            );
        }
    }
    println!();
    println!("ratios, ours / theirs: instructions warm, instructions cold, wall warm-disk, wall cold-disk, wall warm-tmpfs (medians)");
    for s in [
        Scenario::TotpOk,
        Scenario::TotpWrong,
        Scenario::BackupOk,
        Scenario::BackupWrong,
        Scenario::Unenrolled,
        Scenario::Locked,
    ] {
        let ours = get(s);
        let mut peers: Vec<Scenario> = s.peers().to_vec();
        peers.push(Scenario::Permit);
        for p in peers {
            if !f.contains_key(&p) || !f.contains_key(&s) {
                continue;
            }
            let theirs = get(p);
            println!(
                "  {:<15} / {:<19} {:>8} {:>8} {:>8} {:>8} {:>8}",
                s.name(),
                p.name(),
                fmt_ratio(ratio(ours.ir_warm, theirs.ir_warm)),
                fmt_ratio(ratio(ours.ir_cold, theirs.ir_cold)),
                fmt_ratio(ratio(median(ours.warm_disk), median(theirs.warm_disk))),
                fmt_ratio(ratio(median(ours.cold_disk), median(theirs.cold_disk))),
                fmt_ratio(ratio(median(ours.warm_tmpfs), median(theirs.warm_tmpfs))),
            );
        }
    }
    println!();
    println!("targets:");
    let ok = get(Scenario::TotpOk);
    let wrong = get(Scenario::TotpWrong);
    let ga_ok = get(Scenario::GaTotpOk);
    let ga_wrong = get(Scenario::GaTotpWrong);
    let backup = get(Scenario::BackupOk);
    let c_host = c_host_first_login(bench, &ok, &ga_ok);
    for (label, ours_v, ga_v) in [
        ("warm", ok.ir_warm, ga_ok.ir_warm),
        ("first login in a process", ok.ir_cold, ga_ok.ir_cold),
        (
            "first login in a C host such as sshd, estimated",
            c_host.0,
            c_host.1,
        ),
    ] {
        target(
            &format!("correct TOTP ≤ GA's correct code, instructions ({label})"),
            ours_v.zip(ga_v).map(|(a, b)| a <= b),
            fmt_versus(ours_v, ga_v),
        );
    }
    target(
        "wrong TOTP within 1.5× of correct TOTP (instructions, warm)",
        ratio(wrong.ir_warm, ok.ir_warm).map(|r| r <= 1.5),
        fmt_versus(wrong.ir_warm, ok.ir_warm),
    );
    target(
        "wrong TOTP ≥100× cheaper than GA's wrong code (instructions, warm)",
        ratio(ga_wrong.ir_warm, wrong.ir_warm).map(|r| r >= 100.0),
        format!(
            "{} vs {}: GA/ours = {}",
            fmt_ir(ga_wrong.ir_warm),
            fmt_ir(wrong.ir_warm),
            fmt_ratio(ratio(ga_wrong.ir_warm, wrong.ir_warm))
        ),
    );
    target(
        "valid backup code within 2× of correct TOTP (instructions, warm)",
        ratio(backup.ir_warm, ok.ir_warm).map(|r| r <= 2.0),
        fmt_versus(backup.ir_warm, ok.ir_warm),
    );
    if let Some(leak) = &bench.extra.leak {
        print_leak_targets(leak, &bench.opts);
    }
    if let Some(c) = &bench.extra.concurrency {
        println!();
        println!(
            "concurrency ({} processes at once on {} CPU(s), files on the disk):",
            bench.opts.workers, machine.nproc
        );
        for (_, label, run) in c.runs() {
            println!(
                "  {label}: {:.0} logins/s over {} logins; {}",
                run.logins_per_second,
                run.logins,
                if run.correct {
                    format!("correct ({})", run.summary)
                } else {
                    format!("INCONSISTENT: {}", serde_json::json!(run))
                }
            );
        }
    }
    if let Some(fleet) = &bench.extra.fleet {
        fleet.print(bench.opts.workers);
    }
    println!();
    println!("syslog lines received on the private /dev/log: {sink_lines}");
}

fn print_leak_targets(leak: &Leak, opts: &Options) {
    let n = opts.memcheck_logins;
    if let Some(m) = leak.memcheck.get(&Leak::memcheck_key(n)) {
        // memcheck ran over 0, n/10 and n logins.
        let at = |k: u64, pick: fn(&crate::leak::Memcheck) -> u64| {
            leak.memcheck
                .get(&Leak::memcheck_key(k))
                .map_or("null".to_string(), |m| pick(m).to_string())
        };
        let possibly = |k| at(k, |m| m.possibly_lost);
        let reachable = |k| at(k, |m| m.still_reachable);
        target(
            &format!("no leak over {n} logins in one process (memcheck)"),
            Some(m.definitely_lost + m.indirectly_lost == 0 && m.errors == 0),
            format!(
                "definitely lost {} B, indirectly lost {} B, memory errors {}; \
                 possibly lost {} / {} / {} B and still reachable {} / {} / {} B after 0 / {} / {n} logins",
                m.definitely_lost,
                m.indirectly_lost,
                m.errors,
                possibly(0),
                possibly(n / 10),
                possibly(n),
                reachable(0),
                reachable(n / 10),
                reachable(n),
                n / 10,
            ),
        );
    }
    if let (Some(growth), Some(rss)) = (leak.rss_growth_after_first_tenth_kib, &leak.rss_kib) {
        target(
            &format!("RSS flat over {} logins", opts.leak_logins),
            Some(growth <= 64),
            format!(
                "growth after the first tenth: {growth} KiB; (logins, KiB): {}",
                serde_json::json!(rss)
            ),
        );
    }
}

/// The first login in a C host that has not loaded libgcc_s (sshd, su,
/// login), estimated from the warm login and the C probe's load cost:
/// (ours, GA's). GA's warm logins already load and unload it each time.
fn c_host_first_login(bench: &Bench, ours: &Figures, ga: &Figures) -> (Option<f64>, Option<f64>) {
    let load = bench
        .extra
        .load
        .as_ref()
        .and_then(Option::as_ref)
        .and_then(|modules| modules.iter().find(|m| m.module == BENCHMARKED))
        .map(|m| m.load_instructions.unwrap_or(0.0) + m.unload_instructions.unwrap_or(0.0));
    (ours.ir_warm.zip(load).map(|(w, l)| w + l), ga.ir_warm)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::concurrency::Run;
    use crate::leak::Memcheck;
    use std::path::PathBuf;

    /// The keys of a JSON object, for checking a report's field names.
    pub(crate) fn keys(v: &serde_json::Value) -> Vec<&str> {
        v.as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect()
    }

    /// The JSON names that scripts and earlier reports know.
    #[test]
    fn json_field_names() {
        let wall = Some(Wall::of(vec![1.0, 2.0]));
        let figures = Figures {
            warm_disk: wall,
            ir_warm: Some(1.0),
            note: Some("n".into()),
            ..Figures::default()
        };
        let v = serde_json::to_value(&figures).unwrap();
        assert_eq!(
            keys(&v),
            [
                "instructions_cold",
                "instructions_dlopen_dlclose_cold",
                "instructions_dlopen_dlclose_warm",
                "instructions_warm",
                "instructions_warm_crosscheck",
                "note",
                "state_bytes",
                "wall_cold_disk",
                "wall_cold_tmpfs",
                "wall_warm_disk",
                "wall_warm_tmpfs",
            ]
        );
        assert_eq!(
            keys(&v["wall_warm_disk"]),
            ["median_us", "p99_us", "samples"]
        );
        assert!(v["wall_cold_disk"].is_null() && v["instructions_cold"].is_null());

        let run = Run {
            workers: 2,
            logins: 4,
            seconds: 1.0,
            logins_per_second: 4.0,
            correct: true,
            summary: String::new(),
        };
        let c = Concurrency {
            distinct_users: run.clone(),
            same_user_totp: run.clone(),
            same_user_backup_codes: run.clone(),
            same_user_failures: run,
        };
        let v = serde_json::to_value(&c).unwrap();
        for (key, _, _) in c.runs() {
            assert!(v[key].is_object(), "{key}");
        }
        assert_eq!(
            keys(&v["distinct_users"]),
            [
                "correct",
                "logins",
                "logins_per_second",
                "seconds",
                "summary",
                "workers"
            ]
        );

        let memcheck = Memcheck {
            definitely_lost: 0,
            indirectly_lost: 0,
            possibly_lost: 0,
            still_reachable: 0,
            errors: 0,
            log: PathBuf::from("m.log"),
        };
        let leak = Leak {
            rss_kib: Some(vec![(0, 10), (100, 12)]),
            rss_growth_after_first_tenth_kib: Some(2),
            memcheck: [(Leak::memcheck_key(20), memcheck)].into(),
        };
        let load = ModuleLoad {
            module: BENCHMARKED.into(),
            path: PathBuf::from("/m.so"),
            bytes: 1,
            load_instructions: Some(1.0),
            unload_instructions: None,
            load_us_median: 1.0,
            unload_us_median: 1.0,
        };
        let extra = Extra {
            load: Some(Some(vec![load])),
            concurrency: None,
            leak: Some(leak),
            fleet: None,
        };
        let v = serde_json::to_value(&extra).unwrap();
        assert_eq!(keys(&v), ["leak", "load"]);
        assert_eq!(
            keys(&v["leak"]),
            [
                "memcheck_20_logins",
                "rss_growth_after_first_tenth_kib",
                "rss_kib"
            ]
        );
        assert_eq!(
            v["leak"]["rss_kib"],
            serde_json::json!([[0, 10], [100, 12]])
        );
        assert_eq!(
            keys(&v["leak"]["memcheck_20_logins"]),
            [
                "definitely_lost",
                "errors",
                "indirectly_lost",
                "log",
                "possibly_lost",
                "still_reachable"
            ]
        );
        assert_eq!(
            keys(&v["load"][0]),
            [
                "bytes",
                "load_instructions",
                "load_us_median",
                "module",
                "path",
                "unload_instructions",
                "unload_us_median"
            ]
        );
        let machine = Machine {
            nproc: 2,
            cpu: String::new(),
            kernel: String::new(),
            date: String::new(),
            os: String::new(),
            libpam: String::new(),
            libpam_google_authenticator: String::new(),
            libpam_oath: String::new(),
            valgrind: String::new(),
        };
        assert_eq!(
            keys(&serde_json::to_value(&machine).unwrap()),
            [
                "cpu",
                "date",
                "kernel",
                "libpam",
                "libpam-google-authenticator",
                "libpam-oath",
                "nproc",
                "os",
                "valgrind"
            ]
        );
        // Without --dlopen-probe the load cost is null; skipped, it is absent.
        let no_probe = Extra {
            load: Some(None),
            ..Extra::default()
        };
        assert_eq!(
            serde_json::to_value(&no_probe).unwrap(),
            serde_json::json!({"load": null})
        );
    }
}
