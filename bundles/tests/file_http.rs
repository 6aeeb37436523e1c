//! `arc-file` from a real HTTP server (started in the test, with injected faults) into
//! directories: checksums, retries, Retry-After, resume after a cut, not found, scanner.

mod file_support;

use std::time::Instant;

use arc_tests::http_server::{Fault, HttpFileServer};
use bundles::{ErrorKind, Secrets};
use file_support::*;

struct Setup {
    server: HttpFileServer,
    dst: tempfile::TempDir,
    staging: tempfile::TempDir,
    _root: tempfile::TempDir,
    content: Vec<u8>,
}

fn setup(len: usize, seed: u64) -> Setup {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("files/sub")).unwrap();
    let content = data(len, seed);
    std::fs::write(root.path().join("files/sub/a.bin"), &content).unwrap();
    Setup {
        server: HttpFileServer::start(root.path()),
        dst: tempfile::tempdir().unwrap(),
        staging: tempfile::tempdir().unwrap(),
        _root: root,
        content,
    }
}

fn params(s: &Setup, path: &str, sha: &str) -> Vec<(&'static str, String)> {
    vec![
        ("srcType", "http".into()),
        ("srcRemoteURL", s.server.url("files")),
        ("srcSecret", "false".into()),
        ("dstType", "dir".into()),
        ("dstRemoteURL", s.dst.path().display().to_string()),
        ("dstSecret", "false".into()),
        ("specPath", path.into()),
        ("specSha256", sha.into()),
    ]
}

#[tokio::test]
async fn http_to_dir_with_the_right_checksum() {
    let s = setup(3 * 1024 * 1024 + 17, 1);
    let sha = sha256_hex(&s.content);
    let (job, events) = file_job(
        &params(&s, "sub/a.bin", &sha),
        Secrets::default(),
        None,
        s.staging.path(),
    );
    let summary = bundles::run(&job).await.expect("transfer succeeds");
    assert!(summary.ok);
    assert_eq!(summary.bytes, s.content.len() as u64);
    assert_eq!(
        std::fs::read(s.dst.path().join("a.bin")).unwrap(),
        s.content
    );
    assert_eq!(files_in(s.dst.path()), ["a.bin"], "no staging leftovers");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(s.dst.path().join("a.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    let events = events.events();
    let names = event_names(&events);
    assert_eq!(names.first().map(String::as_str), Some("start"));
    assert_eq!(names.last().map(String::as_str), Some("summary"));
    let blob = events
        .iter()
        .find(|e| e["event"] == "blob")
        .expect("a blob event");
    assert_eq!(blob["digest"], format!("sha256:{sha}"));
    assert_eq!(blob["bytes"], s.content.len() as u64);
    assert_eq!(blob["status"], "copied");
    let pushed = events
        .iter()
        .find(|e| e["event"] == "pushed")
        .expect("a pushed event");
    assert_eq!(
        pushed["reference"],
        s.dst.path().join("a.bin").display().to_string()
    );
    assert_eq!(
        events.last().unwrap()["pushed"][0]["digest"],
        format!("sha256:{sha}")
    );

    // A second run finds the file in place and moves nothing.
    let (job, events) = file_job(
        &params(&s, "sub/a.bin", &sha),
        Secrets::default(),
        None,
        s.staging.path(),
    );
    let summary = bundles::run(&job).await.unwrap();
    assert_eq!((summary.bytes, summary.skipped), (0, 1));
    assert!(
        events
            .events()
            .iter()
            .any(|e| e["event"] == "blob" && e["status"] == "skipped")
    );
    assert_eq!(
        s.server.requests("/files/sub/a.bin").len(),
        1,
        "the re-run did not download"
    );
}

#[tokio::test]
async fn override_names_the_destination_and_full_urls_work() {
    let s = setup(1000, 2);
    let sha = sha256_hex(&s.content);
    let mut p = params(&s, &s.server.url("files/sub/a.bin"), &sha);
    p.push(("specOverride", "deep/er/b.bin".into()));
    let (job, _) = file_job(&p, Secrets::default(), None, s.staging.path());
    bundles::run(&job).await.unwrap();
    assert_eq!(
        std::fs::read(s.dst.path().join("deep/er/b.bin")).unwrap(),
        s.content
    );
}

#[tokio::test]
async fn wrong_checksum_fails_and_publishes_nothing() {
    let s = setup(2 * 1024 * 1024, 3);
    let wrong = sha256_hex(b"something else");
    let (job, events) = file_job(
        &params(&s, "sub/a.bin", &wrong),
        Secrets::default(),
        None,
        s.staging.path(),
    );
    let error = bundles::run(&job).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ChecksumMismatch);
    let message = error.to_string();
    assert!(
        message.contains(&wrong) && message.contains(&sha256_hex(&s.content)),
        "{message}"
    );
    assert!(
        message.contains("file sub/a.bin"),
        "names the artifact: {message}"
    );
    assert!(
        message.contains(&s.server.url("files/sub/a.bin")),
        "names the endpoint: {message}"
    );
    assert!(
        files_in(s.dst.path()).is_empty(),
        "nothing at the destination: {:?}",
        files_in(s.dst.path())
    );
    let last = events.events().pop().unwrap();
    assert_eq!(last["event"], "summary");
    assert_eq!(last["ok"], false);
    assert_eq!(last["error"]["kind"], "checksum_mismatch");
}

#[tokio::test]
async fn http_needs_a_checksum() {
    let s = setup(10, 4);
    let mut p = params(&s, "sub/a.bin", "");
    p.retain(|(k, _)| *k != "specSha256");
    let (job, _) = file_job(&p, Secrets::default(), None, s.staging.path());
    let error = bundles::run(&job).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidParameter);
    assert!(error.to_string().contains("specSha256"), "{error}");
    assert!(
        s.server.requests("/files/sub/a.bin").is_empty(),
        "nothing was downloaded"
    );
}

