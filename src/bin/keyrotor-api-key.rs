//! Lambda: advances one API key's rotation.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor::lambda::serve(keyrotor::lambda::Job::ApiKey).await
}
