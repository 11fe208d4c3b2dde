use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const HEALTH_EXPOSED: &str =
    include_str!("../../../../examples/events/health-credentials-exposed.json");
const HEALTH_QUARANTINE: &str =
    include_str!("../../../../examples/events/health-iam-quarantine.json");
const GUARDDUTY: &str = include_str!("../../../../examples/events/guardduty-finding.json");
const CLOUDTRAIL: &str =
    include_str!("../../../../examples/events/cloudtrail-quarantine-attach.json");
const EXAMPLES: [&str; 4] = [HEALTH_EXPOSED, HEALTH_QUARANTINE, GUARDDUTY, CLOUDTRAIL];

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const OTHER_KEY: &str = "AKIAI44QH8DHBEXAMPLE";
const EXPOSED_ARN: &str = "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_a1b2c3d4-5678-90ab-cdef-EXAMPLE11111";

fn key(id: &str) -> Target {
    Target::Key(AccessKeyId::parse(id).unwrap())
}

/// The example with `change` applied to its JSON.
fn edited(example: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(example).unwrap();
    change(&mut value);
    value.to_string()
}

/// Sets (or adds) the field at a JSON pointer; its parent must exist.
fn set(value: &mut Value, pointer: &str, new: Value) {
    if let Some(slot) = value.pointer_mut(pointer) {
        *slot = new;
        return;
    }
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    value
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(key.to_owned(), new);
}

/// Removes the field at a JSON pointer.
fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    value
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
}

fn error(input: &str) -> EventError {
    decode(input).expect_err("the event should be refused")
}

fn targets(input: &str) -> Vec<Target> {
    decode(input)
        .unwrap()
        .into_iter()
        .map(|e| e.target)
        .collect()
}

// ----- the examples -----

#[test]
fn health_exposed_example_names_its_key() {
    let exposures = decode(HEALTH_EXPOSED).unwrap();
    assert_eq!(
        exposures,
        vec![Exposure {
            target: key(KEY),
            reason: Reason::Exposed,
            trigger: Trigger::Health,
            event_id: EXPOSED_ARN.to_owned(),
            event_type: "AWS_RISK_CREDENTIALS_EXPOSED".to_owned(),
            account: Some("123456789012".to_owned()),
            user: None,
        }]
    );
}

#[test]
fn health_quarantine_example_names_the_key_in_its_metadata_and_the_user_of_its_entity() {
    let exposures = decode(HEALTH_QUARANTINE).unwrap();
    assert_eq!(exposures.len(), 1);
    let e = &exposures[0];
    assert_eq!(e.target, key(KEY));
    assert_eq!(e.reason, Reason::Exposed);
    assert_eq!(e.trigger, Trigger::Health);
    assert_eq!(e.event_type, "AWS_RISK_IAM_QUARANTINE");
    assert!(
        e.event_id
            .starts_with("arn:aws:health:global::event/RISK/AWS_RISK_IAM_QUARANTINE/")
    );
    assert_eq!(e.user.as_deref(), Some("app-deployer"));
}

#[test]
fn guardduty_example_names_its_key_as_compromised() {
    let exposures = decode(GUARDDUTY).unwrap();
    assert_eq!(
        exposures,
        vec![Exposure {
            target: key(KEY),
            reason: Reason::Compromised,
            trigger: Trigger::GuardDuty,
            event_id: "16afba5c5c43e07c9e3e5e2e544e95df".to_owned(),
            event_type: "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom".to_owned(),
            account: Some("123456789012".to_owned()),
            user: Some("app-deployer".to_owned()),
        }]
    );
}

#[test]
fn cloudtrail_example_names_the_quarantined_user() {
    let exposures = decode(CLOUDTRAIL).unwrap();
    assert_eq!(
        exposures,
        vec![Exposure {
            target: Target::User("app-deployer".to_owned()),
            reason: Reason::Exposed,
            trigger: Trigger::CloudTrail,
            event_id: "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d".to_owned(),
            event_type: "AttachUserPolicy".to_owned(),
            account: Some("123456789012".to_owned()),
            user: Some("app-deployer".to_owned()),
        }]
    );
}

