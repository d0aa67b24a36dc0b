//! A `/dev/log` of the tests' own: every datagram sent to it is kept, so
//! tests can assert on the module's audit lines (and that no secret is in them).

use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

fn lines() -> &'static Mutex<Vec<String>> {
    LINES.get_or_init(|| Mutex::new(Vec::new()))
}

/// Bind `/dev/log` and collect in a background thread.
pub fn start() {
    let _ = std::fs::remove_file("/dev/log");
    let socket = UnixDatagram::bind("/dev/log").expect("bind /dev/log");
    std::fs::set_permissions(
        "/dev/log",
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .expect("chmod /dev/log");
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 65536];
        while let Ok(n) = socket.recv(&mut buffer) {
            let line = String::from_utf8_lossy(&buffer[..n]).into_owned();
            lines().lock().unwrap().push(line);
        }
    });
}

/// Every line received so far.
pub fn all() -> Vec<String> {
    lines().lock().unwrap().clone()
}

/// Wait up to two seconds for a line satisfying `wanted` (datagrams are
/// collected by another thread, and child processes such as sshd send them
/// asynchronously). Returns whether one arrived.
pub fn wait_for(wanted: impl Fn(&str) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if all().iter().any(|l| wanted(l)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lines containing `needle` (without waiting).
pub fn matching(needle: &str) -> Vec<String> {
    all().into_iter().filter(|l| l.contains(needle)).collect()
}
