//! The endpoint client's test bed: the emulator, an SSM client, and the one parameter the
//! clients follow, and a capture of what the client logs. Used by `endpoint_client.rs` and
//! `fleet.rs`.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use endpoint_client::{ClientConfig, EndpointClient};
use lambda_runtime::tracing::dispatcher::{self, DefaultGuard, Dispatch};
use lambda_runtime::tracing::subscriber::fmt::MakeWriter;
use lambda_runtime::tracing::Level;

use crate::Emulator;

/// The parameter every client test follows.
pub const PARAM: &str = "/app/orders/redis";

/// The emulator plus an SSM client to set up and inspect [`PARAM`].
pub struct ClientBed {
    /// The emulator holding the parameter.
    pub emu: Emulator,
    /// An SSM client for the emulator.
    pub ssm: aws_sdk_ssm::Client,
}

impl ClientBed {
    /// Starts an emulator; `None` when it cannot run here (see [`Emulator::start`]).
    pub async fn start() -> Option<ClientBed> {
        let emu = Emulator::start().await?;
        let sdk = emu.sdk_config().await;
        Some(ClientBed {
            ssm: aws_sdk_ssm::Client::new(&sdk),
            emu,
        })
    }

    /// Writes `value` into [`PARAM`] as a `String`, as the reconciler would.
    pub async fn publish(&self, value: &str) {
        self.ssm
            .put_parameter()
            .name(PARAM)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }

    /// `GetParameter` calls served since the log was last cleared.
    pub async fn parameter_reads(&self) -> usize {
        let ops = self.emu.operations().await;
        ops.iter().filter(|op| op.as_str() == "ssm:GetParameter").count()
    }

    /// A client of [`PARAM`] with `cfg` (its `parameter` is expected to be [`PARAM`]).
    pub fn client(&self, cfg: ClientConfig) -> EndpointClient {
        EndpointClient::new(self.ssm.clone(), cfg)
    }
}

/// Everything logged through `tracing` on this thread, at every level and from every crate,
/// while it lives: what the client logs (and the SDK under it) as an application would see it
/// with the most verbose subscriber. A `#[tokio::test]` runs on one thread, the client's
/// background reads included.
pub struct CapturedLogs {
    buffer: LogBuffer,
    _guard: DefaultGuard,
}

impl CapturedLogs {
    /// Starts capturing, in the plain-text format without colours.
    pub fn start() -> CapturedLogs {
        let buffer = LogBuffer::default();
        let subscriber = lambda_runtime::tracing::subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(buffer.clone())
            .finish();
        let guard = dispatcher::set_default(&Dispatch::new(subscriber));
        CapturedLogs { buffer, _guard: guard }
    }

    /// The lines logged so far.
    pub fn text(&self) -> String {
        let bytes = self.buffer.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The lines logged so far by `endpoint_client` itself.
    pub fn client_lines(&self) -> String {
        let text = self.text();
        let lines = text.lines().filter(|l| l.contains(" endpoint_client::"));
        lines.map(|l| format!("{l}\n")).collect()
    }
}

/// The shared buffer [`CapturedLogs`] writes into.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
