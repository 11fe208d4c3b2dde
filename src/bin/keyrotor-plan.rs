//! Lambda: plans the account and lists the API keys whose rotation has a step due.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor::lambda::serve(keyrotor::lambda::Job::Plan).await
}