#[test]
fn an_already_parsed_event_decodes_the_same() {
    for example in EXAMPLES {
        let value: Value = serde_json::from_str(example).unwrap();
        assert_eq!(decode_value(&value), decode(example));
    }
}

// ----- AWS Health -----

#[test]
fn each_health_event_type_maps_to_its_reason() {
    let expected = [
        ("AWS_RISK_CREDENTIALS_EXPOSED", Reason::Exposed),
        ("AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED", Reason::Exposed),
        ("AWS_RISK_CREDENTIALS_COMPROMISED", Reason::Compromised),
        (
            "AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED",
            Reason::Compromised,
        ),
        ("AWS_RISK_IAM_QUARANTINE", Reason::Exposed),
    ];
    for (code, reason) in expected {
        let input = edited(HEALTH_EXPOSED, |v| {
            set(v, "/detail/eventTypeCode", json!(code))
        });
        let exposures = decode(&input).unwrap();
        assert_eq!(exposures[0].reason, reason, "{code}");
        assert_eq!(exposures[0].event_type, code);
    }
}

#[test]
fn another_health_event_type_is_refused_with_the_types_keyrotor_responds_to() {
    let input = edited(HEALTH_EXPOSED, |v| {
        set(
            v,
            "/detail/eventTypeCode",
            json!("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"),
        )
    });
    let e = error(&input);
    assert_eq!(
        e.message,
        format!(
            "event (AWS Health AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED, {EXPOSED_ARN}): \
             detail.eventTypeCode \"AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED\" is not a credential \
             exposure; keyrotor responds to AWS_RISK_CREDENTIALS_EXPOSED, \
             AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED, AWS_RISK_CREDENTIALS_COMPROMISED, \
             AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED, AWS_RISK_IAM_QUARANTINE — check the \
             EventBridge rule's pattern"
        )
    );
    assert_eq!(e.event_id.as_deref(), Some(EXPOSED_ARN));
    assert_eq!(
        e.event_type.as_deref(),
        Some("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED")
    );
    assert_eq!(e.to_string(), e.message);
}

#[test]
fn a_health_event_without_a_type_code_is_refused() {
    let input = edited(HEALTH_EXPOSED, |v| remove(v, "/detail/eventTypeCode"));
    let e = error(&input);
    assert!(e.message.contains("has no detail.eventTypeCode"), "{e}");
    assert_eq!(e.event_id.as_deref(), Some(EXPOSED_ARN));
    assert_eq!(e.event_type, None);
}

#[test]
fn the_health_event_id_falls_back_to_the_eventbridge_id() {
    let input = edited(HEALTH_EXPOSED, |v| remove(v, "/detail/eventArn"));
    let exposures = decode(&input).unwrap();
    assert_eq!(
        exposures[0].event_id,
        "7bf73129-1428-4cd3-a780-95db273d1602"
    );
}

#[test]
fn a_health_event_without_any_id_is_refused() {
    let input = edited(HEALTH_EXPOSED, |v| {
        remove(v, "/detail/eventArn");
        remove(v, "/id");
    });
    let e = error(&input);
    assert!(
        e.message
            .contains("names no event id (neither detail.eventArn nor id)"),
        "{e}"
    );
    assert_eq!(e.event_id, None);
}

#[test]
fn the_affected_account_wins_over_the_receiving_account() {
    // An organization's view: the management account receives the member's event.
    let input = edited(HEALTH_EXPOSED, |v| {
        set(v, "/account", json!("111122223333"));
        set(v, "/detail/affectedAccount", json!("444455556666"));
    });
    assert_eq!(
        decode(&input).unwrap()[0].account.as_deref(),
        Some("444455556666")
    );
    let input = edited(HEALTH_EXPOSED, |v| remove(v, "/detail/affectedAccount"));
    assert_eq!(
        decode(&input).unwrap()[0].account.as_deref(),
        Some("123456789012")
    );
}

