//! The channel binding on every connection the [`crate::Client`] opens: a ureq connector that
//! makes the TLS 1.3 handshake, binds the connection ([`super::bind_stream`]) before any
//! request is sent on it, and only then hands it to ureq, which keeps it alive for the
//! requests that follow. A connection that fails the check is closed and the request fails
//! with the [`super::ChannelError`].

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

use super::{ChannelReport, bind_stream, client_config};
use crate::verify::Policy;

/// Binds each new `https` connection to the attested host before ureq uses it.
#[derive(Debug)]
pub(crate) struct ChannelConnector {
    policy: Arc<Policy>,
    config: Arc<ClientConfig>,
    /// The last connection's report (for `Client::channel`).
    last: Arc<Mutex<Option<ChannelReport>>>,
}

impl ChannelConnector {
    pub(crate) fn new(policy: Policy, last: Arc<Mutex<Option<ChannelReport>>>) -> Self {
        Self {
            policy: Arc::new(policy),
            config: Arc::new(client_config()),
            last,
        }
    }
}

impl<In: Transport> Connector<In> for ChannelConnector {
    type Out = Either<In, BoundTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        if !details.needs_tls() {
            // The client is https-only; a plain connection would carry nothing bound.
            return Err(ureq::Error::Tls(
                "a client with the channel binding only opens https connections",
            ));
        }
        let host = details
            .uri
            .host()
            .ok_or(ureq::Error::Tls("no host to bind the TLS channel to"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let name = ServerName::try_from(host.clone())
            .map_err(|_| ureq::Error::Tls("not a valid TLS server name"))?;
        let conn = ClientConnection::new(self.config.clone(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        let mut stream = StreamOwned::new(conn, sock);
        let authority = details
            .uri
            .authority()
            .map_or(host.as_str(), |a| a.as_str())
            .to_owned();
        let report = bind_stream(&mut stream, &authority, &self.policy)
            .map_err(|e| ureq::Error::Other(Box::new(e)))?;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(BoundTransport { buffers, stream })))
    }
}

/// A TLS connection whose channel binding verified.
pub(crate) struct BoundTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for BoundTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundTransport").finish_non_exhaustive()
    }
}

impl Transport for BoundTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
