//! The Debian package, installed the way an administrator installs it:
//! built by packaging/deb/build-deb.sh, installed with `dpkg -i`, enabled
//! with `pam-auth-update --enable twofactor`, logged in through the
//! generated common-auth with the real libpam, refused removal while a
//! hand-written stack still uses the module, then `dpkg -r` and `--purge`.
//!
//! All of it runs on this machine's own dpkg database and file system, seen
//! through overlay mounts on /etc, /usr and /var in the test's private mount
//! namespace: every write lands in a scratch layer that disappears with the
//! test process. The host is left exactly as it was even if the test fails
//! or is killed (and the test checks that), and other programs on the host
//! (another test run, a benchmark using the installed module) never see a
//! half-installed package. The package is still purged at the end.
//!
//! Also: the package's contents and modes, and the RPM spec's file list.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use libtest_mimic::Failed;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use twofactor_integration_tests::checks::ensure as check;
use twofactor_integration_tests::namespace::{self, TestNamespace};
use twofactor_integration_tests::pam_client::{self, code, Attempt, Shown};
use twofactor_integration_tests::run_trials;
use twofactor_integration_tests::sshd::totp_from_uri;
use twofactor_integration_tests::users::{user, PASSWORD};
use twofactor_integration_tests::{production_module, target_dir, twofactor_binary};

const PACKAGE: &str = "libpam-twofactor";
const MODULE: &str = "/usr/lib/x86_64-linux-gnu/security/pam_twofactor.so";
const CONFIG: &str = "/etc/security/pam_twofactor.toml";
const STATE_DIR: &str = "/var/lib/pam_twofactor";
const PROFILE: &str = "/usr/share/pam-configs/twofactor";
/// A service of the test's own that uses common-auth, as most do.
const SERVICE: &str = "tf-package-login";

struct Shared {
    ns: TestNamespace,
    deb: OnceLock<Result<PathBuf, String>>,
    /// See [`Shared::exclusive`].
    overlays: Mutex<()>,
}

impl Shared {
    /// The package, built once from the modules the test run uses.
    fn deb(&self) -> Result<&Path, Failed> {
        self.deb
            .get_or_init(|| build_deb(&self.ns))
            .as_deref()
            .map_err(|why| format!("building the package failed: {why}").into())
    }

    /// The right to mount overlays on /etc, /usr and /var: the trials
    /// share one mount namespace.
    fn exclusive(&self) -> MutexGuard<'_, ()> {
        self.overlays.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .to_path_buf()
}

