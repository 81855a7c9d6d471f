//! A small blocking client for the node's HTTP API.

use crate::types::*;
use coalition_core::record::MemberId;
use serde::{de::DeserializeOwned, Serialize};
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
    /// The node answered something that is not the expected body.
    #[error("unexpected answer from {url}: {reason}")]
    Decode {
        /// The URL called.
        url: String,
        /// Why.
        reason: String,
    },
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
    agent: ureq::Agent,
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:7101`), with the partner token if any.
    pub fn new(base: &str, token: Option<String>) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build();
        Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
        }
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
            Err(e) => Err(ClientError::Transport {
                url: url.into(),
                reason: e.to_string(),
            }),
        }
    }

    /// `GET path`, decoded.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        Self::finish(&url, req.call())
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
        self.get(&format!("/v1/members/{}/balance", member.to_hex()))
    }

    /// A member's history.
    pub fn history(&self, member: &MemberId) -> Result<History, ClientError> {
        self.get(&format!("/v1/members/{}/history", member.to_hex()))
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
