//! The S3 upload options users of Vector's and Fluent Bit's S3 sinks expect: server-side
//! encryption (`AES256`, or `aws:kms` with an optional key id), a storage class and object
//! tags, validated once (each error names its flag), plus a Content-MD5 header on every
//! upload so buckets with Object Lock accept it.
//!
//! Encryption is object_store's own S3 setting (`aws_server_side_encryption`,
//! `aws_sse_kms_key_id`): it sends the headers on every PUT and CreateMultipartUpload. Storage
//! class and tags go in each PUT's `PutOptions` (object_store's `Attribute::StorageClass` and
//! `TagSet`). object_store has no Content-MD5 (its checksums are SHA-256 and CRC64-NVMe, sent
//! as `x-amz-checksum-*`), so the S3 client is built with an HTTP connector
//! ([`Md5Connector`]) that hashes each request body it sends and adds the header; the
//! signature does not cover it (S3 does not require that), the body is streamed once for the
//! hash from its shared chunks, never copied.

use base64::Engine as _;
use http_body_util::BodyExt as _;
use md5::{Digest as _, Md5};
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest,
    HttpRequestBody, HttpResponse, HttpService,
};
use object_store::{Attribute, Attributes, PutMode, PutOptions, TagSet};

/// The storage classes S3 accepts (`x-amz-storage-class`).
pub const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
    "EXPRESS_ONEZONE",
];

/// S3 limits on object tags.
const MAX_TAGS: usize = 10;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

/// Validated S3 upload options (`--s3-sse`, `--s3-sse-kms-key-id`, `--s3-storage-class`,
/// `--s3-tags`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Upload {
    /// `AES256` or `aws:kms`.
    pub sse: Option<String>,
    /// The KMS key for `aws:kms` (else the bucket's default key).
    pub sse_kms_key_id: Option<String>,
    /// One of [`STORAGE_CLASSES`].
    pub storage_class: Option<String>,
    /// Object tags, in order.
    pub tags: Vec<(String, String)>,
}

/// The raw flag values.
#[derive(Clone, Debug, Default)]
pub struct S3UploadFlags {
    /// `--s3-sse`.
    pub sse: Option<String>,
    /// `--s3-sse-kms-key-id`.
    pub sse_kms_key_id: Option<String>,
    /// `--s3-storage-class`.
    pub storage_class: Option<String>,
    /// `--s3-tags KEY=VALUE` (repeatable, comma-separated).
    pub tags: Vec<String>,
}

impl S3UploadFlags {
    /// True if no option is set.
    pub fn is_empty(&self) -> bool {
        self.sse.is_none()
            && self.sse_kms_key_id.is_none()
            && self.storage_class.is_none()
            && self.tags.is_empty()
    }

    /// Validates the flags: `Err((flag, message))`.
    pub fn validate(&self) -> Result<S3Upload, (&'static str, String)> {
        let sse = match self.sse.as_deref() {
            None => None,
            Some(v @ ("AES256" | "aws:kms")) => Some(v.to_string()),
            Some(other) => return Err(("s3-sse", format!("{other:?}: use AES256 or aws:kms"))),
        };
        if self.sse_kms_key_id.is_some() && sse.as_deref() != Some("aws:kms") {
            return Err(("s3-sse-kms-key-id", "needs --s3-sse aws:kms".into()));
        }
        if let Some(class) = &self.storage_class
            && !STORAGE_CLASSES.contains(&class.as_str())
        {
            let valid = STORAGE_CLASSES.join(", ");
            return Err(("s3-storage-class", format!("{class:?}: use one of {valid}")));
        }
        Ok(S3Upload {
            sse,
            sse_kms_key_id: self.sse_kms_key_id.clone(),
            storage_class: self.storage_class.clone(),
            tags: parse_tags(&self.tags).map_err(|m| ("s3-tags", m))?,
        })
    }
}

/// `KEY=VALUE` pairs within S3's limits, no key twice.
fn parse_tags(raw: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for pair in raw {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("{pair:?}: expected KEY=VALUE"));
        };
        if k.is_empty() || k.chars().count() > MAX_TAG_KEY {
            return Err(format!("{pair:?}: a key has 1 to {MAX_TAG_KEY} characters"));
        }
        if v.chars().count() > MAX_TAG_VALUE {
            return Err(format!(
                "{pair:?}: a value has at most {MAX_TAG_VALUE} characters"
            ));
        }
        if tags.iter().any(|(seen, _)| seen == k) {
            return Err(format!("{k:?} is given twice"));
        }
        tags.push((k.to_string(), v.to_string()));
    }
    if tags.len() > MAX_TAGS {
        return Err(format!("{} tags; S3 allows at most {MAX_TAGS}", tags.len()));
    }
    Ok(tags)
}

