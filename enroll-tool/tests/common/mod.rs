//! Shared by the `twofactor` end-to-end tests: a sandbox with its own
//! configuration, running the built binary (plainly, as another user, or on
//! a pseudo-terminal), decoding QR codes, computing codes with `oathtool`,
//! and checking JSON against the published schemas.
//!
//! These tests must run as root: they act for the system user `nobody`,
//! which exercises the privilege drop for real.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{geteuid, User};
use serde_json::Value;
use tempfile::TempDir;
use twofactor_core::enrollment::{decode_base32_secret, Enrollment};
use twofactor_core::state::{LoginState, StateStore};
use twofactor_core::totp::{Algorithm, TotpParams};

pub const TARGET_USER: &str = "nobody";
pub const BIN: &str = env!("CARGO_BIN_EXE_twofactor");

pub fn target_user() -> User {
    User::from_name(TARGET_USER)
        .expect("user database lookup")
        .expect("the system user `nobody` exists")
}

/// The privilege drop can only be exercised as root, which is how the test
/// suite runs (tests/run-all.sh); elsewhere these tests fail rather than
/// pass without having checked anything.
pub fn require_root() {
    assert!(
        geteuid().is_root(),
        "this test must run as root (tests/run-all.sh)"
    );
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A temporary directory laid out like a small system: a root-owned config
/// (0644), a per-user directory owned by `nobody`, and a state directory.
pub struct Sandbox {
    pub dir: TempDir,
    pub config: PathBuf,
}

impl Sandbox {
    /// `config_body` may use `{dir}` for the sandbox's path. The state
    /// directory is `{dir}/state` unless the body sets one.
    pub fn new(config_body: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // tempdir() is 0700; `nobody` must be able to reach its own directory.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let user = target_user();
        let user_dir = dir.path().join(TARGET_USER);
        fs::create_dir(&user_dir).unwrap();
        std::os::unix::fs::chown(&user_dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .unwrap();
        fs::set_permissions(&user_dir, fs::Permissions::from_mode(0o700)).unwrap();
        let config = dir.path().join("pam_twofactor.toml");
        let dir_text = dir.path().to_str().unwrap();
        let mut body = config_body.replace("{dir}", dir_text);
        if !body.contains("state_dir") {
            body.push_str(&format!("state_dir = \"{dir_text}/state\"\n"));
        }
        fs::write(&config, body).unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
        Sandbox { dir, config }
    }

    /// The enrollment at `{dir}/nobody/{file_below_user_dir}`.
    pub fn with_user_path(file_below_user_dir: &str) -> Self {
        Sandbox::new(&format!(
            "enrollment_path = \"{{dir}}/%u/{file_below_user_dir}\"\n"
        ))
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The enrollment path of `with_user_path("enrollment.json")`.
    pub fn enrollment_path(&self) -> PathBuf {
        self.path("nobody/enrollment.json")
    }

    /// The legacy file beside [`Sandbox::enrollment_path`]: where older
    /// versions wrote the enrollment, as TOML.
    pub fn legacy_path(&self) -> PathBuf {
        self.path("nobody/enrollment.toml")
    }

    /// Write `enrollment` to the legacy file as an older version did:
    /// TOML, owned by the user, mode 0600.
    pub fn write_legacy(&self, enrollment: &Enrollment) {
        let path = self.legacy_path();
        fs::write(&path, enrollment.to_toml().as_bytes()).unwrap();
        let user = target_user();
        std::os::unix::fs::chown(&path, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// `twofactor SUBCOMMAND --config CONFIG EXTRA...`.
    pub fn command(&self, subcommand: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg(subcommand)
            .arg("--config")
            .arg(&self.config)
            .args(extra)
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, subcommand: &str, extra: &[&str]) -> Output {
        self.command(subcommand, extra).output().unwrap()
    }

    /// Run as `nobody` itself (not through --user).
    pub fn run_as_user(&self, subcommand: &str, extra: &[&str], stdin: &str) -> Output {
        let user = target_user();
        let mut command = self.command(subcommand, extra);
        // As root, std also drops the supplementary groups.
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        run_with_stdin(command, stdin)
    }

    /// Enroll `nobody` non-interactively; the JSON report.
    pub fn enroll_json(&self, extra: &[&str]) -> Value {
        let mut args = vec!["--user", TARGET_USER, "--non-interactive", "--json"];
        args.extend_from_slice(extra);
        json_of(&self.run("enroll", &args))
    }

    /// Change `nobody`'s login state as the module would (root, under the lock).
    pub fn edit_state(&self, edit: impl FnOnce(&mut LoginState)) {
        let store = StateStore::new(self.state_dir());
        let mut locked = store
            .lock(TARGET_USER, 0, Some(target_user().gid.as_raw()))
            .unwrap();
        edit(&mut locked.state);
        locked.save().unwrap();
    }

    pub fn state_file(&self) -> PathBuf {
        StateStore::new(self.state_dir()).state_path(TARGET_USER)
    }
}

pub fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    // The program may end (refusing) before it reads: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

pub fn exit_code(output: &Output) -> i32 {
    output
        .status
        .code()
        .expect("exited, not killed by a signal")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One line, `twofactor: `, nothing that looks like Rust's Debug output or
/// a panic.
pub fn assert_one_line_error_text(text: &str) {
    assert_eq!(text.lines().count(), 1, "stderr: {text:?}");
    assert!(text.starts_with("twofactor: "), "stderr: {text:?}");
    for debug in ["Os {", "kind:", "panicked", "RUST_BACKTRACE", "os error"] {
        assert!(!text.contains(debug), "stderr: {text:?}");
    }
}

/// [`assert_one_line_error_text`] on the output's stderr, and no stdout.
pub fn assert_one_line_error(output: &Output) -> String {
    let text = stderr(output);
    assert_one_line_error_text(&text);
    assert!(
        output.stdout.is_empty(),
        "stdout on error: {:?}",
        stdout(output)
    );
    text
}

pub fn json_of(output: &Output) -> Value {
    assert_eq!(exit_code(output), 0, "stderr: {}", stderr(output));
    let text = stdout(output);
    assert_eq!(text.trim_end().lines().count(), 1, "one JSON line: {text}");
    serde_json::from_str(&text).unwrap()
}

pub fn backup_codes_of(report: &Value) -> Vec<String> {
    report["backup_codes"]
        .as_array()
        .expect("backup_codes is a list")
        .iter()
        .map(|code| code.as_str().expect("codes are strings").to_string())
        .collect()
}

/// The enrollment at `path`, which must be written in the format its name
/// calls for: TOML for a name ending in `.toml`, JSON otherwise.
pub fn read_enrollment(path: &Path) -> Enrollment {
    let text = fs::read_to_string(path).unwrap();
    if path.extension().is_some_and(|ext| ext == "toml") {
        assert!(!text.starts_with('{'), "{} is not TOML", path.display());
    } else {
        assert!(text.starts_with('{'), "{} is not JSON", path.display());
        serde_json::from_str::<Value>(&text)
            .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
    }
    Enrollment::parse(&text, "test").unwrap()
}

/// A query parameter of an otpauth URI.
pub fn uri_parameter<'a>(uri: &'a str, name: &str) -> &'a str {
    let query = &uri[uri.find('?').expect("URI has a query") + 1..];
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{uri} has no {name}"))
}

/// The TOTP parameters an app takes from the URI (for checking codes with
/// core's implementation; `oathtool` is the independent one).
pub fn totp_of_uri(uri: &str) -> TotpParams {
    TotpParams {
        secret: decode_base32_secret(uri_parameter(uri, "secret")).unwrap(),
        algorithm: match uri_parameter(uri, "algorithm") {
            "SHA1" => Algorithm::SHA1,
            "SHA256" => Algorithm::SHA256,
            "SHA512" => Algorithm::SHA512,
            other => panic!("algorithm {other}"),
        },
        digits: uri_parameter(uri, "digits").parse().unwrap(),
        period: uri_parameter(uri, "period").parse().unwrap(),
    }
}

/// The current code for the URI's parameters, computed by `oathtool`
/// (an implementation independent of ours), at unix time `at`.
pub fn oathtool_code(uri: &str, at: u64) -> String {
    let output = Command::new("oathtool")
        .arg(format!(
            "--totp={}",
            uri_parameter(uri, "algorithm").to_ascii_lowercase()
        ))
        .arg(format!("--digits={}", uri_parameter(uri, "digits")))
        .arg(format!(
            "--time-step-size={}s",
            uri_parameter(uri, "period")
        ))
        .arg(format!("--now=@{at}"))
        .arg("--base32")
        .arg(uri_parameter(uri, "secret"))
        .output()
        .expect("oathtool is installed (scripts/install-deps.sh --test)");
    assert!(output.status.success(), "oathtool: {}", stderr(&output));
    stdout(&output).trim().to_string()
}

/// A code of the right shape that no step near now accepts.
pub fn wrong_code(uri: &str) -> String {
    let totp = totp_of_uri(uri);
    let now = now();
    let near: Vec<String> = (0..=8)
        .map(|i| {
            totp.code_at(now + i * totp.period - 4 * totp.period)
                .to_string()
        })
        .collect();
    (0u32..)
        .map(|n| {
            format!(
                "{:0width$}",
                n * 7919 % 1_000_000,
                width = usize::from(totp.digits)
            )
        })
        .find(|candidate| !near.contains(candidate))
        .unwrap()
}

// ---------------------------------------------------------------- QR codes

/// Decode the QR code in a grey-scale image (0 black, 255 white).
pub fn decode_qr(width: usize, height: usize, pixel: impl Fn(usize, usize) -> u8) -> String {
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, pixel);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (_meta, content) = grids[0].decode().expect("the QR code decodes");
    content
}

/// Decode a PNG file's QR code.
pub fn decode_png(path: &Path) -> String {
    let decoder = png::Decoder::new(std::io::BufReader::new(File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let (width, height) = (info.width as usize, info.height as usize);
    decode_qr(width, height, |x, y| buffer[y * info.line_size + x])
}

/// Decode an SVG file's QR code: the modules are `M x y h n v1 h-n z` runs
/// of one path on a white square, rasterized here at 4 pixels a module.
pub fn decode_svg(text: &str) -> String {
    let view_box = text
        .split("viewBox=\"0 0 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("viewBox");
    let side: usize = view_box.parse().unwrap();
    let path = text
        .split(" d=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("path data");
    let mut dark = vec![false; side * side];
    for run in path.split('M').filter(|r| !r.is_empty()) {
        let (x, rest) = run.split_once(' ').unwrap();
        let (y, rest) = rest.split_once('h').unwrap();
        let (length, _) = rest.split_once('v').unwrap();
        let (x, y, length): (usize, usize, usize) = (
            x.parse().unwrap(),
            y.parse().unwrap(),
            length.parse().unwrap(),
        );
        for i in x..x + length {
            dark[y * side + i] = true;
        }
    }
    let scale = 4;
    decode_qr(side * scale, side * scale, |x, y| {
        if dark[(y / scale) * side + x / scale] {
            0
        } else {
            255
        }
    })
}

/// The lines of a half-block drawing in `text` (as printed for a dark
/// terminal background: a drawn half is light), decoded as pixels.
pub fn decode_terminal_drawing(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|line| line.contains('█')).collect();
    assert!(lines.len() > 10, "no QR drawing in {text}");
    let columns = lines.iter().map(|l| l.chars().count()).max().unwrap();
    let scale = 4;
    // Each character is one module wide and two high; outside the drawing
    // is the terminal's (dark) background.
    let mut modules = vec![vec![false; columns]; lines.len() * 2];
    for (row, line) in lines.iter().enumerate() {
        for (column, c) in line.chars().enumerate() {
            let (top, bottom) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected {other:?} in the drawing"),
            };
            modules[row * 2][column] = top;
            modules[row * 2 + 1][column] = bottom;
        }
    }
    let (width, height) = (columns * scale, modules.len() * scale);
    decode_qr(width, height, |x, y| {
        if modules[y / scale][x / scale] {
            255
        } else {
            0
        }
    })
}

// ---------------------------------------------------------- JSON schemas

pub fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Check `value` against the subset of JSON Schema the published schemas
/// use: type, enum, properties, required, additionalProperties (false),
/// items, minItems, minimum, maximum and local `$ref`s. Panics naming the
/// path of the first violation.
pub fn validate(value: &Value, schema: &Value) {
    validate_at(value, schema, schema, "$");
}

fn type_matches(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("schema type {other} not supported"),
    }
}

fn validate_at(value: &Value, schema: &Value, root: &Value, at: &str) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/$defs/")
            .expect("local $defs references only");
        return validate_at(value, &root["$defs"][name], root, at);
    }
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::String(name) => vec![name.as_str()],
            Value::Array(names) => names.iter().map(|n| n.as_str().unwrap()).collect(),
            _ => panic!("bad type in schema at {at}"),
        };
        assert!(
            names.iter().any(|name| type_matches(value, name)),
            "{at}: {value} is not of type {names:?}"
        );
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        assert!(allowed.contains(value), "{at}: {value} not in {allowed:?}");
    }
    if let (Some(minimum), Some(number)) = (schema.get("minimum"), value.as_f64()) {
        assert!(
            number >= minimum.as_f64().unwrap(),
            "{at}: {value} < {minimum}"
        );
    }
    if let (Some(maximum), Some(number)) = (schema.get("maximum"), value.as_f64()) {
        assert!(
            number <= maximum.as_f64().unwrap(),
            "{at}: {value} > {maximum}"
        );
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = required.as_str().unwrap();
            assert!(object.contains_key(key), "{at}: missing key {key}");
        }
        for (key, item) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(item_schema) => validate_at(item, item_schema, root, &format!("{at}.{key}")),
                None => assert!(
                    schema.get("additionalProperties") != Some(&Value::Bool(false)),
                    "{at}: undocumented key {key}"
                ),
            }
        }
    }
    if let Some(array) = value.as_array() {
        if let Some(minimum) = schema.get("minItems").and_then(Value::as_u64) {
            assert!(
                array.len() as u64 >= minimum,
                "{at}: fewer than {minimum} items"
            );
        }
        if let Some(items) = schema.get("items") {
            for (i, item) in array.iter().enumerate() {
                validate_at(item, items, root, &format!("{at}[{i}]"));
            }
        }
    }
}

