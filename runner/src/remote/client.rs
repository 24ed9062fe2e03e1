//! The connection to a REAPI service: endpoint and TLS, headers on every call,
//! capabilities, retries of transient failures, and the CAS transfers (find missing,
//! batch or stream uploads and downloads, each blob checked against its digest).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::transport::Transport;
use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::bytestream::{
    byte_stream_client::ByteStreamClient, ReadRequest, WriteRequest,
};
use re::Digest;
use sha2::{Digest as _, Sha256};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

use super::digest::{self, show};
use super::error::{JobLabel, RemoteError};
use super::tree::Source;
use super::Settings;

const SHA256: i32 = re::digest_function::Value::Sha256 as i32;
/// gRPC's default message limit: the batch budget when the server announces none.
const DEFAULT_BATCH_LIMIT: u64 = 4 << 20;
/// Room for the framing of a batch (digests, field tags) beside the blobs' bytes.
const BATCH_OVERHEAD: u64 = 64 << 10;
/// ByteStream chunks.
const CHUNK: usize = 1 << 20;
/// How long a plain call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Tries of a call that fails with UNAVAILABLE or RESOURCE_EXHAUSTED (delays 0.1 s,
/// 0.2 s, 0.4 s, 0.8 s between them: 1.5 s in all).
const TRIES: u32 = 5;

/// What the server said it can do.
#[derive(Debug, Clone)]
pub(crate) struct Capabilities {
    pub exec_enabled: bool,
    /// Bytes of blob data one batch call may carry.
    pub batch_budget: u64,
    /// REAPI 2.1 or later: commands name outputs with `output_paths`.
    pub output_paths: bool,
}

/// A connected client.
pub(crate) struct Client {
    pub endpoint: String,
    channel: Transport,
    instance: String,
    headers: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    pub caps: Capabilities,
    /// Blobs this session knows the server has (found or uploaded).
    present: Mutex<HashSet<Digest>>,
    /// One upload at a time per blob, however many jobs need it.
    uploading: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

/// Bytes moved for one job.
#[derive(Debug, Default)]
pub(crate) struct Transfer {
    pub uploaded: AtomicU64,
    pub downloaded: AtomicU64,
}

fn settings_err(endpoint: &str, what: impl Into<String>) -> RemoteError {
    RemoteError::Settings {
        endpoint: endpoint.to_string(),
        what: what.into(),
    }
}

impl Client {
    /// Connects (within `connect_timeout`) and reads the capabilities.
    pub(crate) async fn connect(
        settings: &Settings,
        connect_timeout: Duration,
    ) -> Result<Client, RemoteError> {
        let given = settings.endpoint.as_str();
        let (uri, tls) = if let Some(rest) = given.strip_prefix("grpc://") {
            (format!("http://{rest}"), false)
        } else if let Some(rest) = given.strip_prefix("grpcs://") {
            (format!("https://{rest}"), true)
        } else if let Some(rest) = given.strip_prefix("http://") {
            (format!("http://{rest}"), false)
        } else if let Some(rest) = given.strip_prefix("https://") {
            (format!("https://{rest}"), true)
        } else if given.starts_with("unix:") {
            if cfg!(windows) {
                return Err(settings_err(
                    given,
                    "Unix socket endpoints are not supported on Windows",
                ));
            }
            (given.to_string(), false)
        } else {
            return Err(settings_err(
                given,
                "expected grpc://HOST:PORT, grpcs://HOST:PORT or unix:///PATH",
            ));
        };
        let mut endpoint =
            Endpoint::from_shared(uri).map_err(|e| settings_err(given, format!("{e}")))?;
        endpoint = endpoint
            .connect_timeout(connect_timeout)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            // A server that dies or hangs is noticed within 20 s even mid-action.
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        let has_tls_files = settings.tls_ca.is_some()
            || settings.tls_client_cert.is_some()
            || settings.tls_client_key.is_some();
        if tls || has_tls_files {
            if !tls {
                return Err(settings_err(
                    given,
                    "TLS files are given for an endpoint without TLS (use grpcs://)",
                ));
            }
            endpoint = endpoint
                .tls_config(tls_config(settings)?)
                .map_err(|e| settings_err(given, format!("TLS: {}", error_chain(&e))))?;
        }
        let headers = settings
            .headers
            .iter()
            .map(|(k, v)| {
                let key = AsciiMetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                    .map_err(|_| settings_err(given, format!("header {k:?}: not a valid name")))?;
                let value = AsciiMetadataValue::try_from(v.as_str())
                    .map_err(|_| settings_err(given, format!("header {k:?}: not a valid value")))?;
                Ok((key, value))
            })
            .collect::<Result<Vec<_>, RemoteError>>()?;
        let connect_err = |what: String| RemoteError::Connect {
            endpoint: given.to_string(),
            what,
        };
        let channel = match tokio::time::timeout(
            connect_timeout + Duration::from_secs(1),
            endpoint.connect(),
        )
        .await
        {
            Ok(Ok(c)) => Transport::new(c),
            Ok(Err(e)) => return Err(connect_err(error_chain(&e))),
            Err(_) => {
                return Err(connect_err(format!(
                    "no answer within {} s",
                    connect_timeout.as_secs()
                )))
            }
        };
        let mut client = Client {
            endpoint: given.to_string(),
            channel,
            instance: settings.instance_name.clone(),
            headers,
            caps: Capabilities {
                exec_enabled: false,
                batch_budget: DEFAULT_BATCH_LIMIT - BATCH_OVERHEAD,
                output_paths: true,
            },
            present: Mutex::new(HashSet::new()),
            uploading: Mutex::new(HashMap::new()),
        };
        client.caps = client.capabilities(connect_timeout).await?;
        Ok(client)
    }

