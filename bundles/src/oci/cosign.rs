//! Cosign signature verification against an ECDSA P-256 public key (PEM).
//!
//! Cosign stores the signature of image `sha256:<hex>` as the manifest tagged
//! `sha256-<hex>.sig` in the same repository: each layer is a "simple signing" JSON payload
//! (`application/vnd.dev.cosign.simplesigning.v1+json`) whose
//! `critical.image.docker-manifest-digest` names the image, with the base64 DER ECDSA signature
//! over the payload bytes in the layer annotation `dev.cosignproject.cosign/signature`.

use bytes::BytesMut;
use futures::StreamExt as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;

use super::digest::Digest;
use super::manifest::Descriptor;
use super::repo::OciRepo;
use crate::error::{Error, ErrorKind, Result};

/// Media type of a cosign simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Largest signature payload read.
const PAYLOAD_LIMIT_BYTES: usize = 1024 * 1024;

/// What to do about signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignaturePolicy {
    /// Do not look for signatures.
    Off,
    /// Verify a signature when there is one; accept unsigned images.
    VerifyIfSigned,
    /// Refuse images without a valid signature.
    RequireSigned,
}

impl SignaturePolicy {
    /// Parses `off`, `verify-if-signed` or `require-signed`.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "off" | "none" => Ok(Self::Off),
            "verify-if-signed" | "verify" => Ok(Self::VerifyIfSigned),
            "require-signed" | "require" => Ok(Self::RequireSigned),
            other => Err(Error::invalid_parameter(format!(
                "signature policy `{other}`: expected off, verify-if-signed or require-signed"
            ))),
        }
    }
}

/// A cosign public key with its policy.
#[derive(Debug, Clone)]
pub struct CosignVerifier {
    key: VerifyingKey,
    policy: SignaturePolicy,
}

/// The result of a signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// A valid signature by the key was found (the signature manifest's digest).
    Signed(Digest),
    /// No signature exists (and the policy allows that).
    Unsigned,
    /// The policy is off.
    Skipped,
}

impl CosignVerifier {
    /// A verifier for the PEM public key `pem` (`-----BEGIN PUBLIC KEY-----`, ECDSA P-256).
    pub fn from_pem(pem: &str, policy: SignaturePolicy) -> Result<Self> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
            Error::invalid_parameter(format!(
                "cosign public key is not an ECDSA P-256 PEM public key: {e}"
            ))
        })?;
        Ok(Self { key, policy })
    }

    /// The policy.
    pub fn policy(&self) -> SignaturePolicy {
        self.policy
    }

    /// Checks the signature of image `digest` in `repo` according to the policy.
    pub async fn verify(&self, repo: &OciRepo, digest: &Digest) -> Result<Verification> {
        if self.policy == SignaturePolicy::Off {
            return Ok(Verification::Skipped);
        }
        let refuse = |reason: String| {
            Error::new(ErrorKind::PolicyRefused, reason)
                .with_endpoint(repo.label())
                .with_artifact(format!("image {digest}"))
        };
        let tag = format!("{}.sig", digest.tag_form());
        let Some(sig_digest) = repo.tag_digest(&tag).await? else {
            return match self.policy {
                SignaturePolicy::RequireSigned => Err(refuse(format!(
                    "unsigned: no cosign signature ({tag}) and the policy requires one"
                ))),
                _ => Ok(Verification::Unsigned),
            };
        };
        let manifest = repo.fetch_root(None, Some(&sig_digest)).await?;
        #[derive(serde::Deserialize)]
        struct Layers {
            #[serde(default)]
            layers: Vec<Descriptor>,
        }
        let layers: Layers = serde_json::from_slice(&manifest.bytes)
            .map_err(|e| refuse(format!("signature manifest {tag} is not a manifest: {e}")))?;
        let mut problems = Vec::new();
        for layer in layers.layers {
            let Some(signature_b64) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
                continue;
            };
            match self.check_layer(repo, &layer, signature_b64, digest).await {
                Ok(()) => return Ok(Verification::Signed(sig_digest)),
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() {
            problems.push("no signature layer".into());
        }
        Err(refuse(format!(
            "no valid signature by the configured key in {tag}: {}",
            problems.join("; ")
        )))
    }

    async fn check_layer(
        &self,
        repo: &OciRepo,
        layer: &Descriptor,
        signature_b64: &str,
        image: &Digest,
    ) -> std::result::Result<(), String> {
        use base64::Engine as _;
        if layer.size as usize > PAYLOAD_LIMIT_BYTES {
            return Err(format!(
                "payload {} is larger than {PAYLOAD_LIMIT_BYTES} bytes",
                layer.digest
            ));
        }
        let mut stream = repo
            .open_blob(&layer.digest, 0)
            .await
            .map_err(|e| e.to_string())?;
        let mut payload = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            payload.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
            if payload.len() > PAYLOAD_LIMIT_BYTES {
                return Err("payload too large".into());
            }
        }
        if Digest::of(&payload) != layer.digest {
            return Err(format!(
                "payload does not match its digest {}",
                layer.digest
            ));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .map_err(|e| format!("signature is not base64: {e}"))?;
        let signature = Signature::from_der(&raw)
            .or_else(|_| Signature::from_slice(&raw))
            .map_err(|e| format!("signature is not ECDSA: {e}"))?;
        self.key
            .verify(&payload, &signature)
            .map_err(|_| "signature does not verify with the configured key".to_string())?;
        let doc: serde_json::Value =
            serde_json::from_slice(&payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        let signed = doc["critical"]["image"]["docker-manifest-digest"]
            .as_str()
            .unwrap_or_default();
        if signed != image.as_str() {
            return Err(format!("the signature is for {signed:?}, not {image}"));
        }
        Ok(())
    }
}