// ----------------------------------------------------- pseudo-terminals

/// The built binary on a pseudo-terminal that is its controlling terminal
/// (through util-linux `setsid --ctty`), so `/dev/tty`, echo and Ctrl-C
/// behave as for a person at a terminal. stderr is a separate pipe.
pub struct PtySession {
    master: File,
    child: Child,
    /// Everything the terminal showed so far, `\r\n` made `\n`.
    pub screen: String,
    raw: Vec<u8>,
    consumed: usize,
}

const PTY_TIMEOUT: Duration = Duration::from_secs(20);

impl PtySession {
    /// `twofactor SUBCOMMAND --config CONFIG EXTRA...` on a new terminal.
    pub fn spawn(sandbox: &Sandbox, subcommand: &str, extra: &[&str]) -> PtySession {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave = pty.slave;
        let mut command = Command::new("setsid");
        command
            .args(["--ctty", "--wait", BIN, subcommand, "--config"])
            .arg(&sandbox.config)
            .args(extra)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::piped());
        let child = command.spawn().expect("spawn setsid");
        drop(slave);
        PtySession {
            master: File::from(pty.master),
            child,
            screen: String::new(),
            raw: Vec::new(),
            consumed: 0,
        }
    }

    /// Read what is available within `timeout`; false at end of output.
    fn pump(&mut self, timeout: Duration) -> bool {
        let millis = u16::try_from(timeout.as_millis().min(10_000)).unwrap();
        let ready = {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(millis)).unwrap_or(0) > 0
        };
        if !ready {
            return true;
        }
        let mut buffer = [0u8; 4096];
        match self.master.read(&mut buffer) {
            Ok(0) | Err(_) => false, // EIO: the other side is closed.
            Ok(read) => {
                // Decoded as a whole: a character may straddle two reads.
                self.raw.extend_from_slice(&buffer[..read]);
                self.screen = String::from_utf8_lossy(&self.raw).replace("\r\n", "\n");
                true
            }
        }
    }

    /// Wait until the terminal shows `needle` (after what earlier calls
    /// matched); returns the text up to and including it.
    pub fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PTY_TIMEOUT;
        loop {
            if let Some(found) = self.screen[self.consumed..].find(needle) {
                let end = self.consumed + found + needle.len();
                let seen = self.screen[self.consumed..end].to_string();
                self.consumed = end;
                return seen;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out waiting for {needle:?}; the terminal shows:\n{}",
                self.screen
            );
            if !self.pump(deadline - now) {
                // End of output: one last look, then fail.
                assert!(
                    self.screen[self.consumed..].contains(needle),
                    "the program ended without showing {needle:?}; the terminal shows:\n{}",
                    self.screen
                );
            }
        }
    }

    fn has_pending(&self) -> bool {
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(50u8)).unwrap_or(0) > 0
    }

    /// Type `text` (use "\n" for Enter, "\x03" for Ctrl-C, "\x04" for Ctrl-D).
    pub fn send(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Wait for the program to end; its exit status, the rest of the screen
    /// and its stderr.
    pub fn finish(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + PTY_TIMEOUT;
        let mut open = true;
        let status = loop {
            if open {
                open = self.pump(Duration::from_millis(50));
            } else {
                std::thread::sleep(Duration::from_millis(10));
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // Drain what is left on the terminal.
                while open && self.raw.len() < 1 << 20 {
                    open = self.pump(Duration::from_millis(50)) && self.has_pending();
                }
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let status = self.child.wait().unwrap();
                panic!(
                    "the program did not end ({status}); the terminal shows:\n{}",
                    self.screen
                );
            }
        };
        let mut errors = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut errors).unwrap();
        }
        let rest = self.screen[self.consumed..].to_string();
        (status, rest, errors)
    }
}

/// The otpauth URI shown on a screen.
pub fn uri_on_screen(screen: &str) -> String {
    screen
        .split_whitespace()
        .find(|word| word.starts_with("otpauth://totp/"))
        .expect("an otpauth URI is shown")
        .to_string()
}

/// The backup codes shown in text output.
pub fn codes_on_screen(screen: &str) -> Vec<String> {
    screen
        .lines()
        .map(str::trim)
        .filter(|line| line.len() == 19 && twofactor_core::backup::normalize(line).is_some())
        .map(str::to_string)
        .collect()
}

/// Entries of a directory.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