    async fn capabilities(&self, timeout: Duration) -> Result<Capabilities, RemoteError> {
        let req = re::GetCapabilitiesRequest {
            instance_name: self.instance.clone(),
        };
        let caps = tokio::time::timeout(
            timeout,
            re::capabilities_client::CapabilitiesClient::new(self.channel.clone())
                .get_capabilities(self.request(req)),
        )
        .await
        .map_err(|_| RemoteError::Connect {
            endpoint: self.endpoint.clone(),
            what: "GetCapabilities got no answer".into(),
        })?
        .map_err(|s| self.rpc_err("GetCapabilities", JobLabel(None), s))?
        .into_inner();
        let unsupported = |what: String| RemoteError::Unsupported {
            endpoint: self.endpoint.clone(),
            what,
        };
        let cache = caps.cache_capabilities.unwrap_or_default();
        if !cache.digest_functions.is_empty() && !cache.digest_functions.contains(&SHA256) {
            return Err(unsupported(format!(
                "it does not offer SHA-256 digests (it offers {:?})",
                cache.digest_functions
            )));
        }
        let exec_enabled = caps
            .execution_capabilities
            .as_ref()
            .is_some_and(|e| e.exec_enabled);
        if let Some(exec) = caps
            .execution_capabilities
            .as_ref()
            .filter(|e| e.exec_enabled)
        {
            let fns = &exec.digest_functions;
            if exec.digest_function != SHA256
                && !fns.contains(&SHA256)
                && (exec.digest_function != 0 || !fns.is_empty())
            {
                return Err(unsupported(
                    "its execution service does not use SHA-256".into(),
                ));
            }
        }
        let limit = match cache.max_batch_total_size_bytes {
            n if n > 0 => n as u64,
            _ => DEFAULT_BATCH_LIMIT,
        };
        let version = caps.high_api_version.map_or((2, 0), |v| (v.major, v.minor));
        Ok(Capabilities {
            exec_enabled,
            batch_budget: limit.saturating_sub(BATCH_OVERHEAD.min(limit / 2)),
            output_paths: version >= (2, 1),
        })
    }

    /// A request with the configured headers.
    pub(crate) fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        for (k, v) in &self.headers {
            req.metadata_mut().insert(k.clone(), v.clone());
        }
        req
    }

    pub(crate) fn rpc_err(&self, rpc: &'static str, job: JobLabel, status: Status) -> RemoteError {
        RemoteError::Rpc {
            endpoint: self.endpoint.clone(),
            job,
            rpc,
            code: status.code(),
            message: status.message().to_string(),
        }
    }

