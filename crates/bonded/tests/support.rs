//! Starting `bonded serve` as a child process and waiting for it.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bonded");

/// Fails the test (never skips it) when an external program is missing.
pub fn require(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{program}` is required by this test but is not installed; run scripts/test (it installs the test prerequisites) or install it"
    );
}

pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: std::path::PathBuf,
}

impl Server {
    /// Starts `bonded serve --listen addr` with `args` in `cwd` and waits until it answers.
    pub fn start(cwd: &Path, addr: SocketAddr, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let listen = addr.to_string();
        let mut all = vec!["--listen", listen.as_str()];
        all.extend_from_slice(args);
        Server::start_raw(cwd, addr, &all, envs)
    }

    /// Starts `bonded serve` with exactly `args` (the address comes from elsewhere: defaults,
    /// a config file or the environment) and waits until it answers on `addr`.
    pub fn start_raw(cwd: &Path, addr: SocketAddr, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let log = cwd.join(format!("bonded-{}.log", addr.port()));
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::null())
            .stderr(out);
        for (k, _) in std::env::vars() {
            if k.starts_with("BONDED_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn bonded");
        let mut server = Server { child, addr, log };
        let tls = args.contains(&"--tls-cert");
        server.wait_ready(if tls { "https" } else { "http" });
        server
    }

    pub fn wait_ready(&mut self, scheme: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("bonded exited early with {status}: {}", self.log_text());
            }
            if std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok()
            {
                if scheme == "http" {
                    let ok = Command::new("curl")
                        .args([
                            "-sf",
                            "-o",
                            "/dev/null",
                            &format!("http://{}/healthz", self.addr),
                        ])
                        .status()
                        .is_ok_and(|s| s.success());
                    if ok {
                        return;
                    }
                } else {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "bonded did not start listening on {}: {}",
            self.addr,
            self.log_text()
        );
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits for the process to exit and returns its exit code (None if killed by a signal).
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "bonded did not exit: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command, failing the test with its output if it does not succeed.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// An HTTP client for the tests' direct requests (30 s timeout).
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Starts `bonded serve` with `toml` as its configuration file and its data under `dir/data`.
pub fn serve_with(dir: &Path, toml: &str) -> Server {
    let config = dir.join("bonded.toml");
    std::fs::write(&config, toml).expect("config");
    let data = dir.join("data");
    Server::start(
        dir,
        free_addr(),
        &[
            "--config",
            config.to_str().expect("path"),
            "--data-dir",
            data.to_str().expect("path"),
        ],
        &[],
    )
}

/// The digest a HEAD of `repo:reference` announces (OCI manifest or index accepted).
pub fn head_digest(base: &str, repo: &str, reference: &str) -> String {
    let resp = http()
        .head(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )
        .send()
        .expect("HEAD manifest");
    assert!(
        resp.status().is_success(),
        "HEAD {repo}:{reference}: {}",
        resp.status()
    );
    resp.headers()["docker-content-digest"]
        .to_str()
        .expect("digest")
        .to_owned()
}
