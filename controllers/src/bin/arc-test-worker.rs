//! A stand-in for `arcd worker`, used only by the controllers' tests and benchmark. It takes the
//! same arguments (`worker <template> --param name=value … --secrets-src DIR --secrets-dst DIR`)
//! and behaves as the parameter `specTestMode` says (an artifact's `spec.testMode`):
//! - `succeed` (default): reports progress and a summary on stdout, exits 0;
//! - `fail`: writes `specTestLog` lines (default one) to stderr, a failed summary, exits 3;
//! - `hang`: sleeps until killed;
//! - `crash`: aborts (killed by SIGABRT);
//! - `sleep:<ms>` then succeeds.
//!
//! With `specTestRecord=<file>` it appends a JSON line when it starts (its arguments, the files
//! it found in the secret directories with mode and content, its process id, the time) and
//! another when it ends normally.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn secret_files(dir: &str) -> serde_json::Value {
    let mut files = serde_json::Map::new();
    let mut dir_mode = 0;
    if let Ok(meta) = std::fs::metadata(dir) {
        dir_mode = meta.permissions().mode() & 0o777;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            let content = std::fs::read_to_string(&path).unwrap_or_default();
            files.insert(
                entry.file_name().to_string_lossy().into_owned(),
                serde_json::json!({ "mode": format!("{mode:o}"), "content": content }),
            );
        }
    }
    serde_json::json!({ "dir": dir, "dirMode": format!("{dir_mode:o}"), "files": files })
}

fn now_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn record_end(params: &BTreeMap<String, String>) {
    if let Some(record) = params.get("specTestRecord") {
        let line = serde_json::json!({ "event": "end", "atMillis": now_millis(), "pid": std::process::id() });
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(record))
        {
            let _ = file.write_all(format!("{line}\n").as_bytes());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("worker") || args.len() < 2 {
        eprintln!(
            "usage: arc-test-worker worker <template> --param name=value ... --secrets-src DIR --secrets-dst DIR"
        );
        std::process::exit(64);
    }
    let template = args[1].clone();
    let mut params = BTreeMap::new();
    let mut src = String::new();
    let mut dst = String::new();
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().cloned().unwrap_or_default();
        match flag.as_str() {
            "--param" => {
                let (k, v) = value.split_once('=').unwrap_or((value.as_str(), ""));
                params.insert(k.to_string(), v.to_string());
            }
            "--secrets-src" => src = value,
            "--secrets-dst" => dst = value,
            other => {
                eprintln!("unknown flag {other}");
                std::process::exit(64);
            }
        }
    }
    if let Some(record) = params.get("specTestRecord") {
        let line = serde_json::json!({
            "event": "start",
            "atMillis": now_millis(),
            "pid": std::process::id(),
            "template": template,
            "params": params,
            "args": args,
            "src": secret_files(&src),
            "dst": secret_files(&dst),
        });
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(record))
            .expect("record file");
        // One write per line: appends from parallel workers never interleave.
        file.write_all(format!("{line}\n").as_bytes())
            .expect("write record");
    }
    let mode = params
        .get("specTestMode")
        .cloned()
        .unwrap_or_else(|| "succeed".into());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        r#"{{"event":"start","template":"{template}","artifact":"test"}}"#
    );
    if let Some(ms) = mode.strip_prefix("sleep:") {
        std::thread::sleep(std::time::Duration::from_millis(ms.parse().unwrap_or(0)));
    }
    match mode.split(':').next().unwrap_or_default() {
        "fail" => {
            let lines: usize = params
                .get("specTestLog")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            for i in 0..lines {
                eprintln!("log line {i}");
            }
            eprintln!("error: the test worker was told to fail");
            let _ = writeln!(
                out,
                r#"{{"event":"summary","ok":false,"bytes":0,"blobs":0,"skipped":0,"pushed":[],"duration_ms":1,"error":{{"kind":"invalid_parameter","message":"told to fail"}}}}"#
            );
            record_end(&params);
            std::process::exit(3);
        }
        "hang" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        "crash" => std::process::abort(),
        _ => {
            let _ = writeln!(
                out,
                r#"{{"event":"blob","digest":"sha256:1111","bytes":42,"status":"copied"}}"#
            );
            let _ = writeln!(
                out,
                r#"{{"event":"pushed","reference":"test:1","digest":"sha256:2222"}}"#
            );
            let _ = writeln!(
                out,
                r#"{{"event":"summary","ok":true,"bytes":42,"blobs":1,"skipped":0,"pushed":[{{"reference":"test:1","digest":"sha256:2222"}}],"duration_ms":1}}"#
            );
            record_end(&params);
        }
    }
}
