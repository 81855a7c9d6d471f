//! A small blocking client for the node's HTTP API.

use crate::types::*;
use coalition_core::clock::{Clock as _, SystemClock};
use coalition_core::crypto::Keypair;
use coalition_core::hash::Hash;
use coalition_core::record::{MemberId, PartnerId};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The API's error code.
        code: String,
        /// The API's message.
        message: String,
    },
    /// The node could not be reached.
    #[error("cannot reach node at {url}: {reason}")]
    Transport {
        /// The URL called.
        url: String,
        /// Why.
        reason: String,
    },
    /// The certificate authority given for TLS cannot be used.
    #[error("cannot use the certificate authority {path}: {reason}")]
    Ca {
        /// The PEM file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The node answered something that is not the expected body.
    #[error("unexpected answer from {url}: {reason}")]
    Decode {
        /// The URL called.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Certificate authorities (or self-signed certificates) a client trusts for `https://`.
#[derive(Clone)]
pub struct TlsRoots(Arc<rustls::ClientConfig>);

impl std::fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsRoots")
    }
}

impl TlsRoots {
    /// The certificates in the PEM file `path`.
    pub fn from_pem_file(path: &std::path::Path) -> Result<TlsRoots, ClientError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let fail = |reason: String| ClientError::Ca {
            path: path.display().to_string(),
            reason,
        };
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))?;
        for cert in certs {
            roots
                .add(cert.map_err(|e| fail(e.to_string()))?)
                .map_err(|e| fail(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(fail("no CERTIFICATE block".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsRoots(Arc::new(config)))
    }
}

/// The HTTP agent: bounded waits, and the TLS roots given (else the public web's).
fn agent(tls: Option<Arc<rustls::ClientConfig>>) -> ureq::Agent {
    let builder = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(60));
    match tls {
        Some(config) => builder.tls_config(config).build(),
        None => builder.build(),
    }
}

impl ClientError {
    /// The API's error code, if the node answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A node's API.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    /// A member's key: reads of that member's data are signed with it when there is no token.
    member: Option<Arc<Keypair>>,
    /// The node's genesis hash and partner id, which a member's signed read names; fetched once.
    read_target: Arc<OnceLock<(Hash, PartnerId)>>,
    agent: ureq::Agent,
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:7101`), with the partner token if any.
    pub fn new(base: &str, token: Option<String>) -> Client {
        let agent = agent(None);
        Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            member: None,
            read_target: Arc::default(),
            agent,
        }
    }

    /// This client, trusting for `https://` only `roots` instead of the public web's: how a
    /// partner that serves TLS with its own certificate is reached.
    pub fn with_roots(mut self, roots: &TlsRoots) -> Client {
        self.agent = agent(Some(roots.0.clone()));
        self
    }

    /// This client, signing reads of `key`'s own balance and history with it (when it has no
    /// partner or auditor token): how a member reads its data without a partner's credential.
    pub fn with_member_key(mut self, key: Arc<Keypair>) -> Client {
        self.member = Some(key);
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn finish<T: DeserializeOwned>(
        url: &str,
        r: Result<ureq::Response, ureq::Error>,
    ) -> Result<T, ClientError> {
        match r {
            Ok(resp) => resp.into_json::<T>().map_err(|e| ClientError::Decode {
                url: url.into(),
                reason: e.to_string(),
            }),
            Err(ureq::Error::Status(status, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                match serde_json::from_str::<ErrorBody>(&text) {
                    Ok(b) => Err(ClientError::Api {
                        status,
                        code: b.error.code,
                        message: b.error.message,
                    }),
                    Err(_) => Err(ClientError::Api {
                        status,
                        code: "http".into(),
                        message: text.chars().take(200).collect(),
                    }),
                }
            }
            Err(ureq::Error::Transport(t)) => {
                let text = t.to_string();
                // ureq's words start with the URL, which the message names already.
                let reason = text
                    .strip_prefix(&format!("{url}: "))
                    .unwrap_or(&text)
                    .to_string();
                let reason = match t.kind() {
                    ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns => {
                        format!("{reason} (is coalition-node running there? --node or COALITION_NODE names it)")
                    }
                    _ => reason,
                };
                Err(ClientError::Transport {
                    url: url.into(),
                    reason,
                })
            }
        }
    }

    /// `GET path`, decoded.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let bearer = self.token.as_ref().map(|t| format!("Bearer {t}"));
        self.get_authorized(path, bearer.as_deref())
    }

    /// `GET path` with `authorization` as the `Authorization` header, if any, decoded.
    fn get_authorized<T: DeserializeOwned>(
        &self,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let mut req = self.agent.get(&url);
        if let Some(a) = authorization {
            req = req.set("Authorization", a);
        }
        Self::finish(&url, req.call())
    }

    /// `GET path` of `member`'s data: with the token if there is one, else signed by the member's
    /// key if this client holds it, else without credentials (the node then refuses).
    fn get_member_data<T: DeserializeOwned>(
        &self,
        member: &MemberId,
        path: &str,
    ) -> Result<T, ClientError> {
        let key = match (&self.token, &self.member) {
            (None, Some(key)) if MemberId(key.public()) == *member => key.clone(),
            _ => return self.get(path),
        };
        let (genesis, node) = match self.read_target.get() {
            Some(t) => *t,
            None => {
                let status = self.status()?;
                let t = (status.genesis_hash, status.partner.partner);
                *self.read_target.get_or_init(|| t)
            }
        };
        let target = coalition_core::read_auth::ReadTarget {
            genesis: &genesis,
            node: &node,
            path,
        };
        let header = crate::auth::member_read_header(&key, target, SystemClock.now());
        self.get_authorized(path, Some(&header))
    }

    /// `POST path` with a JSON body, decoded.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let mut req = self.agent.post(&url);
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        Self::finish(&url, req.send_json(body))
    }

    /// Node status.
    pub fn status(&self) -> Result<Status, ClientError> {
        self.get("/v1/status")
    }

    /// Issues points (partner token required).
    pub fn issue(&self, req: &IssueRequest) -> Result<IssueResponse, ClientError> {
        self.post("/v1/issue", req)
    }

    /// Isolates the node from every partner (`true`) or heals it (`false`); partner token required.
    pub fn partition(&self, isolated: bool) -> Result<PartitionResponse, ClientError> {
        self.post("/v1/admin/partition", &PartitionRequest { isolated })
    }

    /// Has the node write a consistent backup of its database into `dir` on its own machine.
    pub fn backup(&self, dir: &str) -> Result<BackupResponse, ClientError> {
        self.post("/v1/admin/backup", &BackupRequest { dir: dir.into() })
    }

    /// Redeems a member-signed order at this node's partner; returns once certified.
    pub fn redeem(&self, order_token: &str) -> Result<RedeemResponse, ClientError> {
        self.post(
            "/v1/redeem",
            &RedeemRequest {
                order: order_token.to_string(),
            },
        )
    }

    /// A member's balance and lots.
    pub fn balance(&self, member: &MemberId) -> Result<Balance, ClientError> {
        self.get_member_data(member, &format!("/v1/members/{}/balance", member.to_hex()))
    }

    /// A member's history.
    pub fn history(&self, member: &MemberId) -> Result<History, ClientError> {
        self.get_member_data(member, &format!("/v1/members/{}/history", member.to_hex()))
    }

    /// A range of a partner's log.
    pub fn log_range(
        &self,
        partner: &coalition_core::record::PartnerId,
        from: u64,
        limit: u64,
    ) -> Result<LogRange, ClientError> {
        self.get(&format!(
            "/v1/logs/{}?from={from}&limit={limit}",
            partner.to_hex()
        ))
    }

    /// The coalition's genesis as the node holds it.
    pub fn genesis(&self) -> Result<coalition_core::genesis::Genesis, ClientError> {
        self.get("/v1/genesis")
    }

    /// The sealed checkpoint of `epoch`.
    pub fn checkpoint(
        &self,
        epoch: u64,
    ) -> Result<coalition_core::checkpoint::SealedCheckpoint, ClientError> {
        self.get(&format!("/v1/checkpoints/{epoch}"))
    }

    /// The settlement statement of `epoch`.
    pub fn settlement(&self, epoch: u64) -> Result<SettlementView, ClientError> {
        self.get(&format!("/v1/settlement/{epoch}"))
    }

    /// The inclusion proof of a record up to a sealed checkpoint (the first covering it, or `epoch`'s).
    pub fn proof(
        &self,
        record: &coalition_core::hash::Hash,
        epoch: Option<u64>,
    ) -> Result<coalition_core::checkpoint::RecordProof, ClientError> {
        match epoch {
            Some(e) => self.get(&format!("/v1/proofs/{record}?epoch={e}")),
            None => self.get(&format!("/v1/proofs/{record}")),
        }
    }
}
