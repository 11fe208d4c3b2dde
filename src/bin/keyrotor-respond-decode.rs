//! Lambda: reads the exposures an EventBridge event reports (AWS Health, GuardDuty, CloudTrail).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor::lambda::serve(keyrotor::lambda::Job::RespondDecode).await
}