impl S3Upload {
    /// The object_store S3 config keys for the encryption.
    pub(super) fn store_config(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(sse) = &self.sse {
            out.push(("aws_server_side_encryption", sse.clone()));
        }
        if let Some(key) = &self.sse_kms_key_id {
            out.push(("aws_sse_kms_key_id", key.clone()));
        }
        out
    }

    /// The options of a PUT with `mode`: storage class and tags.
    pub(super) fn put_options(&self, mode: PutMode) -> PutOptions {
        let mut tags = TagSet::default();
        for (k, v) in &self.tags {
            tags.push(k, v);
        }
        let mut attributes = Attributes::new();
        if let Some(class) = &self.storage_class {
            attributes.insert(Attribute::StorageClass, class.clone().into());
        }
        PutOptions {
            mode,
            tags,
            attributes,
            ..PutOptions::default()
        }
    }
}

/// Builds the S3 client: reqwest with the sink's timeouts, adding Content-MD5 to each request
/// with a body.
#[derive(Debug)]
pub(super) struct Md5Connector {
    pub(super) timeout: std::time::Duration,
    pub(super) connect_timeout: std::time::Duration,
}

impl HttpConnector for Md5Connector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(Md5Service(client)))
    }
}

#[derive(Debug)]
struct Md5Service(reqwest::Client);

#[async_trait::async_trait]
impl HttpService for Md5Service {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if let Some(md5) = content_md5(req.body()).await? {
            let value = http::HeaderValue::from_str(&md5)
                .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?;
            req.headers_mut().insert("content-md5", value);
        }
        self.0.call(req).await
    }
}

/// base64 of the MD5 of a request body; `None` for an empty one.
async fn content_md5(body: &HttpRequestBody) -> Result<Option<String>, HttpError> {
    if body.content_length() == 0 {
        return Ok(None);
    }
    // A clone shares the body's chunks (`Bytes`); reading it hashes them in place.
    let mut body = body.clone();
    let mut hasher = Md5::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            hasher.update(&data);
        }
    }
    Ok(Some(
        base64::engine::general_purpose::STANDARD.encode(hasher.finalize()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(
        sse: Option<&str>,
        key: Option<&str>,
        class: Option<&str>,
        tags: &[&str],
    ) -> S3UploadFlags {
        S3UploadFlags {
            sse: sse.map(Into::into),
            sse_kms_key_id: key.map(Into::into),
            storage_class: class.map(Into::into),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn valid_options_and_each_bad_one_names_its_flag() {
        let ok = flags(
            Some("aws:kms"),
            Some("k1"),
            Some("STANDARD_IA"),
            &["team=core", "env="],
        );
        let upload = ok.validate().unwrap();
        assert_eq!(upload.tags[1], ("env".into(), String::new()));
        assert_eq!(upload.store_config().len(), 2);
        let long = "k".repeat(129);
        let eleven: Vec<String> = (0..11).map(|i| format!("t{i}=v")).collect();
        let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
        for (bad, flag) in [
            (flags(Some("aes256"), None, None, &[]), "s3-sse"),
            (
                flags(Some("AES256"), Some("k1"), None, &[]),
                "s3-sse-kms-key-id",
            ),
            (flags(None, None, Some("COLD"), &[]), "s3-storage-class"),
            (flags(None, None, None, &["novalue"]), "s3-tags"),
            (flags(None, None, None, &["=v"]), "s3-tags"),
            (flags(None, None, None, &[&format!("{long}=v")]), "s3-tags"),
            (flags(None, None, None, &["a=1", "a=2"]), "s3-tags"),
            (flags(None, None, None, &eleven), "s3-tags"),
        ] {
            assert_eq!(bad.validate().unwrap_err().0, flag, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn content_md5_is_the_base64_md5_of_every_chunk() {
        let payload = object_store::PutPayload::from_iter([
            bytes::Bytes::from_static(b"hello "),
            bytes::Bytes::from_static(b"world"),
        ]);
        let md5 = content_md5(&HttpRequestBody::from(payload)).await.unwrap();
        // printf 'hello world' | openssl md5 -binary | base64
        assert_eq!(md5.as_deref(), Some("XrY7u+Ae7tCTyyK7j1rNww=="));
        assert_eq!(content_md5(&HttpRequestBody::empty()).await.unwrap(), None);
    }
}
