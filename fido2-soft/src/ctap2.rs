//! CTAP2 commands in CBOR (CTAP 2.1 §6): authenticatorGetInfo,
//! authenticatorMakeCredential and authenticatorGetAssertion. Enough for a
//! platform (ctap-hid-fido2, libfido2) to register and use non-resident
//! credentials without a PIN.

use ciborium::Value;

use crate::{Alg, CtapError, SoftAuthenticator, AAGUID};

const CMD_MAKE_CREDENTIAL: u8 = 0x01;
const CMD_GET_ASSERTION: u8 = 0x02;
const CMD_GET_INFO: u8 = 0x04;

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn encode(value: &Value) -> Vec<u8> {
    let mut out = vec![0u8];
    let _ = ciborium::ser::into_writer(value, &mut out);
    out
}

fn field(map: &[(Value, Value)], key: i64) -> Option<&Value> {
    map.iter().find_map(|(k, v)| match k {
        Value::Integer(i) if i128::from(*i) == i128::from(key) => Some(v),
        _ => None,
    })
}

fn text_field<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter().find_map(|(k, v)| match k {
        Value::Text(t) if t == key => Some(v),
        _ => None,
    })
}

fn option(map: &[(Value, Value)], name: &str) -> Option<bool> {
    let Some(Value::Map(options)) = field(map, 5) else {
        return None;
    };
    match text_field(options, name) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

/// Answer one CTAP2 command (`command[0]` is the command byte, the rest its
/// CBOR parameters): status byte, then the CBOR response.
pub fn handle(authenticator: &mut SoftAuthenticator, command: &[u8]) -> Vec<u8> {
    let Some((&cmd, params)) = command.split_first() else {
        return vec![CtapError::InvalidCommand as u8];
    };
    let result = match cmd {
        CMD_GET_INFO => Ok(get_info(authenticator)),
        CMD_MAKE_CREDENTIAL => parse(params).and_then(|p| make_credential(authenticator, &p)),
        CMD_GET_ASSERTION => parse(params).and_then(|p| get_assertion(authenticator, &p)),
        _ => Err(CtapError::InvalidCommand),
    };
    match result {
        Ok(value) => encode(&value),
        Err(e) => vec![e as u8],
    }
}

fn parse(params: &[u8]) -> Result<Vec<(Value, Value)>, CtapError> {
    match ciborium::de::from_reader::<Value, _>(params) {
        Ok(Value::Map(map)) => Ok(map),
        _ => Err(CtapError::InvalidCbor),
    }
}

fn get_info(authenticator: &SoftAuthenticator) -> Value {
    let mut options = vec![
        (text("rk"), Value::Bool(false)),
        (text("up"), Value::Bool(true)),
        (text("plat"), Value::Bool(false)),
    ];
    if authenticator.behaviour.builtin_uv {
        options.push((text("uv"), Value::Bool(true)));
    }
    let algorithms = authenticator
        .behaviour
        .algorithms
        .iter()
        .map(|a| {
            Value::Map(vec![
                (text("alg"), int(a.cose())),
                (text("type"), text("public-key")),
            ])
        })
        .collect();
    Value::Map(vec![
        (int(1), Value::Array(vec![text("FIDO_2_0")])),
        (int(3), Value::Bytes(AAGUID.to_vec())),
        (int(4), Value::Map(options)),
        (int(5), int(1200)),
        (int(10), Value::Array(algorithms)),
    ])
}

fn bytes(value: Option<&Value>) -> Result<Vec<u8>, CtapError> {
    match value {
        Some(Value::Bytes(b)) => Ok(b.clone()),
        _ => Err(CtapError::MissingParameter),
    }
}

fn make_credential(
    authenticator: &mut SoftAuthenticator,
    params: &[(Value, Value)],
) -> Result<Value, CtapError> {
    let client_data_hash = bytes(field(params, 1))?;
    let Some(Value::Map(rp)) = field(params, 2) else {
        return Err(CtapError::MissingParameter);
    };
    let Some(Value::Text(rp_id)) = text_field(rp, "id") else {
        return Err(CtapError::MissingParameter);
    };
    let Some(Value::Array(cred_params)) = field(params, 4) else {
        return Err(CtapError::MissingParameter);
    };
    let algs: Vec<Alg> = cred_params
        .iter()
        .filter_map(|p| match p {
            Value::Map(m) => match text_field(m, "alg") {
                Some(Value::Integer(i)) => match i128::from(*i) {
                    -7 => Some(Alg::Es256),
                    -8 => Some(Alg::Eddsa),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .collect();
    if field(params, 8).is_some() {
        // pinUvAuthParam: this authenticator has no clientPIN support.
        return Err(CtapError::PinInvalid);
    }
    let uv = option(params, "uv").unwrap_or(false);
    let registration = authenticator.make_credential(rp_id, &client_data_hash, &algs, uv, None)?;
    Ok(Value::Map(vec![
        (int(1), text("packed")),
        (int(2), Value::Bytes(registration.auth_data)),
        (
            int(3),
            Value::Map(vec![
                (text("alg"), int(registration.alg.cose())),
                (text("sig"), Value::Bytes(registration.signature)),
            ]),
        ),
    ]))
}

fn get_assertion(
    authenticator: &mut SoftAuthenticator,
    params: &[(Value, Value)],
) -> Result<Value, CtapError> {
    let Some(Value::Text(rp_id)) = field(params, 1) else {
        return Err(CtapError::MissingParameter);
    };
    let client_data_hash = bytes(field(params, 2))?;
    let allow_list: Vec<Vec<u8>> = match field(params, 3) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|d| match d {
                Value::Map(m) => match text_field(m, "id") {
                    Some(Value::Bytes(id)) => Some(id.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if field(params, 6).is_some() {
        return Err(CtapError::PinInvalid);
    }
    let up = option(params, "up").unwrap_or(true);
    let uv = option(params, "uv").unwrap_or(false);
    let assertion =
        authenticator.get_assertion(rp_id, &client_data_hash, &allow_list, up, uv, None)?;
    Ok(Value::Map(vec![
        (
            int(1),
            Value::Map(vec![
                (text("id"), Value::Bytes(assertion.credential_id)),
                (text("type"), text("public-key")),
            ]),
        ),
        (int(2), Value::Bytes(assertion.auth_data)),
        (int(3), Value::Bytes(assertion.signature)),
    ]))
}
