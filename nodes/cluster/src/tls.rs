//! TLS on the cluster port (`[cluster.tls]`): mutual, with rustls (aws-lc-rs, the backend
//! ractor_cluster's tokio-rustls already builds).
//!
//! Every node presents a certificate signed by the cluster's authority (`ca_file`) and checks its
//! peer's against it, both ways, before the cookie handshake begins: a peer without such a
//! certificate never reaches ractor_cluster. A dialing node checks the name in the peer's
//! certificate: `server_name` when it is set (one name shared by every node's certificate), else the
//! host of the address it dials (each node's certificate carries its advertised DNS name or IP).
//!
//! The accepting side's handshake runs in a task per connection under the handshake deadline
//! ([`crate::guard::accept_loop`]), so a slow or silent client stalls no other accept.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The `[cluster.tls]` settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// This node's certificate chain (PEM), its own certificate first.
    pub cert_file: PathBuf,
    /// This node's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// The certificate(s) of the authority that signs every node's certificate (PEM).
    pub ca_file: PathBuf,
    /// The name every node's certificate carries, checked when dialing a peer. Default: the host of
    /// the address dialed (the peer's `advertise`).
    #[serde(default)]
    pub server_name: Option<String>,
}

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The certificates and key do not make a configuration.
    #[error("{0}")]
    Config(String),
    /// The name to check in a peer's certificate is not a DNS name or an IP address.
    #[error("'{0}' is not a DNS name or an IP address")]
    Name(String),
}

/// A node's TLS: how it accepts peers and how it dials them.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

impl Tls {
    /// Loads the files named by `settings`.
    pub fn load(settings: &TlsSettings) -> Result<Tls, TlsError> {
        let chain = certs(&settings.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&settings.key_file)
            .map_err(|e| file_error(&settings.key_file, e))?;
        let roots = certs(&settings.ca_file)?;
        Tls::new(chain, key, roots, settings.server_name.as_deref())
    }

    /// Builds a node's TLS from its chain and key and the cluster's authority.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        authority: Vec<CertificateDer<'static>>,
        server_name: Option<&str>,
    ) -> Result<Tls, TlsError> {
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in authority {
            roots.add(cert).map_err(config)?;
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(config)?;
        let server_name = server_name.map(name).transpose()?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
        })
    }

    /// The accepting side.
    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// The dialing side, and the name to check in the certificate of the peer at `addr`
    /// (`host:port`).
    pub(crate) fn dial(&self, addr: &str) -> Result<(TlsConnector, ServerName<'static>), TlsError> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => name(host_of(addr))?,
        };
        Ok((self.connector.clone(), name))
    }
}

/// The host of `host:port` (an IPv6 address in brackets loses them).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_owned()).map_err(|_| TlsError::Name(host.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_checked_is_the_dialed_host_unless_one_is_set() {
        assert_eq!(host_of("node-1.banter:7400"), "node-1.banter");
        assert_eq!(host_of("127.0.0.1:7400"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7400"), "::1");
        assert!(name("node-1.banter").is_ok());
        assert!(name("127.0.0.1").is_ok());
        assert!(matches!(name("not a name"), Err(TlsError::Name(_))));
    }

    #[test]
    fn missing_or_empty_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let settings = TlsSettings {
            cert_file: empty.clone(),
            key_file: empty.clone(),
            ca_file: dir.path().join("missing.pem"),
            server_name: None,
        };
        let e = Tls::load(&settings).expect_err("no certificate");
        assert!(e.to_string().contains("empty.pem"), "{e}");
    }
}
