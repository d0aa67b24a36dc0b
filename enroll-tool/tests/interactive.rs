//! Whole interactive sessions on a pseudo-terminal that is the program's
//! controlling terminal: what a person sees and types, Ctrl-C and Ctrl-D
//! included. Must run as root (sessions act for `nobody` with --user).

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::*;
use twofactor_core::backup::{self, BackupCheck};

#[test]
fn enroll_with_a_wrong_then_a_right_code() {
    require_root();
    let sandbox = Sandbox::with_user_path(".config/twofactor/enrollment.json");
    let path = sandbox.path("nobody/.config/twofactor/enrollment.json");
    let mut session = PtySession::spawn(&sandbox, "enroll", &["--user", TARGET_USER]);

    let setup = session.expect("Enter the 6-digit code");
    let uri = uri_on_screen(&setup);
    assert_eq!(
        decode_terminal_drawing(&setup),
        uri,
        "the QR code in the terminal holds the printed URI"
    );
    let secret = uri_parameter(&uri, "secret");
    let grouped: String = secret
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        setup.contains(&grouped),
        "secret grouped for typing: {setup}"
    );
    assert!(
        uri.contains(&format!(":{TARGET_USER}%40")),
        "label user@host: {uri}"
    );
    let drawing: Vec<&str> = setup.lines().filter(|l| l.contains('█')).collect();
    assert!(drawing.len() > 10);
    for line in drawing {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns: {line:?}"
        );
    }

    session.send(&format!("{}\n", wrong_code(&uri)));
    session.expect("not right");
    assert!(
        !sandbox.path("nobody/.config").exists(),
        "nothing is written before a correct code"
    );

    session.send(&format!("{}\n", oathtool_code(&uri, now())));
    session.expect("Code accepted");
    let rest = session.expect("Enrolled");
    let (status, tail, errors) = session.finish();
    assert_eq!(status.code(), Some(0), "stderr: {errors}\n{tail}");
    assert!(errors.is_empty(), "stderr: {errors}");

    let codes = codes_on_screen(&rest);
    assert_eq!(codes.len(), 10, "{rest}");
    assert!(rest.contains("not shown again"), "{rest}");
    let meta = fs::symlink_metadata(&path).unwrap();
    assert_eq!(meta.uid(), target_user().uid.as_raw());
    assert_eq!(meta.mode() & 0o7777, 0o600);
    let enrollment = read_enrollment(&path);
    assert_eq!(
        enrollment.totp.as_ref().unwrap().secret,
        totp_of_uri(&uri).secret
    );
    for code in &codes {
        assert!(matches!(
            backup::verify(code, &enrollment.backup_codes, |_| false),
            BackupCheck::Accepted { .. }
        ));
    }
}

#[test]
fn ctrl_c_during_enrollment_leaves_nothing() {
    require_root();
    let sandbox = Sandbox::with_user_path(".config/twofactor/enrollment.json");
    let qr_file = sandbox.path("nobody/qr.png");
    let mut session = PtySession::spawn(
        &sandbox,
        "enroll",
        &[
            "--user",
            TARGET_USER,
            "--qr-file",
            qr_file.to_str().unwrap(),
        ],
    );
    session.expect("Enter the 6-digit code");
    session.send("12");
    session.send("\x03");
    let (status, _, errors) = session.finish();
    assert_eq!(status.code(), Some(130), "stderr: {errors}");
    assert_one_line_error_text(&errors);
    assert!(
        errors.contains("interrupted (Ctrl-C); nothing was written"),
        "{errors}"
    );
    assert!(
        entries(&sandbox.path("nobody")).is_empty(),
        "left behind: {:?}",
        entries(&sandbox.path("nobody"))
    );
}

/// The QR file as a phone would scan it while the code is asked: there,
/// private, holding the URI shown on the terminal.
fn assert_qr_file_while_asking(qr_file: &std::path::Path, screen: &str) {
    assert!(
        screen.contains(&format!(
            "QR code written to {} (mode 0600; removed if the enrollment is cancelled)",
            qr_file.display()
        )),
        "{screen}"
    );
    let meta = fs::symlink_metadata(qr_file).expect("the QR file exists while the code is asked");
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!(meta.uid(), target_user().uid.as_raw());
    assert_eq!(decode_png(qr_file), uri_on_screen(screen));
}

