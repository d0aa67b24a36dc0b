//! A stand-in for `twofactor-fido2-helper` for the libpam tests: the same
//! protocol (`twofactor_core::fido2::helper`), answered by the software
//! authenticator instead of a USB key. The module under test runs it exactly
//! as it runs the real helper (configured with `fido2_helper`), so the
//! production code path — process, pipes, deadline, kill — is what is tested.
//!
//! Usage: soft_fido2_helper STATE.toml, where STATE.toml is a [`HelperState`];
//! the device's counter is written back after each assertion.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use twofactor_core::fido2::helper::{decode_line, encode_line, FailureKind, Request, Response};
use twofactor_core::fido2::{client_data_hash, decode_b64, Assertion};
use twofactor_soft_authenticator::{Behaviour, SoftAuthenticator};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct HelperState {
    /// "present" (default), "absent" (no device), "hang" (found, then the
    /// touch never comes and the helper never answers).
    mode: String,
    /// Report built-in user verification, but never set the UV flag.
    lie_uv: bool,
    device: Behaviour,
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        return ExitCode::from(2);
    };
    let load =
        || -> Option<HelperState> { toml::from_str(&std::fs::read_to_string(&path).ok()?).ok() };
    let Some(state) = load() else {
        return ExitCode::from(2);
    };
    let mut device = SoftAuthenticator::new(state.device.clone());
    let mut chosen: Option<(String, Vec<u8>)> = None;
    let stdin = io::stdin();
    let mut out = io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let response = match decode_line::<Request>(&line) {
            Err(why) => Response::Failed {
                kind: FailureKind::Protocol,
                message: why,
            },
            Ok(Request::Find {
                rp_id,
                credential_ids,
            }) => {
                if state.mode == "absent" {
                    Response::NotFound { devices: 0 }
                } else {
                    let ids: Vec<Vec<u8>> = credential_ids
                        .iter()
                        .filter_map(|id| decode_b64(id).ok())
                        .collect();
                    match ids.iter().position(|id| device.holds(id, &rp_id)) {
                        Some(index) => {
                            chosen = Some((rp_id, ids[index].clone()));
                            Response::Found {
                                device: "/dev/hidraw-soft".into(),
                                product: "soft".into(),
                                credential_index: index,
                                pin_set: device.behaviour.pin.is_some(),
                                uv_builtin: device.behaviour.builtin_uv || state.lie_uv,
                            }
                        }
                        None => Response::NotFound { devices: 1 },
                    }
                }
            }
            Ok(Request::Assert {
                challenge,
                pin,
                user_verification,
            }) => {
                if state.mode == "hang" {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
                let uv = user_verification && !state.lie_uv;
                match (&chosen, decode_b64(&challenge)) {
                    (Some((rp_id, id)), Ok(challenge)) => match device.get_assertion(
                        rp_id,
                        &client_data_hash(&challenge),
                        std::slice::from_ref(id),
                        true,
                        uv,
                        pin.as_deref(),
                    ) {
                        Ok(a) => {
                            let mut saved = state.clone();
                            saved.device = device.behaviour.clone();
                            if let Ok(text) = toml::to_string(&saved) {
                                let _ = std::fs::write(&path, text);
                            }
                            Response::assertion(&Assertion {
                                credential_id: a.credential_id,
                                auth_data: a.auth_data,
                                signature: a.signature,
                            })
                        }
                        Err(e) => Response::Failed {
                            kind: FailureKind::Device,
                            message: format!("{e:?}"),
                        },
                    },
                    _ => Response::Failed {
                        kind: FailureKind::Protocol,
                        message: "assert before find".into(),
                    },
                }
            }
        };
        if out.write_all(encode_line(&response).as_bytes()).is_err() || out.flush().is_err() {
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
