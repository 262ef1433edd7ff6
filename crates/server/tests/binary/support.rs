//! The `switchyard` binary as the tests run it: on a free port, in front of a mock, stopped and
//! cleaned up when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_mock::MockServer;

/// A config with one model group `m` routed to the mock's `echo?v={variant}`.
pub fn config(mock: &str, variant: u32) -> String {
    format!(
        "models:\n  - name: m\n    deployments:\n      - provider: openai_compatible\n        model: \"echo?v={variant}\"\n        api_base: \"{mock}/v1\"\n        api_key: k\n"
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running `switchyard serve`; killed (if still running) and its directory removed on drop.
pub struct Gateway {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
}

impl Gateway {
    /// Starts the binary in a fresh directory named after `name` (its working directory, where
    /// its store goes) on a config file there, with two workers, the environment variables `envs` (`RUST_LOG`, say) and stderr going to `stderr`.
    pub fn spawn(name: &str, config: &str, envs: &[(&str, &str)], stderr: Stdio) -> Self {
        let dir = std::env::temp_dir().join(format!("switchyard-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("switchyard.yaml"), config).expect("write config");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--config"])
            .arg(dir.join("switchyard.yaml"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--workers", "2"])
            // The embedded store's folder (`switchyard-data`) is made in the working directory.
            .current_dir(&dir)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("gateway starts");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// The config file the gateway was started on.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("switchyard.yaml")
    }

    /// Sends a signal (`HUP`, `TERM`) to the gateway.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits up to five seconds for the gateway to answer its readiness probe; whether it did.
    pub async fn wait_ready(&self, client: &reqwest::Client) -> bool {
        for _ in 0..100 {
            if client
                .get(format!("{}/health/readiness", self.url))
                .send()
                .await
                .is_ok_and(|response| response.status() == 200)
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// What the gateway writes to stderr (spawned with `Stdio::piped()`), gathered as it comes.
    pub fn stderr_text(&mut self) -> Arc<Mutex<String>> {
        let text = Arc::new(Mutex::new(String::new()));
        let stderr = self.child.stderr.take().expect("piped stderr");
        let gathered = text.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut text = gathered.lock().expect("lock");
                text.push_str(&line);
                text.push('\n');
            }
        });
        text
    }

    /// Waits up to five seconds for the process to exit.
    pub async fn wait_exit(&mut self) -> Option<ExitStatus> {
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A mock, a gateway in front of it (model group `m`, started as `Gateway::spawn` does), and a
/// client, once the gateway answers its readiness probe. The mock lives as long as it is kept.
pub async fn start(
    name: &str,
    envs: &[(&str, &str)],
    stderr: Stdio,
) -> (MockServer, Gateway, reqwest::Client) {
    let mock = MockServer::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("mock");
    let gateway = Gateway::spawn(name, &config(&mock.base_url(), 0), envs, stderr);
    let client = client();
    assert!(
        gateway.wait_ready(&client).await,
        "the gateway never became ready"
    );
    (mock, gateway, client)
}

/// An HTTP client for the tests (rustls with ring, short connect timeout).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}
