//! The stacks and files of one set of scenarios, set up by the orchestrator
//! and shared with its subprocesses through a JSON file in the output
//! directory.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use twofactor_integration_tests::fixtures::{Enrolled, Stack};
use twofactor_integration_tests::namespace;

use crate::scenarios::{test_user, unix_now, write_oath_usersfile, Family, Scenario, ALL};

/// Other users' state (a `.state` and a `.lock` file each) in the state
/// directory of the "crowded" scenario, as on a server with that many users.
const CROWD_USERS: u32 = 10_000;
/// Hosts of the fleet stacks: one per concurrency worker at most.
pub const FLEET_HOSTS: usize = 16;

/// The fields of a [`Stack`], for the context file.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Stack")]
struct StackPaths {
    confdir: PathBuf,
    service: String,
    config_path: PathBuf,
    state_dir: PathBuf,
    enroll_root: PathBuf,
}

/// Our module with the login state on a Redis server (the fleet backend).
#[derive(Serialize, Deserialize)]
pub struct Fleet {
    /// `redis://127.0.0.1:PORT`, the bench's own server.
    pub url: String,
    /// This context's `redis_key_prefix`: the disk and tmpfs contexts'
    /// users have the same names, and each host state file goes with its
    /// own shared document.
    pub key_prefix: String,
    /// Like `ours`, with `state_backend = "redis"`.
    #[serde(with = "StackPaths")]
    pub stack: Stack,
    /// More stacks like `stack`, each with its own configuration and state
    /// directory: the hosts of a fleet, sharing only the server.
    pub hosts: Vec<Host>,
}

/// One host of [`Fleet::hosts`].
#[derive(Serialize, Deserialize)]
pub struct Host(#[serde(with = "StackPaths")] pub Stack);

impl Fleet {
    /// A connection to the server as its administrator.
    pub fn admin(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .and_then(|client| client.get_connection())
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url))
    }
}

#[derive(Serialize, Deserialize)]
pub struct Service {
    pub confdir: PathBuf,
    pub service: String,
}

#[derive(Serialize, Deserialize)]
pub struct Ctx {
    /// Where this context is saved (not part of it).
    #[serde(skip)]
    pub path: PathBuf,
    /// "disk" or "tmpfs": where this context's files (state, enrollments,
    /// GA and pam_oath files) live.
    pub label: String,
    pub exe: PathBuf,
    pub root: PathBuf,
    pub module: PathBuf,
    #[serde(with = "StackPaths")]
    pub ours: Stack,
    #[serde(with = "StackPaths")]
    pub ours_relaxed: Stack,
    /// Like `ours`, with CROWD_USERS other users' files in its state directory.
    #[serde(with = "StackPaths")]
    pub ours_crowded: Stack,
    /// Absent with `--skip fleet`.
    pub fleet: Option<Fleet>,
    pub permit: Service,
    pub ga: Option<Service>,
    pub oath: Option<Service>,
    pub oath_usersfile: PathBuf,
    /// GA's files: `ga_dir/USER/.google_authenticator` (module argument `secret=`).
    pub ga_dir: PathBuf,
    #[serde(with = "hex")]
    pub ga_secret: Vec<u8>,
    pub ga_scratch: Vec<String>,
    #[serde(with = "hex")]
    pub oath_secret: Vec<u8>,
}

impl Ctx {
    fn save(&self) {
        let json = serde_json::to_vec_pretty(self).expect("ctx json");
        fs::write(&self.path, json).expect("write ctx");
    }

    pub fn load(path: &Path) -> Ctx {
        let mut ctx: Ctx =
            serde_json::from_slice(&fs::read(path).expect("read ctx")).expect("ctx json");
        ctx.path = path.to_path_buf();
        ctx
    }

    pub fn has(&self, family: Family) -> bool {
        match family {
            Family::Permit | Family::Ours => true,
            Family::Ga => self.ga.is_some(),
            Family::Oath => self.oath.is_some(),
            Family::Fleet => self.fleet.is_some(),
        }
    }

    pub fn fleet(&self) -> &Fleet {
        self.fleet.as_ref().expect("the fleet backend is set up")
    }