    /// Runs a call, retrying UNAVAILABLE and RESOURCE_EXHAUSTED with backoff, each try
    /// bounded by `timeout`.
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        rpc: &'static str,
        job: JobLabel,
        timeout: Duration,
        mut call: F,
    ) -> Result<T, RemoteError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        self.retry_tries(rpc, job, timeout, || {
            let answer = call();
            async move { answer.await.map_err(TryFailure::Rpc) }
        })
        .await
    }

    /// `retry`, for a call whose try can also fail on this side (a file read for an
    /// upload), which is not tried again.
    async fn retry_tries<T, F, Fut>(
        &self,
        rpc: &'static str,
        job: JobLabel,
        timeout: Duration,
        mut call: F,
    ) -> Result<T, RemoteError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TryFailure>>,
    {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=TRIES {
            let status = match tokio::time::timeout(timeout, call()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(TryFailure::Rpc(s))) => s,
                Ok(Err(TryFailure::Local(error))) => return Err(error),
                Err(_) => {
                    Status::deadline_exceeded(format!("no answer within {} s", timeout.as_secs()))
                }
            };
            if attempt == TRIES || !is_transient(status.code()) {
                let status = match attempt {
                    1 => status,
                    n => Status::new(status.code(), format!("{} (try {n})", status.message())),
                };
                return Err(self.rpc_err(rpc, job, status));
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        unreachable!("the last try returns")
    }

    pub(crate) fn channel(&self) -> Transport {
        self.channel.clone()
    }

    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    fn cas(
        &self,
    ) -> re::content_addressable_storage_client::ContentAddressableStorageClient<Transport> {
        re::content_addressable_storage_client::ContentAddressableStorageClient::new(
            self.channel.clone(),
        )
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
    }

    /// Forgets what this session believed the server has (after it said otherwise).
    pub(crate) fn forget_present(&self, digests: &[(Digest, Source)]) {
        let mut present = lock(&self.present);
        for (d, _) in digests {
            present.remove(d);
        }
    }

    /// Makes sure the server has every blob: asks which are missing, uploads those
    /// (small ones in batches, large ones by ByteStream), each file checked against its
    /// digest as it is read.
    pub(crate) async fn upload_missing(
        &self,
        job: usize,
        blobs: &[(Digest, Source)],
        stats: &Transfer,
    ) -> Result<(), RemoteError> {
        let label = JobLabel(Some(job));
        let unknown: Vec<&(Digest, Source)> = {
            let present = lock(&self.present);
            blobs
                .iter()
                .filter(|(d, _)| d.size_bytes > 0 && !present.contains(d))
                .collect()
        };
        let mut missing: Vec<&(Digest, Source)> = Vec::new();
        for chunk in unknown.chunks(4096) {
            let req = re::FindMissingBlobsRequest {
                instance_name: self.instance.clone(),
                blob_digests: chunk.iter().map(|(d, _)| d.clone()).collect(),
                digest_function: SHA256,
            };
            let answer = self
                .retry("FindMissingBlobs", label, CALL_TIMEOUT, || {
                    let (mut cas, r) = (self.cas(), self.request(req.clone()));
                    async move { cas.find_missing_blobs(r).await }
                })
                .await?
                .into_inner();
            let absent: HashSet<&Digest> = answer.missing_blob_digests.iter().collect();
            let mut present = lock(&self.present);
            for blob in chunk {
                if absent.contains(&blob.0) {
                    missing.push(blob);
                } else {
                    present.insert(blob.0.clone());
                }
            }
        }
        // Each missing blob's gate, taken in digest order (so two jobs cannot wait on
        // each other): a blob another job is uploading is waited for, not sent twice.
        missing.sort_by(|a, b| (&a.0.hash, a.0.size_bytes).cmp(&(&b.0.hash, b.0.size_bytes)));
        let mut held = Vec::with_capacity(missing.len());
        for (d, _) in &missing {
            let gate = lock(&self.uploading).entry(d.clone()).or_default().clone();
            held.push(gate.lock_owned().await);
        }
        let missing: Vec<_> = {
            let present = lock(&self.present);
            missing
                .into_iter()
                .filter(|(d, _)| !present.contains(d))
                .collect()
        };
        let budget = self.caps.batch_budget;
        let (small, large): (Vec<_>, Vec<_>) = missing
            .into_iter()
            .partition(|(d, _)| (d.size_bytes as u64) <= budget);
        // Batches up to the budget.
        let mut batch: Vec<re::batch_update_blobs_request::Request> = Vec::new();
        let mut batch_bytes = 0u64;
        for (d, source) in small {
            if batch_bytes + d.size_bytes as u64 > budget {
                self.batch_update(job, std::mem::take(&mut batch), stats)
                    .await?;
                batch_bytes = 0;
            }
            let data = read_checked(job, d, source)?;
            batch_bytes += data.len() as u64;
            batch.push(re::batch_update_blobs_request::Request {
                digest: Some(d.clone()),
                data,
                compressor: 0,
            });
        }
        if !batch.is_empty() {
            self.batch_update(job, batch, stats).await?;
        }
        for (d, source) in large {
            self.write_stream(job, d, source, stats).await?;
            lock(&self.present).insert(d.clone());
        }
        drop(held);
        Ok(())
    }

    async fn batch_update(
        &self,
        job: usize,
        requests: Vec<re::batch_update_blobs_request::Request>,
        stats: &Transfer,
    ) -> Result<(), RemoteError> {
        let digests: Vec<Digest> = requests.iter().filter_map(|r| r.digest.clone()).collect();
        let bytes: u64 = requests.iter().map(|r| r.data.len() as u64).sum();
        let req = re::BatchUpdateBlobsRequest {
            instance_name: self.instance.clone(),
            requests,
            digest_function: SHA256,
        };
        let answer = self
            .retry(
                "BatchUpdateBlobs",
                JobLabel(Some(job)),
                CALL_TIMEOUT,
                || {
                    let (mut cas, r) = (self.cas(), self.request(req.clone()));
                    async move { cas.batch_update_blobs(r).await }
                },
            )
            .await?
            .into_inner();
        for r in &answer.responses {
            if let Some(s) = r.status.as_ref().filter(|s| s.code != 0) {
                return Err(self.rpc_err(
                    "BatchUpdateBlobs",
                    JobLabel(Some(job)),
                    Status::new(
                        Code::from(s.code),
                        format!(
                            "blob {}: {}",
                            r.digest.as_ref().map(show).unwrap_or_default(),
                            s.message
                        ),
                    ),
                ));
            }
        }
        stats.uploaded.fetch_add(bytes, Ordering::Relaxed);
        lock(&self.present).extend(digests);
        Ok(())
    }

    /// Uploads one blob by ByteStream Write, reading its file in chunks on a blocking
    /// thread; a file that changed since it was hashed ends the upload unfinished.
    /// A transient failure starts the upload again, from the start, as a new one.
    async fn write_stream(
        &self,
        job: usize,
        d: &Digest,
        source: &Source,
        stats: &Transfer,
    ) -> Result<(), RemoteError> {
        let timeout = CALL_TIMEOUT + Duration::from_secs(d.size_bytes as u64 / (1 << 20));
        self.retry_tries("ByteStream.Write", JobLabel(Some(job)), timeout, || {
            self.write_stream_once(job, d, source)
        })
        .await?;
        stats
            .uploaded
            .fetch_add(d.size_bytes as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn write_stream_once(
        &self,
        job: usize,
        d: &Digest,
        source: &Source,
    ) -> Result<(), TryFailure> {
        let resource = format!(
            "{}uploads/{}/blobs/{}/{}",
            self.prefix(),
            uuid(),
            d.hash,
            d.size_bytes
        );
        let (tx, rx) = tokio::sync::mpsc::channel::<WriteRequest>(4);
        let source_kept = source.clone();
        let (source, expected, resource2) = (source.clone(), d.clone(), resource.clone());
        let producer = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
            let mut reader: Box<dyn Read> = match &source {
                Source::File(p) => Box::new(std::fs::File::open(p)?),
                Source::Bytes(b) => Box::new(std::io::Cursor::new(b.as_ref().clone())),
            };
            let mut hasher = Sha256::new();
            let mut offset = 0i64;
            let mut first = true;
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = read_full(&mut reader, &mut buf)?;
                buf.truncate(n);
                hasher.update(&buf);
                let end = offset + n as i64;
                let last = n < CHUNK || end == expected.size_bytes;
                if last
                    && (end != expected.size_bytes
                        || digest::hex(&hasher.clone().finalize()) != expected.hash)
                {
                    return Ok(false); // changed since hashed: leave the write unfinished
                }
                let msg = WriteRequest {
                    resource_name: if first {
                        resource2.clone()
                    } else {
                        String::new()
                    },
                    write_offset: offset,
                    finish_write: last,
                    data: buf,
                };
                first = false;
                offset = end;
                if tx.blocking_send(msg).is_err() || last {
                    return Ok(true);
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let call = ByteStreamClient::new(self.channel.clone())
            .write(self.request(stream))
            .await;
        let unchanged = producer
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r);
        match unchanged {
            Ok(true) => {}
            Ok(false) => return Err(TryFailure::Local(changed(job, &source_kept))),
            Err(e) => {
                return Err(TryFailure::Local(RemoteError::Input {
                    job,
                    declared: source_name(&source_kept),
                    source: e,
                }))
            }
        }
        let answer = call?.into_inner();
        // A server that has the blob already may answer early with its full size.
        if answer.committed_size != d.size_bytes && answer.committed_size != -1 {
            return Err(TryFailure::Rpc(Status::data_loss(format!(
                "{resource}: committed {} of {} bytes",
                answer.committed_size, d.size_bytes
            ))));
        }
        Ok(())
    }

    /// Downloads one blob (batch or ByteStream), checked against its digest; `what`
    /// names it in errors.
    pub(crate) async fn download(
        &self,
        job: usize,
        d: &Digest,
        what: &str,
        stats: &Transfer,
    ) -> Result<Vec<u8>, RemoteError> {
        if d.size_bytes == 0 {
            return Ok(Vec::new());
        }
        let label = JobLabel(Some(job));
        if d.size_bytes < 0 {
            return Err(self.rpc_err(
                "download",
                label,
                Status::data_loss(format!("{what}: the server names a blob of negative size")),
            ));
        }
        let data = if d.size_bytes as u64 <= self.caps.batch_budget {
            let req = re::BatchReadBlobsRequest {
                instance_name: self.instance.clone(),
                digests: vec![d.clone()],
                acceptable_compressors: Vec::new(),
                digest_function: SHA256,
            };
            let answer = self
                .retry("BatchReadBlobs", label, CALL_TIMEOUT, || {
                    let (mut cas, r) = (self.cas(), self.request(req.clone()));
                    async move { cas.batch_read_blobs(r).await }
                })
                .await?
                .into_inner();
            let r = answer
                .responses
                .into_iter()
                .find(|r| r.digest.as_ref() == Some(d));
            let Some(r) = r else {
                return Err(self.rpc_err(
                    "BatchReadBlobs",
                    label,
                    Status::data_loss(format!("no answer for blob {} ({what})", show(d))),
                ));
            };
            if let Some(s) = r.status.filter(|s| s.code != 0) {
                return Err(self.rpc_err(
                    "BatchReadBlobs",
                    label,
                    Status::new(
                        Code::from(s.code),
                        format!("blob {} ({what}): {}", show(d), s.message),
                    ),
                ));
            }
            r.data
        } else {
            let resource = format!("{}blobs/{}/{}", self.prefix(), d.hash, d.size_bytes);
            let timeout = CALL_TIMEOUT + Duration::from_secs(d.size_bytes as u64 / (1 << 20));
            // Each try reads the blob from its start.
            let read = || async {
                let req = ReadRequest {
                    resource_name: resource.clone(),
                    read_offset: 0,
                    read_limit: 0,
                };
                let mut stream = ByteStreamClient::new(self.channel.clone())
                    .read(self.request(req))
                    .await?
                    .into_inner();
                // The size is the server's word: room for it is made as bytes come.
                let mut data = Vec::with_capacity((d.size_bytes as usize).min(CHUNK * 16));
                while let Some(chunk) = stream.message().await? {
                    if data.len() + chunk.data.len() > d.size_bytes as usize {
                        return Err(Status::out_of_range("more bytes than the digest's size"));
                    }
                    data.extend_from_slice(&chunk.data);
                }
                Ok(data)
            };
            self.retry("ByteStream.Read", label, timeout, read).await?
        };
        if digest::of_bytes(&data) != *d {
            return Err(RemoteError::Corrupt {
                job,
                endpoint: self.endpoint.clone(),
                digest: show(d),
                what: what.to_string(),
            });
        }
        stats
            .downloaded
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(data)
    }

    /// `INSTANCE/` or nothing, in front of ByteStream resource names.
    fn prefix(&self) -> String {
        if self.instance.is_empty() {
            String::new()
        } else {
            format!("{}/", self.instance)
        }
    }
}

/// Why one try of a call failed.
enum TryFailure {
    /// The service's answer: tried again if it is transient.
    Rpc(Status),
    /// Something on this side (a file read for an upload): not tried again.
    Local(RemoteError),
}

impl From<Status> for TryFailure {
    fn from(status: Status) -> TryFailure {
        TryFailure::Rpc(status)
    }
}

/// Transient failures, worth another try.
fn is_transient(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::ResourceExhausted)
}

fn tls_config(settings: &Settings) -> Result<ClientTlsConfig, RemoteError> {
    let read = |p: &Path, what: &str| {
        std::fs::read(p)
            .map_err(|e| settings_err(&settings.endpoint, format!("{what} {}: {e}", p.display())))
    };
    let mut tls = ClientTlsConfig::new();
    tls = match &settings.tls_ca {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?)),
        None => system_roots(tls),
    };
    match (&settings.tls_client_cert, &settings.tls_client_key) {
        (Some(cert), Some(key)) => Ok(tls.identity(Identity::from_pem(
            read(cert, "client certificate")?,
            read(key, "client key")?,
        ))),
        (None, None) => Ok(tls),
        _ => Err(settings_err(
            &settings.endpoint,
            "mutual TLS needs both a client certificate and its key",
        )),
    }
}

