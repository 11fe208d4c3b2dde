//! The investigation summary of an exposed key's activity (filled in with the CloudTrail
//! adapter).
