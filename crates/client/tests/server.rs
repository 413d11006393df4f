//! A scripted HTTP/1.1 server on loopback for the client's tests: each test gives a function
//! from request to reply, and reads back the log of what the client sent. One request per
//! connection (`Connection: close`), which keeps the server a page of std code.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;

/// A request as the server received it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The decoded values of a query parameter.
    pub fn query(&self, name: &str) -> Vec<String> {
        let url = Url::parse(&format!("http://server{}", self.target)).unwrap();
        url.query_pairs()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    /// `METHOD /path` for sequence assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path())
    }
}

/// A reply to send. With a `Transfer-Encoding` header the body is sent chunked, else with a
/// `Content-Length` (the body's, unless the reply names one).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    pub fn json(status: u16, value: serde_json::Value) -> Reply {
        Reply::new(status)
            .header("Content-Type", "application/json")
            .body(value.to_string())
    }

    /// The error body of the Distribution Spec, "Error Codes".
    pub fn oci_error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            serde_json::json!({ "errors": [{ "code": code, "message": message, "detail": {} }] }),
        )
    }
}

/// What the server received, and what it answered.
#[derive(Clone, Debug)]
pub struct Logged {
    pub request: Request,
    pub status: u16,
}

type Handler = dyn Fn(&Request, &str) -> Reply + Send + Sync;

pub struct TestServer {
    base: String,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl TestServer {
    /// Serves `handler(request, base URL)` on a fresh loopback port until the process ends.
    pub fn start(handler: impl Fn(&Request, &str) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log: Arc<Mutex<Vec<Logged>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let (thread_log, thread_base) = (log.clone(), base.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, base, handler) =
                    (thread_log.clone(), thread_base.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &log, &base, &*handler));
            }
        });
        TestServer { base, log }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `127.0.0.1:PORT`, the registry name of an image reference.
    pub fn host(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// `METHOD /path` of every request, in order.
    pub fn lines(&self) -> Vec<String> {
        self.log().iter().map(|l| l.request.line()).collect()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Logged>>, base: &str, handler: &Handler) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    let reply = handler(&request, base);
    log.lock().unwrap().push(Logged {
        request: request.clone(),
        status: reply.status,
    });
    let mut head = format!("HTTP/1.1 {} Test\r\nConnection: close\r\n", reply.status);
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let has_header = |name: &str| {
        reply
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let chunked = has_header("transfer-encoding");
    if !chunked && !has_header("content-length") {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("\r\n");
    let mut stream = reader.into_inner();
    let _ = stream.write_all(head.as_bytes());
    if request.method != "HEAD" {
        if chunked {
            // One chunk, then the last (empty) chunk: a body of unannounced length.
            let _ = write!(stream, "{:x}\r\n", reply.body.len());
            let _ = stream.write_all(&reply.body);
            let _ = stream.write_all(b"\r\n0\r\n\r\n");
        } else {
            let _ = stream.write_all(&reply.body);
        }
    }
    let _ = stream.flush();
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the tests.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn repository(name: &str) -> oci::RepositoryName {
    name.parse().unwrap()
}

pub fn sha256(bytes: &[u8]) -> oci::Digest {
    oci::Digest::compute(oci::Algorithm::Sha256, bytes)
}

/// A client for `server` over plain HTTP.
pub fn client_for(
    server: &TestServer,
    credentials: Option<(&str, &str)>,
) -> client::RegistryClient {
    let credentials = credentials.map(|(username, password)| client::Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    });
    client::RegistryClient::new(server.host(), true, credentials).unwrap()
}

/// An `Authorization` value for basic credentials (RFC 7617).
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}
