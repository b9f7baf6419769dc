//! The endpoint client's test bed: the emulator, an SSM client, and the one parameter the
//! clients follow. Used by `endpoint_client.rs` and `fleet.rs`.

use endpoint_client::{ClientConfig, EndpointClient};

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