#[test]
fn an_account_that_is_not_an_account_id_is_refused() {
    let input = edited(HEALTH_EXPOSED, |v| {
        set(v, "/detail/affectedAccount", json!("12345"))
    });
    let e = error(&input);
    assert!(
        e.message
            .contains("detail.affectedAccount \"12345\" is not an account id"),
        "{e}"
    );
    assert_eq!(
        e.event_type.as_deref(),
        Some("AWS_RISK_CREDENTIALS_EXPOSED")
    );
}

#[test]
fn a_key_named_in_several_places_is_one_exposure() {
    let input = edited(HEALTH_EXPOSED, |v| {
        set(
            v,
            "/detail/affectedEntities",
            json!([{ "entityValue": KEY }, { "entityValue": OTHER_KEY }, { "entityValue": KEY }]),
        );
        set(
            v,
            "/detail/eventMetadata",
            json!({ "accessKeyId": OTHER_KEY }),
        );
    });
    assert_eq!(targets(&input), vec![key(KEY), key(OTHER_KEY)]);
}

#[test]
fn the_description_is_read_only_when_nothing_else_names_a_key() {
    // The example's description names the key the entity names: still one exposure.
    assert_eq!(targets(HEALTH_EXPOSED), vec![key(KEY)]);
    let input = edited(HEALTH_EXPOSED, |v| {
        set(
            v,
            "/detail/affectedEntities/0/entityValue",
            json!(OTHER_KEY),
        )
    });
    assert_eq!(targets(&input), vec![key(OTHER_KEY)]);
    let input = edited(HEALTH_EXPOSED, |v| {
        set(v, "/detail/affectedEntities", json!([]))
    });
    assert_eq!(targets(&input), vec![key(KEY)]);
}

#[test]
fn a_description_word_must_be_a_whole_key_id() {
    let input = edited(HEALTH_EXPOSED, |v| {
        set(v, "/detail/affectedEntities", json!([]));
        set(
            v,
            "/detail/eventDescription/0/latestDescription",
            json!(format!(
                "keys x{KEY} {KEY}X AKIAIOSFODNN7EXAMPL and ({OTHER_KEY})"
            )),
        );
    });
    assert_eq!(targets(&input), vec![key(OTHER_KEY)]);
}

#[test]
fn a_temporary_key_id_is_decoded_for_the_caller_to_refuse() {
    let input = edited(HEALTH_EXPOSED, |v| {
        set(
            v,
            "/detail/affectedEntities/0/entityValue",
            json!("ASIAIOSFODNN7EXAMPLE"),
        )
    });
    assert_eq!(targets(&input), vec![key("ASIAIOSFODNN7EXAMPLE")]);
}

#[test]
fn an_invalid_entity_is_skipped_when_another_names_a_key() {
    let input = edited(HEALTH_EXPOSED, |v| {
        set(
            v,
            "/detail/affectedEntities",
            json!([{ "entityValue": "ACCESS_KEY_ID_HERE" }, { "entityValue": OTHER_KEY }]),
        );
    });
    assert_eq!(targets(&input), vec![key(OTHER_KEY)]);
}

#[test]
fn a_health_event_naming_no_key_is_refused_with_what_was_skipped() {
    let input = edited(HEALTH_EXPOSED, |v| {
        set(
            v,
            "/detail/affectedEntities",
            json!([{ "entityValue": "ACCESS_KEY_ID_HERE" }]),
        );
        set(
            v,
            "/detail/eventDescription/0/latestDescription",
            json!("A description."),
        );
    });
    let e = error(&input);
    assert_eq!(
        e.message,
        format!(
            "event (AWS Health AWS_RISK_CREDENTIALS_EXPOSED, {EXPOSED_ARN}): names no access \
             key id in detail.affectedEntities, detail.eventMetadata or the description \
             (detail.affectedEntities[0].entityValue \"ACCESS_KEY_ID_HERE\" is neither an \
             access key id nor an IAM user ARN); respond by hand: keyrotor respond iam-key AKIA…"
        )
    );
    assert_eq!(e.event_id.as_deref(), Some(EXPOSED_ARN));
    assert_eq!(
        e.event_type.as_deref(),
        Some("AWS_RISK_CREDENTIALS_EXPOSED")
    );
}

