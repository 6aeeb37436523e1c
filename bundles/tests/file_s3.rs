//! `arc-file` with a real S3 server (`s3s-fs`): s3 → dir, dir → s3 (read back through the S3
//! API), http → s3 with a wrong checksum (nothing published), wrong credentials, missing
//! objects, and a scanner in front of an S3 upload.

mod file_support;

use arc_tests::http_server::HttpFileServer;
use arc_tests::s3::S3Server;
use bundles::ErrorKind;
use file_support::*;

const BUCKET: &str = "artifacts";

fn start() -> Option<S3Server> {
    S3Server::start("arc-file S3 tests", &[BUCKET])
}

#[tokio::test]
async fn s3_to_dir() {
    let Some(s3) = start() else { return };
    let client = s3_client(&s3, BUCKET);
    let content = data(9 * 1024 * 1024 + 5, 21);
    s3_put(&client, "in/big.bin", content.clone()).await;
    let tmp = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let secrets = s3_secrets(&s3, tmp.path(), true, false);
    let p = vec![
        ("srcType", "s3".to_string()),
        (
            "srcRemoteURL",
            format!(
                "s3://{BUCKET}/in?endpoint={}&region=us-east-1&pathStyle=true",
                s3.endpoint()
            ),
        ),
        ("srcSecret", "true".to_string()),
        ("dstType", "dir".to_string()),
        ("dstRemoteURL", dst.path().display().to_string()),
        ("specPath", "big.bin".to_string()),
        ("specSha256", sha256_hex(&content)),
    ];
    let (job, _) = file_job(&p, secrets, None, tmp.path());
    let summary = bundles::run(&job).await.expect("s3 → dir");
    assert_eq!(summary.bytes, content.len() as u64);
    assert_eq!(std::fs::read(dst.path().join("big.bin")).unwrap(), content);
}

#[tokio::test]
async fn dir_to_s3_then_read_back() {
    let Some(s3) = start() else { return };
    let client = s3_client(&s3, BUCKET);
    let src = tempfile::tempdir().unwrap();
    // Larger than one multipart part, so the upload has several parts.
    let content = data(19 * 1024 * 1024 + 3, 22);
    std::fs::write(src.path().join("payload.tar"), &content).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let secrets = s3_secrets(&s3, tmp.path(), false, true);
    let sha = sha256_hex(&content);
    let p = vec![
        ("srcType", "dir".to_string()),
        ("srcRemoteURL", src.path().display().to_string()),
        ("dstType", "s3".to_string()),
        ("dstRemoteURL", format!("{}/{BUCKET}/drop", s3.endpoint())),
        ("dstSecret", "true".to_string()),
        ("specPath", "payload.tar".to_string()),
        ("specSha256", sha.clone()),
        ("specOverride", "2026/payload.tar".to_string()),
    ];
    let (job, events) = file_job(&p, secrets.clone(), None, tmp.path());
    let summary = bundles::run(&job).await.expect("dir → s3");
    assert_eq!(
        summary.pushed[0].reference,
        format!("s3://{BUCKET}/drop/2026/payload.tar")
    );
    assert!(events.events().iter().any(|e| e["event"] == "pushed"));
    let back = s3_get(&client, "drop/2026/payload.tar")
        .await
        .expect("the object exists");
    assert_eq!(back.len(), content.len());
    assert_eq!(sha256_hex(&back), sha, "read back through the S3 API");
    assert_eq!(s3_keys(&client).await, ["drop/2026/payload.tar"]);

    // The object records its checksum, so a re-run skips it.
    let (job, _) = file_job(&p, secrets, None, tmp.path());
    let summary = bundles::run(&job).await.unwrap();
    assert_eq!((summary.bytes, summary.skipped), (0, 1));
}

