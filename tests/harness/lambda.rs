//! The functions as Lambda runs them: a small Lambda Runtime API on 127.0.0.1 and function
//! processes that poll it, so a test can invoke the real binaries, several at once, and read
//! their log lines.
//!
//! [`RuntimeApi`] serves the endpoints the runtime client uses (`invocation/next`, the
//! response and error of an invocation, `init/error`). Each [`FunctionProcess`] is one
//! sandbox: it takes one invocation at a time, so two processes make two concurrent
//! invocations, as two Lambda sandboxes would. Processes are killed when dropped.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// The account the test invocations run in (the invoked function ARN carries it).
pub const ACCOUNT: &str = "123456789012";

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function returned this response.
    Response(Value),
    /// The function reported an error: `errorType`, `errorMessage`.
    Error {
        /// `errorType`.
        error_type: String,
        /// `errorMessage`.
        message: String,
    },
}

impl Outcome {
    /// The response, or a panic naming the error.
    pub fn response(self) -> Value {
        match self {
            Outcome::Response(v) => v,
            Outcome::Error { error_type, message } => panic!("the invocation failed: {error_type}: {message}"),
        }
    }

    /// The error message, or a panic showing the response.
    pub fn error(self) -> (String, String) {
        match self {
            Outcome::Error { error_type, message } => (error_type, message),
            Outcome::Response(v) => panic!("expected an error, got the response {v}"),
        }
    }
}

struct Pending {
    id: String,
    event: Value,
    deadline_ms: u64,
    function: String,
    done: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Shared {
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
    init_errors: Vec<Value>,
}

/// A Lambda Runtime API on 127.0.0.1.
pub struct RuntimeApi {
    /// `127.0.0.1:<port>`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    queue: mpsc::UnboundedSender<Pending>,
    shared: Arc<Mutex<Shared>>,
    next_id: Mutex<u64>,
    _server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Starts serving on a free loopback port.
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the runtime API");
        let address = listener.local_addr().expect("local addr").to_string();
        let (queue, rx) = mpsc::unbounded_channel::<Pending>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = Arc::clone(&shared);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&rx), Arc::clone(&state)));
            }
        });
        RuntimeApi {
            address,
            queue,
            shared,
            next_id: Mutex::new(0),
            _server: server,
        }
    }

    /// Invokes the next free process of `function` with `event`, giving it `timeout` (its
    /// deadline), and waits for the outcome (at most `timeout` plus 5 s).
    pub async fn invoke(&self, function: &str, event: Value, timeout: Duration) -> Outcome {
        let id = {
            let mut n = self.next_id.lock().unwrap();
            *n += 1;
            format!("req-{n}")
        };
        let deadline = SystemTime::now() + timeout;
        let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Pending {
                id,
                event,
                deadline_ms,
                function: function.to_owned(),
                done,
            })
            .expect("runtime API is serving");
        tokio::time::timeout(timeout + Duration::from_secs(5), outcome)
            .await
            .unwrap_or_else(|_| panic!("{function} gave no answer within its timeout {timeout:?} + 5 s"))
            .expect("runtime API kept the invocation")
    }

    /// The init errors reported so far (`{"errorType", "errorMessage"}` bodies).
    pub fn init_errors(&self) -> Vec<Value> {
        self.shared.lock().unwrap().init_errors.clone()
    }
}

/// One HTTP/1.1 request, as much as the runtime client sends.
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await.ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(Request { method, path, body })
}

async fn serve(
    stream: TcpStream,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>,
    shared: Arc<Mutex<Shared>>,
) {
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader).await {
        let (status, headers, body) = if req.method == "GET" && req.path == NEXT {
            // Long poll; a sandbox that dies while waiting closes its connection, and the next
            // invocation goes to another one.
            let next = {
                let mut rx = queue.lock().await;
                tokio::select! {
                    next = rx.recv() => next,
                    _ = reader.fill_buf() => return,
                }
            };
            let Some(next) = next else { return };
            hand_out(next, &shared)
        } else {
            route(&req, &shared)
        };
        let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let stream = reader.get_mut();
        if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(&body).await.is_err() {
            return;
        }
    }
}

const PREFIX: &str = "/2018-06-01/runtime/";
const NEXT: &str = "/2018-06-01/runtime/invocation/next";

type Answer = (&'static str, Vec<(String, String)>, Vec<u8>);

fn hand_out(next: Pending, shared: &Mutex<Shared>) -> Answer {
    let headers = vec![
        ("lambda-runtime-aws-request-id".into(), next.id.clone()),
        ("lambda-runtime-deadline-ms".into(), next.deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn".into(),
            format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{}", next.function),
        ),
        (
            "lambda-runtime-trace-id".into(),
            "Root=1-00000000-000000000000000000000000".into(),
        ),
        ("content-type".into(), "application/json".into()),
    ];
    shared.lock().unwrap().waiting.insert(next.id.clone(), next.done);
    ("200 OK", headers, next.event.to_string().into_bytes())
}

fn route(req: &Request, shared: &Mutex<Shared>) -> Answer {
    let accepted = ("202 Accepted", vec![], b"{}".to_vec());
    let Some(path) = req.path.strip_prefix(PREFIX) else {
        return ("404 Not Found", vec![], vec![]);
    };
    if req.method == "POST" && path == "init/error" {
        let body = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        shared.lock().unwrap().init_errors.push(body);
        return accepted;
    }
    let Some((id, kind)) = path.strip_prefix("invocation/").and_then(|p| p.split_once('/')) else {
        return ("404 Not Found", vec![], vec![]);
    };
    let Some(done) = shared.lock().unwrap().waiting.remove(id) else {
        return ("400 Bad Request", vec![], vec![]);
    };
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let outcome = match kind {
        "response" => Outcome::Response(body),
        _ => Outcome::Error {
            error_type: body["errorType"].as_str().unwrap_or_default().to_owned(),
            message: body["errorMessage"].as_str().unwrap_or_default().to_owned(),
        },
    };
    let _ = done.send(outcome);
    accepted
}

/// A function process polling a [`RuntimeApi`]. Its stdout and stderr are collected.
pub struct FunctionProcess {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl FunctionProcess {
    /// Starts `binary` as function `function` against `api`, with the emulator at
    /// `endpoint_url` for every AWS service and `env` for its own configuration.
    pub fn start(binary: &Path, function: &str, api: &RuntimeApi, endpoint_url: &str, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_ENDPOINT_URL", endpoint_url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = Arc::clone(&output);
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut out = output.lock().unwrap();
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        FunctionProcess { child, output }
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Stops the process (its output stays readable).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits up to `timeout` for the process to exit; its exit code, if it did.
    pub async fn exit_code(&mut self, timeout: Duration) -> Option<i32> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?
            .ok()?
            .code()
    }
}
