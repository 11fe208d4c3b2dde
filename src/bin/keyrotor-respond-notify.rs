//! Lambda: sends the "Credential Exposed" notification of a response.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor::lambda::serve(keyrotor::lambda::Job::RespondNotify).await
}