/// The system's root certificates, or Mozilla's where the system has none to give.
#[cfg(not(target_vendor = "apple"))]
fn system_roots(tls: ClientTlsConfig) -> ClientTlsConfig {
    use base64::Engine as _;
    let mut pem = String::new();
    for cert in rustls_native_certs::load_native_certs().certs {
        let text = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        // Base64 is ASCII: every 64-byte piece is whole characters.
        for line in text.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    if pem.is_empty() {
        return tls.with_webpki_roots();
    }
    tls.ca_certificate(Certificate::from_pem(pem))
}

/// Mozilla's roots, built in: the system's store is read through the Security
/// framework, which a build without Apple's SDK cannot link.
#[cfg(target_vendor = "apple")]
fn system_roots(tls: ClientTlsConfig) -> ClientTlsConfig {
    tls.with_webpki_roots()
}

/// A transport error with its causes, which say what actually failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        // Layers often repeat their cause's words ("tcp connect error: tcp connect
        // error: refused"): each is said once.
        let cause = s.to_string();
        if !text.ends_with(&cause) {
            let cause = cause
                .strip_prefix(text.rsplit(": ").next().unwrap_or(""))
                .map_or(cause.as_str(), |rest| rest.trim_start_matches(": "));
            if !cause.is_empty() {
                text.push_str(": ");
                text.push_str(cause);
            }
        }
        source = s.source();
    }
    text
}

