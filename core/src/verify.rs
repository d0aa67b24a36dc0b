//! Deciding whether an answer typed at the prompt is a valid second factor,
//! and what that changes in the login state. Pure: no I/O, no clock.

use crate::backup::{self, BackupCheck};
use crate::enrollment::Enrollment;
use crate::state::{LoginState, Method};
use crate::totp::TotpCheck;

/// The outcome of checking one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A TOTP code of a step not used before.
    Totp {
        /// the accepted step
        step: u64,
    },
    /// An unspent backup code.
    BackupCode {
        /// its id (salt)
        id: String,
    },
    /// A valid TOTP code whose step was already used.
    ReplayedTotp,
    /// A backup code that was already spent.
    SpentBackupCode,
    /// Nothing matched.
    Wrong,
}

impl Verdict {
    /// True for the two accepting verdicts.
    pub fn is_success(&self) -> bool {
        matches!(self, Verdict::Totp { .. } | Verdict::BackupCode { .. })
    }

    /// The method of an accepting verdict.
    pub fn method(&self) -> Option<Method> {
        match self {
            Verdict::Totp { .. } => Some(Method::Totp),
            Verdict::BackupCode { .. } => Some(Method::BackupCode),
            _ => None,
        }
    }

    /// Short reason for logs; never includes the code.
    pub fn reason(&self) -> &'static str {
        match self {
            Verdict::Totp { .. } => "valid TOTP code",
            Verdict::BackupCode { .. } => "valid backup code",
            Verdict::ReplayedTotp => "TOTP code already used (replay refused)",
            Verdict::SpentBackupCode => "backup code already used",
            Verdict::Wrong => "wrong code",
        }
    }
}

fn rank(verdict: &Verdict) -> u8 {
    match verdict {
        Verdict::Totp { .. } | Verdict::BackupCode { .. } => 3,
        Verdict::ReplayedTotp | Verdict::SpentBackupCode => 2,
        Verdict::Wrong => 1,
    }
}

/// Check an answer that is only a code (surrounding white space ignored).
pub fn check_code(
    enrollment: &Enrollment,
    state: &LoginState,
    answer: &str,
    now: u64,
    window: u8,
) -> Verdict {
    check_candidate(enrollment, state, answer.trim(), now, window)
}

fn check_candidate(
    enrollment: &Enrollment,
    state: &LoginState,
    candidate: &str,
    now: u64,
    window: u8,
) -> Verdict {
    if let Some(totp) = &enrollment.totp {
        if totp.looks_like_code(candidate) {
            let verdict = match totp.verify(candidate, now, window, state.last_totp_step) {
                TotpCheck::Accepted { step } => Verdict::Totp { step },
                TotpCheck::Replayed => Verdict::ReplayedTotp,
                TotpCheck::Rejected => Verdict::Wrong,
            };
            // An 8-digit TOTP and imported 8-digit scratch codes share a
            // shape: a wrong TOTP code may still be a scratch code.
            let maybe_scratch = verdict == Verdict::Wrong
                && backup::normalize_legacy(candidate).is_some()
                && enrollment
                    .backup_codes
                    .iter()
                    .any(|c| c.kind == backup::BackupCodeKind::LegacyScratch);
            if !maybe_scratch {
                return verdict;
            }
        }
    }
    match backup::verify(candidate, &enrollment.backup_codes, |id| state.is_spent(id)) {
        BackupCheck::Accepted { id } => Verdict::BackupCode { id },
        BackupCheck::AlreadyUsed => Verdict::SpentBackupCode,
        BackupCheck::Rejected => Verdict::Wrong,
    }
}

/// Check an answer holding a password immediately followed by a code
/// (`forward_pass`, `try_first_pass`). Each way the answer can end in a code
/// is tried: the TOTP length, a dashed backup code, a plain backup code; a
/// whole answer that is a code counts too. Returns the verdict and the length
/// of the password part in bytes.
pub fn check_password_and_code(
    enrollment: &Enrollment,
    state: &LoginState,
    answer: &str,
    now: u64,
    window: u8,
) -> (Verdict, usize) {
    let mut suffix_lengths: Vec<usize> = Vec::with_capacity(3);
    if let Some(totp) = &enrollment.totp {
        suffix_lengths.push(usize::from(totp.digits));
    }
    if !enrollment.backup_codes.is_empty() {
        suffix_lengths.push(backup::CODE_CHARS + 3);
        suffix_lengths.push(backup::CODE_CHARS);
    }
    let has_legacy = enrollment
        .backup_codes
        .iter()
        .any(|c| c.kind == backup::BackupCodeKind::LegacyScratch);
    if has_legacy && !suffix_lengths.contains(&backup::LEGACY_CODE_DIGITS) {
        suffix_lengths.push(backup::LEGACY_CODE_DIGITS);
    }
    let mut best = (Verdict::Wrong, answer.len());
    for suffix in suffix_lengths {
        let Some(split) = answer.len().checked_sub(suffix) else {
            continue;
        };
        if !answer.is_char_boundary(split) {
            continue;
        }
        let verdict = check_candidate(enrollment, state, &answer[split..], now, window);
        if rank(&verdict) > rank(&best.0) {
            best = (verdict, split);
        }
    }
    best
}

/// Record an accepting verdict in the state: the TOTP step becomes the last
/// accepted one, a backup code becomes spent. Returns the number of backup
/// codes still unspent afterwards.
pub fn record_success(
    verdict: &Verdict,
    enrollment: &Enrollment,
    state: &mut LoginState,
    now: u64,
) -> usize {
    match verdict {
        Verdict::Totp { step } => {
            state.last_totp_step = Some(state.last_totp_step.map_or(*step, |s| s.max(*step)));
        }
        Verdict::BackupCode { id } => {
            state.forget_unknown_backup_codes(
                enrollment.backup_codes.iter().map(|c| c.salt.as_str()),
            );
            if !state.is_spent(id) {
                state.spent_backup_codes.push(id.clone());
            }
        }
        _ => {}
    }
    if let Some(method) = verdict.method() {
        state.record_success(method, now);
    }
    remaining_backup_codes(enrollment, state)
}