#[tokio::test]
async fn service_unavailable_is_retried() {
    let s = setup(100_000, 5);
    let path = "/files/sub/a.bin";
    for _ in 0..2 {
        s.server.inject(
            path,
            Fault::Status {
                status: 503,
                retry_after_secs: None,
            },
        );
    }
    let (job, _) = file_job(
        &params(&s, "sub/a.bin", &sha256_hex(&s.content)),
        Secrets::default(),
        None,
        s.staging.path(),
    );
    bundles::run(&job).await.expect("succeeds after two 503s");
    let statuses: Vec<u16> = s.server.requests(path).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert_eq!(
        std::fs::read(s.dst.path().join("a.bin")).unwrap(),
        s.content
    );
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let s = setup(1000, 6);
    let path = "/files/sub/a.bin";
    s.server.inject(
        path,
        Fault::Status {
            status: 429,
            retry_after_secs: Some(2),
        },
    );
    let (job, _) = file_job(
        &params(&s, "sub/a.bin", &sha256_hex(&s.content)),
        Secrets::default(),
        None,
        s.staging.path(),
    );
    let started = Instant::now();
    bundles::run(&job).await.expect("succeeds after the 429");
    // The backoff alone would be at most 200 ms; the server asked for 2 s.
    assert!(
        started.elapsed().as_millis() >= 1900,
        "waited only {:?}",
        started.elapsed()
    );
    let statuses: Vec<u16> = s.server.requests(path).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[tokio::test]
async fn a_cut_download_resumes_with_a_range_request() {
    let s = setup(4 * 1024 * 1024, 7);
    let path = "/files/sub/a.bin";
    s.server
        .inject(path, Fault::CutAfter { bytes: 1024 * 1024 });
    let (job, _) = file_job(
        &params(&s, "sub/a.bin", &sha256_hex(&s.content)),
        Secrets::default(),
        None,
        s.staging.path(),
    );
    let summary = bundles::run(&job).await.expect("resumes and succeeds");
    assert_eq!(
        std::fs::read(s.dst.path().join("a.bin")).unwrap(),
        s.content
    );
    let requests = s.server.requests(path);
    assert_eq!(requests.len(), 2, "{requests:?}");
    let range = requests[1]
        .range
        .as_deref()
        .expect("the second request asks for a range");
    let offset: u64 = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(offset > 0 && offset <= 1024 * 1024, "{range}");
    assert_eq!(requests[1].status, 206);
    assert_eq!(
        summary.bytes,
        s.content.len() as u64,
        "no byte counted twice"
    );
}

#[tokio::test]
async fn missing_file_is_not_found_naming_the_url() {
    let s = setup(10, 8);
    let (job, _) = file_job(
        &params(&s, "sub/nope.bin", &sha256_hex(b"x")),
        Secrets::default(),
        None,
        s.staging.path(),
    );
    let error = bundles::run(&job).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(
        error
            .to_string()
            .contains(&s.server.url("files/sub/nope.bin")),
        "{error}"
    );
    assert!(files_in(s.dst.path()).is_empty());
}

#[tokio::test]
async fn basic_credentials_are_sent() {
    let s = setup(10, 9);
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("username"), "alice\n").unwrap();
    std::fs::write(secrets.path().join("password"), "pw\n").unwrap();
    let loaded = Secrets::load(secrets.path(), &secrets.path().join("none")).unwrap();
    let mut p = params(&s, "sub/a.bin", &sha256_hex(&s.content));
    p.retain(|(k, _)| *k != "srcSecret");
    p.push(("srcSecret", "true".into()));
    let (job, _) = file_job(&p, loaded, None, s.staging.path());
    bundles::run(&job).await.unwrap();
    let auth = s.server.requests("/files/sub/a.bin")[0]
        .authorization
        .clone();
    assert_eq!(auth.as_deref(), Some("Basic YWxpY2U6cHc="));
}

