//! A small driver of real headless Chromium over the DevTools protocol, for tests of pages:
//! navigate, evaluate JavaScript, click and wait for the next page, type and press keys,
//! take screenshots. The browser resolves no host but loopback (`--host-resolver-rules`), so a
//! page under test can never reach the internet, and it is killed when the [`Browser`] drops.
//!
//! ```no_run
//! # async fn demo() {
//! let mut browser = kontosynk_testbed::browser::Browser::launch().await.unwrap();
//! browser.navigate("http://127.0.0.1:8080/").await.unwrap();
//! let title = browser.eval("document.title").await.unwrap();
//! browser.screenshot(&kontosynk_testbed::browser::artefact_dir("demo").join("page.png")).await.unwrap();
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;
use tokio_tungstenite::tungstenite::Message;

/// The longest one DevTools command or page load may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why driving the browser failed.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// Chromium could not be started or did not announce its DevTools endpoint.
    #[error("cannot start chromium (apt-get install chromium): {0}")]
    Launch(String),
    /// The DevTools WebSocket failed.
    #[error("DevTools connection: {0}")]
    Connection(#[from] tokio_tungstenite::tungstenite::Error),
    /// A command answered with an error, or an evaluation threw.
    #[error("DevTools {method}: {message}")]
    Command {
        /// The method called.
        method: String,
        /// The error.
        message: String,
    },
    /// A command or page load took too long.
    #[error("{0} took longer than {COMMAND_TIMEOUT:?}")]
    Timeout(String),
    /// Writing an artefact failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Chromium with one page (tab) attached.
pub struct Browser {
    child: tokio::process::Child,
    _profile: tempfile::TempDir,
    socket: Socket,
    session: String,
    next_id: u64,
}

impl Browser {
    /// Starts `chromium` headless (a 1280×900 window, a fresh profile) and opens a page.
    pub async fn launch() -> Result<Self, BrowserError> {
        let profile = tempfile::tempdir().map_err(|e| BrowserError::Launch(e.to_string()))?;
        let mut child = tokio::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                // Nothing but loopback resolves: a page can load no third-party resource.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BrowserError::Launch(e.to_string()))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let endpoint = tokio::time::timeout(COMMAND_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("ws://") {
                    return Some(line[at..].trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| BrowserError::Launch("no \"DevTools listening on ws://…\" line".into()))?;
        // Keep draining stderr so the browser never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (socket, _) = tokio_tungstenite::connect_async(endpoint.as_str()).await?;
        let mut browser = Self {
            child,
            _profile: profile,
            socket,
            session: String::new(),
            next_id: 0,
        };
        let target = browser
            .command("Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let target_id = target["targetId"].as_str().unwrap_or_default().to_owned();
        let attached = browser
            .command(
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        browser.session = attached["sessionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        browser.command("Page.enable", json!({})).await?;
        browser
            .command(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
            )
            .await?;
        Ok(browser)
    }

    /// Sends one command (to the page once attached) and waits for its answer; events in
    /// between are skipped.
    pub async fn command(&mut self, method: &str, params: Value) -> Result<Value, BrowserError> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket.send(Message::text(message.to_string())).await?;
        let answer = tokio::time::timeout(COMMAND_TIMEOUT, async {
            while let Some(frame) = self.socket.next().await {
                let Message::Text(text) = frame? else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if value["id"].as_u64() == Some(id) {
                    return Ok(Some(value));
                }
            }
            Ok::<_, BrowserError>(None)
        })
        .await
        .map_err(|_| BrowserError::Timeout(method.to_owned()))??
        .ok_or_else(|| BrowserError::Command {
            method: method.to_owned(),
            message: "the browser closed the connection".into(),
        })?;
        if let Some(error) = answer.get("error") {
            return Err(BrowserError::Command {
                method: method.to_owned(),
                message: error.to_string(),
            });
        }
        Ok(answer["result"].clone())
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its JSON value.
    pub async fn eval(&mut self, expression: &str) -> Result<Value, BrowserError> {
        let result = self
            .command(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(BrowserError::Command {
                method: "Runtime.evaluate".into(),
                message: format!("{expression}: {exception}"),
            });
        }
        Ok(result["result"]["value"].clone())
    }

    /// Opens `url` and waits until the page has loaded.
    pub async fn navigate(&mut self, url: &str) -> Result<(), BrowserError> {
        let before = self.page_identity().await?;
        let result = self.command("Page.navigate", json!({ "url": url })).await?;
        if let Some(error) = result.get("errorText").and_then(Value::as_str) {
            return Err(BrowserError::Command {
                method: "Page.navigate".into(),
                message: format!("{url}: {error}"),
            });
        }
        self.wait_for_new_page(&before).await
    }

    /// Reloads the page and waits for it.
    pub async fn reload(&mut self) -> Result<(), BrowserError> {
        let before = self.page_identity().await?;
        self.command("Page.reload", json!({})).await?;
        self.wait_for_new_page(&before).await
    }

    /// Runs `action` (JavaScript that starts a navigation, e.g. a click) and waits until the
    /// next page has loaded.
    pub async fn and_wait(&mut self, action: &str) -> Result<(), BrowserError> {
        let before = self.page_identity().await?;
        self.eval(action).await?;
        self.wait_for_new_page(&before).await
    }

    /// Clicks the first element matching the CSS `selector` and waits for the next page.
    pub async fn click_and_wait(&mut self, selector: &str) -> Result<(), BrowserError> {
        let selector = serde_json::to_string(selector).unwrap_or_default();
        self.and_wait(&format!("document.querySelector({selector}).click()"))
            .await
    }

    /// Presses one key (e.g. `Tab`, `Enter`) as a keyboard would, to the focused element.
    pub async fn press_key(&mut self, key: &str) -> Result<(), BrowserError> {
        let (code, text, vk) = match key {
            "Enter" => ("Enter", "\r", 13),
            "Tab" => ("Tab", "", 9),
            "Space" | " " => ("Space", " ", 32),
            other => (other, "", 0),
        };
        let key = if key == "Space" { " " } else { key };
        for kind in ["keyDown", "keyUp"] {
            let mut params =
                json!({ "type": kind, "key": key, "code": code, "windowsVirtualKeyCode": vk });
            if kind == "keyDown" && !text.is_empty() {
                params["text"] = json!(text);
            }
            self.command("Input.dispatchKeyEvent", params).await?;
        }
        Ok(())
    }

    /// Presses `key` and waits for the page it leads to (e.g. Enter in a form).
    pub async fn press_key_and_wait(&mut self, key: &str) -> Result<(), BrowserError> {
        let before = self.page_identity().await?;
        self.press_key(key).await?;
        self.wait_for_new_page(&before).await
    }

    /// Types `text` into the focused element.
    pub async fn type_text(&mut self, text: &str) -> Result<(), BrowserError> {
        self.command("Input.insertText", json!({ "text": text }))
            .await
            .map(drop)
    }

    /// Writes a PNG screenshot of the whole page to `path` (directories are created).
    pub async fn screenshot(&mut self, path: &Path) -> Result<(), BrowserError> {
        let shot = self
            .command(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| BrowserError::Command {
                method: "Page.captureScreenshot".into(),
                message: e.to_string(),
            })?;
        let io = |source| BrowserError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, png).map_err(io)
    }

    /// The page's cookies (name → value) as the browser keeps them.
    pub async fn cookies(&mut self) -> Result<Vec<(String, String)>, BrowserError> {
        let result = self.command("Network.getCookies", json!({})).await?;
        Ok(result["cookies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or_default().to_owned(),
                    c["value"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }

    async fn page_identity(&mut self) -> Result<Value, BrowserError> {
        self.eval("performance.timeOrigin").await
    }

    async fn wait_for_new_page(&mut self, before: &Value) -> Result<(), BrowserError> {
        let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
        loop {
            // During a navigation the context may be gone for a moment: retry.
            if let Ok(state) = self
                .eval("[performance.timeOrigin, document.readyState]")
                .await
                && state[0] != *before
                && state[1] == "complete"
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(BrowserError::Timeout("waiting for the page to load".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The directory for a test's artefacts (screenshots): `$KONTOSYNK_TEST_ARTEFACTS/<test>` when
/// set, else `target/test-artefacts/<test>` of the workspace. Created if missing.
pub fn artefact_dir(test: &str) -> PathBuf {
    let base = std::env::var_os("KONTOSYNK_TEST_ARTEFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("test-artefacts")
        });
    let dir = base.join(test);
    let _ = std::fs::create_dir_all(&dir);
    dir
}
