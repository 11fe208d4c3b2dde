//! Audit records read back from DynamoDB: arbitrary items (known and unknown attribute names,
//! every attribute type) through `keyrotor::aws::dynamodb::decode`, the decoder the audit
//! store uses, then the chain verifier over what was decoded.
#![no_main]

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use keyrotor::aws::dynamodb::decode;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 19] = [
    "resource",
    "seq",
    "kind",
    "account",
    "region",
    "resource_id",
    "run_id",
    "actor",
    "action",
    "phase",
    "outcome",
    "reason",
    "detail",
    "before",
    "after",
    "dry_run",
    "recorded_at",
    "policy_time",
    "prev_hash",
];

fn value(u: &mut Unstructured) -> Result<AttributeValue> {
    Ok(match u.int_in_range(0..=7)? {
        0 | 1 => AttributeValue::S(u.arbitrary()?),
        2 => AttributeValue::N(if u.arbitrary()? {
            u.arbitrary::<u64>()?.to_string()
        } else {
            u.arbitrary()?
        }),
        3 => AttributeValue::Bool(u.arbitrary()?),
        4 => AttributeValue::Null(true),
        5 => AttributeValue::B(Blob::new(u.arbitrary::<Vec<u8>>()?)),
        6 => AttributeValue::Ss(u.arbitrary()?),
        _ => AttributeValue::L(vec![AttributeValue::S(u.arbitrary()?)]),
    })
}

fn item(u: &mut Unstructured) -> Result<HashMap<String, AttributeValue>> {
    let mut item = HashMap::new();
    for _ in 0..u.int_in_range(0..=22)? {
        let name = match u.int_in_range(0..=20)? {
            i @ 0..=18 => NAMES[i as usize].to_owned(),
            19 => "hash".to_owned(),
            _ => u.arbitrary()?,
        };
        item.insert(name, value(u)?);
    }
    Ok(item)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut records = Vec::new();
    while !u.is_empty() && records.len() < 8 {
        let Ok(item) = item(&mut u) else { break };
        let record = decode(&item);
        if let Ok(r) = &record {
            let _ = r.compute_hash();
        }
        records.push(record);
    }
    let _ = keyrotor::audit::verify(records);
});
