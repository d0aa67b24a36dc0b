//! CTAPHID (CTAP 2.1 §11.2): messages split into 64-byte HID reports.
//! One channel at a time is enough for one platform process.

use crate::{ctap2, SoftAuthenticator};

/// Report size.
pub const REPORT: usize = 64;
const BROADCAST: [u8; 4] = [0xff; 4];
const CMD_PING: u8 = 0x81;
const CMD_INIT: u8 = 0x86;
const CMD_WINK: u8 = 0x88;
const CMD_CBOR: u8 = 0x90;
const CMD_CANCEL: u8 = 0x91;
const CMD_ERROR: u8 = 0xBF;
const ERR_INVALID_CMD: u8 = 0x01;
const ERR_INVALID_SEQ: u8 = 0x04;
const ERR_INVALID_CHANNEL: u8 = 0x0B;

/// The HID report descriptor of a FIDO device (usage page 0xF1D0): 64-byte
/// input and output reports, no report ids.
pub const REPORT_DESCRIPTOR: [u8; 34] = [
    0x06, 0xD0, 0xF1, // Usage Page (FIDO Alliance)
    0x09, 0x01, // Usage (CTAPHID)
    0xA1, 0x01, // Collection (Application)
    0x09, 0x20, //   Usage (Data In)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xFF, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //   Report Size (8)
    0x95, 0x40, //   Report Count (64)
    0x81, 0x02, //   Input (Data, Variable, Absolute)
    0x09, 0x21, //   Usage (Data Out)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xFF, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //   Report Size (8)
    0x95, 0x40, //   Report Count (64)
    0x91, 0x02, //   Output (Data, Variable, Absolute)
    0xC0, // End Collection
];

struct Pending {
    cid: [u8; 4],
    cmd: u8,
    len: usize,
    data: Vec<u8>,
    next_seq: u8,
}

/// A CTAPHID endpoint in front of an authenticator.
pub struct Device {
    /// The authenticator.
    pub authenticator: SoftAuthenticator,
    next_cid: u32,
    pending: Option<Pending>,
}

impl Device {
    /// A device for `authenticator`.
    pub fn new(authenticator: SoftAuthenticator) -> Self {
        Device {
            authenticator,
            next_cid: 0x0100_0000,
            pending: None,
        }
    }

    /// Take one output report (64 bytes, or 65 with a leading report id 0)
    /// and return the input reports to send back.
    pub fn receive(&mut self, report: &[u8]) -> Vec<[u8; REPORT]> {
        let report = if report.len() == REPORT + 1 && report[0] == 0 {
            &report[1..]
        } else {
            report
        };
        if report.len() < 7 {
            return Vec::new();
        }
        let mut cid = [0u8; 4];
        cid.copy_from_slice(&report[..4]);
        if report[4] & 0x80 != 0 {
            let cmd = report[4];
            let len = usize::from(u16::from_be_bytes([report[5], report[6]]));
            if cmd == CMD_CANCEL {
                // Nothing is ever pending long enough to cancel.
                return Vec::new();
            }
            let take = len.min(report.len() - 7);
            self.pending = Some(Pending {
                cid,
                cmd,
                len,
                data: report[7..7 + take].to_vec(),
                next_seq: 0,
            });
        } else {
            let Some(pending) = self.pending.as_mut() else {
                return Vec::new();
            };
            if pending.cid != cid {
                return frame(cid, CMD_ERROR, &[ERR_INVALID_CHANNEL]);
            }
            if report[4] != pending.next_seq {
                self.pending = None;
                return frame(cid, CMD_ERROR, &[ERR_INVALID_SEQ]);
            }
            pending.next_seq += 1;
            let take = (pending.len - pending.data.len()).min(report.len() - 5);
            pending.data.extend_from_slice(&report[5..5 + take]);
        }
        match &self.pending {
            Some(p) if p.data.len() >= p.len => {}
            _ => return Vec::new(),
        }
        let Some(message) = self.pending.take() else {
            return Vec::new();
        };
        self.execute(message)
    }

    fn execute(&mut self, message: Pending) -> Vec<[u8; REPORT]> {
        match message.cmd {
            CMD_INIT => {
                let cid = self.next_cid.to_be_bytes();
                self.next_cid += 1;
                let mut payload = message.data.clone();
                payload.truncate(8);
                payload.extend_from_slice(&cid);
                // protocol 2, version 1.0.0, capabilities: WINK | CBOR | NMSG
                payload.extend_from_slice(&[2, 1, 0, 0, 0x01 | 0x04 | 0x08]);
                frame(message.cid, CMD_INIT, &payload)
            }
            _ if message.cid == BROADCAST => frame(message.cid, CMD_ERROR, &[ERR_INVALID_CHANNEL]),
            CMD_PING => frame(message.cid, CMD_PING, &message.data),
            CMD_WINK => frame(message.cid, CMD_WINK, &[]),
            CMD_CBOR => {
                let response = ctap2::handle(&mut self.authenticator, &message.data);
                frame(message.cid, CMD_CBOR, &response)
            }
            _ => frame(message.cid, CMD_ERROR, &[ERR_INVALID_CMD]),
        }
    }
}

/// Split a response into reports.
pub fn frame(cid: [u8; 4], cmd: u8, payload: &[u8]) -> Vec<[u8; REPORT]> {
    let mut reports = Vec::new();
    let mut first = [0u8; REPORT];
    first[..4].copy_from_slice(&cid);
    first[4] = cmd;
    first[5..7].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    let head = payload.len().min(REPORT - 7);
    first[7..7 + head].copy_from_slice(&payload[..head]);
    reports.push(first);
    let mut rest = &payload[head..];
    let mut seq = 0u8;
    while !rest.is_empty() {
        let mut report = [0u8; REPORT];
        report[..4].copy_from_slice(&cid);
        report[4] = seq;
        let take = rest.len().min(REPORT - 5);
        report[5..5 + take].copy_from_slice(&rest[..take]);
        rest = &rest[take..];
        seq += 1;
        reports.push(report);
    }
    reports
}