#[test]
fn a_long_list_of_skipped_values_is_cut_short() {
    let entities: Vec<Value> = (0..50)
        .map(|i| json!({ "entityValue": format!("bad-{i}") }))
        .collect();
    let input = edited(HEALTH_EXPOSED, |v| {
        set(v, "/detail/affectedEntities", Value::Array(entities));
        set(v, "/detail/eventDescription", json!([]));
    });
    let e = error(&input);
    assert!(e.message.contains("; and 47 more)"), "{e}");
    assert!(!e.message.contains("bad-3\""), "{e}");
}

#[test]
fn a_value_shaped_like_a_secret_key_is_withheld_from_messages() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let input = edited(HEALTH_EXPOSED, |v| {
        set(
            v,
            "/detail/affectedEntities",
            json!([{ "entityValue": secret }]),
        );
        set(v, "/detail/eventDescription", json!([]));
    });
    let e = error(&input);
    assert!(!e.message.contains(secret), "{e}");
    assert!(e.message.contains("withheld"), "{e}");
}

#[test]
fn a_user_arn_names_the_user_when_no_key_is_named() {
    let input = edited(HEALTH_QUARANTINE, |v| {
        set(v, "/detail/eventMetadata", json!({}));
        set(v, "/detail/eventDescription", json!([]));
    });
    let exposures = decode(&input).unwrap();
    assert_eq!(exposures.len(), 1);
    assert_eq!(exposures[0].target, Target::User("app-deployer".to_owned()));
    assert_eq!(exposures[0].reason, Reason::Exposed);
}

#[test]
fn a_user_arn_with_a_path_names_the_user() {
    let input = edited(HEALTH_QUARANTINE, |v| {
        set(
            v,
            "/detail/affectedEntities/0/entityValue",
            json!("arn:aws:iam::123456789012:user/division/team/app-deployer"),
        );
    });
    assert_eq!(
        decode(&input).unwrap()[0].user.as_deref(),
        Some("app-deployer")
    );
}

#[test]
fn health_entities_of_the_wrong_type_are_reported() {
    let input = edited(HEALTH_EXPOSED, |v| {
        set(v, "/detail/affectedEntities", json!("AKIA"));
        set(v, "/detail/eventDescription", json!([]));
    });
    let e = error(&input);
    assert!(
        e.message.contains("(detail.affectedEntities is a string)"),
        "{e}"
    );
}

// ----- GuardDuty -----

#[test]
fn a_guardduty_event_that_is_not_a_finding_is_refused() {
    let input = edited(GUARDDUTY, |v| {
        set(
            v,
            "/detail-type",
            json!("GuardDuty Malware Protection Object Scan Result"),
        )
    });
    let e = error(&input);
    assert!(
        e.message.starts_with(
            "event (GuardDuty): detail-type \"GuardDuty Malware Protection Object Scan Result\" \
             is not a finding"
        ),
        "{e}"
    );
}

#[test]
fn a_finding_about_no_access_key_is_refused_with_its_resource_type() {
    let input = edited(GUARDDUTY, |v| {
        set(v, "/detail/resource", json!({ "resourceType": "Instance" }))
    });
    let e = error(&input);
    assert_eq!(
        e.message,
        "event (GuardDuty UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom, \
         16afba5c5c43e07c9e3e5e2e544e95df): names no access key: \
         detail.resource.accessKeyDetails.accessKeyId is missing (resource type \"Instance\"); \
         keyrotor responds to findings about an access key (resource type AccessKey) — check \
         the EventBridge rule's pattern"
    );
    assert_eq!(
        e.event_id.as_deref(),
        Some("16afba5c5c43e07c9e3e5e2e544e95df")
    );
    assert_eq!(
        e.event_type.as_deref(),
        Some("UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom")
    );
}

#[test]
fn a_sample_finding_is_refused_as_a_sample() {
    let input = edited(GUARDDUTY, |v| {
        set(
            v,
            "/detail/resource/accessKeyDetails/accessKeyId",
            json!("GeneratedFindingAccessKeyId"),
        )
    });
    let e = error(&input);
    assert!(
        e.message.contains("is one of GuardDuty's sample findings"),
        "{e}"
    );
}

