//! ACM: certificates of every key type and status, in one region (read-only).
//!
//! ListCertificates returns only RSA_2048 certificates unless key types are asked for, so
//! every key type is. The list summary carries NotAfter, type, use and renewal eligibility;
//! DescribeCertificate and ListTagsForCertificate are called only for the certificates the
//! caller says need detail (those near or past expiry, or without NotAfter in the summary).
//! Those two calls wait for the region's ACM pacer (10 per second each in AWS); the list
//! pages (1,000 certificates each) are fetched by the SDK's paginator as they are read.

use async_trait::async_trait;
use aws_sdk_acm::types::{CertificateType, Filters, KeyAlgorithm, RenewalEligibility};
use chrono::{DateTime, Utc};

use super::{classify, to_utc};
use crate::domain::model::{CertType, Certificate, Tags};
use crate::ports::{CertInventory, PortResult};

/// [`CertInventory`] over ACM; one client per region.
pub struct AcmInventory {
    aws: super::Aws,
}

impl AcmInventory {
    pub fn new(aws: super::Aws) -> Self {
        Self { aws }
    }
}

fn cert_type(t: Option<&CertificateType>) -> CertType {
    match t {
        Some(CertificateType::AmazonIssued) => CertType::AmazonIssued,
        Some(CertificateType::Imported) => CertType::Imported,
        Some(CertificateType::Private) => CertType::Private,
        _ => CertType::Unknown,
    }
}

fn eligibility(e: Option<&RenewalEligibility>) -> Option<String> {
    e.map(|e| e.as_str().to_owned())
}

#[async_trait]
impl CertInventory for AcmInventory {
    async fn certificates(
        &self,
        region: &str,
        detail_if: &(dyn Fn(Option<DateTime<Utc>>) -> bool + Send + Sync),
    ) -> PortResult<Vec<Certificate>> {
        let client = self.aws.acm(region);
        let pacer = self.aws.pacer(super::Service::Acm {
            region: region.to_owned(),
        });
        let key_types: Vec<KeyAlgorithm> = KeyAlgorithm::values()
            .iter()
            .map(|v| KeyAlgorithm::from(*v))
            .collect();
        let mut stream = client
            .list_certificates()
            .includes(Filters::builder().set_key_types(Some(key_types)).build())
            .max_items(1000)
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(summary) = stream.next().await {
            let s = summary.map_err(|e| classify("acm:ListCertificates", e))?;
            let arn = s.certificate_arn().unwrap_or_default().to_owned();
            let mut cert = Certificate {
                domain: s.domain_name().unwrap_or_default().to_owned(),
                region: region.to_owned(),
                status: s
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                cert_type: cert_type(s.r#type()),
                not_after: s.not_after().and_then(to_utc),
                in_use: s.in_use().unwrap_or(false),
                renewal_eligibility: eligibility(s.renewal_eligibility()),
                renewal_status: None,
                renewal_failure_reason: None,
                validation_method: None,
                key_algorithm: s.key_algorithm().map(|k| k.as_str().to_owned()),
                tags: Tags::new(),
                arn,
            };
            if detail_if(cert.not_after) {
                pacer.wait().await;
                let d = client
                    .describe_certificate()
                    .certificate_arn(&cert.arn)
                    .send()
                    .await
                    .map_err(|e| classify("acm:DescribeCertificate", e))?;
                if let Some(d) = d.certificate() {
                    cert.not_after = d.not_after().and_then(to_utc).or(cert.not_after);
                    cert.cert_type = cert_type(d.r#type());
                    cert.in_use = !d.in_use_by().is_empty() || cert.in_use;
                    cert.renewal_eligibility =
                        eligibility(d.renewal_eligibility()).or(cert.renewal_eligibility);
                    if let Some(r) = d.renewal_summary() {
                        cert.renewal_status = Some(r.renewal_status().as_str().to_owned());
                        cert.renewal_failure_reason =
                            r.renewal_status_reason().map(|f| f.as_str().to_owned());
                    }
                    cert.validation_method = d
                        .domain_validation_options()
                        .iter()
                        .find_map(|o| o.validation_method())
                        .map(|m| m.as_str().to_owned());
                    if let Some(status) = d.status() {
                        cert.status = status.as_str().to_owned();
                    }
                }
                pacer.wait().await;
                let tags = client
                    .list_tags_for_certificate()
                    .certificate_arn(&cert.arn)
                    .send()
                    .await
                    .map_err(|e| classify("acm:ListTagsForCertificate", e))?;
                cert.tags = tags
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
                    .collect();
            }
            out.push(cert);
        }
        Ok(out)
    }
}