    pub fn service_of(&self, family: Family) -> (&Path, &str) {
        match family {
            Family::Permit => (&self.permit.confdir, &self.permit.service),
            Family::Ours => (&self.ours.confdir, &self.ours.service),
            Family::Fleet => {
                let stack = &self.fleet().stack;
                (&stack.confdir, &stack.service)
            }
            Family::Ga => {
                let s = self.ga.as_ref().expect("GA not installed");
                (&s.confdir, &s.service)
            }
            Family::Oath => {
                let s = self.oath.as_ref().expect("pam_oath not installed");
                (&s.confdir, &s.service)
            }
        }
    }
}

fn write_service(confdir: &Path, service: &str, line: &str) {
    fs::create_dir_all(confdir).unwrap();
    fs::write(confdir.join(service), format!("{line}\n")).unwrap();
    fs::write(confdir.join("other"), "").unwrap();
}

/// Replace `path` (rename over it) with `contents`, owner `uid`, mode `mode`.
pub fn replace_file(path: &Path, contents: &str, uid: u32, mode: u32) {
    let temp = path.with_extension("bench-tmp");
    fs::write(&temp, contents).unwrap();
    chown(&temp, Some(uid), Some(uid)).unwrap();
    fs::set_permissions(&temp, fs::Permissions::from_mode(mode)).unwrap();
    fs::rename(&temp, path).unwrap();
}

pub fn security_dir_module(name: &str) -> Option<PathBuf> {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    [
        format!("/usr/lib/{multiarch}/security"),
        format!("/lib/{multiarch}/security"),
        "/usr/lib/security".to_string(),
        "/lib/security".to_string(),
    ]
    .iter()
    .map(|dir| Path::new(dir).join(name))
    .find(|p| p.exists())
}

/// Fill a state directory with CROWD_USERS other users' state and lock
/// files, as the module leaves them (root, 0640 and 0600).
fn populate_state_dir(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o711)).unwrap();
    for n in 0..CROWD_USERS {
        let state = dir.join(format!("crowd{n:05}.state"));
        fs::write(&state, "version = 1\nlast_totp_step = 63333334\n").unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o640)).unwrap();
        let lock = dir.join(format!("crowd{n:05}.lock"));
        fs::write(&lock, "").unwrap();
        fs::set_permissions(&lock, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn mount_tmpfs(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", dir.display()));
}

/// A GA or pam_oath service at `root/NAME/pam.d`, when the module is installed.
fn other_module(root: &Path, name: &str, module: &str, args: &str) -> Option<Service> {
    let path = security_dir_module(module)?;
    let service = Service {
        confdir: root.join(name).join("pam.d"),
        service: format!("bench-{name}"),
    };
    write_service(
        &service.confdir,
        &service.service,
        &format!("auth required {} {args}", path.display()),
    );
    Some(service)
}

fn random_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    secret
}

/// The configuration lines of our stack on the Redis server at `url`. No
/// replica runs beside the bench's server, so no backup-code spend could be
/// acknowledged by one: `redis_wait_replicas = 0` (with the default, 1,
/// every backup-code login would wait `redis_wait_timeout_ms` and be
/// refused; TOTP logins never wait).
pub fn fleet_config(url: &str, key_prefix: &str) -> String {
    format!(
        "state_backend = \"redis\"\nredis_url = \"{url}\"\nredis_wait_replicas = 0\n\
         redis_key_prefix = \"{key_prefix}\"\n"
    )
}

