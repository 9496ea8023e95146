//! `/docs` in a real browser: headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs). The page must render the `POST /vorgang`
//! operation from `/openapi.json` with this service's own Swagger UI files, expand it and show
//! the published example request. A screenshot is saved under `target/`.
//!
//! A missing browser or driver fails the test with the command that installs them: it never
//! passes without having looked at the page.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed assertion

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use support::{KillOnDrop, free_port};
use thirtyfour::prelude::*;
use vorgang_server::settings::Settings;
use vorgang_server::startup::Application;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL_HINT: &str = "the browser test needs Debian's Chromium and its WebDriver: \
                            apt-get update && apt-get install -y chromium chromium-driver \
                            (.ci/run installs them when missing)";

/// The Swagger UI block of `POST /vorgang` (`operations-{tag}-{operationId}`).
const OPERATION: &str = "#operations-Vorgang-importVorgang";

/// Starts chromedriver on a free port and waits until it says it is ready.
async fn start_chromedriver() -> (KillOnDrop, String) {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: {INSTALL_HINT}"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{CHROMEDRIVER} does not start ({e}): {INSTALL_HINT}"));
    let mut driver = KillOnDrop(child);
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = http.get(format!("{url}/status")).send().await
            && let Ok(status) = response.json::<serde_json::Value>().await
            && status["value"]["ready"] == true
        {
            return (driver, url);
        }
        assert!(
            driver.0.try_wait().unwrap().is_none(),
            "chromedriver exited: {INSTALL_HINT}"
        );
        assert!(Instant::now() < deadline, "chromedriver did not get ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The service on a random port: embedded sandbox, SQLite in `dir`.
async fn start_service(dir: &Path) -> (String, actix_web::dev::ServerHandle) {
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        database_url: SecretString::from(format!("sqlite://{}/vorgang.db?mode=rwc", dir.display())),
        ..Settings::default()
    };
    let application = Application::build(settings).await.unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    let handle = application.handle();
    tokio::spawn(application.run_until_stopped());
    (address, handle)
}

fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let dir = target.join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("docs-post-vorgang.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_post_vorgang_with_its_example_in_chromium() {
    let (_chromedriver, driver_url) = start_chromedriver().await;
    let dir = tempfile::tempdir().unwrap();
    let (address, server) = start_service(dir.path()).await;
    let profile = tempfile::tempdir().unwrap();

    let mut capabilities = DesiredCapabilities::chrome();
    capabilities.set_binary(CHROMIUM).unwrap();
    for arg in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,2200",
        &format!("--user-data-dir={}", profile.path().display()),
    ] {
        capabilities.add_arg(arg).unwrap();
    }
    let browser = WebDriver::new(&driver_url, capabilities)
        .await
        .unwrap_or_else(|e| panic!("no Chromium session ({e}): {INSTALL_HINT}"));

    let outcome = async {
        browser.goto(format!("{address}/docs")).await?;
        // Swagger UI renders after loading its bundle and /openapi.json: wait for the block.
        let operation = browser
            .query(By::Css(OPERATION))
            .wait(Duration::from_secs(30), Duration::from_millis(200))
            .first()
            .await?;
        let summary = operation.find(By::Css(".opblock-summary")).await?;
        let summary_text = summary.text().await?;
        assert!(summary_text.contains("POST"), "{summary_text}");
        assert!(summary_text.contains("/vorgang"), "{summary_text}");
        summary.scroll_into_view().await?;
        summary.click().await?;

        // Expanded: the request body section with the published example.
        let example = browser
            .query(By::Css(format!(
                "{OPERATION} .opblock-section-request-body pre"
            )))
            .wait(Duration::from_secs(20), Duration::from_millis(200))
            .first()
            .await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let text = loop {
            let text = example.text().await?;
            if text.contains("leadquelle") || Instant::now() > deadline {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        for expected in [
            "\"vorgang\"",
            "\"leadquelle\"",
            "\"antragsteller1\"",
            "\"tippgeber\"",
        ] {
            assert!(text.contains(expected), "{expected} not shown:\n{text}");
        }
        // The window from the operation's head down: summary, parameters, the example.
        browser
            .execute(
                "arguments[0].scrollIntoView({block: 'start'});",
                vec![operation.to_json()?],
            )
            .await?;
        let path = screenshot_path();
        browser.screenshot(&path).await?;
        let png = std::fs::read(&path).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{}",
            png.len()
        );
        eprintln!("screenshot: {}", path.display());
        Ok::<(), WebDriverError>(())
    }
    .await;
    // Quit the browser whatever happened, then report.
    let quit = browser.quit().await;
    server.stop(true).await;
    outcome.unwrap();
    quit.unwrap();
}
