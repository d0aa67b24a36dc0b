//! `twofactor-fido2-helper`: the process through which the PAM module talks
//! to security keys (protocol: `twofactor_core::fido2::helper`).
//!
//! Started by the module for one login, with its standard input and output
//! as pipes and standard error on /dev/null; killed and reaped by the module
//! at its deadline. The protocol goes out on a duplicate of the original
//! standard output, and descriptor 1 is pointed at /dev/null, because the
//! HID library prints to stdout in places: nothing it prints can be taken
//! for an answer.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;

use twofactor_core::fido2::decode_b64;
use twofactor_core::fido2::helper::{decode_line, encode_line, FailureKind, Request, Response};
use twofactor_fido2_hid::{attached, Key};
use zeroize::Zeroize;

struct Found {
    key: Key,
    rp_id: String,
    credential_id: Vec<u8>,
}

fn protocol_output() -> io::Result<File> {
    let original = io::stdout().as_fd().try_clone_to_owned()?;
    let null = File::options().write(true).open("/dev/null")?;
    nix::unistd::dup2(null.as_raw_fd(), 1).map_err(io::Error::from)?;
    Ok(File::from(original))
}

fn find(rp_id: &str, encoded: &[String]) -> (Response, Option<Found>) {
    let mut ids = Vec::with_capacity(encoded.len());
    for id in encoded {
        match decode_b64(id) {
            Ok(bytes) => ids.push(bytes),
            Err(why) => {
                return (
                    Response::Failed {
                        kind: FailureKind::Protocol,
                        message: format!("credential id {why}"),
                    },
                    None,
                )
            }
        }
    }
    let devices = match attached() {
        Ok(devices) => devices,
        Err(failure) => {
            return (
                Response::Failed {
                    kind: failure.kind,
                    message: failure.message,
                },
                None,
            )
        }
    };
    let mut last_failure = None;
    for device in &devices {
        let key = match Key::open(&device.path) {
            Ok(key) => key,
            Err(failure) => {
                last_failure = Some(failure);
                continue;
            }
        };
        match key.probe(rp_id, &ids) {
            Ok(Some(index)) => {
                let info = key.info().unwrap_or_default();
                let response = Response::Found {
                    device: device.path.clone(),
                    product: device.product.clone(),
                    credential_index: index,
                    pin_set: info.pin_set,
                    uv_builtin: info.uv_builtin,
                };
                let found = Found {
                    key,
                    rp_id: rp_id.to_string(),
                    credential_id: ids[index].clone(),
                };
                return (response, Some(found));
            }
            Ok(None) => {}
            Err(failure) => last_failure = Some(failure),
        }
    }
    match last_failure {
        // Some device could not be asked: say so rather than "not found".
        Some(failure) if !devices.is_empty() => (
            Response::Failed {
                kind: failure.kind,
                message: failure.message,
            },
            None,
        ),
        _ => (
            Response::NotFound {
                devices: devices.len(),
            },
            None,
        ),
    }
}

fn assert(found: &Found, challenge: &str, pin: Option<&str>, uv: bool) -> Response {
    let challenge = match decode_b64(challenge) {
        Ok(c) => c,
        Err(why) => {
            return Response::Failed {
                kind: FailureKind::Protocol,
                message: format!("challenge {why}"),
            }
        }
    };
    match found
        .key
        .assert(&found.rp_id, &challenge, &found.credential_id, pin, uv)
    {
        Ok(assertion) => Response::assertion(&assertion),
        Err(failure) => Response::Failed {
            kind: failure.kind,
            message: failure.message,
        },
    }
}

fn main() -> ExitCode {
    // A panic message would go to stderr; the module gives us /dev/null
    // there, and by hand a panic is still reported through the protocol.
    std::panic::set_hook(Box::new(|_| {}));
    let mut out = match protocol_output() {
        Ok(out) => out,
        Err(_) => return ExitCode::from(2),
    };
    let stdin = io::stdin();
    let mut found: Option<Found> = None;
    let mut line = String::new();
    loop {
        line.zeroize();
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return ExitCode::SUCCESS,
            Ok(_) => {}
        }
        let response = match decode_line::<Request>(&line) {
            Err(why) => Response::Failed {
                kind: FailureKind::Protocol,
                message: why,
            },
            Ok(Request::Find {
                rp_id,
                credential_ids,
            }) => {
                let (response, key) = find(&rp_id, &credential_ids);
                found = key;
                response
            }
            Ok(Request::Assert {
                challenge,
                mut pin,
                user_verification,
            }) => {
                let response = match &found {
                    Some(found) => assert(found, &challenge, pin.as_deref(), user_verification),
                    None => Response::Failed {
                        kind: FailureKind::Protocol,
                        message: "assert before a key was found".into(),
                    },
                };
                pin.zeroize();
                response
            }
        };
        if out.write_all(encode_line(&response).as_bytes()).is_err() || out.flush().is_err() {
            return ExitCode::from(1);
        }
    }
}