fn build_deb(ns: &TestNamespace) -> Result<PathBuf, String> {
    let out = ns.scratch.join("deb");
    let mut command = Command::new(workspace().join("packaging/deb/build-deb.sh"));
    command
        .arg("--module")
        .arg(production_module())
        .arg("--tool")
        .arg(twofactor_binary())
        .arg("--out")
        .arg(&out)
        .arg("--fast");
    let helper = target_dir().join("debug/twofactor-fido2-helper");
    if helper.exists() {
        command.arg("--helper").arg(helper);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run build-deb.sh: {e}"))?;
    if !output.status.success() {
        return Err(describe("build-deb.sh", &output));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let deb = stdout.lines().last().unwrap_or_default().trim();
    Ok(PathBuf::from(deb))
}

fn describe(what: &str, output: &Output) -> String {
    format!(
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Run a program non-interactively (stdin closed: a dpkg prompt would fail).
fn run(program: &str, args: &[&str]) -> Result<Output, Failed> {
    Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}").into())
}

fn run_ok(program: &str, args: &[&str]) -> Result<Output, Failed> {
    let output = run(program, args)?;
    check(output.status.success(), || {
        describe(&format!("{program} {}", args.join(" ")), &output)
    })?;
    Ok(output)
}

/// Installed and configured (whatever the selection: a refused `dpkg -r`
/// leaves "deinstall ok installed").
fn installed() -> Result<bool, Failed> {
    let output = run("dpkg-query", &["-W", "-f=${Status}", PACKAGE])?;
    Ok(String::from_utf8_lossy(&output.stdout).ends_with(" ok installed"))
}

fn mode_owner(path: &str) -> Result<(u32, u32, u32), Failed> {
    let meta = fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
    Ok((meta.mode() & 0o7777, meta.uid(), meta.gid()))
}

/// The module lines of common-auth, in order, comments dropped.
fn common_auth_lines() -> Result<Vec<String>, Failed> {
    Ok(fs::read_to_string("/etc/pam.d/common-auth")?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect())
}

fn login(user_name: &str, answers: &[&str]) -> pam_client::AttemptResult {
    pam_client::authenticate(
        Path::new("/etc/pam.d"),
        SERVICE,
        user_name,
        &Attempt {
            answers: answers.iter().map(|a| a.to_string()).collect(),
            ..Attempt::default()
        },
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// What the host looks like, to check afterwards that nothing changed.
fn host_fingerprint() -> Result<String, Failed> {
    let mut out = String::new();
    let status = run("dpkg-query", &["-W", "-f=${Status} ${Version}", PACKAGE])?;
    out.push_str(&String::from_utf8_lossy(&status.stdout));
    for path in [
        "/etc/pam.d/common-auth",
        "/var/lib/pam/seen",
        CONFIG,
        MODULE,
    ] {
        let contents = fs::read(path).unwrap_or_default();
        out.push_str(&format!("\n{path}: {} bytes", contents.len()));
        out.push_str(&format!(" {:x}", fnv(&contents)));
    }
    Ok(out)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Overlays on /etc, /usr and /var for the rest of the trial; unmounted on drop.
/// Mount them while holding [`Shared::exclusive`].
struct Overlays {
    mounted: Vec<&'static str>,
}

impl Overlays {
    /// `name`: the trial's own scratch layers.
    fn mount(ns: &TestNamespace, name: &str) -> Result<Overlays, Failed> {
        let mut overlays = Overlays {
            mounted: Vec::new(),
        };
        for dir in ["/etc", "/usr", "/var"] {
            let base = ns.scratch.join(name).join(&dir[1..]);
            let (upper, work) = (base.join("upper"), base.join("work"));
            fs::create_dir_all(&upper)?;
            fs::create_dir_all(&work)?;
            let options = format!(
                "lowerdir={dir},upperdir={},workdir={}",
                upper.display(),
                work.display()
            );
            mount(
                Some("overlay"),
                dir,
                Some("overlay"),
                MsFlags::empty(),
                Some(options.as_str()),
            )
            .map_err(|e| format!("mount an overlay on {dir} (needs overlayfs): {e}"))?;
            overlays.mounted.push(dir);
        }
        // man-db's trigger rebuilds the whole index after each dpkg run
        // (seconds); without this flag file it skips that, and `man -w`
        // finds pages without the index anyway.
        let _ = fs::remove_file("/var/lib/man-db/auto-update");
        // The test accounts are in the namespace's own /etc, this overlay's
        // lower layer: visible through it as they are.
        Ok(overlays)
    }
}

impl Drop for Overlays {
    fn drop(&mut self) {
        // Whatever happened: the package leaves, then the layers go.
        if self.mounted.contains(&"/var") {
            let _ = run("dpkg", &["--purge", PACKAGE]);
        }
        for dir in self.mounted.iter().rev() {
            let _ = umount2(*dir, MntFlags::MNT_DETACH);
        }
    }
}

fn install_enable_login_remove(shared: &Shared) -> Result<(), Failed> {
    let deb = shared.deb()?.to_path_buf();
    let deb = deb.to_str().ok_or("path")?;
    let ns = &shared.ns;
    // Until the host is seen as it was again: no other trial's overlays.
    let _exclusive = shared.exclusive();
    let host_before = host_fingerprint()?;
    let started = Instant::now();
    let overlays = Overlays::mount(ns, "overlay")?;
    if installed()? {
        run_ok("dpkg", &["--purge", PACKAGE])?;
    }

    // What scripts/install.sh leaves behind: an unowned module, the command
    // in /usr/local/bin, a configuration edited by the administrator, and
    // a state directory with the old mode.
    let shipped = fs::read_to_string(workspace().join("config/pam_twofactor.toml"))?;
    let local = format!("{shipped}\n# edited by the administrator\n");
    fs::create_dir_all("/etc/security")?;
    fs::write(CONFIG, &local)?;
    fs::set_permissions(CONFIG, fs::Permissions::from_mode(0o644))?;
    let _ = fs::remove_file(format!("{CONFIG}.dpkg-dist"));
    fs::create_dir_all(Path::new(MODULE).parent().ok_or("no parent")?)?;
    fs::write(MODULE, b"left over from scripts/install.sh")?;
    fs::copy(twofactor_binary(), "/usr/local/bin/twofactor")?;
    fs::create_dir_all(STATE_DIR)?;
    fs::set_permissions(STATE_DIR, fs::Permissions::from_mode(0o700))?;

    // Install.
    let output = run("dpkg", &["-i", deb])?;
    let install_text = describe("dpkg -i", &output);
    check(output.status.success() && installed()?, || {
        install_text.clone()
    })?;
    check(!install_text.contains("Configuration file"), || {
        format!("dpkg prompted about the configuration:\n{install_text}")
    })?;
    check(
        install_text.contains("kept your /etc/security/pam_twofactor.toml"),
        || install_text.clone(),
    )?;
    check(install_text.contains("/usr/local/bin/twofactor"), || {
        format!("no note about /usr/local/bin/twofactor:\n{install_text}")
    })?;

    // Files, modes, the configuration kept and the default beside it.
    check(mode_owner(MODULE)? == (0o644, 0, 0), || MODULE.to_string())?;
    check(mode_owner("/usr/bin/twofactor")? == (0o755, 0, 0), || {
        "twofactor".into()
    })?;
    check(mode_owner(STATE_DIR)? == (0o711, 0, 0), || {
        format!("{STATE_DIR}: {:?}", mode_owner(STATE_DIR))
    })?;
    check(mode_owner(PROFILE)? == (0o644, 0, 0), || PROFILE.into())?;
    check(fs::read_to_string(CONFIG)? == local, || {
        "the administrator's configuration was replaced".into()
    })?;
    check(
        fs::read_to_string(format!("{CONFIG}.dpkg-dist"))? == shipped,
        || "the packaged default is not beside it".into(),
    )?;
    let conffiles = fs::read_to_string(format!("/var/lib/dpkg/info/{PACKAGE}.conffiles"))?;
    check(conffiles.trim() == CONFIG, || conffiles.clone())?;
    check(fs::read(MODULE)?.starts_with(b"\x7fELF"), || {
        "the leftover module was not replaced".into()
    })?;
    let verify = run("dpkg", &["--verify", PACKAGE])?;
    let verify_text = String::from_utf8_lossy(&verify.stdout);
    check(verify_text.lines().all(|l| l.ends_with(CONFIG)), || {
        format!("dpkg --verify: {verify_text}")
    })?;
    for (page, section) in [
        ("twofactor", "1"),
        ("twofactor-import-google-authenticator", "1"),
        ("twofactor-doctor", "1"),
        ("pam_twofactor.toml", "5"),
        ("pam_twofactor", "8"),
    ] {
        let found = run_ok("man", &["-w", section, page])?;
        check(
            String::from_utf8_lossy(&found.stdout)
                .contains(&format!("/usr/share/man/man{section}/")),
            || format!("man -w {section} {page}"),
        )?;
    }
    let profile = fs::read_to_string(PROFILE)?;
    check(
        profile.contains("Default: no") && profile.contains("Auth-Type: Additional"),
        || profile.clone(),
    )?;
    check(
        !common_auth_lines()?
            .iter()
            .any(|l| l.contains("pam_twofactor")),
        || "installing changed common-auth".into(),
    )?;

    // A user enrolls with the packaged command (default configuration:
    // the enrollment goes into the home directory).
    let alice = user(0);
    let enrolled = run_ok(
        "/usr/bin/twofactor",
        &[
            "enroll",
            "--user",
            &alice.name,
            "--non-interactive",
            "--json",
        ],
    )?;
    let json: serde_json::Value = serde_json::from_slice(&enrolled.stdout)?;
    let totp = totp_from_uri(json["otpauth_uri"].as_str().ok_or("no uri")?)?;
    let backup = json["backup_codes"][0]
        .as_str()
        .ok_or("no code")?
        .to_string();
    let enrollment = alice.home.join(".config/twofactor/enrollment.json");
    check(enrollment.exists(), || "no enrollment in the home".into())?;

    // Enable the profile.
    run_ok("pam-auth-update", &["--enable", "twofactor"])?;
    let lines = common_auth_lines()?;
    let position = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let (Some(unix), Some(deny), Some(permit), Some(ours)) = (
        position("pam_unix.so"),
        position("pam_deny.so"),
        position("pam_permit.so"),
        position("pam_twofactor.so"),
    ) else {
        return Err(format!("common-auth: {lines:#?}").into());
    };
    check(
        lines[ours] == "auth requisite pam_twofactor.so"
            && unix < deny
            && deny < permit
            && permit < ours
            && lines[unix].contains("[success=1 default=ignore]"),
        || format!("the module is not after the password block: {lines:#?}"),
    )?;
    let seen = fs::read_to_string("/var/lib/pam/seen")?;
    check(seen.lines().any(|l| l == "twofactor"), || seen.clone())?;

    // Logins through the generated common-auth.
    fs::write(
        Path::new("/etc/pam.d").join(SERVICE),
        "@include common-auth\naccount required pam_permit.so\n",
    )?;
    let result = login(&alice.name, &[PASSWORD, &totp.code_at(now())]);
    check(
        result.code == code::SUCCESS && result.prompts() == ["Password: ", "Verification code: "],
        || format!("password and code: {result:?}"),
    )?;
    let result = login(&alice.name, &["wrong password", "123456"]);
    check(
        result.code == code::AUTH_ERR && result.prompts() == ["Password: "],
        || format!("a wrong password must end the stack before the code: {result:?}"),
    )?;
    let result = login(&alice.name, &[PASSWORD, &backup]);
    check(
        result.code == code::SUCCESS
            && result.shown.contains(&Shown::Info(
                "Backup code accepted. 9 backup codes left.".into(),
            )),
        || format!("backup code: {result:?}"),
    )?;
    let result = login(&alice.name, &[PASSWORD, &backup]);
    check(result.code == code::AUTH_ERR, || {
        format!("spent code: {result:?}")
    })?;
    let bob = user(1);
    let result = login(&bob.name, &[PASSWORD, "123456"]);
    check(result.code == code::AUTH_ERR, || {
        format!("an unenrolled user got in (unenrolled = fail): {result:?}")
    })?;

    // doctor finds the packaged module by name, and sees that Debian's
    // default sshd_config (KbdInteractiveAuthentication no) cannot ask for
    // the code that common-auth now wants.
    let doctor = run("/usr/bin/twofactor", &["doctor", "--user", &alice.name])?;
    let doctor_text = String::from_utf8_lossy(&doctor.stdout);
    check(
        doctor_text.contains("/x86_64-linux-gnu/security/pam_twofactor.so is a x86-64 PAM module")
            && doctor_text.contains("tf-user0 is enrolled for")
            && (!Path::new("/usr/sbin/sshd").exists()
                || doctor_text.contains("PROBLEM sshd has KbdInteractiveAuthentication no")),
        || describe("doctor", &doctor),
    )?;

    // Removal is refused while a hand-written stack still needs the module,
    // and nothing is changed by the refusal.
    let manual = Path::new("/etc/pam.d/tf-package-manual");
    fs::write(manual, "auth requisite pam_twofactor.so\n")?;
    let refused = run("dpkg", &["-r", PACKAGE])?;
    let refused_text = describe("dpkg -r", &refused);
    check(
        !refused.status.success()
            && refused_text.contains("/etc/pam.d/tf-package-manual")
            && installed()?
            && Path::new(MODULE).exists(),
        || refused_text.clone(),
    )?;
    check(
        common_auth_lines()?
            .iter()
            .any(|l| l.contains("pam_twofactor")),
        || "a refused removal took the module out of common-auth".into(),
    )?;
    fs::remove_file(manual)?;

    // Remove: the profile leaves common-auth first; passwords still work.
    run_ok("dpkg", &["-r", PACKAGE])?;
    check(!installed()?, || "still installed".into())?;
    check(
        !common_auth_lines()?
            .iter()
            .any(|l| l.contains("pam_twofactor")),
        || {
            format!(
                "common-auth still names the module: {:#?}",
                common_auth_lines()
            )
        },
    )?;
    check(
        !Path::new(MODULE).exists() && !Path::new("/usr/bin/twofactor").exists(),
        || "files left after dpkg -r".into(),
    )?;
    check(fs::read_to_string(CONFIG)? == local, || {
        "dpkg -r changed the configuration".into()
    })?;
    check(enrollment.exists(), || {
        "dpkg -r removed an enrollment".into()
    })?;
    let result = login(&alice.name, &[PASSWORD]);
    check(
        result.code == code::SUCCESS && result.prompts() == ["Password: "],
        || format!("after removal, the password alone must log in: {result:?}"),
    )?;

    // Purge: the configuration goes, the login state stays.
    let purged = run_ok("dpkg", &["--purge", PACKAGE])?;
    let purge_text = describe("dpkg --purge", &purged);
    check(
        !Path::new(CONFIG).exists() && !Path::new(&format!("{CONFIG}.dpkg-dist")).exists(),
        || format!("configuration left after purge\n{purge_text}"),
    )?;
    check(
        Path::new(STATE_DIR)
            .join(format!("{}.state", alice.name))
            .exists()
            && purge_text.contains("kept /var/lib/pam_twofactor"),
        || format!("the login state was not kept:\n{purge_text}"),
    )?;
    check(enrollment.exists(), || "purge removed an enrollment".into())?;

    // A fresh install with no configuration at all, then purge again.
    fs::remove_dir_all(STATE_DIR)?;
    let output = run_ok("dpkg", &["-i", deb])?;
    check(
        fs::read_to_string(CONFIG)? == shipped
            && !String::from_utf8_lossy(&output.stderr).contains("kept your"),
        || describe("second install", &output),
    )?;
    run_ok("dpkg", &["--purge", PACKAGE])?;
    check(!Path::new(STATE_DIR).exists(), || {
        "purge kept an empty state directory".into()
    })?;
    let elapsed = started.elapsed();

    drop(overlays);
    let host_after = host_fingerprint()?;
    check(host_before == host_after, || {
        format!("the host changed:\nbefore: {host_before}\nafter: {host_after}")
    })?;
    eprintln!(
        "  install/enable/login/remove/purge: {:.1} s",
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// scripts/install.sh, as an administrator installing from source runs it
/// (given the binaries this test run built, instead of building its own):
/// the module, the command, the configuration, and the man pages that
/// `twofactor --help` and the README point to, where man(1) finds them.
fn install_script_installs_the_man_pages(shared: &Shared) -> Result<(), Failed> {
    let ns = &shared.ns;
    let _exclusive = shared.exclusive();
    let host_before = host_fingerprint()?;
    let overlays = Overlays::mount(ns, "overlay-install-script")?;
    let mut command = Command::new(workspace().join("scripts/install.sh"));
    command
        .arg("--module")
        .arg(production_module())
        .arg("--tool")
        .arg(twofactor_binary());
    let helper = target_dir().join("debug/twofactor-fido2-helper");
    if helper.exists() {
        command.arg("--helper").arg(helper);
    }
    let output = command.env("LC_ALL", "C").stdin(Stdio::null()).output()?;
    check(output.status.success(), || {
        describe("scripts/install.sh", &output)
    })?;
    check(mode_owner(MODULE)? == (0o644, 0, 0), || MODULE.to_string())?;
    check(
        mode_owner("/usr/local/bin/twofactor")? == (0o755, 0, 0),
        || "/usr/local/bin/twofactor".into(),
    )?;
    check(mode_owner(STATE_DIR)? == (0o711, 0, 0), || STATE_DIR.into())?;
    check(Path::new(CONFIG).exists(), || CONFIG.into())?;
    let local = "/usr/local/share/man";
    for (args, page) in [
        (vec!["-w", "twofactor"], "man1/twofactor.1.gz"),
        (
            vec!["-w", "1", "twofactor-enroll"],
            "man1/twofactor-enroll.1.gz",
        ),
        (
            vec!["-w", "twofactor-import-pam-u2f"],
            "man1/twofactor-import-pam-u2f.1.gz",
        ),
        (
            vec!["-w", "5", "pam_twofactor.toml"],
            "man5/pam_twofactor.toml.5.gz",
        ),
        (vec!["-w", "8", "pam_twofactor"], "man8/pam_twofactor.8.gz"),
    ] {
        let found = run("man", &args)?;
        let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
        // Debian's /usr/local/man is a link to share/man, which man names.
        let resolved = fs::canonicalize(&path).ok();
        check(
            found.status.success() && resolved == Some(format!("{local}/{page}").into()),
            || describe(&format!("man {}", args.join(" ")), &found),
        )?;
        check(mode_owner(&path)? == (0o644, 0, 0), || path.clone())?;
    }
    // And the pages are the committed ones, readable as man shows them.
    let shown = Command::new("man")
        .args(["8", "pam_twofactor"])
        .env("MANPAGER", "cat")
        .env("LC_ALL", "C.UTF-8")
        .output()?;
    check(
        shown.status.success()
            && String::from_utf8_lossy(&shown.stdout).contains("auth requisite pam_twofactor.so"),
        || describe("man 8 pam_twofactor", &shown),
    )?;
    drop(overlays);
    let host_after = host_fingerprint()?;
    check(host_before == host_after, || {
        format!("the host changed:\nbefore: {host_before}\nafter: {host_after}")
    })?;
    Ok(())
}

/// The files of the package with their modes (`dpkg-deb -c`).
fn deb_files(deb: &Path) -> Result<Vec<(String, String)>, Failed> {
    let deb = deb.to_str().ok_or("path")?;
    let listing = run_ok("dpkg-deb", &["-c", deb])?;
    Ok(String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let path = fields.last()?.trim_start_matches('.').to_string();
            Some((fields.first()?.to_string(), path))
        })
        .collect())
}

fn package_contents_and_metadata(shared: &Shared) -> Result<(), Failed> {
    let deb = shared.deb()?;
    let files = deb_files(deb)?;
    let mode_of = |path: &str| {
        files
            .iter()
            .find(|(_, p)| p.trim_end_matches('/') == path)
            .map(|(m, _)| m.clone())
    };
    for (path, mode) in [
        (MODULE, "-rw-r--r--"),
        ("/usr/bin/twofactor", "-rwxr-xr-x"),
        (CONFIG, "-rw-r--r--"),
        (STATE_DIR, "drwx--x--x"),
        (PROFILE, "-rw-r--r--"),
        ("/usr/share/man/man1/twofactor.1.gz", "-rw-r--r--"),
        ("/usr/share/man/man5/pam_twofactor.toml.5.gz", "-rw-r--r--"),
        ("/usr/share/man/man8/pam_twofactor.8.gz", "-rw-r--r--"),
        ("/usr/share/doc/libpam-twofactor/copyright", "-rw-r--r--"),
        (
            "/usr/share/doc/libpam-twofactor/changelog.Debian.gz",
            "-rw-r--r--",
        ),
    ] {
        check(mode_of(path).as_deref() == Some(mode), || {
            format!("{path}: {:?}, expected {mode}", mode_of(path))
        })?;
    }
    // The README and the manual it links to (docs/), at the same relative
    // places; postinst points administrators to the guide.
    let mut documents = vec!["README.md".to_string()];
    for entry in fs::read_dir(workspace().join("docs"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            documents.push(format!("docs/{name}"));
        }
    }
    check(documents.len() > 5, || format!("docs/: {documents:?}"))?;
    for document in &documents {
        let path = format!("/usr/share/doc/{PACKAGE}/{document}.gz");
        check(mode_of(&path).as_deref() == Some("-rw-r--r--"), || {
            format!("{path}: {:?}, expected -rw-r--r--", mode_of(&path))
        })?;
    }
    let postinst = fs::read_to_string(workspace().join("packaging/deb/postinst"))?;
    check(
        postinst.contains(&format!("/usr/share/doc/{PACKAGE}/docs/admin-guide.md.gz")),
        || "postinst does not point to the administrator's guide".into(),
    )?;
    let loose: Vec<&(String, String)> = files
        .iter()
        .filter(|(m, p)| {
            m.chars().nth(5) == Some('w')
                || m.chars().nth(8) == Some('w')
                || p.starts_with("/usr/local")
        })
        .collect();
    check(loose.is_empty(), || {
        format!("writable by group or others, or under /usr/local: {loose:?}")
    })?;
    // The packaged module is the shipped build: no test clock.
    let tar = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .output()?;
    check(
        tar.status.success()
            && !tar
                .stdout
                .windows(22)
                .any(|w| w == b"PAM_TWOFACTOR_TEST_NOW"),
        || "the package holds a module built with the test clock".into(),
    )?;
    let listing = run_ok("dpkg-deb", &["-c", deb.to_str().ok_or("path")?])?;
    check(
        String::from_utf8_lossy(&listing.stdout)
            .lines()
            .all(|l| l.contains(" root/root ")),
        || "a file is not owned by root".into(),
    )?;
    let field = |name: &str| -> Result<String, Failed> {
        let out = run_ok("dpkg-deb", &["-f", deb.to_str().ok_or("path")?, name])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    check(field("Package")? == PACKAGE, || "Package".into())?;
    let depends = field("Depends")?;
    check(
        depends.contains("libpam0g")
            && depends.contains("libc6")
            && depends.contains("libpam-runtime"),
        || format!("Depends: {depends}"),
    )?;
    check(field("Architecture")? == "amd64", || "Architecture".into())?;
    // Every man page renders without warnings.
    for page in [
        workspace().join("packaging/man/pam_twofactor.8"),
        workspace().join("enroll-tool/man/pam_twofactor.toml.5"),
    ] {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("LC_ALL", "C.UTF-8")
            .output()?;
        check(out.status.success() && out.stderr.is_empty(), || {
            describe(&page.display().to_string(), &out)
        })?;
    }
    Ok(())
}

/// lintian, Debian's package checker, finds no error and no warning that
/// packaging/deb/lintian-overrides does not override, and every override
/// there is in use and has its reason in a comment right above it.
fn lintian_finds_nothing_unexplained(shared: &Shared) -> Result<(), Failed> {
    let deb = shared.deb()?;
    let deb = deb.to_str().ok_or("path")?;
    let output = run("lintian", &["--show-overrides", "--fail-on", "none", deb])?;
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    check(output.status.success(), || describe("lintian", &output))?;
    let complaints: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .collect();
    check(complaints.is_empty(), || {
        format!("lintian complains (fix it, or override it with a reason):\n{report}")
    })?;
    let overridden: Vec<&str> = report
        .lines()
        .filter_map(|l| l.strip_prefix("O: "))
        .collect();
    let overrides = fs::read_to_string(workspace().join("packaging/deb/lintian-overrides"))?;
    let mut previous = "";
    let mut count = 0;
    for line in overrides.lines().map(str::trim) {
        if !line.is_empty() && !line.starts_with('#') {
            count += 1;
            check(previous.starts_with('#'), || {
                format!("lintian override without a comment saying why: {line}")
            })?;
            check(overridden.contains(&line), || {
                format!("lintian override not in use (remove it): {line}\n{report}")
            })?;
        }
        previous = line;
    }
    check(count > 0 && count == overridden.len(), || {
        format!("overrides: {count}, used: {overridden:?}")
    })?;
    Ok(())
}

/// The module's arguments (from its parser's source) are all documented in
/// pam_twofactor(8), and every key of the shipped configuration in
/// pam_twofactor.toml(5).
fn man_pages_document_every_argument_and_key(_shared: &Shared) -> Result<(), Failed> {
    let page8 = fs::read_to_string(workspace().join("packaging/man/pam_twofactor.8"))?;
    let args = fs::read_to_string(workspace().join("pam_twofactor/src/args.rs"))?;
    let mut flags = BTreeSet::new();
    for line in args.lines() {
        let line = line.trim();
        if !line.ends_with("=> {") && !line.contains("\" =>") {
            continue;
        }
        for part in line.split('|') {
            let part = part.trim().trim_end_matches("=> {").trim();
            let part = part.split("=>").next().unwrap_or_default().trim();
            if let Some(name) = part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                flags.insert(name.to_string());
            }
        }
    }
    flags.insert("config=".to_string());
    check(flags.len() >= 5, || {
        format!("flags found in args.rs: {flags:?}")
    })?;
    for flag in &flags {
        let roff = flag.replace('-', "\\-");
        check(
            page8.contains(&format!(".B {flag}"))
                || page8.contains(&format!(".BI {flag}"))
                || page8.contains(&roff),
            || format!("pam_twofactor(8) does not document the argument {flag}"),
        )?;
    }
    let page5 = fs::read_to_string(workspace().join("enroll-tool/man/pam_twofactor.toml.5"))?;
    let config = fs::read_to_string(workspace().join("config/pam_twofactor.toml"))?;
    for key in config
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(" = "))
        .filter_map(|l| l.split(" = ").next())
    {
        check(page5.contains(&format!("\\fB{key}\\ =")), || {
            format!(
                "pam_twofactor.toml(5) does not document {key}; run \
                 cargo run -p twofactor -- generate-man enroll-tool/man"
            )
        })?;
    }
    Ok(())
}

fn rpm_spec_parses_and_ships_the_same_files(shared: &Shared) -> Result<(), Failed> {
    let spec = workspace().join("packaging/rpm/pam_twofactor.spec");
    let parsed = run_ok("rpmspec", &["-P", spec.to_str().ok_or("path")?])?;
    let text = String::from_utf8_lossy(&parsed.stdout).into_owned();
    let files_section: Vec<&str> = text
        .split("\n%files\n")
        .nth(1)
        .ok_or("no %files")?
        .split("\n%changelog")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let version = fs::read_to_string(workspace().join("Cargo.toml"))?
        .lines()
        .find_map(|l| {
            l.strip_prefix("version = \"")
                .map(|v| v.trim_end_matches('"').to_string())
        })
        .ok_or("no version")?;
    check(text.contains(&format!("Version:        {version}")), || {
        format!("the spec's Version is not the workspace's {version}")
    })?;
    // Same files, with the Fedora locations of the multiarch ones.
    let deb = deb_files(shared.deb()?)?;
    for (rpm_path, deb_path) in [
        ("/usr/lib64/security/pam_twofactor.so", MODULE),
        ("/usr/bin/twofactor", "/usr/bin/twofactor"),
        (
            "%config(noreplace) /etc/security/pam_twofactor.toml",
            CONFIG,
        ),
        (
            "%dir %attr(0711,root,root) /var/lib/pam_twofactor",
            STATE_DIR,
        ),
        (
            "/usr/share/man/man5/pam_twofactor.toml.5*",
            "/usr/share/man/man5/pam_twofactor.toml.5.gz",
        ),
        (
            "/usr/share/man/man8/pam_twofactor.8*",
            "/usr/share/man/man8/pam_twofactor.8.gz",
        ),
        (
            "/usr/share/man/man1/twofactor*.1*",
            "/usr/share/man/man1/twofactor.1.gz",
        ),
    ] {
        check(files_section.contains(&rpm_path), || {
            format!("the spec's %files lacks {rpm_path}: {files_section:#?}")
        })?;
        check(
            deb.iter().any(|(_, p)| p.trim_end_matches('/') == deb_path),
            || format!("the .deb lacks {deb_path}"),
        )?;
    }
    // The %preun guard is the prerm's: refuse to remove a module in use.
    check(
        text.contains("%preun") && text.contains("pam_twofactor\\.so"),
        || "no %preun guard".into(),
    )?;
    Ok(())
}

fn main() {
    let shared = Shared {
        ns: namespace::enter(),
        deb: OnceLock::new(),
        overlays: Mutex::new(()),
    };
    run_trials(
        shared,
        vec![
            ("install_enable_login_remove", install_enable_login_remove),
            (
                "install_script_installs_the_man_pages",
                install_script_installs_the_man_pages,
            ),
            (
                "package_contents_and_metadata",
                package_contents_and_metadata,
            ),
            (
                "lintian_finds_nothing_unexplained",
                lintian_finds_nothing_unexplained,
            ),
            (
                "man_pages_document_every_argument_and_key",
                man_pages_document_every_argument_and_key,
            ),
            (
                "rpm_spec_parses_and_ships_the_same_files",
                rpm_spec_parses_and_ships_the_same_files,
            ),
        ],
    );
}
