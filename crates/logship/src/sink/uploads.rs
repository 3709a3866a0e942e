//! The S3 multipart uploads in progress under the URL's prefix, for `fsck`. object_store 0.14
//! can abort an upload (`MultipartStore::abort_multipart`) but not list them, so this sends S3's
//! ListMultipartUploads itself: a GET signed with object_store's own `AwsAuthorizer` and the
//! store's credential provider (the same credentials, region and endpoint the shipper uses),
//! its XML read with quick-xml, page by page.

use object_store::aws::{AmazonS3ConfigKey, AwsAuthorizer};
use object_store::client::HttpRequestBody;
use object_store::path::Path;
use serde::Deserialize;
use url::Url;

use super::{BuildError, Sink, build};

/// Why the uploads could not be listed or one aborted.
#[derive(Debug, thiserror::Error)]
pub enum UploadsError {
    /// The S3 client could not be set up.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// object_store failed (credentials, abort).
    #[error(transparent)]
    Store(#[from] object_store::Error),
    /// The listing request failed or its answer could not be read.
    #[error("ListMultipartUploads {url}: {cause}")]
    List {
        /// The request.
        url: String,
        /// What failed.
        cause: String,
    },
}

/// An upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// The object it creates.
    pub path: Path,
    /// Its id.
    pub id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResult {
    #[serde(default)]
    upload: Vec<ListedUpload>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedUpload {
    key: String,
    upload_id: String,
}

/// Where to send the listing and how to sign it.
struct Target {
    base: Url,
    region: String,
    store: object_store::aws::AmazonS3,
}

impl Sink {
    /// The multipart uploads in progress under the prefix; `None` for stores other than S3.
    pub async fn uploads(&self) -> Result<Option<Vec<Upload>>, UploadsError> {
        if !matches!(self.url.scheme(), "s3" | "s3a") {
            return Ok(None);
        }
        let target = self.target()?;
        let client = reqwest::Client::builder()
            .timeout(self.options.request_timeout)
            .build()
            .map_err(|e| list_err(&self.url, e))?;
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let page = self.list_page(&target, &client, markers.as_ref()).await?;
            out.extend(page.upload.into_iter().map(|u| Upload {
                path: Path::from(u.key),
                id: u.upload_id,
            }));
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(k), Some(u)) => markers = Some((k, u)),
                _ => return Ok(Some(out)),
            }
        }
    }

    /// Aborts an upload (object_store's own call).
    pub async fn abort_upload(&self, upload: &Upload) -> Result<(), UploadsError> {
        match &self.multipart {
            Some(mp) => Ok(mp.abort_multipart(&upload.path, &upload.id).await?),
            None => Ok(()),
        }
    }

    fn target(&self) -> Result<Target, BuildError> {
        let builder = build::s3_builder(&self.url, &self.options)?;
        let region = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .unwrap_or_else(|| "us-east-1".into());
        // The builder parses its URL only when it builds: the bucket is the URL's host.
        let bucket = self.url.host_str().unwrap_or_default();
        let base = match builder.get_config_value(&AmazonS3ConfigKey::Endpoint) {
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
        };
        let base = Url::parse(&base).map_err(|e| BuildError::Scheme(format!("{base}: {e}")))?;
        Ok(Target {
            base,
            region,
            store: builder.build()?,
        })
    }

    async fn list_page(
        &self,
        target: &Target,
        client: &reqwest::Client,
        markers: Option<&(String, String)>,
    ) -> Result<ListResult, UploadsError> {
        let mut url = target.base.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_key_only("uploads");
            if !self.prefix.as_ref().is_empty() {
                q.append_pair("prefix", &format!("{}/", self.prefix));
            }
            if let Some((key, id)) = markers {
                q.append_pair("key-marker", key);
                q.append_pair("upload-id-marker", id);
            }
        }
        let credential = target.store.credentials().get_credential().await?;
        let mut request = http::Request::get(url.as_str())
            .body(HttpRequestBody::empty())
            .map_err(|e| list_err(&url, e))?;
        AwsAuthorizer::new(&credential, "s3", &target.region).try_authorize(&mut request, None)?;
        let response = client
            .get(url.as_str())
            .headers(request.headers().clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| list_err(&url, e))?;
        let text = response.text().await.map_err(|e| list_err(&url, e))?;
        quick_xml::de::from_str(&text).map_err(|e| list_err(&url, e))
    }
}

fn list_err(url: &Url, e: impl std::fmt::Display) -> UploadsError {
    UploadsError::List {
        url: url.to_string(),
        cause: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_page_reads_uploads_and_markers() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>mpu</Bucket><KeyMarker/><UploadIdMarker/><NextKeyMarker>logs/b</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker><MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated><Upload><UploadId>u1</UploadId><Key>logs/a&amp;1</Key><Initiated>2010-11-10T20:48:33.000Z</Initiated><Owner><ID>x</ID></Owner></Upload><Upload><UploadId>u2</UploadId><Key>logs/b</Key></Upload></ListMultipartUploadsResult>"#;
        let page: ListResult = quick_xml::de::from_str(xml).unwrap();
        let ids: Vec<_> = page
            .upload
            .iter()
            .map(|u| (u.key.as_str(), u.upload_id.as_str()))
            .collect();
        assert_eq!(ids, [("logs/a&1", "u1"), ("logs/b", "u2")]);
        assert!(page.is_truncated);
        assert_eq!(page.next_key_marker.as_deref(), Some("logs/b"));
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("u2"));
    }
}
