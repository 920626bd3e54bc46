//! The gallery page (`DIR/index.html`) as a person sees it: opened from `file://` in headless
//! Chromium, driven through chromedriver (the `fantoccini` crate). Every thumbnail of a done
//! request has loaded, the totals are those of `results.jsonl`, the status filter hides and
//! shows the right cards, a click opens the large view, and a prompt holding `<script>` is
//! shown as text. A screenshot of the 30-image run is kept under `target/tmp/gallery/`.
//!
//! Debian's `chromium` and `chromium-driver` packages provide the browser and its driver
//! (`.ci/run` installs them). Where they are missing the test says so loudly and passes —
//! unless `IMGGEN_REQUIRE_BROWSER=1`, as CI sets it, where a run that could not use a browser
//! fails.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use imggen_mock::{Fault, FaultKind, Operation, Provider};
use serde_json::{Value, json};

use crate::{Env, assert_code, instant, stderr};

/// The prompt that must stay text.
const HOSTILE: &str = "<script>window.__pwned = 1</script> a cat & \"friends\"";

#[tokio::test]
async fn the_gallery_shows_a_batch_in_a_real_browser() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let env = Env::start(instant()).await;
    // runblob's tasks fail (refunded); runbase's creates lose their answer (unknown).
    env.server
        .add_fault(
            Fault::new(FaultKind::TaskFailure {
                code: "MODERATION_FAILED".into(),
            })
            .provider(Provider::Runblob)
            .operation(Operation::Create)
            .always(),
        )
        .unwrap();
    env.server
        .add_fault(
            Fault::new(FaultKind::DropConnection)
                .provider(Provider::Runbase)
                .operation(Operation::Create)
                .always(),
        )
        .unwrap();
    let mut lines = Vec::new();
    for n in 1..=30 {
        let prompt = if n == 7 {
            HOSTILE.to_owned()
        } else {
            format!("a watercolor of animal number {n}")
        };
        lines.push(json!({"id": format!("img{n:02}"), "prompt": prompt, "provider": "gptimg"}));
    }
    for n in 1..=3 {
        lines
            .push(json!({"id": format!("refused{n}"), "prompt": "a storm", "provider": "runblob"}));
        lines.push(json!({"id": format!("lost{n}"), "prompt": "a comet", "provider": "runbase"}));
    }
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(env.dir.path().join("prompts.jsonl"), text.join("\n")).unwrap();
    let output = env
        .run(&["batch", "prompts.jsonl", "--poll-interval", "0.05"])
        .await;
    // Unknown outcomes end a batch with exit 6; the page is written all the same.
    assert_code(&output, 6);
    let out = env.out_dir();
    assert!(
        stderr(&output).contains("; see them: open imggen-out/index.html"),
        "{}",
        stderr(&output)
    );
    let results = read_results(&out);
    let count = |status: &str| {
        results
            .iter()
            .filter(|line| line["status"] == status)
            .count()
    };
    assert_eq!(
        (count("done"), count("failed"), count("unknown")),
        (30, 3, 3)
    );

    let browser = driver.connect().await;
    let url = format!("file://{}", out.join("index.html").display());
    browser.goto(&url).await.unwrap();

    // Every done request's thumbnail has loaded (waited on the images' own load events).
    let widths = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const images = Array.from(document.querySelectorAll('.card[data-status=done] .thumbs img'));
             Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.onload = r; i.onerror = r; })))
               .then(() => done(images.map(i => i.naturalWidth)));",
            vec![],
        )
        .await
        .unwrap();
    let widths: Vec<u64> = serde_json::from_value(widths).unwrap();
    assert_eq!(widths.len(), 30);
    assert!(widths.iter().all(|width| *width > 0), "{widths:?}");

    // The totals are results.jsonl's.
    let totals = browser
        .execute(
            "return Object.fromEntries(Array.from(document.querySelectorAll('[data-total]'))
               .map(t => [t.dataset.total, t.querySelector('b').textContent]));",
            vec![],
        )
        .await
        .unwrap();
    let images: usize = results
        .iter()
        .map(|line| line["files"].as_array().unwrap().len())
        .sum();
    assert_eq!(totals["requests"], results.len().to_string());
    assert_eq!(totals["done"], "30");
    assert_eq!(totals["failed"], "3");
    assert_eq!(totals["unknown"], "3");
    assert_eq!(totals["images"], images.to_string());
    assert_eq!(
        totals["cost"], "60 credits",
        "30 gptimg images at 2 credits"
    );

    // The filter: only failed cards, then every card again.
    assert_eq!(visible_cards(&browser).await.len(), 36);
    click(&browser, "label[for=filter-failed]").await;
    let failed = visible_cards(&browser).await;
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed.iter().all(|(_, status)| status == "failed"));
    click(&browser, "label[for=filter-unknown]").await;
    let unknown = visible_cards(&browser).await;
    assert_eq!(
        unknown
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        ["lost1", "lost2", "lost3"]
    );
    click(&browser, "label[for=filter-all]").await;
    assert_eq!(visible_cards(&browser).await.len(), 36);

    // The hostile prompt is text on the page, and ran nothing.
    let shown = browser
        .find(Locator::Css(".card[data-id=img07] .prompt"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(shown, HOSTILE);
    let ran = browser
        .execute(
            "return [window.__pwned === undefined, document.scripts.length];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(ran, json!([true, 1]), "only the page's own script");

    // A click on a thumbnail opens its large view.
    click(&browser, ".card[data-id=img03] .thumbs a").await;
    let view = browser
        .find(Locator::Css(".view:target img"))
        .await
        .unwrap();
    assert!(view.is_displayed().await.unwrap());
    let large = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const image = document.querySelector('.view:target img');
             (image.complete ? Promise.resolve() : new Promise(r => { image.onload = r; image.onerror = r; }))
               .then(() => done(image.naturalWidth));",
            vec![],
        )
        .await
        .unwrap();
    assert!(large.as_u64().unwrap() > 0);
    click(&browser, ".view:target .close").await;

    // The screenshot a person would take, kept as the test's artifact.
    browser.set_window_size(1280, 1000).await.unwrap();
    let shot = browser.screenshot().await.unwrap();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gallery");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("batch-30-images.png"), &shot).unwrap();
    assert!(shot.starts_with(b"\x89PNG"));
    browser.close().await.unwrap();
}

#[tokio::test]
async fn generate_writes_a_gallery_when_asked() {
    let env = Env::start(instant()).await;
    let output = env
        .run(&[
            "generate",
            "a lighthouse <at> dusk",
            "--provider",
            "gptimg",
            "-n",
            "2",
            "--gallery",
            "--poll-interval",
            "0.05",
            "--json",
        ])
        .await;
    assert_code(&output, 0);
    let json = crate::json_output(&output);
    // Named as the images are: under --out as given.
    assert_eq!(json["gallery"], "imggen-out/index.html");
    let page_path = env.out_dir().join("index.html");
    let page = std::fs::read_to_string(&page_path).unwrap();
    assert!(page.contains("a lighthouse &lt;at&gt; dusk"), "{page}");
    for image in json["images"].as_array().unwrap() {
        let path = Path::new(image["path"].as_str().unwrap());
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(page.contains(&format!("<img src=\"{name}\"")), "{name}");
    }
    assert!(page.contains("data-total=\"done\"><b>1</b>"));
    assert!(page.contains("data-total=\"images\"><b>2</b>"));

    // Without --gallery, no page.
    let dir = tempfile::tempdir().unwrap();
    let plain = env
        .run(&[
            "generate",
            "a fox",
            "--provider",
            "gptimg",
            "--out",
            dir.path().to_str().unwrap(),
            "--poll-interval",
            "0.05",
        ])
        .await;
    assert_code(&plain, 0);
    assert!(!dir.path().join("index.html").exists());
}

#[tokio::test]
async fn a_batch_without_a_gallery_writes_no_page() {
    let env = Env::start(instant()).await;
    std::fs::write(
        env.dir.path().join("prompts.jsonl"),
        json!({"prompt": "a fox", "provider": "gptimg"}).to_string(),
    )
    .unwrap();
    let output = env
        .run(&[
            "batch",
            "prompts.jsonl",
            "--no-gallery",
            "--poll-interval",
            "0.05",
            "--json",
        ])
        .await;
    assert_code(&output, 0);
    assert!(crate::batch_json(&output)["gallery"].is_null());
    assert!(!env.out_dir().join("index.html").exists());
    assert!(env.out_dir().join("results.jsonl").exists());
}

/// The ids and statuses of the cards a person can see.
async fn visible_cards(browser: &Client) -> Vec<(String, String)> {
    let cards = browser
        .execute(
            "return Array.from(document.querySelectorAll('.card'))
               .filter(c => c.offsetParent !== null)
               .map(c => [c.dataset.id, c.dataset.status]);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(cards).unwrap()
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{css}: {error}"))
        .click()
        .await
        .unwrap_or_else(|error| panic!("click {css}: {error}"));
}

fn read_results(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// chromedriver on a free port, stopped when dropped, with a fresh Chromium profile.
struct Driver {
    process: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver, and returns once it says it listens — or `None`, loudly, when
    /// there is no browser here (a failure when `IMGGEN_REQUIRE_BROWSER=1`).
    fn start() -> Option<Driver> {
        let missing = ["chromedriver", "chromium"]
            .into_iter()
            .filter(|program| which(program).is_none())
            .collect::<Vec<_>>();
        if !missing.is_empty() {
            let message = format!(
                "THE GALLERY'S BROWSER TEST DID NOT RUN: {} not found (Debian: apt-get install chromium chromium-driver)",
                missing.join(" and ")
            );
            assert!(
                std::env::var("IMGGEN_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "IMGGEN_REQUIRE_BROWSER=1 but {message}"
            );
            // Written to stderr itself, past the harness's capture: a test that did not run
            // must be seen.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "\n*** {message} ***\n");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        // It says when it listens: the signal to go on, not a guess at how long it takes.
        // The rest of what it says is read (and dropped) so it never writes to a closed pipe.
        let stdout = process.stdout.take().unwrap();
        let (ready, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut said = String::new();
            let mut ready = Some(ready);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("started successfully")
                    && let Some(ready) = ready.take()
                {
                    let _ = ready.send(Ok(()));
                }
                if ready.is_some() {
                    said.push_str(&line);
                    said.push('\n');
                }
            }
            if let Some(ready) = ready {
                let _ = ready.send(Err(said));
            }
        });
        match listening.recv() {
            Ok(Ok(())) => Some(Driver {
                process,
                port,
                profile: tempfile::tempdir().unwrap(),
            }),
            Ok(Err(said)) => panic!("chromedriver ended without listening:\n{said}"),
            Err(_) => panic!("chromedriver's output could not be read"),
        }
    }

    /// A browser session: headless Chromium, as the machine's own probe starts it.
    async fn connect(&self) -> Client {
        let chrome = json!({
            "binary": which("chromium").unwrap(),
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", self.profile.path().display()),
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), chrome);
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session starts")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Where `program` is on the PATH.
fn which(program: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
            .map(|path| path.display().to_string())
    })
}