#[test]
fn a_finding_with_an_invalid_key_id_is_refused() {
    let input = edited(GUARDDUTY, |v| {
        set(
            v,
            "/detail/resource/accessKeyDetails/accessKeyId",
            json!("akia-lower"),
        )
    });
    let e = error(&input);
    assert!(
        e.message.contains(
            "detail.resource.accessKeyDetails.accessKeyId \"akia-lower\" is not an access key id"
        ),
        "{e}"
    );
    assert!(
        e.message
            .ends_with("respond by hand: keyrotor respond iam-key AKIA…"),
        "{e}"
    );
}

#[test]
fn a_finding_without_its_id_is_refused() {
    let input = edited(GUARDDUTY, |v| remove(v, "/detail/id"));
    let e = error(&input);
    assert!(
        e.message.contains("has no detail.id (the finding id)"),
        "{e}"
    );
    // The EventBridge id is kept for the audit record, even though it is not the finding's.
    assert_eq!(
        e.event_id.as_deref(),
        Some("c8c4daa7-a20c-2f03-0070-b7393dd542ad")
    );
}

#[test]
fn a_finding_with_an_odd_user_name_still_names_its_key() {
    let input = edited(GUARDDUTY, |v| {
        set(
            v,
            "/detail/resource/accessKeyDetails/userName",
            json!("not a name"),
        )
    });
    let exposures = decode(&input).unwrap();
    assert_eq!(exposures[0].target, key(KEY));
    assert_eq!(exposures[0].user, None);
}

#[test]
fn a_finding_of_another_account_names_that_account() {
    let input = edited(GUARDDUTY, |v| {
        set(v, "/detail/accountId", json!("444455556666"))
    });
    assert_eq!(
        decode(&input).unwrap()[0].account.as_deref(),
        Some("444455556666")
    );
}

// ----- CloudTrail -----

#[test]
fn attaching_another_policy_is_not_a_quarantine() {
    let input = edited(CLOUDTRAIL, |v| {
        set(
            v,
            "/detail/requestParameters/policyArn",
            json!("arn:aws:iam::aws:policy/ReadOnlyAccess"),
        )
    });
    let e = error(&input);
    assert_eq!(
        e.message,
        "event (CloudTrail AttachUserPolicy, 9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d): \
         detail.requestParameters.policyArn \"arn:aws:iam::aws:policy/ReadOnlyAccess\" is not \
         AWS's quarantine policy (arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine, …V2, \
         …V3), so this is not a quarantine — check the EventBridge rule's pattern"
    );
    assert_eq!(e.event_type.as_deref(), Some("AttachUserPolicy"));
    assert_eq!(
        e.event_id.as_deref(),
        Some("9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d")
    );
}

#[test]
fn a_customer_policy_named_like_the_quarantine_policy_is_not_a_quarantine() {
    let input = edited(CLOUDTRAIL, |v| {
        set(
            v,
            "/detail/requestParameters/policyArn",
            json!("arn:aws:iam::123456789012:policy/AWSCompromisedKeyQuarantineV3"),
        )
    });
    assert!(
        error(&input)
            .message
            .contains("is not AWS's quarantine policy")
    );
}

#[test]
fn every_version_and_partition_of_the_quarantine_policy_is_a_quarantine() {
    for arn in [
        "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine",
        "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2",
        "arn:aws-us-gov:iam::aws:policy/AWSCompromisedKeyQuarantineV3",
    ] {
        let input = edited(CLOUDTRAIL, |v| {
            set(v, "/detail/requestParameters/policyArn", json!(arn))
        });
        assert_eq!(
            targets(&input),
            vec![Target::User("app-deployer".to_owned())],
            "{arn}"
        );
    }
}

#[test]
fn another_api_call_is_refused_with_its_name() {
    let input = edited(CLOUDTRAIL, |v| {
        set(v, "/detail/eventName", json!("DetachUserPolicy"))
    });
    let e = error(&input);
    assert!(
        e.message
            .contains("detail.eventName \"DetachUserPolicy\" is not AttachUserPolicy"),
        "{e}"
    );
    assert_eq!(e.event_type.as_deref(), Some("DetachUserPolicy"));
}

