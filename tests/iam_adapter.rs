//! IAM adapter behaviour the emulator cannot show: a credential report that is missing, then
//! still being generated; a report that is fresh enough to reuse; pagination of access keys.
//! Uses aws-smithy-mocks (mocked responses through the real SDK client and adapter code).

use aws_sdk_iam::operation::generate_credential_report::GenerateCredentialReportOutput;
use aws_sdk_iam::operation::get_credential_report::{
    GetCredentialReportError, GetCredentialReportOutput,
};
use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
use aws_sdk_iam::types::error::{
    CredentialReportNotPresentException, CredentialReportNotReadyException,
};
use aws_sdk_iam::types::{AccessKeyMetadata, ReportStateType, StatusType};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::{Blob, DateTime as SmithyTime};
use chrono::{TimeZone, Utc};
use keyrotor::aws::iam::IamClient;
use keyrotor::domain::model::KeyStatus;
use keyrotor::ports::IamInventory;

const REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n\
alice,arn:aws:iam::123456789012:user/apps/alice,2026-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-01-02T00:00:00+00:00,2026-02-01T10:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n";

/// The adapter over a mocked client, paced at the default IAM rate.
fn adapter(client: aws_sdk_iam::Client) -> IamClient {
    let rate = keyrotor::domain::policy::PacingPolicy::DEFAULT.iam;
    IamClient::new(
        client,
        std::sync::Arc::new(keyrotor::aws::Pacer::new(rate.per_second, rate.burst)),
    )
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
}

#[tokio::test]
async fn missing_report_is_generated_and_waited_for_while_in_progress() {
    // GIVEN no report, then one being generated, then the report
    let get = mock!(aws_sdk_iam::Client::get_credential_report)
        .sequence()
        .error(|| {
            GetCredentialReportError::CredentialReportNotPresentException(
                CredentialReportNotPresentException::builder()
                    .message("not present")
                    .build(),
            )
        })
        .error(|| {
            GetCredentialReportError::CredentialReportNotReadyException(
                CredentialReportNotReadyException::builder()
                    .message("in progress")
                    .build(),
            )
        })
        .times(2)
        .output(|| {
            GetCredentialReportOutput::builder()
                .content(Blob::new(REPORT))
                .generated_time(SmithyTime::from_secs(now().timestamp() - 60))
                .build()
        })
        .build();
    let generate = mock!(aws_sdk_iam::Client::generate_credential_report).then_output(|| {
        GenerateCredentialReportOutput::builder()
            .state(ReportStateType::Started)
            .build()
    });
    let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&get, &generate]);

    // WHEN the adapter reads the report
    let rows = adapter(client).credential_report(now(), 4).await.unwrap();

    // THEN it generated once, polled through "in progress", and parsed the result
    assert_eq!(generate.num_calls(), 1);
    assert_eq!(get.num_calls(), 4);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user, "alice");
    assert_eq!(
        rows[0].keys[0]
            .last_used
            .as_ref()
            .unwrap()
            .service
            .as_deref(),
        Some("s3")
    );
}

#[tokio::test]
async fn a_fresh_report_is_reused_without_generating() {
    let get = mock!(aws_sdk_iam::Client::get_credential_report).then_output(|| {
        GetCredentialReportOutput::builder()
            .content(Blob::new(REPORT))
            .generated_time(SmithyTime::from_secs(now().timestamp() - 3600))
            .build()
    });
    let generate = mock!(aws_sdk_iam::Client::generate_credential_report).then_output(|| {
        GenerateCredentialReportOutput::builder()
            .state(ReportStateType::Complete)
            .build()
    });
    let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&get, &generate]);

    let rows = adapter(client).credential_report(now(), 4).await.unwrap();

    assert_eq!(rows.len(), 1);
    assert_eq!(get.num_calls(), 1);
    assert_eq!(
        generate.num_calls(),
        0,
        "a report younger than 4 hours is reused"
    );
}

#[tokio::test]
async fn a_stale_report_is_regenerated() {
    let get = mock!(aws_sdk_iam::Client::get_credential_report).then_output(|| {
        GetCredentialReportOutput::builder()
            .content(Blob::new(REPORT))
            .generated_time(SmithyTime::from_secs(now().timestamp() - 5 * 3600))
            .build()
    });
    let generate = mock!(aws_sdk_iam::Client::generate_credential_report).then_output(|| {
        GenerateCredentialReportOutput::builder()
            .state(ReportStateType::Complete)
            .build()
    });
    let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&get, &generate]);

    adapter(client).credential_report(now(), 4).await.unwrap();

    assert_eq!(generate.num_calls(), 1);
    assert_eq!(get.num_calls(), 2);
}

#[tokio::test]
async fn a_corrupt_report_is_an_error_not_a_panic() {
    let get = mock!(aws_sdk_iam::Client::get_credential_report).then_output(|| {
        GetCredentialReportOutput::builder()
            .content(Blob::new("user,arn\nalice\n"))
            .generated_time(SmithyTime::from_secs(now().timestamp()))
            .build()
    });
    let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&get]);
    let err = adapter(client)
        .credential_report(now(), 4)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("credential report"), "{err}");
}

fn key(id: &str, status: StatusType) -> AccessKeyMetadata {
    AccessKeyMetadata::builder()
        .user_name("alice")
        .access_key_id(id)
        .status(status)
        .create_date(SmithyTime::from_secs(1_767_312_000))
        .build()
}

#[tokio::test]
async fn access_keys_are_read_across_pages() {
    // GIVEN two pages of keys
    let pages = mock!(aws_sdk_iam::Client::list_access_keys)
        .sequence()
        .output(|| {
            ListAccessKeysOutput::builder()
                .access_key_metadata(key("AKIAAAAAAAAAAAAAAAA1", StatusType::Active))
                .is_truncated(true)
                .marker("page-2")
                .build()
                .unwrap()
        })
        .output(|| {
            ListAccessKeysOutput::builder()
                .access_key_metadata(key("AKIAAAAAAAAAAAAAAAA2", StatusType::Inactive))
                .is_truncated(false)
                .build()
                .unwrap()
        })
        .build();
    let client = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&pages]);

    // WHEN listed
    let keys = adapter(client).access_keys("alice").await.unwrap();

    // THEN both pages are read
    assert_eq!(pages.num_calls(), 2);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].status, KeyStatus::Active);
    assert_eq!(keys[1].status, KeyStatus::Inactive);
    assert_eq!(keys[1].id.as_str(), "AKIAAAAAAAAAAAAAAAA2");
}

#[tokio::test]
async fn a_malformed_key_id_from_aws_is_an_error_not_a_panic() {
    let page = mock!(aws_sdk_iam::Client::list_access_keys).then_output(|| {
        ListAccessKeysOutput::builder()
            .access_key_metadata(key("not-a-key", StatusType::Active))
            .build()
            .unwrap()
    });
    let client = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&page]);
    let err = adapter(client).access_keys("alice").await.unwrap_err();
    assert!(err.to_string().contains("iam:ListAccessKeys"), "{err}");
}
