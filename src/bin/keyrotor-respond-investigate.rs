//! Lambda: adds an exposed key's CloudTrail activity to its response.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor::lambda::serve(keyrotor::lambda::Job::RespondInvestigate).await
}