/// A blob's bytes, checked against its digest (a file may have changed since).
fn read_checked(job: usize, d: &Digest, source: &Source) -> Result<Vec<u8>, RemoteError> {
    let data = match source {
        Source::Bytes(b) => return Ok(b.as_ref().clone()),
        Source::File(p) => std::fs::read(p).map_err(|e| RemoteError::Input {
            job,
            declared: p.display().to_string(),
            source: e,
        })?,
    };
    if digest::of_bytes(&data) != *d {
        return Err(changed(job, source));
    }
    Ok(data)
}

fn changed(job: usize, source: &Source) -> RemoteError {
    RemoteError::Input {
        job,
        declared: source_name(source),
        source: std::io::Error::other("the file changed while it was being sent"),
    }
}

fn source_name(source: &Source) -> String {
    match source {
        Source::File(p) => p.display().to_string(),
        Source::Bytes(_) => "(a message)".to_string(),
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A random (version 4) UUID for an upload's resource name.
fn uuid() -> String {
    let mut b = [0u8; 16];
    // Without randomness a counter still gives distinct names within this process.
    if getrandom::fill(&mut b).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        b[..8].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = digest::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_v4_shape() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uuid());
    }

    #[test]
    fn only_unavailable_and_resource_exhausted_are_retried() {
        assert!(is_transient(Code::Unavailable) && is_transient(Code::ResourceExhausted));
        assert!(
            !is_transient(Code::NotFound)
                && !is_transient(Code::FailedPrecondition)
                && !is_transient(Code::DeadlineExceeded)
        );
    }
}