/// One set of stacks and files. `tmpfs`: everything the modules read and
/// write is on a tmpfs (no disk flush), else on the scratch directory's file
/// system (the disk, like /var/lib and /home). `redis_url`: the server of
/// the fleet stack (none without it).
pub fn setup(
    ns: &namespace::TestNamespace,
    module: &Path,
    out_dir: &Path,
    tmpfs: bool,
    redis_url: Option<&str>,
) -> Ctx {
    let label = if tmpfs { "tmpfs" } else { "disk" };
    let root = ns.scratch.join(format!("bench-{label}"));
    let suffix = if tmpfs { "-t" } else { "" };
    let service = format!("bench{suffix}");
    let relaxed_service = format!("bench-relaxed{suffix}");
    let crowded_service = format!("bench-crowded{suffix}");
    let fleet_service = format!("bench-fleet{suffix}");
    let host_services: Vec<String> = match redis_url {
        Some(_) => (0..FLEET_HOSTS)
            .map(|h| format!("bench-fleet-host{h}{suffix}"))
            .collect(),
        None => Vec::new(),
    };
    if tmpfs {
        mount_tmpfs(&root);
        // Stack::new puts each stack in SCRATCH/stack-SERVICE.
        for s in [&service, &relaxed_service, &crowded_service, &fleet_service]
            .into_iter()
            .chain(&host_services)
        {
            mount_tmpfs(&ns.scratch.join(format!("stack-{s}")));
        }
    } else {
        fs::create_dir_all(&root).unwrap();
    }
    let exe = std::env::current_exe().expect("current_exe");
    let ours = Stack::new(ns, &service, module, "", "");
    // Limits high enough that the concurrency checks never lock anyone out.
    let ours_relaxed = Stack::new(
        ns,
        &relaxed_service,
        module,
        "",
        "max_code_failures = 1000\nmax_backup_code_failures = 1000\n",
    );
    let ours_crowded = Stack::new(ns, &crowded_service, module, "", "");
    populate_state_dir(&ours_crowded.state_dir);
    let fleet = redis_url.map(|url| {
        let key_prefix = format!("bench-{label}");
        let config = fleet_config(url, &key_prefix);
        Fleet {
            url: url.to_string(),
            stack: Stack::new(ns, &fleet_service, module, "", &config),
            hosts: host_services
                .iter()
                .map(|s| Host(Stack::new(ns, s, module, "", &config)))
                .collect(),
            key_prefix,
        }
    });
    let permit_module = security_dir_module("pam_permit.so").expect("pam_permit.so not found");
    let permit = Service {
        confdir: root.join("permit/pam.d"),
        service: "bench-permit".into(),
    };
    write_service(
        &permit.confdir,
        &permit.service,
        &format!("auth required {}", permit_module.display()),
    );
    let ga_dir = root.join("ga");
    let ga = other_module(
        &root,
        "ga",
        "pam_google_authenticator.so",
        &format!(
            "secret={}/${{USER}}/.google_authenticator",
            ga_dir.display()
        ),
    );
    if ga.is_some() {
        // GA's file is replaced as the user: one directory per user.
        for scenario in ALL.iter().filter(|s| s.family() == Family::Ga) {
            let user = test_user(scenario.user_index());
            let dir = ga_dir.join(&user.name);
            fs::create_dir_all(&dir).unwrap();
            chown(&dir, Some(user.uid), Some(user.uid)).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        }
    }
    let oath_usersfile = root.join("oath/users.oath");
    let oath = other_module(
        &root,
        "oath",
        "pam_oath.so",
        &format!("usersfile={} window=1 digits=6", oath_usersfile.display()),
    );
    let ga_scratch: Vec<String> = (0..10)
        .map(|_| format!("{}", 10_000_000 + rand::random::<u32>() % 80_000_000))
        .collect();
    let ctx = Ctx {
        path: out_dir.join(format!("ctx-{label}.json")),
        label: label.to_string(),
        exe,
        root,
        module: module.to_path_buf(),
        ours,
        ours_relaxed,
        ours_crowded,
        fleet,
        permit,
        ga,
        oath,
        oath_usersfile,
        ga_dir,
        ga_secret: random_secret(),
        ga_scratch,
        oath_secret: random_secret(),
    };
    // Our enrollments (BackupOk provisions its own codes as it goes).
    for s in [Scenario::TotpOk, Scenario::TotpWrong, Scenario::BackupWrong] {
        ctx.ours
            .enroll(&test_user(s.user_index()), &Enrolled::standard());
    }
    let crowded = test_user(Scenario::TotpOkCrowded.user_index());
    ctx.ours_crowded.enroll(&crowded, &Enrolled::standard());
    if let Some(fleet) = &ctx.fleet {
        for s in [Scenario::FleetTotpOk, Scenario::FleetTotpWrong] {
            fleet
                .stack
                .enroll(&test_user(s.user_index()), &Enrolled::standard());
        }
    }
    if ctx.oath.is_some() {
        write_oath_usersfile(&ctx, unix_now());
    }
    ctx.save();
    ctx
}
