//! The software authenticator as a USB HID FIDO device, through `/dev/uhid`
//! (tests only: run inside the QEMU guest of tests/fido2-vm). The kernel then
//! offers it as `/dev/hidrawN` with usage page 0xF1D0, and ctap-hid-fido2 (or
//! libfido2) talks to it like to a hardware key.
//!
//! Usage: soft-fido2-uhid STATE.toml
//!
//! STATE.toml holds the [`Behaviour`]; the counter is written back after
//! every command, so a test can read it. The program runs until killed.
//!
//! `/dev/uhid` speaks `struct uhid_event` (linux/uhid.h): a 32-bit type and a
//! packed union, 4376 bytes in all. Everything is built and read as bytes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::process::ExitCode;

use twofactor_soft_authenticator::ctaphid::{Device, REPORT_DESCRIPTOR};
use twofactor_soft_authenticator::{Behaviour, SoftAuthenticator};

const EVENT_SIZE: usize = 4 + 128 + 64 + 64 + 2 + 2 + 4 + 4 + 4 + 4 + 4096;
const UHID_OUTPUT: u32 = 6;
const UHID_CREATE2: u32 = 11;
const UHID_INPUT2: u32 = 12;
const BUS_USB: u16 = 3;

fn create_event() -> Vec<u8> {
    let mut event = vec![0u8; EVENT_SIZE];
    event[..4].copy_from_slice(&UHID_CREATE2.to_ne_bytes());
    let mut at = 4;
    let name = b"pam_twofactor soft FIDO2";
    event[at..at + name.len()].copy_from_slice(name);
    at += 128 + 64 + 64; // name, phys, uniq
    event[at..at + 2].copy_from_slice(&(REPORT_DESCRIPTOR.len() as u16).to_ne_bytes());
    at += 2;
    event[at..at + 2].copy_from_slice(&BUS_USB.to_ne_bytes());
    at += 2;
    event[at..at + 4].copy_from_slice(&0x1209u32.to_ne_bytes()); // vendor (pid.codes)
    at += 4;
    event[at..at + 4].copy_from_slice(&0x000du32.to_ne_bytes()); // product
    at += 4;
    at += 4 + 4; // version, country
    event[at..at + REPORT_DESCRIPTOR.len()].copy_from_slice(&REPORT_DESCRIPTOR);
    event
}

fn input_event(report: &[u8]) -> Vec<u8> {
    let mut event = vec![0u8; EVENT_SIZE];
    event[..4].copy_from_slice(&UHID_INPUT2.to_ne_bytes());
    event[4..6].copy_from_slice(&(report.len() as u16).to_ne_bytes());
    event[6..6 + report.len()].copy_from_slice(report);
    event
}

fn save(path: &str, behaviour: &Behaviour) {
    if let Ok(text) = toml::to_string(behaviour) {
        let temporary = format!("{path}.tmp");
        if std::fs::write(&temporary, text).is_ok() {
            let _ = std::fs::rename(&temporary, path);
        }
    }
}

fn main() -> ExitCode {
    let Some(state_path) = std::env::args().nth(1) else {
        eprintln!("usage: soft-fido2-uhid STATE.toml");
        return ExitCode::from(2);
    };
    let behaviour: Behaviour = match std::fs::read_to_string(&state_path)
        .map_err(|e| e.to_string())
        .and_then(|t| toml::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("soft-fido2-uhid: {state_path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut uhid: File = match OpenOptions::new().read(true).write(true).open("/dev/uhid") {
        Ok(f) => f,
        Err(e) => {
            eprintln!("soft-fido2-uhid: /dev/uhid: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = uhid.write_all(&create_event()) {
        eprintln!("soft-fido2-uhid: UHID_CREATE2: {e}");
        return ExitCode::from(2);
    }
    eprintln!("soft-fido2-uhid: device created");
    let mut device = Device::new(SoftAuthenticator::new(behaviour));
    let mut event = vec![0u8; EVENT_SIZE];
    loop {
        let n = match uhid.read(&mut event) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("soft-fido2-uhid: read: {e}");
                return ExitCode::from(1);
            }
        };
        if n < 4 {
            continue;
        }
        let kind = u32::from_ne_bytes([event[0], event[1], event[2], event[3]]);
        if kind != UHID_OUTPUT {
            continue;
        }
        // struct uhid_output_req { __u8 data[4096]; __u16 size; __u8 rtype; }
        let size = usize::from(u16::from_ne_bytes([event[4 + 4096], event[4 + 4097]]));
        let report = event[4..4 + size.min(4096)].to_vec();
        let counter_before = device.authenticator.behaviour.counter;
        for reply in device.receive(&report) {
            if let Err(e) = uhid.write_all(&input_event(&reply)) {
                eprintln!("soft-fido2-uhid: UHID_INPUT2: {e}");
                return ExitCode::from(1);
            }
        }
        if device.authenticator.behaviour.counter != counter_before {
            save(&state_path, &device.authenticator.behaviour);
        }
    }
}