#[tokio::test]
async fn scanner_rejection_fails_and_publishes_nothing() {
    let s = setup(50_000, 10);
    let scanner =
        "sh -c 'echo \"scanning $1\"; echo \"Eicar-Test-Signature FOUND\" >&2; exit 1' scan {path}";
    let (job, _) = file_job(
        &params(&s, "sub/a.bin", &sha256_hex(&s.content)),
        Secrets::default(),
        Some(scanner),
        s.staging.path(),
    );
    let error = bundles::run(&job).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ScanFailed);
    assert!(
        error.to_string().contains("Eicar-Test-Signature FOUND"),
        "output tail in the message: {error}"
    );
    assert!(
        files_in(s.dst.path()).is_empty(),
        "{:?}",
        files_in(s.dst.path())
    );

    // A passing scanner sees the complete staged file.
    let expected_size = s.content.len();
    let scanner = format!("sh -c 'test $(wc -c < \"$1\") -eq {expected_size}' scan {{path}}");
    let (job, _) = file_job(
        &params(&s, "sub/a.bin", &sha256_hex(&s.content)),
        Secrets::default(),
        Some(&scanner),
        s.staging.path(),
    );
    bundles::run(&job).await.expect("the scanner passes");
    assert_eq!(files_in(s.dst.path()), ["a.bin"]);
}

#[tokio::test]
async fn dir_to_dir_and_missing_source_file() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let content = data(70_000, 11);
    std::fs::write(src.path().join("c.bin"), &content).unwrap();
    let p = |path: &str| {
        vec![
            ("srcType", "dir".to_string()),
            ("srcRemoteURL", src.path().display().to_string()),
            ("dstType", "dir".to_string()),
            ("dstRemoteURL", format!("file://{}", dst.path().display())),
            ("specPath", path.to_string()),
        ]
    };
    let (job, _) = file_job(&p("c.bin"), Secrets::default(), None, src.path());
    let summary = bundles::run(&job).await.unwrap();
    assert_eq!(
        summary.pushed[0].digest,
        format!("sha256:{}", sha256_hex(&content))
    );
    assert_eq!(std::fs::read(dst.path().join("c.bin")).unwrap(), content);

    let (job, _) = file_job(&p("missing.bin"), Secrets::default(), None, src.path());
    let error = bundles::run(&job).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(
        error
            .to_string()
            .contains(&src.path().join("missing.bin").display().to_string()),
        "{error}"
    );

    let (job, _) = file_job(&p("../etc/passwd"), Secrets::default(), None, src.path());
    assert_eq!(
        bundles::run(&job).await.unwrap_err().kind(),
        ErrorKind::InvalidParameter
    );
}

#[tokio::test]
async fn cancellation_during_a_backoff_stops_promptly_and_publishes_nothing() {
    let s = setup(10_000, 12);
    s.server.inject(
        "/files/sub/a.bin",
        Fault::Status {
            status: 503,
            retry_after_secs: Some(4),
        },
    );
    let (job, _) = file_job(
        &params(&s, "sub/a.bin", &sha256_hex(&s.content)),
        Secrets::default(),
        None,
        s.staging.path(),
    );
    let cancel = job.cancel.clone();
    let started = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let error = bundles::run(&job).await.unwrap_err();
    canceller.await.unwrap();
    assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
    assert!(
        started.elapsed().as_millis() < 3000,
        "stopped within the 4 s backoff: {:?}",
        started.elapsed()
    );
    assert!(files_in(s.dst.path()).is_empty());
    assert_eq!(
        s.server.requests("/files/sub/a.bin").len(),
        1,
        "no request after the cancel"
    );
}
