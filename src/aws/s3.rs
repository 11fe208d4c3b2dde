//! S3: the item lists of large plans, read by the sweep's Distributed Map.

use async_trait::async_trait;

use super::classify;
use crate::ports::{ItemStore, PortResult};

/// [`ItemStore`] over S3.
pub struct S3Items {
    client: aws_sdk_s3::Client,
}

impl S3Items {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl ItemStore for S3Items {
    async fn put(&self, bucket: &str, key: &str, body: &str) -> PortResult<()> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("s3:PutObject", e))
    }
}