#[test]
fn a_failed_attach_is_not_a_quarantine() {
    let input = edited(CLOUDTRAIL, |v| {
        set(v, "/detail/errorCode", json!("AccessDenied"))
    });
    let e = error(&input);
    assert!(
        e.message.contains(
            "the call failed (detail.errorCode \"AccessDenied\"), so no policy was attached"
        ),
        "{e}"
    );
}

#[test]
fn an_attach_without_a_valid_user_name_is_refused() {
    let input = edited(CLOUDTRAIL, |v| {
        remove(v, "/detail/requestParameters/userName")
    });
    assert!(
        error(&input)
            .message
            .contains("has no detail.requestParameters.userName; respond by hand")
    );
    let input = edited(CLOUDTRAIL, |v| {
        set(v, "/detail/requestParameters/userName", json!("two words"))
    });
    assert!(
        error(&input)
            .message
            .contains("detail.requestParameters.userName \"two words\" is not an IAM user name")
    );
}

#[test]
fn a_cloudtrail_event_of_another_kind_is_refused() {
    let input = edited(CLOUDTRAIL, |v| {
        set(
            v,
            "/detail-type",
            json!("AWS Console Sign In via CloudTrail"),
        )
    });
    assert!(
        error(&input)
            .message
            .starts_with("event (CloudTrail): detail-type \"AWS Console Sign In via CloudTrail\" is not a CloudTrail API call")
    );
}

// ----- the envelope -----

#[test]
fn an_unknown_source_is_refused_with_the_sources_keyrotor_reads() {
    let input = edited(HEALTH_EXPOSED, |v| set(v, "/source", json!("aws.ec2")));
    let e = error(&input);
    assert_eq!(
        e.message,
        "event: source \"aws.ec2\" is not one keyrotor responds to; it reads AWS Health \
         (aws.health), GuardDuty (aws.guardduty) and CloudTrail AttachUserPolicy (aws.iam) \
         events — check the EventBridge rule's pattern"
    );
    assert_eq!(
        e.event_id.as_deref(),
        Some("7bf73129-1428-4cd3-a780-95db273d1602")
    );
}

#[test]
fn a_detail_passed_alone_is_refused_with_the_envelope_it_needs() {
    let detail = serde_json::from_str::<Value>(HEALTH_EXPOSED).unwrap()["detail"].to_string();
    let e = error(&detail);
    assert!(e.message.starts_with("event: has no source;"), "{e}");
    assert!(
        e.message
            .contains("pass the whole event, not only its detail"),
        "{e}"
    );
}

#[test]
fn an_event_without_its_detail_is_refused() {
    for example in EXAMPLES {
        let input = edited(example, |v| remove(v, "/detail"));
        let e = error(&input);
        assert!(e.message.contains("has no detail;"), "{e}");
    }
}

#[test]
fn a_field_of_the_wrong_type_is_named_by_its_path() {
    let input = edited(HEALTH_EXPOSED, |v| {
        set(v, "/detail/eventTypeCode", json!(7))
    });
    let e = error(&input);
    assert!(
        e.message
            .contains("detail.eventTypeCode is a number, expected a string"),
        "{e}"
    );
    let input = edited(GUARDDUTY, |v| set(v, "/detail/resource", json!([])));
    let e = error(&input);
    assert!(
        e.message
            .contains("detail.resource is a list, expected an object"),
        "{e}"
    );
}

#[test]
fn what_is_not_an_event_is_refused() {
    assert!(error("").message.starts_with("event: not valid JSON"));
    assert!(
        error("{\"source\":")
            .message
            .starts_with("event: not valid JSON")
    );
    assert!(
        error("[1, 2]")
            .message
            .starts_with("event: expected a JSON object (an EventBridge event), found a list")
    );
}

#[test]
fn an_event_larger_than_eventbridge_delivers_is_refused() {
    let padding = " ".repeat(MAX_EVENT_BYTES);
    let e = error(&format!("{HEALTH_EXPOSED}{padding}"));
    assert!(e.message.starts_with("event: "), "{e}");
    assert!(
        e.message
            .contains("bytes is more than the 262144 bytes (256 KiB)"),
        "{e}"
    );
    // Exactly at the limit is still read.
    let at_limit = format!(
        "{HEALTH_EXPOSED}{}",
        " ".repeat(MAX_EVENT_BYTES - HEALTH_EXPOSED.len())
    );
    assert_eq!(decode(&at_limit).unwrap().len(), 1);
}

