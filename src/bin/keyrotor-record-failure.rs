//! Lambda: audits and notifies a failed state.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor::lambda::serve(keyrotor::lambda::Job::RecordFailure).await
}