/// Backup codes of the enrollment that are not spent.
pub fn remaining_backup_codes(enrollment: &Enrollment, state: &LoginState) -> usize {
    enrollment
        .backup_codes
        .iter()
        .filter(|c| !state.is_spent(&c.salt))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretBytes;
    use crate::totp::{Algorithm, TotpParams};

    fn enrollment_with_codes() -> (Enrollment, Vec<String>) {
        let codes = backup::generate(3);
        let shown = codes.iter().map(|c| c.display.to_string()).collect();
        let enrollment = Enrollment {
            totp: Some(TotpParams {
                secret: SecretBytes::new(b"12345678901234567890".to_vec()),
                algorithm: Algorithm::SHA1,
                digits: 6,
                period: 30,
            }),
            backup_codes: codes.into_iter().map(|c| c.stored).collect(),
            ..Enrollment::default()
        };
        (enrollment, shown)
    }

    #[test]
    fn totp_then_replay() {
        let (e, _) = enrollment_with_codes();
        let mut state = LoginState::default();
        let code = e.totp.as_ref().unwrap().code_at(1000);
        let verdict = check_code(&e, &state, &format!(" {} ", code.as_str()), 1000, 1);
        assert_eq!(verdict, Verdict::Totp { step: 33 });
        record_success(&verdict, &e, &mut state, 1000);
        assert_eq!(state.last_totp_step, Some(33));
        assert_eq!(
            check_code(&e, &state, &code, 1000, 1),
            Verdict::ReplayedTotp
        );
    }

    #[test]
    fn backup_code_once_and_remaining_count() {
        let (e, shown) = enrollment_with_codes();
        let mut state = LoginState::default();
        let verdict = check_code(&e, &state, &shown[2], 1000, 1);
        assert!(matches!(verdict, Verdict::BackupCode { .. }));
        assert_eq!(record_success(&verdict, &e, &mut state, 1000), 2);
        assert_eq!(
            check_code(&e, &state, &shown[2], 1001, 1),
            Verdict::SpentBackupCode
        );
        assert_eq!(state.last_success_method, Some(Method::BackupCode));
    }

    #[test]
    fn password_and_code_are_split() {
        let (e, shown) = enrollment_with_codes();
        let state = LoginState::default();
        let code = e.totp.as_ref().unwrap().code_at(1000);
        let answer = format!("hunter2{}", code.as_str());
        let (verdict, split) = check_password_and_code(&e, &state, &answer, 1000, 1);
        assert!(verdict.is_success());
        assert_eq!(&answer[..split], "hunter2");

        for backup in [shown[0].clone(), shown[0].replace('-', "")] {
            let answer = format!("pass word{backup}");
            let (verdict, split) = check_password_and_code(&e, &state, &answer, 1000, 1);
            assert!(matches!(verdict, Verdict::BackupCode { .. }), "{answer}");
            assert_eq!(&answer[..split], "pass word");
        }

        let (verdict, split) = check_password_and_code(&e, &state, code.as_str(), 1000, 1);
        assert!(verdict.is_success());
        assert_eq!(split, 0);

        let (verdict, _) = check_password_and_code(&e, &state, "hunter2000000", 1000, 1);
        assert_eq!(verdict, Verdict::Wrong);
        let (verdict, _) = check_password_and_code(&e, &state, "ü", 1000, 1);
        assert_eq!(verdict, Verdict::Wrong);
    }

    #[test]
    fn legacy_scratch_codes_alone_and_after_a_password() {
        let (mut e, _) = enrollment_with_codes();
        e.backup_codes
            .push(backup::hash_legacy("60808409").unwrap());
        let mut state = LoginState::default();
        let verdict = check_code(&e, &state, "60808409", 1000, 1);
        assert!(matches!(verdict, Verdict::BackupCode { .. }), "{verdict:?}");
        assert_eq!(record_success(&verdict, &e, &mut state, 1000), 3);
        assert_eq!(
            check_code(&e, &state, "60808409", 1000, 1),
            Verdict::SpentBackupCode
        );
        let state = LoginState::default();
        let (verdict, split) = check_password_and_code(&e, &state, "hunter260808409", 1000, 1);
        assert!(matches!(verdict, Verdict::BackupCode { .. }), "{verdict:?}");
        assert_eq!(split, "hunter2".len());

        // An 8-digit TOTP enrollment still accepts its codes and the scratch codes.
        if let Some(totp) = e.totp.as_mut() {
            totp.digits = 8;
        }
        let code = e.totp.as_ref().unwrap().code_at(1000);
        assert!(matches!(
            check_code(&e, &state, &code, 1000, 1),
            Verdict::Totp { .. }
        ));
        assert!(matches!(
            check_code(&e, &state, "60808409", 1000, 1),
            Verdict::BackupCode { .. }
        ));
    }

    #[test]
    fn regenerated_codes_drop_old_spent_ids() {
        let (e, shown) = enrollment_with_codes();
        let mut state = LoginState::default();
        state.spent_backup_codes.push("stale".into());
        let verdict = check_code(&e, &state, &shown[0], 5, 1);
        record_success(&verdict, &e, &mut state, 5);
        assert_eq!(
            state.spent_backup_codes,
            vec![e.backup_codes[0].salt.clone()]
        );
    }
}