#[test]
fn the_qr_file_can_be_scanned_during_the_dialogue_and_stays_after_success() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let qr_file = sandbox.path("nobody/qr.png");
    let mut session = PtySession::spawn(
        &sandbox,
        "enroll",
        &[
            "--user",
            TARGET_USER,
            "--qr-file",
            qr_file.to_str().unwrap(),
        ],
    );
    let setup = session.expect("Enter the 6-digit code");
    assert_qr_file_while_asking(&qr_file, &setup);
    assert!(!sandbox.enrollment_path().exists());
    let uri = uri_on_screen(&setup);
    session.send(&format!("{}\n", oathtool_code(&uri, now())));
    let (status, rest, errors) = session.finish();
    assert_eq!(status.code(), Some(0), "stderr: {errors}\n{rest}");
    assert_eq!(decode_png(&qr_file), uri, "kept after the enrollment");
    assert!(rest.contains("delete it once it has been used"), "{rest}");
    assert_eq!(
        read_enrollment(&sandbox.enrollment_path())
            .totp
            .unwrap()
            .secret,
        totp_of_uri(&uri).secret
    );
}

#[test]
fn the_qr_file_is_removed_when_the_enrollment_is_cancelled() {
    require_root();
    // Ctrl-C, end of input, and too many wrong codes.
    for (how, exit, message) in [
        ("ctrl-c", 130, "interrupted (Ctrl-C); nothing was written"),
        (
            "ctrl-d",
            1,
            "cancelled: no code was entered; nothing was written",
        ),
        (
            "wrong",
            1,
            "cancelled after 5 wrong codes; nothing was written",
        ),
    ] {
        let sandbox = Sandbox::with_user_path("enrollment.json");
        let qr_file = sandbox.path("nobody/qr.png");
        let mut session = PtySession::spawn(
            &sandbox,
            "enroll",
            &[
                "--user",
                TARGET_USER,
                "--qr-file",
                qr_file.to_str().unwrap(),
            ],
        );
        let setup = session.expect("Enter the 6-digit code");
        assert_qr_file_while_asking(&qr_file, &setup);
        let wrong = wrong_code(&uri_on_screen(&setup));
        match how {
            "ctrl-c" => session.send("\x03"),
            "ctrl-d" => session.send("\x04"),
            _ => {
                for attempt in 1..5 {
                    session.send(&format!("{wrong}\n"));
                    session.expect("right");
                    assert!(
                        qr_file.exists(),
                        "{how}: removed after {attempt} wrong codes"
                    );
                }
                session.send(&format!("{wrong}\n"));
            }
        }
        let (status, _, errors) = session.finish();
        assert_eq!(status.code(), Some(exit), "{how}: {errors}");
        assert_one_line_error_text(&errors);
        assert!(errors.contains(message), "{how}: {errors}");
        assert!(
            entries(&sandbox.path("nobody")).is_empty(),
            "{how}: left behind: {:?}",
            entries(&sandbox.path("nobody"))
        );
    }
}

#[test]
fn end_of_input_during_enrollment_leaves_nothing() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let mut session = PtySession::spawn(&sandbox, "enroll", &["--user", TARGET_USER]);
    session.expect("Enter the 6-digit code");
    session.send("\x04");
    let (status, _, errors) = session.finish();
    assert_eq!(status.code(), Some(1), "stderr: {errors}");
    assert_one_line_error_text(&errors);
    assert!(errors.contains("cancelled"), "{errors}");
    assert!(entries(&sandbox.path("nobody")).is_empty());
}

#[test]
fn an_enrollment_is_replaced_only_with_force_and_a_warning() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let old = sandbox.enroll_json(&[]);
    let before = fs::read(sandbox.enrollment_path()).unwrap();

    let session = PtySession::spawn(&sandbox, "enroll", &["--user", TARGET_USER]);
    let (status, screen, errors) = session.finish();
    assert_eq!(status.code(), Some(1), "{screen}");
    assert_one_line_error_text(&errors);
    assert!(
        errors.contains("--force") && errors.contains("stop working"),
        "{errors}"
    );
    assert!(!screen.contains("otpauth://"), "nothing shown: {screen}");
    assert_eq!(fs::read(sandbox.enrollment_path()).unwrap(), before);

    // With --force: warned, and still nothing changes until the code.
    let mut session = PtySession::spawn(&sandbox, "enroll", &["--user", TARGET_USER, "--force"]);
    let setup = session.expect("Enter the 6-digit code");
    assert!(
        setup.contains("Warning: you already have an enrollment"),
        "{setup}"
    );
    assert!(setup.contains("stop working"), "{setup}");
    assert_eq!(fs::read(sandbox.enrollment_path()).unwrap(), before);
    let uri = uri_on_screen(&setup);
    session.send(&format!("{}\n", oathtool_code(&uri, now())));
    let (status, rest, errors) = session.finish();
    assert_eq!(status.code(), Some(0), "stderr: {errors}");
    let enrollment = read_enrollment(&sandbox.enrollment_path());
    assert_eq!(
        enrollment.totp.as_ref().unwrap().secret,
        totp_of_uri(&uri).secret
    );
    let old_code = &backup_codes_of(&old)[0];
    assert_eq!(
        backup::verify(old_code, &enrollment.backup_codes, |_| false),
        BackupCheck::Rejected,
        "old codes stop working"
    );
    assert_eq!(codes_on_screen(&rest).len(), 10);
}