#[test]
fn an_id_with_control_characters_is_refused() {
    let input = edited(HEALTH_EXPOSED, |v| {
        set(v, "/detail/eventArn", json!("arn\nforged"))
    });
    let e = error(&input);
    assert!(
        e.message
            .contains("detail.eventArn \"arn\\nforged\" is not an id"),
        "{e}"
    );
    assert!(!e.message.contains('\n'));
}

// ----- never a panic -----

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("aws.health"),
            Just("aws.guardduty"),
            Just("aws.iam"),
            Just("GuardDuty Finding"),
            Just("AWS API Call via CloudTrail"),
            Just("AttachUserPolicy"),
            Just("AWS_RISK_CREDENTIALS_EXPOSED"),
            Just(KEY),
            Just("arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"),
            Just("arn:aws:iam::123456789012:user/app-deployer"),
            Just("123456789012"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    let keys = prop_oneof![
        Just("source"),
        Just("detail-type"),
        Just("detail"),
        Just("id"),
        Just("account"),
        Just("eventArn"),
        Just("eventTypeCode"),
        Just("affectedEntities"),
        Just("entityValue"),
        Just("eventMetadata"),
        Just("eventDescription"),
        Just("latestDescription"),
        Just("resource"),
        Just("accessKeyDetails"),
        Just("accessKeyId"),
        Just("type"),
        Just("eventName"),
        Just("eventID"),
        Just("requestParameters"),
        Just("policyArn"),
        Just("userName"),
        Just("errorCode"),
    ]
    .prop_map(str::to_owned);
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every promise an answer keeps, whatever the input.
fn check(answer: Result<Vec<Exposure>, EventError>) -> Result<(), TestCaseError> {
    match answer {
        Ok(exposures) => prop_assert!(!exposures.is_empty()),
        Err(e) => {
            prop_assert!(e.message.starts_with("event"));
            prop_assert!(e.message.chars().count() <= 2000, "{}", e.message.len());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) })]

    #[test]
    fn any_string_is_answered_without_a_panic(input in "\\PC{0,64}") {
        check(decode(&input))?;
    }

    #[test]
    fn any_json_value_is_answered_without_a_panic(value in json_value()) {
        check(decode(&value.to_string()))?;
    }

    #[test]
    fn any_field_of_an_example_may_be_replaced_without_a_panic(
        example in prop::sample::select(EXAMPLES.to_vec()),
        pick in any::<prop::sample::Index>(),
        new in json_value(),
    ) {
        let mut value: Value = serde_json::from_str(example).unwrap();
        let pointers = pointers(&value, String::new());
        let pointer = &pointers[pick.index(pointers.len())];
        if let Some(slot) = value.pointer_mut(pointer) {
            *slot = new;
        }
        check(decode(&value.to_string()))?;
    }
}

/// The JSON pointer of every value inside `value`, itself included.
fn pointers(value: &Value, at: String) -> Vec<String> {
    let mut out = vec![at.clone()];
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.extend(pointers(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                ));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                out.extend(pointers(v, format!("{at}/{i}")));
            }
        }
        _ => {}
    }
    out
}

#[test]
fn a_quarantine_attached_by_a_principal_of_the_account_is_not_an_exposure() {
    let mut event: Value = serde_json::from_str(CLOUDTRAIL).unwrap();
    event["detail"]["userIdentity"] = serde_json::json!({
        "type": "IAMUser",
        "userName": "delegated-admin",
        "arn": "arn:aws:iam::123456789012:user/delegated-admin"
    });
    let err = decode(&event.to_string()).unwrap_err();
    assert!(err.message.contains("not by AWS"), "{}", err.message);
    assert_eq!(err.event_type.as_deref(), Some("AttachUserPolicy"));
    event["detail"]
        .as_object_mut()
        .unwrap()
        .remove("userIdentity");
    assert!(decode(&event.to_string()).is_err());
}
