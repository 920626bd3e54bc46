//! The `imggen-mock` binary: its banner, its request log, the seed's Python client against
//! it, and a clean stop on Ctrl-C.

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::KEY;

const BINARY: &str = env!("CARGO_BIN_EXE_imggen-mock");

/// Starts the binary and reads its banner (bounded: a failure guard, not a delay).
async fn spawn(args: &[&str]) -> (Child, Vec<String>) {
    let mut child = Command::new(BINARY)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.starts_with("export RUNBASE_API_KEY=")
                || (line.starts_with("export RUNBASE_BASE_URL=") && !args.contains(&"--api-key"));
            banner.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the banner is printed");
    (child, banner)
}

async fn stop(mut child: Child) -> (std::process::ExitStatus, String) {
    let pid = child.id().expect("still running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("it stops on Ctrl-C")
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    (status, stderr)
}

fn python_with_requests() -> Result<(), String> {
    match std::process::Command::new("python3")
        .args(["-c", "import requests"])
        .output()
    {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "python3 has no `requests` ({})",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Err(format!("python3 is not available ({error})")),
    }
}

#[tokio::test]
async fn the_binary_serves_the_seed_python_client_logs_each_request_and_stops_on_ctrl_c() {
    let (child, banner) = spawn(&["--port", "0", "--api-key", KEY]).await;
    assert!(
        banner[0].starts_with("# imggen-mock listening on http://127.0.0.1:"),
        "{banner:?}"
    );
    let url = banner[1]
        .strip_prefix("export RUNBLOB_BASE_URL=")
        .expect("RUNBLOB_BASE_URL first")
        .to_owned();
    assert_eq!(
        banner[1..],
        [
            format!("export RUNBLOB_BASE_URL={url}"),
            format!("export GPTIMG_BASE_URL={url}"),
            format!("export RUNBASE_BASE_URL={url}"),
            format!("export RUNBLOB_API_KEY={KEY}"),
            format!("export GPTIMG_API_KEY={KEY}"),
            format!("export RUNBASE_API_KEY={KEY}"),
        ]
    );
    let health = crate::http_client()
        .get(format!("{url}/_mock/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    match python_with_requests() {
        Ok(()) => {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seed_python_client.py");
            let output = Command::new("python3")
                .arg(script)
                .env("RUNBLOB_BASE_URL", &url)
                .env("RUNBLOB_API_KEY", KEY)
                .output();
            let output = tokio::time::timeout(Duration::from_secs(120), output)
                .await
                .unwrap()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "the seed's Python client failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                stdout.contains("seed python clients: all flows passed"),
                "{stdout}"
            );
            assert!(stdout.contains("Price: $0.0123"), "{stdout}");
        }
        Err(why) => {
            let _ = writeln!(
                std::io::stderr(),
                "skipping the seed's Python client: {why}"
            );
            let created = crate::http_client()
                .post(format!("{url}/v1/chatgpt-images/generate"))
                .bearer_auth(KEY)
                .json(&serde_json::json!({"prompt": "A beautiful landscape with mountains"}))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201);
        }
    }

    let (status, stderr) = stop(child).await;
    assert!(status.success(), "{status:?}\n{stderr}");
    let label = imggen_mock::key_label(KEY);
    let logged = stderr
        .lines()
        .find(|line| line.contains("POST /v1/chatgpt-images/generate 201"))
        .unwrap_or_else(|| panic!("no request line in:\n{stderr}"));
    assert!(logged.contains(&format!("key={label}")), "{logged}");
    assert!(logged.contains("ms"), "{logged}");
    assert!(!stderr.contains(KEY), "the key is never logged:\n{stderr}");
    assert!(stderr.contains("GET /_mock/health 200"), "{stderr}");
}

#[tokio::test]
async fn flags_arm_faults_and_set_the_profile() {
    let (child, banner) = spawn(&[
        "--profile",
        "instant",
        "--fault",
        "runblob/create:maintenance",
        "--seed",
        "7",
    ])
    .await;
    assert!(banner[0].contains("profile instant, seed 7"), "{banner:?}");
    let url = banner[1]
        .strip_prefix("export RUNBLOB_BASE_URL=")
        .unwrap()
        .to_owned();
    let create = || {
        crate::http_client()
            .post(format!("{url}/v1/chatgpt-images/generate"))
            .bearer_auth(KEY)
            .json(&serde_json::json!({"prompt": "x"}))
            .send()
    };
    assert_eq!(create().await.unwrap().status(), 503);
    let created: serde_json::Value = create().await.unwrap().json().await.unwrap();
    let status: serde_json::Value = crate::http_client()
        .get(format!(
            "{url}/v1/chatgpt-images/generations/{}",
            created["task_uuid"].as_str().unwrap()
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "completed", "instant profile");
    let (status, _) = stop(child).await;
    assert!(status.success());
}

#[tokio::test]
async fn bad_flags_and_a_taken_port_fail_with_a_message() {
    let output = Command::new(BINARY)
        .args(["--fault", "runblob/create:explode"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"explode\" is not a fault kind"),
        "{stderr}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(BINARY)
        .args(["--port", &port])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "imggen-mock: could not listen on 127.0.0.1:{port}: "
        )),
        "{stderr}"
    );
}
