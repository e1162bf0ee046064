//! A real browser for the pages' tests: Debian's headless Chromium, driven
//! over WebDriver by `chromedriver` (both from the system's packages, which
//! `.ci/run` installs), on a loopback port. Screenshots go to
//! `target/screenshots/` for people to look at; they are not committed.

use crate::net::free_port;
use crate::{WAIT, eventually};
pub use fantoccini::Locator;
pub use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A browser session; its chromedriver is killed on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots are saved.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of
    /// `width` × `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        eventually(WAIT, "chromedriver answers", || async {
            crate::net::client()
                .get(&status)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}")],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a Chromium session");
        // The window size flag sets the outer size; make the page's the one asked for.
        let _ = client.set_window_size(width, height).await;
        Browser { client, driver }
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    /// The current path (and query).
    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.expect("current URL");
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    /// Types `text` into the field named `name` (replacing what it holds).
    pub async fn fill(&self, name: &str, text: &str) {
        let el = self
            .client
            .find(Locator::Css(&format!("[name='{name}']")))
            .await
            .unwrap_or_else(|e| panic!("no field {name}: {e}"));
        el.clear().await.expect("clear");
        el.send_keys(text).await.expect("type");
    }

    /// Clicks the element `css` matches.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing matches {css}: {e}"))
            .click()
            .await
            .expect("click");
    }

    /// The text of the first element `css` matches, if any.
    pub async fn text(&self, css: &str) -> Option<String> {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => el.text().await.ok(),
            Err(_) => None,
        }
    }

    /// Waits until the element `css` matches has text containing `want`,
    /// regardless of case (the text is as rendered, after CSS
    /// `text-transform`).
    pub async fn wait_text(&self, css: &str, want: &str, limit: Duration) -> String {
        let want = want.to_lowercase();
        eventually(limit, &format!("{css} to show {want:?}"), || async {
            self.text(css)
                .await
                .filter(|t| t.to_lowercase().contains(&want))
        })
        .await
    }

    /// Saves a screenshot as `target/screenshots/{name}.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

/// Debian names the binary `chromium`.
fn chromium() -> String {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(p).exists() {
            return p.to_owned();
        }
    }
    "chromium".to_owned()
}
