//! Test support (feature `testkit`): the CNCF distribution registry, Debian's
//! `docker-registry` 2.8.2, on a free loopback port with its storage in a temporary
//! directory. Bonded's tests use it as the reference registry; the client, the scanner and the
//! signing commands are all checked against it.
//!
//! Starting fails the test with an install hint when the binary is missing: a test that needs
//! the reference registry never passes without it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `docker-registry`, stopped when dropped.
pub struct DockerRegistry {
    child: Child,
    host: String,
    dir: tempfile::TempDir,
}

impl DockerRegistry {
    /// Starts it and waits until `/v2/` answers. Panics (this is test support) when the
    /// binary is missing or does not start within 30 s.
    pub fn start() -> DockerRegistry {
        let binary = "docker-registry";
        if Command::new(binary).arg("--version").output().is_err() {
            panic!(
                "`{binary}` is not installed; this test needs the CNCF distribution registry \
                 (Debian/Ubuntu: `apt-get install docker-registry`)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("the registry configuration");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("a log file");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let registry = DockerRegistry {
            child,
            host: format!("127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe = reqwest::blocking::Client::new();
        while probe
            .get(format!("{}/v2/", registry.base()))
            .send()
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start: {}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.host)
    }

    /// What the registry logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
