//! The real `csp-ledger serve` process on a free loopback port over a temporary data
//! directory, and an HTTP client speaking to it.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The operator key every test server starts with (tests only).
pub const OPERATOR_KEY: &str = "test-operator-key-0123456789abcdef";

/// A running server.
pub struct Server {
    child: Child,
    pub base: String,
    pub data: PathBuf,
    pub client: reqwest::Client,
}

impl Server {
    /// Starts `csp-ledger serve` on `data` with the development directory (so that tenants
    /// can prove themselves) and waits until it listens.
    pub fn start(data: &Path) -> Server {
        Self::start_with(data, &["--dev-directory"])
    }

    /// Starts it with extra arguments.
    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("CSP_LEDGER_OPERATOR_KEY", OPERATOR_KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start csp-ledger serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let base = line
            .trim()
            .strip_prefix("csp-ledger listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server {
            child,
            base,
            data: data.to_path_buf(),
            client: reqwest::Client::new(),
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let exit = self.child.wait().expect("wait for the server");
        assert!(
            exit.success(),
            "the server exited with {exit:?} after SIGTERM"
        );
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`, …) to the server process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// Kills the server (SIGKILL), as a crash would, and reaps it.
    pub fn crash(mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with a bearer token and an optional JSON body; returns status and JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// A directory token of `tenant`'s global admin `email`, minted by the server's
    /// development directory (verified by the server like any issuer's).
    pub async fn directory_token(&self, tenant: uuid::Uuid, email: &str) -> String {
        self.directory_token_for(
            json!({"tenant_id": tenant, "email": email, "name": "Directory Admin"}),
        )
        .await
    }

    /// A development directory token for the claims in `request`.
    pub async fn directory_token_for(&self, request: Value) -> String {
        let (status, body) = self
            .call(Method::POST, "/dev-directory/token", None, Some(request))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().expect("a token").to_string()
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// Issues a command as `token`; returns status and JSON.
    pub async fn command(&self, token: &str, command: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/v1/commands", Some(token), Some(command))
            .await
    }

    /// Issues a command that must be recorded; returns the outcome.
    pub async fn ok(&self, token: &str, command: Value) -> Value {
        let (status, body) = self.command(token, command.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{command} -> {body}");
        body
    }

    /// Issues a command that must be refused with `status` and `rule`; checks nothing was
    /// appended.
    pub async fn refused(&self, token: &str, command: Value, status: u16, rule: &str) -> Value {
        let before = self.head().await;
        let (got, body) = self.command(token, command.clone()).await;
        assert_eq!(got.as_u16(), status, "{command} -> {body}");
        assert_eq!(body["rule"], rule, "{command} -> {body}");
        assert_eq!(body["type"], format!("/problems/{rule}"));
        assert_eq!(
            self.head().await,
            before,
            "a refused command appended nothing"
        );
        body
    }

    /// The log's head position.
    pub async fn head(&self) -> Option<u64> {
        let (status, body) = self.call(Method::GET, "/readyz", None, None).await;
        // `null` for an empty log; no field at all is an error answer, worth its body.
        assert!(
            body.get("log_head").is_some(),
            "/readyz answered {status} without a log head: {body}"
        );
        body["log_head"].as_u64()
    }

    /// Waits until the read models have applied the log's head, so that what a test reads
    /// next reflects every command it sent (reads are eventually consistent).
    pub async fn caught_up(&self) {
        for _ in 0..1000 {
            let (status, _) = self.call(Method::GET, "/readyz", None, None).await;
            if status == StatusCode::OK {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the read models did not reach the log head within 10 s");
    }

    /// Signs in; returns the session JSON.
    pub async fn sign_in(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/v1/auth/sign-in",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// Signs in with a temporary password, changes it, returns the full token.
    pub async fn first_sign_in(&self, email: &str, temporary: &str, new: &str) -> String {
        let (status, session) = self.sign_in(email, temporary).await;
        assert_eq!(status, StatusCode::OK, "{session}");
        assert_eq!(session["must_change_password"], true);
        let token = session["token"].as_str().unwrap().to_string();
        let (status, changed) = self
            .call(
                Method::POST,
                "/v1/auth/change-password",
                Some(&token),
                Some(json!({"current_password": temporary, "new_password": new})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        changed["token"].as_str().unwrap().to_string()
    }

    /// Runs a query; returns the answer JSON.
    pub async fn query(&self, token: &str, what_and_params: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/queries/{what_and_params}"), token)
            .await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The temporary password in an outcome's secrets.
pub fn temporary_password(outcome: &Value) -> String {
    outcome["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "temporary_password")
        .and_then(|s| s["password"].as_str())
        .expect("a temporary password")
        .to_string()
}

/// The link token in an outcome's secrets.
pub fn link_token(outcome: &Value) -> String {
    outcome["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "link_token")
        .and_then(|s| s["token"].as_str())
        .expect("a link token")
        .to_string()
}

/// A field of the first event's payload of an outcome.
pub fn payload(outcome: &Value, index: usize, field: &str) -> String {
    outcome["events"][index]["payload"][field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {outcome}"))
        .to_string()
}

/// The store-admin key of the door's ledger (tests only).
#[cfg(feature = "kurrentdb")]
pub const STORE_ADMIN_KEY: &str = "test-store-admin-key-0123456789abcdef";

/// A `serve` with the KurrentDB door, killed when dropped (so that a failing test does not
/// leave it running).
#[cfg(feature = "kurrentdb")]
pub struct Door(pub std::process::Child);

#[cfg(feature = "kurrentdb")]
impl Door {
    /// Stops it as an operator would (SIGTERM) and says whether it shut down cleanly.
    pub fn stop(&mut self) -> bool {
        let stopped = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        stopped && self.0.wait().is_ok_and(|status| status.success())
    }
}

#[cfg(feature = "kurrentdb")]
impl Drop for Door {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `serve` on the embedded log with the KurrentDB door: its HTTP base, the door's address
/// and the door's generated certificate authority, from its first three lines.
#[cfg(feature = "kurrentdb")]
pub fn start_door(data: &Path) -> (Door, String, String, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_csp-ledger"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--kurrentdb-listen", "127.0.0.1:0"])
        .args(["--checkpoint-interval-ms", "5"])
        .env("CSP_LEDGER_OPERATOR_KEY", OPERATOR_KEY)
        .env("CSP_LEDGER_STORE_ADMIN_KEY", STORE_ADMIN_KEY)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut next = |prefix: &str| {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line.trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .to_string()
    };
    let base = next("csp-ledger listening on ");
    let grpc = next("csp-ledger kurrentdb protocol on ");
    let authority = next("csp-ledger kurrentdb certificate authority ");
    (Door(child), base, grpc, authority)
}