#[tokio::test]
async fn wrong_checksum_into_s3_publishes_nothing() {
    let Some(s3) = start() else { return };
    let client = s3_client(&s3, BUCKET);
    let root = tempfile::tempdir().unwrap();
    let content = data(11 * 1024 * 1024, 23);
    std::fs::write(root.path().join("x.iso"), &content).unwrap();
    let http = HttpFileServer::start(root.path());
    let tmp = tempfile::tempdir().unwrap();
    let secrets = s3_secrets(&s3, tmp.path(), false, true);
    let p = vec![
        ("srcType", "http".to_string()),
        ("srcRemoteURL", http.url("")),
        ("dstType", "s3".to_string()),
        (
            "dstRemoteURL",
            format!("s3://{BUCKET}?endpoint={}", s3.endpoint()),
        ),
        ("dstSecret", "true".to_string()),
        ("specPath", "x.iso".to_string()),
        ("specSha256", sha256_hex(b"not it")),
    ];
    let (job, _) = file_job(&p, secrets, None, tmp.path());
    let error = bundles::run(&job).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ChecksumMismatch, "{error}");
    assert!(s3_keys(&client).await.is_empty(), "no object was published");
    assert!(s3_get(&client, "x.iso").await.is_none());
}

#[tokio::test]
async fn wrong_credentials_name_the_endpoint() {
    let Some(s3) = start() else { return };
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), b"data").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dst_secret = tmp.path().join("dst");
    std::fs::create_dir_all(&dst_secret).unwrap();
    std::fs::write(dst_secret.join("accessKeyID"), arc_tests::s3::ACCESS_KEY_ID).unwrap();
    std::fs::write(dst_secret.join("secretAccessKey"), "definitely-wrong").unwrap();
    let secrets = bundles::Secrets::load(&tmp.path().join("src"), &dst_secret).unwrap();
    let p = vec![
        ("srcType", "dir".to_string()),
        ("srcRemoteURL", src.path().display().to_string()),
        ("dstType", "s3".to_string()),
        ("dstRemoteURL", format!("{}/{BUCKET}", s3.endpoint())),
        ("dstSecret", "true".to_string()),
        ("specPath", "f".to_string()),
        ("specSha256", sha256_hex(b"data")),
    ];
    let (job, _) = file_job(&p, secrets, None, tmp.path());
    let error = bundles::run(&job).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&s3.endpoint()),
        "names the endpoint: {message}"
    );
    assert!(message.contains(BUCKET), "names the bucket: {message}");
    assert!(
        !message.contains("definitely-wrong"),
        "never shows the secret: {message}"
    );
}

#[tokio::test]
async fn missing_object_is_not_found_naming_the_key() {
    let Some(s3) = start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let secrets = s3_secrets(&s3, tmp.path(), true, false);
    let p = vec![
        ("srcType", "s3".to_string()),
        ("srcRemoteURL", format!("{}/{BUCKET}/pre", s3.endpoint())),
        ("srcSecret", "true".to_string()),
        ("dstType", "dir".to_string()),
        ("dstRemoteURL", dst.path().display().to_string()),
        ("specPath", "absent.bin".to_string()),
    ];
    let (job, _) = file_job(&p, secrets, None, tmp.path());
    let error = bundles::run(&job).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(
        error
            .to_string()
            .contains(&format!("s3://{BUCKET}/pre/absent.bin")),
        "{error}"
    );
    assert!(files_in(dst.path()).is_empty());
}

#[tokio::test]
async fn scanner_guards_s3_uploads() {
    let Some(s3) = start() else { return };
    let client = s3_client(&s3, BUCKET);
    let src = tempfile::tempdir().unwrap();
    let content = data(300_000, 24);
    std::fs::write(src.path().join("s.bin"), &content).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let secrets = s3_secrets(&s3, tmp.path(), false, true);
    let p = vec![
        ("srcType", "dir".to_string()),
        ("srcRemoteURL", src.path().display().to_string()),
        ("dstType", "s3".to_string()),
        ("dstRemoteURL", format!("{}/{BUCKET}", s3.endpoint())),
        ("dstSecret", "true".to_string()),
        ("specPath", "s.bin".to_string()),
        ("specSha256", sha256_hex(&content)),
    ];
    let (job, _) = file_job(&p, secrets.clone(), Some("false"), staging.path());
    let error = bundles::run(&job).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ScanFailed, "{error}");
    assert!(s3_keys(&client).await.is_empty(), "nothing published");
    assert!(
        files_in(staging.path()).is_empty(),
        "staging cleaned up: {:?}",
        files_in(staging.path())
    );

    let (job, _) = file_job(&p, secrets, Some("test -s {path}"), staging.path());
    bundles::run(&job).await.expect("the scanner passes");
    assert_eq!(s3_get(&client, "s.bin").await.expect("published"), content);
    assert!(files_in(staging.path()).is_empty(), "staging cleaned up");
}