#[test]
fn light_and_ascii_styles_can_be_chosen() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let mut session = PtySession::spawn(
        &sandbox,
        "enroll",
        &["--user", TARGET_USER, "--qr", "ascii-light"],
    );
    let setup = session.expect("Enter the 6-digit code");
    assert!(setup.contains("##"), "{setup}");
    assert!(!setup.contains('█'), "{setup}");
    session.send("\x03");
    let (status, _, _) = session.finish();
    assert_eq!(status.code(), Some(130));
}

#[test]
fn verify_reads_the_code_without_echo() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    let report = sandbox.enroll_json(&[]);
    let uri = report["otpauth_uri"].as_str().unwrap().to_string();
    let mut session = PtySession::spawn(&sandbox, "verify", &["--user", TARGET_USER]);
    session.expect("Code to check");
    let code = oathtool_code(&uri, now());
    session.send(&format!("{code}\n"));
    let (status, screen, errors) = session.finish();
    assert_eq!(status.code(), Some(0), "{screen} {errors}");
    assert!(screen.contains("valid: a correct TOTP code"), "{screen}");
    assert!(!screen.contains(&code), "the code was echoed: {screen}");
}

#[test]
fn backup_codes_and_disable_ask_first() {
    require_root();
    let sandbox = Sandbox::with_user_path("enrollment.json");
    sandbox.enroll_json(&[]);
    let before = fs::read(sandbox.enrollment_path()).unwrap();

    let mut session = PtySession::spawn(&sandbox, "backup-codes", &["--user", TARGET_USER]);
    let question = session.expect("[y/N]");
    assert!(question.contains("current backup codes"), "{question}");
    session.send("n\n");
    let (status, _, errors) = session.finish();
    assert_eq!(status.code(), Some(1));
    assert!(errors.contains("not confirmed"), "{errors}");
    assert_eq!(fs::read(sandbox.enrollment_path()).unwrap(), before);

    let mut session = PtySession::spawn(&sandbox, "backup-codes", &["--user", TARGET_USER]);
    session.expect("[y/N]");
    session.send("y\n");
    let (status, screen, errors) = session.finish();
    assert_eq!(status.code(), Some(0), "{errors}");
    let codes = codes_on_screen(&screen);
    assert_eq!(codes.len(), 10, "{screen}");
    let enrollment = read_enrollment(&sandbox.enrollment_path());
    assert!(matches!(
        backup::verify(&codes[3], &enrollment.backup_codes, |_| false),
        BackupCheck::Accepted { .. }
    ));

    let mut session = PtySession::spawn(&sandbox, "disable", &["totp", "--user", TARGET_USER]);
    let question = session.expect("[y/N]");
    assert!(
        question.contains(
            "This removes the TOTP secret of nobody: the authenticator app entry stops \
             working for good. This cannot be undone.\n"
        ) && question.ends_with("\nDisable TOTP for nobody? [y/N]"),
        "{question}"
    );
    session.send("n\n");
    let (status, _, errors) = session.finish();
    assert_eq!(status.code(), Some(1), "{errors}");
    assert!(read_enrollment(&sandbox.enrollment_path()).totp.is_some());

    let mut session = PtySession::spawn(&sandbox, "disable", &["all", "--user", TARGET_USER]);
    let question = session.expect("[y/N]");
    assert!(
        question.contains(&format!(
            "This removes every second factor of nobody: TOTP (the authenticator app entry) \
             and the backup codes; {} is deleted. This cannot be undone.\n",
            sandbox.enrollment_path().display()
        )) && question.contains("refused until you enroll again")
            && question.ends_with("\nRemove all second factors of nobody? [y/N]"),
        "{question}"
    );
    session.send("\x03");
    let (status, _, errors) = session.finish();
    assert_eq!(status.code(), Some(130));
    assert!(errors.contains("nothing was changed"), "{errors}");
    assert!(sandbox.enrollment_path().exists());

    let mut session = PtySession::spawn(&sandbox, "disable", &["all", "--user", TARGET_USER]);
    session.expect("[y/N]");
    session.send("yes\n");
    let (status, screen, _) = session.finish();
    assert_eq!(status.code(), Some(0));
    assert!(screen.contains("removed"), "{screen}");
    assert!(!sandbox.enrollment_path().exists());
}
